//! The files the tests read: the demo's schema, config and example operations (`schema/` at the
//! workspace root), this crate's fixtures, and a way to take a directive out of a schema.

use std::path::{Path, PathBuf};

/// The demo's schema folder (`schema/` at the workspace root).
pub fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("schema")
}

/// This crate's fixtures folder (`tests/fixtures/`).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The demo schema's SDL (`schema/bank.graphql`).
pub fn demo_sdl() -> String {
    read(&schema_dir().join("bank.graphql"))
}

/// The demo's `mosaic.toml`.
pub fn demo_toml() -> String {
    read(&schema_dir().join("mosaic.toml"))
}

/// `sdl` without any use of the directive `@name` (with its arguments, however many lines they
/// take). Tests that measure something a directive would change (call counts and `@cache`, null
/// propagation and `@fallback`) take it out of the demo schema.
pub fn without_directive(sdl: &str, name: &str) -> String {
    let needle = format!("@{name}");
    let mut out = String::with_capacity(sdl.len());
    let mut rest = sdl;
    while let Some(at) = rest.find(&needle) {
        let after = &rest[at + needle.len()..];
        if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            // A longer name (`@cached` when removing `@cache`): keep it.
            out.push_str(&rest[..at + needle.len()]);
            rest = after;
            continue;
        }
        out.push_str(rest[..at].trim_end_matches([' ', '\t']));
        let trimmed = after.trim_start();
        rest = if trimmed.starts_with('(') {
            &trimmed[closing_paren(trimmed)..]
        } else {
            after
        };
        // A directive alone on its line leaves no blank line behind.
        if out.ends_with('\n') && rest.starts_with('\n') {
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The byte just after the `)` closing the `(` that `text` starts with (strings skipped).
fn closing_paren(text: &str) -> usize {
    let bytes = text.as_bytes();
    let (mut depth, mut i, mut in_string) = (0usize, 0usize, false);
    while i < bytes.len() {
        match (in_string, bytes[i]) {
            (true, b'\\') => i += 1,
            (_, b'"') => in_string = !in_string,
            (false, b'(') => depth += 1,
            (false, b')') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    text.len()
}

/// One operation of `schema/examples/`.
#[derive(Debug, Clone)]
pub struct Example {
    /// The file name without `.graphql`, e.g. `gangnam-total`.
    pub name: String,
    /// The operation's text.
    pub query: String,
}

/// Every example operation, ordered by file name.
pub fn examples() -> Vec<Example> {
    let dir = schema_dir().join("examples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "graphql"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| Example {
            name: p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            query: read(p),
        })
        .collect()
}

/// The example operation `name` (file name without `.graphql`).
pub fn example(name: &str) -> String {
    read(&schema_dir().join("examples").join(format!("{name}.graphql")))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::without_directive;

    #[test]
    fn without_directive_removes_every_use_with_its_arguments() {
        let sdl = "type Q {\n  a: [A!]!\n    @http(backend: \"x\", path: \"/a\")\n    @fallback(value: [])\n  b: Int @http(backend: \"x\", path: \"/(b)\") @cache(ttl: \"5s\")\n  c: Int @cached\n}\n";
        assert_eq!(
            without_directive(&without_directive(sdl, "fallback"), "cache"),
            "type Q {\n  a: [A!]!\n    @http(backend: \"x\", path: \"/a\")\n  b: Int @http(backend: \"x\", path: \"/(b)\")\n  c: Int @cached\n}\n"
        );
    }

    #[test]
    fn without_directive_leaves_an_sdl_without_it_unchanged() {
        let sdl = "type Q { a: Int @http(backend: \"x\", path: \"/a\") }\n";
        assert_eq!(without_directive(sdl, "cache"), sdl);
    }
}
