//! Differential tests: every operation runs on the compiled executor and on async-graphql's
//! executor (with Mosaic's resolvers) against the same real backends, and the two responses must be
//! the same JSON once object keys are ordered and errors sorted by path. This is what lets the fast
//! path be trusted: async-graphql is the reference for GraphQL semantics.
//!
//! Two schemas: the demo bank (real mock services) and a "zoo" served by a small axum backend in
//! this file, built to exercise interfaces, unions, nested lists, custom scalars, enums, backend
//! values that break the schema, failing backends and argument coercion. A corpus of hand-written
//! operations runs first, then randomly generated valid operations (proptest).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, RawQuery};
use axum::routing::get;
use axum::{Json, Router};
use mock_bank::{BankConfig, Service};
use mosaic_gateway::runtime::Runtime;
use mosaic_tests::differential::{runtime, same_on_both};
use proptest::prelude::*;
use serde_json::{json, Value};

const ZOO_SDL: &str = r#"
scalar JSON
enum Color { RED GREEN }
interface Pet @discriminator(field: "kind", map: {cat: "Cat", dog: "Dog"}) { id: ID! name: String! }
type Cat implements Pet {
  id: ID!
  name: String!
  lives: Int
  ownerId: ID @from(path: "owner_id")
  toys: [Toy!]! @http(backend: "zoo", path: "/toys", batch: {key: "petId", from: "id", param: "pet_id"})
  owner: Owner @http(backend: "zoo", path: "/owners/{{parent.ownerId}}")
}
type Dog implements Pet {
  id: ID!
  name: String!
  good: Boolean
  toys: [Toy!]! @http(backend: "zoo", path: "/toys", batch: {key: "petId", from: "id", param: "pet_id"})
  favourite: Toy @http(backend: "zoo", path: "/toys", batch: {key: "petId", from: "id", param: "pet_id", many: false})
}
type Toy { petId: ID! @from(path: "pet_id") name: String! squeaky: Boolean! }
type Owner { id: ID! name: String }
type Rock { id: ID! weight: Float }
union Thing @discriminator(field: "kind", map: {cat: "Cat", dog: "Dog", rock: "Rock"}) = Cat | Dog | Rock
type Weird {
  ints: [Int]
  intsNN: [Int!] @from(path: "ints")
  matrix: [[Int]]
  big: Int
  float: Float
  strNum: String @from(path: "str_num")
  bool: Boolean
  color: Color
  badColor: Color @from(path: "bad_color")
  badColorNN: Color! @from(path: "bad_color")
  json: JSON
  missing: String
  missingNN: String! @from(path: "missing")
  nested: Weird @from(path: "self")
}
type Query {
  pets: [Pet!]! @http(backend: "zoo", path: "/pets")
  petsNullable: [Pet] @http(backend: "zoo", path: "/pets")
  goodPets: [Pet!] @http(backend: "zoo", path: "/pets/good")
  pet(id: ID!): Pet @http(backend: "zoo", path: "/pets/{{args.id}}")
  things: [Thing] @http(backend: "zoo", path: "/things")
  weird: Weird @http(backend: "zoo", path: "/weird")
  weirdNN: Weird! @http(backend: "zoo", path: "/weird")
  fail: Weird @http(backend: "zoo", path: "/fail500")
  failNN: String! @http(backend: "zoo", path: "/fail500")
  bad: Weird @http(backend: "zoo", path: "/badjson")
  down: Weird @http(backend: "gone", path: "/x")
  echo(text: String, n: Int = 3, color: Color, list: [Int!], id: ID): JSON
    @http(backend: "zoo", path: "/echo", query: {text: "{{args.text}}", n: "{{args.n}}", color: "{{args.color}}", list: "{{args.list}}", id: "{{args.id}}"})
}
"#;

fn pets() -> Value {
    json!([
        {"kind": "cat", "id": 1, "name": "Tom", "lives": 9, "owner_id": "o1"},
        {"kind": "dog", "id": "2", "name": "Rex", "good": true},
        {"kind": "cat", "id": 3, "name": null, "lives": 2.5, "owner_id": null},
        {"kind": "dog", "id": 4, "name": "Fido", "good": "yes"},
        {"kind": "fish", "id": 5, "name": "Nemo"}
    ])
}

