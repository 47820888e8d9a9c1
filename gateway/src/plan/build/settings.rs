//! The checks of the sections that are not backends: `[auth]` (JWKS readable), `[security]` CORS
//! origins, `[rate_limit]` keys and its Redis.

use super::*;
use crate::config::{ConfigSource, Diagnostics};

/// `[auth]` with its secret read from the environment (`${VAR}`); a missing, empty or short
/// secret is an error (RFC 7518: an HS256 key has at least 256 bits).
pub(super) fn check_auth(
    src: &ConfigSource,
    config_dir: &std::path::Path,
    diags: &mut Diagnostics,
) -> crate::config::settings::AuthToml {
    let mut auth = src.settings.auth.clone();
    if let Some(file) = &auth.jwks_file {
        if let Err(e) = crate::auth::verify::read_jwks_file(&config_dir.join(file.get_ref())) {
            diags.error_with_hint(
                Some(src.settings_file.location(file.span())),
                format!("[auth] jwks_file: {e}"),
                "give the path (relative to mosaic.toml) of a JSON Web Key Set: {\"keys\": [{\"kty\": \"RSA\", \"kid\": …, \"n\": …, \"e\": …}]}",
            );
        }
    }
    if let Some(url) = &auth.jwks_url {
        let valid = reqwest::Url::parse(url.get_ref())
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !valid {
            diags.error_with_hint(
                Some(src.settings_file.location(url.span())),
                format!("[auth] jwks_url {:?} is not an http(s) URL", url.get_ref()),
                "give the identity provider's JWKS endpoint, e.g. \"https://idp.example.com/.well-known/jwks.json\"",
            );
        }
    }
    if let Some(secret) = &auth.hs256_secret {
        let value = interpolate_env(secret.get_ref());
        if value.len() < 32 {
            let what = if value.is_empty() {
                "is empty".to_string()
            } else {
                format!("has {} bytes", value.len())
            };
            diags.error_with_hint(
                Some(src.settings_file.location(secret.span())),
                format!("[auth] hs256_secret {what}: HS256 needs a secret of at least 32 bytes"),
                "give a long random secret, e.g. hs256_secret = \"${JWT_SECRET}\" with `openssl rand -base64 48` in JWT_SECRET",
            );
        }
        auth.hs256_secret = Some(toml::Spanned::new(secret.span(), value));
    }
    auth
}

/// Each CORS origin is `*` or `scheme://host[:port]`; `*` cannot go with credentials.
pub(super) fn check_cors(src: &ConfigSource, diags: &mut Diagnostics) {
    let security = &src.settings.security;
    for origin in &security.cors_origins {
        let text = origin.get_ref();
        let at = Some(src.settings_file.location(origin.span()));
        if text == "*" {
            if security.cors_allow_credentials {
                diags.error_with_hint(
                    at,
                    "[security] cors_origins \"*\" cannot be used with cors_allow_credentials = true (browsers refuse it)",
                    "list the origins that may send credentials, e.g. [\"https://app.example.com\"]",
                );
            }
            continue;
        }
        let valid = reqwest::Url::parse(text).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.path() == "/"
                && !text.ends_with('/')
                && u.query().is_none()
                && u.username().is_empty()
        }) && http::HeaderValue::from_str(text).is_ok();
        if !valid {
            diags.error_with_hint(
                at,
                format!("[security] cors_origins entry {text:?} is not an origin"),
                "write scheme://host[:port] with no path or trailing slash, e.g. \"https://app.example.com\", or \"*\"",
            );
        }
    }
}

/// `[rate_limit] key` is `ip`, `subject` or `header:NAME`.
pub(super) fn check_rate_limit_key(src: &ConfigSource, diags: &mut Diagnostics) {
    let key = &src.settings.rate_limit.key;
    let text = key.get_ref().as_str();
    let valid = match text.strip_prefix("header:") {
        Some(h) => !h.is_empty() && http::HeaderName::try_from(h).is_ok(),
        None => matches!(text, "ip" | "subject"),
    };
    if !valid {
        diags.error_with_hint(
            Some(src.settings_file.location(key.span())),
            format!("[rate_limit] key {text:?} is not a way to tell clients apart"),
            "use \"ip\", \"subject\" (the token's sub) or \"header:NAME\" (e.g. \"header:x-api-key\")",
        );
    }
}

/// `[rate_limit] redis_url`, with `${VAR}` read from the environment, must be a Redis URL.
pub(super) fn check_rate_limit_redis(
    src: &ConfigSource,
    diags: &mut Diagnostics,
) -> crate::config::settings::RateLimitToml {
    let mut settings = src.settings.rate_limit.clone();
    let url = &settings.redis_url;
    let value = interpolate_env(url.get_ref());
    if !value.is_empty() && redis::Client::open(value.as_str()).is_err() {
        diags.error_with_hint(
            Some(src.settings_file.location(url.span())),
            "[rate_limit] redis_url is not a Redis URL",
            "write e.g. \"redis://127.0.0.1:6379/0\", \"rediss://user:${REDIS_PASSWORD}@redis.internal:6380\", or leave it empty",
        );
    }
    settings.redis_url = toml::Spanned::new(url.span(), value);
    settings
}

/// The trusted documents manifest `[security] trusted_documents` names, read and checked.
pub(super) fn trusted_documents(
    src: &ConfigSource,
    config_dir: &std::path::Path,
    diags: &mut Diagnostics,
) -> Option<std::collections::HashMap<String, std::sync::Arc<str>>> {
    let t = src.settings.security.trusted_documents.as_ref()?;
    match crate::plan::documents::read_manifest(&config_dir.join(t.get_ref())) {
        Ok(m) => Some(m),
        Err(e) => {
            diags.error_with_hint(
                Some(src.settings_file.location(t.span())),
                e.to_string(),
                "give a JSON manifest: {\"<sha256>\": \"<document>\"} or Apollo's persisted query manifest",
            );
            None
        }
    }
}

/// `[telemetry] otlp_endpoint` is an http(s) URL.
pub(super) fn check_telemetry(src: &ConfigSource, diags: &mut Diagnostics) {
    if let Some(endpoint) = &src.settings.telemetry.otlp_endpoint {
        if !crate::telemetry::traces::valid_endpoint(endpoint.get_ref()) {
            diags.error_with_hint(
                Some(src.settings_file.location(endpoint.span())),
                format!(
                    "[telemetry] otlp_endpoint {:?} is not an http(s) URL",
                    endpoint.get_ref()
                ),
                "give the collector's base URL, e.g. \"http://otel-collector:4318\"",
            );
        }
    }
}

/// `[log] level` is a log filter.
pub(super) fn check_log(src: &ConfigSource, diags: &mut Diagnostics) {
    let log = &src.settings.log;
    if let Err(e) = crate::telemetry::logging::parse_filter(log.level.get_ref()) {
        diags.error_with_hint(
            Some(src.settings_file.location(log.level.span())),
            format!("[log] level {:?} is not a log filter: {e}", log.level.get_ref()),
            "use RUST_LOG syntax: a level (\"info\") or targets with levels (\"warn,mosaic_gateway::backend=debug\")",
        );
    }
}
