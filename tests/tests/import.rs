//! `mosaic import openapi`: the mock bank's own OpenAPI documents, fetched from its services,
//! make a facade that passes `mosaic check` with no N+1 risk and answers like the hand-written
//! bank schema; documents in YAML, Swagger 2.0 and with relative references import too.

use std::path::{Path, PathBuf};

use mock_bank::{Bank, Service};
use mosaic_gateway::cli::load_plan;
use mosaic_gateway::import::{self, Options, Summary};
use mosaic_gateway::plan::summary::Summary as PlanSummary;
use mosaic_gateway::runtime::ResolverRegistry;
use mosaic_tests::infra::ConfigDir;
use mosaic_tests::{fixtures_dir, TestEnv};
use serde_json::{json, Value};

const SERVICES: [Service; 5] = [
    Service::Customers,
    Service::Accounts,
    Service::Transfers,
    Service::ExternalBank,
    Service::Ledger,
];

fn bank_options(bank: &Bank, out: &Path) -> Options {
    Options {
        inputs: SERVICES
            .iter()
            .map(|s| format!("{}/openapi.json", bank.url(*s)))
            .collect(),
        backends: SERVICES.iter().map(|s| s.name().to_string()).collect(),
        out: out.to_path_buf(),
        relations: true,
    }
}

async fn generate(opts: &Options) -> Summary {
    let docs = import::read_inputs(opts).await.expect("the documents read");
    import::generate(docs, opts.relations)
}

/// The generated SDL files as one text (the test env takes one schema).
fn sdl_of(summary: &Summary) -> String {
    summary
        .files
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|x| x == "graphql"))
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn file<'a>(summary: &'a Summary, name: &str) -> &'a str {
    summary
        .files
        .iter()
        .find(|(p, _)| p == Path::new(name))
        .map(|(_, t)| t.as_str())
        .unwrap_or_else(|| panic!("{name} is generated"))
}

#[tokio::test]
async fn the_bank_imports_into_a_checked_facade_without_n_plus_1() {
    let bank = mock_bank::start(Default::default()).await.expect("the bank starts");
    let dir = ConfigDir::new("import-bank");
    let opts = bank_options(&bank, &dir.file("api"));
    let summary = import::run(&opts).await.expect("the import runs");
    let plan = load_plan(&dir.file("api/mosaic.toml"), &ResolverRegistry::new())
        .unwrap_or_else(|d| panic!("the generated facade passes mosaic check:\n{d}"));
    let check = PlanSummary::of(&plan).to_string();
    assert!(check.contains("N+1 risks:      none"), "{check}");
    // The relations a frontend wants, batched where the API has a batch endpoint.
    let text = summary.to_string();
    assert!(text.contains("Account.customer -> Customer (batch)"), "{text}");
    assert!(text.contains("Customer.accounts -> Account (batch)"), "{text}");
    assert!(
        text.contains("GET /_faults") && text.contains("an operational endpoint"),
        "{text}"
    );
    assert!(text.contains("Server-Sent Events"), "{text}");
    // Files: one per backend, the roots, the config, the user's folder.
    for f in [
        "generated/customers.graphql",
        "generated/_roots.graphql",
        "mosaic.toml",
        "custom/README.md",
    ] {
        assert!(dir.file(&format!("api/{f}")).exists(), "{f} written");
    }
    let accounts = file(&summary, "generated/accounts.graphql");
    assert!(
        accounts.contains("customerId: String! @from(path: \"customer_id\")"),
        "{accounts}"
    );
    assert!(accounts.contains("{{args.ids | csv}}"), "comma lists: {accounts}");
    assert!(accounts.contains("# guessed:"), "guesses are marked: {accounts}");
    // The user's additions of docs/import.md, in custom/, check with the generated files.
    std::fs::write(
        dir.file("api/custom/customers.graphql"),
        r#"extend type Customer {
  displayName: String @from(expr: "\"\\(.full_name) (\\(.tier))\"")
  openTransfers: [Transfer!]! @http(backend: "transfers", path: "/transfers",
    batch: {key: "from_account", from: "id", param: "account_id"})
}
"#,
    )
    .expect("write");
    load_plan(&dir.file("api/mosaic.toml"), &ResolverRegistry::new()).unwrap_or_else(|d| panic!("custom/ checks: {d}"));
    bank.shutdown().await;
}

