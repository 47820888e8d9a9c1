//! Token verification: JWTs checked with HS256 (a shared secret) or RS256/ES256/EdDSA… (keys from
//! a JWKS file or URL, refreshed, and fetched again at once for a token naming an unknown `kid`,
//! at most every [`REFETCH_AT_MOST_EVERY`]), issuer, audience, expiry and not-before with a small
//! leeway.

use std::sync::Arc;

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::config::settings::AuthToml;

/// Why a token was refused (logged; clients see a generic message).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no key matches the token (kid {0:?})")]
    NoKey(Option<String>),
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("cannot read the JWKS: {0}")]
    Jwks(String),
}

/// A token naming a `kid` the gateway does not know makes it fetch `jwks_url` again at once (a
/// key rotation), but not more often than this, so tokens with made-up `kid`s cannot make it
/// hammer the identity provider.
pub const REFETCH_AT_MOST_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

pub type Keys = Vec<(Option<String>, Algorithm, DecodingKey)>;

/// Verifies tokens with the configured keys.
pub struct Verifier {
    secret: Option<DecodingKey>,
    jwks: ArcSwap<Keys>,
    settings: AuthToml,
    pub required: bool,
    client: reqwest::Client,
    /// When `jwks_url` was last fetched because of an unknown `kid`.
    last_refetch: std::sync::Mutex<Option<std::time::Instant>>,
    /// Tokens already verified, with their claims: a client sends the same token with every
    /// request, and checking a signature and parsing the claims again each time costs more than
    /// a lookup. Entries live at most [`VERIFIED_FOR`]; `exp` and `nbf` are checked again on
    /// every hit, and a reload (new keys, issuer or audience) starts with an empty cache.
    verified: moka::sync::Cache<Box<str>, Arc<Value>>,
}

/// How long a verified token is remembered (its `exp` is still checked on every use).
const VERIFIED_FOR: std::time::Duration = std::time::Duration::from_secs(60);
/// Tokens remembered at most.
const VERIFIED_MAX: u64 = 10_000;
/// Longer tokens are verified every time rather than kept.
const VERIFIED_MAX_LEN: usize = 4096;

/// The algorithm a key is for: its `alg`, or the one its type and curve imply (RFC 7518).
fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    if let Some(a) = jwk.common.key_algorithm {
        return a.to_string().parse::<Algorithm>().ok();
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => Some(Algorithm::EdDSA),
        // Shared secrets are configured with `hs256_secret`, never taken from a JWKS.
        _ => None,
    }
}

fn keys_of(set: &JwkSet) -> Keys {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let alg = algorithm_of(jwk)?;
            if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
                return None;
            }
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((jwk.common.key_id.clone(), alg, key))
        })
        .collect()
}

/// The usable keys of a JWKS file; an unreadable file, invalid JSON or a set without any key
/// for a supported algorithm is an error.
pub fn read_jwks_file(path: &std::path::Path) -> Result<Keys, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let set: JwkSet = serde_json::from_str(&text).map_err(|e| format!("{} is not a JWKS: {e}", path.display()))?;
    let keys = keys_of(&set);
    if keys.is_empty() {
        return Err(format!(
            "{} has no usable key (RSA, EC P-256/P-384 or Ed25519 public keys)",
            path.display()
        ));
    }
    Ok(keys)
}

async fn fetch_keys(client: &reqwest::Client, url: &str) -> Result<Keys, String> {
    let set = client
        .get(url)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("cannot fetch the JWKS: {e}"))?
        .json::<JwkSet>()
        .await
        .map_err(|e| format!("the JWKS is not valid: {e}"))?;
    Ok(keys_of(&set))
}

