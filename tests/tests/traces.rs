//! OpenTelemetry traces, end to end: the gateway and the mock bank export spans over OTLP to a
//! small collector run by the test (OTLP/HTTP with protobuf, or gRPC), which decodes them. The
//! spans of one request must form one tree under the client's span: the gateway's request,
//! operation, backend call and HTTP attempt, then each bank service's server span and the calls
//! it makes to other services, all in the client's trace.
//!
//! Also: spans still queued at shutdown are sent before the gateway stops; the client's
//! `traceparent` and `tracestate` reach backends, subscription streams (SSE and WebSocket)
//! included, through a probe backend that records headers; and a `mosaic` process set up by the
//! `OTEL_*` variables alone exports with the headers they give.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mock_bank::{BankConfig, TraceExport};
use mosaic_tests::{demo_sdl, demo_toml, example, TestEnv};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::json;

/// One received span, flattened.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    /// OTLP span kind: 1 internal, 2 server, 3 client.
    kind: i32,
    attributes: BTreeMap<String, String>,
    error: bool,
    /// (trace id, span id) of linked spans.
    links: Vec<(String, String)>,
}

type Spans = Arc<Mutex<Vec<Span>>>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn collect(spans: &Spans, request: ExportTraceServiceRequest) {
    let mut out = spans.lock().expect("not poisoned");
    for rs in request.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
            .map(|v| match v {
                AnyValue::StringValue(s) => s.clone(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                let attributes = s
                    .attributes
                    .iter()
                    .map(|kv| {
                        let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(AnyValue::StringValue(s)) => s.clone(),
                            Some(AnyValue::IntValue(i)) => i.to_string(),
                            Some(AnyValue::BoolValue(b)) => b.to_string(),
                            Some(AnyValue::DoubleValue(d)) => d.to_string(),
                            other => format!("{other:?}"),
                        };
                        (kv.key.clone(), v)
                    })
                    .collect();
                out.push(Span {
                    service: service.clone(),
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    name: s.name.clone(),
                    kind: s.kind,
                    attributes,
                    error: s.status.as_ref().is_some_and(|st| st.code == 2),
                    links: s.links.iter().map(|l| (hex(&l.trace_id), hex(&l.span_id))).collect(),
                });
            }
        }
    }
}

