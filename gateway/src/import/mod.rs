//! `mosaic import openapi`: a facade generated from the OpenAPI (or Swagger 2.0) documents a
//! REST estate already has — one backend per document, one SDL file per backend, relations and
//! batches guessed, a summary of what was bound, guessed and skipped.
//!
//! `source` reads documents, `types` turns schemas into GraphQL types, `operations` turns
//! operations into root fields, `relations` nests the types, `emit` writes the text. Nothing
//! here knows the engine: the output is plain SDL and TOML, which `mosaic check` then reads like
//! any user's files.

mod answers;
mod composite;
mod emit;
mod links;
mod model;
mod names;
mod operations;
mod params;
mod relations;
mod source;
mod types;

use std::fmt;
use std::path::{Path, PathBuf};

use heck::ToSnakeCase;

pub use emit::MARKER;
use model::Registry;
use operations::{Operations, Root};
use relations::{How, Relation};
use source::Document;
use types::Builder;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{origin}: cannot read it: {reason}")]
    Read { origin: String, reason: String },
    #[error("{origin}: not JSON or YAML: {reason}")]
    Parse { origin: String, reason: String },
    #[error("{0}: not an OpenAPI document (no `openapi` or `swagger: \"2.0\"` key)")]
    NotOpenApi(String),
    #[error("{0}")]
    Usage(String),
    #[error("{path}: cannot write it: {reason}")]
    Write { path: String, reason: String },
}

/// What `mosaic import openapi` was asked.
pub struct Options {
    /// Files or `http(s)://` URLs.
    pub inputs: Vec<String>,
    /// Backend names, one per input in order; missing ones come from the file name or title.
    pub backends: Vec<String>,
    pub out: PathBuf,
    /// Guess relations between resources (`--no-relations` turns it off).
    pub relations: bool,
}

/// Something a document has that the facade does not.
pub struct Skipped {
    pub backend: String,
    pub what: String,
    pub why: String,
}

impl Skipped {
    pub fn new(backend: &str, what: &str, why: &str) -> Self {
        Skipped {
            backend: backend.to_string(),
            what: what.to_string(),
            why: why.to_string(),
        }
    }
}

/// Per backend: where it came from and what it gave.
pub struct BackendSummary {
    pub name: String,
    pub origin: String,
    pub queries: usize,
    pub mutations: usize,
}

/// What an import did.
pub struct Summary {
    pub backends: Vec<BackendSummary>,
    pub types: usize,
    /// Relations guessed (`--no-relations` turns them off).
    pub relations: Vec<Relation>,
    /// Relations the documents declare (OpenAPI `links`).
    pub links: Vec<Relation>,
    pub skipped: Vec<Skipped>,
    pub notes: Vec<String>,
    /// Files written, relative to the output folder.
    pub files: Vec<(PathBuf, String)>,
    /// `mosaic.toml` was left alone (its first line is no longer the marker).
    pub config_kept: bool,
}

fn how(h: How) -> &'static str {
    match h {
        How::Batch => "batch",
        How::FanOut => "fan-out",
        How::PerParent => "one call per parent",
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.backends {
            writeln!(
                f,
                "{}: {} queries, {} mutations bound (from {})",
                b.name, b.queries, b.mutations, b.origin
            )?;
        }
        writeln!(f, "{} types generated", self.types)?;
        let count = |h: How| self.relations.iter().filter(|r| r.how == h).count();
        writeln!(
            f,
            "{} relations guessed ({} batched, {} fanned out){}",
            self.relations.len(),
            count(How::Batch),
            count(How::FanOut),
            if self.relations.is_empty() { "" } else { ":" }
        )?;
        for r in &self.relations {
            writeln!(f, "  {}.{} -> {} ({})", r.owner, r.field, r.target, how(r.how))?;
        }
        if !self.links.is_empty() {
            writeln!(f, "{} OpenAPI links followed:", self.links.len())?;
            for r in &self.links {
                writeln!(f, "  {}.{} -> {} ({})", r.owner, r.field, r.target, how(r.how))?;
            }
        }
        if !self.skipped.is_empty() {
            writeln!(f, "{} operations skipped:", self.skipped.len())?;
            // Grouped by backend and reason: "customers: GET /_faults, GET /health: an
            // operational endpoint".
            let mut groups: Vec<(&str, &str, Vec<&str>)> = Vec::new();
            for s in &self.skipped {
                match groups.iter_mut().find(|(b, w, _)| *b == s.backend && *w == s.why) {
                    Some(g) => g.2.push(&s.what),
                    None => groups.push((&s.backend, &s.why, vec![&s.what])),
                }
            }
            for (backend, why, what) in groups {
                writeln!(f, "  {backend}: {}: {why}", what.join(", "))?;
            }
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        if self.config_kept {
            writeln!(
                f,
                "mosaic.toml kept (its first line is not the generated marker); the backends it needs:"
            )?;
            if let Some((_, text)) = self.files.iter().find(|(p, _)| p == Path::new("mosaic.toml")) {
                for line in text.lines().filter(|l| l.starts_with("[backends.")) {
                    writeln!(f, "  {line}")?;
                }
            }
        }
        Ok(())
    }
}

