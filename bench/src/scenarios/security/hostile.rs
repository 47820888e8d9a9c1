//! The hostile requests of `bench security` — bombs (nesting, aliases, fragments), malformed
//! bodies, bad tokens — and what the gateway answered them: one send ([`shoot`]), and all the
//! sends of one kind ([`Answers`]). Nothing here starts or measures a process.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bytes::Bytes;
use http::header;
use serde::Serialize;
use serde_json::{json, Value};

use super::super::{ms, quantile, query_2level};

pub const MIB: usize = 1 << 20;

/// The tokens' `iss` (and `[auth] issuer` of the gateways that check them).
pub const ISSUER: &str = "mosaic-bench";

/// The tokens' `sub`: one client, so a rate limit keyed on the subject keeps one bucket.
pub const SUBJECT: &str = "bench-user";

/// The `Accept` of the hostile requests (the GraphQL-over-HTTP recommendation): request errors
/// are then answered with 4xx.
pub const ACCEPT: &str = "application/graphql-response+json, application/json;q=0.9";

/// An HS256 JWT for [`SUBJECT`], issued by [`ISSUER`], expiring in an hour.
pub fn token(secret: &str) -> Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = json!({ "sub": SUBJECT, "iss": ISSUER, "iat": now, "exp": now + 3600 });
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &key,
    )
    .context("signing the bench's JWT")
}

/// The bearer tokens hostile requests carry.
pub struct Tokens {
    /// Signed with the gateway's secret.
    pub valid: String,
    /// Signed with another secret.
    pub forged: String,
}

/// Which `Authorization` a hostile request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    Valid,
    Forged,
    None,
}

/// One hostile request, sent as it is.
#[derive(Debug, Clone)]
pub struct Hostile {
    pub key: &'static str,
    pub describe: String,
    content_type: &'static str,
    credentials: Credentials,
    pub body: Bytes,
}

impl Hostile {
    /// A JSON body `{"query": …}` with the valid token.
    pub fn query(key: &'static str, describe: impl Into<String>, query: &str) -> Hostile {
        Hostile::json(key, describe, json!({ "query": query }))
    }

    fn json(key: &'static str, describe: impl Into<String>, body: Value) -> Hostile {
        Hostile::raw(key, describe, "application/json", body.to_string())
    }

    fn raw(
        key: &'static str,
        describe: impl Into<String>,
        content_type: &'static str,
        body: impl Into<Bytes>,
    ) -> Hostile {
        Hostile {
            key,
            describe: describe.into(),
            content_type,
            credentials: Credentials::Valid,
            body: body.into(),
        }
    }

    fn with(mut self, credentials: Credentials) -> Hostile {
        self.credentials = credentials;
        self
    }
}

/// `{a{a{…{a}…}}}`: `levels` nested selections of `a`.
pub fn nesting(levels: usize) -> String {
    let mut q = String::with_capacity(3 * levels);
    for _ in 0..levels {
        q.push_str("{a");
    }
    q.push_str(&"}".repeat(levels));
    q
}

/// A nesting bomb of exactly `bytes` bytes of query text (spaces pad it).
fn nesting_of_bytes(bytes: usize) -> String {
    let mut q = nesting(bytes / 3);
    q.push_str(&" ".repeat(bytes - q.len()));
    q
}

/// ` a1: {field} a2: {field} …`: `count` aliases of `field`.
fn alias_list(field: &str, count: usize) -> String {
    (1..=count).map(|i| format!(" a{i}: {field}")).collect()
}

/// `{ a1: __typename a2: __typename … }`: `count` aliases at the root.
pub fn aliases(count: usize) -> String {
    format!("{{{} }}", alias_list("__typename", count))
}

/// An alias bomb at the root of exactly `bytes` bytes of query text (spaces pad it).
fn aliases_of_bytes(bytes: usize) -> String {
    let mut q = String::from("{");
    for i in 1.. {
        let next = format!(" a{i}: __typename");
        if q.len() + next.len() + 2 > bytes {
            break;
        }
        q.push_str(&next);
    }
    q.push_str(" }");
    q.push_str(&" ".repeat(bytes - q.len()));
    q
}

