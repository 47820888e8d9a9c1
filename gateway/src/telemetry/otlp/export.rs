//! Sending export requests to the collector: OTLP/HTTP (protobuf body, `POST …/v1/traces`) with
//! the gateway's reqwest, or OTLP/gRPC (`TraceService/Export`) with tonic, the request's bytes
//! passed through as they are ([`RawCodec`]). Optional gzip and the collector's headers
//! (`OTEL_EXPORTER_OTLP_HEADERS`) on both.
//!
//! Why not `opentelemetry-otlp`'s exporter: it takes `SpanData` batches and converts each span
//! into prost structs before encoding them; the gateway encodes spans when they end
//! ([`super::encode`]), so all that is left to do here is one POST of bytes.

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

use crate::config::settings::OtlpProtocol;

/// Why one export failed (the batch is lost; the queue goes on with the next).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the collector answered HTTP {0}")]
    Status(u16),
    #[error("cannot send to the collector: {0}")]
    Http(#[from] reqwest::Error),
    #[error("cannot connect to the collector: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("the collector answered gRPC {code:?}: {message}")]
    Grpc { code: tonic::Code, message: String },
    #[error("cannot compress the export: {0}")]
    Compress(#[from] std::io::Error),
}

/// Why an exporter cannot be built as configured.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("cannot build the OTLP HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("invalid OTLP endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("invalid OTLP header {0:?}: expected name=value, with a valid header name and value")]
    Header(String),
    #[error("OTLP compression {0:?} is not supported: use \"gzip\" or \"none\"")]
    Compression(String),
}

/// Sends one export request; implemented by [`Exporter`] and by the queue's tests.
pub trait Export: Send + Sync + 'static {
    fn export(&self, request: Bytes) -> impl Future<Output = Result<(), ExportError>> + Send;
}

/// How spans leave the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExporterConfig {
    pub transport: OtlpProtocol,
    /// HTTP: the full traces URL (`…/v1/traces`); gRPC: the collector's URL.
    pub endpoint: String,
    /// Sent with every export (`OTEL_EXPORTER_OTLP_HEADERS`).
    pub headers: Vec<(String, String)>,
    pub gzip: bool,
    pub timeout: Duration,
}

enum Transport {
    Http {
        client: reqwest::Client,
        url: reqwest::Url,
        headers: HeaderMap,
    },
    Grpc {
        channel: tonic::transport::Channel,
        metadata: MetadataMap,
    },
}

/// The OTLP exporter of the gateway's spans.
pub struct Exporter {
    transport: Transport,
    gzip: bool,
    timeout: Duration,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.transport {
            Transport::Http { .. } => "http/protobuf",
            Transport::Grpc { .. } => "grpc",
        };
        f.debug_struct("Exporter").field("transport", &kind).finish()
    }
}

const GRPC_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Collector answers are tiny; anything larger is not read.
const MAX_COLLECTOR_ANSWER: usize = 1 << 20;

impl Exporter {
    /// An exporter as `config` says. The gRPC channel connects on first use.
    pub fn new(config: &ExporterConfig) -> Result<Self, ExporterError> {
        let endpoint_error = |reason: String| ExporterError::Endpoint {
            endpoint: config.endpoint.clone(),
            reason,
        };
        let transport = match config.transport {
            OtlpProtocol::HttpProtobuf => {
                let url = reqwest::Url::parse(&config.endpoint).map_err(|e| endpoint_error(e.to_string()))?;
                let mut headers = HeaderMap::new();
                for (name, value) in &config.headers {
                    let bad = || ExporterError::Header(format!("{name}={value}"));
                    headers.append(
                        HeaderName::try_from(name.as_str()).map_err(|_| bad())?,
                        HeaderValue::try_from(value.as_str()).map_err(|_| bad())?,
                    );
                }
                let client = reqwest::Client::builder()
                    .timeout(config.timeout)
                    .connect_timeout(config.timeout.min(Duration::from_secs(5)))
                    .no_proxy()
                    .build()?;
                Transport::Http { client, url, headers }
            }
            OtlpProtocol::Grpc => {
                let mut endpoint = tonic::transport::Endpoint::from_shared(config.endpoint.clone())
                    .map_err(|e| endpoint_error(e.to_string()))?
                    .timeout(config.timeout)
                    .connect_timeout(config.timeout.min(Duration::from_secs(5)));
                if config.endpoint.starts_with("https:") {
                    endpoint = endpoint
                        .tls_config(tonic::transport::ClientTlsConfig::new().with_webpki_roots())
                        .map_err(|e| endpoint_error(e.to_string()))?;
                }
                let mut metadata = MetadataMap::new();
                for (name, value) in &config.headers {
                    let bad = || ExporterError::Header(format!("{name}={value}"));
                    let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| bad())?;
                    let value: MetadataValue<_> = value.parse().map_err(|_| bad())?;
                    metadata.append(key, value);
                }
                Transport::Grpc {
                    channel: endpoint.connect_lazy(),
                    metadata,
                }
            }
        };
        Ok(Self {
            transport,
            gzip: config.gzip,
            timeout: config.timeout,
        })
    }

    async fn send_http(
        &self,
        client: &reqwest::Client,
        url: &reqwest::Url,
        headers: &HeaderMap,
        request: Bytes,
    ) -> Result<(), ExportError> {
        let mut builder = client
            .post(url.clone())
            .headers(headers.clone())
            .header(CONTENT_TYPE, "application/x-protobuf");
        let body = if self.gzip {
            builder = builder.header(CONTENT_ENCODING, "gzip");
            Bytes::from(gzip(&request)?)
        } else {
            request
        };
        let mut response = builder.body(body).send().await?;
        let status = response.status();
        // Read the (small) answer so that the connection can be used again.
        let mut read = 0;
        while let Some(chunk) = response.chunk().await? {
            read += chunk.len();
            if read > MAX_COLLECTOR_ANSWER {
                break;
            }
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(ExportError::Status(status.as_u16()))
        }
    }

    async fn send_grpc(
        &self,
        channel: &tonic::transport::Channel,
        metadata: &MetadataMap,
        request: Bytes,
    ) -> Result<(), ExportError> {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        if self.gzip {
            grpc = grpc.send_compressed(CompressionEncoding::Gzip);
        }
        grpc.ready().await?;
        let mut call = tonic::Request::new(request);
        *call.metadata_mut() = metadata.clone();
        call.set_timeout(self.timeout);
        let path = http::uri::PathAndQuery::from_static(GRPC_EXPORT);
        grpc.unary(call, path, RawCodec).await.map_err(|s| ExportError::Grpc {
            code: s.code(),
            message: s.message().to_string(),
        })?;
        Ok(())
    }
}

