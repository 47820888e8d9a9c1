//! Warm-up before ready: the given documents' operations compiled (so the first real requests
//! find their plans) and a connection opened to every backend instance.

use serde_json::Map;

use super::super::Runtime;
use super::prepare::cache_key;
use super::GraphQLRequest;

impl Runtime {
    /// Before reporting ready: compiles the given documents' operations (so the first real
    /// requests find their plans) and opens a connection to every backend instance.
    pub async fn warm_up(&self, documents: &[String]) {
        let started = std::time::Instant::now();
        let trusted = self.persisted.trusted_documents();
        let documents = documents.iter().map(String::as_str).chain(trusted.iter().map(|d| &**d));
        let mut compiled = 0usize;
        for doc in documents {
            let Ok(parsed) = async_graphql::parser::parse_query(doc) else {
                tracing::warn!("a warm-up document does not parse; skipped");
                continue;
            };
            // Requests name the operation or, when the document has only one, often do not:
            // both are warmed (they are cached apart); each operation is counted once.
            let names: Vec<(Option<String>, bool)> = match &parsed.operations {
                async_graphql::parser::types::DocumentOperations::Single(_) => vec![(None, true)],
                async_graphql::parser::types::DocumentOperations::Multiple(ops) => {
                    let mut names: Vec<(Option<String>, bool)> =
                        ops.keys().map(|n| (Some(n.to_string()), true)).collect();
                    if ops.len() == 1 {
                        names.push((None, false));
                    }
                    names
                }
            };
            for (name, counted) in names {
                let req = GraphQLRequest {
                    query: doc.to_string(),
                    operation_name: name,
                    ..GraphQLRequest::default()
                };
                match self.prepare(&req).await {
                    Ok(p) => {
                        let key = cache_key(&req.query, req.operation_name.as_deref());
                        let _ = self.compiled_plan(&p, &Map::new());
                        self.plans.insert(key, p);
                        compiled += usize::from(counted);
                    }
                    Err(_) => {
                        tracing::warn!(operation = ?req.operation_name, "a warm-up operation is invalid; skipped")
                    }
                }
            }
        }
        let probes = self.engine.plan.backends.iter().flat_map(|b| {
            let client = self.engine.clients.client(b.id).http.clone();
            b.instances.iter().map(move |base| {
                let url = format!("{base}{}", b.health_path);
                let client = client.clone();
                async move {
                    let _ = client.get(url).timeout(std::time::Duration::from_secs(1)).send().await;
                }
            })
        });
        futures::future::join_all(probes).await;
        tracing::info!(
            operations = compiled,
            took_ms = started.elapsed().as_millis() as u64,
            "warmed up: operations compiled, backend connections opened"
        );
    }
}