/// A collector on 127.0.0.1: OTLP/HTTP (`POST /v1/traces`, protobuf) or OTLP/gRPC.
struct Collector {
    addr: SocketAddr,
    spans: Spans,
    /// The headers of every OTLP/HTTP export request.
    headers: Arc<Mutex<Vec<http::HeaderMap>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct GrpcTraces(Spans);

#[tonic::async_trait]
impl TraceService for GrpcTraces {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        collect(&self.0, request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    async fn http() -> Self {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("bound");
        let spans = Spans::default();
        let store = spans.clone();
        let headers_seen: Arc<Mutex<Vec<http::HeaderMap>>> = Arc::default();
        let record = headers_seen.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
                let store = store.clone();
                record.lock().expect("not poisoned").push(headers.clone());
                async move {
                    let protobuf = headers
                        .get("content-type")
                        .is_some_and(|v| v.as_bytes() == b"application/x-protobuf");
                    match ExportTraceServiceRequest::decode(body) {
                        Ok(request) if protobuf => {
                            collect(&store, request);
                            (
                                http::StatusCode::OK,
                                [("content-type", "application/x-protobuf")],
                                ExportTraceServiceResponse::default().encode_to_vec(),
                            )
                        }
                        _ => (
                            http::StatusCode::BAD_REQUEST,
                            [("content-type", "text/plain")],
                            b"not an OTLP protobuf export".to_vec(),
                        ),
                    }
                }
            }),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            addr,
            spans,
            headers: headers_seen,
            stop: Some(tx),
            task,
        }
    }

    async fn grpc() -> Self {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("bound");
        let spans = Spans::default();
        let service = TraceServiceServer::new(GrpcTraces(spans.clone()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            addr,
            spans,
            headers: Arc::default(),
            stop: Some(tx),
            task,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().expect("not poisoned").clone()
    }

    /// The headers of every OTLP/HTTP export request so far.
    fn export_headers(&self) -> Vec<http::HeaderMap> {
        self.headers.lock().expect("not poisoned").clone()
    }

    /// The spans of `trace_id` once `done` holds for them (at most 10 s).
    async fn wait_for(&self, trace_id: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let spans: Vec<Span> = self.spans().into_iter().filter(|s| s.trace_id == trace_id).collect();
            if done(&spans) {
                return spans;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the spans of trace {trace_id} did not all arrive: {spans:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

/// The demo, with the gateway's and the bank's spans going to `collector`.
async fn traced_demo(collector: &Collector, telemetry: &str) -> TestEnv {
    let toml = format!(
        "{}\n[telemetry]\notlp_endpoint = \"{}\"\nexport_delay = \"50ms\"\n{telemetry}\n",
        demo_toml(),
        collector.endpoint()
    );
    let bank = BankConfig {
        traces: Some(TraceExport {
            endpoint: format!("http://{}", collector.addr),
            delay: Duration::from_millis(50),
        }),
        ..BankConfig::default()
    };
    TestEnv::start_with_bank(bank, &demo_sdl(), &toml, |_| {}).await
}

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn traceparent(trace: &str, sampled: bool) -> String {
    format!("00-{trace}-{CLIENT_SPAN}-{}", if sampled { "01" } else { "00" })
}

fn one<'a>(spans: &'a [Span], what: &str, pick: impl Fn(&Span) -> bool) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(found.len(), 1, "exactly one {what} span in {spans:#?}");
    found[0]
}

fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.parent_span_id == parent.span_id).collect()
}

#[tokio::test]
async fn a_transfer_reads_as_one_trace_across_the_gateway_and_every_bank_service() {
    let collector = Collector::http().await;
    let env = traced_demo(&collector, "").await;
    let query = example("send-transfer");
    let response = env
        .post_raw(
            &json!({ "query": query }).to_string(),
            &[
                ("content-type", "application/json"),
                ("traceparent", &traceparent(CLIENT_TRACE, true)),
            ],
        )
        .await;
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["data"]["transfer"]["status"], "COMPLETED", "{body}");

    // The gateway's spans (request, operation, then call and attempt for the transfer and for the
    // external-bank call count), the transfers service (server, verify and debit calls), the
    // external bank's and the accounts' server spans.
    let spans = collector
        .wait_for(CLIENT_TRACE, |s| {
            s.iter().filter(|s| s.service == "mosaic").count() >= 6
                && s.iter().filter(|s| s.service == "bank-external-bank").count() >= 2
                && s.iter().any(|s| s.service == "bank-accounts")
                && s.iter().filter(|s| s.service == "bank-transfers").count() >= 3
        })
        .await;

    let server = one(&spans, "gateway server", |s| s.service == "mosaic" && s.kind == 2);
    assert_eq!(
        server.parent_span_id, CLIENT_SPAN,
        "the client's span is the root's parent"
    );
    assert_eq!(server.name, "POST /graphql");
    assert_eq!(server.attributes["http.response.status_code"], "200");

    let operation = one(&spans, "operation", |s| s.parent_span_id == server.span_id);
    assert_eq!(operation.name, "mutation SendTransfer");
    assert_eq!(operation.attributes["graphql.operation.type"], "mutation");
    assert_eq!(operation.attributes["graphql.operation.name"], "SendTransfer");
    assert_eq!(operation.attributes["graphql.document.hash"].len(), 64);
    assert!(
        !operation.attributes.values().any(|v| v.contains("EXT-0042")),
        "no document text or values in the span: {operation:?}"
    );

    let calls = children(&spans, operation);
    assert_eq!(
        calls.len(),
        2,
        "the transfer, then the external-bank call count: {calls:#?}"
    );
    let call = one(&spans, "transfer call", |s| {
        s.parent_span_id == operation.span_id && s.attributes["mosaic.backend"] == "transfers"
    });
    assert_eq!(call.attributes["mosaic.attempts"], "1");
    assert_eq!(call.attributes["mosaic.cache"], "none");
    assert_eq!(call.attributes["mosaic.outcome"], "ok");
    assert!(call.attributes["mosaic.endpoint"].starts_with("POST /"), "{call:?}");

    let attempt = one(&spans, "HTTP attempt", |s| s.parent_span_id == call.span_id);
    assert_eq!(attempt.kind, 3, "a client span");
    assert_eq!(attempt.attributes["http.request.method"], "POST");
    assert_eq!(attempt.attributes["server.address"], "127.0.0.1");

    let transfers = one(&spans, "transfers server", |s| {
        s.service == "bank-transfers" && s.kind == 2
    });
    assert_eq!(
        transfers.parent_span_id, attempt.span_id,
        "the backend's parent is the attempt that called it"
    );
    let outgoing = children(&spans, transfers);
    assert!(
        outgoing.iter().any(|s| s.name == "POST /verify"),
        "the transfers service's call to the external bank: {outgoing:#?}"
    );
    assert!(
        outgoing.iter().any(|s| s.name == "POST /accounts/{account}/adjust"),
        "the transfers service's debit: {outgoing:#?}"
    );
    for client in outgoing {
        assert_eq!(client.kind, 3);
        let served = one(&spans, "served call", |s| s.parent_span_id == client.span_id);
        assert_eq!(served.kind, 2);
        let expected = if client.name == "POST /verify" {
            "bank-external-bank"
        } else {
            "bank-accounts"
        };
        assert_eq!(served.service, expected, "{served:?}");
    }
    assert!(spans.iter().all(|s| s.trace_id == CLIENT_TRACE));
    env.stop().await;
    collector.stop().await;
}

