//! The fleet: `[[shards]]`, `[[sources]]` (ID generators) and `[[references]]` (which
//! columns store which source's IDs).

use std::collections::HashSet;
use std::path::Path;

use super::section::Section;
use super::{ReferenceRule, ShardSettings, SourceKind, SourceSettings, endpoint, policy, secret};

/// `password_env` / `password_file` of a shard or source, and whether either key is set.
fn password(
    s: &mut Section,
    lookup: &dyn Fn(&str) -> Option<String>,
    base: &Path,
) -> (Option<Option<secrecy::SecretString>>, bool) {
    let keys = s.has("password_env") || s.has("password_file");
    let password = secret::read(s, "password_env", "password_file", lookup, base, false);
    (password, keys)
}

/// One `[[shards]]` table; `names` holds the names seen so far.
pub(super) fn shard(
    s: &mut Section,
    names: &mut HashSet<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
    base: &Path,
) -> Option<ShardSettings> {
    let name = s.name("name", names, "shard");
    let url = s.string("url", true);
    let (password, password_keys) = password(s, lookup, base);
    let endpoint = url.and_then(|text| endpoint::read(s, "url", &text, &password, password_keys));
    let schemas = s.string_list("schemas", false);
    if let Some(list) = &schemas
        && list.is_empty()
    {
        s.problem(
            "schemas",
            "is empty: leave it out to watch every schema".to_string(),
        );
    }
    let environment = super::environment::read(s);
    s.finish();
    Some(ShardSettings {
        name: name?,
        endpoint: endpoint?,
        schemas,
        environment: environment?,
    })
}

/// One `[[sources]]` table; `names` holds the names seen so far.
pub(super) fn source(
    s: &mut Section,
    names: &mut HashSet<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
    base: &Path,
) -> Option<SourceSettings> {
    let name = s.name("name", names, "source");
    let kind = s.string("kind", true).and_then(|kind| match kind.as_str() {
        "ticket_server" => Some(SourceKind::TicketServer),
        other => {
            s.problem(
                "kind",
                format!("unknown source kind {other:?}: expected \"ticket_server\""),
            );
            None
        }
    });
    let (password, password_keys) = password(s, lookup, base);
    let servers = s
        .list("servers", true)
        .map(|values| servers(s, values, &password, password_keys));
    let table = s.string("table", true);
    if let Some(table) = &table
        && (table.is_empty() || table.contains('\0'))
    {
        s.problem("table", "must be a table name".to_string());
    }
    let environment = super::environment::read(s);
    s.finish();
    Some(SourceSettings {
        name: name?,
        kind: kind?,
        servers: servers?,
        table: table?,
        environment: environment?,
    })
}

/// A source's `servers`: URLs naming the ticket database, each server once.
fn servers(
    s: &mut Section,
    values: Vec<config::Value>,
    password: &Option<Option<secrecy::SecretString>>,
    password_keys: bool,
) -> Vec<super::Endpoint> {
    if values.is_empty() {
        s.problem(
            "servers",
            "is empty: a source needs at least one server".to_string(),
        );
    }
    let mut endpoints = Vec::new();
    let mut seen = HashSet::new();
    for (i, value) in values.into_iter().enumerate() {
        let key = format!("servers[{i}]");
        let Ok(text) = value.into_string() else {
            s.problem(&key, "must be a URL string".to_string());
            continue;
        };
        let Some(endpoint) = endpoint::read(s, &key, &text, password, password_keys) else {
            continue;
        };
        if endpoint.database().is_none() {
            s.problem(
                &key,
                format!("{endpoint} names no database: write the ticket database in the path, e.g. mysql://monitor@ticket-a:3306/tickets"),
            );
        }
        if !seen.insert(endpoint.label()) {
            s.problem(&key, format!("server {} is listed twice", endpoint.label()));
        }
        endpoints.push(endpoint);
    }
    endpoints
}

/// One `[[references]]` table; `defined` holds every source name (also those in error, so
/// that a bad source is not reported twice).
pub(super) fn reference(s: &mut Section, defined: &HashSet<String>) -> Option<ReferenceRule> {
    let source = s.string("source", true);
    if let Some(source) = &source
        && !defined.contains(source)
    {
        let known = if defined.is_empty() {
            "no [[sources]] are defined".to_string()
        } else {
            let mut names: Vec<_> = defined.iter().cloned().collect();
            names.sort();
            format!("defined sources: {}", names.join(", "))
        };
        s.problem(
            "source",
            format!("{source:?} is not a defined source ({known})"),
        );
    }
    let columns = policy::globs(s, "columns", true);
    s.finish();
    let source = source.filter(|s| defined.contains(s))?;
    Some(ReferenceRule {
        source,
        columns: columns?,
    })
}
