//! The fleet: `[[shards]]`, `[[sources]]` (ID generators) and `[[references]]` (which
//! columns store which source's IDs).

use std::collections::HashSet;
use std::path::Path;

use super::section::Section;
use super::{
    ReferenceRule, ShardSettings, SourceKind, SourceSettings, endpoint, policy, range, secret,
};

/// The keys of a `[[shards]]` entry that may hold a `{N..M}` range, the name first.
const RANGE_KEYS: [&str; 3] = ["name", "url", "password_file"];

/// One `[[shards]]` table, as many shards as the range in its name says (one without a
/// range); `names` holds the names seen so far. Each expanded entry is read as a table of
/// its own, so a problem with a key that is the same in every entry is recorded once per
/// entry and collapsed by the caller.
pub(super) fn shards(
    s: &mut Section,
    names: &mut HashSet<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
    base: &Path,
) -> Option<Vec<ShardSettings>> {
    let (keys, texts): (Vec<&str>, Vec<String>) = RANGE_KEYS
        .iter()
        .filter_map(|k| s.peek_string(k).map(|text| (*k, text)))
        .unzip();
    if keys.first() != Some(&"name") {
        return shard(s, names, lookup, base).map(|one| vec![one]);
    }
    let fields: Vec<(&str, &str)> = keys
        .iter()
        .zip(&texts)
        .map(|(k, t)| (*k, t.as_str()))
        .collect();
    let expanded = match range::expand(&fields) {
        Ok(expanded) => expanded,
        Err(problems) => {
            for (key, message) in problems {
                s.problem(&key, message);
            }
            s.forget();
            return None;
        }
    };
    if expanded.len() == 1 && expanded[0] == texts {
        return shard(s, names, lookup, base).map(|one| vec![one]);
    }
    let read: Vec<Option<ShardSettings>> = expanded
        .iter()
        .map(|values| shard(&mut s.with_strings(&keys, values), names, lookup, base))
        .collect();
    s.forget();
    read.into_iter().collect()
}

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

/// One `[[shards]]` table without a range; `names` holds the names seen so far.
fn shard(
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
    let databases = s.string_list("databases", false);
    if let Some(list) = &databases {
        let engine = endpoint
            .as_ref()
            .and_then(|e| crate::engine::kind::Engine::of(&e.url));
        if engine.is_some_and(|e| e != crate::engine::kind::Engine::Postgres) {
            s.problem(
                "databases",
                "applies to PostgreSQL shards only: a MySQL shard's databases are its schemas"
                    .to_string(),
            );
        } else if list.is_empty() {
            s.problem(
                "databases",
                "is empty: leave it out to watch every database".to_string(),
            );
        } else if let Err(e) = crate::engine::kind::Engine::check_databases(list) {
            s.problem("databases", e);
        }
    }
    let environment = super::environment::read(s);
    s.finish();
    Some(ShardSettings {
        name: name?,
        endpoint: endpoint?,
        schemas,
        databases,
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
        "sequence" => Some(SourceKind::Sequence),
        other => {
            s.problem(
                "kind",
                format!(
                    "unknown source kind {other:?}: expected \"ticket_server\" or \"sequence\""
                ),
            );
            None
        }
    });
    let (password, password_keys) = password(s, lookup, base);
    let servers = s
        .list("servers", true)
        .map(|values| servers(s, values, &password, password_keys));
    let is_sequence = kind == Some(SourceKind::Sequence);
    // Both keys are read whatever the kind, so that each is checked against it.
    let table = s.string("table", false);
    let sequence_text = s.string("sequence", false);
    let table = match (is_sequence, table) {
        (true, Some(_)) => {
            s.problem("table", "applies to ticket_server sources only".to_string());
            None
        }
        (true, None) => Some(String::new()),
        (false, None) => {
            s.problem("table", "is missing".to_string());
            None
        }
        (false, Some(table)) if table.is_empty() || table.contains('\0') => {
            s.problem("table", "must be a table name".to_string());
            None
        }
        (false, table) => table,
    };
    let sequence = match (is_sequence, sequence_text) {
        (true, Some(text)) => match sequence_name(&text) {
            Some(name) => Some(name),
            None => {
                s.problem(
                    "sequence",
                    format!("{text:?} is not a sequence name: write \"schema.name\""),
                );
                None
            }
        },
        (true, None) => {
            s.problem("sequence", "is missing".to_string());
            None
        }
        (false, Some(_)) => {
            s.problem("sequence", "applies to sequence sources only".to_string());
            None
        }
        (false, None) => None,
    };
    if let (Some(kind), Some(servers)) = (kind, &servers) {
        let wanted = match kind {
            SourceKind::TicketServer => crate::engine::kind::Engine::Mysql,
            SourceKind::Sequence => crate::engine::kind::Engine::Postgres,
        };
        for (i, e) in servers.iter().enumerate() {
            if crate::engine::kind::Engine::of(&e.url) != Some(wanted) {
                s.problem(
                    &format!("servers[{i}]"),
                    format!(
                        "{e}: a {} source reads {} servers",
                        kind.as_str(),
                        wanted.name()
                    ),
                );
            }
        }
    }
    let environment = super::environment::read(s);
    s.finish();
    Some(SourceSettings {
        name: name?,
        kind: kind?,
        servers: servers?,
        table: table?,
        sequence: if is_sequence { Some(sequence?) } else { None },
        environment: environment?,
    })
}

