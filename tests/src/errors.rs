//! Assertions on GraphQL errors shared by several test files: request errors (no `data`), backend
//! field errors (code, backend, fallback, path, location) and what errors must never show.

use mock_bank::Service;
use serde_json::Value;

use crate::TestEnv;

/// The `errors` of a response; fails the test if it has none.
pub fn errors(response: &Value) -> &Vec<Value> {
    response["errors"]
        .as_array()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| panic!("no errors: {response:#}"))
}

/// Asserts `body` is a request error: `errors`, each with a message, and no `data` key at all.
pub fn assert_request_error(body: &Value) {
    assert!(body.get("data").is_none(), "a request error has no data: {body}");
    assert!(errors(body).iter().all(|e| e["message"].is_string()), "{body}");
}

/// Asserts every error has the extensions `code`, `backend` and `fallback` (whether a `@fallback`
/// value was served), a non-empty path and a location.
pub fn assert_backend_errors(response: &Value, code: &str, backend: &str, fallback: bool) {
    for e in errors(response) {
        assert_eq!(e["extensions"]["code"], code, "{e}");
        assert_eq!(e["extensions"]["backend"], backend, "{e}");
        assert_eq!(e["extensions"]["fallback"], fallback, "{e}");
        assert!(e["path"].as_array().is_some_and(|p| !p.is_empty()), "{e}");
        assert!(e["locations"][0]["line"].is_u64(), "{e}");
    }
}

/// Asserts no error of `response` tells where a backend lives (address, port, URL) or what its
/// error body said.
pub fn assert_errors_hide_backend(env: &TestEnv, response: &Value) {
    let text = response["errors"].to_string();
    let mut secrets: Vec<String> = ["127.0.0.1", "localhost", "http://", "https://"]
        .map(String::from)
        .to_vec();
    secrets.extend(Service::ALL.map(|s| env.bank.addr(s).port().to_string()));
    // What the mock bank writes in its error bodies.
    secrets.extend(["injected", "service down", "\"error\""].map(String::from));
    for secret in secrets {
        assert!(!text.contains(&secret), "an error shows {secret:?}: {text}");
    }
}
