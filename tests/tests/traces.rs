//! OpenTelemetry traces, end to end: the gateway and the mock bank export spans over OTLP to a
//! small collector run by the test (OTLP/HTTP with protobuf, or gRPC), which decodes them. The
//! spans of one request must form one tree under the client's span: the gateway's request,
//! operation, backend call and HTTP attempt, then each bank service's server span and the calls
//! it makes to other services, all in the client's trace.

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
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
                let store = store.clone();
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
    for _ in 0..2 {
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
            s.iter().filter(|s| s.name.starts_with("query Two")).count() == 2
                && s.iter().filter(|s| s.attributes.contains_key("mosaic.backend")).count() >= 2
        })
        .await;
    // The second query is answered from the cache: no call spans, the hits counted on its
    // operation's span.
    let operations: Vec<&Span> = spans.iter().filter(|s| s.name.starts_with("query Two")).collect();
    let mut hits: Vec<Option<&str>> = operations
        .iter()
        .map(|s| s.attributes.get("mosaic.cache.hits").map(String::as_str))
        .collect();
    hits.sort_unstable();
    let cached: usize = match hits[..] {
        [None, Some(n)] => n.parse().expect("a number"),
        _ => panic!("one operation with cache hits expected: {operations:#?}"),
    };
    assert!(cached >= 1, "{operations:#?}");
    let calls: Vec<&Span> = spans
        .iter()
        .filter(|s| s.attributes.contains_key("mosaic.backend"))
        .collect();
    // Two calls per query (the customer, then its accounts batched): those not answered from the
    // cache have spans.
    assert_eq!(calls.len() + cached, 4, "{calls:#?}");
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
