//! `[backends.*]` → [`BackendPlan`]s: URLs (with `${VAR}` interpolated), instances, discovery,
//! timeouts and every resilience setting, each checked against its accepted range.

use super::super::{BackendId, BackendPlan};
use crate::config::{ConfigSource, Diagnostics, Location};

/// The retry budget windows tower's `TpsBudget` accepts (it panics outside).
pub(super) const BUDGET_WINDOW: std::ops::RangeInclusive<std::time::Duration> =
    std::time::Duration::from_secs(1)..=std::time::Duration::from_secs(60);

/// The retry budget and throttle ratios accepted.
pub(super) const RETRY_RATIO: std::ops::RangeInclusive<f32> = 0.0..=1000.0;

pub(super) fn build_backends(src: &ConfigSource, diags: &mut Diagnostics) -> Vec<BackendPlan> {
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

pub(super) type BreakerPlan = Option<(crate::plan::resilience::BreakerSettings, Option<std::time::Duration>)>;

/// Checks the ranges of the breaker, retry and bulkhead numbers; the breaker's settings.
pub(super) fn resilience_settings(
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

/// `${VAR}` and `${VAR:-default}` from the environment (for URLs and secrets in headers).
pub(super) fn interpolate_env(text: &str) -> String {
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
