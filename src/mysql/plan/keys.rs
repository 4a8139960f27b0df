//! The foreign keys that hold the columns a plan widens, on MySQL and MariaDB, read so that
//! a user with only `SELECT` finds them: KEY_COLUMN_USAGE says which tables hold a key on a
//! widened table (MariaDB shows such a user those rows, but not REFERENTIAL_CONSTRAINTS),
//! and `SHOW CREATE TABLE` of each of them and of every widened table says what the keys
//! are. A widened table is blocked (no statement written for its plan on that shard) when
//! a table that holds one of its keys cannot be read, when KEY_COLUMN_USAGE names a key
//! that `SHOW CREATE TABLE` does not show, or when the other side of a key is not widened
//! with it and is not visible or would not match its new type: adding the key again would
//! fail.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use super::definition::{self, KeyUse};
use crate::db::DbError;
use crate::headroom::IntType;
use crate::inventory::ColumnId;
use crate::plan::found::{ForeignKey, Found, Widening};

/// `schema.table.column`, for notes.
fn column_name(schema: &str, table: &str, column: &str) -> String {
    format!("{schema}.{table}.{column}")
}

/// Reads the foreign keys that hold the `wanted` widenings of `shard` (in `tables`) into
/// `found`, blocking a widened table where something a statement depends on cannot be
/// seen (see the module documentation).
pub async fn read(
    conn: &mut MySqlConnection,
    shard: &str,
    wanted: &[&Widening],
    tables: &[(String, String)],
    timeout: Duration,
    found: &mut Found,
) -> Result<(), DbError> {
    let targets: HashMap<(&str, &str, &str), IntType> = wanted
        .iter()
        .map(|w| {
            (
                (
                    w.id.schema.as_str(),
                    w.id.table.as_str(),
                    w.id.column.as_str(),
                ),
                w.to,
            )
        })
        .collect();
    let widened =
        |schema: &str, table: &str, column: &str| targets.get(&(schema, table, column)).copied();

    // Where to look: every widened table, and every table KEY_COLUMN_USAGE names as
    // holding a key on one.
    let mut uses: HashSet<KeyUse> = HashSet::new();
    let mut candidates: HashSet<(String, String)> = tables.iter().cloned().collect();
    for (schema, table) in tables {
        for u in definition::referencing(conn, schema, table, timeout).await? {
            candidates.insert((u.child.schema.clone(), u.child.table.clone()));
            uses.insert(u);
        }
    }
    let mut declared: HashMap<(String, String), Result<Vec<ForeignKey>, String>> = HashMap::new();
    for (schema, table) in candidates {
        let keys = definition::declared(conn, &schema, &table, timeout).await?;
        declared.insert((schema, table), keys);
    }
    for (schema, table) in tables {
        if let Some(Err(why)) = declared.get(&(schema.clone(), table.clone())) {
            found.block(
                shard,
                schema,
                table,
                format!("the foreign keys of {schema}.{table} could not be read ({why})"),
            );
        }
    }
    // Each key KEY_COLUMN_USAGE shows on a widened column must be one read whole.
    let mut uses: Vec<KeyUse> = uses.into_iter().collect();
    uses.sort_by(|a, b| {
        let key = |u: &KeyUse| {
            (
                u.child.schema.clone(),
                u.child.table.clone(),
                u.name.clone(),
                u.child.column.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    for u in &uses {
        let (c, p) = (&u.child, &u.parent);
        let holds = [
            widened(&c.schema, &c.table, &c.column).map(|_| c),
            widened(&p.schema, &p.table, &p.column).map(|_| p),
        ];
        let why = match declared.get(&(c.schema.clone(), c.table.clone())) {
            Some(Ok(keys)) if keys.iter().any(|k| k.name == u.name) => continue,
            Some(Err(why)) => format!(
                "the foreign key {} of {}.{} could not be read ({why})",
                u.name, c.schema, c.table
            ),
            _ => format!(
                "KEY_COLUMN_USAGE names the foreign key {} of {}.{}, which SHOW CREATE \
                 TABLE does not show",
                u.name, c.schema, c.table
            ),
        };
        for id in holds.into_iter().flatten() {
            found.block(shard, &id.schema, &id.table, why.clone());
        }
    }
    let mut keys: Vec<ForeignKey> = declared
        .into_values()
        .filter_map(Result::ok)
        .flatten()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    keys.sort_by(|a, b| (&a.schema, &a.table, &a.name).cmp(&(&b.schema, &b.table, &b.name)));
    // A key whose one side widens and whose other does not is added again only if the
    // other side already has the new type.
    for fk in &keys {
        for (c, p) in fk.columns.iter().zip(&fk.parent_columns) {
            let child = widened(&fk.schema, &fk.table, c);
            let parent = widened(&fk.parent_schema, &fk.parent_table, p);
            let (to, side, other, at) = match (child, parent) {
                (Some(to), None) => (
                    to,
                    "parent",
                    ColumnId::new(&fk.parent_schema, &fk.parent_table, p),
                    (&fk.schema, &fk.table),
                ),
                (None, Some(to)) => (
                    to,
                    "child",
                    ColumnId::new(&fk.schema, &fk.table, c),
                    (&fk.parent_schema, &fk.parent_table),
                ),
                _ => continue,
            };
            let other_name = column_name(&other.schema, &other.table, &other.column);
            let why = match definition::read(conn, &other, timeout).await? {
                None => format!(
                    "the {side} {other_name} of foreign key {} is not visible to the \
                     monitoring user: widen both by hand",
                    fk.name
                ),
                Some((d, _)) if IntType::parse(&d.column_type) != Some(to) => format!(
                    "the {side} {other_name} of foreign key {} is {}, not {}: widen both \
                     by hand",
                    fk.name,
                    d.column_type,
                    to.display_name()
                ),
                Some(_) => continue,
            };
            found.block(shard, at.0, at.1, why);
        }
    }
    found.foreign_keys.insert(shard.to_string(), keys);
    Ok(())
}
