//! Transaction-ID and MultiXact wraparound: how old each database's oldest unfrozen
//! transaction ID and MultiXact ID are (`age(datfrozenxid)`, `mxid_age(datminmxid)`, one
//! query from any database, every database of the server listed), and within one
//! database the tables that hold them back (`age(relfrozenxid)`), for the runbook: the
//! tables a `VACUUM FREEZE` must reach first.
//!
//! The server stops handing out transaction IDs when an age nears 2^31 (2,147,483,648).
//! `age()` of a frozen or otherwise special ID is 2147483647 by definition; a database's
//! `datfrozenxid` is never one.

use std::time::Duration;

use sqlx::postgres::PgConnection;

use super::query::{self as db, fetch_all};
use crate::db::DbError;

/// The age at which a server refuses new transaction IDs (and MultiXact IDs): 2^31.
pub const WRAPAROUND: i128 = 1 << 31;

/// Every database of the server, templates and those that refuse connections too:
/// autovacuum freezes them all, and any of them can hold the whole cluster back.
pub const DATABASE_AGES_SQL: &str = "\
SELECT datname::text, age(datfrozenxid)::text, mxid_age(datminmxid)::text,
       datistemplate::text, datallowconn::text
FROM pg_database
ORDER BY datname";

/// How far one database is from wraparound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseAge {
    pub name: String,
    /// `age(datfrozenxid)`: transactions since its oldest unfrozen transaction ID.
    pub xid_age: i128,
    /// `mxid_age(datminmxid)`: MultiXact IDs since its oldest one.
    pub multixact_age: i128,
    pub template: bool,
    /// `datallowconn`: a database that refuses connections (`template0`) cannot be
    /// vacuumed by hand, only by autovacuum.
    pub allows_connections: bool,
}

/// Reads the ages of every database of the server behind `conn`, under `timeout`.
pub async fn database_ages(
    conn: &mut PgConnection,
    timeout: Duration,
) -> Result<Vec<DatabaseAge>, DbError> {
    let what = "reading the databases' transaction ID ages (pg_database)";
    let rows = fetch_all(conn, sqlx::query(DATABASE_AGES_SQL), timeout, what).await?;
    rows.iter()
        .map(|row| {
            Ok(DatabaseAge {
                name: db::text(row, 0, what)?,
                xid_age: db::int(row, 1, what)?,
                multixact_age: db::int(row, 2, what)?,
                template: db::flag(row, 3, what)?,
                allows_connections: db::flag(row, 4, what)?,
            })
        })
        .collect()
}

/// The `$1` tables of the database with the oldest `relfrozenxid`: tables, materialized
/// views and TOAST tables (with the table a TOAST table belongs to), in every schema, the
/// server's own and other sessions' temporary ones included (an orphaned temporary table
/// is a known cause of wraparound, and only dropping it helps).
///
/// The oldest are chosen first, and only their owners looked up: `pg_class` has no index
/// on `reltoastrelid`, so finding the owner of every TOAST table before the `LIMIT` scanned
/// `pg_class` once per TOAST table (24 s on a database of 10,000 tables with a `text`
/// column each; 20 ms so).
pub const OLDEST_TABLES_SQL: &str = "\
SELECT x.nspname::text, x.relname::text, x.relkind::text,
       x.xid_age::text, mxid_age(x.relminmxid)::text,
       (x.relpersistence = 't')::text, o.nspname::text, o.relname::text
FROM (
    SELECT n.nspname, c.oid, c.relname, c.relkind, age(c.relfrozenxid) AS xid_age,
           c.relminmxid, c.relpersistence
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'm', 't') AND c.relfrozenxid <> '0'::xid
    ORDER BY xid_age DESC, n.nspname, c.relname
    LIMIT $1
) AS x
LEFT JOIN LATERAL (
    SELECT own_n.nspname, own.relname
    FROM pg_class AS own
    JOIN pg_namespace AS own_n ON own_n.oid = own.relnamespace
    WHERE x.relkind = 't' AND own.reltoastrelid = x.oid
    LIMIT 1
) AS o ON true
ORDER BY x.xid_age DESC, x.nspname, x.relname";

/// What holds a table's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    Table,
    MaterializedView,
    /// A TOAST table: vacuuming its owner freezes it too.
    Toast,
}

/// A table holding back its database's `datfrozenxid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableAge {
    pub schema: String,
    pub name: String,
    pub kind: RelationKind,
    /// `age(relfrozenxid)`.
    pub xid_age: i128,
    /// `mxid_age(relminmxid)`.
    pub multixact_age: i128,
    /// A temporary table (of this or another session): only its session, or dropping it,
    /// can freeze it.
    pub temporary: bool,
    /// For a TOAST table, the schema and name of the table it belongs to.
    pub owner: Option<(String, String)>,
}

/// Reads the `limit` tables of the database `conn` is connected to with the oldest
/// unfrozen transaction IDs, oldest first, under `timeout`.
pub async fn oldest_tables(
    conn: &mut PgConnection,
    limit: u32,
    timeout: Duration,
) -> Result<Vec<TableAge>, DbError> {
    let what = "reading the tables' transaction ID ages (pg_class)";
    let query = sqlx::query(OLDEST_TABLES_SQL).bind(i64::from(limit));
    let rows = fetch_all(conn, query, timeout, what).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let kind = match db::text_ref(row, 2, what)? {
            "m" => RelationKind::MaterializedView,
            "t" => RelationKind::Toast,
            _ => RelationKind::Table,
        };
        let owner = match (db::opt_text(row, 6, what)?, db::opt_text(row, 7, what)?) {
            (Some(schema), Some(table)) => Some((schema, table)),
            _ => None,
        };
        out.push(TableAge {
            schema: db::text(row, 0, what)?,
            name: db::text(row, 1, what)?,
            kind,
            xid_age: db::int(row, 3, what)?,
            multixact_age: db::int(row, 4, what)?,
            temporary: db::flag(row, 5, what)?,
            owner,
        });
    }
    Ok(out)
}
