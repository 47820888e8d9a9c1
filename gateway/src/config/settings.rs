//! The typed model of `mosaic.toml`: server, limits, request headers and backends.
//!
//! Pure data with serde defaults; `deny_unknown_fields` everywhere so a typo is an error with a
//! location, not a silently ignored key. Cross-checks against the schema belong to `plan`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// The whole `mosaic.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// SDL files or directories (all `*.graphql` inside), relative to the config file.
    pub schema: Vec<Spanned<String>>,
    pub server: ServerSettings,
    pub limits: LimitSettings,
    pub request: RequestSettings,
    pub backends: BTreeMap<String, Spanned<BackendSettings>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            schema: vec![Spanned::new(0..0, "schema".to_string())],
            server: ServerSettings::default(),
            limits: LimitSettings::default(),
            request: RequestSettings::default(),
            backends: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the GraphQL endpoint listens on.
    pub listen: String,
    /// Path of the GraphQL endpoint (POST, GET and WebSocket).
    pub graphql_path: String,
    /// Serve the GraphiQL playground at `/`.
    pub playground: bool,
    /// Answer introspection queries.
    pub introspection: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            graphql_path: "/graphql".into(),
            playground: true,
            introspection: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Largest accepted HTTP request body.
    pub max_body_bytes: usize,
    /// Most operations in one batched (JSON array) request.
    pub max_batch_operations: usize,
    /// Compiled operation plans kept in memory (distinct documents × operation names).
    pub plan_cache_size: u64,
    /// Deepest selection nesting accepted.
    pub max_depth: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_batch_operations: 32,
            plan_cache_size: 1024,
            max_depth: 32,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestSettings {
    /// Client request headers that binding templates may read as `{{headers.NAME}}`.
    /// Lower-case names; nothing else from the client request reaches a template.
    pub headers: Vec<Spanned<String>>,
}

/// One REST backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendSettings {
    /// Base URL, e.g. `http://customers.internal:8080`. Paths in bindings are appended.
    pub url: Spanned<String>,
    /// Total time for one call, including reading the body.
    pub timeout: HumanDuration,
    /// Time to establish a TCP (and TLS) connection.
    pub connect_timeout: HumanDuration,
    /// Coalesce identical idempotent calls in flight at the same moment across requests.
    pub singleflight: bool,
    /// Idle keep-alive connections kept per host.
    pub pool_max_idle: usize,
    /// Static headers added to every call to this backend.
    pub headers: BTreeMap<String, String>,
    /// Largest backend response body accepted.
    pub max_response_bytes: usize,
}

impl Default for BackendSettings {
    fn default() -> Self {
        Self {
            url: Spanned::new(0..0, String::new()),
            timeout: HumanDuration(Duration::from_secs(10)),
            connect_timeout: HumanDuration(Duration::from_secs(2)),
            singleflight: true,
            pool_max_idle: 64,
            headers: BTreeMap::new(),
            max_response_bytes: 16 << 20,
        }
    }
}

/// A duration written for humans: `"250ms"`, `"5s"`, `"1m 30s"`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map(HumanDuration).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?}: {e} (write e.g. \"500ms\", \"5s\", \"1m\")"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let s: Settings = toml::from_str("").expect("empty is valid");
        assert_eq!(s.server.graphql_path, "/graphql");
        assert!(s.backends.is_empty());
    }

    #[test]
    fn durations_are_human_strings() {
        let s: Settings = toml::from_str("[backends.a]\nurl = \"http://x\"\ntimeout = \"250ms\"\n").expect("valid");
        assert_eq!(s.backends["a"].get_ref().timeout.0, Duration::from_millis(250));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<Settings>("[server]\nlisten_on = \"x\"\n").is_err());
    }
}