fn weird() -> Value {
    let inner = json!({"ints": [7], "matrix": [], "big": 1, "float": 2, "str_num": false, "bool": false,
        "color": "GREEN", "bad_color": "RED", "json": null, "missing": "here"});
    json!({"ints": [1, null, 3], "matrix": [[1, 2], [3, "x"], null], "big": 5_000_000_000_i64, "float": 1.5,
        "str_num": 42, "bool": true, "color": "RED", "bad_color": "PURPLE", "json": {"a": [1, {"b": null}]},
        "missing": null, "self": inner})
}

async fn start_zoo() -> SocketAddr {
    let app = Router::new()
        .route("/pets", get(|| async { Json(pets()) }))
        .route(
            "/pets/good",
            get(|| async { Json(json!([{"kind": "dog", "id": 2, "name": "Rex", "good": true}])) }),
        )
        .route(
            "/pets/{id}",
            get(|Path(id): Path<String>| async move {
                let all = pets();
                let found = all
                    .as_array()
                    .and_then(|a| a.iter().find(|p| p["id"].to_string().trim_matches('"') == id));
                match found {
                    Some(p) => Json(p.clone()).into_response_parts(),
                    None => (axum::http::StatusCode::NOT_FOUND, Json(json!({"error": "nope"}))).into_response_parts(),
                }
            }),
        )
        .route(
            "/things",
            get(|| async {
                Json(
                    json!([{"kind": "rock", "id": "r1", "weight": 3.25}, null, {"kind": "cat", "id": 1, "name": "Tom"},
                    {"kind": "dog", "id": 2, "name": "Rex"}]),
                )
            }),
        )
        .route(
            "/toys",
            get(|RawQuery(q): RawQuery| async move {
                let q = q.unwrap_or_default();
                let mut out = Vec::new();
                for part in q.split('&') {
                    if let Some(id) = part.strip_prefix("pet_id=") {
                        match id {
                            "1" => out.push(json!({"pet_id": 1, "name": "mouse", "squeaky": true})),
                            "2" => {
                                out.push(json!({"pet_id": "2", "name": "ball", "squeaky": false}));
                                out.push(json!({"pet_id": 2, "name": "bone", "squeaky": null}));
                            }
                            "4" => out.push(json!({"pet_id": 4, "name": "stick", "squeaky": false})),
                            _ => {}
                        }
                    }
                }
                Json(Value::Array(out))
            }),
        )
        .route(
            "/owners/{id}",
            get(|Path(id): Path<String>| async move { Json(json!({"id": id, "name": format!("owner {id}")})) }),
        )
        .route("/weird", get(|| async { Json(weird()) }))
        .route(
            "/fail500",
            get(|| async {
                (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "<html>boom at 10.0.0.1</html>",
                )
            }),
        )
        .route("/badjson", get(|| async { "not json {" }))
        .route(
            "/echo",
            get(|RawQuery(q): RawQuery| async move { Json(json!({"query": q.unwrap_or_default()})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind zoo");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

trait IntoParts {
    fn into_response_parts(self) -> axum::response::Response;
}

impl<T: axum::response::IntoResponse> IntoParts for T {
    fn into_response_parts(self) -> axum::response::Response {
        self.into_response()
    }
}

const ZOO_CORPUS: &[&str] = &[
    "{ pets { id name __typename } }",
    "{ pets { id ... on Cat { lives owner { id name } } ... on Dog { good } } }",
    "{ petsNullable { id name ... on Cat { lives } } }",
    "{ goodPets { name ... on Dog { toys { name squeaky } favourite { name } } } }",
    "{ pets { ... on Dog { toys { name } } } }",
    "{ petsNullable { ... on Cat { toys { name squeaky } } ... on Dog { favourite { name } } } }",
    "{ pet(id: 1) { name ... on Cat { owner { name } } } }",
    "{ pet(id: \"2\") { __typename name } missing: pet(id: 99) { name } }",
    "{ things { __typename ... on Rock { weight } ... on Cat { name } ... on Dog { good } } }",
    "{ weird { ints matrix big float strNum bool color badColor json missing } }",
    "{ weird { intsNN } }",
    "{ weird { badColorNN } }",
    "{ weird { missingNN nested { ints badColorNN missingNN } } }",
    "{ weirdNN { missingNN } }",
    "{ weird { nested { nested { color } } } }",
    "{ fail { ints } weird { color } }",
    "{ failNN }",
    "{ bad { ints } down { ints } weird { bool } }",
    "{ a: weird { color } b: weird { color ints } }",
    "{ weird { color ...F } } fragment F on Weird { ints big }",
    "{ echo } ",
    "{ echo(text: \"a b&c\", n: 5, color: GREEN, list: [1, 2], id: 7) }",
    "{ echo(list: 3) }",
    "{ x: echo(n: 1) y: echo(n: 2) }",
    "{ pets { id @include(if: false) name @skip(if: true) ... @include(if: true) { __typename } } }",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_corpus_gives_the_same_response_on_both_executors() {
    let zoo = start_zoo().await;
    let toml = "[backends.zoo]\nurl = \"http://x\"\n[backends.gone]\nurl = \"http://127.0.0.1:9\"\ntimeout = \"2s\"\n";
    let rt = runtime(toml, ZOO_SDL, &[("zoo", format!("http://{zoo}"))]);
    for q in ZOO_CORPUS {
        same_on_both(&rt, q, json!({})).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variables_skip_and_include_give_the_same_response_on_both_executors() {
    let zoo = start_zoo().await;
    let toml = "[backends.zoo]\nurl = \"http://x\"\n[backends.gone]\nurl = \"http://127.0.0.1:9\"\n";
    let rt = runtime(toml, ZOO_SDL, &[("zoo", format!("http://{zoo}"))]);
    let q = "query Q($t: String, $n: Int = 4, $c: Color, $l: [Int!], $yes: Boolean!, $no: Boolean = false) {
        echo(text: $t, n: $n, color: $c, list: $l)
        pets @include(if: $yes) { name id @skip(if: $no) }
        weird @skip(if: $yes) { color }
    }";
    for vars in [
        json!({"yes": true}),
        json!({"yes": false, "t": "hi", "n": 1, "c": "RED", "l": [1, 2, 3]}),
        json!({"yes": true, "no": true, "l": 5}),
        json!({"yes": false, "n": null}),
    ] {
        same_on_both(&rt, q, vars).await;
    }
}

fn bank_runtime(bank: &mock_bank::Bank) -> Runtime {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema");
    let toml = std::fs::read_to_string(format!("{root}/mosaic.toml")).expect("mosaic.toml");
    let sdl = std::fs::read_to_string(format!("{root}/bank.graphql")).expect("bank.graphql");
    let urls: Vec<(&str, String)> = Service::ALL.iter().map(|s| (s.name(), bank.url(*s))).collect();
    runtime(&toml, &sdl, &urls)
}

const BANK_CORPUS: &[&str] = &[
    "{ customer(id: \"C001\") { name district accounts { id balance transfers(last: 3) { id amount status } } } }",
    "{ customers(district: \"Gangnam-gu\", limit: 20) { id name tier accounts { id balance owner { id name } } } }",
    "{ transfers(status: COMPLETED, limit: 30) { id toBank externalCalls { count lastOutcome calls { id outcome } } source { id owner { name } } } }",
    "{ districts { district totalBalance customers accounts } transferStats { completed failed externalCalls } }",
    "{ a: customer(id: \"C002\") { ...C } b: customer(id: \"C003\") { ...C } none: customer(id: \"C999\") { ...C } } fragment C on Customer { id name accounts { id } }",
    "{ customers(limit: 3, offset: 10) { __typename id accounts { __typename transfers(last: 1) { __typename id } } } }",
    "{ account(id: \"A0001\") { owner { accounts { transfers { source { id } } } } } }",
    "{ transfer(id: \"T00001\") { id fromAccount toAccount failureReason createdAt } }",
    "mutation { transfer(input: {fromAccount: \"A0002\", toAccount: \"A0003\", amount: 10, idempotencyKey: \"diff-1\"}) { id status amount } }",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_corpus_gives_the_same_response_on_both_executors() {
    let bank = mock_bank::start(BankConfig::default()).await.expect("bank");
    let rt = bank_runtime(&bank);
    for q in BANK_CORPUS {
        same_on_both(&rt, q, json!({})).await;
    }
    // With a backend failing for every call, both report the same errors and nulls.
    let client = reqwest::Client::new();
    let put = |s: Service, body: Value| client.put(format!("{}/_faults", bank.url(s))).json(&body).send();
    put(Service::Accounts, json!({"status": 503})).await.expect("fault");
    for q in &BANK_CORPUS[..3] {
        same_on_both(&rt, q, json!({})).await;
    }
    put(Service::Accounts, json!({"status": null, "down": true}))
        .await
        .expect("fault");
    put(Service::ExternalBank, json!({"status": 400})).await.expect("fault");
    for q in &BANK_CORPUS[..4] {
        same_on_both(&rt, q, json!({})).await;
    }
    bank.shutdown().await;
}

/// A random valid operation over `type_name`, from a seed.
struct OpGen<'p> {
    plan: &'p mosaic_gateway::plan::Plan,
    state: u64,
    aliases: usize,
}

impl OpGen<'_> {
    fn next(&mut self) -> u64 {
        // xorshift64*: enough randomness for choosing fields, fully reproducible from the seed.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn arg_literal(&mut self, field: &str, arg: &str, ty: &str) -> Option<String> {
        let ids = ["C001", "C002", "C010", "C150", "C404"];
        let districts = ["Gangnam-gu", "Mapo-gu", "Nowhere"];
        Some(match (field, arg, ty) {
            ("customer", "id", _) => format!("\"{}\"", ids[self.pick(ids.len())]),
            ("account", "id", _) => format!("\"A{:04}\"", 1 + self.pick(700)),
            ("transfer", "id", _) => format!("\"T{:05}\"", 1 + self.pick(2000)),
            ("district", "name", _) | (_, "district", _) => format!("\"{}\"", districts[self.pick(districts.len())]),
            (_, "limit", _) => format!("{}", self.pick(25)),
            (_, "offset", _) => format!("{}", self.pick(200)),
            (_, "last", _) => format!("{}", self.pick(4)),
            (_, "tier", _) => ["GOLD", "SILVER", "BRONZE"][self.pick(3)].to_string(),
            (_, "status", _) => ["COMPLETED", "FAILED"][self.pick(2)].to_string(),
            _ => return None,
        })
    }

    fn selection(&mut self, type_name: &str, depth: usize) -> String {
        use mosaic_gateway::plan::{named_type, TypeDef};
        let Some(fields) = self.plan.fields_of(type_name) else {
            return "__typename".into();
        };
        let fields: Vec<_> = fields.values().collect();
        let mut out = Vec::new();
        let n = 1 + self.pick(4);
        for _ in 0..n {
            let f = fields[self.pick(fields.len())];
            let target = named_type(&f.ty);
            let composite = matches!(
                self.plan.types.get(target),
                Some(TypeDef::Object(_) | TypeDef::Interface(_) | TypeDef::Union(_))
            );
            if composite && depth == 0 {
                continue;
            }
            let mut args = Vec::new();
            let mut ok = true;
            for (aname, a) in &f.args {
                let given = self.chance(60) || !a.ty.nullable && a.default.is_none();
                if given {
                    match self.arg_literal(&f.name, aname, named_type(&a.ty)) {
                        Some(v) => args.push(format!("{aname}: {v}")),
                        None if !a.ty.nullable && a.default.is_none() => ok = false,
                        None => {}
                    }
                }
            }
            if !ok {
                continue;
            }
            self.aliases += 1;
            let mut text = format!("f{}: {}", self.aliases, f.name);
            if !args.is_empty() {
                text.push_str(&format!("({})", args.join(", ")));
            }
            if self.chance(10) {
                text.push_str(if self.chance(50) {
                    " @include(if: false)"
                } else {
                    " @skip(if: false)"
                });
            }
            if composite {
                text.push_str(&format!(" {{ {} }}", self.selection(target, depth - 1)));
            }
            out.push(text);
        }
        if out.is_empty() || self.chance(15) {
            out.push("__typename".into());
        }
        if self.chance(20) {
            let inner = out.pop().unwrap_or_else(|| "__typename".into());
            out.push(format!("... on {type_name} {{ {inner} }}"));
        }
        out.join(" ")
    }
}

fn random_ops(plan: &mosaic_gateway::plan::Plan, seeds: &[u64]) -> Vec<String> {
    seeds
        .iter()
        .map(|seed| {
            let mut g = OpGen {
                plan,
                state: seed | 1,
                aliases: 0,
            };
            format!("{{ {} }}", g.selection(&plan.query_type, 3))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, failure_persistence: None, .. ProptestConfig::default() })]

    /// Random valid operations over the bank schema: both executors agree on every one.
    #[test]
    fn random_bank_operations_give_the_same_response_on_both_executors(seeds in proptest::collection::vec(any::<u64>(), 48)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
        rt.block_on(async {
            let bank = mock_bank::start(BankConfig::default()).await.expect("bank");
            let runtime = Arc::new(bank_runtime(&bank));
            for op in random_ops(runtime.plan(), &seeds) {
                same_on_both(&runtime, &op, json!({})).await;
            }
            bank.shutdown().await;
        });
    }
}
