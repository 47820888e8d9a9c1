//! Trusted documents: the manifest of the only operations a production gateway runs, read and
//! checked at plan time (each id must be the SHA-256 of its document).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// A manifest that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the trusted documents manifest {path}: {reason}")]
pub struct ManifestError {
    pub path: String,
    pub reason: String,
}

/// The SHA-256 of a document, in lower-case hex.
pub fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        out.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    out
}

/// Reads a manifest: Apollo's `{"format": "apollo-persisted-query-manifest", "operations":
/// [{"id", "body"}]}` or a plain `{"<sha256>": "<document>"}` map. Ids are checked to be
/// the SHA-256 of their document.
pub fn read_manifest(path: &Path) -> Result<HashMap<String, std::sync::Arc<str>>, ManifestError> {
    let err = |reason: String| ManifestError {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
    let pairs: Vec<(String, String)> = match &doc {
        Value::Object(m) if m.contains_key("operations") => m["operations"]
            .as_array()
            .ok_or_else(|| err("`operations` must be a list".into()))?
            .iter()
            .filter_map(|op| {
                Some((
                    op.get("id")?.as_str()?.to_string(),
                    op.get("body")?.as_str()?.to_string(),
                ))
            })
            .collect(),
        Value::Object(m) => m
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
        _ => return Err(err("expected a JSON object".into())),
    };
    let mut out = HashMap::with_capacity(pairs.len());
    for (id, body) in pairs {
        if sha256_hex(&body) != id.to_ascii_lowercase() {
            return Err(err(format!("the id {id} is not the SHA-256 of its document")));
        }
        out.insert(id.to_ascii_lowercase(), std::sync::Arc::from(body));
    }
    Ok(out)
}
