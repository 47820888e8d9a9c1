//! The pipeline's direction, kept by a test: a module may use the modules below it, never those
//! above. The order, lowest first:
//!
//! | layer | modules | what they are |
//! | --- | --- | --- |
//! | 0 | `config`, `coalesce`, `redis_link` | the user's files; mechanisms with no domain |
//! | 1 | `telemetry` | logs, metrics, traces (plain values in, never engine types) |
//! | 2 | `auth` | tokens, the request's identity, `@auth` rules |
//! | 3 | `plan` | config validated and compiled |
//! | 4 | `backend` | the call path: request building, the layer stack, answers |
//! | 5 | `response` | field errors and paths, as both executors write them |
//! | 6 | `exec` | the compiled executor |
//! | 7 | `runtime` | the async-graphql schema and executor, dispatch of operations |
//! | 8 | `server` | HTTP: routes, transports, reload, shutdown |
//! | 9 | `cli`, `import` | the `mosaic` commands; `mosaic import openapi` (text out, no engine types) |
//!
//! A use of `crate::X` in a module of a lower layer than `X` fails `uses_run_down_the_pipeline`.
//! Comments are not read.

/// The layer of each top-level module.
pub const LAYERS: &[(&str, u8)] = &[
    ("config", 0),
    ("coalesce", 0),
    ("redis_link", 0),
    ("telemetry", 1),
    ("auth", 2),
    ("plan", 3),
    ("backend", 4),
    ("response", 5),
    ("exec", 6),
    ("runtime", 7),
    ("server", 8),
    ("cli", 9),
    ("import", 9),
];

#[cfg(test)]
mod tests {
    use super::LAYERS;
    use std::path::{Path, PathBuf};

    fn layer(module: &str) -> Option<u8> {
        LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
    }

    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    #[test]
    fn uses_run_down_the_pipeline() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut all = Vec::new();
        files(&src, &mut all);
        let mut wrong = Vec::new();
        for file in &all {
            let rel = file.strip_prefix(&src).unwrap_or(file);
            let top = rel
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .unwrap_or_default()
                .trim_end_matches(".rs")
                .to_string();
            let Some(own) = layer(&top) else { continue };
            let text = std::fs::read_to_string(file).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                for (i, _) in code.match_indices("crate::") {
                    let name: String = code[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if let Some(theirs) = layer(&name) {
                        if theirs > own {
                            wrong.push(format!("{}:{}: {top} uses {name}", rel.display(), n + 1));
                        }
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "uses running up the pipeline (see layers.rs):\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn every_module_has_a_layer() {
        let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap_or_default();
        for line in lib.lines() {
            if let Some(m) = line.trim().strip_prefix("pub mod ").and_then(|m| m.strip_suffix(';')) {
                if m != "layers" {
                    assert!(layer(m).is_some(), "module {m} has no layer in layers.rs");
                }
            }
        }
    }
}
