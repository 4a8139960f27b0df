//! A widening's statements as PostgreSQL takes them: `ALTER TABLE … ALTER COLUMN … TYPE`,
//! and a foreign key dropped and added again by name. Pure: names quoted by
//! [`ident`]/[`qualified`].

use super::query::{ident, qualified};
use crate::headroom::{IntType, Width};
use crate::plan::found::{ForeignKey, Widening, Written};

/// The PostgreSQL name of the type a widening goes to (every PostgreSQL integer is signed).
fn type_name(t: IntType) -> &'static str {
    match t.width {
        Width::Tiny | Width::Small => "smallint",
        Width::Medium | Width::Int => "integer",
        Width::Big => "bigint",
    }
}

/// The statement that widens the column; no online tool applies on PostgreSQL.
pub fn widen(w: &Widening) -> Written {
    Written {
        statement: format!(
            "ALTER TABLE {} ALTER COLUMN {} TYPE {};",
            qualified(&w.id.schema, &w.id.table),
            ident(&w.id.column),
            type_name(w.to)
        ),
        gh_ost: None,
        pt_online_schema_change: None,
        note: Some(
            "rewrites the whole table and its indexes under an ACCESS EXCLUSIVE lock: \
             no read or write of the table until it ends"
                .to_string(),
        ),
    }
}

/// `ALTER TABLE … DROP CONSTRAINT …`.
pub fn drop_foreign_key(fk: &ForeignKey) -> String {
    format!(
        "ALTER TABLE {} DROP CONSTRAINT {};",
        qualified(&fk.schema, &fk.table),
        ident(&fk.name)
    )
}

/// `ALTER TABLE … ADD CONSTRAINT … FOREIGN KEY … REFERENCES …`, whole.
pub fn add_foreign_key(fk: &ForeignKey) -> String {
    let list = |names: &[String]| {
        names
            .iter()
            .map(|n| ident(n))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) ON UPDATE {} ON DELETE {};",
        qualified(&fk.schema, &fk.table),
        ident(&fk.name),
        list(&fk.columns),
        qualified(&fk.parent_schema, &fk.parent_table),
        list(&fk.parent_columns),
        fk.on_update,
        fk.on_delete
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::ColumnId;

    #[test]
    fn a_widening_quotes_every_name_the_postgresql_way() {
        let w = Widening {
            shard: "pg".to_string(),
            id: ColumnId::new("app", "t\"x", "i d"),
            from: "integer".to_string(),
            to: IntType::new(Width::Big, false),
        };
        let written = widen(&w);
        assert_eq!(
            written.statement,
            "ALTER TABLE \"app\".\"t\"\"x\" ALTER COLUMN \"i d\" TYPE bigint;"
        );
        assert!(written.gh_ost.is_none());
        assert!(written.note.is_some_and(|n| n.contains("ACCESS EXCLUSIVE")));
    }
}
