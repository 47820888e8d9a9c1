//! Federation field sets (`@key(fields:)`, `@requires(fields:)`, `@provides(fields:)`): a
//! selection set without braces, parsed with async-graphql's parser.

use async_graphql_parser::types::{DocumentOperations, Selection, SelectionSet};

/// Fields and, for composite ones, their own field sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSet(pub Vec<(String, Option<FieldSet>)>);

impl FieldSet {
    /// The path of every leaf field.
    pub fn leaves(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for (name, sub) in &self.0 {
            match sub {
                None => out.push(vec![name.clone()]),
                Some(sub) => {
                    for mut path in sub.leaves() {
                        path.insert(0, name.clone());
                        out.push(path);
                    }
                }
            }
        }
        out
    }
}

/// Parses `"id organization { id }"`.
pub fn parse_field_set(text: &str) -> Result<FieldSet, String> {
    let doc = async_graphql_parser::parse_query(format!("{{{text}}}")).map_err(|e| format!("not a field set: {e}"))?;
    let DocumentOperations::Single(op) = &doc.operations else {
        return Err("not a field set".to_string());
    };
    let set = convert(&op.node.selection_set.node)?;
    if set.0.is_empty() {
        return Err("the field set is empty".to_string());
    }
    Ok(set)
}

fn convert(set: &SelectionSet) -> Result<FieldSet, String> {
    let mut out = Vec::new();
    for sel in &set.items {
        match &sel.node {
            Selection::Field(f) => {
                if f.node.alias.is_some() || !f.node.arguments.is_empty() || !f.node.directives.is_empty() {
                    return Err("a field set names fields only (no alias, argument or directive)".to_string());
                }
                let sub = &f.node.selection_set.node;
                let sub = if sub.items.is_empty() {
                    None
                } else {
                    Some(convert(sub)?)
                };
                out.push((f.node.name.node.to_string(), sub));
            }
            _ => return Err("a field set has no fragments".to_string()),
        }
    }
    Ok(FieldSet(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_key_leaves_are_paths() {
        let set = parse_field_set("id organization { id region }").unwrap();
        assert_eq!(
            set.leaves(),
            vec![
                vec!["id".to_string()],
                vec!["organization".to_string(), "id".to_string()],
                vec!["organization".to_string(), "region".to_string()]
            ]
        );
    }

    #[test]
    fn fragments_arguments_and_garbage_are_refused() {
        assert!(parse_field_set("... on A { id }").is_err());
        assert!(parse_field_set("id(x: 1)").is_err());
        assert!(parse_field_set("{{{").is_err());
        assert!(parse_field_set("").is_err());
    }
}
