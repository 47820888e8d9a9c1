//! GraphQL over HTTP: request parsing, validation and execution, through the gateway's HTTP service.
//!
//! The service is built once (the demo bank schema, every backend at `http://127.0.0.1:1` so
//! calls fail at once, retries off) on a current-thread runtime; each input becomes one HTTP
//! request, sent with `oneshot`, its response body read to the end. The first byte picks the
//! shape of the request (see [`Variant`]), the rest is its content. Nothing may panic, no request
//! may take longer than [`PER_INPUT`], and a response that says it is JSON must be JSON.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use http::{header, HeaderValue, Method, Request, Uri};
use libfuzzer_sys::fuzz_target;
use mosaic_gateway::cli::build_plan;
use mosaic_gateway::config::{load_from_sources, SourceFile};
use mosaic_gateway::runtime::{ResolverRegistry, Runtime};
use mosaic_gateway::server::{app, AppState, Gateway};
use tower::ServiceExt;

const CONFIG: &str = include_str!("../../schema/mosaic.toml");
const SCHEMA: &str = include_str!("../../schema/bank.graphql");

/// A request that takes longer than this is a finding (a hang), not a slow backend: every backend
/// refuses connections at once.
const PER_INPUT: Duration = Duration::from_secs(2);

/// Where no backend listens: every call fails fast with "connection refused".
const NOWHERE: &str = "http://127.0.0.1:1";

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

struct Harness {
    rt: tokio::runtime::Runtime,
    router: Gateway,
    path: String,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        // Inside the runtime: building the backend clients may spawn tasks.
        let (router, path) = rt.block_on(async {
            let mut src = load_from_sources(
                SourceFile::new("schema/mosaic.toml", CONFIG),
                vec![SourceFile::new("schema/bank.graphql", SCHEMA)],
            )
            .unwrap_or_else(|d| panic!("the demo config does not load:\n{d}"));
            let backends: Vec<String> = src.settings.backends.keys().cloned().collect();
            for b in &backends {
                src.set_backend_url(b, NOWHERE);
            }
            let resolvers = ResolverRegistry::new();
            let mut plan =
                build_plan(&src, &resolvers).unwrap_or_else(|d| panic!("the demo config is invalid:\n{d}"));
            for b in &mut plan.backends {
                b.retry.attempts = 1;
            }
            let path = plan.server.graphql_path.clone();
            let runtime = Runtime::new(plan, resolvers).unwrap_or_else(|e| panic!("the runtime builds: {e}"));
            let state = Arc::new(AppState::new(Arc::new(runtime)));
            state.set_ready(true);
            (app(state), path)
        });
        Harness { rt, router, path }
    })
}

/// How the rest of the input becomes a request (the first byte, modulo their number).
#[derive(Debug, Clone, Copy)]
enum Variant {
    /// POST, `Content-Type: application/json`, the rest as the body (raw JSON, batches too).
    PostJson,
    /// The same, accepting `application/graphql-response+json` (400s for request errors).
    PostJsonGraphqlResponse,
    /// GET with the rest as the raw query string (skipped if it is not a valid URI).
    GetRawQueryString,
    /// GET with the rest as the GraphQL document (`?query=`, percent-encoded).
    GetDocument,
    /// POST `{"query": rest}`: the rest as the GraphQL document.
    PostDocument,
    /// POST a batch: the rest split at NUL bytes, one `{"query": part}` each.
    PostBatch,
    /// POST with free headers: `Accept` line, `Content-Type` line, then the body.
    PostFreeHeaders,
    /// POST `{"query": doc, "variables": vars, "operationName": name}` from `doc NUL vars NUL name`
    /// (`vars` is raw JSON, so it may be anything).
    PostDocumentVariables,
    /// GET the rest as the path and query (the other routes: probes, playground assets).
    GetAnyPath,
}

const VARIANTS: [Variant; 9] = [
    Variant::PostJson,
    Variant::PostJsonGraphqlResponse,
    Variant::GetRawQueryString,
    Variant::GetDocument,
    Variant::PostDocument,
    Variant::PostBatch,
    Variant::PostFreeHeaders,
    Variant::PostDocumentVariables,
    Variant::GetAnyPath,
];

fn json_string(bytes: &[u8]) -> String {
    serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()).to_string()
}

/// `application/x-www-form-urlencoded` value encoding.
fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn split_once(bytes: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    match bytes.iter().position(|&b| b == sep) {
        Some(i) => (&bytes[..i], Some(&bytes[i + 1..])),
        None => (bytes, None),
    }
}

