//! `[security]`, `[auth]`, `[rate_limit]`, `[cache]` and `[federation]`.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::HumanDuration;

/// `[security]`: what clients may send.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityToml {
    /// Automatic persisted queries (the Apollo protocol: a query sent once by hash).
    pub apq: bool,
    /// Persisted operations kept for APQ.
    pub apq_cache_size: u64,
    /// A manifest of trusted documents (by SHA-256): when set, only those operations run.
    pub trusted_documents: Option<Spanned<String>>,
    /// Mutations allowed (false for a read-only deployment).
    pub allow_mutations: bool,
    /// Allowed origins for CORS (`https://app.example.com`, or `*` for any without credentials);
    /// empty: no CORS headers (browsers refuse cross-origin calls).
    pub cors_origins: Vec<Spanned<String>>,
    pub cors_allow_credentials: bool,
}

impl Default for SecurityToml {
    fn default() -> Self {
        Self {
            apq: true,
            apq_cache_size: 10_000,
            trusted_documents: None,
            allow_mutations: true,
            cors_origins: Vec::new(),
            cors_allow_credentials: false,
        }
    }
}

/// `[auth]`: JWT verification. Tokens come as `Authorization: Bearer <jwt>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthToml {
    /// HS256 shared secret, at least 32 bytes; `${ENV_VAR}` is read from the environment.
    pub hs256_secret: Option<Spanned<String>>,
    /// A JWKS file (RS256/ES256 public keys), relative to the config file.
    pub jwks_file: Option<Spanned<String>>,
    /// A JWKS URL, fetched at start and every `jwks_refresh`.
    pub jwks_url: Option<Spanned<String>>,
    pub jwks_refresh: HumanDuration,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: HumanDuration,
    /// Every request must carry a valid token.
    pub required: bool,
}

impl Default for AuthToml {
    fn default() -> Self {
        Self {
            hs256_secret: None,
            jwks_file: None,
            jwks_url: None,
            jwks_refresh: HumanDuration(Duration::from_secs(300)),
            issuer: None,
            audience: None,
            leeway: HumanDuration(Duration::from_secs(30)),
            required: false,
        }
    }
}

/// `[rate_limit]`: token buckets per client.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitToml {
    /// Sustained requests per second per client; 0 turns rate limiting off.
    pub requests_per_second: u32,
    /// Requests a client may send at once above the sustained rate.
    pub burst: u32,
    /// What identifies a client: `"ip"`, `"subject"` (the JWT's `sub`, else the IP) or
    /// `"header:NAME"` (e.g. an API key header, else the IP).
    pub key: Spanned<String>,
    /// `redis://…` (`${VAR}` read from the environment): the buckets live in Redis, shared by
    /// every replica; empty: in this process.
    pub redis_url: Spanned<String>,
    pub redis_key_prefix: String,
    /// The longest a check waits for Redis before deciding with this replica's own buckets.
    pub redis_timeout: HumanDuration,
}

impl Default for RateLimitToml {
    fn default() -> Self {
        Self {
            requests_per_second: 0,
            burst: 50,
            key: Spanned::new(0..0, "ip".into()),
            redis_url: Spanned::new(0..0, String::new()),
            redis_key_prefix: "mosaic:rl:".into(),
            redis_timeout: HumanDuration(Duration::from_millis(50)),
        }
    }
}

/// `[cache]`: the response cache (in memory, optionally shared through Redis).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheToml {
    pub enabled: bool,
    /// Memory the cached answers may take, in bytes of backend JSON.
    pub max_bytes: u64,
    /// For fields without `@cache`: serve an expired answer this long when the backend fails.
    pub stale_if_error: HumanDuration,
    /// Request header naming the user, for `@cache(scope: PRIVATE)` entries (until JWT auth).
    pub principal_header: Option<String>,
    pub redis: RedisToml,
}

impl Default for CacheToml {
    fn default() -> Self {
        Self {
            enabled: true,
            max_bytes: 64 << 20,
            stale_if_error: HumanDuration(Duration::ZERO),
            principal_header: None,
            redis: RedisToml::default(),
        }
    }
}

/// `[cache.redis]`: a second level shared by all replicas, and invalidations fanned out to them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisToml {
    /// `redis://host:6379/0`; empty: no Redis (the default).
    pub url: String,
    pub key_prefix: String,
    /// The longest a cache read or write may wait for Redis before going on without it.
    pub timeout: HumanDuration,
}

impl Default for RedisToml {
    fn default() -> Self {
        Self {
            url: String::new(),
            key_prefix: "mosaic:".into(),
            timeout: HumanDuration(Duration::from_millis(50)),
        }
    }
}

/// `[federation]`: serve the schema as an Apollo Federation v2 subgraph (`_service`, `_entities`,
/// the federation directives in the SDL). Off by default: the federation directives are then errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FederationToml {
    pub enabled: bool,
}