/// `schema.name` (split at the first dot: a schema name holds none) as `(schema, name)`;
/// `None` when a part is empty or holds a NUL.
fn sequence_name(text: &str) -> Option<(String, String)> {
    let (schema, name) = text.split_once('.')?;
    let fine = |p: &str| !p.is_empty() && !p.contains('\0');
    (fine(schema) && fine(name)).then(|| (schema.to_string(), name.to_string()))
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
                format!("{endpoint} names no database: write the ticket database in the path, e.g. mysql://monitor@ticket-a:3306/tickets (or the sequence's, postgres://monitor@ids:5432/ids)"),
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

#[cfg(test)]
mod tests {
    fn parse(toml: &str) -> Result<super::super::Settings, Vec<String>> {
        super::super::from_toml_str(toml, &|_| None)
            .map_err(|p| p.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_shard_range_becomes_one_shard_per_number_in_file_order() {
        let settings = parse(
            "[[shards]]\nname = \"a\"\nurl = \"mysql://m@a:3306/\"\n\
             [[shards]]\nname = \"shard-{08..10}\"\nurl = \"mysql://m@db-{08..10}:3306/\"\n\
             schemas = [\"app\"]\n",
        )
        .expect("settings");
        let shards: Vec<(String, String)> = settings
            .shards
            .iter()
            .map(|s| (s.name.clone(), s.endpoint.to_string()))
            .collect();
        assert_eq!(
            shards,
            [
                ("a".into(), "mysql://m@a:3306/".into()),
                ("shard-08".into(), "mysql://m@db-08:3306/".into()),
                ("shard-09".into(), "mysql://m@db-09:3306/".into()),
                ("shard-10".into(), "mysql://m@db-10:3306/".into()),
            ]
        );
        assert!(
            settings
                .shards
                .iter()
                .skip(1)
                .all(|s| s.schemas == Some(vec!["app".to_string()]))
        );
    }

    #[test]
    fn range_problems_name_the_key_and_shared_problems_are_listed_once() {
        let problems = parse(
            "[[shards]]\nname = \"s\"\nurl = \"mysql://m@db-{1..2}/\"\n\
             [[shards]]\nname = \"t-{1..3}\"\nurl = \"mysql://m@h/\"\nschemas = []\n\
             [[shards]]\nname = \"t-{3..4}\"\nurl = \"mysql://m@h/\"\n",
        )
        .expect_err("problems");
        assert_eq!(
            problems,
            [
                "shards[0].url: has the range {1..2} but name has none: put the same range in name",
                "shards[1].schemas: is empty: leave it out to watch every schema",
                "shards[2].name: shard name \"t-3\" is used twice",
            ]
        );
    }

    #[test]
    fn a_sequence_source_names_its_sequence_and_reads_postgresql_servers() {
        let settings = parse(
            "[[sources]]\nname = \"ids\"\nkind = \"sequence\"\n\
             servers = [\"postgres://m@a:5432/ids\", \"postgresql://m@b:5432/ids\"]\n\
             sequence = \"public.global.ids\"\n\
             [[shards]]\nname = \"pg\"\nurl = \"postgres://m@c/app\"\ndatabases = [\"app_*\"]\n",
        )
        .expect("settings");
        assert_eq!(
            settings.shards[0].databases,
            Some(vec!["app_*".to_string()])
        );
        let source = &settings.sources[0];
        assert_eq!(source.kind, crate::config::SourceKind::Sequence);
        assert_eq!(
            source.sequence,
            Some(("public".to_string(), "global.ids".to_string()))
        );
        let problems = parse(
            "[[sources]]\nname = \"a\"\nkind = \"sequence\"\n\
             servers = [\"mysql://m@a:3306/ids\"]\ntable = \"T\"\n\
             [[sources]]\nname = \"b\"\nkind = \"ticket_server\"\n\
             servers = [\"postgres://m@a/ids\"]\nsequence = \"s.x\"\n\
             [[sources]]\nname = \"c\"\nkind = \"sequence\"\n\
             servers = [\"postgres://m@a/ids\"]\nsequence = \"nodot\"\n\
             [[shards]]\nname = \"m\"\nurl = \"mysql://m@a/\"\ndatabases = [\"app\"]\n",
        )
        .expect_err("problems");
        assert_eq!(
            problems,
            [
                "shards[0].databases: applies to PostgreSQL shards only: a MySQL shard's databases are its schemas",
                "sources[0].table: applies to ticket_server sources only",
                "sources[0].sequence: is missing",
                "sources[0].servers[0]: mysql://m@a:3306/ids: a sequence source reads PostgreSQL servers",
                "sources[1].table: is missing",
                "sources[1].sequence: applies to sequence sources only",
                "sources[1].servers[0]: postgres://m@a/ids: a ticket_server source reads MySQL servers",
                "sources[2].sequence: \"nodot\" is not a sequence name: write \"schema.name\"",
            ]
        );
    }

    #[test]
    fn a_password_file_keeps_its_literal_braces_and_takes_the_range() {
        let dir = tempfile::tempdir().expect("dir");
        for (n, pw) in [(1, "one"), (2, "two")] {
            std::fs::write(
                dir.path().join(format!("pw-{{table}}-{n}")),
                format!("{pw}\n"),
            )
            .expect("write");
        }
        let path = dir.path().join("headroom.toml");
        std::fs::write(
            &path,
            "[[shards]]\nname = \"s-{1..2}\"\nurl = \"mysql://m@h/\"\n\
             password_file = \"pw-{table}-{1..2}\"\n",
        )
        .expect("write");
        let settings =
            super::super::load_with_env(&path, Some(Default::default())).expect("settings");
        let passwords: Vec<(&str, Option<&str>)> = settings
            .shards
            .iter()
            .map(|s| (s.name.as_str(), s.endpoint.expose_password()))
            .collect();
        assert_eq!(passwords, [("s-1", Some("one")), ("s-2", Some("two"))]);
    }
}