/// `levels` fragments on the root type, each spreading the one before twice, spread at the root:
/// 2^(levels−1) root fields from a few dozen bytes per level.
pub fn fanout_at_root(levels: usize) -> String {
    let mut q = format!("query {{ ...F{} }} fragment F0 on Query {{ __typename }}", levels - 1);
    for i in 1..levels {
        q.push_str(&format!(" fragment F{i} on Query {{ ...F{p} ...F{p} }}", p = i - 1));
    }
    q
}

/// The same fan-out on `Customer`, spread under `customers(limit: 1)`.
fn fanout_under_field(levels: usize) -> String {
    let mut q = format!(
        "query {{ customers(limit: 1) {{ ...F{} }} }} fragment F0 on Customer {{ id }}",
        levels - 1
    );
    for i in 1..levels {
        q.push_str(&format!(" fragment F{i} on Customer {{ ...F{p} ...F{p} }}", p = i - 1));
    }
    q
}

/// The bombs timed one by one: 1 MiB of query text (over the shipped `max_body_bytes`, 1 MiB, by
/// the JSON around it), then bombs under the body limit that reach the query limits.
pub fn bombs() -> Vec<Hostile> {
    vec![
        Hostile::query("nesting-1mib", "nesting, 1 MiB of query text", &nesting_of_bytes(MIB)),
        Hostile::query("aliases-1mib", "aliases, 1 MiB of query text", &aliases_of_bytes(MIB)),
        Hostile::query(
            "nesting-64kib",
            "nesting, 64 KiB of query text",
            &nesting_of_bytes(64 << 10),
        ),
        Hostile::query("nesting-3000", "nesting, 3,000 levels", &nesting(3000)),
        Hostile::query("aliases-3000", "aliases, 3,000 at the root", &aliases(3000)),
        Hostile::query(
            "aliases-3000-field",
            "aliases, 3,000 under a field",
            &format!("{{ customers(limit: 1) {{{} }} }}", alias_list("id", 3000)),
        ),
        Hostile::query(
            "fanout-field-40",
            "fragments under a field, 2^39 fields",
            &fanout_under_field(40),
        ),
        Hostile::query(
            "fanout-root-20",
            "fragments at the root, 2^19 fields",
            &fanout_at_root(20),
        ),
    ]
}

