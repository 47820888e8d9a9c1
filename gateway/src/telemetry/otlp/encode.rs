//! Finished spans written straight into OTLP protobuf bytes
//! (`opentelemetry/proto/trace/v1/trace.proto`), and the export request around a batch of them.
//!
//! A span is encoded once, when it ends, from data the request path borrows (names, attribute
//! values), into the queue's buffer: no `SpanData`, no owned strings, no per-span conversion at
//! export time. The field numbers and wire types below are OTLP's (checked against
//! `opentelemetry-proto`'s generated types by the tests); prost's `encoding` functions write the
//! keys and varints.

use std::time::{SystemTime, UNIX_EPOCH};

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};

use crate::telemetry::trace_context::TraceId;

/// OTLP `Span.SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// An attribute's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttributeValue<'a> {
    Str(&'a str),
    I64(i64),
    Bool(bool),
}

/// One span attribute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attribute<'a> {
    pub key: &'static str,
    pub value: AttributeValue<'a>,
}

impl<'a> Attribute<'a> {
    pub fn str(key: &'static str, value: &'a str) -> Self {
        Self {
            key,
            value: AttributeValue::Str(value),
        }
    }

    pub fn i64(key: &'static str, value: i64) -> Self {
        Self {
            key,
            value: AttributeValue::I64(value),
        }
    }

    pub fn bool(key: &'static str, value: bool) -> Self {
        Self {
            key,
            value: AttributeValue::Bool(value),
        }
    }
}

/// One finished span, borrowed from whoever recorded it.
#[derive(Debug, Clone, Copy)]
pub struct SpanRecord<'a> {
    /// The span's name, in parts written one after the other (`["POST ", "/graphql"]`).
    pub name: &'a [&'a str],
    pub kind: SpanKind,
    pub span_id: u64,
    /// 0 for a root span.
    pub parent_span_id: u64,
    /// The parent is another process's span (the client's).
    pub parent_is_remote: bool,
    pub start: SystemTime,
    pub end: SystemTime,
    /// `None` entries are skipped (attributes a span has only sometimes).
    pub attributes: &'a [Option<Attribute<'a>>],
    /// Set when the span's work failed: a short description (never a URL or a body).
    pub error: Option<&'a str>,
    /// Spans of other traces this one is related to (an operation it shared the execution of).
    pub links: &'a [(TraceId, u64)],
}

// Field numbers of the OTLP messages written here.
const SPAN_TRACE_ID: u32 = 1;
const SPAN_SPAN_ID: u32 = 2;
const SPAN_PARENT_SPAN_ID: u32 = 4;
const SPAN_NAME: u32 = 5;
const SPAN_KIND: u32 = 6;
const SPAN_START: u32 = 7;
const SPAN_END: u32 = 8;
const SPAN_ATTRIBUTES: u32 = 9;
const SPAN_LINKS: u32 = 13;
const SPAN_STATUS: u32 = 15;
const SPAN_FLAGS: u32 = 16;
const LINK_TRACE_ID: u32 = 1;
const LINK_SPAN_ID: u32 = 2;
const LINK_FLAGS: u32 = 6;
const STATUS_MESSAGE: u32 = 2;
const STATUS_CODE: u32 = 3;
const STATUS_CODE_ERROR: u64 = 2;
const KEY_VALUE_KEY: u32 = 1;
const KEY_VALUE_VALUE: u32 = 2;
const ANY_STRING: u32 = 1;
const ANY_BOOL: u32 = 2;
const ANY_INT: u32 = 3;
const SCOPE_SPANS_SPANS: u32 = 2;
const SCOPE_SPANS_SCOPE: u32 = 1;
const RESOURCE_SPANS_RESOURCE: u32 = 1;
const RESOURCE_SPANS_SCOPE_SPANS: u32 = 2;
const REQUEST_RESOURCE_SPANS: u32 = 1;
const RESOURCE_ATTRIBUTES: u32 = 1;
const SCOPE_NAME: u32 = 1;
const SCOPE_VERSION: u32 = 2;

/// W3C `sampled` (every exported span is) and `SpanFlags.CONTEXT_HAS_IS_REMOTE`.
const FLAGS_SAMPLED_HAS_IS_REMOTE: u32 = 0x01 | 0x100;
/// `SpanFlags.CONTEXT_IS_REMOTE`.
const FLAG_IS_REMOTE: u32 = 0x200;

