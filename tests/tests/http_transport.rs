//! GraphQL over HTTP at `/graphql`: GET and POST, operation selection, content negotiation, the
//! status codes of malformed requests, batches and request limits.

use mosaic_tests::{assert_request_error, demo_sdl, demo_toml, encode, json_of, media_type, TestEnv};
use reqwest::header::ALLOW;
use reqwest::StatusCode;
use serde_json::{json, Value};

const JSON: &str = "application/json";
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const C001_NAME: &str = r#"{ customer(id: "C001") { name } }"#;

#[tokio::test]
async fn get_runs_a_query_from_the_query_string() {
    let env = TestEnv::start().await;
    let response = env.get_raw(&format!("query={}", encode(C001_NAME))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(media_type(&response), JSON);
    assert_eq!(
        json_of(response).await,
        json!({"data": {"customer": {"name": "Park Junseo"}}})
    );
    env.stop().await;
}

#[tokio::test]
async fn post_runs_a_query_from_a_json_body() {
    let env = TestEnv::start().await;
    let body = json!({ "query": C001_NAME }).to_string();
    let response = env.post_raw(&body, &[("content-type", JSON)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(media_type(&response), JSON);
    assert_eq!(
        json_of(response).await,
        json!({"data": {"customer": {"name": "Park Junseo"}}})
    );
    env.stop().await;
}

#[tokio::test]
async fn the_response_keeps_the_order_of_the_selection() {
    let env = TestEnv::start().await;
    let body = json!({ "query": r#"{ customer(id: "C001") { name id district } }"# }).to_string();
    let response = env.post_raw(&body, &[("content-type", JSON)]).await;
    let text = response.text().await.expect("a body");
    assert_eq!(
        text,
        r#"{"data":{"customer":{"name":"Park Junseo","id":"C001","district":"Gangnam-gu"}}}"#
    );
    env.stop().await;
}

const TWO_OPERATIONS: &str = r#"
query CustomerName($id: ID!) { customer(id: $id) { name } }
query Gangnam { district(name: "Gangnam-gu") { customers } }
"#;

#[tokio::test]
async fn operation_name_and_variables_select_and_feed_one_operation_of_a_document() {
    let env = TestEnv::start().await;
    let first = env
        .post_json(&json!({ "query": TWO_OPERATIONS, "operationName": "CustomerName", "variables": {"id": "C004"} }))
        .await;
    assert_eq!(first, json!({"data": {"customer": {"name": "Lee Hayun"}}}));
    let second = env
        .post_json(&json!({ "query": TWO_OPERATIONS, "operationName": "Gangnam" }))
        .await;
    assert_eq!(second, json!({"data": {"district": {"customers": 30}}}));
    env.stop().await;
}

#[tokio::test]
async fn get_takes_operation_name_and_variables_from_the_query_string() {
    let env = TestEnv::start().await;
    let response = env
        .get_raw(&format!(
            "query={}&operationName=CustomerName&variables={}",
            encode(TWO_OPERATIONS),
            encode(r#"{"id":"C007"}"#)
        ))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_of(response).await,
        json!({"data": {"customer": {"name": "Yoon Hayun"}}})
    );
    env.stop().await;
}

#[tokio::test]
async fn a_document_of_several_operations_without_operation_name_is_a_request_error() {
    let env = TestEnv::start().await;
    let response = env
        .post_raw(
            &json!({ "query": TWO_OPERATIONS }).to_string(),
            &[("content-type", JSON)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_request_error(&json_of(response).await);
    env.stop().await;
}

#[tokio::test]
async fn post_with_another_content_type_is_415() {
    let env = TestEnv::start().await;
    let body = json!({ "query": C001_NAME }).to_string();
    for content_type in [Some("text/plain"), Some("application/graphql"), None] {
        let headers: Vec<(&str, &str)> = content_type.map(|c| ("content-type", c)).into_iter().collect();
        let response = env.post_raw(&body, &headers).await;
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        let body = json_of(response).await;
        assert_request_error(&body);
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNSUPPORTED_MEDIA_TYPE",
            "{body}"
        );
    }
    env.stop().await;
}

#[tokio::test]
async fn post_of_invalid_json_is_400() {
    let env = TestEnv::start().await;
    for body in [r#"{"query": "{ districts { district } }""#, "not json", "[{]"] {
        let response = env.post_raw(body, &[("content-type", JSON)]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer = json_of(response).await;
        assert_request_error(&answer);
        assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{answer}");
    }
    env.stop().await;
}

#[tokio::test]
async fn a_request_without_query_is_400() {
    let env = TestEnv::start().await;
    let response = env.post_raw(r#"{"variables": {}}"#, &[("content-type", JSON)]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_request_error(&json_of(response).await);
    let response = env.get_raw("operationName=X").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_request_error(&json_of(response).await);
    env.stop().await;
}

#[tokio::test]
async fn a_validation_error_is_200_with_errors_and_no_data_as_application_json() {
    let env = TestEnv::start().await;
    let body = json!({ "query": "{ customer(id: \"C001\") { nickname } }" }).to_string();
    let response = env.post_raw(&body, &[("content-type", JSON)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(media_type(&response), JSON);
    let body = json_of(response).await;
    assert_request_error(&body);
    assert!(body.to_string().contains("nickname"), "{body}");
    env.stop().await;
}

#[tokio::test]
async fn a_validation_error_is_400_with_errors_and_no_data_as_graphql_response_json() {
    let env = TestEnv::start().await;
    let body = json!({ "query": "{ customer(id: \"C001\") { nickname } }" }).to_string();
    let headers = [("content-type", JSON), ("accept", GRAPHQL_RESPONSE_JSON)];
    let response = env.post_raw(&body, &headers).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(media_type(&response), GRAPHQL_RESPONSE_JSON);
    assert_request_error(&json_of(response).await);
    env.stop().await;
}

#[tokio::test]
async fn a_parse_error_is_a_request_error_in_both_media_types() {
    let env = TestEnv::start().await;
    let body = json!({ "query": "{ customer(id: " }).to_string();
    let response = env.post_raw(&body, &[("content-type", JSON)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_request_error(&json_of(response).await);
    let headers = [("content-type", JSON), ("accept", GRAPHQL_RESPONSE_JSON)];
    let response = env.post_raw(&body, &headers).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_request_error(&json_of(response).await);
    env.stop().await;
}

#[tokio::test]
async fn a_successful_query_is_200_in_graphql_response_json_when_asked() {
    let env = TestEnv::start().await;
    let body = json!({ "query": C001_NAME }).to_string();
    let headers = [("content-type", JSON), ("accept", GRAPHQL_RESPONSE_JSON)];
    let response = env.post_raw(&body, &headers).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(media_type(&response), GRAPHQL_RESPONSE_JSON);
    assert_eq!(
        json_of(response).await,
        json!({"data": {"customer": {"name": "Park Junseo"}}})
    );
    env.stop().await;
}

#[tokio::test]
async fn an_accept_header_without_a_json_media_type_is_406() {
    let env = TestEnv::start().await;
    let body = json!({ "query": C001_NAME }).to_string();
    let response = env
        .post_raw(&body, &[("content-type", JSON), ("accept", "text/html")])
        .await;
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
    env.stop().await;
}

#[tokio::test]
async fn a_mutation_over_get_is_405_with_allow_post_and_is_not_executed() {
    let env = TestEnv::start().await;
    env.reset_stats().await;
    let mutation = r#"mutation { transfer(input: { fromAccount: "A0001", toAccount: "A0002", amount: 1 }) { id } }"#;
    let response = env.get_raw(&format!("query={}", encode(mutation))).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        response.headers().get(ALLOW).and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    assert_request_error(&json_of(response).await);
    assert!(env.calls().await.is_empty(), "a refused mutation called a backend");
    env.stop().await;
}

#[tokio::test]
async fn other_methods_than_get_and_post_are_405_with_a_code_and_head_is_get_without_a_body() {
    let env = TestEnv::start().await;
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE, reqwest::Method::PATCH] {
        let response = env
            .http
            .request(method.clone(), env.graphql_url())
            .header("content-type", JSON)
            .body(json!({ "query": C001_NAME }).to_string())
            .send()
            .await
            .expect("the gateway answers");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(
            response.headers().get(ALLOW).and_then(|v| v.to_str().ok()),
            Some("GET, HEAD, POST")
        );
        let body = json_of(response).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "METHOD_NOT_ALLOWED", "{body}");
    }
    let head = env
        .http
        .head(format!("{}?query={}", env.graphql_url(), encode(C001_NAME)))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(media_type(&head), JSON);
    assert!(head.bytes().await.expect("read").is_empty(), "HEAD has no body");
    env.stop().await;
}

#[tokio::test]
async fn a_json_array_is_a_batch_answered_by_an_array_in_the_same_order() {
    let env = TestEnv::start().await;
    let batch = json!([
        { "query": C001_NAME },
        { "query": TWO_OPERATIONS, "operationName": "CustomerName", "variables": {"id": "C004"} },
        { "query": "{ district(name: \"Gangnam-gu\") { accounts } }" },
    ]);
    let response = env.post_json(&batch).await;
    assert_eq!(
        response,
        json!([
            {"data": {"customer": {"name": "Park Junseo"}}},
            {"data": {"customer": {"name": "Lee Hayun"}}},
            {"data": {"district": {"accounts": 92}}},
        ])
    );
    env.stop().await;
}

#[tokio::test]
async fn a_batch_keeps_each_operations_errors_to_itself() {
    let env = TestEnv::start().await;
    let batch = json!([
        { "query": C001_NAME },
        { "query": "{ nothing }" },
    ]);
    let response = env.post_json(&batch).await;
    let results = response.as_array().expect("an array");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0], json!({"data": {"customer": {"name": "Park Junseo"}}}));
    assert_request_error(&results[1]);
    env.stop().await;
}

/// The demo with small request limits.
async fn start_with_small_limits() -> TestEnv {
    let toml = format!(
        "{}\n[limits]\nmax_body_bytes = 2048\nmax_batch_operations = 3\n",
        demo_toml()
    );
    TestEnv::start_with(&demo_sdl(), &toml).await
}

#[tokio::test]
async fn a_body_larger_than_max_body_bytes_is_413() {
    let env = start_with_small_limits().await;
    let padding = " ".repeat(4096);
    let body = json!({ "query": format!("{{ districts {{ district }} {padding}}}") }).to_string();
    let response = env.post_raw(&body, &[("content-type", JSON)]).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let refused = json_of(response).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "REQUEST_TOO_LARGE",
        "{refused}"
    );
    let small = env.post_json(&json!({ "query": "{ districts { district } }" })).await;
    assert!(small["data"]["districts"].is_array(), "{small}");
    env.stop().await;
}

#[tokio::test]
async fn a_batch_of_more_than_max_batch_operations_is_400() {
    let env = start_with_small_limits().await;
    let op = json!({ "query": C001_NAME });
    let response = env
        .post_raw(&json!([op, op, op, op]).to_string(), &[("content-type", JSON)])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_request_error(&json_of(response).await);
    let three = env.post_json(&json!([op, op, op])).await;
    assert_eq!(three.as_array().map(Vec::len), Some(3));
    env.stop().await;
}

#[tokio::test]
async fn an_empty_batch_is_400() {
    let env = TestEnv::start().await;
    let response = env.post_raw("[]", &[("content-type", JSON)]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_request_error(&json_of(response).await);
    env.stop().await;
}

#[tokio::test]
async fn a_json_content_type_with_a_charset_is_accepted() {
    let env = TestEnv::start().await;
    let body = json!({ "query": C001_NAME }).to_string();
    let response = env
        .post_raw(&body, &[("content-type", "application/json; charset=utf-8")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    env.stop().await;
}

#[tokio::test]
async fn malformed_fields_of_a_request_are_400() {
    let env = TestEnv::start().await;
    for body in [
        json!({ "query": 42 }),
        json!({ "query": C001_NAME, "variables": [1] }),
        json!({ "query": C001_NAME, "operationName": 7 }),
    ] {
        let response = env.post_raw(&body.to_string(), &[("content-type", JSON)]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_request_error(&json_of(response).await);
    }
    let response = env
        .get_raw(&format!("query={}&variables=%7Bnot", encode(C001_NAME)))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    env.stop().await;
}

/// `extensions.code` of each error of `answer`.
fn codes(answer: &Value) -> Vec<String> {
    answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("<none>").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn request_errors_carry_the_codes_apollo_clients_expect() {
    let env = TestEnv::start().await;
    let cases = [
        (json!({ "query": "{ customer(id: " }), "GRAPHQL_PARSE_FAILED"),
        (
            json!({ "query": "{ customer(id: \"C001\") { nickname } }" }),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            json!({ "query": "{ customer(id: 5.5) { id } }" }),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (json!({ "query": "{ customer { id } }" }), "GRAPHQL_VALIDATION_FAILED"),
        (
            json!({ "query": "query Q { transferStats { completed } }", "operationName": "Nope" }),
            "OPERATION_RESOLUTION_FAILURE",
        ),
        (
            json!({ "query": "query A { transferStats { completed } } query B { transferStats { failed } }" }),
            "OPERATION_RESOLUTION_FAILURE",
        ),
        // A variable of the wrong type: the first time the document is seen, and once it is compiled.
        (
            json!({ "query": "query($id: ID!) { customer(id: $id) { id } }", "variables": { "id": {"x": 1} } }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "query": "query($id: ID!) { customer(id: $id) { id } }", "variables": { "id": "C001" } }),
            "",
        ),
        (
            json!({ "query": "query($id: ID!) { customer(id: $id) { id } }", "variables": { "id": [1, 2] } }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "query": "query($id: ID!) { customer(id: $id) { id } }", "variables": {} }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "query": "query($t: Tier) { customers(tier: $t) { id } }", "variables": { "t": "PLATINUM" } }),
            "BAD_USER_INPUT",
        ),
    ];
    for (body, expected) in cases {
        let answer = env.post_json(&body).await;
        let found = codes(&answer);
        if expected.is_empty() {
            assert!(found.is_empty(), "{body}: {answer}");
            continue;
        }
        assert!(!found.is_empty(), "{body}: {answer}");
        assert!(
            found.iter().all(|c| c == expected),
            "{body}: expected {expected}, got {answer}"
        );
    }
    env.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_described_in_the_clients_terms() {
    let env = TestEnv::start().await;
    let cases = [
        (
            r#"[[{"query": "{ districts { district } }"}]]"#,
            "operation 0 of the batch is an array",
        ),
        (
            r#"[{"query": "{ districts { district } }"}, 7]"#,
            "operation 1 of the batch is a number",
        ),
        (r#""{ districts { district } }""#, "the body is a string"),
        (r#"{"query": "{ districts { district } }""#, "not valid JSON"),
    ];
    for (body, says) in cases {
        let response = env.post_raw(body, &[("content-type", JSON)]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer = json_of(response).await;
        let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body}: {message}");
        for rust in ["struct", "RawRequest", "Vec<", "sequence"] {
            assert!(!message.contains(rust), "{body}: {message}");
        }
        assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{answer}");
    }
    env.stop().await;
}
