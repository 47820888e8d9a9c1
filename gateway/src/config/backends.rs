//! `[backend_defaults]` and `[backends.NAME.endpoints.GROUP]` expanded into plain backends.
//!
//! Every table was already read typed, with its locations, so a mistake in one is reported where
//! it is. Here the tables are merged as TOML — defaults, then the backend's keys, then an endpoint
//! group's keys, nested tables (`retry`, `breaker`...) key by key — and read again: each backend
//! becomes what it would be had its keys been copied by hand, and each endpoint group a backend
//! `NAME.GROUP` of its own. The URLs keep the locations they were written at.

use toml::{Spanned, Table, Value};

use super::settings::{BackendSettings, Settings};
use super::{Diagnostics, SourceFile};

/// Keys that belong to one backend only.
const PER_BACKEND: &[&str] = &["url", "urls", "discovery", "endpoints"];

/// Merges the defaults into every backend and adds a backend per endpoint group.
pub(super) fn expand(file: &SourceFile, settings: &mut Settings) -> Result<(), Diagnostics> {
    let has_groups = settings.backends.values().any(|b| !b.get_ref().endpoints.is_empty());
    if settings.backend_defaults.is_none() && !has_groups {
        return Ok(());
    }
    let mut diags = Diagnostics::default();
    let raw: Table = toml::from_str(&file.text).unwrap_or_default();
    let defaults = raw
        .get("backend_defaults")
        .and_then(Value::as_table)
        .cloned()
        .unwrap_or_default();
    if let Some(d) = &settings.backend_defaults {
        for key in PER_BACKEND {
            if defaults.contains_key(*key) {
                diags.error_with_hint(
                    Some(file.location(d.span())),
                    format!("[backend_defaults] sets `{key}`, which belongs to each backend"),
                    "set it in each [backends.NAME] table",
                );
            }
        }
    }
    let raw_backends = raw
        .get("backends")
        .and_then(Value::as_table)
        .cloned()
        .unwrap_or_default();
    let mut expanded = std::collections::BTreeMap::new();
    for (name, typed) in std::mem::take(&mut settings.backends) {
        let own = raw_backends
            .get(&name)
            .and_then(Value::as_table)
            .cloned()
            .unwrap_or_default();
        let mut merged = defaults.clone();
        let mut own_keys = own.clone();
        own_keys.remove("endpoints");
        merge(&mut merged, own_keys);
        let Some(backend) = reread(&merged, &typed, file, &mut diags) else {
            continue;
        };
        let groups = own
            .get("endpoints")
            .and_then(Value::as_table)
            .cloned()
            .unwrap_or_default();
        for (group, typed_group) in &typed.get_ref().endpoints {
            let group_keys = groups.get(group).and_then(Value::as_table).cloned().unwrap_or_default();
            let mut bad = false;
            for key in PER_BACKEND {
                if group_keys.contains_key(*key) {
                    bad = true;
                    diags.error_with_hint(
                        Some(file.location(typed_group.span())),
                        format!("endpoint group `{name}.{group}` sets `{key}`"),
                        "a group shares its backend's URL; for another URL declare another backend",
                    );
                }
            }
            if group.contains('.') {
                bad = true;
                diags.error_with_hint(
                    Some(file.location(typed_group.span())),
                    format!("endpoint group name `{group}` contains a dot"),
                    "name it with letters, digits, `-` or `_`",
                );
            }
            if bad {
                continue;
            }
            let mut merged_group = merged.clone();
            merge(&mut merged_group, group_keys);
            if let Some(mut g) = reread(&merged_group, &typed, file, &mut diags) {
                g = Spanned::new(typed_group.span(), g.into_inner());
                expanded.insert(format!("{name}.{group}"), g);
            }
        }
        expanded.insert(name, backend);
    }
    settings.backends = expanded;
    diags.into_result(())
}

/// Deep merge: tables key by key, any other value replaced.
fn merge(into: &mut Table, from: Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Table(a)), Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Reads a merged table as a backend, its URLs at the locations `typed` has them.
fn reread(
    merged: &Table,
    typed: &Spanned<BackendSettings>,
    file: &SourceFile,
    diags: &mut Diagnostics,
) -> Option<Spanned<BackendSettings>> {
    let text = toml::to_string(merged).unwrap_or_default();
    match toml::from_str::<BackendSettings>(&text) {
        Ok(mut b) => {
            let t = typed.get_ref();
            b.url = Spanned::new(t.url.span(), b.url.into_inner());
            b.urls = t.urls.clone();
            b.discovery = t.discovery.clone();
            b.endpoints = Default::default();
            Some(Spanned::new(typed.span(), b))
        }
        Err(e) => {
            diags.error_with_hint(
                Some(file.location(typed.span())),
                format!("with [backend_defaults] applied: {}", e.message().trim()),
                "a key of [backend_defaults] does not fit this backend",
            );
            None
        }
    }
}
