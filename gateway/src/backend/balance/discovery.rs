//! DNS discovery: a backend URL whose host is a DNS name (a Kubernetes headless service) is
//! re-resolved periodically; each address becomes an instance.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::InstanceSet;

/// Resolves a host name to addresses (injectable for tests).
pub type Resolver =
    Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> + Send + Sync>;

/// The system resolver.
pub fn system_resolver() -> Resolver {
    Arc::new(|host: String| {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
            ips.sort();
            ips.dedup();
            Ok(ips)
        })
    })
}

/// The base URLs for `url` with its host replaced by each address.
pub fn bases_for(url: &reqwest::Url, ips: &[IpAddr]) -> Vec<String> {
    let port = url.port_or_known_default().unwrap_or(80);
    let path = url.path().trim_end_matches('/');
    ips.iter()
        .map(|ip| match ip {
            IpAddr::V4(v4) => format!("{}://{v4}:{port}{path}", url.scheme()),
            IpAddr::V6(v6) => format!("{}://[{v6}]:{port}{path}", url.scheme()),
        })
        .collect()
}

/// Resolves `url`'s host now and then every `every`, updating `set`. Stops when dropped.
pub struct DnsRefresh {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsRefresh {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DnsRefresh {
    pub fn start(set: Arc<InstanceSet>, url: reqwest::Url, every: Duration, resolver: Resolver) -> Self {
        let task = tokio::spawn(async move {
            loop {
                if let Some(host) = url.host_str() {
                    match resolver(host.trim_matches(['[', ']']).to_string()).await {
                        Ok(ips) if !ips.is_empty() => set.replace(&bases_for(&url, &ips)),
                        Ok(_) => tracing::warn!(host, "DNS answered no address; keeping the current instances"),
                        Err(e) => {
                            tracing::warn!(host, error = %e, "DNS resolution failed; keeping the current instances")
                        }
                    }
                }
                tokio::time::sleep(every).await;
            }
        });
        Self { task }
    }
}
