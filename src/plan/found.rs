//! What a plan reads from its shards, as plain data: a column's definition
//! ([`Definition`], with the sequence that feeds it on PostgreSQL, [`SequenceDefinition`]),
//! its table's size ([`TableSize`]), the declared foreign keys that hold it
//! ([`ForeignKey`]), and all of it by shard ([`Found`]); what a widening is ([`Widening`])
//! and how an engine writes it ([`Written`]). The plan serializes these as
//! they are; the engine's code fills them (for MySQL, `mysql/plan/`; for PostgreSQL,
//! `postgres/plan/`), through [`crate::engine::Session::plan_reads`].

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::headroom::IntType;
use crate::inventory::ColumnId;

/// A column's definition as the catalog gives it (MySQL's information_schema.COLUMNS).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Definition {
    /// `COLUMN_TYPE`, e.g. `int(10) unsigned zerofill`.
    pub column_type: String,
    /// `IS_NULLABLE = 'YES'`.
    pub nullable: bool,
    /// `COLUMN_DEFAULT` as the server writes it: `None` for no default; MariaDB writes a
    /// NULL default as the text `NULL` and quotes string literals.
    pub default: Option<String>,
    /// `EXTRA`, e.g. `auto_increment`, `INVISIBLE`, `VIRTUAL GENERATED`.
    pub extra: String,
    /// `COLUMN_COMMENT`; empty for none.
    pub comment: String,
    /// PostgreSQL: the sequence that feeds the column (`serial`, identity, `DEFAULT
    /// nextval(…)` or `OWNED BY`), when one does; not in the JSON of MySQL columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<SequenceDefinition>,
    /// PostgreSQL: what the online alternative needs of the column's table; not in the JSON.
    #[serde(skip)]
    pub postgres: Option<Arc<crate::postgres::plan::Shape>>,
}

/// A sequence that feeds a column (PostgreSQL's `pg_sequence`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SequenceDefinition {
    pub schema: String,
    pub name: String,
    /// Its type (`AS smallint|integer|bigint`).
    pub data_type: String,
    pub min_value: i64,
    pub max_value: i64,
    pub increment: i64,
    /// It is the identity column's own (`GENERATED … AS IDENTITY`): it changes type with
    /// the column.
    pub identity: bool,
    /// The column owns it (`serial`, or `ALTER SEQUENCE … OWNED BY`): dropping the column
    /// drops it.
    pub owned: bool,
    /// The column's default calls its `nextval`.
    pub column_default: bool,
}

impl Definition {
    /// Whether it is its table's AUTO_INCREMENT column.
    pub fn auto_increment(&self) -> bool {
        self.extra.to_ascii_lowercase().contains("auto_increment")
    }

    /// Whether it is a generated column, whose expression information_schema.COLUMNS does
    /// not give in full on every server: such a column is left to be widened by hand.
    pub fn generated(&self) -> bool {
        let extra = self.extra.to_ascii_uppercase();
        ["GENERATED", "VIRTUAL", "PERSISTENT", "STORED"]
            .iter()
            .any(|w| extra.split_whitespace().any(|x| x == *w))
            && !extra.contains("DEFAULT_GENERATED")
    }
}

/// A table's size as the catalog estimates it (MySQL's information_schema.TABLES).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TableSize {
    /// `TABLE_ROWS`: exact for MyISAM, an estimate for InnoDB.
    pub rows: u64,
    /// `DATA_LENGTH`.
    pub data_bytes: u64,
    /// `INDEX_LENGTH`: a rebuild writes every index again.
    pub index_bytes: u64,
    /// `ENGINE`, e.g. `InnoDB`; empty when the server gives none.
    pub engine: String,
}

impl TableSize {
    /// Data and indexes: what a rebuild copies.
    pub fn bytes(&self) -> u64 {
        self.data_bytes.saturating_add(self.index_bytes)
    }
}

/// A declared foreign key, whole: InnoDB refuses to change the type of a column in one,
/// even with `foreign_key_checks` off, so a widening drops it first and adds it again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ForeignKey {
    /// `CONSTRAINT_NAME`.
    pub name: String,
    /// The child table's schema and name.
    pub schema: String,
    pub table: String,
    /// The child's columns, in order.
    pub columns: Vec<String>,
    /// The parent table's schema and name.
    pub parent_schema: String,
    pub parent_table: String,
    /// The parent's columns, in order.
    pub parent_columns: Vec<String>,
    /// `ON UPDATE` and `ON DELETE`, e.g. `CASCADE`, `RESTRICT`.
    pub on_update: String,
    pub on_delete: String,
    /// PostgreSQL: the database that holds the key; not in the JSON of MySQL keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// PostgreSQL: `DEFERRABLE` or `DEFERRABLE INITIALLY DEFERRED` when the key is either;
    /// not in the JSON otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferrable: Option<String>,
    /// PostgreSQL: `FULL` for a `MATCH FULL` key; not in the JSON otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_type: Option<String>,
}

impl ForeignKey {
    /// Whether `column` of `database`.`schema`.`table` is one of its child columns.
    pub fn holds_child(
        &self,
        database: Option<&str>,
        schema: &str,
        table: &str,
        column: &str,
    ) -> bool {
        self.database.as_deref() == database
            && self.schema == schema
            && self.table == table
            && self.columns.iter().any(|c| c == column)
    }

