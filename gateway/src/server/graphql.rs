//! GraphQL over HTTP at the GraphQL path: POST (JSON, single or batched), GET for queries, content
//! negotiation between `application/graphql-response+json` and `application/json`, and the status
//! codes the GraphQL-over-HTTP spec gives malformed requests.
//!
//! Transport only: parsing the HTTP request into [`GraphQLRequest`]s and writing the bytes back.
//! What an operation means is the runtime's business.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::AppState;
use crate::runtime::{Executed, GraphQLRequest, OperationFilter};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// Which media type the response is written as.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum MediaType {
    GraphQLResponseJson,
    Json,
}

impl MediaType {
    fn header(self) -> HeaderValue {
        match self {
            MediaType::GraphQLResponseJson => {
                HeaderValue::from_static("application/graphql-response+json; charset=utf-8")
            }
            MediaType::Json => HeaderValue::from_static("application/json; charset=utf-8"),
        }
    }
}

/// Picks the response media type from `Accept`; `None` when nothing we can write is acceptable.
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    // The usual values, as clients send them, without parsing a list.
    match accept {
        JSON => return Some(MediaType::Json),
        GRAPHQL_RESPONSE_JSON => return Some(MediaType::GraphQLResponseJson),
        _ => {}
    }
    let mut best: Option<(MediaType, f32)> = None;
    for part in accept.split(',') {
        let mut pieces = part.split(';');
        let mime = pieces.next().unwrap_or_default().trim();
        let q = pieces
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let is = |m: &str| mime.eq_ignore_ascii_case(m);
        let media = if is(GRAPHQL_RESPONSE_JSON) {
            MediaType::GraphQLResponseJson
        } else if is(JSON) || is("application/*") || is("*/*") {
            MediaType::Json
        } else {
            continue;
        };
        if q <= 0.0 {
            continue;
        }
        let better = match best {
            None => true,
            Some((m, bq)) => q > bq || (q == bq && media == MediaType::GraphQLResponseJson && m != media),
        };
        if better {
            best = Some((media, q));
        }
    }
    best.map(|(m, _)| m)
}

/// The JSON body of one operation, as sent.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawRequest {
    query: Option<Value>,
    operation_name: Option<Value>,
    variables: Option<Value>,
    extensions: Option<Value>,
}

/// A malformed request: answered with a status and a JSON error body, no GraphQL execution.
struct Reject(StatusCode, String);

impl RawRequest {
    fn into_request(self) -> Result<GraphQLRequest, Reject> {
        let bad = |m: &str| Reject(StatusCode::BAD_REQUEST, m.to_string());
        let persisted = self
            .extensions
            .as_ref()
            .and_then(|e| e.get("persistedQuery"))
            .is_some_and(Value::is_object);
        let query = match self.query {
            Some(Value::String(q)) => q,
            Some(_) => return Err(bad("`query` must be a string")),
            // A persisted query may come by hash alone.
            None if persisted => String::new(),
            None => return Err(bad("the request has no `query`")),
        };
        let operation_name = match self.operation_name {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(bad("`operationName` must be a string")),
        };
        let variables = match self.variables {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(bad("`variables` must be an object")),
        };
        let extensions = match self.extensions {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(bad("`extensions` must be an object")),
        };
        Ok(GraphQLRequest {
            query,
            operation_name,
            variables,
            extensions,
        })
    }
}

/// Reads the whole body, at most `max` bytes. A client sending its body slowly (slowloris), or
/// promising more than it sends, gets 408 instead of holding a task: `wait` for the whole body,
/// `idle` between two of its pieces. What has already arrived is taken without arming a timer (a
/// small POST usually arrives whole with its headers): the two timers per request that
/// `to_bytes` under `tokio::time::timeout` and `TimeoutBody` cost are paid only by bodies that
/// make the server wait.
async fn read_body(mut body: Body, max: usize, wait: Duration, idle: Duration) -> Result<Bytes, Reject> {
    use axum::body::HttpBody as _;
    use futures::FutureExt;
    use http_body_util::BodyExt;
    let too_large = || {
        Reject(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body exceeds {max} bytes"),
        )
    };
    if body.size_hint().lower() > max as u64 {
        return Err(too_large());
    }
    let started = tokio::time::Instant::now();
    // A body in one piece (the usual case) is kept as it came; pieces are gathered.
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut held = 0usize;
    loop {
        let frame = match body.frame().now_or_never() {
            Some(frame) => frame,
            None => {
                let deadline = started + wait;
                let until = deadline.min(tokio::time::Instant::now() + idle);
                match tokio::time::timeout_at(until, body.frame()).await {
                    Ok(frame) => frame,
                    Err(_) => {
                        let why = if until == deadline {
                            "the request body did not arrive in time"
                        } else {
                            "the request body stopped arriving (it is shorter than its Content-Length, or stalled)"
                        };
                        return Err(Reject(StatusCode::REQUEST_TIMEOUT, why.into()));
                    }
                }
            }
        };
        let data = match frame {
            None => break,
            Some(Err(_)) => {
                return Err(Reject(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read".into(),
                ))
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                // Trailers: nothing of the request.
                Err(_) => continue,
            },
        };
        held += data.len();
        if held > max {
            return Err(too_large());
        }
        pieces.push(data);
    }
    Ok(match pieces.len() {
        1 => pieces.swap_remove(0),
        _ => Bytes::from(pieces.concat()),
    })
}