#[tokio::test]
async fn the_imported_facade_answers_like_the_hand_written_schema() {
    let hand = TestEnv::start().await;
    let summary = generate(&bank_options(&hand.bank, Path::new("unused"))).await;
    let toml = file(&summary, "mosaic.toml").to_string();
    let imported = TestEnv::start_with(&sdl_of(&summary), &toml).await;
    // (hand-written query, imported query): the same data under the same keys.
    let pairs = [
        (
            r#"{ customer(id: "C001") { id fullName: name district tier joinedAt accounts { id balance currency bank customerId openedAt } } }"#,
            r#"{ customer(id: "C001") { id fullName district tier joinedAt accounts { id balance currency bank customerId openedAt } } }"#,
        ),
        (
            r#"{ customers(district: "Gangnam-gu", limit: 4) { id fullName: name tier accounts { id balance } } }"#,
            r#"{ customers(district: "Gangnam-gu", limit: 4) { id fullName tier accounts { id balance } } }"#,
        ),
        (
            r#"{ account(id: "A0002") { id balance owner { id fullName: name } } }"#,
            r#"{ account(id: "A0002") { id balance owner: customer { id fullName } } }"#,
        ),
        (
            r#"{ transfers(limit: 3) { id fromAccount toAccount toBank amount status createdAt } }"#,
            r#"{ transfers(limit: 3) { id fromAccount toAccount toBank amount status createdAt } }"#,
        ),
        (
            r#"{ nope: transfer(id: "T-none") { id } transfer(id: "T00001") { id amount status } }"#,
            r#"{ nope: transfer(id: "T-none") { id } transfer(id: "T00001") { id amount status } }"#,
        ),
    ];
    for (h, i) in pairs {
        let a = hand.graphql(h, json!({})).await;
        let b = imported.graphql(i, json!({})).await;
        assert!(a.get("errors").is_none(), "{h}: {a:#}");
        assert_eq!(a, b, "\nhand-written: {h}\nimported:     {i}");
        assert_ne!(a["data"], Value::Null);
    }
    imported.stop().await;
    hand.stop().await;
}

#[tokio::test]
async fn the_same_documents_give_byte_identical_files() {
    let bank = mock_bank::start(Default::default()).await.expect("the bank starts");
    let opts = bank_options(&bank, Path::new("unused"));
    let a = generate(&opts).await;
    let b = generate(&opts).await;
    assert_eq!(a.files, b.files);
    bank.shutdown().await;
}

fn fixture(name: &str) -> String {
    fixtures_dir().join("openapi").join(name).display().to_string()
}