impl Export for Exporter {
    async fn export(&self, request: Bytes) -> Result<(), ExportError> {
        match &self.transport {
            Transport::Http { client, url, headers } => self.send_http(client, url, headers, request).await,
            Transport::Grpc { channel, metadata } => self.send_grpc(channel, metadata, request).await,
        }
    }
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 4), flate2::Compression::fast());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// A tonic codec for a message that is already protobuf bytes; the answer
/// (`ExportTraceServiceResponse`) is not needed and is skipped.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
struct RawEncoder;

#[derive(Debug, Clone, Copy, Default)]
struct SkipDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = RawEncoder;
    type Decoder = SkipDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> SkipDecoder {
        SkipDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for SkipDecoder {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

/// `OTEL_EXPORTER_OTLP_HEADERS`-style text: `name=value` pairs separated by commas, values
/// percent-decoded (W3C Baggage syntax, as the OpenTelemetry specification says).
pub fn parse_headers(text: &str) -> Result<Vec<(String, String)>, ExporterError> {
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| ExporterError::Header(pair.trim().to_string()))?;
            let value = percent_encoding::percent_decode_str(value.trim())
                .decode_utf8()
                .map_err(|_| ExporterError::Header(pair.trim().to_string()))?;
            let name = name.trim();
            if name.is_empty() {
                return Err(ExporterError::Header(pair.trim().to_string()));
            }
            Ok((name.to_string(), value.into_owned()))
        })
        .collect()
}

/// `OTEL_EXPORTER_OTLP_COMPRESSION`: `gzip`, or `none`.
pub fn parse_compression(text: &str) -> Result<bool, ExporterError> {
    match text.trim() {
        "gzip" => Ok(true),
        "none" | "" => Ok(false),
        other => Err(ExporterError::Compression(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_pairs_with_percent_decoded_values() {
        let h = parse_headers("api-key=abc%20def, x-tenant = t1 ,,").expect("valid");
        assert_eq!(
            h,
            [
                ("api-key".to_string(), "abc def".to_string()),
                ("x-tenant".to_string(), "t1".to_string())
            ]
        );
        assert!(matches!(parse_headers("novalue"), Err(ExporterError::Header(_))));
        assert!(matches!(parse_headers("=v"), Err(ExporterError::Header(_))));
    }

    #[test]
    fn only_gzip_and_none_are_compressions() {
        assert!(parse_compression("gzip").expect("valid"));
        assert!(!parse_compression("none").expect("valid"));
        assert!(parse_compression("zstd").is_err());
    }

    #[test]
    fn bad_headers_are_refused_when_the_exporter_is_built() {
        for transport in [OtlpProtocol::HttpProtobuf, OtlpProtocol::Grpc] {
            let config = ExporterConfig {
                transport,
                endpoint: "http://127.0.0.1:4318/v1/traces".into(),
                headers: vec![("bad name".into(), "v".into())],
                gzip: false,
                timeout: Duration::from_secs(1),
            };
            let built = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(async { Exporter::new(&config).map(|_| ()) });
            assert!(matches!(built, Err(ExporterError::Header(_))), "{transport:?}");
        }
    }

    #[test]
    fn gzip_round_trips() {
        let data = b"spans spans spans spans".repeat(100);
        let packed = gzip(&data).expect("compressed");
        assert!(packed.len() < data.len());
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(packed.as_slice()), &mut out).expect("valid gzip");
        assert_eq!(out, data);
    }
}
