//! The warm-up documents: the operations `[server] warmup` names (files, or folders of `*.graphql`
//! and `*.gql`), read relative to the config file, compiled before the gateway reports ready.

use std::path::Path;

use super::Plan;

/// Reads the documents named by `[server] warmup`: files, or directories of `*.graphql` and
/// `*.gql` files, relative to the config file.
pub fn documents(config: &Path, plan: &Plan) -> Vec<String> {
    let base = config.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for entry in &plan.server.warmup {
        let path = base.join(entry);
        match std::fs::read_dir(&path) {
            Ok(dir) => {
                let mut found: Vec<_> = dir
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "graphql" || x == "gql"))
                    .collect();
                found.sort();
                files.extend(found);
            }
            Err(_) => files.push(path),
        }
    }
    files
        .iter()
        .filter_map(|f| match std::fs::read_to_string(f) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(file = %f.display(), error = %e, "cannot read a warm-up document");
                None
            }
        })
        .collect()
}
