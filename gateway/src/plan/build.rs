//! Config → Plan: collects the SDL's types, checks them against each other and the backends, and
//! compiles every field's data source. All problems are accumulated, none is fatal alone.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_graphql_parser::types::{
    FieldDefinition, InputValueDefinition, Type, TypeDefinition, TypeKind, TypeSystemDefinition,
};
use async_graphql_parser::{Pos, Positioned};
use indexmap::IndexMap;

use super::bind::{BindContext, Binder};
use super::directives::{self, Site};
use super::{
    BackendId, BackendPlan, Discriminator, EnumType, EnumValueDef, FieldDef, FieldSource, InputObjectType,
    InputValueDef, InterfaceType, JsonPath, ObjectType, Plan, ScalarKind, ScalarType, TypeDef, UnionType,
};
use crate::config::diagnostic::suggest;
use crate::config::{ConfigSource, Diagnostics, Location};

const BUILTIN_SCALARS: [(&str, ScalarKind); 5] = [
    ("Int", ScalarKind::Int),
    ("Float", ScalarKind::Float),
    ("String", ScalarKind::String),
    ("Boolean", ScalarKind::Boolean),
    ("ID", ScalarKind::Id),
];

/// One type definition (or extension) as written, with the file it came from.
struct RawType<'a> {
    def: &'a TypeDefinition,
    pos: Pos,
    site: Site,
}

