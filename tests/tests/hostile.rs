//! Hostile input: every case gets a clear error (or a closed connection, for transport abuse)
//! within a bounded time, the gateway never panics, no backend is called for a rejected query,
//! and memory stays bounded (RSS measured before and after the whole suite).

use std::time::{Duration, Instant};

use mosaic_tests::TestEnv;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// POSTs `query` and returns (status, body) within 10 s.
async fn post(env: &TestEnv, body: &str) -> (u16, Value) {
    let started = Instant::now();
    let resp = env
        .post_raw(
            body,
            &[
                ("content-type", "application/json"),
                ("accept", "application/graphql-response+json"),
            ],
        )
        .await;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert!(started.elapsed() < Duration::from_secs(10), "answered in bounded time");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_documents_get_clear_errors_without_reaching_any_backend() {
    let env = TestEnv::start().await;
    let before = rss_kib();
    env.reset_stats().await;

    // A 1 MiB nesting bomb: refused for its size before parsing.
    let bomb = format!("{}{}", "{customers{accounts".repeat(40_000), "}".repeat(80_000));
    let started = Instant::now();
    let (status, body) = post(&env, &json!({"query": &bomb[..bomb.len().min(1 << 20)]}).to_string()).await;
    assert_eq!((status, code(&body).as_str()), (400, "QUERY_TOO_LARGE"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "rejected fast: {:?}",
        started.elapsed()
    );

    // Deep nesting within the size limit.
    let deep = format!(
        "{{ customers {{ {} id {} }} }}",
        "accounts { owner { ".repeat(12),
        "} } ".repeat(12)
    );
    let (status, body) = post(&env, &json!({ "query": deep }).to_string()).await;
    assert_eq!((status, code(&body).as_str()), (400, "QUERY_TOO_DEEP"), "{body}");

    // Thousands of levels in a few KiB: refused before the parser recurses into them.
    let nested = format!("{}{}", "{a".repeat(3000), "}".repeat(3000));
    let started = Instant::now();
    let (status, body) = post(&env, &json!({ "query": nested }).to_string()).await;
    assert_eq!((status, code(&body).as_str()), (400, "QUERY_TOO_DEEP"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());

    // An alias bomb.
    let aliases: String = (0..500).map(|i| format!("a{i}: districts {{ district }} ")).collect();
    let (status, body) = post(&env, &json!({ "query": format!("{{ {aliases} }}") }).to_string()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        matches!(code(&body).as_str(), "TOO_MANY_ALIASES" | "TOO_MANY_ROOT_FIELDS"),
        "{body}"
    );

    // Thousands of root fields (no alias, same field): refused for their number.
    let roots = "transferStats { completed } ".repeat(500);
    let (status, body) = post(&env, &json!({ "query": format!("{{ {roots} }}") }).to_string()).await;
    assert_eq!((status, code(&body).as_str()), (400, "TOO_MANY_ROOT_FIELDS"), "{body}");

    // A fragment bomb: each fragment spreads the previous one twice (2^30 fields if expanded).
    let mut frags = String::from("fragment F0 on Customer { id }\n");
    for i in 1..30 {
        frags.push_str(&format!(
            "fragment F{i} on Customer {{ ...F{} ...F{} }}\n",
            i - 1,
            i - 1
        ));
    }
    let started = Instant::now();
    let (status, body) = post(
        &env,
        &json!({ "query": format!("{{ customers {{ ...F29 }} }}\n{frags}") }).to_string(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a fragment bomb is rejected in linear time"
    );

    // The same at the root (2^40 root fields once spread): counted without spreading them.
    let mut frags = String::from("fragment R0 on Query { __typename }\n");
    for i in 1..=40 {
        frags.push_str(&format!("fragment R{i} on Query {{ ...R{} ...R{} }}\n", i - 1, i - 1));
    }
    let started = Instant::now();
    let (status, body) = post(&env, &json!({ "query": format!("{{ ...R40 }}\n{frags}") }).to_string()).await;
    assert_eq!((status, code(&body).as_str()), (400, "TOO_MANY_ROOT_FIELDS"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a root fragment fan-out is refused in linear time: {:?}",
        started.elapsed()
    );

    // A fragment cycle: a validation error.
    let cycle = "{ customers { ...A } } fragment A on Customer { ...B } fragment B on Customer { ...A }";
    let (status, body) = post(&env, &json!({ "query": cycle }).to_string()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(code(&body), "FRAGMENT_CYCLE", "{body}");

    // A costly query: the cost multiplies list sizes.
    let costly = "{ customers(limit: 500) { accounts { transfers(last: 100) { source { owner { id } } } } } }";
    let (status, body) = post(&env, &json!({ "query": costly }).to_string()).await;
    assert_eq!((status, code(&body).as_str()), (400, "QUERY_TOO_COMPLEX"), "{body}");

    // The same cost through a variable is checked per request, after the document is cached.
    let q = "query Q($n: Int) { customers(limit: $n) { accounts { transfers(last: 100) { id } } } }";
    let (status, _) = post(&env, &json!({ "query": q, "variables": {"n": 2} }).to_string()).await;
    assert_eq!(status, 200);
    let (status, body) = post(&env, &json!({ "query": q, "variables": {"n": 100000} }).to_string()).await;
    assert_eq!((status, code(&body).as_str()), (400, "QUERY_TOO_COMPLEX"), "{body}");

    // Wrong variable types: a request error, no backend call.
    let q = "query Q($id: ID!) { customer(id: $id) { name } }";
    let (status, body) = post(
        &env,
        &json!({ "query": q, "variables": {"id": {"nested": [1, 2]}} }).to_string(),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // A huge string variable and a huge list variable, within the body limit.
    let big = "x".repeat(900_000);
    let (status, body) = post(&env, &json!({ "query": "query Q($d: String) { customers(district: $d, limit: 1) { id } }", "variables": {"d": big} }).to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        code(&body),
        "BAD_USER_INPUT",
        "a URL over max_url_bytes is not sent: {body}"
    );
    assert_eq!(body["data"]["customers"], Value::Null, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("too long") && !message.contains("xxxx"), "{message}");
    let list: Vec<u32> = (0..100_000).collect();
    let (status, body) = post(&env, &json!({ "query": "query Q($d: String) { customers(district: $d, limit: 1) { id } }", "variables": {"d": list} }).to_string()).await;
    assert_eq!(status, 400, "a list for a String is refused: {body}");

    // Nothing above reached a backend except the accepted queries (one call per level each).
    let calls = env.calls().await;
    for service in ["external-bank", "ledger"] {
        assert!(!calls.contains_key(service), "{service} was called: {calls:?}");
    }
    for service in ["customers", "accounts", "transfers"] {
        let n: u64 = calls.get(service).map(|e| e.values().sum()).unwrap_or(0);
        assert!(n <= 1, "only the accepted query called {service}: {calls:?}");
    }

    let after = rss_kib();
    env.stop().await;
    assert!(after < before + 200 * 1024, "RSS grew from {before} KiB to {after} KiB");
    println!("RSS before {before} KiB, after the hostile documents {after} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_requests_are_refused_with_the_right_status() {
    let env = TestEnv::start().await;
    // Invalid UTF-8 and malformed JSON.
    let resp = env
        .http
        .post(env.graphql_url())
        .header("content-type", "application/json")
        .body(vec![b'{', 0xff, 0xfe, b'}'])
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status(), 400);
    let (status, _) = post(&env, "{\"query\": ").await;
    assert_eq!(status, 400);
    // Wrong content type.
    let resp = env
        .post_raw(
            "{\"query\":\"{ transferStats { completed } }\"}",
            &[("content-type", "text/plain")],
        )
        .await;
    assert_eq!(resp.status(), 415);
    // An oversized body.
    let huge = format!("{{\"query\": \"{}\"}}", "a".repeat(2 << 20));
    let resp = env.post_raw(&huge, &[("content-type", "application/json")]).await;
    assert_eq!(resp.status(), 413);
    // A batch of 10,000 operations.
    let batch: Vec<Value> = (0..10_000)
        .map(|_| json!({"query": "{ transferStats { completed } }"}))
        .collect();
    let resp = env
        .post_raw(
            &Value::Array(batch).to_string(),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(resp.status(), 400);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_body_is_cut_off() {
    let env = TestEnv::start_with_limits(|l| {
        l.body_timeout = mosaic_gateway::config::HumanDuration(Duration::from_millis(500))
    })
    .await;
    let mut conn = tokio::net::TcpStream::connect(env.gateway).await.expect("connect");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"qu",
        env.gateway
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    let started = Instant::now();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut answer))
        .await
        .expect("the gateway answers within the body timeout")
        .expect("read");
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_init_floods_are_closed() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    let env = TestEnv::start_with_limits(|l| {
        l.ws_init_timeout = mosaic_gateway::config::HumanDuration(Duration::from_millis(300))
    })
    .await;
    let url = format!("ws://{}/graphql", env.gateway);
    let request = || {
        let mut r = url.clone().into_client_request().expect("request");
        r.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        r
    };
    // 50 connections that never send connection_init: all closed after the init timeout.
    let mut idle = Vec::new();
    for _ in 0..50 {
        let (ws, _) = tokio_tungstenite::connect_async(request()).await.expect("upgrade");
        idle.push(ws);
    }
    for mut ws in idle {
        let msg = tokio::time::timeout(Duration::from_secs(3), ws.next())
            .await
            .expect("closed in time");
        assert!(
            matches!(msg, Some(Ok(Message::Close(Some(ref f)))) if u16::from(f.code) == 4408),
            "{msg:?}"
        );
    }
    // A second connection_init on one connection closes it with 4429.
    let (mut ws, _) = tokio_tungstenite::connect_async(request()).await.expect("upgrade");
    ws.send(Message::Text(r#"{"type":"connection_init"}"#.into()))
        .await
        .expect("send");
    let ack = ws.next().await;
    assert!(
        matches!(ack, Some(Ok(Message::Text(ref t))) if t.contains("connection_ack")),
        "{ack:?}"
    );
    ws.send(Message::Text(r#"{"type":"connection_init"}"#.into()))
        .await
        .expect("send");
    let msg = tokio::time::timeout(Duration::from_secs(3), ws.next())
        .await
        .expect("closed in time");
    assert!(
        matches!(msg, Some(Ok(Message::Close(Some(ref f)))) if u16::from(f.code) == 4429),
        "{msg:?}"
    );
    env.stop().await;
}

/// Sends raw bytes and returns the status line and the rest of the answer, within 8 s.
async fn raw_exchange(env: &TestEnv, request: &[u8]) -> (String, String, Duration) {
    let mut conn = tokio::net::TcpStream::connect(env.gateway).await.expect("connect");
    conn.write_all(request).await.expect("write");
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(8), conn.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if text.contains("\r\n\r\n") && text.trim_end().ends_with('}') {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer).to_string();
    let (status, rest) = text.split_once("\r\n").unwrap_or((&text, ""));
    (status.to_string(), rest.to_string(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_huge_header_or_too_many_header_bytes_get_431_with_a_code() {
    let env = TestEnv::start().await;
    let query = r#"{"query":"{ transferStats { completed } }"}"#;
    let request = |headers: &str| {
        format!(
            "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{headers}\r\n{query}",
            query.len()
        )
    };
    // One 100 KB header.
    let (status, rest, _) =
        raw_exchange(&env, request(&format!("x-big: {}\r\n", "a".repeat(100_000))).as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
    assert!(rest.contains("HEADERS_TOO_LARGE"), "{rest}");
    // Forty 1 KB headers: each fine, together over the 32 KiB default.
    let many: String = (0..40).map(|i| format!("x-h{i}: {}\r\n", "b".repeat(1000))).collect();
    let (status, rest, _) = raw_exchange(&env, request(&many).as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
    assert!(rest.contains("HEADERS_TOO_LARGE"), "{rest}");
    // Ordinary headers still pass.
    let (status, _, _) = raw_exchange(&env, request("x-small: 1\r\n").as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_shorter_than_its_content_length_gets_408_within_the_default_read_timeout() {
    let env = TestEnv::start().await;
    let head = "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"query\": \"{ transferStats { completed } }\"}";
    let (status, rest, took) = raw_exchange(&env, head.as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
    assert!(rest.contains("REQUEST_TIMEOUT"), "{rest}");
    assert!(
        took < Duration::from_secs(5),
        "cut off after the 3 s read timeout, not the 10 s body timeout: {took:?}"
    );
    env.stop().await;
}

/// A body that arrives in pieces, with pauses shorter than the read timeout, is read whole; one
/// that grows past `max_body_bytes` piece by piece (chunked, no Content-Length to refuse it by) gets
/// 413 once it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_in_pieces_is_read_whole_and_one_growing_too_large_gets_413() {
    let env = TestEnv::start_with_limits(|l| l.max_body_bytes = 4096).await;
    let body = r#"{"query":"{ transferStats { completed } }","variables":{}}"#;
    let mut conn = tokio::net::TcpStream::connect(env.gateway).await.expect("connect");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    for piece in [&body[..10], &body[10..30], &body[30..]] {
        tokio::time::sleep(Duration::from_millis(150)).await;
        conn.write_all(piece.as_bytes()).await.expect("write");
    }
    let text = read_answer(&mut conn).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(r#""transferStats":{"completed""#), "{text}");

    // Chunked: no length to refuse it by before it arrives.
    let mut conn = tokio::net::TcpStream::connect(env.gateway).await.expect("connect");
    let head =
        "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    conn.write_all(head.as_bytes()).await.expect("write");
    let chunk = format!("800\r\n{}\r\n", "a".repeat(0x800));
    for _ in 0..4 {
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = read_answer(&mut conn).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("REQUEST_TOO_LARGE"), "{text}");
    env.stop().await;
}

/// What the gateway answers on `conn`: until it closes, or the JSON body ends, or 5 s pass.
async fn read_answer(conn: &mut tokio::net::TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&answer).trim_end().ends_with('}') {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}
