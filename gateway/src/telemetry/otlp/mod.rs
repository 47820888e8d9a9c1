//! OTLP, the wire side of traces: spans written as protobuf when they end ([`encode`]) and export
//! requests sent to the collector over HTTP or gRPC ([`export`]). Knows nothing of requests,
//! operations or sampling ([`super::traces`] decides what is recorded).

pub mod encode;
pub mod export;