/// Validates and compiles a config. `resolvers` are the names of the registered Rust resolvers.
pub fn build(src: &ConfigSource, resolvers: &[&str]) -> Result<Plan, Diagnostics> {
    let mut diags = Diagnostics::default();
    let backends = build_backends(src, &mut diags);

    // 1. Collect definitions, extensions and the schema definition.
    let mut defs: IndexMap<String, RawType<'_>> = IndexMap::new();
    let mut extensions: Vec<RawType<'_>> = Vec::new();
    let mut roots: (Option<String>, Option<String>, Option<(String, Location)>) = (None, None, None);
    for file in &src.sdl {
        let site = Site {
            file: file.file.name.clone(),
        };
        for def in &file.document.definitions {
            match def {
                TypeSystemDefinition::Type(t) => {
                    let raw = RawType {
                        def: &t.node,
                        pos: t.pos,
                        site: site.clone(),
                    };
                    let name = t.node.name.node.to_string();
                    if t.node.extend {
                        extensions.push(raw);
                    } else if BUILTIN_SCALARS.iter().any(|(n, _)| *n == name) {
                        diags.error(
                            Some(site.loc(t.pos)),
                            format!("`{name}` is a built-in scalar and cannot be redefined"),
                        );
                    } else if let Some(prev) = defs.get(&name) {
                        diags.error_with_hint(
                            Some(site.loc(t.pos)),
                            format!("type `{name}` is defined twice"),
                            format!(
                                "the first definition is at {}; use `extend type {name}` to add fields",
                                prev.site.loc(prev.pos)
                            ),
                        );
                    } else {
                        defs.insert(name, raw);
                    }
                }
                TypeSystemDefinition::Schema(s) => {
                    roots.0 = s.node.query.as_ref().map(|n| n.node.to_string());
                    roots.1 = s.node.mutation.as_ref().map(|n| n.node.to_string());
                    roots.2 = s
                        .node
                        .subscription
                        .as_ref()
                        .map(|n| (n.node.to_string(), site.loc(n.pos)));
                }
                TypeSystemDefinition::Directive(d) => {
                    let name = d.node.name.node.as_str();
                    let ours = directives::FIELD_DIRECTIVES.contains(&name)
                        || directives::ABSTRACT_TYPE_DIRECTIVES.contains(&name);
                    if !ours {
                        diags.error_with_hint(
                            Some(site.loc(d.pos)),
                            format!("custom directive @{name} is not supported"),
                            "Mosaic reads only its own directives; remove this definition",
                        );
                    }
                }
            }
        }
    }

    let query_type = roots.0.unwrap_or_else(|| "Query".to_string());
    let mutation_type = roots
        .1
        .or_else(|| defs.contains_key("Mutation").then(|| "Mutation".to_string()));
    let subscription = roots.2.or_else(|| {
        defs.get("Subscription")
            .map(|r| ("Subscription".to_string(), r.site.loc(r.pos)))
    });
    let subscription_type = subscription.map(|(name, _)| name);
    if !defs.contains_key(&query_type) {
        diags.error_with_hint(
            None,
            format!("the schema has no `{query_type}` type"),
            "define `type Query { ... }` with at least one field bound by @http",
        );
    }

    // 2. Every named type, fields not yet bound.
    let mut types: IndexMap<String, TypeDef> = BUILTIN_SCALARS
        .iter()
        .map(|(n, k)| {
            (
                n.to_string(),
                TypeDef::Scalar(ScalarType {
                    name: n.to_string(),
                    description: None,
                    kind: *k,
                }),
            )
        })
        .collect();
    for (name, raw) in &defs {
        types.insert(name.clone(), shape_type(raw, &mut diags));
    }
    for ext in &extensions {
        apply_extension(&mut types, &defs, ext, &mut diags);
    }

    // 3. References, interfaces and unions.
    let field_sites = collect_field_sites(&defs, &extensions);
    check_references(&types, &field_sites, &mut diags);
    link_abstract_types(&mut types, &defs, &mut diags);

    // 4. Field sources: bindings, @from paths and resolvers.
    let cache = &src.settings.cache;
    let mut binder = Binder::new(BindContext {
        backends: &backends,
        default_cache: cache.enabled.then_some(super::resilience::CachePolicy {
            ttl: None,
            stale_while_revalidate: std::time::Duration::ZERO,
            stale_if_error: cache.stale_if_error.0,
            private: false,
        }),
        request_headers: src
            .settings
            .request
            .headers
            .iter()
            .map(|h| h.get_ref().to_ascii_lowercase())
            .collect(),
        root_types: [
            Some(query_type.clone()),
            mutation_type.clone(),
            subscription_type.clone(),
        ]
        .into_iter()
        .flatten()
        .collect(),
        subscription_type: subscription_type.clone(),
        auth_configured: {
            let a = &src.settings.auth;
            a.hs256_secret.is_some() || a.jwks_file.is_some() || a.jwks_url.is_some()
        },
        resolvers,
    });
    binder.bind_all(&mut types, &field_sites, &mut diags);
    check_abstract_outputs(&types, &field_sites, &mut diags);
    let (bindings, used_resolvers) = binder.finish();
    let config_dir = std::path::Path::new(&*src.settings_file.name)
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let trusted_documents = src.settings.security.trusted_documents.as_ref().and_then(|t| {
        match super::documents::read_manifest(&config_dir.join(t.get_ref())) {
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
    });

    let auth = check_auth(src, &config_dir, &mut diags);
    check_cors(src, &mut diags);
    check_rate_limit_key(src, &mut diags);
    let rate_limit = check_rate_limit_redis(src, &mut diags);
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

    let log = &src.settings.log;
    if let Err(e) = crate::telemetry::logging::parse_filter(log.level.get_ref()) {
        diags.error_with_hint(
            Some(src.settings_file.location(log.level.span())),
            format!("[log] level {:?} is not a log filter: {e}", log.level.get_ref()),
            "use RUST_LOG syntax: a level (\"info\") or targets with levels (\"warn,mosaic_gateway::backend=debug\")",
        );
    }

    diags.into_result(Plan {
        types,
        query_type,
        mutation_type,
        subscription_type,
        bindings,
        backends,
        server: src.settings.server.clone(),
        limits: src.settings.limits.clone(),
        cache: src.settings.cache.clone(),
        security: src.settings.security.clone(),
        auth,
        rate_limit,
        telemetry: src.settings.telemetry.clone(),
        log: src.settings.log.clone(),
        trusted_documents,
        config_dir,
        request_headers: src
            .settings
            .request
            .headers
            .iter()
            .map(|h| h.get_ref().to_ascii_lowercase())
            .collect(),
        resolvers: used_resolvers,
    })
}

/// A field definition as written: where it is and its directives, for the binder.
pub(super) struct FieldSite<'a> {
    pub def: &'a FieldDefinition,
    pub pos: Pos,
    pub site: Site,
}

/// (type name, field name) → where the field was written.
pub(super) type FieldSites<'a> = HashMap<(String, String), FieldSite<'a>>;

