//! The data each query must answer, built by the bench itself from the mock bank's REST API (the
//! oracle both gateways are checked against before anything is measured).

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use crate::stack::Bank;

/// The REST answers the three queries are made of.
pub struct BankData {
    /// `GET /customers?limit=100` → `items`.
    customers: Vec<Value>,
    /// Accounts by customer id, in the service's order.
    accounts: HashMap<String, Vec<Value>>,
    /// The last transfers by account id, newest first.
    transfers: HashMap<String, Vec<Value>>,
}

async fn get(http: &reqwest::Client, url: String) -> Result<Value> {
    let response = http.get(&url).send().await.with_context(|| format!("GET {url}"))?;
    if !response.status().is_success() {
        bail!("GET {url} answered {}", response.status());
    }
    response.json().await.with_context(|| format!("GET {url}: not JSON"))
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

fn group_by(items: Vec<Value>, key: &str) -> HashMap<String, Vec<Value>> {
    let mut groups: HashMap<String, Vec<Value>> = HashMap::new();
    for item in items {
        let k = item[key].as_str().unwrap_or_default().to_owned();
        groups.entry(k).or_default().push(item);
    }
    groups
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap_or_default()
}

/// Picks `fields` of `v`, renamed: `(output name, backend name)`.
fn pick(v: &Value, fields: &[(&str, &str)]) -> Map<String, Value> {
    fields
        .iter()
        .map(|(to, from)| ((*to).to_owned(), v[*from].clone()))
        .collect()
}

impl BankData {
    /// Reads the customers list, all their accounts (one comma-list call) and the last `last`
    /// transfers of every account (one call repeating `account_id`).
    pub async fn fetch(http: &reqwest::Client, bank: &Bank, list_path: &str, last: u32) -> Result<BankData> {
        let page = get(http, format!("{}{list_path}", bank.url("customers"))).await?;
        let customers = list(&page["items"]);
        let customer_ids: Vec<&str> = customers.iter().map(id).collect();
        let accounts = list(
            &get(
                http,
                format!(
                    "{}/accounts?customer_ids={}",
                    bank.url("accounts"),
                    customer_ids.join(",")
                ),
            )
            .await?,
        );
        let account_query: String = accounts.iter().map(|a| format!("account_id={}&", id(a))).collect();
        let transfers = list(
            &get(
                http,
                format!("{}/transfers?{account_query}last={last}", bank.url("transfers")),
            )
            .await?,
        );
        if customers.is_empty() || accounts.is_empty() || transfers.is_empty() {
            bail!("the mock bank answered no customers, accounts or transfers");
        }
        Ok(BankData {
            customers,
            accounts: group_by(accounts, "customer_id"),
            transfers: group_by(transfers, "from_account"),
        })
    }

    pub fn customer_ids(&self) -> Vec<String> {
        self.customers.iter().map(|c| id(c).to_owned()).collect()
    }

    pub fn account_ids(&self) -> Vec<String> {
        self.customers
            .iter()
            .flat_map(|c| self.accounts_of(c))
            .map(|a| id(a).to_owned())
            .collect()
    }

    fn accounts_of(&self, customer: &Value) -> &[Value] {
        self.accounts.get(id(customer)).map_or(&[], Vec::as_slice)
    }

    fn transfers_of(&self, account: &Value) -> &[Value] {
        self.transfers.get(id(account)).map_or(&[], Vec::as_slice)
    }

    /// The `data` of query `key` (`flat`, `nested2` or `nested3`).
    pub fn expected(&self, key: &str) -> Result<Value> {
        let customers: Vec<Value> = match key {
            "flat" => self
                .customers
                .iter()
                .map(|c| {
                    Value::Object(pick(
                        c,
                        &[
                            ("id", "id"),
                            ("name", "full_name"),
                            ("district", "district"),
                            ("tier", "tier"),
                        ],
                    ))
                })
                .collect(),
            "nested2" => self
                .customers
                .iter()
                .map(|c| {
                    let mut out = pick(c, &[("id", "id"), ("name", "full_name")]);
                    let accounts = self
                        .accounts_of(c)
                        .iter()
                        .map(|a| {
                            Value::Object(pick(
                                a,
                                &[("id", "id"), ("balance", "balance"), ("currency", "currency")],
                            ))
                        })
                        .collect();
                    out.insert("accounts".to_owned(), Value::Array(accounts));
                    Value::Object(out)
                })
                .collect(),
            "nested3" => self
                .customers
                .iter()
                .map(|c| {
                    let mut out = pick(c, &[("id", "id")]);
                    let accounts = self
                        .accounts_of(c)
                        .iter()
                        .map(|a| {
                            let mut account = pick(a, &[("id", "id")]);
                            let transfers = self
                                .transfers_of(a)
                                .iter()
                                .map(|t| {
                                    Value::Object(pick(t, &[("id", "id"), ("amount", "amount"), ("status", "status")]))
                                })
                                .collect();
                            account.insert("transfers".to_owned(), Value::Array(transfers));
                            Value::Object(account)
                        })
                        .collect();
                    out.insert("accounts".to_owned(), Value::Array(accounts));
                    Value::Object(out)
                })
                .collect(),
            other => bail!("no expected data for query {other}"),
        };
        Ok(json!({ "customers": customers }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> BankData {
        let customers = vec![
            json!({"id": "C1", "full_name": "Kim", "district": "Mapo-gu", "tier": "GOLD", "joined_at": "x"}),
            json!({"id": "C2", "full_name": "Lee", "district": "Jongno-gu", "tier": "SILVER", "joined_at": "y"}),
        ];
        let accounts = vec![
            json!({"id": "A1", "customer_id": "C1", "balance": 5, "currency": "KRW", "bank": "b"}),
            json!({"id": "A2", "customer_id": "C1", "balance": 7, "currency": "KRW", "bank": "b"}),
        ];
        let transfers = vec![
            json!({"id": "T9", "from_account": "A2", "amount": 1, "status": "FAILED"}),
            json!({"id": "T3", "from_account": "A1", "amount": 2, "status": "COMPLETED"}),
        ];
        BankData {
            customers,
            accounts: group_by(accounts, "customer_id"),
            transfers: group_by(transfers, "from_account"),
        }
    }

    #[test]
    fn builds_each_query_from_the_rest_answers() {
        let d = data();
        assert_eq!(
            d.expected("flat").unwrap(),
            json!({"customers": [
                {"id": "C1", "name": "Kim", "district": "Mapo-gu", "tier": "GOLD"},
                {"id": "C2", "name": "Lee", "district": "Jongno-gu", "tier": "SILVER"}]})
        );
        assert_eq!(
            d.expected("nested2").unwrap(),
            json!({"customers": [
                {"id": "C1", "name": "Kim", "accounts": [
                    {"id": "A1", "balance": 5, "currency": "KRW"}, {"id": "A2", "balance": 7, "currency": "KRW"}]},
                {"id": "C2", "name": "Lee", "accounts": []}]})
        );
        assert_eq!(
            d.expected("nested3").unwrap(),
            json!({"customers": [
                {"id": "C1", "accounts": [
                    {"id": "A1", "transfers": [{"id": "T3", "amount": 2, "status": "COMPLETED"}]},
                    {"id": "A2", "transfers": [{"id": "T9", "amount": 1, "status": "FAILED"}]}]},
                {"id": "C2", "accounts": []}]})
        );
        assert_eq!(d.customer_ids(), ["C1", "C2"]);
        assert_eq!(d.account_ids(), ["A1", "A2"]);
    }
}
