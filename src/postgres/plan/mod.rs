//! What `headroom plan` reads and writes on PostgreSQL: the definitions, table sizes,
//! sequences, foreign keys, dependents and indexes of the columns a plan widens, read in
//! each column's own database ([`reads`], a session per database as the poll reads them),
//! and the statements ([`statements`]) and online steps ([`online`]) that widen them. The
//! plan meets it through [`crate::engine`]: [`read`] fills the plan's [`Found`] for one
//! shard, and the statements come back as plain text.

pub mod online;
pub mod reads;
pub mod statements;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnection;

use super::connect::Session;
use super::shard::Server;
use crate::db::DbError;
use crate::inventory::ColumnId;
use crate::plan::found::{Definition, ForeignKey, Found, SequenceDefinition, TableSize, Widening};

/// What the online steps need of a widened column's table, read at plan time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shape {
    /// The table has partitions or inheritance children.
    pub partitioned: bool,
    /// The indexes that hold the column.
    pub indexes: Vec<Index>,
    /// The table's primary key when it is one integer column: what the backfill batches by.
    pub batch_key: Option<String>,
    /// The foreign keys of which the column is a child.
    pub child_keys: Vec<ForeignKey>,
    /// The foreign keys that reference the column.
    pub parent_keys: Vec<ForeignKey>,
    /// The CHECK constraints that use the column.
    pub checks: Vec<String>,
}

/// An index that holds a widened column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    /// Its key columns in order; `None` for an expression.
    pub columns: Vec<Option<String>>,
    /// Its `INCLUDE` columns.
    pub include: Vec<String>,
    pub unique: bool,
    /// The constraint it backs: its name and `p` (primary key) or `u` (unique).
    pub constraint: Option<(String, char)>,
    /// A valid, ascending B-tree of columns, not partial: one the steps build again.
    pub plain: bool,
}

/// Reads into `found` what the `wanted` widenings of `shard` need, each in its own
/// database: `home` for the home database's, a session of `server`'s for the others, each
/// statement under `timeout`. A widening named in no database (not PostgreSQL's) is left
/// out.
pub async fn read(
    server: &Server,
    home: &mut Session<'_>,
    shard: &str,
    wanted: &[&Widening],
    timeout: Duration,
    found: &mut Found,
) -> Result<(), DbError> {
    let mut by_database: BTreeMap<&str, Vec<&Widening>> = BTreeMap::new();
    for w in wanted {
        if let Some(database) = w.id.database() {
            by_database.entry(database).or_default().push(w);
        }
    }
    for (database, widenings) in by_database {
        if server.is_home(database) {
            read_database(home, shard, database, &widenings, timeout, found).await?;
        } else {
            let connector = server.connector(database);
            let mut session = connector.acquire().await?;
            read_database(&mut session, shard, database, &widenings, timeout, found).await?;
            session.release();
        }
    }
    Ok(())
}

/// The plan's form of a key read in `database`.
fn foreign_key(key: &reads::Key, database: &str) -> ForeignKey {
    ForeignKey {
        name: key.name.clone(),
        schema: key.schema.clone(),
        table: key.table.clone(),
        columns: key.columns.clone(),
        parent_schema: key.parent_schema.clone(),
        parent_table: key.parent_table.clone(),
        parent_columns: key.parent_columns.clone(),
        on_update: key.on_update.clone(),
        on_delete: key.on_delete.clone(),
        database: Some(database.to_string()),
        deferrable: key.deferrable.then(|| {
            if key.deferred {
                "DEFERRABLE INITIALLY DEFERRED".to_string()
            } else {
                "DEFERRABLE".to_string()
            }
        }),
        match_type: key.match_full.then(|| "FULL".to_string()),
    }
}

/// The sequence a column takes its values from, of those tied to it: its identity's, else
/// the one its default calls, else the one it owns.
fn feeding(sequences: &[reads::Sequence]) -> Option<SequenceDefinition> {
    let rank = |s: &reads::Sequence| (s.identity, s.default, s.owned);
    let s = sequences.iter().max_by_key(|s| rank(s))?;
    Some(SequenceDefinition {
        schema: s.schema.clone(),
        name: s.name.clone(),
        data_type: s.data_type.clone(),
        min_value: s.min,
        max_value: s.max,
        increment: s.increment,
        identity: s.identity,
        owned: s.owned,
        column_default: s.default,
    })
}

