//! Reading Mosaic's `/metrics` (Prometheus text exposition): series → value, deltas between two
//! scrapes.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

/// One scrape: `name{labels}` (as written) → value.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    series: BTreeMap<String, f64>,
}

impl Metrics {
    pub async fn scrape(http: &reqwest::Client, url: &str) -> Result<Metrics> {
        let response = http.get(url).send().await?;
        let status = response.status();
        if !status.is_success() {
            bail!("GET {url} answered {status}");
        }
        Ok(Metrics::parse(&response.text().await?))
    }

    pub fn parse(text: &str) -> Metrics {
        let mut series = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // The value follows the last space outside the labels (label values may hold spaces).
            let split = match line.rfind('}') {
                Some(close) => line[close..].find(' ').map(|i| close + i),
                None => line.find(' '),
            };
            let Some(at) = split else { continue };
            let (key, value) = line.split_at(at);
            let value = value.split_whitespace().next().unwrap_or_default();
            if let Ok(v) = value.parse::<f64>() {
                series.insert(key.trim().to_owned(), v);
            }
        }
        Metrics { series }
    }

    /// The sum of every series of metric `name` (whatever their labels); 0 if none.
    pub fn sum(&self, name: &str) -> f64 {
        self.series
            .iter()
            .filter(|(k, _)| k.as_str() == name || k.strip_prefix(name).is_some_and(|rest| rest.starts_with('{')))
            .map(|(_, v)| v)
            .fold(0.0, |a, b| a + b)
    }

    /// The counters (`*_total`, histogram `_count`/`_sum`) that changed since `before`.
    pub fn counter_deltas(&self, before: &Metrics) -> BTreeMap<String, f64> {
        self.series
            .iter()
            .filter(|(k, _)| {
                let name = k.split('{').next().unwrap_or_default();
                name.ends_with("_total") || name.ends_with("_count") || name.ends_with("_sum")
            })
            .filter_map(|(k, v)| {
                let d = v - before.series.get(k).copied().unwrap_or(0.0);
                (d != 0.0).then(|| (k.clone(), d))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_series_and_sums_by_name() {
        let text = "# HELP x\n# TYPE mosaic_cache_hits_total counter\nmosaic_cache_hits_total 12\n\
                    mosaic_backend_retries_total{backend=\"a b\"} 2\nmosaic_backend_retries_total{backend=\"c\"} 3\n\
                    mosaic_cache_hits_total_other 99\n";
        let m = Metrics::parse(text);
        assert_eq!(m.sum("mosaic_cache_hits_total"), 12.0);
        assert_eq!(m.sum("mosaic_backend_retries_total"), 5.0);
        let before = Metrics::parse("mosaic_cache_hits_total 10\n");
        let d = m.counter_deltas(&before);
        assert_eq!(d.get("mosaic_cache_hits_total"), Some(&2.0));
    }
}