fn post(path: &str, accept: Option<&[u8]>, content_type: Option<&[u8]>, body: Vec<u8>) -> Option<Request<Body>> {
    let mut req = Request::builder().method(Method::POST).uri(path);
    if let Some(a) = accept.and_then(|a| HeaderValue::from_bytes(a).ok()) {
        req = req.header(header::ACCEPT, a);
    }
    if let Some(c) = content_type.and_then(|c| HeaderValue::from_bytes(c).ok()) {
        req = req.header(header::CONTENT_TYPE, c);
    }
    req.body(Body::from(body)).ok()
}

fn get(uri: Uri, accept: Option<&str>) -> Option<Request<Body>> {
    let mut req = Request::builder().method(Method::GET).uri(uri);
    if let Some(a) = accept {
        req = req.header(header::ACCEPT, a);
    }
    req.body(Body::empty()).ok()
}

fn request(variant: Variant, rest: &[u8], path: &str) -> Option<Request<Body>> {
    let json = Some(JSON.as_bytes());
    let gr = Some(GRAPHQL_RESPONSE_JSON.as_bytes());
    match variant {
        Variant::PostJson => post(path, None, json, rest.to_vec()),
        Variant::PostJsonGraphqlResponse => post(
            path,
            gr,
            Some(b"application/json; charset=utf-8"),
            rest.to_vec(),
        ),
        Variant::GetRawQueryString => {
            let mut uri = format!("{path}?").into_bytes();
            uri.extend_from_slice(rest);
            get(Uri::try_from(uri).ok()?, Some(GRAPHQL_RESPONSE_JSON))
        }
        Variant::GetDocument => {
            let uri = format!("{path}?query={}", percent_encode(rest));
            get(Uri::try_from(uri).ok()?, None)
        }
        Variant::PostDocument => {
            let body = format!("{{\"query\":{}}}", json_string(rest));
            post(path, gr, json, body.into_bytes())
        }
        Variant::PostBatch => {
            let parts: Vec<String> = rest
                .split(|&b| b == 0)
                .map(|p| format!("{{\"query\":{}}}", json_string(p)))
                .collect();
            post(path, None, json, format!("[{}]", parts.join(",")).into_bytes())
        }
        Variant::PostFreeHeaders => {
            let (accept, rest) = split_once(rest, b'\n');
            let (content_type, body) = match rest {
                Some(r) => split_once(r, b'\n'),
                None => (&[][..], None),
            };
            post(
                path,
                Some(accept),
                Some(content_type),
                body.unwrap_or_default().to_vec(),
            )
        }
        Variant::PostDocumentVariables => {
            let (doc, rest) = split_once(rest, 0);
            let (vars, name) = match rest {
                Some(r) => split_once(r, 0),
                None => (&b"null"[..], None),
            };
            let mut body = format!("{{\"query\":{},\"variables\":", json_string(doc)).into_bytes();
            body.extend_from_slice(if vars.is_empty() { b"null" } else { vars });
            if let Some(name) = name {
                body.extend_from_slice(format!(",\"operationName\":{}", json_string(name)).as_bytes());
            }
            body.push(b'}');
            post(path, gr, json, body)
        }
        Variant::GetAnyPath => {
            let mut uri = Vec::with_capacity(rest.len() + 1);
            if rest.first() != Some(&b'/') {
                uri.push(b'/');
            }
            uri.extend_from_slice(rest);
            get(Uri::try_from(uri).ok()?, None)
        }
    }
}

fn says_json(content_type: Option<&HeaderValue>) -> bool {
    let Some(ct) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    mime == JSON || mime == GRAPHQL_RESPONSE_JSON
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let h = harness();
    let variant = VARIANTS[usize::from(first) % VARIANTS.len()];
    let Some(req) = request(variant, rest, &h.path) else {
        return;
    };
    let uri = req.uri().clone();
    let router = h.router.clone();
    h.rt.block_on(async move {
        let exchange = async {
            let response = router.oneshot(req).await.expect("the service is infallible");
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await;
            (parts, body)
        };
        let (parts, body) = match tokio::time::timeout(PER_INPUT, exchange).await {
            Ok(r) => r,
            Err(_) => panic!("{variant:?} {uri}: no complete response within {PER_INPUT:?}"),
        };
        let body = body.unwrap_or_else(|e| panic!("{variant:?} {uri}: the response body fails: {e}"));
        if says_json(parts.headers.get(header::CONTENT_TYPE)) {
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&body) {
                panic!(
                    "{variant:?} {uri}: status {} says {:?} but the body is not JSON ({e}): {:?}",
                    parts.status,
                    parts.headers.get(header::CONTENT_TYPE),
                    String::from_utf8_lossy(&body[..body.len().min(512)])
                );
            }
        }
    });
});
