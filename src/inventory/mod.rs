//! What exists on a shard, as plain data whatever its engine: integer columns (with the
//! counter that feeds each, if any), declared foreign keys, which columns lead an index,
//! single-column primary keys, and the column names ([`ColumnId`]) everything else keys
//! on. The engines' readers ([`crate::mysql`]) fill it in; nothing here speaks SQL.

pub mod column_type;

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher as _;
use std::sync::Arc;

use crate::db::{DbError, ErrorReport};
use crate::headroom::IntType;

/// A column's full name on a shard: one allocation, shared (a clone is a reference count)
/// by the plan, the growth tracker, the store's reports and the pager. Its parts are read
/// through [`ColumnName`] (`id.schema`). Compared and ordered by name; hashed by a hash of
/// the name taken once, when it is made (every poll looks it up in several maps).
#[derive(Debug, Clone)]
pub struct ColumnId(Arc<Named>);

/// A name and its hash.
#[derive(Debug)]
struct Named {
    name: ColumnName,
    /// The name hashed with a key drawn once per process ([`name_hasher`]): names are read
    /// from databases, and a hash anyone could compute would let table names collide.
    hash: u64,
}

/// The parts of a [`ColumnId`], as the catalogs name them. On MySQL a schema is a
/// database and `database` is `None`; a PostgreSQL column is named in its database
/// (`database`, shared by every column of it), then its schema. `database` is left out of
/// the JSON when `None`, so a MySQL column's fields are `schema`, `table`, `column`.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ColumnName {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<Arc<str>>,
    pub schema: String,
    pub table: String,
    pub column: String,
}

impl ColumnId {
    pub fn new(schema: &str, table: &str, column: &str) -> ColumnId {
        ColumnId::from_parts(schema.to_string(), table.to_string(), column.to_string())
    }

    /// The name from parts already owned (as a reader decodes them).
    pub fn from_parts(schema: String, table: String, column: String) -> ColumnId {
        ColumnId::in_database(None, schema, table, column)
    }

    /// A column of the database `database` (PostgreSQL), or of no database (MySQL, whose
    /// schemas are its databases).
    pub fn in_database(
        database: Option<Arc<str>>,
        schema: String,
        table: String,
        column: String,
    ) -> ColumnId {
        let hash = name_hasher().hash_one((database.as_deref(), &*schema, &*table, &*column));
        let name = ColumnName {
            database,
            schema,
            table,
            column,
        };
        ColumnId(Arc::new(Named { name, hash }))
    }

    /// The database that holds the column, on engines whose servers hold several catalogs
    /// (PostgreSQL); `None` on MySQL.
    pub fn database(&self) -> Option<&str> {
        self.0.name.database.as_deref()
    }
}

/// A column's name found in a set or map of [`ColumnId`]s (or `&ColumnId`s) without making
/// one, which allocates: `set.get(&NameRef::new(schema, table, column) as &dyn Name)`. Readers
/// use it to share the [`ColumnId`] already made for a name instead of making another.
pub trait Name {
    /// `database` (PostgreSQL only), `schema`, `table` and `column`.
    fn parts(&self) -> (Option<&str>, &str, &str, &str);
    /// The hash a [`ColumnId`] of the same name holds.
    fn name_hash(&self) -> u64;
}

/// A name as borrowed parts, hashed as a [`ColumnId`] of that name is: a key to look one up.
#[derive(Debug, Clone, Copy)]
pub struct NameRef<'a> {
    parts: (Option<&'a str>, &'a str, &'a str, &'a str),
    hash: u64,
}

impl<'a> NameRef<'a> {
    pub fn new(schema: &'a str, table: &'a str, column: &'a str) -> NameRef<'a> {
        NameRef::in_database(None, schema, table, column)
    }

    /// The name of a column of `database` (see [`ColumnId::in_database`]).
    pub fn in_database(
        database: Option<&'a str>,
        schema: &'a str,
        table: &'a str,
        column: &'a str,
    ) -> NameRef<'a> {
        let parts = (database, schema, table, column);
        // The parts hash as [`ColumnId::in_database`] hashes them: the same hash.
        NameRef {
            parts,
            hash: name_hasher().hash_one(parts),
        }
    }
}

impl Name for NameRef<'_> {
    fn parts(&self) -> (Option<&str>, &str, &str, &str) {
        self.parts
    }

    fn name_hash(&self) -> u64 {
        self.hash
    }
}

impl Name for ColumnId {
    fn parts(&self) -> (Option<&str>, &str, &str, &str) {
        (self.database(), &self.schema, &self.table, &self.column)
    }

    fn name_hash(&self) -> u64 {
        self.0.hash
    }
}

