//! The gateway's other routes and their settings: the playground page and its embedded assets,
//! the probes (`/livez`, `/readyz`, `/healthz`), a custom GraphQL path and switching the playground
//! and introspection off.

use mosaic_tests::{demo_sdl, demo_toml, encode, json_of, media_type, TestEnv};
use reqwest::StatusCode;
use serde_json::json;

const JSON: &str = "application/json";
const C001_NAME: &str = r#"{ customer(id: "C001") { name } }"#;

#[tokio::test]
async fn the_playground_page_uses_only_its_own_embedded_assets() {
    let env = TestEnv::start().await;
    let page = env.get("/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(media_type(&page), "text/html");
    let html = page.text().await.expect("a page");
    let references = attribute_values(&html, &["src=\"", "href=\""]);
    assert!(references.len() >= 4, "{references:?}");
    for reference in &references {
        assert!(reference.starts_with("/playground/"), "the page loads {reference}");
    }
    assert!(!html.contains("http://") && !html.contains("https://"), "{html}");
    for reference in &references {
        let asset = env.get(reference).await;
        assert_eq!(asset.status(), StatusCode::OK, "{reference}");
        let expected = if reference.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert_eq!(media_type(&asset), expected, "{reference}");
        let bytes = asset.bytes().await.expect("an asset body");
        assert!(bytes.len() > 1000, "{reference} has {} bytes", bytes.len());
    }
    env.stop().await;
}

#[tokio::test]
async fn an_unknown_playground_asset_is_404() {
    let env = TestEnv::start().await;
    assert_eq!(env.get("/playground/nothing.js").await.status(), StatusCode::NOT_FOUND);
    env.stop().await;
}

/// The values of `attr="..."` attributes in `html`.
fn attribute_values(html: &str, attrs: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for attr in attrs {
        let mut rest = html;
        while let Some(start) = rest.find(attr) {
            let after = &rest[start + attr.len()..];
            let end = after.find('"').unwrap_or(after.len());
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

#[tokio::test]
async fn liveness_and_readiness_probes_answer_200() {
    let env = TestEnv::start().await;
    for probe in ["/livez", "/readyz", "/healthz"] {
        let response = env.get(probe).await;
        assert_eq!(response.status(), StatusCode::OK, "{probe}");
    }
    env.stop().await;
}

#[tokio::test]
async fn healthz_reports_readiness_and_every_backend() {
    let env = TestEnv::start().await;
    let response = env.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(media_type(&response), JSON);
    let health = json_of(response).await;
    assert_eq!(health["status"], "ready", "{health:#}");
    let text = health["backends"].to_string();
    for service in mock_bank::Service::ALL {
        assert!(
            text.contains(&format!("\"{}\"", service.name())),
            "{} missing: {health:#}",
            service.name()
        );
    }
    env.stop().await;
}

#[tokio::test]
async fn the_graphql_path_and_the_playground_follow_the_server_settings() {
    let toml = demo_toml().replace(
        "playground = true",
        "playground = false\ngraphql_path = \"/api/graphql\"",
    );
    assert!(toml.contains("/api/graphql"), "the demo's [server] table changed");
    let env = TestEnv::start_with(&demo_sdl(), &toml).await;
    assert_eq!(env.get("/").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        env.get("/playground/graphiql.min.js").await.status(),
        StatusCode::NOT_FOUND
    );
    let response = env.get(&format!("/api/graphql?query={}", encode(C001_NAME))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_of(response).await,
        json!({"data": {"customer": {"name": "Park Junseo"}}})
    );
    env.stop().await;
}

#[tokio::test]
async fn introspection_is_refused_when_switched_off() {
    let toml = demo_toml().replace("introspection = true", "introspection = false");
    let env = TestEnv::start_with(&demo_sdl(), &toml).await;
    let response = env
        .post_json(&json!({ "query": "{ __schema { queryType { name } } }" }))
        .await;
    assert!(
        response["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{response}"
    );
    assert!(response["data"]["__schema"].is_null(), "{response}");
    let data = env.post_json(&json!({ "query": C001_NAME })).await;
    assert_eq!(data, json!({"data": {"customer": {"name": "Park Junseo"}}}));
    env.stop().await;
}
