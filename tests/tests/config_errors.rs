//! Broken configurations are reported, every problem at once, each with its `file:line:col`, a
//! message and a hint — and no input, however truncated, makes the loader panic.
//!
//! The corpus is `tests/fixtures/broken/<case>/{mosaic.toml,schema.graphql}`: each case is the
//! valid base (`tests/fixtures/valid/`) broken in one place (or, for the last cases, several).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use mosaic_gateway::cli::build_plan;
use mosaic_gateway::config::{load_from_path, Diagnostics};
use mosaic_gateway::runtime::ResolverRegistry;
use mosaic_tests::fixtures_dir;

/// Loads and plans a config; `Err` holds every problem found.
fn check(config: &Path) -> Result<(), Diagnostics> {
    let source = load_from_path(config)?;
    build_plan(&source, &ResolverRegistry::new()).map(|_| ())
}

fn broken_dir() -> PathBuf {
    fixtures_dir().join("broken")
}

/// The diagnostics of a broken case, rendered, with the fixture folder's absolute path cut so the
/// text is the same on every machine (`schema.graphql:9:38: error: ...`).
fn diagnose(case: &str) -> (Diagnostics, String) {
    let dir = broken_dir().join(case);
    let diagnostics = match check(&dir.join("mosaic.toml")) {
        Ok(()) => panic!("the broken case {case} was accepted"),
        Err(d) => d,
    };
    let prefix = format!("{}{}", dir.display(), std::path::MAIN_SEPARATOR);
    let text = diagnostics.to_string().replace(&prefix, "");
    (diagnostics, text)
}

/// One expected problem: file name, line, column and a part of the message.
type Expected<'a> = (&'a str, usize, usize, &'a str);

