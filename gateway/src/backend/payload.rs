//! A backend's parsed answer, shared by every request that coalesced onto the call.
//!
//! Parsed once; a batch answer also keeps, built once on first use, the index from key to the
//! items matching it, so a hundred concurrent requests sharing one batch answer index it once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use crate::plan::{Binding, BindingId, JsonPath};

/// A parsed backend response body.
#[derive(Debug)]
pub struct Payload {
    pub value: Value,
    /// Size of the body as received.
    pub bytes: usize,
    /// Estimated memory the parsed value holds (what a cache entry weighs), computed on first use.
    memory: OnceLock<usize>,
    /// The backend's `Cache-Control`, if it sent one.
    pub cache_control: Option<CacheControl>,
    /// The index for the first batched binding that reads this answer (nearly always the only one).
    index: OnceLock<(BindingId, BatchIndex)>,
    /// Indexes for other bindings reading the same answer through other rules (rare).
    other_indexes: Mutex<Vec<(BindingId, Arc<BatchIndex>)>>,
}

/// The parts of `Cache-Control` a gateway cache obeys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
}

impl CacheControl {
    pub fn parse(header: &str) -> Self {
        let mut cc = Self::default();
        for part in header.split(',') {
            let part = part.trim().to_ascii_lowercase();
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n.trim().to_string(), Some(v.trim().trim_matches('"').to_string())),
                None => (part.clone(), None),
            };
            match name.as_str() {
                "max-age" => cc.max_age = value.and_then(|v| v.parse().ok()),
                "s-maxage" => cc.s_maxage = value.and_then(|v| v.parse().ok()),
                "no-store" => cc.no_store = true,
                "no-cache" => cc.no_cache = true,
                "private" => cc.private = true,
                _ => {}
            }
        }
        cc
    }

    /// How long a shared cache may keep the answer (`s-maxage` first), if the backend says.
    pub fn shared_ttl(&self) -> Option<std::time::Duration> {
        if self.no_store || self.no_cache {
            return Some(std::time::Duration::ZERO);
        }
        self.s_maxage.or(self.max_age).map(std::time::Duration::from_secs)
    }
}

/// Key → positions of the matching items in the selected list.
#[derive(Debug, Default)]
pub struct BatchIndex {
    by_key: HashMap<Box<str>, Vec<u32>>,
}

impl BatchIndex {
    pub fn get(&self, key: &str) -> &[u32] {
        self.by_key.get(key).map(Vec::as_slice).unwrap_or(&[])
    }
}

impl Payload {
    pub fn new(value: Value) -> Self {
        Self {
            value,
            bytes: 0,
            memory: OnceLock::new(),
            cache_control: None,
            index: OnceLock::new(),
            other_indexes: Mutex::new(Vec::new()),
        }
    }

    /// A payload as received: its size and caching headers.
    pub fn received(value: Value, bytes: usize, cache_control: Option<CacheControl>) -> Self {
        Self {
            value,
            bytes,
            memory: OnceLock::new(),
            cache_control,
            index: OnceLock::new(),
            other_indexes: Mutex::new(Vec::new()),
        }
    }

    /// Estimated bytes of memory this answer holds once parsed: several times its size on the
    /// wire (every value is a 32-byte enum, every string and map node a heap allocation), so a
    /// cache bounded by it is bounded in memory, not in JSON text.
    pub fn memory(&self) -> usize {
        *self
            .memory
            .get_or_init(|| std::mem::size_of::<Payload>() + heap_size(&self.value))
    }