/// A default backend name: the file's name, or the document's title when the file's name says
/// nothing (`openapi.json`).
fn default_name(input: &str, doc: &Document) -> String {
    let file = input.trim_end_matches('/').rsplit('/').next().unwrap_or(input);
    let file = file.split('?').next().unwrap_or(file);
    let stem = [".json", ".yaml", ".yml"]
        .iter()
        .find_map(|x| file.strip_suffix(x))
        .unwrap_or(file)
        .to_snake_case();
    let generic = [
        "", "openapi", "swagger", "api", "spec", "schema", "index", "docs", "api_docs", "v1", "v2", "v3",
    ];
    let base = if generic.contains(&stem.as_str()) {
        doc.root
            .pointer("/info/title")
            .and_then(serde_json::Value::as_str)
            .map(|t| t.to_snake_case())
            .unwrap_or_default()
    } else {
        stem
    };
    let base: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    match base.chars().next() {
        None => "api".into(),
        Some(c) if c.is_ascii_digit() => format!("api_{base}"),
        Some(_) => base,
    }
}

/// The files for `docs` (backend name, document): pure, so tests and the bench call it directly.
pub fn generate(docs: Vec<(String, Document)>, relations: bool) -> Summary {
    let mut reg = Registry::default();
    let mut ops = Operations::default();
    let mut skipped = Vec::new();
    let mut notes = Vec::new();
    let mut docs = docs;
    for (i, (backend, doc)) in docs.iter_mut().enumerate() {
        let mut b = Builder::new(doc, i, backend, &mut reg);
        ops.read(&mut b, &mut skipped);
    }
    let linked = links::follow(&mut reg, &ops.links, &ops.targets, &mut notes);
    let found = if relations {
        relations::guess(&mut reg, &ops)
    } else {
        Vec::new()
    };
    let keep = emit::reachable(&reg, &ops.fields);
    let mut files = Vec::new();
    let mut tables = Vec::new();
    let mut backends = Vec::new();
    for (backend, doc) in &docs {
        let queries = ops
            .fields
            .iter()
            .filter(|f| &f.backend == backend && f.root == Root::Query)
            .count();
        let mutations = ops
            .fields
            .iter()
            .filter(|f| &f.backend == backend && f.root == Root::Mutation)
            .count();
        if queries + mutations > 0 {
            files.push((
                PathBuf::from("generated").join(format!("{backend}.graphql")),
                emit::backend_sdl(backend, &doc.origin, &reg, &keep, &ops.fields),
            ));
        } else {
            notes.push(format!("{backend}: no operation could be bound, no SDL file written"));
        }
        tables.push(emit::backend_toml(
            backend,
            doc,
            ops.negotiating.contains(backend),
            &mut notes,
        ));
        backends.push(BackendSummary {
            name: backend.clone(),
            origin: doc.origin.clone(),
            queries,
            mutations,
        });
    }
    if !ops.fields.is_empty() && !ops.fields.iter().any(|f| f.root == Root::Query) {
        notes.push(
            "no operation reads (no GET, no POST named like a read): GraphQL needs a Query field, so \
             the facade does not pass check until custom/ adds one"
                .into(),
        );
    }
    if !ops.fields.is_empty() {
        files.push((
            PathBuf::from("generated").join("_roots.graphql"),
            emit::shared_sdl(&reg, &ops.fields),
        ));
    }
    files.push((PathBuf::from("mosaic.toml"), emit::config_toml(&tables)));
    let relations: Vec<Relation> = found.into_iter().filter(|r| keep.contains(&r.owner)).collect();
    let links: Vec<Relation> = linked.into_iter().filter(|r| keep.contains(&r.owner)).collect();
    Summary {
        backends,
        types: keep.len(),
        relations,
        links,
        skipped,
        notes,
        files,
        config_kept: false,
    }
}

