//! The hand-written encoding against OTLP's own generated types: what we write must decode, with
//! `opentelemetry-proto`, into exactly the spans we meant.

use std::time::{Duration, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use super::*;

fn envelope() -> Envelope {
    Envelope::new(
        &[
            ("service.name".to_string(), "gateway-é".to_string()),
            ("deployment.environment".to_string(), "test".to_string()),
        ],
        "mosaic",
        "0.1.0",
    )
}

/// The export request of a batch of `spans` (entries), as the queue sends it.
fn request(spans: &[u8]) -> bytes::Bytes {
    let envelope = envelope();
    let mut batch = vec![0u8; envelope.head_room()];
    batch.extend_from_slice(spans);
    envelope.wrap(batch)
}

fn decode(spans: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(request(spans)).expect("valid OTLP protobuf")
}

fn only_span(request: &ExportTraceServiceRequest) -> &Span {
    let spans: Vec<&Span> = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    assert_eq!(spans.len(), 1);
    spans[0]
}

fn value(span: &Span, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone()?.value)
}

#[test]
fn a_span_decodes_with_every_field_it_was_given() {
    let start = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
    let end = start + Duration::from_micros(250);
    let long = "x".repeat(300); // a length that needs a two-byte varint
    let record = SpanRecord {
        name: &["POST ", "/graphql"],
        kind: SpanKind::Server,
        span_id: 0x0102_0304_0506_0708,
        parent_span_id: 0xa1a2_a3a4_a5a6_a7a8,
        parent_is_remote: true,
        start,
        end,
        attributes: &[
            Some(Attribute::str("http.request.method", "POST")),
            None,
            Some(Attribute::i64("http.response.status_code", 200)),
            Some(Attribute::i64("negative", -5)),
            Some(Attribute::bool("mosaic.coalesced", true)),
            Some(Attribute::bool("off", false)),
            Some(Attribute::str("long", &long)),
        ],
        error: Some("BACKEND_TIMEOUT"),
        links: &[(TraceId(7), 9)],
    };
    let mut buf = Vec::new();
    record.encode_entry(TraceId(0x1111_2222_3333_4444_5555_6666_7777_8888), &mut buf);
    let request = decode(&buf);

    let resource = request.resource_spans[0].resource.as_ref().expect("a resource");
    assert_eq!(resource.attributes.len(), 2);
    assert_eq!(resource.attributes[0].key, "service.name");
    assert_eq!(
        resource.attributes[0].value.clone().and_then(|v| v.value),
        Some(Value::StringValue("gateway-é".into()))
    );
    let scope = request.resource_spans[0].scope_spans[0]
        .scope
        .as_ref()
        .expect("a scope");
    assert_eq!((scope.name.as_str(), scope.version.as_str()), ("mosaic", "0.1.0"));

    let span = only_span(&request);
    assert_eq!(
        span.trace_id,
        0x1111_2222_3333_4444_5555_6666_7777_8888u128.to_be_bytes()
    );
    assert_eq!(span.span_id, 0x0102_0304_0506_0708u64.to_be_bytes());
    assert_eq!(span.parent_span_id, 0xa1a2_a3a4_a5a6_a7a8u64.to_be_bytes());
    assert_eq!(span.name, "POST /graphql");
    assert_eq!(span.kind, 2);
    assert_eq!(span.start_time_unix_nano, 1_700_000_000_123_456_789);
    assert_eq!(span.end_time_unix_nano, 1_700_000_000_123_706_789);
    assert_eq!(span.flags, 0x301, "sampled, has is-remote, is remote");
    assert_eq!(span.attributes.len(), 6, "the None entry is skipped");
    assert_eq!(
        value(span, "http.request.method"),
        Some(Value::StringValue("POST".into()))
    );
    assert_eq!(value(span, "http.response.status_code"), Some(Value::IntValue(200)));
    assert_eq!(value(span, "negative"), Some(Value::IntValue(-5)));
    assert_eq!(value(span, "mosaic.coalesced"), Some(Value::BoolValue(true)));
    assert_eq!(value(span, "off"), Some(Value::BoolValue(false)));
    assert_eq!(value(span, "long"), Some(Value::StringValue(long.clone())));
    let status = span.status.as_ref().expect("an error status");
    assert_eq!((status.code, status.message.as_str()), (2, "BACKEND_TIMEOUT"));
    assert_eq!(span.links.len(), 1);
    assert_eq!(span.links[0].trace_id, 7u128.to_be_bytes());
    assert_eq!(span.links[0].span_id, 9u64.to_be_bytes());
    assert_eq!(span.links[0].flags, 0x101);
}

#[test]
fn a_root_span_without_error_has_no_parent_and_no_status() {
    let record = SpanRecord {
        name: &["query"],
        kind: SpanKind::Internal,
        span_id: 3,
        parent_span_id: 0,
        parent_is_remote: false,
        start: UNIX_EPOCH,
        end: UNIX_EPOCH,
        attributes: &[],
        error: None,
        links: &[],
    };
    let mut buf = Vec::new();
    record.encode_entry(TraceId(1), &mut buf);
    let request = decode(&buf);
    let span = only_span(&request);
    assert!(span.parent_span_id.is_empty());
    assert_eq!(span.kind, 1);
    assert_eq!(span.flags, 0x101);
    assert!(span.status.is_none());
    assert_eq!(span.name, "query");
}

#[test]
fn entries_concatenate_into_one_request() {
    let mut buf = Vec::new();
    for i in 1..=300u64 {
        let n = i.to_string();
        SpanRecord {
            name: &["span ", &n],
            kind: SpanKind::Client,
            span_id: i,
            parent_span_id: i + 1000,
            parent_is_remote: false,
            start: UNIX_EPOCH,
            end: UNIX_EPOCH,
            attributes: &[Some(Attribute::str("n", &n))],
            error: None,
            links: &[],
        }
        .encode_entry(TraceId(u128::from(i)), &mut buf);
    }
    let request = decode(&buf);
    let spans = &request.resource_spans[0].scope_spans[0].spans;
    assert_eq!(spans.len(), 300);
    for (i, span) in (1..=300u64).zip(spans) {
        assert_eq!(span.name, format!("span {i}"));
        assert_eq!(span.kind, 3);
        assert_eq!(span.span_id, i.to_be_bytes());
        assert_eq!(value(span, "n"), Some(Value::StringValue(i.to_string())));
    }
}

#[test]
fn a_wrapped_batch_starts_with_its_head_and_holds_every_span() {
    let mut spans = Vec::new();
    for i in 1..=40u64 {
        SpanRecord {
            name: &["op"],
            kind: SpanKind::Internal,
            span_id: i,
            parent_span_id: 0,
            parent_is_remote: false,
            start: UNIX_EPOCH,
            end: UNIX_EPOCH,
            attributes: &[Some(Attribute::str("k", "v"))],
            error: None,
            links: &[],
        }
        .encode_entry(TraceId(5), &mut spans);
    }
    let wrapped = request(&spans);
    // No room left over: the request begins with field 1 (resource_spans), length-delimited.
    assert_eq!(wrapped[0], 0x0a);
    assert!(wrapped.ends_with(&spans), "the spans are sent as they were encoded");
    let decoded = ExportTraceServiceRequest::decode(wrapped).expect("valid OTLP protobuf");
    assert_eq!(decoded.resource_spans[0].scope_spans[0].spans.len(), 40);
}

#[test]
fn an_empty_batch_is_a_valid_request() {
    let request = decode(&[]);
    assert_eq!(request.resource_spans.len(), 1);
    assert!(request.resource_spans[0].scope_spans[0].spans.is_empty());
}