    /// The items list at `select` (empty when absent or not a list).
    pub fn items(&self, select: &JsonPath) -> &[Value] {
        select
            .get(&self.value)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The positions of the items matching `key` under `binding`'s batch rule; the index is built
    /// once per payload and binding, and shared by every request reading the answer.
    pub fn key_indices<'p>(&'p self, binding: &Binding, key: &str) -> Cow<'p, [u32]> {
        let Some(rule) = &binding.batch else {
            return Cow::Borrowed(&[]);
        };
        let (owner, index) = self
            .index
            .get_or_init(|| (binding.id, build_index(self.items(&binding.select), &rule.item_key)));
        if *owner == binding.id {
            return Cow::Borrowed(index.get(key));
        }
        let mut others = match self.other_indexes.lock() {
            Ok(o) => o,
            Err(p) => p.into_inner(),
        };
        let idx = match others.iter().find(|(b, _)| *b == binding.id) {
            Some((_, idx)) => idx.clone(),
            None => {
                let idx = Arc::new(build_index(self.items(&binding.select), &rule.item_key));
                others.push((binding.id, idx.clone()));
                idx
            }
        };
        Cow::Owned(idx.get(key).to_vec())
    }
}

fn build_index(items: &[Value], item_key: &JsonPath) -> BatchIndex {
    let mut by_key: HashMap<Box<str>, Vec<u32>> = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some(k) = item_key.get(item).and_then(key_text) {
            by_key.entry(k.into()).or_default().push(i as u32);
        }
    }
    BatchIndex { by_key }
}

/// The text a key is matched by: strings as they are, numbers in their JSON form.
pub fn key_text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(std::borrow::Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cache_control_parses_the_directives_a_cache_obeys() {
        let cc = CacheControl::parse("public, max-age=60, s-maxage=\"30\"");
        assert_eq!(cc.shared_ttl(), Some(std::time::Duration::from_secs(30)));
        assert_eq!(
            CacheControl::parse("no-store").shared_ttl(),
            Some(std::time::Duration::ZERO)
        );
        assert!(CacheControl::parse("Private, max-age=5").private);
        assert_eq!(CacheControl::parse("").shared_ttl(), None);
    }

    #[test]
    fn index_groups_items_by_key_and_matches_numbers_to_strings() {
        let p = Payload::new(json!({"items": [{"c": 1}, {"c": "2"}, {"c": 1}]}));
        let idx = build_index(p.items(&JsonPath::key("items")), &JsonPath::key("c"));
        assert_eq!(idx.get("1"), &[0, 2]);
        assert_eq!(idx.get("2"), &[1]);
        assert!(idx.get("3").is_empty());
    }
}

/// Heap bytes under `v` (the value itself excluded): strings' buffers, arrays' slots and map
/// entries, each allocation as a malloc chunk (an 8-byte header, 16-byte steps, 32 bytes at
/// least), map entries with their share of a B-tree node. An estimate: the cache benchmark measures
/// RSS growth within about 1.3× of it (fragmentation, the cache's own bookkeeping).
fn heap_size(v: &Value) -> usize {
    const VALUE: usize = std::mem::size_of::<Value>();
    const KEY: usize = std::mem::size_of::<String>();
    // A B-tree leaf holds up to 11 entries, about two thirds full on average: each entry's slots
    // cost about 1.5 times their size, plus the node's own header.
    const ENTRY_IN_NODE: usize = (KEY + VALUE) * 3 / 2 + 8;
    let alloc = |n: usize| if n == 0 { 0 } else { ((n + 8 + 15) & !15).max(32) };
    match v {
        Value::String(s) => alloc(s.capacity()),
        Value::Array(items) => alloc(items.capacity() * VALUE) + items.iter().map(heap_size).sum::<usize>(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| ENTRY_IN_NODE + alloc(k.capacity()) + heap_size(v))
            .sum(),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    #[test]
    fn parsed_answers_weigh_more_than_their_text() {
        let text = serde_json::json!({"items": (0..100).map(|i| serde_json::json!({
            "id": format!("C{i:04}"), "name": "Kim Minjun", "district": "Gangnam-gu", "tier": "GOLD"
        })).collect::<Vec<_>>()})
        .to_string();
        let value: Value = serde_json::from_str(&text).expect("json");
        let p = Payload::received(value, text.len(), None);
        let ratio = p.memory() as f64 / text.len() as f64;
        assert!(
            (2.0..12.0).contains(&ratio),
            "memory {} for {} bytes of JSON",
            p.memory(),
            text.len()
        );
    }
}
