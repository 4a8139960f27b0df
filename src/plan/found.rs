//! What a plan reads from its shards, as plain data: a column's definition
//! ([`Definition`]), its table's size ([`TableSize`]), the declared foreign keys that hold
//! it ([`ForeignKey`]), and all of it by shard ([`Found`]); what a widening is ([`Widening`])
//! and how an engine writes it ([`Written`]). The plan serializes these as
//! they are; the engine's code fills them (for MySQL, `mysql/plan/`), through
//! [`crate::engine::Session::plan_reads`].

use std::collections::HashMap;

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
}

/// What is read at plan time: each widened column's definition and table size (`None`
/// when the column is gone), every foreign key that holds a widened column, by shard, and
/// the widened tables whose keys could not all be seen, with why.
#[derive(Debug, Default)]
pub struct Found {
    /// By shard and column.
    pub definitions: HashMap<(String, ColumnId), Option<(Definition, TableSize)>>,
    /// By shard, each constraint once.
    pub foreign_keys: HashMap<String, Vec<ForeignKey>>,
    /// By shard, schema and table of a widened table: why a statement that changes it
    /// could fail for what the monitoring user cannot see, so that none is written.
    pub blocked: HashMap<(String, String, String), Vec<String>>,
}

impl Found {
    /// Blocks `schema`.`table` on `shard` for `why` (each reason once): no statement is
    /// written for a plan that changes it there.
    pub fn block(&mut self, shard: &str, schema: &str, table: &str, why: String) {
        let reasons = self
            .blocked
            .entry((shard.to_string(), schema.to_string(), table.to_string()))
            .or_default();
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
    /// The statement that widens the column (`ALTER TABLE … MODIFY COLUMN …`).
    pub statement: String,
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