/// What is wrong with a body that did not read as a request, in the client's terms (serde's own
/// messages name our Rust types).
fn body_error(body: &[u8], e: &serde_json::Error) -> String {
    if e.is_syntax() || e.is_eof() {
        return format!("the body is not valid JSON (line {}, column {})", e.line(), e.column());
    }
    let what = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => match items.iter().position(|i| !i.is_object()) {
            Some(i) => format!(
                "operation {i} of the batch is {}; each operation must be a JSON object like {{\"query\": \"...\"}}",
                what(&items[i])
            ),
            None => "the batch is not a list of GraphQL requests".to_string(),
        },
        Ok(other) => format!(
            "the body is {}; send a JSON object like {{\"query\": \"...\"}} (or an array of them)",
            what(&other)
        ),
        Err(_) => "the body is not valid JSON".to_string(),
    }
}

fn reject(media: MediaType, Reject(status, message): Reject) -> Response {
    // A stable code for clients, as for every other error (Apollo's BAD_REQUEST for the 400s).
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "REQUEST_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        StatusCode::NOT_ACCEPTABLE => "NOT_ACCEPTABLE",
        StatusCode::REQUEST_TIMEOUT => "REQUEST_TIMEOUT",
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        _ => "BAD_REQUEST",
    };
    let body = serde_json::json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, media.header());
    resp
}

fn respond(media: MediaType, executed: Executed) -> Response {
    let status = if executed.request_error && media == MediaType::GraphQLResponseJson {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut resp = Response::new(Body::from(executed.body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, media.header());
    resp
}

/// `POST /graphql`.
pub async fn post(app: &Arc<AppState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let runtime = app.runtime();
    let (max, wait, idle) = {
        let l = &runtime.plan().limits;
        (l.max_body_bytes, l.body_timeout.0, l.body_read_timeout.0)
    };
    let body = match read_body(body, max, wait, idle).await {
        Ok(b) => b,
        Err(e) => return reject(MediaType::Json, e),
    };
    let wants_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let negotiated = if wants_sse {
        Some(MediaType::Json)
    } else {
        negotiate(&headers)
    };
    let Some(media) = negotiated else {
        return reject(
            MediaType::Json,
            Reject(
                StatusCode::NOT_ACCEPTABLE,
                "no acceptable media type: accept application/graphql-response+json or application/json".into(),
            ),
        );
    };
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case(JSON)
        });
    if !json {
        return reject(
            media,
            Reject(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the request as Content-Type: application/json".into(),
            ),
        );
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first == Some(b'[') {
        let raws: Vec<RawRequest> = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return reject(media, Reject(StatusCode::BAD_REQUEST, body_error(&body, &e))),
        };
        if raws.is_empty() {
            return reject(media, Reject(StatusCode::BAD_REQUEST, "the batch is empty".into()));
        }
        let limit = runtime.plan().limits.max_batch_operations;
        if raws.len() > limit {
            return reject(
                media,
                Reject(
                    StatusCode::BAD_REQUEST,
                    format!("a batch may hold at most {limit} operations"),
                ),
            );
        }
        let mut requests = Vec::with_capacity(raws.len());
        for raw in raws {
            match raw.into_request() {
                Ok(r) => requests.push(r),
                Err(e) => return reject(media, e),
            }
        }
        let runs = requests
            .into_iter()
            .map(|r| runtime.execute(r, &headers, OperationFilter::Any));
        let results = futures::future::join_all(runs).await;
        let mut out = Vec::with_capacity(results.iter().map(|r| r.body.len() + 1).sum::<usize>() + 2);
        out.push(b'[');
        for (i, r) in results.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&r.body);
        }
        out.push(b']');
        return respond(
            media,
            Executed {
                body: out.into(),
                request_error: false,
                not_allowed: false,
            },
        );
    }
    let raw: RawRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return reject(media, Reject(StatusCode::BAD_REQUEST, body_error(&body, &e))),
    };
    match raw.into_request() {
        Ok(req) if wants_sse => Box::pin(super::subscriptions::sse(app.clone(), req, headers)).await,
        Ok(req) => respond(media, runtime.execute(req, &headers, OperationFilter::Any).await),
        Err(e) => reject(media, e),
    }
}

