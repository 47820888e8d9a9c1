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
async fn echo_backend() -> (std::net::SocketAddr, Arc<Mutex<Vec<HashMap<String, String>>>>) {
    let seen: Arc<Mutex<Vec<HashMap<String, String>>>> = Arc::default();
    let log = seen.clone();
    let app = Router::new().route(
        "/me",
        get(move |headers: axum::http::HeaderMap| {
            let log = log.clone();
            async move {
                let h: HashMap<String, String> = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                    .collect();
                log.lock().expect("lock").push(h.clone());
                Json(
                    json!({"user": h.get("x-user").cloned(), "lang": h.get("accept-language").cloned(), "secret": "s"}),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}

const AUTH_SDL: &str = r#"
type Me { user: String lang: String secret: String @auth(scopes: ["admin"]) }
type Query {
  me: Me @http(backend: "echo", path: "/me", headers: [{name: "x-user", value: "{{claims.sub}}"}]) @auth
  open: Me @http(backend: "echo", path: "/me")
}
"#;

fn auth_toml(echo: std::net::SocketAddr) -> String {
    format!(
        "[auth]\nhs256_secret = \"s3cret\"\nissuer = \"https://issuer.test\"\n[backends.echo]\nurl = \"http://{echo}\"\nforward_headers = [\"accept-language\"]\n"
    )
}

fn token(sub: &str, scope: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + 600)
        .unwrap_or(0);
    let claims = json!({"sub": sub, "iss": "https://issuer.test", "exp": exp, "scope": scope});
    encode(&Header::default(), &claims, &EncodingKey::from_secret(b"s3cret")).expect("token")
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
        plan.security.cors_origins = vec!["https://app.test".into()];
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