fn collect_field_sites<'a>(defs: &IndexMap<String, RawType<'a>>, exts: &[RawType<'a>]) -> FieldSites<'a> {
    let mut out = HashMap::new();
    for raw in defs.values().chain(exts.iter()) {
        let fields = match &raw.def.kind {
            TypeKind::Object(o) => &o.fields,
            TypeKind::Interface(i) => &i.fields,
            _ => continue,
        };
        for f in fields {
            out.entry((raw.def.name.node.to_string(), f.node.name.node.to_string()))
                .or_insert(FieldSite {
                    def: &f.node,
                    pos: f.pos,
                    site: raw.site.clone(),
                });
        }
    }
    out
}

/// The retry budget windows tower's `TpsBudget` accepts (it panics outside).
const BUDGET_WINDOW: std::ops::RangeInclusive<std::time::Duration> =
    std::time::Duration::from_secs(1)..=std::time::Duration::from_secs(60);
/// The retry budget and throttle ratios accepted.
const RETRY_RATIO: std::ops::RangeInclusive<f32> = 0.0..=1000.0;

fn build_backends(src: &ConfigSource, diags: &mut Diagnostics) -> Vec<BackendPlan> {
    let mut out = Vec::new();
    for (i, (name, spanned)) in src.settings.backends.iter().enumerate() {
        let loc = src.settings_file.location(spanned.span());
        let at = |span: std::ops::Range<usize>| {
            if span.is_empty() {
                loc.clone()
            } else {
                src.settings_file.location(span)
            }
        };
        let b = spanned.get_ref();
        let mut instances = Vec::new();
        let mut urls: Vec<(String, Location)> = b
            .urls
            .iter()
            .map(|u| (interpolate_env(u.get_ref()), at(u.span())))
            .collect();
        let single = interpolate_env(b.url.get_ref());
        if !single.is_empty() {
            urls.insert(0, (single, at(b.url.span())));
        }
        if urls.is_empty() {
            diags.error_with_hint(
                Some(loc.clone()),
                format!("backend `{name}` has no url"),
                "add url = \"http://host:port\" (or urls = [...] for several instances)",
            );
        }
        for (raw, url_loc) in &urls {
            match reqwest::Url::parse(raw) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
                    instances.push(raw.trim_end_matches('/').to_string())
                }
                Ok(u) => diags.error_with_hint(
                    Some(url_loc.clone()),
                    format!("backend `{name}` url has scheme `{}`", u.scheme()),
                    "use an http:// or https:// URL",
                ),
                Err(e) => diags.error_with_hint(
                    Some(url_loc.clone()),
                    format!("backend `{name}` url {raw:?} is invalid: {e}"),
                    "write a full URL such as \"http://127.0.0.1:4001\"",
                ),
            }
        }
        let dns_refresh = match b.discovery.as_ref().map(|d| (d.get_ref().as_str(), d.span())) {
            None => None,
            Some(("dns", span)) => {
                if urls.len() != 1 {
                    diags.error_with_hint(
                        Some(at(span)),
                        format!("backend `{name}`: discovery = \"dns\" needs exactly one url"),
                        "give the DNS name once: url = \"http://accounts.default.svc:8080\"",
                    );
                }
                Some(b.dns_refresh.0)
            }
            Some((other, span)) => {
                diags.error_with_hint(
                    Some(at(span)),
                    format!("backend `{name}`: unknown discovery {other:?}"),
                    "the only discovery is \"dns\" (leave it out for a static list)",
                );
                None
            }
        };
        let mut headers = Vec::new();
        for (k, v) in &b.headers {
            match (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(&interpolate_env(v)),
            ) {
                (Ok(k), Ok(v)) => headers.push((k, v)),
                _ => diags.error(
                    Some(loc.clone()),
                    format!("backend `{name}`: header {k:?} is not a valid HTTP header"),
                ),
            }
        }
        let breaker = resilience_settings(name, b, &loc, &at, diags);
        let r = &b.retry;
        let window = r.budget_window.0;
        if !BUDGET_WINDOW.contains(&window) {
            diags.error_with_hint(
                Some(loc.clone()),
                format!("backend `{name}`: retry budget_window {window:?} is out of range"),
                "give 1s to 60s (the default is \"10s\")",
            );
        }
        if !RETRY_RATIO.contains(&r.budget_ratio) || !RETRY_RATIO.contains(&r.throttle_token_ratio) {
            diags.error_with_hint(
                Some(loc.clone()),
                format!("backend `{name}`: retry budget_ratio and throttle_token_ratio must be between 0 and 1000"),
                "e.g. budget_ratio = 0.1 (retries up to 10% of calls), throttle_token_ratio = 0.1",
            );
        }
        if b.max_url_bytes < 256 {
            diags.error_with_hint(
                Some(loc.clone()),
                format!("backend `{name}`: max_url_bytes = {} is too small", b.max_url_bytes),
                "give at least 256 (the default is 16384; most HTTP servers accept 8 KiB)",
            );
        }
        const NEVER: [&str; 11] = [
            "host",
            "connection",
            "keep-alive",
            "proxy-connection",
            "proxy-authenticate",
            "proxy-authorization",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "content-length",
        ];
        let mut forward_headers = Vec::new();
        for h in &b.forward_headers {
            let lower = h.to_ascii_lowercase();
            if NEVER.contains(&lower.as_str()) {
                diags.error_with_hint(
                    Some(loc.clone()),
                    format!("backend `{name}`: header `{h}` cannot be forwarded"),
                    "hop-by-hop headers, host and content-length belong to one connection; the gateway sets its own",
                );
                continue;
            }
            match http::HeaderName::from_bytes(lower.as_bytes()) {
                Ok(n) => forward_headers.push(n),
                Err(_) => diags.error(
                    Some(loc.clone()),
                    format!("backend `{name}`: {h:?} is not a header name"),
                ),
            }
        }
        out.push(BackendPlan {
            id: BackendId(i),
            name: name.clone(),
            instances,
            dns_refresh,
            health_path: b.health_path.clone(),
            critical: b.critical,
            retry: crate::plan::resilience::RetrySettings {
                attempts: b.retry.attempts.max(1),
                backoff: b.retry.backoff.0,
                max_backoff: b.retry.max_backoff.0,
                // Kept within what tower's budget accepts (it panics outside); reported above.
                budget_ratio: b.retry.budget_ratio.clamp(*RETRY_RATIO.start(), *RETRY_RATIO.end()),
                budget_window: b
                    .retry
                    .budget_window
                    .0
                    .clamp(*BUDGET_WINDOW.start(), *BUDGET_WINDOW.end()),
                budget_min_per_second: b.retry.budget_min_per_second.min(1_000_000),
                throttle_max_tokens: b.retry.throttle_max_tokens,
                throttle_token_ratio: b
                    .retry
                    .throttle_token_ratio
                    .clamp(*RETRY_RATIO.start(), *RETRY_RATIO.end()),
            },
            bulkhead: crate::plan::resilience::BulkheadSettings {
                max_concurrent: b.bulkhead.max_concurrent,
                max_queue: b.bulkhead.max_queue,
                queue_timeout: b.bulkhead.queue_timeout.0,
            },
            breaker,
            outlier: crate::plan::resilience::OutlierSettings {
                consecutive_failures: b.outlier.consecutive_failures.max(1),
                base_ejection: b.outlier.base_ejection.0,
                max_ejection: b.outlier.max_ejection.0,
                max_ejected_percent: b.outlier.max_ejected_percent.min(100),
            },
            timeout: b.timeout.0,
            connect_timeout: b.connect_timeout.0,
            singleflight: b.singleflight,
            pool_max_idle: b.pool_max_idle,
            headers,
            forward_headers,
            max_response_bytes: b.max_response_bytes,
            max_url_bytes: b.max_url_bytes,
        });
    }
    out
}

