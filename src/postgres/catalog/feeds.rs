//! Which sequence feeds which column, however they are tied (`pg_depend`): a `serial`'s
//! or an identity's sequence depends on its column ('a', 'i'), and a column default that
//! calls `nextval` depends on the sequence it names (`pg_attrdef` → sequence). A `serial`
//! has both ties; a sequence shared through several defaults feeds each column.

use sqlx::postgres::PgRow;
use std::collections::BTreeMap;

use super::{ColumnRef, Feed, SequenceRef, Statement, Tie};
use crate::db::DbError;
use crate::inventory::SchemaFilter;
use crate::postgres::query as db;

/// The ties of watched columns to sequences, around `condition` on the table's schema
/// `n.nspname`: the sequence's oid (`seq`), the column (`rel`, `attnum`) and the tie: 'a'
/// (owned), 'i' (identity) or 'd' (a default that depends on the sequence). Also what
/// [`super::sequences`] reads to find the sequences that feed a watched column from
/// outside the watched schemas.
pub(super) fn ties_sql(condition: &str) -> String {
    format!(
        "\
SELECT d.objid AS seq, c.oid AS rel, d.refobjsubid AS attnum, d.deptype::text AS tie
FROM pg_depend AS d
JOIN pg_class AS c ON c.oid = d.refobjid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
  AND EXISTS (SELECT FROM pg_class AS s WHERE s.oid = d.objid AND s.relkind = 'S')
  AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND {condition}
UNION ALL
SELECT d.refobjid, ad.adrelid, ad.adnum, 'd'
FROM pg_depend AS d
JOIN pg_attrdef AS ad ON ad.oid = d.objid
JOIN pg_class AS c ON c.oid = ad.adrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass
  AND EXISTS (SELECT FROM pg_class AS s WHERE s.oid = d.refobjid AND s.relkind = 'S')
  AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND {condition}"
    )
}

/// The statement: the ties, with the sequences' and the columns' names.
fn sql(condition: &str) -> String {
    let ties = ties_sql(condition);
    format!(
        "\
SELECT sn.nspname::text, s.relname::text, tn.nspname::text, t.relname::text,
       a.attname::text, f.tie
FROM ({ties}) AS f
JOIN pg_class AS s ON s.oid = f.seq
JOIN pg_namespace AS sn ON sn.oid = s.relnamespace
JOIN pg_class AS t ON t.oid = f.rel
JOIN pg_namespace AS tn ON tn.oid = t.relnamespace
JOIN pg_attribute AS a ON a.attrelid = f.rel AND a.attnum = f.attnum
WHERE NOT a.attisdropped"
    )
}

/// The statement as [`read`] sends it.
pub(super) fn statement(filter: &SchemaFilter) -> Statement {
    Statement::new("feeds", filter, sql)
}

/// The tie of a column to a sequence from the kinds of dependency seen between them.
fn tie(owned: bool, identity: bool, default: bool) -> Tie {
    if identity {
        Tie::Identity
    } else if owned && default {
        Tie::Serial
    } else if default {
        Tie::Default
    } else {
        Tie::Owned
    }
}

/// One feed per (column, sequence), from the rows' dependencies: (owned, identity, default).
pub(super) fn join(rows: Vec<(ColumnRef, SequenceRef, impl AsRef<str>)>) -> Vec<Feed> {
    let mut seen: BTreeMap<(ColumnRef, SequenceRef), (bool, bool, bool)> = BTreeMap::new();
    for (column, sequence, kind) in rows {
        let entry = seen.entry((column, sequence)).or_default();
        match kind.as_ref() {
            "a" => entry.0 = true,
            "i" => entry.1 = true,
            _ => entry.2 = true,
        }
    }
    seen.into_iter()
        .map(|((column, sequence), (owned, identity, default))| Feed {
            column,
            sequence,
            tie: tie(owned, identity, default),
        })
        .collect()
}

/// What a failure of the statement says was being done.
pub(super) const WHAT: &str = "reading which sequences feed which columns (pg_depend)";

/// Decodes the statement's rows.
pub(super) fn decode(rows: &[PgRow]) -> Result<Vec<Feed>, DbError> {
    let what = WHAT;
    let mut ties = Vec::with_capacity(rows.len());
    for row in rows {
        ties.push((
            ColumnRef {
                schema: db::text(row, 2, what)?,
                table: db::text(row, 3, what)?,
                column: db::text(row, 4, what)?,
            },
            SequenceRef {
                schema: db::text(row, 0, what)?,
                name: db::text(row, 1, what)?,
            },
            db::text_ref(row, 5, what)?,
        ));
    }
    Ok(join(ties))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dependencies_between_a_column_and_a_sequence_make_one_tie() {
        let col = |c: &str| ColumnRef::new("s", "t", c);
        let seq = |s: &str| SequenceRef::new("s", s);
        let rows = vec![
            (col("serial"), seq("t_serial_seq"), "d".to_string()),
            (col("serial"), seq("t_serial_seq"), "a".to_string()),
            (col("ident"), seq("t_ident_seq"), "i".to_string()),
            (col("a"), seq("shared"), "d".to_string()),
            (col("b"), seq("shared"), "d".to_string()),
            (col("app_side"), seq("owned"), "a".to_string()),
        ];
        let got: Vec<(String, String, Tie)> = join(rows)
            .into_iter()
            .map(|f| (f.column.column, f.sequence.name, f.tie))
            .collect();
        let want = |c: &str, s: &str, t: Tie| (c.to_string(), s.to_string(), t);
        assert_eq!(
            got,
            vec![
                want("a", "shared", Tie::Default),
                want("app_side", "owned", Tie::Owned),
                want("b", "shared", Tie::Default),
                want("ident", "t_ident_seq", Tie::Identity),
                want("serial", "t_serial_seq", Tie::Serial),
            ]
        );
    }
}