/// The length of a length-delimited field holding `len` bytes.
fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn put_delimited_head(tag: u32, len: usize, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

fn put_bytes(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    put_delimited_head(tag, bytes.len(), buf);
    buf.extend_from_slice(bytes);
}

fn put_fixed32(tag: u32, value: u32, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::ThirtyTwoBit, buf);
    buf.extend_from_slice(&value.to_le_bytes());
}

fn put_fixed64(tag: u32, value: u64, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::SixtyFourBit, buf);
    buf.extend_from_slice(&value.to_le_bytes());
}

fn put_varint(tag: u32, value: u64, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::Varint, buf);
    encode_varint(value, buf);
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

impl AttributeValue<'_> {
    /// The length of the `AnyValue` message.
    fn any_len(&self) -> usize {
        match self {
            AttributeValue::Str(s) => delimited_len(ANY_STRING, s.len()),
            AttributeValue::I64(i) => key_len(ANY_INT) + encoded_len_varint(*i as u64),
            AttributeValue::Bool(_) => key_len(ANY_BOOL) + 1,
        }
    }

    fn put_any(&self, buf: &mut Vec<u8>) {
        match self {
            AttributeValue::Str(s) => put_bytes(ANY_STRING, s.as_bytes(), buf),
            // int64 is written as the two's complement varint.
            AttributeValue::I64(i) => put_varint(ANY_INT, *i as u64, buf),
            AttributeValue::Bool(b) => put_varint(ANY_BOOL, u64::from(*b), buf),
        }
    }
}

impl Attribute<'_> {
    /// The length of the `KeyValue` message.
    fn len(&self) -> usize {
        delimited_len(KEY_VALUE_KEY, self.key.len()) + delimited_len(KEY_VALUE_VALUE, self.value.any_len())
    }

    /// Writes the attribute as field `tag` (a `KeyValue`) of the enclosing message.
    fn put(&self, tag: u32, buf: &mut Vec<u8>) {
        put_delimited_head(tag, self.len(), buf);
        put_bytes(KEY_VALUE_KEY, self.key.as_bytes(), buf);
        put_delimited_head(KEY_VALUE_VALUE, self.value.any_len(), buf);
        self.value.put_any(buf);
    }
}

/// The length of a `Link` to a sampled span: trace id, span id, flags.
const LINK_LEN: usize = (2 + 16) + (2 + 8) + (1 + 4);

fn status_len(error: &str) -> usize {
    delimited_len(STATUS_MESSAGE, error.len()) + key_len(STATUS_CODE) + 1
}

impl SpanRecord<'_> {
    fn name_len(&self) -> usize {
        self.name.iter().map(|p| p.len()).sum()
    }

    /// The length of the `Span` message.
    fn len(&self) -> usize {
        let mut len = delimited_len(SPAN_TRACE_ID, 16)
            + delimited_len(SPAN_SPAN_ID, 8)
            + delimited_len(SPAN_NAME, self.name_len());
        if self.parent_span_id != 0 {
            len += delimited_len(SPAN_PARENT_SPAN_ID, 8);
        }
        // The kind is a one-byte varint; times are fixed64, flags fixed32.
        len += key_len(SPAN_KIND) + 1;
        len += key_len(SPAN_START) + 8 + key_len(SPAN_END) + 8;
        len += key_len(SPAN_FLAGS) + 4;
        for a in self.attributes.iter().flatten() {
            len += delimited_len(SPAN_ATTRIBUTES, a.len());
        }
        len += self.links.len() * delimited_len(SPAN_LINKS, LINK_LEN);
        if let Some(e) = self.error {
            len += delimited_len(SPAN_STATUS, status_len(e));
        }
        len
    }

    /// Appends the span to `buf` as one entry of `ScopeSpans.spans`.
    pub fn encode_entry(&self, trace_id: TraceId, buf: &mut Vec<u8>) {
        let len = self.len();
        buf.reserve(len + 4);
        put_delimited_head(SCOPE_SPANS_SPANS, len, buf);
        put_bytes(SPAN_TRACE_ID, &trace_id.0.to_be_bytes(), buf);
        put_bytes(SPAN_SPAN_ID, &self.span_id.to_be_bytes(), buf);
        if self.parent_span_id != 0 {
            put_bytes(SPAN_PARENT_SPAN_ID, &self.parent_span_id.to_be_bytes(), buf);
        }
        put_delimited_head(SPAN_NAME, self.name_len(), buf);
        for part in self.name {
            buf.extend_from_slice(part.as_bytes());
        }
        put_varint(SPAN_KIND, self.kind as u64, buf);
        put_fixed64(SPAN_START, nanos(self.start), buf);
        put_fixed64(SPAN_END, nanos(self.end), buf);
        for a in self.attributes.iter().flatten() {
            a.put(SPAN_ATTRIBUTES, buf);
        }
        for (trace, span) in self.links {
            put_delimited_head(SPAN_LINKS, LINK_LEN, buf);
            put_bytes(LINK_TRACE_ID, &trace.0.to_be_bytes(), buf);
            put_bytes(LINK_SPAN_ID, &span.to_be_bytes(), buf);
            put_fixed32(LINK_FLAGS, FLAGS_SAMPLED_HAS_IS_REMOTE, buf);
        }
        if let Some(e) = self.error {
            put_delimited_head(SPAN_STATUS, status_len(e), buf);
            put_bytes(STATUS_MESSAGE, e.as_bytes(), buf);
            put_varint(STATUS_CODE, STATUS_CODE_ERROR, buf);
        }
        let flags = FLAGS_SAMPLED_HAS_IS_REMOTE | if self.parent_is_remote { FLAG_IS_REMOTE } else { 0 };
        put_fixed32(SPAN_FLAGS, flags, buf);
    }
}