/// `GET /graphql`: a WebSocket upgrade (subscriptions), or `?query=...` (queries only).
pub async fn get(app: Arc<AppState>, request: axum::extract::Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let upgrade = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        return match axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &app).await {
            Ok(ws) => super::subscriptions::upgrade(app, ws, parts.headers),
            Err(rejection) => rejection.into_response(),
        };
    }
    let query = parts.uri.query().map(str::to_string);
    get_query(app, parts.headers, query).await
}

async fn get_query(app: Arc<AppState>, headers: HeaderMap, query: Option<String>) -> Response {
    let Some(media) = negotiate(&headers) else {
        return reject(
            MediaType::Json,
            Reject(StatusCode::NOT_ACCEPTABLE, "no acceptable media type".into()),
        );
    };
    let mut raw = RawRequest::default();
    for (k, v) in form_pairs(query.as_deref().unwrap_or_default()) {
        match k.as_str() {
            "query" => raw.query = Some(Value::String(v)),
            "operationName" => raw.operation_name = Some(Value::String(v)),
            "variables" => match serde_json::from_str::<Value>(&v) {
                Ok(val) => raw.variables = Some(val),
                Err(_) => {
                    return reject(
                        media,
                        Reject(StatusCode::BAD_REQUEST, "`variables` is not valid JSON".into()),
                    )
                }
            },
            "extensions" => match serde_json::from_str::<Value>(&v) {
                Ok(val) => raw.extensions = Some(val),
                Err(_) => {
                    return reject(
                        media,
                        Reject(StatusCode::BAD_REQUEST, "`extensions` is not valid JSON".into()),
                    )
                }
            },
            _ => {}
        }
    }
    let req = match raw.into_request() {
        Ok(r) => r,
        Err(e) => return reject(media, e),
    };
    let executed = app.runtime().execute(req, &headers, OperationFilter::QueriesOnly).await;
    if executed.not_allowed {
        let mut resp = reject(
            media,
            Reject(
                StatusCode::METHOD_NOT_ALLOWED,
                "mutations must be sent with POST".into(),
            ),
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    respond(media, executed)
}

/// Any other method than GET, HEAD and POST (OPTIONS too, when CORS is not configured: a
/// preflight is answered by CORS).
pub fn method_not_allowed() -> Response {
    let mut resp = reject(
        MediaType::Json,
        Reject(
            StatusCode::METHOD_NOT_ALLOWED,
            "the GraphQL endpoint takes GET and POST".into(),
        ),
    );
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
    resp
}

/// Decodes `application/x-www-form-urlencoded` pairs (`+` is a space).
fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (
                    bytes.get(i + 1).and_then(|b| hex(*b)),
                    bytes.get(i + 2).and_then(|b| hex(*b)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).expect("valid"));
        h
    }

    #[test]
    fn negotiation_prefers_graphql_response_json_and_defaults_to_json() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(MediaType::Json));
        assert_eq!(negotiate(&accept("application/json")), Some(MediaType::Json));
        assert_eq!(
            negotiate(&accept("application/graphql-response+json")),
            Some(MediaType::GraphQLResponseJson)
        );
        assert_eq!(negotiate(&accept("application/json;q=0")), None);
        assert_eq!(
            negotiate(&accept("application/graphql-response+json, application/json")),
            Some(MediaType::GraphQLResponseJson)
        );
        assert_eq!(
            negotiate(&accept("application/json;q=0.9, application/graphql-response+json")),
            Some(MediaType::GraphQLResponseJson)
        );
        assert_eq!(negotiate(&accept("*/*")), Some(MediaType::Json));
        assert_eq!(negotiate(&accept("text/html")), None);
    }

    #[test]
    fn form_decoding_handles_plus_and_percent() {
        assert_eq!(
            form_pairs("query=%7B+a+%7D&x=%zz"),
            vec![("query".into(), "{ a }".into()), ("x".into(), "%zz".into())]
        );
    }
}
