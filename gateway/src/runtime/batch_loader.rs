//! The async-graphql path's batching: a per-request `DataLoader` gathering the keys that a level's
//! resolvers ask for, then one [`call_batch`] per (binding, arguments).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use crate::backend::batch::{call_batch, KeyItems, RequestScope};
use crate::backend::payload::Answer;
use crate::backend::{BackendClients, CallError};
use crate::plan::{BindingId, Plan};

/// One parent's request for a batched field.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BatchKey {
    pub binding: BindingId,
    /// The field's arguments as JSON text: calls with different arguments are different batches.
    pub args: Arc<str>,
    /// The key as JSON text (so numbers and strings keep their type in the request).
    pub key: Arc<str>,
}

/// What a key resolved to.
#[derive(Clone)]
pub enum BatchHit {
    /// The key's items; `stale_after` when a stale answer was served after the call failed.
    Items {
        answer: Answer,
        indices: Vec<u32>,
        stale_after: Option<CallError>,
    },
    /// No answer holds the key.
    Missing,
    Failed(CallError),
}

pub struct BatchLoader {
    pub plan: Arc<Plan>,
    pub clients: BackendClients,
    pub state: Arc<super::request_state::RequestState>,
    pub headers: http::HeaderMap,
    args: Mutex<HashMap<Arc<str>, Map<String, Value>>>,
}

impl BatchLoader {
    pub fn new(
        plan: Arc<Plan>,
        clients: BackendClients,
        state: Arc<super::request_state::RequestState>,
        headers: http::HeaderMap,
    ) -> Self {
        Self {
            plan,
            clients,
            state,
            headers,
            args: Mutex::new(HashMap::new()),
        }
    }

    /// Remembers the arguments behind an `args` text so the batch can be rendered.
    pub fn register_args(&self, text: &Arc<str>, args: &Map<String, Value>) {
        let mut table = match self.args.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        table.entry(text.clone()).or_insert_with(|| args.clone());
    }
}

impl async_graphql::dataloader::Loader<BatchKey> for BatchLoader {
    type Value = BatchHit;
    type Error = std::convert::Infallible;

    async fn load(&self, keys: &[BatchKey]) -> Result<HashMap<BatchKey, BatchHit>, Self::Error> {
        let mut groups: HashMap<(BindingId, Arc<str>), Vec<&BatchKey>> = HashMap::new();
        for k in keys {
            groups.entry((k.binding, k.args.clone())).or_default().push(k);
        }
        let table = {
            let t = match self.args.lock() {
                Ok(t) => t,
                Err(p) => p.into_inner(),
            };
            t.clone()
        };
        let loads = groups.into_iter().map(|((bid, args_text), group)| {
            let table = &table;
            async move {
                let binding = self.plan.binding(bid);
                let empty = Map::new();
                let args = table.get(&args_text).unwrap_or(&empty);
                // Sorted by key text, as the compiled executor does: one set of keys, one request.
                let mut group = group;
                let mut values: Vec<Value> = group
                    .iter()
                    .map(|k| serde_json::from_str(&k.key).unwrap_or(Value::Null))
                    .collect();
                let mut order: Vec<usize> = (0..group.len()).collect();
                let text = |v: &Value| {
                    crate::backend::payload::key_text(v)
                        .map(|c| c.into_owned())
                        .unwrap_or_default()
                };
                order.sort_by_key(|i| text(&values[*i]));
                group = order.iter().map(|i| group[*i]).collect();
                values = order.iter().map(|i| values[*i].clone()).collect();
                let refs: Vec<&Value> = values.iter().collect();
                let memo = self.state.memo();
                let scope = RequestScope {
                    plan: &self.plan,
                    clients: &self.clients,
                    memo: &memo,
                    headers: &self.headers,
                    claims: self.state.identity.claims.as_deref(),
                };
                let answers = call_batch(&scope, binding, args, &refs).await;
                group
                    .into_iter()
                    .enumerate()
                    .map(|(pos, k)| {
                        let text = crate::backend::payload::key_text(&values[pos])
                            .map(|c| c.into_owned())
                            .unwrap_or_default();
                        let hit = match answers.items_for(binding, pos, &text) {
                            KeyItems::Found {
                                answer,
                                indices,
                                stale_after,
                            } => BatchHit::Items {
                                stale_after: stale_after.cloned(),
                                answer: answer.clone(),
                                indices: indices.to_vec(),
                            },
                            KeyItems::None => BatchHit::Missing,
                            KeyItems::Failed(e) => BatchHit::Failed(e.clone()),
                        };
                        (k.clone(), hit)
                    })
                    .collect::<Vec<_>>()
            }
        });
        Ok(futures::future::join_all(loads).await.into_iter().flatten().collect())
    }
}
