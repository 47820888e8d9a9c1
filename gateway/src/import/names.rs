//! GraphQL-legal names from whatever a document uses (`customer_id`, `X-Request-ID`, `2fa`,
//! `Ä`), and unique names within a scope. Case conversion is `heck`'s; what is written here is
//! only what GraphQL adds: ASCII letters, digits and `_`, no leading digit, no `__`.

use std::collections::BTreeSet;

use heck::{ToLowerCamelCase, ToUpperCamelCase};

/// Whether `s` is a GraphQL name that is not reserved for introspection (`__...`).
pub fn legal(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

/// Only ASCII letters and digits, other characters as word breaks.
fn ascii_words(raw: &str) -> String {
    raw.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect()
}

fn fix_start(s: String) -> Option<String> {
    match s.chars().next() {
        None => None,
        Some(c) if c.is_ascii_digit() => Some(format!("_{s}")),
        Some(_) => Some(s),
    }
}

/// A field or argument name: `customer_id` → `customerId`. `None` when nothing is left.
pub fn field(raw: &str) -> Option<String> {
    fix_start(ascii_words(raw).to_lower_camel_case())
}

/// A type name: `page_account` → `PageAccount`.
pub fn type_name(raw: &str) -> Option<String> {
    fix_start(ascii_words(raw).to_upper_camel_case())
}

/// An enum value as the backend writes it, when GraphQL can carry it unchanged. Values that
/// merely start with `true`, `false` or `null` (`true_false`) are refused too: the SDL parser
/// Mosaic uses reads them as the keyword.
pub fn enum_value(raw: &str) -> Option<&str> {
    (legal(raw) && !["true", "false", "null"].iter().any(|k| raw.starts_with(k))).then_some(raw)
}

/// Names taken in one scope (the types of the schema, the fields of one type): a second `x` is
/// `x2`, then `x3`, in the order asked, so the same document always gets the same names.
#[derive(Default)]
pub struct Scope {
    taken: BTreeSet<String>,
}

impl Scope {
    pub fn with(reserved: &[&str]) -> Self {
        Self {
            taken: reserved.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `base`, or `base2`, `base3`... whichever is free first; taken from now on.
    pub fn claim(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut n = 2;
        while self.taken.contains(&name) {
            name = format!("{base}{n}");
            n += 1;
        }
        self.taken.insert(name.clone());
        name
    }
}

/// `customers` → `customer`, `categories` → `category`, `addresses` → `address`: enough English
/// to match a collection's path segment with the `*_id` properties that name its items.
pub fn singular(word: &str) -> String {
    let w = word.to_ascii_lowercase();
    if let Some(stem) = w.strip_suffix("ies") {
        format!("{stem}y")
    } else if w.ends_with("sses") || w.ends_with("xes") || w.ends_with("ches") || w.ends_with("shes") {
        w[..w.len() - 2].to_string()
    } else if w.ends_with('s') && !w.ends_with("ss") {
        w[..w.len() - 1].to_string()
    } else {
        w
    }
}

/// A name compared loosely: lower case, letters and digits only (`customer_id` ≈ `customerId`).
pub fn loose(raw: &str) -> String {
    raw.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_graphql_style_and_legal() {
        assert_eq!(field("customer_id").as_deref(), Some("customerId"));
        assert_eq!(field("X-Request-ID").as_deref(), Some("xRequestId"));
        assert_eq!(field("2fa_enabled").as_deref(), Some("_2faEnabled"));
        assert_eq!(field("@type").as_deref(), Some("type"));
        assert_eq!(field("日本"), None);
        assert_eq!(type_name("Page_Account").as_deref(), Some("PageAccount"));
        assert_eq!(
            type_name("io.k8s.api.core.v1.Pod").as_deref(),
            Some("IoK8sApiCoreV1Pod")
        );
        assert!(legal("a_b1") && !legal("1a") && !legal("__x") && !legal("a-b"));
        assert_eq!(enum_value("in-progress"), None);
        assert_eq!(enum_value("ACTIVE"), Some("ACTIVE"));
        assert_eq!(enum_value("true"), None);
        assert_eq!(enum_value("true_false"), None);
    }

    #[test]
    fn a_scope_numbers_repeated_names_in_order() {
        let mut s = Scope::with(&["Query"]);
        assert_eq!(s.claim("Query"), "Query2");
        assert_eq!(s.claim("x"), "x");
        assert_eq!(s.claim("x"), "x2");
        assert_eq!(s.claim("x"), "x3");
    }

    #[test]
    fn singular_of_collection_segments() {
        assert_eq!(singular("customers"), "customer");
        assert_eq!(singular("categories"), "category");
        assert_eq!(singular("addresses"), "address");
        assert_eq!(singular("class"), "class");
    }
}
