//! Dotted paths into backend JSON (`data.items`, `owner.customer_id`, `items.0`).
//!
//! Compiled once at plan time; walking one at request time is a few map lookups.

use std::fmt;

use serde_json::Value;

/// One step of a [`JsonPath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(Box<str>),
    Index(usize),
}

/// A path into a JSON value; the empty path is the value itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct JsonPath(Vec<Segment>);

/// Why a path could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON path {path:?}: {reason}")]
pub struct JsonPathError {
    pub path: String,
    pub reason: &'static str,
}

impl JsonPath {
    /// Parses `a.b.0.c`. An empty string (or `.`) is the root.
    pub fn parse(text: &str) -> Result<Self, JsonPathError> {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed == "." {
            return Ok(Self::default());
        }
        let mut segments = Vec::new();
        for part in trimmed.split('.') {
            if part.is_empty() {
                return Err(JsonPathError {
                    path: text.into(),
                    reason: "empty segment (two dots in a row, or a leading/trailing dot)",
                });
            }
            match part.parse::<usize>() {
                Ok(i) if part.bytes().all(|b| b.is_ascii_digit()) => segments.push(Segment::Index(i)),
                _ => segments.push(Segment::Key(part.into())),
            }
        }
        Ok(Self(segments))
    }

    /// A path of these steps.
    pub fn from_segments(segments: Vec<Segment>) -> Self {
        Self(segments)
    }

    /// A path of one key.
    pub fn key(name: &str) -> Self {
        Self(vec![Segment::Key(name.into())])
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// The value at this path, or `None` when a step is missing or of the wrong kind.
    #[inline]
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        let mut cur = value;
        for seg in &self.0 {
            cur = match (seg, cur) {
                (Segment::Key(k), Value::Object(map)) => object_get(map, k)?,
                (Segment::Index(i), Value::Array(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }
}

/// A key of a JSON object. Backend objects are small: a scan comparing lengths first finds the
/// key with at most one byte comparison, where the map's ordered search would call `memcmp` for
/// every key it passes. Large objects use the map's search.
#[inline]
pub fn object_get<'v>(map: &'v serde_json::Map<String, Value>, key: &str) -> Option<&'v Value> {
    if map.len() > 16 {
        return map.get(key);
    }
    let bytes = key.as_bytes();
    map.iter()
        .find(|(k, _)| k.len() == bytes.len() && k.as_bytes() == bytes)
        .map(|(_, v)| v)
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            match seg {
                Segment::Key(k) => f.write_str(k)?,
                Segment::Index(n) => write!(f, "{n}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn walks_keys_and_indexes() {
        let v = json!({"data": {"items": [{"id": 1}, {"id": 2}]}});
        let p = JsonPath::parse("data.items.1.id").expect("valid");
        assert_eq!(p.get(&v), Some(&json!(2)));
        assert_eq!(JsonPath::parse("").expect("root").get(&v), Some(&v));
        assert_eq!(JsonPath::parse("data.nope").expect("valid").get(&v), None);
    }

    #[test]
    fn rejects_empty_segments() {
        assert!(JsonPath::parse("a..b").is_err());
        assert!(JsonPath::parse(".a").is_err());
    }
}