fn import_fixture(names: &[&str], backends: &[&str], relations: bool) -> (ConfigDir, Summary) {
    let dir = ConfigDir::new("import-fixture");
    let opts = Options {
        inputs: names.iter().map(|n| fixture(n)).collect(),
        backends: backends.iter().map(|b| b.to_string()).collect(),
        out: dir.file("api"),
        relations,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let summary = rt
        .block_on(import::run(&opts))
        .unwrap_or_else(|e| panic!("import: {e}"));
    if let Err(d) = load_plan(&dir.file("api/mosaic.toml"), &ResolverRegistry::new()) {
        let files: Vec<String> = summary
            .files
            .iter()
            .map(|(p, t)| format!("--- {}\n{t}", p.display()))
            .collect();
        panic!("the generated facade fails mosaic check:\n{d}\n{}", files.join("\n"));
    }
    (dir, summary)
}

#[test]
fn swagger_2_in_yaml_imports() {
    let (_dir, summary) = import_fixture(&["petstore-swagger2.yaml"], &[], true);
    let sdl = file(&summary, "generated/petstore_swagger2.graphql");
    // Swagger's definitions, body parameters, csv collections and API keys.
    assert!(sdl.contains("type Pet {"), "{sdl}");
    assert!(sdl.contains("input PetInput {"), "{sdl}");
    assert!(sdl.contains("| csv}}"), "{sdl}");
    assert!(sdl.contains("enum PetStatus {"), "{sdl}");
    let toml = file(&summary, "mosaic.toml");
    assert!(
        toml.contains("url = \"${PETSTORE_SWAGGER2_URL:-https://petstore.example.com/v2}\""),
        "{toml}"
    );
    assert!(toml.contains("api_key = \"${PETSTORE_SWAGGER2_API_KEY}\""), "{toml}");
    let text = summary.to_string();
    assert!(
        text.contains("POST /pet/{petId}/uploadImage"),
        "multipart is skipped and said: {text}"
    );
}

#[test]
fn openapi_3_1_with_relative_references_imports() {
    let (_dir, summary) = import_fixture(&["shop/openapi.json"], &["shop"], true);
    let sdl = file(&summary, "generated/shop.graphql");
    // allOf merged, readOnly/writeOnly split, 3.1 nullable types, a discriminated union, a map,
    // int64 and date-time, a recursive type, a file reference, an illegal enum value.
    for needle in [
        "type Order {",
        "input OrderInput {",
        "union Payment @discriminator(field: \"kind\", map: {card: \"CardPayment\", iban: \"BankPayment\"}) = CardPayment | BankPayment",
        "metadata: JSON",
        "totalCents: BigInt!",
        "placedAt: DateTime!",
        "parent: Category",
        "type Money {",
        "\"in-transit\"",
        "note: String\n",
        "@deprecated",
    ] {
        assert!(sdl.contains(needle), "missing {needle:?} in:\n{sdl}");
    }
    let order = sdl
        .split("type Order {")
        .nth(1)
        .and_then(|s| s.split('}').next())
        .unwrap_or("");
    assert!(
        !order.contains("secret"),
        "writeOnly stays out of the output type: {order}"
    );
    let input = sdl
        .split("input OrderInput {")
        .nth(1)
        .and_then(|s| s.split('}').next())
        .unwrap_or("");
    assert!(
        !input.contains("\n  id:"),
        "readOnly stays out of the input type: {input}"
    );
    assert!(input.contains("secret"), "{input}");
    // Relations: a batch (array parameter) and a fan-out (no batch endpoint).
    let text = summary.to_string();
    assert!(text.contains("Order.customer -> Customer (batch)"), "{text}");
    assert!(text.contains("Order.category -> Category (fan-out)"), "{text}");
    // OpenAPI links: by operationId and by operationRef, fanned out over the parent's key; a
    // value from the request cannot be read from the parent and is said.
    assert!(text.contains("2 OpenAPI links followed"), "{text}");
    assert!(text.contains("Order.buyer -> Customer (fan-out)"), "{text}");
    assert!(text.contains("Order.section -> Category (fan-out)"), "{text}");
    assert!(
        text.contains("link `again` of GET /orders/{id}: `$request.path.id` is not in the answer"),
        "{text}"
    );
    assert!(
        sdl.contains(
            "buyer: Customer @http(backend: \"shop\", path: \"/customers/{{key}}\", fanout: {from: \"customer_id\"})"
        ),
        "{sdl}"
    );
}

#[test]
fn no_relations_guesses_nothing() {
    let (_dir, summary) = import_fixture(&["shop/openapi.json"], &["shop"], false);
    assert!(summary.relations.is_empty());
    assert!(!file(&summary, "generated/shop.graphql").contains("# guessed"));
}

#[test]
fn re_import_keeps_the_users_files() {
    let (dir, _) = import_fixture(&["shop/openapi.json"], &["shop"], true);
    let custom = dir.file("api/custom/mine.graphql");
    std::fs::write(
        &custom,
        "extend type Customer {\n  shout: String @from(expr: \".name | ascii_upcase\")\n}\n",
    )
    .expect("write");
    let config = dir.file("api/mosaic.toml");
    let owned = std::fs::read_to_string(&config)
        .expect("read")
        .replacen(import::MARKER, "# mine now", 1);
    std::fs::write(&config, &owned).expect("write");
    std::fs::write(dir.file("api/generated/stale.graphql"), "type Stale { x: Int }\n").expect("write");
    let opts = Options {
        inputs: vec![fixture("shop/openapi.json")],
        backends: vec!["shop".into()],
        out: dir.file("api"),
        relations: true,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let summary = rt.block_on(import::run(&opts)).expect("re-import");
    assert!(summary.config_kept);
    assert!(summary.to_string().contains("mosaic.toml kept"));
    assert_eq!(std::fs::read_to_string(&config).expect("read"), owned);
    assert!(custom.exists());
    assert!(
        !dir.file("api/generated/stale.graphql").exists(),
        "generated/ is regenerated"
    );
    load_plan(&config, &ResolverRegistry::new()).unwrap_or_else(|d| panic!("{d}"));
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = ConfigDir::new("import-bad");
    dir.write("not-openapi.json", "{\"hello\": 1}");
    dir.write("broken.yaml", "openapi: 3.0.0\npaths: [\n");
    // A billion laughs: aliases expanding to 9^9 strings are refused, not expanded.
    let mut laughs = String::from("openapi: 3.0.0\npaths: {}\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (prev, name) in "abcdefgh".chars().zip("bcdefghi".chars()) {
        let refs = vec![format!("*{prev}"); 9].join(", ");
        laughs.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    dir.write("laughs.yaml", &laughs);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let run = |input: PathBuf| {
        let opts = Options {
            inputs: vec![input.display().to_string()],
            backends: vec![],
            out: dir.file("out"),
            relations: true,
        };
        rt.block_on(import::run(&opts))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(run(dir.file("not-openapi.json")).contains("not an OpenAPI document"));
    assert!(run(dir.file("broken.yaml")).contains("not JSON or YAML"));
    assert!(run(dir.file("laughs.yaml")).contains("not JSON or YAML"));
    assert!(run(dir.file("missing.json")).contains("cannot read it"));
}

#[test]
fn cycles_and_deep_nesting_end_in_a_checked_facade() {
    let dir = ConfigDir::new("import-hostile");
    // `$ref` cycles through aliases and a oneOf that contains itself; 40 levels of nested objects
    // (past the importer's depth, which turns the rest into JSON); 200 levels (past the parser's).
    let cyclic = json!({"openapi": "3.0.0", "info": {"title": "cyc", "version": "1"},
        "components": {"schemas": {
            "A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"},
            "C": {"oneOf": [{"$ref": "#/components/schemas/C"}, {"type": "string"}]}}},
        "paths": {"/x": {"get": {"operationId": "getX",
            "parameters": [{"name": "q", "in": "query", "schema": {"$ref": "#/components/schemas/C"}}],
            "responses": {"200": {"description": "ok", "content": {"application/json": {"schema":
                {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/A"}, "c": {"$ref": "#/components/schemas/C"}}}}}}}}}}});
    let nested = |levels: usize| {
        let mut s = json!({"type": "string"});
        for i in 0..levels {
            s = json!({"type": "object", "properties": {format!("n{i}"): s, "a": {"type": "string"}}});
        }
        json!({"openapi": "3.0.0", "info": {"title": "deep", "version": "1"},
            "paths": {"/x": {"get": {"operationId": "getX", "responses": {"200": {"description": "ok",
                "content": {"application/json": {"schema": s}}}}}}}})
    };
    dir.write("cyclic.json", &cyclic.to_string());
    dir.write("deep.json", &nested(40).to_string());
    dir.write("deeper.json", &nested(200).to_string());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for name in ["cyclic.json", "deep.json"] {
        let out = dir.file(&format!("out-{name}"));
        let opts = Options {
            inputs: vec![dir.file(name).display().to_string()],
            backends: vec!["api".into()],
            out: out.clone(),
            relations: true,
        };
        rt.block_on(import::run(&opts))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        load_plan(&out.join("mosaic.toml"), &ResolverRegistry::new()).unwrap_or_else(|d| panic!("{name}: {d}"));
    }
    let opts = Options {
        inputs: vec![dir.file("deeper.json").display().to_string()],
        backends: vec![],
        out: dir.file("out-deeper"),
        relations: true,
    };
    let err = rt
        .block_on(import::run(&opts))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("recursion limit"), "{err}");
}
