//! Reading the user's files: `mosaic.toml` into typed [`Settings`] and the SDL files into parsed
//! documents, each with source locations kept for diagnostics.
//!
//! This module reads and parses; it does not judge. Whether a binding names a real backend or a
//! template a real argument is decided in `plan`, which reports into the same [`Diagnostics`].

mod backends;
pub mod diagnostic;
pub mod settings;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_graphql_parser::types::ServiceDocument;

pub use diagnostic::{Diagnostic, Diagnostics, Location};
pub use settings::{BackendSettings, HumanDuration, Settings};

/// A file's display name and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: Arc<str>,
    pub text: String,
}

impl SourceFile {
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    /// The location of a byte span inside this file.
    pub fn location(&self, span: std::ops::Range<usize>) -> Location {
        Location::from_offset(&self.name, &self.text, span.start)
    }
}

/// One parsed SDL file.
#[derive(Debug, Clone)]
pub struct SdlFile {
    pub file: SourceFile,
    pub document: ServiceDocument,
}

/// Everything the user wrote, parsed but not yet validated.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub settings_file: SourceFile,
    pub settings: Settings,
    pub sdl: Vec<SdlFile>,
}

impl ConfigSource {
    /// Points a backend at another URL (the demo and tests start backends on free ports).
    pub fn set_backend_url(&mut self, backend: &str, url: &str) {
        if let Some(b) = self.settings.backends.get_mut(backend) {
            let span = b.span();
            let mut settings = b.get_ref().clone();
            settings.url = toml::Spanned::new(settings.url.span(), url.to_string());
            *b = toml::Spanned::new(span, settings);
        }
    }
}

/// Reads `mosaic.toml` at `path` and the SDL files it names (relative to its folder).
pub fn load_from_path(path: &Path) -> Result<ConfigSource, Diagnostics> {
    let settings_file = read_file(path, path)?;
    let settings = parse_settings(&settings_file)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut diags = Diagnostics::default();
    let mut sdl_files = Vec::new();
    let mut empty = Vec::new();
    for entry in &settings.schema {
        let loc = settings_file.location(entry.span());
        match schema_paths(&base.join(entry.get_ref())) {
            // An empty folder is fine beside others (one waiting for the user's additions).
            Ok(paths) if paths.is_empty() => empty.push((loc, entry.get_ref().clone())),
            Ok(paths) => {
                for p in paths {
                    match read_file(&p, &p) {
                        Ok(f) => sdl_files.push(f),
                        Err(d) => diags.extend(d),
                    }
                }
            }
            Err(e) => diags.error_with_hint(
                Some(loc),
                format!("cannot read schema path {:?}: {e}", entry.get_ref()),
                "paths in `schema` are relative to the folder of mosaic.toml",
            ),
        }
    }
    if sdl_files.is_empty() {
        for (loc, entry) in empty {
            diags.error_with_hint(
                Some(loc),
                format!("schema path {entry:?} holds no .graphql file"),
                "point `schema` at a .graphql file or a folder containing some",
            );
        }
    }
    let sdl = parse_sdl_files(sdl_files, &mut diags);
    diags.into_result(ConfigSource {
        settings_file,
        settings,
        sdl,
    })
}

/// Builds a config from in-memory texts (embedded defaults, tests). `schema` in the settings is
/// ignored: the SDL is what is given here.
pub fn load_from_sources(settings_file: SourceFile, sdl: Vec<SourceFile>) -> Result<ConfigSource, Diagnostics> {
    let settings = parse_settings(&settings_file)?;
    let mut diags = Diagnostics::default();
    let sdl = parse_sdl_files(sdl, &mut diags);
    diags.into_result(ConfigSource {
        settings_file,
        settings,
        sdl,
    })
}

fn read_file(path: &Path, display: &Path) -> Result<SourceFile, Diagnostics> {
    let name: Arc<str> = Arc::from(display.display().to_string());
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Ok(SourceFile { name, text }),
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let mut d = Diagnostics::default();
                d.error_with_hint(
                    Some(Location::from_offset(&name, &text, offset)),
                    "file is not valid UTF-8",
                    "save the file as UTF-8",
                );
                Err(d)
            }
        },
        Err(e) => {
            let mut d = Diagnostics::default();
            d.error_with_hint(
                Some(Location::new(&name, 1, 1)),
                format!("cannot read file: {e}"),
                "check the path and its permissions",
            );
            Err(d)
        }
    }
}

fn parse_settings(file: &SourceFile) -> Result<Settings, Diagnostics> {
    let mut settings = parse_typed(file)?;
    backends::expand(file, &mut settings)?;
    Ok(settings)
}

fn parse_typed(file: &SourceFile) -> Result<Settings, Diagnostics> {
    toml::from_str::<Settings>(&file.text).map_err(|e| {
        let loc = e.span().map(|s| file.location(s));
        let mut d = Diagnostics::default();
        let message = e.message().trim();
        match unknown_key(message) {
            Some((key, known)) => {
                let hint = match diagnostic::suggest(key, known.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`? (docs/config.md lists every key)"),
                    None => format!("known keys here: {}", known.join(", ")),
                };
                d.error_with_hint(loc, format!("unknown key `{key}`"), hint);
            }
            None => d.error_with_hint(
                loc,
                message.to_string(),
                "see docs/config.md for every key of mosaic.toml",
            ),
        }
        d
    })
}

/// serde's "unknown field `x`, expected one of `a`, `b`" → ("x", ["a", "b"]).
fn unknown_key(message: &str) -> Option<(&str, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let known = rest.split('`').skip(1).step_by(2).map(str::to_string).collect();
    Some((key, known))
}

fn parse_sdl_files(files: Vec<SourceFile>, diags: &mut Diagnostics) -> Vec<SdlFile> {
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        match async_graphql_parser::parse_schema(&file.text) {
            Ok(document) => out.push(SdlFile { file, document }),
            Err(e) => {
                let loc = e
                    .positions()
                    .next()
                    .map(|p| Location::new(&file.name, p.line, p.column));
                diags.error_with_hint(
                    loc,
                    format!("invalid GraphQL SDL: {e}"),
                    "the schema files are ordinary GraphQL SDL (type, input, enum, ...)",
                );
            }
        }
    }
    out
}

/// A file, or every `*.graphql` file of a folder (sorted, so the order is stable).
fn schema_paths(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_dir() {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "graphql" || x == "graphqls"))
            .collect();
        paths.sort();
        Ok(paths)
    } else {
        std::fs::metadata(path)?;
        Ok(vec![path.to_path_buf()])
    }
}
