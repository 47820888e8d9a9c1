//! Query limits, checked before anything else touches a document: its size and token count
//! (before parsing), then its depth, aliases, root fields and cost (before validation, so a
//! hostile document never reaches the validator's costlier rules).
//!
//! Fragments are analysed once each (memoised), so a fragment "bomb" costs linear time to reject.
//! The cost of a field is 1 plus the cost of its selection; a list field multiplies its
//! selection's cost by its `first`/`last`/`limit` argument (or `default_list_size`).

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Field, FragmentDefinition, Selection, SelectionSet};
use async_graphql::{Name, Positioned};
use async_graphql_value::Value as GqlValue;

use crate::config::settings::LimitSettings;
use crate::plan::{is_list, named_type, Plan};

/// Which limit a document broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("the query is {size} bytes; the limit is {max}")]
    TooLarge { size: usize, max: usize },
    #[error("the query has more than {max} tokens")]
    TooManyTokens { max: usize },
    #[error("the query is nested {depth} levels deep; the limit is {max}")]
    TooDeep { depth: usize, max: usize },
    #[error("the query uses {count} aliases; the limit is {max}")]
    TooManyAliases { count: usize, max: usize },
    #[error("the query selects {count} root fields; the limit is {max}")]
    TooManyRootFields { count: usize, max: usize },
    #[error("the query's cost is {cost}; the limit is {max}")]
    TooCostly { cost: u64, max: u64 },
    #[error("fragment \"{0}\" spreads itself (a cycle); fragments must not refer to themselves")]
    FragmentCycle(String),
}

impl LimitError {
    /// The `extensions.code` clients see.
    pub fn code(&self) -> &'static str {
        match self {
            LimitError::TooLarge { .. } | LimitError::TooManyTokens { .. } => "QUERY_TOO_LARGE",
            LimitError::TooDeep { .. } => "QUERY_TOO_DEEP",
            LimitError::TooManyAliases { .. } => "TOO_MANY_ALIASES",
            LimitError::TooManyRootFields { .. } => "TOO_MANY_ROOT_FIELDS",
            LimitError::TooCostly { .. } => "QUERY_TOO_COMPLEX",
            LimitError::FragmentCycle(_) => "FRAGMENT_CYCLE",
        }
    }
}

/// Size and token count, on the raw text.
pub fn check_text(query: &str, limits: &LimitSettings) -> Result<(), LimitError> {
    if query.len() > limits.max_query_bytes {
        return Err(LimitError::TooLarge {
            size: query.len(),
            max: limits.max_query_bytes,
        });
    }
    let scan = scan_tokens(query, limits.max_tokens + 1);
    if scan.tokens > limits.max_tokens {
        return Err(LimitError::TooManyTokens { max: limits.max_tokens });
    }
    // Brackets nested far beyond any query the depth limit allows (inline fragments and list
    // values nest brackets without nesting fields, hence the slack) are refused before the parser
    // recurses into them.
    let bound = limits.max_depth.saturating_mul(2).saturating_add(4);
    if scan.max_nesting > bound {
        return Err(LimitError::TooDeep {
            depth: scan.max_nesting,
            max: limits.max_depth,
        });
    }
    Ok(())
}

/// What a lexical pass over a document found.
struct Scan {
    tokens: usize,
    /// The deepest nesting of `{`, `(` and `[` together.
    max_nesting: usize,
}

#[cfg(test)]
fn count_tokens(text: &str, stop: usize) -> usize {
    scan_tokens(text, stop).tokens
}

/// Counts GraphQL tokens (names, numbers, strings, punctuators), stopping at `stop`, and the
/// deepest bracket nesting on the way.
fn scan_tokens(text: &str, stop: usize) -> Scan {
    let b = text.as_bytes();
    let (mut i, mut n) = (0, 0);
    let (mut nesting, mut max_nesting) = (0usize, 0usize);
    while i < b.len() && n < stop {
        match b[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b',' | 0xEF | 0xBB | 0xBF => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                n += 1;
                let block = b[i..].starts_with(b"\"\"\"");
                i += if block { 3 } else { 1 };
                while i < b.len() {
                    if b[i] == b'\\' {
                        i += 2;
                    } else if block && b[i..].starts_with(b"\"\"\"") {
                        i += 3;
                        break;
                    } else if !block && (b[i] == b'"' || b[i] == b'\n') {
                        i += 1;
                        break;
                    } else {
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' => {
                n += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'+' | b'-')) {
                    i += 1;
                }
            }
            b'.' if b[i..].starts_with(b"...") => {
                n += 1;
                i += 3;
            }
            c => {
                match c {
                    b'{' | b'(' | b'[' => {
                        nesting += 1;
                        max_nesting = max_nesting.max(nesting);
                    }
                    b'}' | b')' | b']' => nesting = nesting.saturating_sub(1),
                    _ => {}
                }
                n += 1;
                i += 1;
            }
        }
    }
    Scan { tokens: n, max_nesting }
}