/// The hostile suite's mix: the bombs, and every other kind of request a gateway must refuse.
pub fn hostile_mix() -> Vec<Hostile> {
    let mut mix = bombs();
    let batch: Vec<Value> = (0..10_000).map(|_| json!({ "query": "{ __typename }" })).collect();
    let deep_json = format!(
        r#"{{"query":"{{ __typename }}","variables":{{"v":{}{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let mut invalid_utf8 = br#"{"query":"{ __typename "#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    invalid_utf8.extend_from_slice(br#" }"}"#);
    mix.extend([
        Hostile::query(
            "fragment-cycle",
            "fragment cycle",
            "query { ...A } fragment A on Query { ...B } fragment B on Query { __typename ...A }",
        ),
        Hostile::json("batch-10000", "batch of 10,000 operations", Value::Array(batch)),
        Hostile::json(
            "variable-256kib",
            "256 KiB string variable",
            json!({
                "query": "query($id: ID!) { customer(id: $id) { id name } }",
                "variables": { "id": "x".repeat(256 << 10) },
            }),
        ),
        Hostile::raw(
            "deep-json",
            "variables nested 100,000 arrays deep",
            "application/json",
            deep_json,
        ),
        Hostile::raw(
            "malformed-json",
            "malformed JSON",
            "application/json",
            r#"{"query": "{ __typename }", "variables": {"#,
        ),
        Hostile::raw(
            "text-plain",
            "wrong content type (text/plain)",
            "text/plain",
            r#"{"query":"{ __typename }"}"#,
        ),
        Hostile::raw(
            "invalid-utf8",
            "invalid UTF-8 in the body",
            "application/json",
            invalid_utf8,
        ),
        Hostile::query("forged-token", "token signed with another secret", &query_2level(0)).with(Credentials::Forged),
        Hostile::query("no-token", "no token", &query_2level(0)).with(Credentials::None),
    ]);
    mix
}

/// What one hostile request got.
#[derive(Debug)]
pub struct Shot {
    took: Duration,
    status: Option<u16>,
    /// `extensions.code` of the first error (the first operation's, for a batch); `(no code)`
    /// for an error without one.
    code: Option<String>,
    /// The first error's message, or the start of a body that is not GraphQL JSON.
    message: Option<String>,
    /// A 200 answer with no `errors`.
    clean: bool,
    /// Why no answer came.
    error: Option<String>,
}

/// Sends `req` and reads the whole answer; `took` runs from sending to the answer's last byte.
pub async fn shoot(http: &reqwest::Client, url: &str, req: &Hostile, tokens: &Tokens) -> Shot {
    let mut builder = http
        .post(url)
        .header(header::CONTENT_TYPE, req.content_type)
        .header(header::ACCEPT, ACCEPT)
        .body(req.body.clone());
    match req.credentials {
        Credentials::Valid => builder = builder.bearer_auth(&tokens.valid),
        Credentials::Forged => builder = builder.bearer_auth(&tokens.forged),
        Credentials::None => {}
    }
    let started = Instant::now();
    let answer = async {
        let response = builder.send().await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, body))
    }
    .await;
    let took = started.elapsed();
    let (status, body) = match answer {
        Ok(a) => a,
        Err(e) => {
            return Shot {
                took,
                status: None,
                code: None,
                message: None,
                clean: false,
                error: Some(format!("{e:#}")),
            }
        }
    };
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let first = parsed.as_ref().map(|v| match v {
        Value::Array(items) => items.first().unwrap_or(&Value::Null),
        other => other,
    });
    let first_error = first.and_then(|v| v.pointer("/errors/0"));
    let message = match first_error {
        Some(e) => e.get("message").and_then(Value::as_str).map(str::to_owned),
        None if parsed.is_none() && !body.is_empty() => {
            Some(String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned())
        }
        None => None,
    };
    Shot {
        took,
        status: Some(status),
        code: first_error.map(|e| {
            e.pointer("/extensions/code")
                .and_then(Value::as_str)
                .unwrap_or("(no code)")
                .to_owned()
        }),
        message: message.map(|m| m.chars().take(120).collect()),
        clean: status == 200 && parsed.is_some() && first.and_then(|v| v.get("errors")).is_none(),
        error: None,
    }
}

/// What one kind of hostile request got, over all its sends.
#[derive(Debug, Serialize)]
pub struct Answers {
    pub key: &'static str,
    pub describe: String,
    pub body_bytes: usize,
    pub sent: usize,
    /// 200 without `errors` (nothing refused).
    pub ok_200: usize,
    /// 200 with `errors`.
    pub errors_200: usize,
    pub client_4xx: usize,
    pub server_5xx: usize,
    /// Connection errors and timeouts: no answer at all.
    pub no_answer: usize,
    pub statuses: BTreeMap<u16, usize>,
    pub codes: BTreeMap<String, usize>,
    pub first_message: Option<String>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub first_error: Option<String>,
}

