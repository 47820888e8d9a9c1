//! Prometheus text from a gateway's `/metrics`, parsed strictly, and the values tests read.

use prometheus_parse::{LineInfo, Scrape, Value as Metric};

use crate::infra::Served;

/// Parses the exposition text with prometheus-parse, after checking that every line is one the
/// format allows (`# HELP`, `# TYPE`, or a sample with a numeric value); the parser itself
/// skips what it does not understand.
pub fn parse_metrics(text: &str) -> Scrape {
    for line in text.lines() {
        match LineInfo::parse(line) {
            LineInfo::Doc { .. } | LineInfo::Type { .. } | LineInfo::Empty => {}
            LineInfo::Sample { value, .. } => {
                let v = value.to_ascii_lowercase();
                assert!(
                    v.parse::<f64>().is_ok() || v == "nan",
                    "a sample with a value that is not a number: {line}"
                );
            }
            LineInfo::Ignored => panic!("a line that is not Prometheus text format: {line:?}"),
        }
    }
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("the Prometheus text parses")
}

/// `/metrics` of the admin port, parsed.
pub async fn metrics(served: &Served) -> Scrape {
    parse_metrics(&served.metrics_text().await)
}

/// The value of the sample `name` (a counter, a gauge, or a histogram's `_count` or `_sum`) with
/// at least `labels`, if exposed.
pub fn metric_value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .find_map(|s| match s.value {
            Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => Some(v),
            _ => None,
        })
}