/// What every export request of this process starts with: the resource (service name and the
/// other resource attributes) and the instrumentation scope, encoded once.
#[derive(Debug, Clone)]
pub struct Envelope {
    resource: Vec<u8>,
    scope: Vec<u8>,
}

impl Envelope {
    /// `resource` are the `Resource`'s attributes; the scope is named `scope_name`, `scope_version`.
    pub fn new(resource: &[(String, String)], scope_name: &str, scope_version: &str) -> Self {
        let mut res = Vec::new();
        for (k, v) in resource {
            // Keys of the resource are not 'static: write the KeyValue by hand.
            let value_len = delimited_len(ANY_STRING, v.len());
            let kv_len = delimited_len(KEY_VALUE_KEY, k.len()) + delimited_len(KEY_VALUE_VALUE, value_len);
            put_delimited_head(RESOURCE_ATTRIBUTES, kv_len, &mut res);
            put_bytes(KEY_VALUE_KEY, k.as_bytes(), &mut res);
            put_delimited_head(KEY_VALUE_VALUE, value_len, &mut res);
            put_bytes(ANY_STRING, v.as_bytes(), &mut res);
        }
        let mut scope = Vec::new();
        put_bytes(SCOPE_NAME, scope_name.as_bytes(), &mut scope);
        put_bytes(SCOPE_VERSION, scope_version.as_bytes(), &mut scope);
        Self { resource: res, scope }
    }

    /// Bytes to leave free at the start of a batch buffer for [`Envelope::wrap`] to write the
    /// request's head into (the head's varints are at most 10 bytes each).
    pub fn head_room(&self) -> usize {
        self.resource.len() + self.scope.len() + 5 * (1 + 10)
    }

    /// The `ExportTraceServiceRequest` of a batch buffer: [`Envelope::head_room`] bytes, then
    /// entries written by [`SpanRecord::encode_entry`]. The head is written into the room before
    /// the spans, so the spans are not copied.
    pub fn wrap(&self, mut batch: Vec<u8>) -> bytes::Bytes {
        let room = self.head_room().min(batch.len());
        let head = self.head(batch.len() - room);
        let start = room - head.len().min(room);
        if head.len() > room {
            // Cannot happen (head_room bounds the head); copy rather than write out of bounds.
            let mut out = head;
            out.extend_from_slice(&batch[room..]);
            return out.into();
        }
        batch[start..room].copy_from_slice(&head);
        bytes::Bytes::from(batch).slice(start..)
    }

    /// Everything of the request before its span entries, which take `spans` bytes.
    fn head(&self, spans: usize) -> Vec<u8> {
        let scope_spans = delimited_len(SCOPE_SPANS_SCOPE, self.scope.len()) + spans;
        let resource_spans = delimited_len(RESOURCE_SPANS_RESOURCE, self.resource.len())
            + delimited_len(RESOURCE_SPANS_SCOPE_SPANS, scope_spans);
        let mut out = Vec::with_capacity(self.head_room());
        put_delimited_head(REQUEST_RESOURCE_SPANS, resource_spans, &mut out);
        put_bytes(RESOURCE_SPANS_RESOURCE, &self.resource, &mut out);
        put_delimited_head(RESOURCE_SPANS_SCOPE_SPANS, scope_spans, &mut out);
        put_bytes(SCOPE_SPANS_SCOPE, &self.scope, &mut out);
        out
    }
}

#[cfg(test)]
mod tests;