impl Answers {
    pub fn of(req: &Hostile, shots: &[Shot]) -> Answers {
        let count = |f: &dyn Fn(&Shot) -> bool| shots.iter().filter(|s| f(s)).count();
        let mut statuses = BTreeMap::new();
        let mut codes = BTreeMap::new();
        for s in shots {
            if let Some(st) = s.status {
                *statuses.entry(st).or_insert(0) += 1;
            }
            if let Some(c) = &s.code {
                *codes.entry(c.clone()).or_insert(0) += 1;
            }
        }
        let mut took: Vec<f64> = shots.iter().map(|s| ms(s.took)).collect();
        Answers {
            key: req.key,
            describe: req.describe.clone(),
            body_bytes: req.body.len(),
            sent: shots.len(),
            ok_200: count(&|s| s.clean),
            errors_200: count(&|s| s.status == Some(200) && !s.clean),
            client_4xx: count(&|s| s.status.is_some_and(|st| (400..500).contains(&st))),
            server_5xx: count(&|s| s.status.is_some_and(|st| st >= 500)),
            no_answer: count(&|s| s.status.is_none()),
            statuses,
            codes,
            first_message: shots.iter().find_map(|s| s.message.clone()),
            p50_ms: quantile(&mut took, 0.5),
            p99_ms: quantile(&mut took, 0.99),
            max_ms: quantile(&mut took, 1.0),
            first_error: shots.iter().find_map(|s| s.error.clone()),
        }
    }

    /// Requests not answered with a 200 or a 4xx: 5xx, other statuses, no answer.
    pub fn unanswered(&self) -> usize {
        self.sent - self.ok_200 - self.errors_200 - self.client_4xx
    }

    /// A line for "Suspicious" when some requests were not answered with a 200 or a 4xx.
    pub fn finding(&self, what: &str) -> Option<String> {
        (self.unanswered() > 0).then(|| {
            format!(
                "{what}, {}: {} of {} requests not answered with a 200 or a 4xx ({}){}",
                self.describe,
                self.unanswered(),
                self.sent,
                self.statuses_text(),
                self.first_error
                    .as_ref()
                    .map(|e| format!("; first error: {e}"))
                    .unwrap_or_default()
            )
        })
    }

    /// `413×50 none×2`.
    pub fn statuses_text(&self) -> String {
        let mut parts: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
        if self.no_answer > 0 {
            parts.push(format!("none×{}", self.no_answer));
        }
        parts.join(" ")
    }

    /// `QUERY_TOO_LARGE×50`, or `-` when no answer had an error.
    pub fn codes_text(&self) -> String {
        if self.codes.is_empty() {
            return "-".to_owned();
        }
        self.codes
            .iter()
            .map(|(c, n)| format!("{c}×{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bombs_have_the_sizes_they_claim() {
        let n = nesting_of_bytes(MIB);
        assert_eq!(n.len(), MIB);
        assert!(n.starts_with("{a{a{a") && n.trim_end().ends_with("}}}"));
        let a = aliases_of_bytes(MIB);
        assert_eq!(a.len(), MIB);
        assert!(a.starts_with("{ a1: __typename a2: __typename"));
        assert_eq!(nesting(2), "{a{a}}");
        assert_eq!(aliases(2), "{ a1: __typename a2: __typename }");
    }

    #[test]
    fn bombs_under_the_token_limit_stay_under_it() {
        // The shipped max_tokens is 10,000 and max_query_bytes 64 KiB: these must get past both,
        // to the depth and alias checks. Every byte of a nesting bomb is a token.
        assert_eq!(nesting(3000).len(), 9000);
        for q in [aliases(3000), alias_list("id", 3000)] {
            assert!(q.replace(':', " : ").split_whitespace().count() < 10_000);
            assert!(q.len() < 64 << 10);
        }
    }

    #[test]
    fn fanouts_spread_each_fragment_twice() {
        assert_eq!(
            fanout_at_root(3),
            "query { ...F2 } fragment F0 on Query { __typename } fragment F1 on Query { ...F0 ...F0 } \
             fragment F2 on Query { ...F1 ...F1 }"
        );
        assert!(fanout_under_field(2).ends_with("fragment F1 on Customer { ...F0 ...F0 }"));
    }

    #[test]
    fn tokens_are_hs256_with_subject_issuer_and_expiry() {
        let secret = b"a-secret-of-at-least-thirty-two-bytes";
        let t = token(std::str::from_utf8(secret).unwrap()).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.set_issuer(&[ISSUER]);
        let data = jsonwebtoken::decode::<Value>(&t, &jsonwebtoken::DecodingKey::from_secret(secret), &v).unwrap();
        assert_eq!(data.claims["sub"], SUBJECT);
    }
}