/// What was measured of a document (for logs and for re-checking cost per request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measure {
    pub depth: usize,
    pub aliases: usize,
    pub cost: u64,
    /// The cost depends on variables (a list size given by a variable): check it per request.
    pub variable_cost: bool,
}

struct Walker<'a> {
    plan: &'a Plan,
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    variables: &'a serde_json::Map<String, serde_json::Value>,
    default_list_size: u64,
    memo: HashMap<(&'a str, &'a str), Measure>,
    variable_cost: bool,
    visiting: Vec<&'a str>,
    cycle: Option<&'a str>,
}

/// Depth, aliases, root fields and cost of the operation.
pub fn check_document(
    plan: &Plan,
    doc: &ExecutableDocument,
    operation: Option<&str>,
    variables: &serde_json::Map<String, serde_json::Value>,
    limits: &LimitSettings,
) -> Result<Measure, LimitError> {
    let Some(op) = crate::exec::find_operation(doc, operation) else {
        return Ok(Measure::default());
    };
    let root = match op.node.ty {
        async_graphql::parser::types::OperationType::Query => plan.query_type.as_str(),
        async_graphql::parser::types::OperationType::Mutation => plan.mutation_type.as_deref().unwrap_or("Mutation"),
        async_graphql::parser::types::OperationType::Subscription => {
            plan.subscription_type.as_deref().unwrap_or("Subscription")
        }
    };
    let root_fields = count_root_fields(&op.node.selection_set.node, &doc.fragments, &mut HashMap::new());
    if root_fields > limits.max_root_fields {
        return Err(LimitError::TooManyRootFields {
            count: root_fields,
            max: limits.max_root_fields,
        });
    }
    let mut w = Walker {
        plan,
        fragments: &doc.fragments,
        variables,
        default_list_size: limits.default_list_size,
        memo: HashMap::new(),
        variable_cost: false,
        visiting: Vec::new(),
        cycle: None,
    };
    let mut m = w.selection(root, &op.node.selection_set.node, 0);
    m.variable_cost = w.variable_cost;
    if let Some(name) = w.cycle {
        return Err(LimitError::FragmentCycle(name.to_string()));
    }
    if m.depth > limits.max_depth {
        return Err(LimitError::TooDeep {
            depth: m.depth,
            max: limits.max_depth,
        });
    }
    if m.aliases > limits.max_aliases {
        return Err(LimitError::TooManyAliases {
            count: m.aliases,
            max: limits.max_aliases,
        });
    }
    if m.cost > limits.max_complexity {
        return Err(LimitError::TooCostly {
            cost: m.cost,
            max: limits.max_complexity,
        });
    }
    Ok(m)
}

/// The fields a root selection set selects once fragments are spread. Each fragment is counted
/// once and remembered (a spread used twice is not walked twice, so fragments spreading each other
/// twice per level cannot make this exponential); a fragment met again while being counted (a
/// cycle, refused later by validation) counts 0.
fn count_root_fields<'a>(
    set: &'a SelectionSet,
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    memo: &mut HashMap<&'a str, usize>,
) -> usize {
    set.items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(i) => count_root_fields(&i.node.selection_set.node, fragments, memo),
            Selection::FragmentSpread(f) => {
                let name = f.node.fragment_name.node.as_str();
                if let Some(n) = memo.get(name) {
                    return *n;
                }
                let Some(def) = fragments.get(&f.node.fragment_name.node) else {
                    return 0;
                };
                memo.insert(name, 0);
                let n = count_root_fields(&def.node.selection_set.node, fragments, memo);
                memo.insert(name, n);
                n
            }
        })
        .fold(0usize, usize::saturating_add)
}

fn combine(a: Measure, b: Measure) -> Measure {
    Measure {
        depth: a.depth.max(b.depth),
        aliases: a.aliases.saturating_add(b.aliases),
        cost: a.cost.saturating_add(b.cost),
        variable_cost: a.variable_cost || b.variable_cost,
    }
}

impl<'a> Walker<'a> {
    /// The measure of a selection set on (named) type `ty`; `guard` stops fragment cycles
    /// (validation rejects them later, with a proper message).
    fn selection(&mut self, ty: &str, set: &'a SelectionSet, guard: usize) -> Measure {
        if guard > 64 {
            return Measure::default();
        }
        let mut total = Measure::default();
        for sel in &set.items {
            let m = match &sel.node {
                Selection::Field(f) => self.field(ty, &f.node),
                Selection::InlineFragment(i) => {
                    let on = i.node.type_condition.as_ref().map_or(ty, |c| c.node.on.node.as_str());
                    self.selection(on, &i.node.selection_set.node, guard + 1)
                }
                Selection::FragmentSpread(s) => self.fragment(s.node.fragment_name.node.as_str(), guard),
            };
            total = combine(total, m);
        }
        total
    }