    /// Whether `column` of `database`.`schema`.`table` is one of its parent columns.
    pub fn holds_parent(
        &self,
        database: Option<&str>,
        schema: &str,
        table: &str,
        column: &str,
    ) -> bool {
        self.database.as_deref() == database
            && self.parent_schema == schema
            && self.parent_table == table
            && self.parent_columns.iter().any(|c| c == column)
    }
}

/// A table on a shard: the shard, its database (PostgreSQL; `None` on MySQL), schema and
/// table.
pub type TableKey = (String, Option<String>, String, String);

/// What is read at plan time: each widened column's definition and table size (`None`
/// when the column is gone), every foreign key that holds a widened column, by shard, and
/// the widened tables whose keys could not all be seen, with why.
#[derive(Debug, Default)]
pub struct Found {
    /// By shard and column.
    pub definitions: HashMap<(String, ColumnId), Option<(Definition, TableSize)>>,
    /// By shard, each constraint once.
    pub foreign_keys: HashMap<String, Vec<ForeignKey>>,
    /// By widened table: why a statement that changes it could fail (for what the
    /// monitoring user cannot see, or what the engine would refuse), so that none is
    /// written.
    pub blocked: HashMap<TableKey, Vec<String>>,
}

impl Found {
    /// Blocks `schema`.`table` on `shard` for `why` (each reason once): no statement is
    /// written for a plan that changes it there.
    pub fn block(&mut self, shard: &str, schema: &str, table: &str, why: String) {
        self.block_in(shard, None, schema, table, why);
    }

    /// As [`Found::block`], for a table of `database` (PostgreSQL).
    pub fn block_in(
        &mut self,
        shard: &str,
        database: Option<&str>,
        schema: &str,
        table: &str,
        why: String,
    ) {
        let key = (
            shard.to_string(),
            database.map(str::to_string),
            schema.to_string(),
            table.to_string(),
        );
        let reasons = self.blocked.entry(key).or_default();
        if !reasons.contains(&why) {
            reasons.push(why);
        }
    }
}

/// One column to widen: where it is, its type now and the type it takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Widening {
    /// The shard that holds it.
    pub shard: String,
    /// The column.
    pub id: ColumnId,
    /// Its COLUMN_TYPE now.
    pub from: String,
    /// The type it widens to.
    pub to: IntType,
}

/// One widening as the shard's engine writes it ([`crate::engine::Engine::widen`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The statement that widens the column (`ALTER TABLE … MODIFY COLUMN …`; on
    /// PostgreSQL `ALTER TABLE … ALTER COLUMN … TYPE …`, or `ALTER SEQUENCE … AS …` when
    /// only the column's sequence widens); `None` when nothing can be written (`note` says
    /// why).
    pub statement: Option<String>,
    /// Statements that run right after `statement`, in order (PostgreSQL: the sequence that
    /// feeds the column widened); empty on MySQL.
    pub then: Vec<String>,
    /// Whether the statement rewrites the table (false when only a sequence changes).
    pub rebuilds: bool,
    /// The online alternative, statement by statement (PostgreSQL, which has no gh-ost);
    /// empty where the engine has tools instead, or none can be written (`online_note`).
    pub online_steps: Vec<String>,
    /// Why there are no online steps, or what to know before running them.
    pub online_note: Option<String>,
    /// The `gh-ost` command; `None` where the tool does not apply.
    pub gh_ost: Option<String>,
    /// The `pt-online-schema-change` command; `None` where the tool does not apply or a
    /// name cannot be written for it (`note` says why).
    pub pt_online_schema_change: Option<String>,
    /// What to watch for, if anything.
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_key_holds_its_columns_in_its_own_database_only() {
        let fk = ForeignKey {
            name: "k".to_string(),
            schema: "public".to_string(),
            table: "c".to_string(),
            columns: vec!["p_id".to_string()],
            parent_schema: "public".to_string(),
            parent_table: "p".to_string(),
            parent_columns: vec!["id".to_string()],
            on_update: "NO ACTION".to_string(),
            on_delete: "CASCADE".to_string(),
            database: Some("app".to_string()),
            deferrable: None,
            match_type: None,
        };
        assert!(fk.holds_child(Some("app"), "public", "c", "p_id"));
        assert!(!fk.holds_child(Some("app_2"), "public", "c", "p_id"));
        assert!(!fk.holds_child(None, "public", "c", "p_id"));
        assert!(fk.holds_parent(Some("app"), "public", "p", "id"));
        assert!(!fk.holds_parent(Some("app"), "public", "c", "id"));
    }

    fn definition(extra: &str) -> Definition {
        Definition {
            column_type: "int(10) unsigned zerofill".to_string(),
            extra: extra.to_string(),
            ..Definition::default()
        }
    }

    #[test]
    fn generated_columns_are_recognised_but_default_generated_is_not() {
        assert!(definition("VIRTUAL GENERATED").generated());
        assert!(definition("PERSISTENT").generated());
        assert!(!definition("DEFAULT_GENERATED").generated());
        assert!(!definition("auto_increment").generated());
    }
}