type BreakerPlan = Option<(crate::plan::resilience::BreakerSettings, Option<std::time::Duration>)>;

/// Checks the ranges of the breaker, retry and bulkhead numbers; the breaker's settings.
fn resilience_settings(
    name: &str,
    b: &crate::config::BackendSettings,
    loc: &Location,
    at: &dyn Fn(std::ops::Range<usize>) -> Location,
    diags: &mut Diagnostics,
) -> BreakerPlan {
    let br = &b.breaker;
    let rate_ok = |r: f64| (0.0..=1.0).contains(&r) && r > 0.0;
    if !rate_ok(br.failure_rate) || !rate_ok(br.slow_call_rate) {
        diags.error_with_hint(
            Some(loc.clone()),
            format!("backend `{name}`: breaker rates must be between 0 (excluded) and 1"),
            "failure_rate = 0.5 opens the breaker when half the calls fail",
        );
    }
    if !(0.0..=1.0).contains(&b.retry.budget_ratio) {
        diags.error_with_hint(
            Some(loc.clone()),
            format!("backend `{name}`: retry budget_ratio must be between 0 and 1"),
            "budget_ratio = 0.1 allows retries for 10% of calls",
        );
    }
    if b.bulkhead.max_concurrent == 0 {
        diags.error(
            Some(loc.clone()),
            format!("backend `{name}`: bulkhead max_concurrent must be at least 1"),
        );
    }
    if br.half_open_calls == 0 || br.window_size == 0 {
        diags.error(
            Some(loc.clone()),
            format!("backend `{name}`: breaker window_size and half_open_calls must be at least 1"),
        );
    }
    let window = match br.window.get_ref().as_str() {
        "count" => crate::plan::resilience::WindowKind::Count(br.window_size.max(1)),
        "time" => crate::plan::resilience::WindowKind::Time(br.window_duration.0),
        other => {
            diags.error_with_hint(
                Some(at(br.window.span())),
                format!("backend `{name}`: unknown breaker window {other:?}"),
                "window is \"count\" (the last window_size calls) or \"time\" (the last window_duration)",
            );
            crate::plan::resilience::WindowKind::Count(br.window_size.max(1))
        }
    };
    if !br.enabled {
        return None;
    }
    let probe = (!br.probe_interval.0.is_zero()).then_some(br.probe_interval.0);
    Some((
        crate::plan::resilience::BreakerSettings {
            window,
            failure_rate: br.failure_rate,
            slow_call_rate: br.slow_call_rate,
            slow_call_duration: br.slow_call_duration.0,
            minimum_calls: br.minimum_calls,
            wait_in_open: br.wait_in_open.0,
            half_open_calls: br.half_open_calls.max(1),
        },
        probe,
    ))
}