    fn fragment(&mut self, name: &'a str, guard: usize) -> Measure {
        let Some(def) = self.fragments.get(name) else {
            return Measure::default();
        };
        let on = def.node.type_condition.node.on.node.as_str();
        if self.visiting.contains(&name) {
            self.cycle.get_or_insert(name);
            return Measure::default();
        }
        if let Some(m) = self.memo.get(&(name, on)) {
            return *m;
        }
        self.visiting.push(name);
        let m = self.selection(on, &def.node.selection_set.node, guard + 1);
        self.visiting.pop();
        self.memo.insert((name, on), m);
        m
    }

    fn field(&mut self, parent: &str, f: &'a Field) -> Measure {
        let name = f.name.node.as_str();
        let def = self.plan.fields_of(parent).and_then(|fs| fs.get(name));
        let child_type = def.map(|d| named_type(&d.ty)).unwrap_or("");
        let sub = if f.selection_set.node.items.is_empty() {
            Measure::default()
        } else {
            self.selection(child_type, &f.selection_set.node, 0)
        };
        let multiplier = match def {
            Some(d) if is_list(&d.ty) => self.list_size(f),
            _ => 1,
        };
        Measure {
            depth: sub.depth + 1,
            aliases: sub.aliases + usize::from(f.alias.is_some()),
            cost: 1u64.saturating_add(sub.cost.saturating_mul(multiplier)),
            variable_cost: sub.variable_cost,
        }
    }

    /// The list size a field asks for: its `first`, `last` or `limit` argument, else the default.
    fn list_size(&mut self, f: &Field) -> u64 {
        for (name, value) in &f.arguments {
            if !matches!(name.node.as_str(), "first" | "last" | "limit" | "pageSize" | "size") {
                continue;
            }
            let n = match &value.node {
                GqlValue::Number(n) => n.as_u64(),
                GqlValue::Variable(v) => {
                    self.variable_cost = true;
                    self.variables.get(v.as_str()).and_then(serde_json::Value::as_u64)
                }
                _ => None,
            };
            if let Some(n) = n {
                return n.max(1);
            }
        }
        self.default_list_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_brackets_are_refused_before_parsing() {
        let limits = LimitSettings::default();
        let deep = format!("{}{}", "{a".repeat(3000), "}".repeat(3000));
        match check_text(&deep, &limits) {
            Err(LimitError::TooDeep { depth, .. }) => assert_eq!(depth, 3000),
            other => panic!("{other:?}"),
        }
        let list = format!("{{ a(x: {}1{}) }}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(check_text(&list, &limits), Err(LimitError::TooDeep { .. })));
        // Brackets inside strings and comments do not count.
        let quoted = format!("{{ a(x: \"{}\") }} # {}", "{".repeat(500), "[".repeat(500));
        assert_eq!(check_text(&quoted, &limits), Ok(()));
    }

    #[test]
    fn tokens_are_counted_like_a_lexer_would() {
        assert_eq!(count_tokens("{ a(b: \"x y\") { ...F } } # c", 100), 12);
        assert_eq!(count_tokens("{a}", 2), 2, "stops counting at the limit");
    }
}

#[cfg(test)]
mod bomb_tests {
    use super::*;

    #[test]
    fn a_fragment_bomb_is_measured_in_linear_time() {
        let mut q = String::from("{ a { ...F30 } }\nfragment F0 on T { id }\n");
        for i in 1..=30 {
            q.push_str(&format!("fragment F{i} on T {{ ...F{} ...F{} }}\n", i - 1, i - 1));
        }
        let doc = async_graphql::parser::parse_query(&q).expect("parses");
        let started = std::time::Instant::now();
        let n = count_root_fields(
            &match &doc.operations {
                async_graphql::parser::types::DocumentOperations::Single(op) => op.node.selection_set.node.clone(),
                _ => unreachable!(),
            },
            &doc.fragments,
            &mut HashMap::new(),
        );
        assert_eq!(n, 1);
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }

    #[test]
    fn a_fragment_fan_out_at_the_root_is_counted_in_linear_time() {
        // 2^60 root fields once spread: counted without walking them (it used to double per level).
        let mut q = String::from("{ ...F60 }\nfragment F0 on Query { __typename }\n");
        for i in 1..=60 {
            q.push_str(&format!("fragment F{i} on Query {{ ...F{} ...F{} }}\n", i - 1, i - 1));
        }
        let doc = async_graphql::parser::parse_query(&q).expect("parses");
        let started = std::time::Instant::now();
        let set = match &doc.operations {
            async_graphql::parser::types::DocumentOperations::Single(op) => op.node.selection_set.node.clone(),
            _ => unreachable!(),
        };
        let n = count_root_fields(&set, &doc.fragments, &mut HashMap::new());
        assert_eq!(n, 1usize << 60);
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        // A cycle counts nothing more (validation refuses it with its own message).
        let doc = async_graphql::parser::parse_query(
            "{ a ...A } fragment A on Query { b ...B } fragment B on Query { ...A }",
        )
        .expect("parses");
        let set = match &doc.operations {
            async_graphql::parser::types::DocumentOperations::Single(op) => op.node.selection_set.node.clone(),
            _ => unreachable!(),
        };
        assert_eq!(count_root_fields(&set, &doc.fragments, &mut HashMap::new()), 2);
    }
}
