//! A backend's parsed answer, shared by every request that coalesced onto the call.
//!
//! Parsed once; each binding reading it keeps a [`View`] of it, built once on first use: the
//! value its `select` expression gives (a path needs none) and, for a batch, the index from key
//! to the items matching it — so a hundred concurrent requests sharing one answer map and index it
//! once, and a cached answer is never mapped again.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use crate::plan::mapping::EvalError;
use crate::plan::{Binding, BindingId};

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
    /// The view of the first binding that reads this answer (nearly always the only one).
    view: OnceLock<(BindingId, Arc<View>)>,
    /// Views of other bindings reading the same answer (rare: identical calls of two fields).
    other_views: Mutex<Vec<(BindingId, Arc<View>)>>,
}

/// One binding's reading of an answer.
#[derive(Debug)]
pub struct View {
    /// What the binding's `select` expression gives (`None` when `select` is a path, read in
    /// place).
    mapped: Option<Result<Option<Value>, EvalError>>,
    /// Key → items, for a batch.
    index: OnceLock<BatchIndex>,
    /// The mapped value as a payload of its own (for async-graphql's path, which addresses
    /// values by payload and path), made on first use.
    mapped_payload: OnceLock<Arc<Payload>>,
}

/// A call's answer as one binding reads it: the payload and the binding's view of it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub payload: Arc<Payload>,
    view: Arc<View>,
}

impl Answer {
    pub fn new(payload: Arc<Payload>, binding: &Binding) -> Self {
        let view = payload.view(binding);
        Self { payload, view }
    }

    /// The selected value (the field's value, or a batch's list of items); an error when the
    /// `select` expression fails on this answer.
    pub fn selected(&self, binding: &Binding) -> Result<Option<&Value>, &EvalError> {
        match &self.view.mapped {
            None => Ok(binding.select.as_path().and_then(|p| p.get(&self.payload.value))),
            Some(Ok(v)) => Ok(v.as_ref()),
            Some(Err(e)) => Err(e),
        }
    }

    /// Where the selected value is: a payload and the path in it.
    pub fn root<'a>(
        &'a self,
        binding: &'a Binding,
    ) -> Result<(Arc<Payload>, &'a [crate::plan::json_path::Segment]), &'a EvalError> {
        match &self.view.mapped {
            None => Ok((
                self.payload.clone(),
                binding.select.as_path().map_or(&[][..], |p| p.segments()),
            )),
            Some(Ok(v)) => Ok((
                self.view
                    .mapped_payload
                    .get_or_init(|| Arc::new(Payload::new(v.clone().unwrap_or(Value::Null))))
                    .clone(),
                &[],
            )),
            Some(Err(e)) => Err(e),
        }
    }

    /// The items of a batch answer (empty when the selected value is not a list).
    pub fn items(&self, binding: &Binding) -> &[Value] {
        match self.selected(binding) {
            Ok(Some(Value::Array(items))) => items,
            _ => &[],
        }
    }

    /// The positions of the items matching `key` under `binding`'s batch rule (indexed once per
    /// answer and binding).
    pub fn key_indices(&self, binding: &Binding, key: &str) -> &[u32] {
        let Some(rule) = &binding.batch else {
            return &[];
        };
        self.view
            .index
            .get_or_init(|| build_index(self.items(binding), &rule.item_key))
            .get(key)
    }
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
            view: OnceLock::new(),
            other_views: Mutex::new(Vec::new()),
        }
    }

    /// A payload as received: its size and caching headers.
    pub fn received(value: Value, bytes: usize, cache_control: Option<CacheControl>) -> Self {
        Self {
            value,
            bytes,
            memory: OnceLock::new(),
            cache_control,
            view: OnceLock::new(),
            other_views: Mutex::new(Vec::new()),
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

    /// `binding`'s view of this answer, made on first use.
    fn view(&self, binding: &Binding) -> Arc<View> {
        let make = || {
            Arc::new(View {
                mapped: binding
                    .select
                    .as_path()
                    .is_none()
                    .then(|| binding.select.eval(&self.value, None).map(|v| v.map(Cow::into_owned))),
                index: OnceLock::new(),
                mapped_payload: OnceLock::new(),
            })
        };
        let (owner, view) = self.view.get_or_init(|| (binding.id, make()));
        if *owner == binding.id {
            return view.clone();
        }
        let mut others = match self.other_views.lock() {
            Ok(o) => o,
            Err(p) => p.into_inner(),
        };
        match others.iter().find(|(b, _)| *b == binding.id) {
            Some((_, v)) => v.clone(),
            None => {
                let v = make();
                others.push((binding.id, v.clone()));
                v
            }
        }
    }
}

fn build_index(items: &[Value], item_key: &crate::plan::mapping::Mapping) -> BatchIndex {
    let mut by_key: HashMap<Box<str>, Vec<u32>> = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Ok(Some(k)) = item_key.eval(item, None) else {
            continue;
        };
        // An item listing several keys belongs to each of them.
        for_each_key(&k, |k| by_key.entry(k.into()).or_default().push(i as u32));
    }
    BatchIndex { by_key }
}

/// Calls `f` with the text of each key in `v`: the value itself, or each item of a list.
pub fn for_each_key(v: &Value, mut f: impl FnMut(&str)) {
    match v {
        Value::Array(items) => {
            for item in items {
                if let Some(k) = key_text(item) {
                    f(&k);
                }
            }
        }
        other => {
            if let Some(k) = key_text(other) {
                f(&k);
            }
        }
    }
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
        let items = json!([{"c": 1}, {"c": "2"}, {"c": [1, 3]}]);
        let key = crate::plan::mapping::Mapping::parse("c").expect("a path");
        let idx = build_index(items.as_array().expect("a list"), &key);
        assert_eq!(idx.get("1"), &[0, 2]);
        assert_eq!(idx.get("2"), &[1]);
        assert_eq!(idx.get("3"), &[2], "an item listing several keys belongs to each");
        assert!(idx.get("4").is_empty());
    }
}

/// Heap bytes under `v` (the value itself excluded): strings' buffers, arrays' slots and map
/// entries, each allocation as a malloc chunk (an 8-byte header, 16-byte steps, 32 bytes at
/// least), map entries with their share of a B-tree node. An estimate: the cache benchmark measures
/// RSS growth within about 1.3× of it (fragmentation, the cache's own bookkeeping).
const VALUE: usize = std::mem::size_of::<Value>();
const KEY: usize = std::mem::size_of::<String>();
// A B-tree leaf holds up to 11 entries, about two thirds full on average: each entry's slots
// cost about 1.5 times their size, plus the node's own header.
const ENTRY_IN_NODE: usize = (KEY + VALUE) * 3 / 2 + 8;

/// An allocation of `n` bytes, with the allocator's header and rounding.
fn alloc(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        ((n + 8 + 15) & !15).max(32)
    }
}

fn heap_size(v: &Value) -> usize {
    match v {
        Value::String(s) => alloc(s.capacity()),
        Value::Array(items) => alloc(items.capacity() * VALUE) + items.iter().map(heap_size).sum::<usize>(),
        Value::Object(map) => map_heap_size(map),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

/// [`heap_size`] of a JSON object's map.
pub(crate) fn map_heap_size(map: &serde_json::Map<String, Value>) -> usize {
    map.iter()
        .map(|(k, v)| ENTRY_IN_NODE + alloc(k.capacity()) + heap_size(v))
        .sum()
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