async fn load(input: &str) -> Result<Document, ImportError> {
    if input.starts_with("http://") || input.starts_with("https://") {
        let read = |e: reqwest::Error| ImportError::Read {
            origin: input.to_string(),
            reason: e.to_string(),
        };
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(read)?;
        let resp = client.get(input).send().await.map_err(read)?;
        if !resp.status().is_success() {
            return Err(ImportError::Read {
                origin: input.to_string(),
                reason: format!("status {}", resp.status()),
            });
        }
        let text = resp.text().await.map_err(read)?;
        source::parse(input, &text, None)
    } else {
        source::read_file(Path::new(input))
    }
}

/// Reads the inputs, names the backends.
pub async fn read_inputs(opts: &Options) -> Result<Vec<(String, Document)>, ImportError> {
    if opts.inputs.is_empty() {
        return Err(ImportError::Usage(
            "give at least one OpenAPI document (a file or a URL)".into(),
        ));
    }
    if opts.backends.len() > opts.inputs.len() {
        return Err(ImportError::Usage(format!(
            "{} --backend names for {} documents: give one per document, in order",
            opts.backends.len(),
            opts.inputs.len()
        )));
    }
    let mut out: Vec<(String, Document)> = Vec::new();
    for (i, input) in opts.inputs.iter().enumerate() {
        let doc = load(input).await?;
        let name = match opts.backends.get(i) {
            Some(n) => {
                if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    return Err(ImportError::Usage(format!(
                        "--backend {n:?}: use letters, digits, `_` and `-` (it is a [backends.NAME] of mosaic.toml)"
                    )));
                }
                n.clone()
            }
            None => default_name(input, &doc),
        };
        let mut unique = name.clone();
        let mut n = 2;
        while out.iter().any(|(b, _)| *b == unique) {
            unique = format!("{name}_{n}");
            n += 1;
        }
        out.push((unique, doc));
    }
    Ok(out)
}

fn write(path: &Path, text: &str) -> Result<(), ImportError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ImportError::Write {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    std::fs::write(path, text).map_err(|e| ImportError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

const CUSTOM_README: &str = "# Your additions\n\n\
Files here are yours: `mosaic import openapi` never touches this folder. Add fields to the\n\
generated types with type extensions, in `*.graphql` files:\n\n\
```graphql\n\
extend type Customer {\n  \
  displayName: String @from(expr: \"\\\"\\\\(.name) (\\\\(.tier))\\\"\")\n\
}\n\
```\n\n\
See docs/import.md.\n";

/// Imports: reads, generates, writes. `generated/` is replaced; `mosaic.toml` is rewritten only
/// while its first line is the marker; `custom/` is created once and never touched again.
pub async fn run(opts: &Options) -> Result<Summary, ImportError> {
    let docs = read_inputs(opts).await?;
    let mut summary = generate(docs, opts.relations);
    let generated = opts.out.join("generated");
    if let Ok(entries) = std::fs::read_dir(&generated) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "graphql") {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let config = opts.out.join("mosaic.toml");
    summary.config_kept = std::fs::read_to_string(&config).is_ok_and(|t| !t.starts_with(MARKER));
    for (rel, text) in &summary.files {
        if rel == Path::new("mosaic.toml") && summary.config_kept {
            continue;
        }
        write(&opts.out.join(rel), text)?;
    }
    let custom = opts.out.join("custom");
    if !custom.exists() {
        write(&custom.join("README.md"), CUSTOM_README)?;
    }
    Ok(summary)
}