impl Verifier {
    /// `None` when `[auth]` configures no key. A JWKS URL is fetched now and refreshed.
    pub fn new(settings: &AuthToml, config_dir: &std::path::Path) -> Result<Option<Arc<Self>>, AuthError> {
        let secret = settings
            .hs256_secret
            .as_ref()
            .map(|s| DecodingKey::from_secret(s.get_ref().as_bytes()));
        let mut keys = Vec::new();
        if let Some(file) = &settings.jwks_file {
            keys = read_jwks_file(&config_dir.join(file.get_ref())).map_err(AuthError::Jwks)?;
        }
        if secret.is_none() && keys.is_empty() && settings.jwks_url.is_none() {
            return Ok(None);
        }
        let v = Arc::new(Self {
            secret,
            jwks: ArcSwap::from_pointee(keys),
            settings: settings.clone(),
            required: settings.required,
            client: reqwest::Client::new(),
            last_refetch: std::sync::Mutex::new(None),
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_MAX)
                .time_to_live(VERIFIED_FOR)
                .build(),
        });
        if let Some(url) = settings.jwks_url.as_ref().map(|u| u.get_ref().clone()) {
            let weak = Arc::downgrade(&v);
            let every = settings.jwks_refresh.0;
            tokio::spawn(async move {
                loop {
                    let Some(v) = weak.upgrade() else { return };
                    match fetch_keys(&v.client, &url).await {
                        Ok(keys) => v.jwks.store(Arc::new(keys)),
                        Err(e) => tracing::warn!(error = %e, "keeping the JWKS keys known"),
                    }
                    drop(v);
                    tokio::time::sleep(every).await;
                }
            });
        }
        Ok(Some(v))
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut val = Validation::new(alg);
        val.leeway = self.settings.leeway.0.as_secs();
        val.validate_nbf = true;
        match &self.settings.issuer {
            Some(i) => val.set_issuer(&[i]),
            None => val.iss = None,
        }
        match &self.settings.audience {
            Some(a) => val.set_audience(&[a]),
            None => val.validate_aud = false,
        }
        val
    }

    /// The claims of a valid token. A token whose `kid` no known key has makes the gateway
    /// fetch `jwks_url` once more (see [`REFETCH_AT_MOST_EVERY`]) before refusing it.
    pub async fn verify(&self, token: &str) -> Result<Arc<Value>, AuthError> {
        if let Some(claims) = self.verified.get(token) {
            if self.still_valid(&claims) {
                return Ok(claims);
            }
            self.verified.invalidate(token);
        }
        let claims = Arc::new(self.verify_uncached(token).await?);
        if token.len() <= VERIFIED_MAX_LEN {
            self.verified.insert(token.into(), claims.clone());
        }
        Ok(claims)
    }

    /// `exp` and `nbf` of remembered claims against the clock, with the leeway.
    fn still_valid(&self, claims: &Value) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let leeway = self.settings.leeway.0.as_secs();
        let exp_ok = claims
            .get("exp")
            .and_then(Value::as_u64)
            .is_some_and(|exp| now < exp.saturating_add(leeway));
        let nbf_ok = claims
            .get("nbf")
            .and_then(Value::as_u64)
            .is_none_or(|nbf| nbf <= now.saturating_add(leeway));
        exp_ok && nbf_ok
    }

    async fn verify_uncached(&self, token: &str) -> Result<Value, AuthError> {
        let head = decode_header(token)?;
        if head.alg == Algorithm::HS256 {
            if let Some(secret) = &self.secret {
                return Ok(decode::<Value>(token, secret, &self.validation(Algorithm::HS256))?.claims);
            }
        }
        match self.verify_with_known_keys(token, &head) {
            Err(AuthError::NoKey(Some(kid))) if self.may_refetch() => {
                let Some(url) = &self.settings.jwks_url else {
                    return Err(AuthError::NoKey(Some(kid)));
                };
                match fetch_keys(&self.client, url.get_ref()).await {
                    Ok(keys) => {
                        tracing::info!(
                            kid,
                            keys = keys.len(),
                            "JWKS fetched again for a token with an unknown kid"
                        );
                        self.jwks.store(Arc::new(keys));
                    }
                    Err(e) => return Err(AuthError::Jwks(e)),
                }
                self.verify_with_known_keys(token, &head)
            }
            other => other,
        }
    }

    fn verify_with_known_keys(&self, token: &str, head: &jsonwebtoken::Header) -> Result<Value, AuthError> {
        let keys = self.jwks.load();
        let key = keys
            .iter()
            .find(|(kid, alg, _)| *alg == head.alg && (head.kid.is_none() || *kid == head.kid))
            .ok_or_else(|| AuthError::NoKey(head.kid.clone()))?;
        Ok(decode::<Value>(token, &key.2, &self.validation(head.alg))?.claims)
    }

    /// Whether an unknown `kid` may cause a fetch now (a URL is configured and the last such
    /// fetch is old enough); if so, the fetch is counted as made.
    fn may_refetch(&self) -> bool {
        if self.settings.jwks_url.is_none() {
            return false;
        }
        let Ok(mut last) = self.last_refetch.lock() else {
            return false;
        };
        if last.is_some_and(|t| t.elapsed() < REFETCH_AT_MOST_EVERY) {
            return false;
        }
        *last = Some(std::time::Instant::now());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::AuthToml;
    use jsonwebtoken::{encode, EncodingKey, Header};

    const SECRET: &str = "a-test-secret-of-at-least-32-bytes!";

    fn settings() -> AuthToml {
        AuthToml {
            hs256_secret: Some(toml::Spanned::new(0..0, SECRET.into())),
            issuer: Some("https://issuer.test".into()),
            audience: Some("mosaic".into()),
            ..AuthToml::default()
        }
    }

    fn token(claims: Value, secret: &str) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encodes")
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn a_valid_hs256_token_gives_its_claims() {
        let v = Verifier::new(&settings(), std::path::Path::new("."))
            .expect("ok")
            .expect("configured");
        let t = token(
            serde_json::json!({"sub": "u1", "iss": "https://issuer.test", "aud": "mosaic", "exp": now() + 60}),
            SECRET,
        );
        assert_eq!(v.verify(&t).await.expect("valid")["sub"], "u1");
    }

    #[tokio::test]
    async fn a_remembered_token_is_checked_for_expiry_on_every_use() {
        let v = Verifier::new(&settings(), std::path::Path::new("."))
            .expect("ok")
            .expect("configured");
        let claims = serde_json::json!({"sub": "u1", "iss": "https://issuer.test", "aud": "mosaic", "exp": now() + 60});
        let t = token(claims.clone(), SECRET);
        assert!(v.verify(&t).await.is_ok());
        assert!(v.verify(&t).await.is_ok(), "from the cache");
        // The same claims, as remembered, once the clock passed exp + leeway.
        let mut expired = claims;
        expired["exp"] = (now() - 31).into();
        assert!(!v.still_valid(&expired));
        v.verified.insert(t.clone().into(), Arc::new(expired));
        assert!(
            v.verify(&t).await.is_ok(),
            "verified again: the real token is still valid"
        );
        let forged = format!("{t}x");
        assert!(v.verify(&forged).await.is_err(), "a different token is never a hit");
    }

    #[tokio::test]
    async fn wrong_secret_issuer_audience_or_expiry_is_refused() {
        let v = Verifier::new(&settings(), std::path::Path::new("."))
            .expect("ok")
            .expect("configured");
        let good = serde_json::json!({"sub": "u1", "iss": "https://issuer.test", "aud": "mosaic", "exp": now() + 60});
        assert!(v.verify(&token(good.clone(), "other")).await.is_err());
        let mut bad_iss = good.clone();
        bad_iss["iss"] = "https://evil.test".into();
        assert!(v.verify(&token(bad_iss, SECRET)).await.is_err());
        let mut bad_aud = good.clone();
        bad_aud["aud"] = "someone-else".into();
        assert!(v.verify(&token(bad_aud, SECRET)).await.is_err());
        let mut expired = good.clone();
        expired["exp"] = (now() - 120).into();
        assert!(v.verify(&token(expired, SECRET)).await.is_err());
        let mut within_leeway = good;
        within_leeway["exp"] = (now() - 5).into();
        assert!(v.verify(&token(within_leeway, SECRET)).await.is_ok(), "30 s of leeway");
    }
}