impl<'a> std::borrow::Borrow<dyn Name + 'a> for ColumnId {
    fn borrow(&self) -> &(dyn Name + 'a) {
        self
    }
}

impl<'a> std::borrow::Borrow<dyn Name + 'a> for &ColumnId {
    fn borrow(&self) -> &(dyn Name + 'a) {
        *self
    }
}

impl std::hash::Hash for dyn Name + '_ {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `ColumnId` hashes.
        state.write_u64(self.name_hash());
    }
}

impl PartialEq for dyn Name + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.name_hash() == other.name_hash() && self.parts() == other.parts()
    }
}

impl Eq for dyn Name + '_ {}

/// The keyed hasher of every [`ColumnId`], its key random, drawn once per process.
fn name_hasher() -> &'static std::hash::RandomState {
    static HASHER: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    HASHER.get_or_init(std::hash::RandomState::new)
}

impl PartialEq for ColumnId {
    fn eq(&self, other: &ColumnId) -> bool {
        // Names that differ in hash differ; the same allocation is the same name.
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash && self.0.name == other.0.name)
    }
}

impl Eq for ColumnId {}

impl PartialOrd for ColumnId {
    fn partial_cmp(&self, other: &ColumnId) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ColumnId {
    fn cmp(&self, other: &ColumnId) -> std::cmp::Ordering {
        self.0.name.cmp(&other.0.name)
    }
}

impl std::hash::Hash for ColumnId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl std::ops::Deref for ColumnId {
    type Target = ColumnName;

    fn deref(&self) -> &ColumnName {
        &self.0.name
    }
}

impl serde::Serialize for ColumnId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.name.serialize(serializer)
    }
}

impl std::fmt::Display for ColumnId {
    /// `schema.table.column`, or `database.schema.table.column` for a PostgreSQL column.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(database) = self.database() {
            write!(f, "{database}.")?;
        }
        write!(f, "{}.{}.{}", self.schema, self.table, self.column)
    }
}

/// Everything one poll learns about a shard's schema.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Every integer column of every base table in the watched schemas.
    pub columns: Vec<IntColumn>,
    /// Declared foreign keys, one entry per column pair.
    pub foreign_keys: Vec<ForeignKey>,
    /// Columns that are the first column of some B-tree index: `MAX(column)` on them is one
    /// index dive. No other column is ever read.
    pub leading: HashSet<ColumnId>,
    /// Each table's primary key, by `(schema, table)`, when it is a single column (of any
    /// type): read from the `PRIMARY` index by the same STATISTICS query.
    pub primary_keys: HashMap<(String, String), String>,
}

/// One integer column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntColumn {
    pub id: ColumnId,
    /// As information_schema writes it, e.g. `int(10) unsigned`.
    pub column_type: String,
    pub int_type: IntType,
    /// The table's AUTO_INCREMENT (the next value handed out) when this is the table's
    /// auto-increment column; `None` otherwise.
    pub auto_increment: Option<i128>,
    /// The sequence that feeds the column (PostgreSQL: `serial`, identity, or a `DEFAULT
    /// nextval(…)`); shared by every column it feeds. `None` on MySQL.
    pub sequence: Option<Arc<Sequence>>,
}

/// A sequence as the columns it feeds are measured by it (PostgreSQL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    /// `schema.name`, as a column's `source` shows it.
    pub name: Arc<str>,
    /// What it has handed out, counted in its own direction: the last value handed out
    /// (the value before its start when it has handed out nothing), negated for a
    /// descending sequence. `Err` says why it could not be read: never counted as unused.
    pub handed_out: Result<i128, String>,
    /// How far it may go in its own direction: its `MAXVALUE`, or minus its `MINVALUE` for
    /// a descending sequence.
    pub limit: i128,
    /// It counts down (a negative increment), towards its `MINVALUE` and the column type's
    /// minimum.
    pub descending: bool,
    /// It starts over at its other end when it runs out (`CYCLE`), handing out values
    /// already used.
    pub cycle: bool,
}

/// A database's transaction-ID and MultiXact ages (PostgreSQL), and its oldest tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseAges {
    pub database: String,
    /// `age(datfrozenxid)`.
    pub xid_age: i64,
    /// `mxid_age(datminmxid)`.
    pub multixact_age: i64,
    /// The tables with the oldest `relfrozenxid`, oldest first: `schema.table` and age.
    pub oldest_tables: Vec<(String, i64)>,
}

/// A child column whose values must exist in a parent column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub child: ColumnId,
    pub parent: ColumnId,
}

