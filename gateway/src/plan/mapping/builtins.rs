//! The built-in functions of mapping expressions: jq's names and meanings.

/// A built-in function, by name and number of arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Length,
    Keys,
    Values,
    ToEntries,
    FromEntries,
    WithEntries,
    Map,
    MapValues,
    Select,
    Add,
    First,
    Last,
    FirstOf,
    LastOf,
    Reverse,
    Sort,
    SortBy,
    GroupBy,
    Unique,
    UniqueBy,
    Min,
    Max,
    MinBy,
    MaxBy,
    Flatten,
    Join,
    Split,
    ToString,
    ToNumber,
    AsciiDowncase,
    AsciiUpcase,
    Type,
    Not,
    Empty,
    Floor,
    Ceil,
    Round,
    Any,
    All,
    AnyOf,
    AllOf,
    Has,
    Contains,
    StartsWith,
    EndsWith,
    LtrimStr,
    RtrimStr,
    Trim,
    ToJson,
    FromJson,
    Limit,
    Error,
}

/// Name, number of arguments, function.
const TABLE: &[(&str, usize, Builtin)] = &[
    ("length", 0, Builtin::Length),
    ("keys", 0, Builtin::Keys),
    ("values", 0, Builtin::Values),
    ("to_entries", 0, Builtin::ToEntries),
    ("from_entries", 0, Builtin::FromEntries),
    ("with_entries", 1, Builtin::WithEntries),
    ("map", 1, Builtin::Map),
    ("map_values", 1, Builtin::MapValues),
    ("select", 1, Builtin::Select),
    ("add", 0, Builtin::Add),
    ("first", 0, Builtin::First),
    ("last", 0, Builtin::Last),
    ("first", 1, Builtin::FirstOf),
    ("last", 1, Builtin::LastOf),
    ("reverse", 0, Builtin::Reverse),
    ("sort", 0, Builtin::Sort),
    ("sort_by", 1, Builtin::SortBy),
    ("group_by", 1, Builtin::GroupBy),
    ("unique", 0, Builtin::Unique),
    ("unique_by", 1, Builtin::UniqueBy),
    ("min", 0, Builtin::Min),
    ("max", 0, Builtin::Max),
    ("min_by", 1, Builtin::MinBy),
    ("max_by", 1, Builtin::MaxBy),
    ("flatten", 0, Builtin::Flatten),
    ("join", 1, Builtin::Join),
    ("split", 1, Builtin::Split),
    ("tostring", 0, Builtin::ToString),
    ("tonumber", 0, Builtin::ToNumber),
    ("ascii_downcase", 0, Builtin::AsciiDowncase),
    ("ascii_upcase", 0, Builtin::AsciiUpcase),
    ("type", 0, Builtin::Type),
    ("not", 0, Builtin::Not),
    ("empty", 0, Builtin::Empty),
    ("floor", 0, Builtin::Floor),
    ("ceil", 0, Builtin::Ceil),
    ("round", 0, Builtin::Round),
    ("any", 0, Builtin::Any),
    ("all", 0, Builtin::All),
    ("any", 1, Builtin::AnyOf),
    ("all", 1, Builtin::AllOf),
    ("has", 1, Builtin::Has),
    ("contains", 1, Builtin::Contains),
    ("startswith", 1, Builtin::StartsWith),
    ("endswith", 1, Builtin::EndsWith),
    ("ltrimstr", 1, Builtin::LtrimStr),
    ("rtrimstr", 1, Builtin::RtrimStr),
    ("trim", 0, Builtin::Trim),
    ("tojson", 0, Builtin::ToJson),
    ("fromjson", 0, Builtin::FromJson),
    ("limit", 2, Builtin::Limit),
    ("error", 1, Builtin::Error),
];

/// The function called `name` with `arity` arguments.
pub fn lookup(name: &str, arity: usize) -> Option<Builtin> {
    TABLE
        .iter()
        .find(|(n, a, _)| *n == name && *a == arity)
        .map(|(_, _, b)| *b)
}

/// Whether some function is called `name` (with another number of arguments, maybe).
pub fn known_name(name: &str) -> Option<Vec<usize>> {
    let arities: Vec<usize> = TABLE.iter().filter(|(n, ..)| *n == name).map(|(_, a, _)| *a).collect();
    (!arities.is_empty()).then_some(arities)
}

/// Every function name, for hints.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&str> = TABLE.iter().map(|(n, ..)| *n).collect();
    names.dedup();
    names
}