/// `EXTRA` as the plan's [`Definition`] holds it: identity and generation, in words.
fn extra(column: &reads::Column) -> String {
    let mut words = Vec::new();
    match column.identity.as_str() {
        "a" => words.push("IDENTITY ALWAYS"),
        "d" => words.push("IDENTITY BY DEFAULT"),
        _ => {}
    }
    if column.generated == "s" {
        words.push("STORED GENERATED");
    }
    words.join(" ")
}

/// Reads `widenings`, all of `database`, on `conn` (a session on that database).
async fn read_database(
    conn: &mut PgConnection,
    shard: &str,
    database: &str,
    widenings: &[&Widening],
    timeout: Duration,
    found: &mut Found,
) -> Result<(), DbError> {
    let mut seen = HashSet::new();
    let ids: Vec<&ColumnId> = widenings
        .iter()
        .map(|w| &w.id)
        .filter(|id| seen.insert(*id))
        .collect();
    let names = reads::Names::of(&ids);
    let columns = reads::columns(conn, &names, timeout).await?;
    let sequences = reads::sequences(conn, &names, timeout).await?;
    let keys = reads::foreign_keys(conn, &names, timeout).await?;
    let dependents = reads::dependents(conn, &names, timeout).await?;
    let indexes = reads::indexes(conn, &names, timeout).await?;

    let keys: Vec<ForeignKey> = keys.iter().map(|k| foreign_key(k, database)).collect();
    for (i, id) in ids.iter().enumerate() {
        let at = i + 1;
        let (schema, table, name) = (&id.schema, &id.table, &id.column);
        let Some(column) = columns.get(&at) else {
            found
                .definitions
                .insert((shard.to_string(), (*id).clone()), None);
            continue;
        };
        let mut checks = Vec::new();
        for d in dependents.get(&at).into_iter().flatten() {
            if d.kind == "check" {
                checks.push(d.name.clone());
                continue;
            }
            found.block_in(
                shard,
                Some(database),
                schema,
                table,
                format!(
                    "the {} {} uses {database}.{schema}.{table}.{name}: PostgreSQL will not \
                     change the column's type under it; drop it before and create it again \
                     after",
                    d.kind, d.name
                ),
            );
        }
        let all = indexes.get(&at).map(Vec::as_slice).unwrap_or_default();
        let shape = Shape {
            partitioned: column.relkind == "p" || column.inherited,
            indexes: all
                .iter()
                .filter(|x| x.holds)
                .map(|x| Index {
                    name: x.name.clone(),
                    columns: x.key.clone(),
                    include: x.include.iter().flatten().cloned().collect(),
                    unique: x.unique,
                    constraint: x.constraint.clone(),
                    plain: x.plain,
                })
                .collect(),
            batch_key: all
                .iter()
                .find(|x| x.integer_key)
                .and_then(|x| x.key.first().cloned().flatten()),
            child_keys: keys
                .iter()
                .filter(|k| k.holds_child(Some(database), schema, table, name))
                .cloned()
                .collect(),
            parent_keys: keys
                .iter()
                .filter(|k| k.holds_parent(Some(database), schema, table, name))
                .cloned()
                .collect(),
            checks,
        };
        let definition = Definition {
            column_type: column.data_type.clone(),
            nullable: !column.not_null,
            default: column.default.clone(),
            extra: extra(column),
            comment: column.comment.clone().unwrap_or_default(),
            sequence: feeding(sequences.get(&at).map(Vec::as_slice).unwrap_or_default()),
            postgres: Some(Arc::new(shape)),
        };
        let size = TableSize {
            rows: column.rows,
            data_bytes: column.total_bytes.saturating_sub(column.index_bytes),
            index_bytes: column.index_bytes,
            engine: match (&column.access_method, column.relkind.as_str()) {
                (Some(am), _) => am.clone(),
                (None, "p") => "partitioned".to_string(),
                (None, _) => String::new(),
            },
        };
        found
            .definitions
            .insert((shard.to_string(), (*id).clone()), Some((definition, size)));
    }
    let list = found.foreign_keys.entry(shard.to_string()).or_default();
    for key in keys {
        if !list.contains(&key) {
            list.push(key);
        }
    }
    Ok(())
}