/// What one read of a shard's catalog finds.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// What exists on the shard: one inventory per catalog the server keeps apart. MySQL
    /// has one (its schemas are its databases); a PostgreSQL shard one per watched
    /// database, whose columns name it ([`ColumnId::database`]). References are declared and
    /// guessed within one inventory, never across two.
    pub inventories: Vec<Inventory>,
    /// The server's mode as it names it, for display: MySQL's `@@GLOBAL.sql_mode`; `None`
    /// where the engine has no such setting.
    pub mode: Option<String>,
    /// Whether a value out of its column's range is refused (strict mode on MySQL) rather
    /// than clamped to the type's maximum. PostgreSQL always refuses one.
    pub strict: bool,
    /// Each watched database's wraparound ages (PostgreSQL); empty on MySQL.
    pub ages: Vec<DatabaseAges>,
    /// What could not be read and is not a column: a database the monitoring user may not
    /// connect to, with the grant that fixes it. Listed with the unresolved columns.
    pub unread: Vec<String>,
}

impl Catalog {
    /// The catalog of a server with one inventory (MySQL).
    pub fn single(inventory: Inventory, mode: Option<String>, strict: bool) -> Catalog {
        Catalog {
            inventories: vec![inventory],
            mode,
            strict,
            ages: Vec::new(),
            unread: Vec::new(),
        }
    }
}

/// Which schemas a poll looks at.
#[derive(Debug, Clone)]
pub enum SchemaFilter {
    /// Exactly these (from `schemas = [...]`).
    Only(Vec<String>),
    /// Every schema but the server's own (the engine knows which).
    AllButSystem,
}

impl SchemaFilter {
    pub fn from_config(schemas: Option<&Vec<String>>) -> SchemaFilter {
        match schemas {
            Some(list) => SchemaFilter::Only(list.clone()),
            None => SchemaFilter::AllButSystem,
        }
    }
}

/// Why a shard's inventory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(
        "schema {} not visible to the monitoring user: it does not exist or the user lacks SELECT on it",
        .0.join(", ")
    )]
    SchemasNotVisible(Vec<String>),
    #[error("no schema is visible to the monitoring user: grant it SELECT on the schemas to watch")]
    NothingVisible,
    #[error(
        "databases {} match no database that accepts connections",
        .0.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>().join(", ")
    )]
    DatabasesNotFound(Vec<String>),
    #[error(
        "the monitoring user may not connect to database {}: GRANT CONNECT ON DATABASE to it",
        .0.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>().join(", ")
    )]
    DatabasesRefused(Vec<String>),
}

impl InventoryError {
    /// The error as it may be published.
    pub fn report(&self) -> ErrorReport {
        match self {
            InventoryError::Db(e) => e.into(),
            _ => ErrorReport {
                message: self.to_string(),
                class: "not_visible",
                code: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_id_is_equal_ordered_and_hashed_by_its_name() {
        let hasher = std::hash::RandomState::new();
        let a = ColumnId::new("shop", "orders", "id");
        let again = ColumnId::new("shop", "orders", "id");
        let b = ColumnId::new("shop", "orders", "item_id");
        assert_eq!(a, again);
        assert_eq!(hasher.hash_one(&a), hasher.hash_one(&again));
        assert_eq!(a.cmp(&again), std::cmp::Ordering::Equal);
        assert_ne!(a, b);
        assert!(a < b);
        // The parts stay apart: "a.bc" is not "ab.c".
        assert_ne!(ColumnId::new("a", "bc", "x"), ColumnId::new("ab", "c", "x"));
        let set: HashSet<ColumnId> = [a.clone(), again, b.clone()].into();
        assert_eq!(set.len(), 2);
        assert!(set.contains(&ColumnId::new("shop", "orders", "item_id")));
        assert_eq!(
            serde_json::to_value(&a).ok(),
            serde_json::to_value(&*a).ok()
        );
        assert_eq!(
            serde_json::to_string(&b).ok().as_deref(),
            Some(r#"{"schema":"shop","table":"orders","column":"item_id"}"#)
        );
    }

    #[test]
    fn a_column_id_is_found_by_its_name_as_borrowed_parts() {
        let a = ColumnId::new("shop", "orders", "id");
        let b = ColumnId::new("shop", "orders", "item_id");
        let set: HashSet<ColumnId> = [a.clone(), b.clone()].into();
        let found = set.get(&NameRef::new("shop", "orders", "item_id") as &dyn Name);
        assert!(found.is_some_and(|f| Arc::ptr_eq(&f.0, &b.0)));
        assert!(!set.contains(&NameRef::new("shop", "orders", "ID") as &dyn Name));
        // The parts stay apart here too.
        assert!(!set.contains(&NameRef::new("shop", "ordersi", "d") as &dyn Name));
        let by_ref: HashMap<&ColumnId, usize> = [(&a, 0), (&b, 1)].into();
        assert_eq!(
            by_ref.get(&NameRef::new("shop", "orders", "id") as &dyn Name),
            Some(&0)
        );
    }
}
