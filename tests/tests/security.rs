//! The facade's defences: persisted operations, read-only mode, JWT authentication with `@auth`
//! and claims in templates, header forwarding rules, CORS and rate limiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::{encode, EncodingKey, Header};
use mosaic_tests::{demo_sdl, demo_toml, TestEnv};
use serde_json::{json, Value};

fn sha256(text: &str) -> String {
    mosaic_gateway::plan::documents::sha256_hex(text)
}

fn apq(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

#[tokio::test]
async fn automatic_persisted_queries_follow_the_apollo_protocol() {
    let env = TestEnv::start().await;
    let q = "{ districts { district } }";
    let hash = sha256(q);
    let first = env.post_json(&json!({"extensions": apq(&hash)})).await;
    assert_eq!(first["errors"][0]["message"], "PersistedQueryNotFound", "{first}");
    assert_eq!(first["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND");
    let register = env.post_json(&json!({"query": q, "extensions": apq(&hash)})).await;
    assert!(register["data"]["districts"].is_array(), "{register}");
    let by_hash = env.post_json(&json!({"extensions": apq(&hash)})).await;
    assert_eq!(by_hash, register, "the hash alone now runs the query");
    let resp = env
        .post_raw(
            &json!({"query": "{ transferStats { completed } }", "extensions": apq(&hash)}).to_string(),
            &[("content-type", "application/json")],
        )
        .await;
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_HASH_MISMATCH");
    env.stop().await;
}

#[tokio::test]
async fn trusted_documents_mode_runs_only_the_manifest() {
    let trusted = "{ districts { district } }";
    let dir = std::env::temp_dir().join(format!("mosaic-trusted-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let manifest = dir.join("manifest.json");
    std::fs::write(&manifest, json!({ sha256(trusted): trusted }).to_string()).expect("write");
    let env = TestEnv::start_configured(&demo_sdl(), &demo_toml(), |plan| {
        plan.trusted_documents = mosaic_gateway::plan::documents::read_manifest(&manifest).ok();
    })
    .await;
    let ok = env.graphql(trusted, json!({})).await;
    assert!(ok["data"]["districts"].is_array(), "{ok}");
    let by_id = env.post_json(&json!({"extensions": apq(&sha256(trusted))})).await;
    assert!(by_id["data"]["districts"].is_array(), "{by_id}");
    let resp = env
        .post_raw(
            &json!({"query": "{ transferStats { completed } }"}).to_string(),
            &[("content-type", "application/json")],
        )
        .await;
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNTRUSTED_DOCUMENT", "{body}");
    env.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_read_only_gateway_refuses_mutations() {
    let env = TestEnv::start_configured(&demo_sdl(), &demo_toml(), |plan| plan.security.allow_mutations = false).await;
    env.reset_stats().await;
    let resp = env
        .post_raw(
            &json!({"query": "mutation { transfer(input: {fromAccount: \"A0001\", toAccount: \"A0002\", amount: 1}) { id } }"})
                .to_string(),
            &[("content-type", "application/json")],
        )
        .await;
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
    assert!(env.calls().await.is_empty(), "no backend was called");
    env.stop().await;
}

/// A backend that answers with the headers it received.
/// `/me` at once, `/slow` after 400 ms.
async fn echo_backend() -> (std::net::SocketAddr, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/me", get(echo_headers(seen.clone(), std::time::Duration::ZERO)))
        .route(
            "/slow",
            get(echo_headers(seen.clone(), std::time::Duration::from_millis(400))),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}

type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// A handler answering with the headers it got (after `delay`), logging them in `log`.
fn echo_headers(
    log: Seen,
    delay: std::time::Duration,
) -> impl Fn(axum::http::HeaderMap) -> std::pin::Pin<Box<dyn std::future::Future<Output = Json<Value>> + Send>>
       + Clone
       + Send
       + 'static {
    move |headers: axum::http::HeaderMap| {
        let log = log.clone();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            let h: HashMap<String, String> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect();
            log.lock().expect("lock").push(h.clone());
            Json(json!({"user": h.get("x-user").cloned(), "lang": h.get("accept-language").cloned(), "secret": "s"}))
        })
    }
}

/// The gateway's HS256 secret in these tests (at least 32 bytes, as `mosaic check` requires).
const SECRET: &str = "mosaic-tests-hs256-secret-0123456789";

const AUTH_SDL: &str = r#"
type Me { user: String lang: String secret: String @auth(scopes: ["admin"]) }
type Query {
  me: Me @http(backend: "echo", path: "/me", headers: [{name: "x-user", value: "{{claims.sub}}"}]) @auth
  open: Me @http(backend: "echo", path: "/me")
  slowMe: Me @http(backend: "echo", path: "/slow", headers: [{name: "x-user", value: "{{claims.sub}}"}]) @auth
}
"#;

fn auth_toml(echo: std::net::SocketAddr) -> String {
    format!(
        "[auth]\nhs256_secret = \"{SECRET}\"\nissuer = \"https://issuer.test\"\n[backends.echo]\nurl = \"http://{echo}\"\nforward_headers = [\"accept-language\"]\n"
    )
}

fn token(sub: &str, scope: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + 600)
        .unwrap_or(0);
    let claims = json!({"sub": sub, "iss": "https://issuer.test", "exp": exp, "scope": scope});
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("token")
}

async fn query_as(env: &TestEnv, token: Option<&str>, q: &str) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json"), ("accept-language", "ko-KR")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    let resp = env.post_raw(&json!({"query": q}).to_string(), &headers).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn jwt_claims_gate_fields_and_reach_templates() {
    let (echo, seen) = echo_backend().await;
    let env = TestEnv::start_with(AUTH_SDL, &auth_toml(echo)).await;

    // Anonymous: the @auth field is refused without calling the backend.
    let (status, body) = query_as(&env, None, "{ me { user } }").await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["me"], Value::Null, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
    assert!(seen.lock().expect("lock").is_empty(), "no call for a refused field");

    // A valid token: the subject goes to the backend through {{claims.sub}}.
    let t = token("alice", "read");
    let (_, body) = query_as(&env, Some(&t), "{ me { user lang } }").await;
    assert_eq!(body["data"]["me"]["user"], "alice", "{body}");
    assert_eq!(body["data"]["me"]["lang"], "ko-KR", "accept-language is forwarded");

    // A missing scope: FORBIDDEN on that field only.
    let (_, body) = query_as(&env, Some(&t), "{ me { user secret } }").await;
    assert_eq!(body["data"]["me"]["user"], "alice");
    assert_eq!(body["data"]["me"]["secret"], Value::Null);
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
    let admin = token("bob", "read admin");
    let (_, body) = query_as(&env, Some(&admin), "{ me { secret } }").await;
    assert_eq!(body["data"]["me"]["secret"], "s", "{body}");

    // An invalid token: 401 before any GraphQL work.
    let (status, body) = query_as(&env, Some("not.a.token"), "{ open { user } }").await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    // Headers not listed are never forwarded; the client's authorization stays at the gateway.
    for h in seen.lock().expect("lock").iter() {
        assert!(!h.contains_key("authorization"), "{h:?}");
        assert!(!h.contains_key("cookie"), "{h:?}");
    }
    env.stop().await;
}

#[tokio::test]
async fn cors_is_strict_unless_origins_are_configured() {
    let env = TestEnv::start().await;
    let resp = env
        .get_with(
            "/graphql?query=%7Bdistricts%7Bdistrict%7D%7D",
            &[("origin", "https://evil.test")],
        )
        .await;
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    env.stop().await;
    let env = TestEnv::start_configured(&demo_sdl(), &demo_toml(), |plan| {
        plan.security.cors_origins = vec![toml::Spanned::new(0..0, "https://app.test".into())];
    })
    .await;
    let resp = env
        .get_with(
            "/graphql?query=%7Bdistricts%7Bdistrict%7D%7D",
            &[("origin", "https://app.test")],
        )
        .await;
    assert_eq!(
        resp.headers().get("access-control-allow-origin").map(|v| v.as_bytes()),
        Some(&b"https://app.test"[..])
    );
    let resp = env
        .get_with(
            "/graphql?query=%7Bdistricts%7Bdistrict%7D%7D",
            &[("origin", "https://evil.test")],
        )
        .await;
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    env.stop().await;
}

#[tokio::test]
async fn clients_over_their_rate_get_429_with_retry_after() {
    let env = TestEnv::start_configured(&demo_sdl(), &demo_toml(), |plan| {
        plan.rate_limit.requests_per_second = 1;
        plan.rate_limit.burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let resp = env
            .post_raw(
                &json!({"query": "{ districts { district } }"}).to_string(),
                &[("content-type", "application/json")],
            )
            .await;
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body: Value = resp.json().await.expect("json");
            assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    assert!(retry_after.is_some_and(|r| r.parse::<u64>().is_ok_and(|n| n >= 1)));
    env.stop().await;
}

#[tokio::test]
async fn an_identical_query_in_flight_is_never_shared_across_identities() {
    let (echo, _) = echo_backend().await;
    let env = TestEnv::start_with(AUTH_SDL, &auth_toml(echo)).await;
    let alice = token("alice", "read");
    let q = "{ slowMe { user } }";
    // Alice's query waits 400 ms on the backend; the same query sent meanwhile by someone else
    // (anonymous, then bob) must not get her answer.
    let (as_alice, anonymous, as_bob) = tokio::join!(
        query_as(&env, Some(&alice), q),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            query_as(&env, None, q).await
        },
        async {
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            query_as(&env, Some(&token("bob", "read")), q).await
        }
    );
    assert_eq!(as_alice.1["data"]["slowMe"]["user"], "alice", "{:?}", as_alice.1);
    assert_eq!(anonymous.1["data"]["slowMe"], Value::Null, "{:?}", anonymous.1);
    assert_eq!(anonymous.1["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(as_bob.1["data"]["slowMe"]["user"], "bob", "{:?}", as_bob.1);
    env.stop().await;
}

/// POSTs `body` asking for Server-Sent Events; returns each `next` event's JSON.
async fn sse(env: &TestEnv, body: Value, bearer: Option<&str>) -> Vec<Value> {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json"), ("accept", "text/event-stream")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    let resp = env.post_raw(&body.to_string(), &headers).await;
    assert_eq!(resp.status(), 200);
    let text = tokio::time::timeout(std::time::Duration::from_secs(10), resp.text())
        .await
        .expect("the stream ends")
        .expect("readable");
    text.split("\n\n")
        .filter(|e| e.starts_with("event: next"))
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).expect("JSON data"))
        .collect()
}

#[tokio::test]
async fn operations_over_sse_keep_the_callers_identity() {
    let (echo, _) = echo_backend().await;
    let env = TestEnv::start_with(AUTH_SDL, &auth_toml(echo)).await;
    let events = sse(&env, json!({"query": "{ me { user } }"}), Some(&token("alice", "read"))).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["me"]["user"], "alice", "{events:?}");
    let events = sse(&env, json!({"query": "{ me { user } }"}), None).await;
    assert_eq!(
        events[0]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{events:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn sse_and_websocket_operations_obey_read_only_mode_and_trusted_documents() {
    let trusted = "{ districts { district } }";
    let dir = std::env::temp_dir().join(format!("mosaic-trusted-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let manifest = dir.join("manifest.json");
    std::fs::write(&manifest, json!({ sha256(trusted): trusted }).to_string()).expect("write");
    let env = TestEnv::start_configured(&demo_sdl(), &demo_toml(), |plan| {
        plan.security.allow_mutations = false;
        plan.trusted_documents = mosaic_gateway::plan::documents::read_manifest(&manifest).ok();
    })
    .await;
    env.reset_stats().await;
    let events = sse(&env, json!({"query": trusted}), None).await;
    assert!(events[0]["data"]["districts"].is_array(), "{events:?}");
    let events = sse(&env, json!({"query": "{ transferStats { completed } }"}), None).await;
    assert_eq!(
        events[0]["errors"][0]["extensions"]["code"], "UNTRUSTED_DOCUMENT",
        "{events:?}"
    );

    // Over WebSocket: a mutation (even a "trusted" one would be refused) and an untrusted query.
    let mut ws = ws_connect(&env, json!({})).await;
    let mutation = "mutation { transfer(input: {fromAccount: \"A0001\", toAccount: \"A0002\", amount: 1}) { id } }";
    ws_send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": mutation}}),
    )
    .await;
    let answer = ws_next(&mut ws).await;
    assert_eq!(answer["type"], "error", "{answer}");
    let code = &answer["payload"][0]["extensions"]["code"];
    assert!(code == "FORBIDDEN" || code == "UNTRUSTED_DOCUMENT", "{answer}");
    ws_send(
        &mut ws,
        json!({"id": "2", "type": "subscribe", "payload": {"query": "{ transferStats { completed } }"}}),
    )
    .await;
    let answer = ws_next(&mut ws).await;
    assert_eq!(
        answer["payload"][0]["extensions"]["code"], "UNTRUSTED_DOCUMENT",
        "{answer}"
    );
    let transfers_called = env.calls().await.keys().any(|k| k.contains("transfers"));
    assert!(!transfers_called, "no call reached the transfers service");
    env.stop().await;

    // Read-only alone: a mutation over WebSocket is FORBIDDEN.
    let env = TestEnv::start_configured(&demo_sdl(), &demo_toml(), |plan| plan.security.allow_mutations = false).await;
    let mut ws = ws_connect(&env, json!({})).await;
    ws_send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": mutation}}),
    )
    .await;
    let answer = ws_next(&mut ws).await;
    assert_eq!(answer["payload"][0]["extensions"]["code"], "FORBIDDEN", "{answer}");
    let events = sse(&env, json!({"query": mutation}), None).await;
    assert_eq!(events[0]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{events:?}");
    env.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A graphql-transport-ws connection, acknowledged after `connection_init` with `payload`.
async fn ws_connect(env: &TestEnv, payload: Value) -> Ws {
    let (mut ws, _) = ws_open(env).await;
    ws_send(&mut ws, json!({"type": "connection_init", "payload": payload})).await;
    let ack = ws_next(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws
}

async fn ws_open(env: &TestEnv) -> (Ws, tokio_tungstenite::tungstenite::http::Response<Option<Vec<u8>>>) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/graphql", env.gateway)
        .into_client_request()
        .expect("a request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("a header value"),
    );
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .expect("connects in time")
    .expect("connects")
}

async fn ws_send(ws: &mut Ws, v: Value) {
    use futures::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(v.to_string().into()))
        .await
        .expect("sent");
}

/// The next text message as JSON, or `{"close": code}` when the server closes.
async fn ws_next(ws: &mut Ws) -> Value {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("an answer in time");
        match msg {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).expect("JSON"),
            Some(Ok(Message::Close(frame))) => return json!({"close": frame.map(|f| u16::from(f.code)).unwrap_or(0)}),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return json!({"close": 0}),
        }
    }
}

#[tokio::test]
async fn a_websocket_authenticates_with_its_connection_init_payload() {
    let (echo, _) = echo_backend().await;
    let env = TestEnv::start_with(AUTH_SDL, &auth_toml(echo)).await;
    let alice = token("alice", "read");
    let mut ws = ws_connect(&env, json!({"Authorization": format!("Bearer {alice}")})).await;
    ws_send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "{ me { user } }"}}),
    )
    .await;
    let answer = ws_next(&mut ws).await;
    assert_eq!(answer["payload"]["data"]["me"]["user"], "alice", "{answer}");

    // Anonymous connection: the @auth field is refused.
    let mut ws = ws_connect(&env, json!({})).await;
    ws_send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "{ me { user } }"}}),
    )
    .await;
    let answer = ws_next(&mut ws).await;
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{answer}"
    );

    // An invalid token: the connection is closed with 4403.
    let (mut ws, _) = ws_open(&env).await;
    ws_send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"authorization": "Bearer not.a.token"}}),
    )
    .await;
    assert_eq!(ws_next(&mut ws).await, json!({"close": 4403}));
    env.stop().await;
}