/// Asserts the case reports exactly `expected`, in order, then snapshots the whole rendering.
fn assert_reports(case: &str, expected: &[Expected<'_>]) {
    let (diagnostics, text) = diagnose(case);
    let found: Vec<(String, usize, usize, String)> = diagnostics
        .iter()
        .map(|d| {
            let loc = d
                .location
                .as_ref()
                .unwrap_or_else(|| panic!("{case}: no location for {d}"));
            (file_name(&loc.file), loc.line, loc.column, d.message.clone())
        })
        .collect();
    assert_eq!(found.len(), expected.len(), "{case}:\n{text}");
    for ((file, line, column, message), (efile, eline, ecolumn, emessage)) in found.iter().zip(expected) {
        assert_eq!(
            (file.as_str(), *line, *column),
            (*efile, *eline, *ecolumn),
            "{case}: location of {message:?}:\n{text}"
        );
        assert!(message.contains(emessage), "{case}: {message:?} lacks {emessage:?}");
    }
    insta::assert_snapshot!(case, text);
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every case folder of the corpus, sorted.
fn cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(broken_dir())
        .expect("the corpus folder is readable")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    cases
}

#[test]
fn the_valid_base_of_the_corpus_loads() {
    if let Err(d) = check(&fixtures_dir().join("valid").join("mosaic.toml")) {
        panic!("the valid base is rejected:\n{d}");
    }
}

#[test]
fn every_case_of_the_corpus_has_a_test() {
    assert_eq!(
        cases(),
        [
            "bad-toml-syntax",
            "batch-from-bound-to-a-call",
            "batch-key-bad-expression",
            "duplicate-field",
            "duplicate-type",
            "fallback-value-wrong-type",
            "header-not-allowlisted",
            "interface-without-discriminator",
            "invalid-backend-url",
            "invalid-cors-origin",
            "invalid-duration",
            "invalid-jwks",
            "invalid-log-level",
            "invalid-otlp-endpoint",
            "invalid-rate-limit-key",
            "invalid-retry-budget",
            "invalid-sampling-ratio",
            "invalid-sdl-syntax",
            "many-list-mismatch",
            "missing-schema-file",
            "parent-field-bound-to-a-call",
            "problems-in-both-files",
            "root-field-without-binding",
            "several-problems",
            "unknown-backend",
            "unknown-directive",
            "unknown-directive-argument",
            "unknown-template-argument",
            "unknown-toml-key",
            "unknown-type",
            "weak-hs256-secret",
        ],
        "a new case in tests/fixtures/broken/ needs its own test"
    );
}

#[test]
fn unknown_backend_is_reported_at_its_name_with_the_closest_declared_one() {
    assert_reports(
        "unknown-backend",
        &[("schema.graphql", 16, 46, "unknown backend \"customer\"")],
    );
    let (d, _) = diagnose("unknown-backend");
    assert_eq!(
        d.iter().next().and_then(|d| d.hint.as_deref()),
        Some("did you mean \"customers\"?")
    );
}

#[test]
fn unknown_argument_in_a_template_is_reported_at_its_http_directive() {
    assert_reports(
        "unknown-template-argument",
        &[(
            "schema.graphql",
            16,
            31,
            "template refers to args.customerId, but `Query.customer` has no argument `customerId`",
        )],
    );
}

#[test]
fn a_template_reading_a_parent_field_bound_to_a_call_is_reported_at_its_http_directive() {
    // Any other name is a key of the parent's backend JSON, public or not.
    assert_reports(
        "parent-field-bound-to-a-call",
        &[(
            "schema.graphql",
            13,
            19,
            "parent.holder: `Account.holder` is bound to a call",
        )],
    );
}

#[test]
fn a_batch_key_expression_that_does_not_parse_is_reported_at_the_batch_with_its_column() {
    assert_reports(
        "batch-key-bad-expression",
        &[(
            "schema.graphql",
            6,
            58,
            "batch key: \".customer_id +\": the expression ends too soon (column 15)",
        )],
    );
}

#[test]
fn a_batch_from_naming_a_field_bound_to_a_call_is_reported_at_the_batch() {
    assert_reports(
        "batch-from-bound-to-a-call",
        &[(
            "schema.graphql",
            6,
            58,
            "batch from: `Customer.profile` is bound to a call",
        )],
    );
}

#[test]
fn many_false_on_a_list_field_is_reported_at_the_batch() {
    assert_reports(
        "many-list-mismatch",
        &[(
            "schema.graphql",
            6,
            58,
            "many: false gives each parent one item but the field's type is [Account!]!",
        )],
    );
}

#[test]
fn duplicate_field_is_reported_at_its_second_definition() {
    assert_reports(
        "duplicate-field",
        &[("schema.graphql", 13, 3, "field `Account.balance` is defined twice")],
    );
}

#[test]
fn duplicate_type_is_reported_at_its_second_definition_with_the_first_in_the_hint() {
    assert_reports(
        "duplicate-type",
        &[("schema.graphql", 15, 1, "type `Account` is defined twice")],
    );
    let (_, text) = diagnose("duplicate-type");
    assert!(text.contains("the first definition is at schema.graphql:9:1"), "{text}");
}

#[test]
fn unknown_type_is_reported_at_the_field_with_the_closest_type() {
    assert_reports(
        "unknown-type",
        &[(
            "schema.graphql",
            5,
            3,
            "field `Customer.accounts` has unknown type `Acount`",
        )],
    );
    let (_, text) = diagnose("unknown-type");
    assert!(text.contains("did you mean `Account`?"), "{text}");
}

#[test]
fn bad_toml_syntax_is_reported_where_the_parser_stopped() {
    assert_reports("bad-toml-syntax", &[("mosaic.toml", 7, 19, "invalid table header")]);
}

#[test]
fn unknown_toml_key_is_reported_at_the_key_with_a_suggestion() {
    assert_reports("unknown-toml-key", &[("mosaic.toml", 4, 1, "unknown key `playgrond`")]);
    let (_, text) = diagnose("unknown-toml-key");
    assert!(text.contains("`playground`"), "{text}");
}

#[test]
fn invalid_backend_url_is_reported_at_the_url() {
    assert_reports(
        "invalid-backend-url",
        &[(
            "mosaic.toml",
            8,
            7,
            "backend `accounts` url \"127.0.0.1:4002\" is invalid: relative URL without a base",
        )],
    );
}

#[test]
fn invalid_duration_is_reported_at_the_value_with_examples() {
    assert_reports(
        "invalid-duration",
        &[("mosaic.toml", 5, 11, "invalid duration \"5 parsecs\"")],
    );
    let (_, text) = diagnose("invalid-duration");
    assert!(text.contains("write e.g. \"500ms\", \"5s\", \"1m\""), "{text}");
}

#[test]
fn a_missing_jwks_file_and_a_jwks_url_without_scheme_are_reported() {
    assert_reports(
        "invalid-jwks",
        &[
            ("mosaic.toml", 11, 13, "[auth] jwks_file: cannot read"),
            (
                "mosaic.toml",
                12,
                12,
                "[auth] jwks_url \"idp.example.com/jwks.json\" is not an http(s) URL",
            ),
        ],
    );
}

#[test]
fn a_retry_budget_window_out_of_range_is_reported_not_a_panic() {
    let (diagnostics, text) = diagnose("invalid-retry-budget");
    assert_eq!(diagnostics.len(), 1, "{text}");
    assert!(text.contains("retry budget_window 0ns is out of range"), "{text}");
    assert!(text.contains("give 1s to 60s"), "{text}");
    insta::assert_snapshot!("invalid-retry-budget", text);
}

#[test]
fn a_short_hs256_secret_is_reported_without_showing_it() {
    assert_reports(
        "weak-hs256-secret",
        &[(
            "mosaic.toml",
            11,
            16,
            "[auth] hs256_secret has 6 bytes: HS256 needs a secret of at least 32 bytes",
        )],
    );
    let (_, text) = diagnose("weak-hs256-secret");
    assert!(!text.contains("s3cret"), "the secret is never printed: {text}");
}

#[test]
fn cors_origins_that_are_not_origins_or_a_wildcard_with_credentials_are_reported() {
    assert_reports(
        "invalid-cors-origin",
        &[
            (
                "mosaic.toml",
                11,
                17,
                "cors_origins entry \"https://app.example.com/\" is not an origin",
            ),
            (
                "mosaic.toml",
                11,
                45,
                "cors_origins \"*\" cannot be used with cors_allow_credentials = true",
            ),
        ],
    );
}

#[test]
fn an_unknown_rate_limit_key_is_reported_with_the_forms_allowed() {
    assert_reports(
        "invalid-rate-limit-key",
        &[(
            "mosaic.toml",
            12,
            7,
            "[rate_limit] key \"sub\" is not a way to tell clients apart",
        )],
    );
}

#[test]
fn a_sampling_ratio_above_one_is_reported_at_the_value() {
    assert_reports(
        "invalid-sampling-ratio",
        &[(
            "mosaic.toml",
            12,
            18,
            "1.5 is not a ratio: write a number from 0.0 (none) to 1.0 (all)",
        )],
    );
}

#[test]
fn an_otlp_endpoint_that_is_not_an_http_url_is_reported_at_the_value() {
    assert_reports(
        "invalid-otlp-endpoint",
        &[(
            "mosaic.toml",
            11,
            17,
            "[telemetry] otlp_endpoint \"otel-collector:4318\" is not an http(s) URL",
        )],
    );
}

#[test]
fn a_log_level_that_is_not_a_filter_is_reported_at_the_value() {
    assert_reports(
        "invalid-log-level",
        &[(
            "mosaic.toml",
            11,
            9,
            "[log] level \"info,mosaic_gateway=loud\" is not a log filter",
        )],
    );
}

#[test]
fn unknown_directive_is_reported_at_the_directive_with_the_closest_one() {
    assert_reports(
        "unknown-directive",
        &[("schema.graphql", 11, 19, "unknown directive @frm")],
    );
    let (d, _) = diagnose("unknown-directive");
    assert_eq!(
        d.iter().next().and_then(|d| d.hint.as_deref()),
        Some("did you mean @from?")
    );
}

#[test]
fn unknown_directive_argument_is_reported_at_the_argument_along_with_the_missing_one() {
    assert_reports(
        "unknown-directive-argument",
        &[
            ("schema.graphql", 16, 31, "@http needs the argument `path`"),
            ("schema.graphql", 16, 64, "unknown argument `pth` of @http"),
        ],
    );
    let (d, _) = diagnose("unknown-directive-argument");
    assert_eq!(
        d.iter().nth(1).and_then(|d| d.hint.as_deref()),
        Some("did you mean `path`?")
    );
}

#[test]
fn root_field_without_binding_is_reported_at_the_field() {
    assert_reports(
        "root-field-without-binding",
        &[(
            "schema.graphql",
            17,
            3,
            "root field `Query.customers` is not bound to anything",
        )],
    );
}

#[test]
fn header_template_not_allowlisted_is_reported_with_the_toml_to_add() {
    assert_reports(
        "header-not-allowlisted",
        &[(
            "schema.graphql",
            17,
            5,
            "template reads header `x-user`, which is not allowlisted",
        )],
    );
    let (_, text) = diagnose("header-not-allowlisted");
    assert!(text.contains("[request] headers = [\"x-user\"]"), "{text}");
}

#[test]
fn interface_with_several_implementations_and_no_discriminator_is_reported_at_the_field_returning_it() {
    assert_reports(
        "interface-without-discriminator",
        &[(
            "schema.graphql",
            31,
            3,
            "`Query.party` returns `Party`, which has 2 possible types but no @discriminator",
        )],
    );
}

#[test]
fn invalid_sdl_syntax_is_reported_where_the_parser_stopped() {
    assert_reports(
        "invalid-sdl-syntax",
        &[("schema.graphql", 12, 11, "invalid GraphQL SDL")],
    );
}

#[test]
fn missing_schema_file_is_reported_at_its_entry_in_the_toml() {
    assert_reports(
        "missing-schema-file",
        &[("mosaic.toml", 1, 29, "cannot read schema path \"accounts.graphql\"")],
    );
}

#[test]
fn fallback_value_that_does_not_fit_the_field_type_is_reported_at_the_value() {
    assert_reports(
        "fallback-value-wrong-type",
        &[(
            "schema.graphql",
            7,
            22,
            "@fallback value of `Customer.accounts` does not fit its type [Account!]!: \"none\" is not a list",
        )],
    );
}

#[test]
fn several_problems_in_one_file_are_all_reported() {
    assert_reports(
        "several-problems",
        &[
            (
                "schema.graphql",
                8,
                3,
                "field `Customer.branch` has unknown type `Branch`",
            ),
            ("schema.graphql", 7, 20, "unknown backend \"acounts\""),
            (
                "schema.graphql",
                18,
                31,
                "template refers to args.ident, but `Query.customer` has no argument `ident`",
            ),
            (
                "schema.graphql",
                19,
                3,
                "root field `Query.customers` is not bound to anything",
            ),
        ],
    );
}

#[test]
fn problems_in_the_toml_and_in_the_schema_are_reported_together() {
    assert_reports(
        "problems-in-both-files",
        &[
            ("mosaic.toml", 8, 7, "backend `accounts` url has scheme `ftp`"),
            ("schema.graphql", 17, 46, "unknown backend \"crm\""),
        ],
    );
}

#[test]
fn every_problem_in_the_corpus_comes_with_a_hint() {
    let mut missing = Vec::new();
    for case in cases() {
        let (diagnostics, _) = diagnose(&case);
        for d in diagnostics.iter() {
            if d.hint.as_deref().is_none_or(str::is_empty) {
                missing.push(format!("{case}: {}", d.message));
            }
        }
    }
    assert!(missing.is_empty(), "problems without a hint:\n{}", missing.join("\n"));
}

/// Every file of every fixture (the broken cases and the valid base), cut at every 7th byte: the
/// loader and the planner report or accept, never panic.
#[test]
fn truncated_configs_never_panic() {
    let mut dirs: Vec<PathBuf> = cases().iter().map(|c| broken_dir().join(c)).collect();
    dirs.push(fixtures_dir().join("valid"));
    let scratch = std::env::temp_dir().join(format!("mosaic-truncated-configs-{}", std::process::id()));
    let mut panics = Vec::new();
    let mut runs = 0;
    for dir in &dirs {
        for file in ["mosaic.toml", "schema.graphql"] {
            let original = std::fs::read(dir.join(file)).expect("fixture readable");
            for cut in (0..=original.len()).step_by(7) {
                let _ = std::fs::remove_dir_all(&scratch);
                std::fs::create_dir_all(&scratch).expect("scratch folder");
                for other in ["mosaic.toml", "schema.graphql"] {
                    std::fs::copy(dir.join(other), scratch.join(other)).expect("fixture copied");
                }
                std::fs::write(scratch.join(file), &original[..cut]).expect("truncated file written");
                let config = scratch.join("mosaic.toml");
                runs += 1;
                if let Err(e) = catch_unwind(AssertUnwindSafe(|| check(&config))) {
                    let message = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    panics.push(format!("{} cut at byte {cut}: {message}", dir.join(file).display()));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(runs > 1000, "only {runs} truncations ran");
    assert!(panics.is_empty(), "the loader panicked:\n{}", panics.join("\n"));
}