/// `[auth]` with its secret read from the environment (`${VAR}`); a missing, empty or short
/// secret is an error (RFC 7518: an HS256 key has at least 256 bits).
fn check_auth(
    src: &ConfigSource,
    config_dir: &std::path::Path,
    diags: &mut Diagnostics,
) -> crate::config::settings::AuthToml {
    let mut auth = src.settings.auth.clone();
    if let Some(file) = &auth.jwks_file {
        if let Err(e) = crate::runtime::verify::read_jwks_file(&config_dir.join(file.get_ref())) {
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
fn check_cors(src: &ConfigSource, diags: &mut Diagnostics) {
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
fn check_rate_limit_key(src: &ConfigSource, diags: &mut Diagnostics) {
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
fn check_rate_limit_redis(src: &ConfigSource, diags: &mut Diagnostics) -> crate::config::settings::RateLimitToml {
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

/// `${VAR}` and `${VAR:-default}` from the environment (for URLs and secrets in headers).
fn interpolate_env(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let expr = &after[..end];
        let (var, default) = match expr.split_once(":-") {
            Some((v, d)) => (v, Some(d)),
            None => (expr, None),
        };
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => out.push_str(&v),
            _ => out.push_str(default.unwrap_or_default()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn description(d: &Option<Positioned<String>>) -> Option<String> {
    d.as_ref().map(|d| d.node.clone())
}

fn deprecation(dirs: &[Positioned<async_graphql_parser::types::ConstDirective>]) -> Option<String> {
    dirs.iter().find(|d| d.node.name.node == "deprecated").map(|d| {
        d.node
            .get_argument("reason")
            .and_then(|r| match &r.node {
                async_graphql_value::ConstValue::String(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "No longer supported".to_string())
    })
}

fn input_values(
    owner: &str,
    list: &[Positioned<InputValueDefinition>],
    site: &Site,
    diags: &mut Diagnostics,
) -> IndexMap<String, InputValueDef> {
    let mut out = IndexMap::new();
    for iv in list {
        let name = iv.node.name.node.to_string();
        directives::no_directives_expected(&iv.node.directives, "an input value", site, diags);
        if out.contains_key(&name) {
            diags.error(Some(site.loc(iv.pos)), format!("`{name}` is declared twice in {owner}"));
            continue;
        }
        out.insert(
            name.clone(),
            InputValueDef {
                name,
                description: description(&iv.node.description),
                ty: iv.node.ty.node.clone(),
                default: iv.node.default_value.as_ref().map(|d| d.node.clone()),
            },
        );
    }
    out
}

fn field_defs(
    owner: &str,
    list: &[Positioned<FieldDefinition>],
    site: &Site,
    diags: &mut Diagnostics,
) -> IndexMap<String, FieldDef> {
    let mut out = IndexMap::new();
    for f in list {
        let name = f.node.name.node.to_string();
        if out.contains_key(&name) {
            diags.error_with_hint(
                Some(site.loc(f.pos)),
                format!("field `{owner}.{name}` is defined twice"),
                "remove one of the definitions (fields of `extend type` count too)",
            );
            continue;
        }
        if name.starts_with("__") {
            diags.error(
                Some(site.loc(f.pos)),
                format!("field `{owner}.{name}`: names starting with `__` are reserved"),
            );
        }
        out.insert(
            name.clone(),
            FieldDef {
                name: name.clone(),
                description: description(&f.node.description),
                deprecation: deprecation(&f.node.directives),
                args: input_values(&format!("{owner}.{name}"), &f.node.arguments, site, diags),
                ty: f.node.ty.node.clone(),
                // Placeholder until the binder decides.
                source: FieldSource::Parent(JsonPath::key(&name)),
                fallback: None,
                auth: None,
                location: Some(site.loc(f.pos)),
            },
        );
    }
    out
}

fn shape_type(raw: &RawType<'_>, diags: &mut Diagnostics) -> TypeDef {
    let def = raw.def;
    let name = def.name.node.to_string();
    let desc = description(&def.description);
    let site = &raw.site;
    match &def.kind {
        TypeKind::Scalar => {
            directives::no_directives_expected(&def.directives, "a scalar", site, diags);
            TypeDef::Scalar(ScalarType {
                name,
                description: desc,
                kind: ScalarKind::Custom,
            })
        }
        TypeKind::Object(o) => {
            let auth = directives::object_type_directives(&def.directives, site, diags);
            TypeDef::Object(ObjectType {
                auth,
                fields: field_defs(&name, &o.fields, site, diags),
                implements: o.implements.iter().map(|i| i.node.to_string()).collect(),
                name,
                description: desc,
            })
        }
        TypeKind::Interface(i) => {
            let disc = directives::abstract_type_directives(&def.directives, site, diags);
            TypeDef::Interface(InterfaceType {
                fields: field_defs(&name, &i.fields, site, diags),
                possible_types: Vec::new(),
                discriminator: disc.and_then(|d| discriminator(d, site, diags)),
                name,
                description: desc,
            })
        }
        TypeKind::Union(u) => {
            let disc = directives::abstract_type_directives(&def.directives, site, diags);
            TypeDef::Union(UnionType {
                members: u.members.iter().map(|m| m.node.to_string()).collect(),
                discriminator: disc.and_then(|d| discriminator(d, site, diags)),
                name,
                description: desc,
            })
        }
        TypeKind::Enum(e) => {
            directives::no_directives_expected(&def.directives, "an enum", site, diags);
            let mut seen = HashSet::new();
            let mut values = Vec::new();
            for v in &e.values {
                let vname = v.node.value.node.to_string();
                if !seen.insert(vname.clone()) {
                    diags.error(
                        Some(site.loc(v.pos)),
                        format!("enum value `{name}.{vname}` is defined twice"),
                    );
                    continue;
                }
                if matches!(vname.as_str(), "true" | "false" | "null") {
                    diags.error(Some(site.loc(v.pos)), format!("`{vname}` cannot be an enum value"));
                }
                values.push(EnumValueDef {
                    name: vname,
                    description: description(&v.node.description),
                    deprecation: deprecation(&v.node.directives),
                });
            }
            TypeDef::Enum(EnumType {
                name,
                description: desc,
                values,
            })
        }
        TypeKind::InputObject(io) => {
            directives::no_directives_expected(&def.directives, "an input type", site, diags);
            TypeDef::InputObject(InputObjectType {
                fields: input_values(&name, &io.fields, site, diags),
                name,
                description: desc,
            })
        }
    }
}

fn discriminator(d: directives::DiscriminatorArgs, site: &Site, diags: &mut Diagnostics) -> Option<Discriminator> {
    match JsonPath::parse(&d.field) {
        Ok(path) => Some(Discriminator { path, map: d.map }),
        Err(e) => {
            diags.error(Some(site.loc(d.pos)), e.to_string());
            None
        }
    }
}

fn apply_extension(
    types: &mut IndexMap<String, TypeDef>,
    defs: &IndexMap<String, RawType<'_>>,
    ext: &RawType<'_>,
    diags: &mut Diagnostics,
) {
    let name = ext.def.name.node.to_string();
    let loc = ext.site.loc(ext.pos);
    let Some(target) = types.get_mut(&name) else {
        let hint = match suggest(&name, defs.keys().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("define `type {name}` before extending it"),
        };
        diags.error_with_hint(Some(loc), format!("`extend type {name}` extends an unknown type"), hint);
        return;
    };
    match (&ext.def.kind, target) {
        (TypeKind::Object(o), TypeDef::Object(t)) => {
            let new = field_defs(&name, &o.fields, &ext.site, diags);
            for (fname, f) in new {
                if t.fields.contains_key(&fname) {
                    diags.error(f.location.clone(), format!("field `{name}.{fname}` is defined twice"));
                } else {
                    t.fields.insert(fname, f);
                }
            }
            t.implements.extend(o.implements.iter().map(|i| i.node.to_string()));
        }
        (TypeKind::Enum(e), TypeDef::Enum(t)) => {
            for v in &e.values {
                t.values.push(EnumValueDef {
                    name: v.node.value.node.to_string(),
                    description: description(&v.node.description),
                    deprecation: deprecation(&v.node.directives),
                });
            }
        }
        (TypeKind::Union(u), TypeDef::Union(t)) => {
            t.members.extend(u.members.iter().map(|m| m.node.to_string()));
        }
        (TypeKind::InputObject(io), TypeDef::InputObject(t)) => {
            for (k, v) in input_values(&name, &io.fields, &ext.site, diags) {
                t.fields.insert(k, v);
            }
        }
        _ => diags.error_with_hint(
            Some(loc),
            format!("`extend` of `{name}` does not match the kind of its definition"),
            "extend an object with `extend type`, an enum with `extend enum`, and so on",
        ),
    }
}

fn check_type_ref(
    types: &IndexMap<String, TypeDef>,
    ty: &Type,
    want_input: bool,
    what: &str,
    loc: Option<Location>,
    diags: &mut Diagnostics,
) {
    let name = super::named_type(ty);
    match types.get(name) {
        None => {
            let hint = match suggest(name, types.keys().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("define `{name}` in a schema file"),
            };
            diags.error_with_hint(loc, format!("{what} has unknown type `{name}`"), hint);
        }
        Some(def) if want_input && !def.is_input() => diags.error_with_hint(
            loc,
            format!("{what} has type `{name}`, which is not an input type"),
            "arguments and input fields take scalars, enums or input types",
        ),
        Some(TypeDef::InputObject(_)) if !want_input => diags.error_with_hint(
            loc,
            format!("{what} has input type `{name}`, which cannot be returned"),
            "return an object type; input types are for arguments",
        ),
        _ => {}
    }
}

fn check_references(types: &IndexMap<String, TypeDef>, sites: &FieldSites<'_>, diags: &mut Diagnostics) {
    for (tname, def) in types {
        match def {
            TypeDef::Object(_) | TypeDef::Interface(_) => {
                let fields = match def {
                    TypeDef::Object(o) => &o.fields,
                    TypeDef::Interface(i) => &i.fields,
                    _ => continue,
                };
                if fields.is_empty() {
                    diags.error(None, format!("type `{tname}` has no fields"));
                }
                for (fname, f) in fields {
                    let loc = sites.get(&(tname.clone(), fname.clone())).map(|s| s.site.loc(s.pos));
                    check_type_ref(
                        types,
                        &f.ty,
                        false,
                        &format!("field `{tname}.{fname}`"),
                        loc.clone(),
                        diags,
                    );
                    for (aname, a) in &f.args {
                        check_type_ref(
                            types,
                            &a.ty,
                            true,
                            &format!("argument `{aname}` of `{tname}.{fname}`"),
                            loc.clone(),
                            diags,
                        );
                        check_default(
                            types,
                            a,
                            &format!("argument `{aname}` of `{tname}.{fname}`"),
                            loc.clone(),
                            diags,
                        );
                    }
                }
            }
            TypeDef::InputObject(io) => {
                for (fname, f) in &io.fields {
                    check_type_ref(
                        types,
                        &f.ty,
                        true,
                        &format!("input field `{tname}.{fname}`"),
                        None,
                        diags,
                    );
                }
            }
            _ => {}
        }
    }
}

fn check_default(
    types: &IndexMap<String, TypeDef>,
    arg: &InputValueDef,
    what: &str,
    loc: Option<Location>,
    diags: &mut Diagnostics,
) {
    let Some(default) = &arg.default else { return };
    if types.get(super::named_type(&arg.ty)).is_none() {
        return;
    }
    let json = default.clone().into_json().unwrap_or(serde_json::Value::Null);
    if let Err(e) = super::coerce::coerce_input(types, &arg.ty, &json) {
        diags.error_with_hint(
            loc,
            format!("default value of {what} does not fit its type {}: {e}", arg.ty),
            "change the default or the type",
        );
    }
}

fn link_abstract_types(
    types: &mut IndexMap<String, TypeDef>,
    defs: &IndexMap<String, RawType<'_>>,
    diags: &mut Diagnostics,
) {
    let mut implementors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let snapshot: Vec<(String, Vec<String>, IndexMap<String, FieldDef>)> = types
        .values()
        .filter_map(|t| match t {
            TypeDef::Object(o) => Some((o.name.clone(), o.implements.clone(), o.fields.clone())),
            _ => None,
        })
        .collect();
    for (oname, implements, ofields) in &snapshot {
        let loc = defs.get(oname).map(|r| r.site.loc(r.pos));
        for iname in implements {
            match types.get(iname) {
                Some(TypeDef::Interface(i)) => {
                    for (fname, f) in &i.fields {
                        match ofields.get(fname) {
                            None => diags.error_with_hint(
                                loc.clone(),
                                format!("`{oname}` implements `{iname}` but lacks its field `{fname}`"),
                                format!("add `{fname}: {}` to `{oname}`", f.ty),
                            ),
                            Some(of) if of.ty.to_string() != f.ty.to_string() => diags.error(
                                loc.clone(),
                                format!(
                                    "`{oname}.{fname}` has type {} but interface `{iname}` declares {}",
                                    of.ty, f.ty
                                ),
                            ),
                            _ => {}
                        }
                    }
                    implementors.entry(iname.clone()).or_default().push(oname.clone());
                }
                _ => diags.error(
                    loc.clone(),
                    format!("`{oname}` implements `{iname}`, which is not an interface"),
                ),
            }
        }
    }
    for (iname, objs) in implementors {
        if let Some(TypeDef::Interface(i)) = types.get_mut(&iname) {
            i.possible_types = objs;
        }
    }
    let names: Vec<(String, Vec<String>)> = types
        .values()
        .filter_map(|t| match t {
            TypeDef::Union(u) => Some((u.name.clone(), u.members.clone())),
            _ => None,
        })
        .collect();
    for (uname, members) in names {
        let loc = defs.get(&uname).map(|r| r.site.loc(r.pos));
        for m in members {
            if !matches!(types.get(&m), Some(TypeDef::Object(_))) {
                diags.error(
                    loc.clone(),
                    format!("union `{uname}` member `{m}` is not an object type"),
                );
            }
        }
    }
}

/// An interface or union returned by a field needs a way to tell its concrete type.
fn check_abstract_outputs(types: &IndexMap<String, TypeDef>, sites: &FieldSites<'_>, diags: &mut Diagnostics) {
    let mut reported = HashSet::new();
    for ((tname, fname), s) in sites {
        let Some(fields) = (match types.get(tname) {
            Some(TypeDef::Object(o)) => Some(&o.fields),
            _ => None,
        }) else {
            continue;
        };
        let Some(f) = fields.get(fname) else { continue };
        if matches!(f.source, FieldSource::Resolver(_)) {
            continue;
        }
        let target = super::named_type(&f.ty);
        let (possible, has_disc) = match types.get(target) {
            Some(TypeDef::Interface(i)) => (i.possible_types.len(), i.discriminator.is_some()),
            Some(TypeDef::Union(u)) => (u.members.len(), u.discriminator.is_some()),
            _ => continue,
        };
        if possible > 1 && !has_disc && reported.insert(target.to_string()) {
            diags.error_with_hint(
                Some(s.site.loc(s.pos)),
                format!("`{tname}.{fname}` returns `{target}`, which has {possible} possible types but no @discriminator"),
                format!("add @discriminator(field: \"type\") to `{target}`: the backend JSON field naming each object's type"),
            );
        }
    }
}