#[tokio::test]
async fn auth_on_a_subscription_field_is_checked_before_the_stream_opens() {
    let sdl = demo_sdl().replace(
        "@stream(backend: \"ledger\", path: \"/districts/{{args.district}}/stream\")",
        "@stream(backend: \"ledger\", path: \"/districts/{{args.district}}/stream\") @auth",
    );
    assert_ne!(
        sdl,
        demo_sdl(),
        "the demo's subscription field is where this test expects it"
    );
    let toml = format!("{}\n[auth]\nhs256_secret = \"{SECRET}\"\n", demo_toml());
    let env = TestEnv::start_with(&sdl, &toml).await;
    env.reset_stats().await;
    let subscription = "subscription { districtBalance(district: \"Gangnam-gu\") { totalBalance } }";
    let events = sse(&env, json!({"query": subscription}), None).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{events:?}"
    );
    let ledger_streams = env.calls().await.get("ledger").map_or(0, |endpoints| {
        endpoints.keys().filter(|k| k.contains("/stream")).count()
    });
    assert_eq!(ledger_streams, 0, "the backend stream was never opened");
    env.stop().await;
}

#[tokio::test]
async fn cors_star_allows_any_origin_without_credentials_and_preflights_allow_tracing_headers() {
    let env = TestEnv::start_configured(&demo_sdl(), &demo_toml(), |plan| {
        plan.security.cors_origins = vec![toml::Spanned::new(0..0, "*".into())];
    })
    .await;
    let header =
        |r: &reqwest::Response, name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let resp = env
        .get_with(
            "/graphql?query=%7Bdistricts%7Bdistrict%7D%7D",
            &[("origin", "https://anyone.test")],
        )
        .await;
    assert_eq!(header(&resp, "access-control-allow-origin").as_deref(), Some("*"));
    assert!(resp.headers().get("access-control-allow-credentials").is_none());
    assert_eq!(
        header(&resp, "access-control-expose-headers").as_deref(),
        Some("x-request-id")
    );
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, env.url("/graphql"))
        .header("origin", "https://anyone.test")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization, traceparent",
        )
        .send()
        .await
        .expect("the preflight is answered");
    let allowed = header(&preflight, "access-control-allow-headers").unwrap_or_default();
    for h in ["content-type", "authorization", "traceparent", "x-request-id"] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
    env.stop().await;
}

