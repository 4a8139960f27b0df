//! What `headroom plan` reads and writes on MySQL and MariaDB: a widened column's
//! definition and its table's size ([`definition`]), the foreign keys that hold it
//! ([`keys`], from KEY_COLUMN_USAGE and `SHOW CREATE TABLE`, the latter lexed by
//! [`show_create`]), and the statements and commands that widen it ([`statements`]). The
//! plan meets it through [`crate::engine`]: [`read`] fills the plan's [`Found`] for one
//! shard, and the statements come back as plain text.

pub mod definition;
pub mod keys;
pub mod show_create;
pub mod statements;

use std::collections::HashSet;
use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use crate::db::DbError;
use crate::plan::found::{Found, Widening};

/// Reads into `found` what the `wanted` widenings of `shard` need, on one session, each
/// query under `timeout`: each column's definition and table size (once per column), then
/// the foreign keys that hold them ([`keys::read`]).
pub async fn read(
    conn: &mut MySqlConnection,
    shard: &str,
    wanted: &[&Widening],
    timeout: Duration,
    found: &mut Found,
) -> Result<(), DbError> {
    let mut tables: Vec<(String, String)> = Vec::new();
    let mut seen = HashSet::new();
    for w in wanted {
        let key = (w.shard.clone(), w.id.clone());
        if let std::collections::hash_map::Entry::Vacant(slot) = found.definitions.entry(key) {
            slot.insert(definition::read(conn, &w.id, timeout).await?);
        }
        if seen.insert((w.id.schema.as_str(), w.id.table.as_str())) {
            tables.push((w.id.schema.clone(), w.id.table.clone()));
        }
    }
    keys::read(conn, shard, wanted, &tables, timeout, found).await
}
