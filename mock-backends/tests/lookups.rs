//! Read endpoints, stats, error shapes and OpenAPI over real loopback HTTP.

mod support;

use mock_bank::Service;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::start_bank;

fn ids(items: &Value) -> Vec<String> {
    let mut ids: Vec<String> = items
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|item| item["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_lookup_returns_the_known_customers() {
    let h = start_bank().await;
    let (status, body) = h
        .get(Service::Customers, "/customers/batch?id=C002&id=C001&id=C999")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), ["C001", "C002"]);
    let c001 = body
        .as_array()
        .and_then(|items| items.iter().find(|c| c["id"] == "C001"))
        .expect("C001 present");
    assert_eq!(c001["district"], "Gangnam-gu");
    for field in ["full_name", "tier", "joined_at"] {
        assert!(c001[field].is_string(), "{field} missing in {c001}");
    }

    let too_many: String = (0..501).map(|i| format!("id=C{i:03}&")).collect();
    let (status, body) = h.get(Service::Customers, &format!("/customers/batch?{too_many}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].is_string());

    let (status, body) = h.get(Service::Accounts, "/accounts?customer_ids=C001,C002").await;
    assert_eq!(status, StatusCode::OK);
    let accounts = body.as_array().expect("an array");
    assert!(!accounts.is_empty());
    assert!(accounts
        .iter()
        .all(|a| a["customer_id"] == "C001" || a["customer_id"] == "C002"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_page_and_filter() {
    let h = start_bank().await;
    let (status, body) = h
        .get(Service::Customers, "/customers?district=Gangnam-gu&limit=5")
        .await;
    assert_eq!(status, StatusCode::OK);
    let items = body["items"].as_array().expect("items");
    assert!(items.len() <= 5 && !items.is_empty());
    assert!(items.iter().all(|c| c["district"] == "Gangnam-gu"));
    assert!(body["total"].as_u64().unwrap_or(0) >= items.len() as u64);

    let (_, body) = h.get(Service::Customers, "/customers").await;
    assert_eq!(body["total"], 200);
    assert_eq!(body["items"].as_array().map(Vec::len), Some(50));

    let (status, body) = h.get(Service::Customers, "/customers?limit=lots").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].is_string());

    let (status, body) = h.get(Service::Customers, "/customers/C404").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"error": "not found"}));
    let (status, body) = h.get(Service::Ledger, "/no/such/route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"error": "not found"}));

    let (status, body) = h
        .get(
            Service::Transfers,
            "/transfers?account_id=A0001&account_id=A0002&last=2",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let transfers = body.as_array().expect("an array");
    assert!(transfers.len() <= 4);
    let created: Vec<&str> = transfers.iter().filter_map(|t| t["created_at"].as_str()).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");

    let (_, body) = h.get(Service::Ledger, "/districts").await;
    let districts: Vec<&str> = body
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|d| d["district"].as_str())
        .collect();
    assert_eq!(districts.len(), 6);
    assert!(districts.windows(2).all(|w| w[0] < w[1]), "ordered by name");
    let (status, body) = h.get(Service::Ledger, "/districts/Mapo-gu").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["district"], "Mapo-gu");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_per_endpoint_template_and_reset() {
    let h = start_bank().await;
    h.get(Service::Customers, "/customers/batch?id=C001").await;
    h.get(Service::Customers, "/customers/batch?id=C002").await;
    h.get(Service::Customers, "/customers/C001").await;
    h.get(Service::Customers, "/customers/C002").await;
    h.get(Service::Customers, "/customers/C404").await;
    // Not business endpoints: not counted.
    h.get(Service::Customers, "/health").await;
    h.get(Service::Customers, "/openapi.json").await;
    h.get(Service::Customers, "/_faults").await;
    h.get(Service::Customers, "/unknown").await;

    let (status, stats) = h.get(Service::Customers, "/_stats").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stats,
        json!({"total": 5, "endpoints": {"GET /customers/batch": 2, "GET /customers/{id}": 3}})
    );

    let (status, _) = h.post(Service::Customers, "/_stats/reset", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, stats) = h.get(Service::Customers, "/_stats").await;
    assert_eq!(stats, json!({"total": 0, "endpoints": {}}));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_serves_openapi_and_health() {
    let h = start_bank().await;
    for service in Service::ALL {
        let (status, doc) = h.get(service, "/openapi.json").await;
        assert_eq!(status, StatusCode::OK, "{}", service.name());
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')));
        let paths = doc["paths"].as_object().expect("paths");
        assert!(paths.contains_key("/health"), "{}", service.name());
        assert!(paths.len() > 5, "{}: {:?}", service.name(), paths.keys());
        let (status, body) = h.get(service, "/health").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"status": "ok"}));
    }
    let (_, doc) = h.get(Service::Customers, "/openapi.json").await;
    assert!(doc["paths"]["/customers/{id}"]["get"].is_object());
    assert!(doc["components"]["schemas"]["Customer"].is_object());
    h.stop().await;
}
