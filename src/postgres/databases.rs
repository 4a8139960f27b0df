//! The databases of a server that a shard watches: every database that accepts
//! connections and is not a template (`pg_database`), narrowed by the shard's glob
//! patterns (`databases = ["app", "app_*"]`). A PostgreSQL session sees one database's
//! catalog, so each watched database is read through a session of its own.

use std::time::Duration;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use sqlx::postgres::PgConnection;

use super::query::{self as db, fetch_all};
use crate::db::DbError;

/// Databases that accept connections and are not templates, with whether the monitoring
/// user may connect to them (a database with `CONNECT` revoked from `PUBLIC` refuses it).
pub const DATABASES_SQL: &str = "\
SELECT datname::text, has_database_privilege(oid, 'CONNECT')::text
FROM pg_database
WHERE datallowconn AND NOT datistemplate
ORDER BY datname";

/// Which databases to watch: every one, or those a pattern matches.
#[derive(Debug, Clone)]
pub struct Patterns {
    /// The patterns as written (none: every database).
    written: Vec<String>,
    /// One glob per pattern, in the same order.
    globs: Vec<globset::GlobMatcher>,
    set: GlobSet,
}

impl Patterns {
    /// Every database.
    pub fn all() -> Patterns {
        Patterns {
            written: Vec::new(),
            globs: Vec::new(),
            set: GlobSet::empty(),
        }
    }

    /// The databases `patterns` match: `*` any run of characters, `?` one, `[…]` one of a
    /// class, `{a,b}` either; case counts, as it does in PostgreSQL's names. An invalid
    /// pattern is an error naming it.
    pub fn new(patterns: &[String]) -> Result<Patterns, String> {
        let mut builder = GlobSetBuilder::new();
        let mut globs = Vec::with_capacity(patterns.len());
        for pattern in patterns {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(false)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("{pattern:?} is not a valid pattern: {}", e.kind()))?;
            globs.push(glob.compile_matcher());
            builder.add(glob);
        }
        Ok(Patterns {
            written: patterns.to_vec(),
            globs,
            set: builder.build().map_err(|e| e.to_string())?,
        })
    }

    /// Whether `name` is watched.
    pub fn matches(&self, name: &str) -> bool {
        self.written.is_empty() || self.set.is_match(name)
    }

    /// The patterns that match none of `names`: a database named in the configuration that
    /// does not exist, or a typo.
    pub fn unmatched<'a>(&self, names: impl IntoIterator<Item = &'a str> + Clone) -> Vec<String> {
        self.written
            .iter()
            .zip(&self.globs)
            .filter(|(_, glob)| !names.clone().into_iter().any(|n| glob.is_match(n)))
            .map(|(written, _)| written.clone())
            .collect()
    }
}

/// A database a shard watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its name, as the server writes it.
    pub name: String,
    /// Whether the monitoring user has `CONNECT` on it.
    pub can_connect: bool,
}

/// The watched databases of a server, and what of the configuration matched nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// In byte order of their names.
    pub databases: Vec<Listed>,
    /// The patterns that matched no database that accepts connections.
    pub unmatched: Vec<String>,
}

/// The rows of [`DATABASES_SQL`], narrowed by `patterns`. Pure.
pub fn select(listed: Vec<Listed>, patterns: &Patterns) -> Watched {
    let unmatched = patterns.unmatched(listed.iter().map(|l| l.name.as_str()));
    let mut databases: Vec<Listed> = listed
        .into_iter()
        .filter(|l| patterns.matches(&l.name))
        .collect();
    databases.sort_by(|a, b| a.name.cmp(&b.name));
    Watched {
        databases,
        unmatched,
    }
}

/// Reads the databases of the server behind `conn` (any database of it will do) that
/// `patterns` admits, under `timeout`.
pub async fn read(
    conn: &mut PgConnection,
    patterns: &Patterns,
    timeout: Duration,
) -> Result<Watched, DbError> {
    let what = "listing the databases (pg_database)";
    let rows = fetch_all(conn, sqlx::query(DATABASES_SQL), timeout, what).await?;
    let mut listed = Vec::with_capacity(rows.len());
    for row in &rows {
        listed.push(Listed {
            name: db::text(row, 0, what)?,
            can_connect: db::flag(row, 1, what)?,
        });
    }
    Ok(select(listed, patterns))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Patterns {
        Patterns::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("patterns")
    }

    fn listed(names: &[&str]) -> Vec<Listed> {
        names
            .iter()
            .map(|n| Listed {
                name: n.to_string(),
                can_connect: true,
            })
            .collect()
    }

    fn names(w: &Watched) -> Vec<&str> {
        w.databases.iter().map(|d| d.name.as_str()).collect()
    }

    #[test]
    fn no_pattern_watches_every_database() {
        let w = select(listed(&["postgres", "app", "App"]), &Patterns::all());
        assert_eq!(names(&w), vec!["App", "app", "postgres"]);
        assert!(w.unmatched.is_empty());
    }

    #[test]
    fn globs_match_whole_names_with_case() {
        let p = patterns(&["app", "app_*"]);
        let w = select(
            listed(&[
                "app", "app_1", "app_eu/2", "App_1", "myapp", "app2", "postgres",
            ]),
            &p,
        );
        assert_eq!(names(&w), vec!["app", "app_1", "app_eu/2"]);
    }

    #[test]
    fn question_marks_classes_and_alternatives_work_and_a_backslash_escapes() {
        let p = patterns(&["shard_0?", "eu_[ab]", "{x,y}z", "lit\\*"]);
        let w = select(
            listed(&[
                "shard_01",
                "shard_012",
                "eu_a",
                "eu_c",
                "xz",
                "yz",
                "lit*",
                "litX",
            ]),
            &p,
        );
        assert_eq!(names(&w), vec!["eu_a", "lit*", "shard_01", "xz", "yz"]);
    }

    #[test]
    fn a_pattern_matching_nothing_is_reported() {
        let w = select(listed(&["app"]), &patterns(&["app", "missing", "gone_*"]));
        assert_eq!(
            w.unmatched,
            vec!["missing".to_string(), "gone_*".to_string()]
        );
    }

    #[test]
    fn an_invalid_pattern_is_named() {
        let err = Patterns::new(&["app_[".to_string()]).expect_err("unclosed class");
        assert!(
            err.starts_with("\"app_[\" is not a valid pattern: "),
            "{err}"
        );
    }
}