#[tokio::test]
async fn a_query_traces_each_backend_call_with_its_cache_and_batching() {
    let collector = Collector::http().await;
    let env = traced_demo(&collector, "").await;
    let query = "query Two($id: ID!) { customer(id: $id) { name accounts { id balance } } }";
    // The third is answered by the response the second reused (known fresh: no lookup at all),
    // and still counts the hits it stands for.
    for _ in 0..3 {
        let body = json!({ "query": query, "variables": { "id": "C001" } }).to_string();
        let r = env
            .post_raw(
                &body,
                &[
                    ("content-type", "application/json"),
                    ("traceparent", &traceparent("0af7651916cd43dd8448eb211c80319c", true)),
                ],
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let spans = collector
        .wait_for("0af7651916cd43dd8448eb211c80319c", |s| {
            s.iter().filter(|s| s.name.starts_with("query Two")).count() == 3
                && s.iter().filter(|s| s.attributes.contains_key("mosaic.backend")).count() >= 2
        })
        .await;
    // The second and third queries are answered from the cache: no call spans, the hits counted
    // on their operations' spans.
    let operations: Vec<&Span> = spans.iter().filter(|s| s.name.starts_with("query Two")).collect();
    let mut hits: Vec<Option<&str>> = operations
        .iter()
        .map(|s| s.attributes.get("mosaic.cache.hits").map(String::as_str))
        .collect();
    hits.sort_unstable();
    let cached: usize = match hits[..] {
        [None, Some(n), Some(m)] if n == m => n.parse().expect("a number"),
        _ => panic!("two operations with the same cache hits expected: {operations:#?}"),
    };
    assert!(cached >= 1, "{operations:#?}");
    let calls: Vec<&Span> = spans
        .iter()
        .filter(|s| s.attributes.contains_key("mosaic.backend"))
        .collect();
    // Two calls per query (the customer, then its accounts batched): those not answered from the
    // cache have spans.
    assert_eq!(calls.len() + 2 * cached, 6, "{calls:#?}");
    let backends: std::collections::BTreeSet<&str> =
        calls.iter().map(|s| s.attributes["mosaic.backend"].as_str()).collect();
    assert!(
        backends.contains("customers") && backends.contains("accounts"),
        "{calls:#?}"
    );
    for c in &calls {
        let template = &c.attributes["mosaic.endpoint"];
        assert!(!template.contains("C001"), "templates, not values: {template}");
        assert!(c.attributes.contains_key("mosaic.breaker.state"), "{c:?}");
        let attempts: u32 = c.attributes["mosaic.attempts"].parse().expect("a number");
        match c.attributes["mosaic.cache"].as_str() {
            "hit" => assert_eq!(attempts, 0, "a cache hit makes no HTTP attempt: {c:?}"),
            _ => assert!(attempts >= 1, "{c:?}"),
        }
    }
    env.stop().await;
    collector.stop().await;
}

#[tokio::test]
async fn sampling_follows_the_client_and_the_ratio_for_new_traces() {
    let collector = Collector::http().await;
    let env = traced_demo(&collector, "sampling_ratio = 0.0").await;
    let query = json!({ "query": "{ districts { district } }" }).to_string();
    // The client sampled it: recorded although the ratio is 0 (parent-based).
    let sampled = "11111111111111111111111111111111";
    env.post_raw(
        &query,
        &[
            ("content-type", "application/json"),
            ("traceparent", &traceparent(sampled, true)),
        ],
    )
    .await;
    // The client did not sample it: nothing recorded, and the backend is told so.
    let unsampled = "22222222222222222222222222222222";
    env.post_raw(
        &query,
        &[
            ("content-type", "application/json"),
            ("traceparent", &traceparent(unsampled, false)),
        ],
    )
    .await;
    // A new trace: the ratio (0) decides.
    env.post_raw(&query, &[("content-type", "application/json")]).await;
    collector
        .wait_for(sampled, |s| s.iter().any(|s| s.service == "bank-ledger"))
        .await;
    // Spans are sent every 50 ms: give anything wrongly recorded time to arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let traces: std::collections::BTreeSet<String> = collector.spans().into_iter().map(|s| s.trace_id).collect();
    assert_eq!(
        traces.into_iter().collect::<Vec<_>>(),
        vec![sampled.to_string()],
        "only the sampled trace is recorded"
    );
    env.stop().await;
    collector.stop().await;
}

#[tokio::test]
async fn spans_can_go_over_grpc() {
    let collector = Collector::grpc().await;
    let toml = format!(
        "{}\n[telemetry]\notlp_endpoint = \"{}\"\notlp_protocol = \"grpc\"\nexport_delay = \"50ms\"\nservice_name = \"edge-gateway\"\n",
        demo_toml(),
        collector.endpoint()
    );
    let env = TestEnv::start_with(&demo_sdl(), &toml).await;
    let trace = "33333333333333333333333333333333";
    let r = env
        .post_raw(
            &json!({ "query": "query D { districts { district } }" }).to_string(),
            &[
                ("content-type", "application/json"),
                ("traceparent", &traceparent(trace, true)),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let spans = collector.wait_for(trace, |s| s.len() >= 4).await;
    assert!(spans.iter().all(|s| s.service == "edge-gateway"), "{spans:#?}");
    assert!(spans.iter().any(|s| s.name == "query D"));
    env.stop().await;
    collector.stop().await;
}

#[tokio::test]
async fn a_failing_backend_call_is_an_error_span_with_its_public_code() {
    let collector = Collector::http().await;
    let env = traced_demo(&collector, "").await;
    env.set_faults(mock_bank::Service::Ledger, json!({ "down": true }))
        .await;
    let trace = "44444444444444444444444444444444";
    let r = env
        .post_raw(
            &json!({ "query": "{ districts { district } }" }).to_string(),
            &[
                ("content-type", "application/json"),
                ("traceparent", &traceparent(trace, true)),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let spans = collector
        .wait_for(trace, |s| {
            s.iter()
                .any(|s| s.attributes.get("mosaic.backend").map(String::as_str) == Some("ledger"))
        })
        .await;
    let call = one(&spans, "ledger call", |s| {
        s.attributes.get("mosaic.backend").map(String::as_str) == Some("ledger")
    });
    assert!(call.error, "{call:?}");
    assert_ne!(call.attributes["mosaic.outcome"], "ok");
    for s in &spans {
        for v in s.attributes.values() {
            assert!(!v.contains("http://127.0.0.1:"), "no backend URL in spans: {s:?}");
        }
    }
    env.stop().await;
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_joined_an_identical_one_links_to_its_trace() {
    let collector = Collector::http().await;
    let env = traced_demo(&collector, "").await;
    // Slow enough for the second request to arrive while the first runs.
    env.set_faults(mock_bank::Service::Customers, json!({ "latency_ms": 400 }))
        .await;
    let body = json!({ "query": "query Same { customer(id: \"C001\") { name } }" }).to_string();
    let (leader, follower) = ("55555555555555555555555555555555", "66666666666666666666666666666666");
    let send = |trace: &'static str| {
        let (body, url) = (body.clone(), env.graphql_url());
        async move {
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .header("traceparent", traceparent(trace, true))
                .body(body)
                .send()
                .await
                .expect("answered")
                .status()
        }
    };
    let first = tokio::spawn(send(leader));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(send(follower).await, 200);
    assert_eq!(first.await.expect("joined"), 200);
    let leader_spans = collector
        .wait_for(leader, |s| s.iter().any(|s| s.name.starts_with("query Same")))
        .await;
    let leader_op = leader_spans
        .iter()
        .find(|s| s.name.starts_with("query Same"))
        .expect("the leader's operation span");
    let follower_spans = collector
        .wait_for(follower, |s| s.iter().any(|s| s.name.starts_with("query Same")))
        .await;
    let follower_op = follower_spans
        .iter()
        .find(|s| s.name.starts_with("query Same"))
        .expect("the follower's operation span");
    assert_eq!(
        follower_op.attributes.get("mosaic.coalesced").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        follower_op.links,
        [(leader.to_string(), leader_op.span_id.clone())],
        "linked to the operation that ran"
    );
    assert!(
        !follower_spans
            .iter()
            .any(|s| s.attributes.contains_key("mosaic.backend")),
        "the calls are in the leader's trace"
    );
    assert!(leader_op.links.is_empty());
    env.stop().await;
    collector.stop().await;
}

#[tokio::test]
async fn spans_still_queued_at_shutdown_are_exported_before_the_gateway_stops() {
    let collector = Collector::http().await;
    // Batches would leave every hour: only the flush at shutdown can send this request's spans.
    let toml = format!(
        "{}\n[telemetry]\notlp_endpoint = \"{}\"\nexport_delay = \"1h\"\n",
        demo_toml(),
        collector.endpoint()
    );
    let env = TestEnv::start_with(&demo_sdl(), &toml).await;
    let trace = "77777777777777777777777777777777";
    let r = env
        .post_raw(
            &json!({ "query": "query Late { districts { district } }" }).to_string(),
            &[
                ("content-type", "application/json"),
                ("traceparent", &traceparent(trace, true)),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        collector.spans().is_empty(),
        "nothing is exported before the delay or the shutdown: {:#?}",
        collector.spans()
    );
    env.stop().await;
    // Stopping waited for the flush: the spans are there, without waiting for anything else.
    let spans: Vec<Span> = collector.spans().into_iter().filter(|s| s.trace_id == trace).collect();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"POST /graphql"), "{names:?}");
    assert!(names.contains(&"query Late"), "{names:?}");
    assert!(
        spans
            .iter()
            .any(|s| s.attributes.get("mosaic.backend").map(String::as_str) == Some("ledger")),
        "the ledger call: {spans:#?}"
    );
    collector.stop().await;
}

/// The path and headers of every request a probe backend got.
type Recorded = Arc<Mutex<Vec<(String, http::HeaderMap)>>>;

/// A backend that records the headers of every request: `GET /events` is a Server-Sent Events
/// stream of one `{"ok": true}` event that then stays open, anything else answers `{"ok": true}`.
async fn probe_backend() -> (SocketAddr, Recorded, tokio::task::JoinHandle<()>) {
    use futures::StreamExt;
    let seen = Recorded::default();
    let recorded = seen.clone();
    let app = axum::Router::new().fallback(move |uri: http::Uri, headers: http::HeaderMap| {
        let recorded = recorded.clone();
        async move {
            recorded
                .lock()
                .expect("not poisoned")
                .push((uri.path().to_string(), headers));
            if uri.path() == "/events" {
                let events =
                    futures::stream::once(async { Ok::<_, std::convert::Infallible>("data: {\"ok\": true}\n\n") })
                        .chain(futures::stream::pending());
                (
                    [("content-type", "text/event-stream")],
                    axum::body::Body::from_stream(events),
                )
            } else {
                (
                    [("content-type", "application/json")],
                    axum::body::Body::from("{\"ok\": true}"),
                )
            }
        }
    });
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("bound");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen, task)
}

/// A gateway over [`probe_backend`]: `probe` (a query) and `ticks` (a subscription) call it.
async fn probed(addr: SocketAddr) -> TestEnv {
    let sdl = "type Probe { ok: Boolean! }\n\
               type Query { probe: Probe @http(backend: \"probe\", path: \"/probe\") }\n\
               type Subscription { ticks: Probe! @stream(backend: \"probe\", path: \"/events\") }\n";
    TestEnv::start_with(sdl, &format!("[backends.probe]\nurl = \"http://{addr}\"\n")).await
}

/// The headers of the requests `recorded` got at `path`, once there are `n` (within 5 s).
async fn requests_to(recorded: &Recorded, path: &str, n: usize) -> Vec<http::HeaderMap> {
    let got = || -> Vec<http::HeaderMap> {
        recorded
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, h)| h.clone())
            .collect()
    };
    let arrived = mosaic_tests::infra::eventually(Duration::from_secs(5), || async { got().len() >= n }).await;
    assert!(arrived, "{n} request(s) to {path} expected, got {}", got().len());
    got()
}

/// The parts of a `traceparent` header: version, trace id, parent span id, flags.
fn traceparent_parts(headers: &http::HeaderMap) -> Vec<String> {
    let value = headers
        .get("traceparent")
        .unwrap_or_else(|| panic!("no traceparent in {headers:?}"))
        .to_str()
        .expect("ASCII");
    value.split('-').map(str::to_string).collect()
}

/// A `tracestate` of two vendors' entries, as a client's tracer would send it.
const TRACESTATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

#[tokio::test]
async fn the_clients_tracestate_reaches_the_backends_with_its_traceparent() {
    let (addr, recorded, task) = probe_backend().await;
    let env = probed(addr).await;
    let trace = "88888888888888888888888888888888";
    let body = json!({ "query": "{ probe { ok } }" }).to_string();
    let r = env
        .post_raw(
            &body,
            &[
                ("content-type", "application/json"),
                ("traceparent", &traceparent(trace, true)),
                ("tracestate", TRACESTATE),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    // Without one, none is made up.
    let r = env
        .post_raw(
            &body,
            &[
                ("content-type", "application/json"),
                ("traceparent", &traceparent(trace, true)),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let calls = requests_to(&recorded, "/probe", 2).await;
    assert_eq!(calls.len(), 2, "one call per query");
    let parent = traceparent_parts(&calls[0]);
    assert_eq!(parent[1], trace, "the client's trace");
    assert_ne!(parent[2], CLIENT_SPAN, "the gateway's span is the parent");
    assert_eq!(
        calls[0].get("tracestate").map(|v| v.to_str().expect("ASCII")),
        Some(TRACESTATE),
        "the client's tracestate, as it was: {:?}",
        calls[0]
    );
    assert_eq!(traceparent_parts(&calls[1])[1], trace);
    assert!(calls[1].get("tracestate").is_none(), "{:?}", calls[1]);
    env.stop().await;
    task.abort();
}

#[tokio::test]
async fn a_subscriptions_backend_stream_over_sse_continues_the_clients_trace() {
    let (addr, recorded, task) = probe_backend().await;
    let env = probed(addr).await;
    let trace = "99999999999999999999999999999999";
    let mut response = env
        .post_raw(
            &json!({ "query": "subscription { ticks { ok } }" }).to_string(),
            &[
                ("content-type", "application/json"),
                ("accept", "text/event-stream"),
                ("traceparent", &traceparent(trace, true)),
                ("tracestate", TRACESTATE),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    // The first event: the backend stream is open.
    let mut received = String::new();
    while !received.contains("event: next") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("an event in time")
            .expect("a readable stream")
            .unwrap_or_else(|| panic!("the stream ended: {received}"));
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(received.contains(r#""ok":true"#), "{received}");
    let stream = &requests_to(&recorded, "/events", 1).await[0];
    assert_eq!(stream["accept"], "text/event-stream");
    let parent = traceparent_parts(stream);
    assert_eq!(parent[1], trace, "the client's trace: {stream:?}");
    assert_ne!(parent[2], CLIENT_SPAN, "the gateway's span is the parent");
    assert_eq!(parent[3], "01", "sampled as the client said");
    assert_eq!(
        stream.get("tracestate").map(|v| v.to_str().expect("ASCII")),
        Some(TRACESTATE)
    );
    drop(response);
    env.stop().await;
    task.abort();
}

#[tokio::test]
async fn a_subscriptions_backend_stream_over_websocket_continues_the_upgrade_requests_trace() {
    use futures::StreamExt;
    use mosaic_tests::infra::{ws_connect, ws_send};
    use tokio_tungstenite::tungstenite::Message;
    let (addr, recorded, task) = probe_backend().await;
    let env = probed(addr).await;
    let trace = "abababababababababababababababab";
    let traceparent = traceparent(trace, true);
    let mut ws = ws_connect(&env.graphql_url(), &[("traceparent", &traceparent)]).await;
    ws_send(
        &mut ws,
        json!({
            "type": "subscribe",
            "id": "ticks",
            "payload": {"query": "subscription { ticks { ok } }"}
        }),
    )
    .await;
    let first = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    assert!(
        matches!(&first, Ok(Some(Ok(Message::Text(t)))) if t.contains(r#""ok":true"#)),
        "{first:?}"
    );
    let stream = &requests_to(&recorded, "/events", 1).await[0];
    let parent = traceparent_parts(stream);
    assert_eq!(parent[1], trace, "the upgrade request's trace: {stream:?}");
    assert_ne!(parent[2], CLIENT_SPAN, "the gateway's span is the parent");
    let _ = ws.close(None).await;
    env.stop().await;
    task.abort();
}

#[tokio::test]
async fn a_gateway_process_exports_to_the_collector_and_with_the_headers_the_otel_variables_give() {
    use mosaic_tests::infra::{bank_env, with_server_settings, ConfigDir, GatewayProcess};
    let collector = Collector::http().await;
    let bank = mock_bank::start(BankConfig::default()).await.expect("the bank starts");
    // No [telemetry] table: the variables alone turn traces on.
    let dir = ConfigDir::new("otel-env");
    dir.write("bank.graphql", &demo_sdl());
    dir.write(
        "mosaic.toml",
        &with_server_settings(&demo_toml(), "drain_delay = \"0s\""),
    );
    assert!(!demo_toml().contains("[telemetry]"));
    let mut env = bank_env(&bank);
    for (k, v) in [
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("{}/v1/traces", collector.endpoint()),
        ),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=secret".to_string()),
        ("OTEL_SERVICE_NAME", "gateway-from-env".to_string()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_string()),
    ] {
        env.push((k.to_string(), v));
    }
    let gateway = GatewayProcess::spawn(&dir.file("mosaic.toml"), &env).await;
    let trace = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
    let response = mosaic_tests::client()
        .post(gateway.url("/graphql"))
        .header("traceparent", traceparent(trace, true))
        .json(&json!({ "query": "query FromEnv { districts { district } }" }))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), 200);
    let spans = collector
        .wait_for(trace, |s| s.iter().any(|s| s.name == "POST /graphql"))
        .await;
    assert!(spans.iter().any(|s| s.name == "query FromEnv"), "{spans:#?}");
    assert!(
        spans.iter().all(|s| s.service == "gateway-from-env"),
        "OTEL_SERVICE_NAME: {spans:#?}"
    );
    let exports = collector.export_headers();
    assert!(!exports.is_empty());
    for headers in &exports {
        assert_eq!(
            headers.get("x-api-key").map(|v| v.to_str().expect("ASCII")),
            Some("secret"),
            "every export carries OTEL_EXPORTER_OTLP_HEADERS: {headers:?}"
        );
    }
    gateway.stop(Duration::from_secs(15)).await;
    tokio::time::timeout(Duration::from_secs(15), bank.shutdown())
        .await
        .expect("the bank stops");
    collector.stop().await;
}