/// A JWKS server whose key set can be swapped (a key rotation at the identity provider); counts
/// its fetches.
async fn jwks_server(
    initial: &str,
) -> (
    std::net::SocketAddr,
    Arc<Mutex<String>>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    let set = Arc::new(Mutex::new(initial.to_string()));
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (s, f) = (set.clone(), fetches.clone());
    let app = Router::new().route(
        "/jwks.json",
        get(move || {
            let (s, f) = (s.clone(), f.clone());
            async move {
                f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let body = s.lock().expect("lock").clone();
                ([("content-type", "application/json")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, set, fetches)
}

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/jwt")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An ES256 token signed with the fixture key `kid` (`es256-<kid>.pem`).
fn es256_token(kid: &str, sub: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + 600)
        .unwrap_or(0);
    let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.to_string());
    let key = EncodingKey::from_ec_pem(fixture(&format!("es256-{kid}.pem")).as_bytes()).expect("a PKCS#8 EC key");
    encode(&header, &json!({"sub": sub, "exp": exp, "scope": "read"}), &key).expect("token")
}

#[tokio::test]
async fn jwks_keys_without_alg_verify_es256_and_a_rotated_kid_is_fetched_at_once() {
    let (echo, seen) = echo_backend().await;
    // The fixtures' keys carry no "alg": EC P-256 means ES256.
    let (idp, set, fetches) = jwks_server(&fixture("jwks-k1.json")).await;
    let toml = format!(
        "[auth]\njwks_url = \"http://{idp}/jwks.json\"\njwks_refresh = \"1h\"\n[backends.echo]\nurl = \"http://{echo}\"\n"
    );
    let env = TestEnv::start_with(AUTH_SDL, &toml).await;
    // The first fetch happens in the background at start.
    for _ in 0..100 {
        if fetches.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (status, body) = query_as(&env, Some(&es256_token("k1", "alice")), "{ me { user } }").await;
    assert_eq!((status, &body["data"]["me"]["user"]), (200, &json!("alice")), "{body}");

    // The provider rotates to k2; a k2 token arrives before the hourly refresh: fetched at once.
    *set.lock().expect("lock") = fixture("jwks-k2.json");
    let before = fetches.load(std::sync::atomic::Ordering::SeqCst);
    let (status, body) = query_as(&env, Some(&es256_token("k2", "bob")), "{ me { user } }").await;
    assert_eq!((status, &body["data"]["me"]["user"]), (200, &json!("bob")), "{body}");
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), before + 1);

    // Made-up kids cannot make the gateway hammer the provider: one fetch per 10 s at most.
    let before = fetches.load(std::sync::atomic::Ordering::SeqCst);
    for i in 0..5 {
        let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(format!("unknown-{i}"));
        let key = EncodingKey::from_ec_pem(fixture("es256-k1.pem").as_bytes()).expect("key");
        let t = encode(&header, &json!({"sub": "mallory", "exp": 4_000_000_000u64}), &key).expect("token");
        let (status, _) = query_as(&env, Some(&t), "{ open { user } }").await;
        assert_eq!(status, 401);
    }
    assert_eq!(
        fetches.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "no fetch for unknown kids within 10 s of the last one"
    );
    assert!(seen.lock().expect("lock").len() >= 2);
    env.stop().await;
}

#[tokio::test]
async fn refused_tokens_count_against_the_address_rate() {
    let (echo, _) = echo_backend().await;
    let toml = format!(
        "{}[rate_limit]\nrequests_per_second = 1\nburst = 3\nkey = \"subject\"\n",
        auth_toml(echo)
    );
    let env = TestEnv::start_with(AUTH_SDL, &toml).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (status, _) = query_as(&env, Some("not.a.token"), "{ open { user } }").await;
        statuses.push(status);
    }
    assert_eq!(&statuses[..3], &[401, 401, 401], "{statuses:?}");
    assert!(
        statuses[3..].contains(&429),
        "guessing tokens is rate limited: {statuses:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn replicas_share_a_clients_rate_through_redis_and_fall_back_to_their_own_without_it() {
    use mosaic_tests::infra::{redis_available, RedisServer};
    if !redis_available("replicas_share_a_clients_rate_through_redis") {
        return;
    }
    let mut redis = RedisServer::start();
    let url = redis.url();
    let shared = |plan: &mut mosaic_gateway::plan::Plan| {
        plan.rate_limit.requests_per_second = 1;
        plan.rate_limit.burst = 4;
        plan.rate_limit.redis_url = toml::Spanned::new(0..0, url.clone());
        plan.rate_limit.redis_timeout =
            mosaic_gateway::config::settings::HumanDuration(std::time::Duration::from_millis(500));
    };
    let one = TestEnv::start_configured(&demo_sdl(), &demo_toml(), shared).await;
    let two = TestEnv::start_configured(&demo_sdl(), &demo_toml(), shared).await;
    let status = |env: &TestEnv| {
        let url = env.url("/graphql?query=%7B__typename%7D");
        async move { reqwest::get(url).await.map(|r| r.status().as_u16()).unwrap_or(0) }
    };
    // Both replicas connect in the background.
    let mut connected = false;
    for _ in 0..100 {
        if redis.cli(&["--scan", "--pattern", "mosaic:rl:*"]).trim().is_empty() {
            let _ = status(&one).await;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        } else {
            connected = true;
            break;
        }
    }
    assert!(connected, "the limiter never wrote to Redis");
    redis.cli(&["FLUSHALL"]);
    // A burst of 4 for the client, whichever replica it reaches: 2 + 2 pass, then both refuse.
    let mut statuses = Vec::new();
    for env in [&one, &two, &one, &two, &one, &two] {
        statuses.push(status(env).await);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429], "one budget across replicas");

    // Redis gone: each replica decides with its own buckets (full burst each), never an error.
    redis.kill();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(status(&two).await);
    }
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert!(
        statuses.contains(&200),
        "the local buckets serve while Redis is down: {statuses:?}"
    );
    one.stop().await;
    two.stop().await;
}
