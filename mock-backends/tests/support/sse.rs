//! A minimal Server-Sent Events reader over reqwest (chunk by chunk), with
//! a timeout on every wait.

use std::time::Duration;

use reqwest::StatusCode;

/// One SSE block: an event, or a comment (`: ping`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub comment: Option<String>,
}

impl SseEvent {
    /// `data` as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("data is not JSON ({e}): {}", self.data))
    }
}

pub struct SseClient {
    response: reqwest::Response,
    buf: String,
}

impl SseClient {
    /// Opens `url`, expecting `200 text/event-stream`.
    pub async fn open(http: &reqwest::Client, url: &str) -> Self {
        let response = http.get(url).send().await.expect("SSE request succeeds");
        assert_eq!(response.status(), StatusCode::OK, "SSE status of {url}");
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "content type {content_type}"
        );
        Self {
            response,
            buf: String::new(),
        }
    }

    /// The next block (event or comment), or `None` if the stream ended or
    /// nothing came within `timeout`.
    pub async fn next_block(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await.ok()?;
            let bytes = chunk.ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&bytes));
        }
    }

    /// The next event, skipping comments.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let block = self.next_block(left).await?;
            if block.comment.is_none() {
                return Some(block);
            }
        }
    }
}

fn parse(block: &str) -> SseEvent {
    let mut event = SseEvent::default();
    let mut data = Vec::new();
    for line in block.lines().filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match name {
            "" => event.comment = Some(value.to_owned()),
            "id" => event.id = Some(value.to_owned()),
            "event" => event.event = Some(value.to_owned()),
            "data" => data.push(value.to_owned()),
            _ => {}
        }
    }
    event.data = data.join("\n");
    event
}
