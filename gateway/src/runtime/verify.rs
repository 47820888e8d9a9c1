//! Token verification: JWTs checked with HS256 (a shared secret) or RS256/ES256 (keys from a JWKS
//! file or URL, refreshed), issuer, audience, expiry and not-before with a small leeway.

use std::sync::Arc;

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::JwkSet;
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

/// Verifies tokens with the configured keys.
pub struct Verifier {
    secret: Option<DecodingKey>,
    jwks: ArcSwap<Vec<(Option<String>, Algorithm, DecodingKey)>>,
    settings: AuthToml,
    pub required: bool,
}

fn keys_of(set: &JwkSet) -> Vec<(Option<String>, Algorithm, DecodingKey)> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let key = DecodingKey::from_jwk(jwk).ok()?;
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok())
                .unwrap_or(Algorithm::RS256);
            Some((jwk.common.key_id.clone(), alg, key))
        })
        .collect()
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
            let text = std::fs::read_to_string(config_dir.join(file)).map_err(|e| AuthError::Jwks(e.to_string()))?;
            let set: JwkSet = serde_json::from_str(&text).map_err(|e| AuthError::Jwks(e.to_string()))?;
            keys = keys_of(&set);
        }
        if secret.is_none() && keys.is_empty() && settings.jwks_url.is_none() {
            return Ok(None);
        }
        let v = Arc::new(Self {
            secret,
            jwks: ArcSwap::from_pointee(keys),
            settings: settings.clone(),
            required: settings.required,
        });
        if let Some(url) = settings.jwks_url.clone() {
            let weak = Arc::downgrade(&v);
            let every = settings.jwks_refresh.0;
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                loop {
                    let Some(v) = weak.upgrade() else { return };
                    match client.get(&url).timeout(std::time::Duration::from_secs(5)).send().await {
                        Ok(r) => match r.json::<JwkSet>().await {
                            Ok(set) => v.jwks.store(Arc::new(keys_of(&set))),
                            Err(e) => tracing::warn!(error = %e, "the JWKS is not valid JSON"),
                        },
                        Err(e) => tracing::warn!(error = %e, "cannot fetch the JWKS; keeping the keys known"),
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

    /// The claims of a valid token.
    pub fn verify(&self, token: &str) -> Result<Value, AuthError> {
        let head = decode_header(token)?;
        if head.alg == Algorithm::HS256 {
            if let Some(secret) = &self.secret {
                return Ok(decode::<Value>(token, secret, &self.validation(Algorithm::HS256))?.claims);
            }
        }
        let keys = self.jwks.load();
        let key = keys
            .iter()
            .find(|(kid, alg, _)| *alg == head.alg && (head.kid.is_none() || *kid == head.kid))
            .ok_or_else(|| AuthError::NoKey(head.kid.clone()))?;
        Ok(decode::<Value>(token, &key.2, &self.validation(head.alg))?.claims)
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
        assert_eq!(v.verify(&t).expect("valid")["sub"], "u1");
    }

    #[tokio::test]
    async fn wrong_secret_issuer_audience_or_expiry_is_refused() {
        let v = Verifier::new(&settings(), std::path::Path::new("."))
            .expect("ok")
            .expect("configured");
        let good = serde_json::json!({"sub": "u1", "iss": "https://issuer.test", "aud": "mosaic", "exp": now() + 60});
        assert!(v.verify(&token(good.clone(), "other")).is_err());
        let mut bad_iss = good.clone();
        bad_iss["iss"] = "https://evil.test".into();
        assert!(v.verify(&token(bad_iss, SECRET)).is_err());
        let mut bad_aud = good.clone();
        bad_aud["aud"] = "someone-else".into();
        assert!(v.verify(&token(bad_aud, SECRET)).is_err());
        let mut expired = good.clone();
        expired["exp"] = (now() - 120).into();
        assert!(v.verify(&token(expired, SECRET)).is_err());
        let mut within_leeway = good;
        within_leeway["exp"] = (now() - 5).into();
        assert!(v.verify(&token(within_leeway, SECRET)).is_ok(), "30 s of leeway");
    }
}
