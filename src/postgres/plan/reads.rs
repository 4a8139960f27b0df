//! What a plan reads of one PostgreSQL database for the columns it widens there, in five
//! statements however many columns, each bound to the columns' names as three arrays
//! (`$1` schemas, `$2` tables, `$3` columns; a column's row number is its place in them):
//! each column's definition and its table's size ([`columns`], partitions and inheritance
//! children summed), the sequences that feed it ([`sequences`]), the foreign keys that
//! hold it as child or parent ([`foreign_keys`]), what depends on it ([`dependents`]:
//! views, rules, policies, triggers and functions that PostgreSQL refuses to retype it
//! under, and CHECK constraints), and its table's indexes ([`indexes`]).
//!
//! Every catalog it reads is readable by any role; the session's `search_path` is the
//! catalog's own (see [`crate::postgres::connect`]). `attgenerated` (PostgreSQL 12) and
//! `relam` (12) are read through `to_jsonb` of the row, which names only the columns the
//! server has, so that one statement serves PostgreSQL 11 too.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgRow};

use crate::db::DbError;
use crate::inventory::ColumnId;
use crate::postgres::query::{self as db, fetch_all};

/// The widened columns as `w(ord, rel, attnum)`: the row number (from 1) of each name that
/// is a column of an ordinary or partitioned table.
const WANTED: &str = "\
w AS (
    SELECT u.ord, c.oid AS rel, a.attnum
    FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(nsp, rel, att, ord)
    JOIN pg_namespace AS n ON n.nspname::text = u.nsp
    JOIN pg_class AS c ON c.relnamespace = n.oid AND c.relname::text = u.rel
        AND c.relkind IN ('r', 'p')
    JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attname::text = u.att
        AND a.attnum > 0 AND NOT a.attisdropped
)";

/// The three arrays of names that every statement binds.
pub struct Names {
    schemas: Vec<String>,
    tables: Vec<String>,
    columns: Vec<String>,
}

impl Names {
    /// The names of `ids`, in order: the row number of `ids[i]` is `i + 1`.
    pub fn of(ids: &[&ColumnId]) -> Names {
        Names {
            schemas: ids.iter().map(|id| id.schema.clone()).collect(),
            tables: ids.iter().map(|id| id.table.clone()).collect(),
            columns: ids.iter().map(|id| id.column.clone()).collect(),
        }
    }
}

async fn fetch(
    conn: &mut PgConnection,
    sql: String,
    names: &Names,
    timeout: Duration,
    what: &str,
) -> Result<Vec<PgRow>, DbError> {
    let query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(names.schemas.clone())
        .bind(names.tables.clone())
        .bind(names.columns.clone());
    fetch_all(conn, query, timeout, what).await
}

/// A row number as the statements return it.
fn ord(row: &PgRow, what: &str) -> Result<usize, DbError> {
    let n = db::int(row, 0, what)?;
    usize::try_from(n).map_err(|_| DbError::Decode {
        what: what.to_string(),
        message: format!("row number {n} out of range"),
    })
}

fn count(value: Option<i128>) -> u64 {
    value.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

fn bound(value: i128, what: &str) -> Result<i64, DbError> {
    i64::try_from(value).map_err(|_| DbError::Decode {
        what: what.to_string(),
        message: format!("{value} is out of a sequence's range"),
    })
}

/// A column as [`columns`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// `format_type`, e.g. `integer`.
    pub data_type: String,
    pub not_null: bool,
    /// `pg_get_expr` of its default (or its generation expression).
    pub default: Option<String>,
    /// `attidentity`: `a` (ALWAYS), `d` (BY DEFAULT), or empty.
    pub identity: String,
    /// `attgenerated`: `s` (STORED), or empty.
    pub generated: String,
    pub comment: Option<String>,
    /// `relkind` of its table: `r` or `p` (partitioned).
    pub relkind: String,
    /// Rows, all relation bytes and index bytes of the table and every table under it.
    pub rows: u64,
    pub total_bytes: u64,
    pub index_bytes: u64,
    /// The table's access method (`heap`); `None` before PostgreSQL 12 and for a
    /// partitioned table.
    pub access_method: Option<String>,
    /// The table has partitions or inheritance children.
    pub inherited: bool,
}

/// Each column's definition and its table's size, by row number; a name that is no column
/// has no row.
pub async fn columns(
    conn: &mut PgConnection,
    names: &Names,
    timeout: Duration,
) -> Result<BTreeMap<usize, Column>, DbError> {
    let what = "reading a column definition (pg_attribute)";
    let sql = format!(
        "\
WITH RECURSIVE {WANTED},
tree AS (
    SELECT w.ord, w.rel AS oid FROM w
    UNION ALL
    SELECT tree.ord, i.inhrelid FROM tree JOIN pg_inherits AS i ON i.inhparent = tree.oid
),
size AS (
    SELECT tree.ord, sum(GREATEST(k.reltuples, 0))::bigint AS rows,
           sum(pg_total_relation_size(tree.oid))::bigint AS total,
           sum(pg_indexes_size(tree.oid))::bigint AS indexes, count(*) > 1 AS inherited
    FROM tree JOIN pg_class AS k ON k.oid = tree.oid
    GROUP BY tree.ord
)
SELECT w.ord::text, format_type(a.atttypid, a.atttypmod)::text, a.attnotnull::text,
       pg_get_expr(d.adbin, d.adrelid)::text, a.attidentity::text,
       to_jsonb(a) ->> 'attgenerated', col_description(w.rel, w.attnum::int)::text,
       c.relkind::text, s.rows::text, s.total::text, s.indexes::text, am.amname::text,
       s.inherited::text
FROM w
JOIN pg_attribute AS a ON a.attrelid = w.rel AND a.attnum = w.attnum
JOIN pg_class AS c ON c.oid = w.rel
JOIN size AS s ON s.ord = w.ord
LEFT JOIN pg_attrdef AS d ON d.adrelid = w.rel AND d.adnum = w.attnum
LEFT JOIN pg_am AS am ON am.oid = (to_jsonb(c) ->> 'relam')::oid"
    );
    let rows = fetch(conn, sql, names, timeout, what).await?;
    let mut out = BTreeMap::new();
    for row in &rows {
        out.insert(
            ord(row, what)?,
            Column {
                data_type: db::text(row, 1, what)?,
                not_null: db::flag(row, 2, what)?,
                default: db::opt_text(row, 3, what)?,
                identity: db::opt_text(row, 4, what)?.unwrap_or_default(),
                generated: db::opt_text(row, 5, what)?.unwrap_or_default(),
                comment: db::opt_text(row, 6, what)?,
                relkind: db::text(row, 7, what)?,
                rows: count(db::opt_int(row, 8, what)?),
                total_bytes: count(db::opt_int(row, 9, what)?),
                index_bytes: count(db::opt_int(row, 10, what)?),
                access_method: db::opt_text(row, 11, what)?,
                inherited: db::flag(row, 12, what)?,
            },
        );
    }
    Ok(out)
}

/// A sequence tied to a column, as [`sequences`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    pub schema: String,
    pub name: String,
    /// `format_type` of its type.
    pub data_type: String,
    pub min: i64,
    pub max: i64,
    pub increment: i64,
    /// Owned by the column (`pg_depend` 'a').
    pub owned: bool,
    /// The column's identity sequence ('i').
    pub identity: bool,
    /// The column's default depends on it.
    pub default: bool,
}

/// The sequences tied to each column, by row number: owned by it (`serial`, `OWNED BY`),
/// its identity's, or named by its default.
pub async fn sequences(
    conn: &mut PgConnection,
    names: &Names,
    timeout: Duration,
) -> Result<BTreeMap<usize, Vec<Sequence>>, DbError> {
    let what = "reading the sequences that feed a column (pg_depend)";
    let sql = format!(
        "\
WITH {WANTED}
SELECT w.ord::text, sn.nspname::text, s.relname::text, format_type(q.seqtypid, NULL)::text,
       q.seqmin::text, q.seqmax::text, q.seqincrement::text, f.tie
FROM w
JOIN (
    SELECT d.refobjid AS rel, d.refobjsubid AS attnum, d.objid AS seq, d.deptype::text AS tie
    FROM pg_depend AS d
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
    UNION ALL
    SELECT ad.adrelid, ad.adnum, d.refobjid, 'd'
    FROM pg_depend AS d
    JOIN pg_attrdef AS ad ON ad.oid = d.objid
    WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass
) AS f ON f.rel = w.rel AND f.attnum = w.attnum
JOIN pg_class AS s ON s.oid = f.seq AND s.relkind = 'S'
JOIN pg_namespace AS sn ON sn.oid = s.relnamespace
JOIN pg_sequence AS q ON q.seqrelid = s.oid"
    );
    let rows = fetch(conn, sql, names, timeout, what).await?;
    let mut out: BTreeMap<usize, Vec<Sequence>> = BTreeMap::new();
    for row in &rows {
        let at = ord(row, what)?;
        let schema = db::text(row, 1, what)?;
        let name = db::text(row, 2, what)?;
        let tie = db::text(row, 7, what)?;
        let list = out.entry(at).or_default();
        let i = match list
            .iter()
            .position(|s| s.schema == schema && s.name == name)
        {
            Some(i) => i,
            None => {
                list.push(Sequence {
                    schema,
                    name,
                    data_type: db::text(row, 3, what)?,
                    min: bound(db::int(row, 4, what)?, what)?,
                    max: bound(db::int(row, 5, what)?, what)?,
                    increment: bound(db::int(row, 6, what)?, what)?,
                    owned: false,
                    identity: false,
                    default: false,
                });
                list.len() - 1
            }
        };
        let s = &mut list[i];
        match tie.as_str() {
            "a" => s.owned = true,
            "i" => s.identity = true,
            _ => s.default = true,
        }
    }
    Ok(out)
}

/// A foreign key as [`foreign_keys`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub schema: String,
    pub table: String,
    pub columns: Vec<String>,
    pub parent_schema: String,
    pub parent_table: String,
    pub parent_columns: Vec<String>,
    /// `ON UPDATE` and `ON DELETE` as words, e.g. `NO ACTION`.
    pub on_update: String,
    pub on_delete: String,
    /// `MATCH FULL`.
    pub match_full: bool,
    pub deferrable: bool,
    pub deferred: bool,
}

/// The action a `confupdtype`/`confdeltype` code stands for.
fn action(code: &str) -> &'static str {
    match code {
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        _ => "NO ACTION",
    }
}

/// Every foreign key declared with a widened column as child or parent (a key cloned
/// onto partitions once, as declared), its columns in the key's order.
pub async fn foreign_keys(
    conn: &mut PgConnection,
    names: &Names,
    timeout: Duration,
) -> Result<Vec<Key>, DbError> {
    let what = "reading the foreign keys of a widened column (pg_constraint)";
    let sql = format!(
        "\
WITH {WANTED}
SELECT k.oid::text, k.conname::text, u.ord::text,
       n.nspname::text, c.relname::text, ca.attname::text,
       pn.nspname::text, p.relname::text, pa.attname::text,
       k.confupdtype::text, k.confdeltype::text, k.confmatchtype::text,
       k.condeferrable::text, k.condeferred::text
FROM pg_constraint AS k
CROSS JOIN LATERAL unnest(k.conkey, k.confkey) WITH ORDINALITY AS u(child, parent, ord)
JOIN pg_class AS c ON c.oid = k.conrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_attribute AS ca ON ca.attrelid = k.conrelid AND ca.attnum = u.child
JOIN pg_class AS p ON p.oid = k.confrelid
JOIN pg_namespace AS pn ON pn.oid = p.relnamespace
JOIN pg_attribute AS pa ON pa.attrelid = k.confrelid AND pa.attnum = u.parent
WHERE k.contype = 'f' AND k.conparentid = 0
  AND EXISTS (SELECT FROM w WHERE (w.rel = k.conrelid AND w.attnum = ANY (k.conkey))
                               OR (w.rel = k.confrelid AND w.attnum = ANY (k.confkey)))"
    );
    let rows = fetch(conn, sql, names, timeout, what).await?;
    // By constraint oid: the key, and its (child, parent) column pairs by position.
    type Pairs = BTreeMap<i128, (String, String)>;
    let mut keys: BTreeMap<i128, (Key, Pairs)> = BTreeMap::new();
    for row in &rows {
        let oid = db::int(row, 0, what)?;
        let position = db::int(row, 2, what)?;
        let pair = (db::text(row, 5, what)?, db::text(row, 8, what)?);
        if let Some((_, pairs)) = keys.get_mut(&oid) {
            pairs.insert(position, pair);
            continue;
        }
        let key = Key {
            name: db::text(row, 1, what)?,
            schema: db::text(row, 3, what)?,
            table: db::text(row, 4, what)?,
            columns: Vec::new(),
            parent_schema: db::text(row, 6, what)?,
            parent_table: db::text(row, 7, what)?,
            parent_columns: Vec::new(),
            on_update: action(&db::text(row, 9, what)?).to_string(),
            on_delete: action(&db::text(row, 10, what)?).to_string(),
            match_full: db::text(row, 11, what)? == "f",
            deferrable: db::flag(row, 12, what)?,
            deferred: db::flag(row, 13, what)?,
        };
        keys.insert(oid, (key, BTreeMap::from([(position, pair)])));
    }
    let mut out: Vec<Key> = keys
        .into_values()
        .map(|(mut key, pairs)| {
            for (child, parent) in pairs.into_values() {
                key.columns.push(child);
                key.parent_columns.push(parent);
            }
            key
        })
        .collect();
    out.sort_by(|a, b| (&a.schema, &a.table, &a.name).cmp(&(&b.schema, &b.table, &b.name)));
    Ok(out)
}

/// What depends on a column, as [`dependents`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependent {
    /// `view`, `materialized view`, `rule`, `policy`, `trigger`, `function`, `generated
    /// column` (each makes PostgreSQL refuse to change the column's type), or `check`.
    pub kind: String,
    /// `schema.name` where it has a schema of its own, else its name.
    pub name: String,
}

/// What depends on each column, by row number (`pg_depend`).
pub async fn dependents(
    conn: &mut PgConnection,
    names: &Names,
    timeout: Duration,
) -> Result<BTreeMap<usize, Vec<Dependent>>, DbError> {
    let what = "reading what depends on a widened column (pg_depend)";
    let sql = format!(
        "\
WITH {WANTED}
SELECT DISTINCT w.ord::text, x.kind, x.nsp, x.name
FROM w
JOIN pg_depend AS d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = w.rel
    AND d.refobjsubid = w.attnum
CROSS JOIN LATERAL (
    SELECT CASE v.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                          ELSE 'rule' END,
           vn.nspname::text, v.relname::text
    FROM pg_rewrite AS r
    JOIN pg_class AS v ON v.oid = r.ev_class
    JOIN pg_namespace AS vn ON vn.oid = v.relnamespace
    WHERE d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
    UNION ALL
    SELECT 'policy', NULL, pol.polname::text FROM pg_policy AS pol
    WHERE d.classid = 'pg_policy'::regclass AND pol.oid = d.objid
    UNION ALL
    SELECT 'trigger', NULL, tg.tgname::text FROM pg_trigger AS tg
    WHERE d.classid = 'pg_trigger'::regclass AND tg.oid = d.objid
    UNION ALL
    SELECT 'function', pn.nspname::text, pr.proname::text
    FROM pg_proc AS pr JOIN pg_namespace AS pn ON pn.oid = pr.pronamespace
    WHERE d.classid = 'pg_proc'::regclass AND pr.oid = d.objid
    UNION ALL
    SELECT 'generated column', NULL, ga.attname::text FROM pg_attribute AS ga
    WHERE d.classid = 'pg_class'::regclass AND d.objid = w.rel AND d.objsubid > 0
      AND d.objsubid <> w.attnum AND ga.attrelid = w.rel AND ga.attnum = d.objsubid
    UNION ALL
    SELECT 'check', NULL, con.conname::text FROM pg_constraint AS con
    WHERE d.classid = 'pg_constraint'::regclass AND con.oid = d.objid AND con.contype = 'c'
) AS x(kind, nsp, name)
ORDER BY 1, 2, 3, 4"
    );
    let rows = fetch(conn, sql, names, timeout, what).await?;
    let mut out: BTreeMap<usize, Vec<Dependent>> = BTreeMap::new();
    for row in &rows {
        let name = db::text(row, 3, what)?;
        let name = match db::opt_text(row, 2, what)? {
            Some(schema) => format!("{schema}.{name}"),
            None => name,
        };
        out.entry(ord(row, what)?).or_default().push(Dependent {
            kind: db::text(row, 1, what)?,
            name,
        });
    }
    Ok(out)
}

/// An index of a widened column's table, as [`indexes`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    /// Its key columns in order, `None` for an expression; then its `INCLUDE` columns.
    pub key: Vec<Option<String>>,
    pub include: Vec<Option<String>>,
    pub unique: bool,
    /// The constraint it backs: its name and type (`p`, `u` or `x`).
    pub constraint: Option<(String, char)>,
    /// A valid B-tree of columns, ascending, not partial, backing no deferrable or
    /// exclusion constraint: one that can be built again as it is.
    pub plain: bool,
    /// It holds the widened column.
    pub holds: bool,
    /// It is the table's primary key, of one integer column.
    pub integer_key: bool,
}

/// Every index of each widened column's table, by row number.
pub async fn indexes(
    conn: &mut PgConnection,
    names: &Names,
    timeout: Duration,
) -> Result<BTreeMap<usize, Vec<Index>>, DbError> {
    let what = "reading the indexes of a widened table (pg_index)";
    let sql = format!(
        "\
WITH {WANTED}
SELECT w.ord::text, ic.relname::text, i.indisunique::text, con.conname::text,
       con.contype::text,
       (am.amname = 'btree' AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
        AND NOT EXISTS (SELECT FROM unnest(i.indoption::int2[]) AS o(v) WHERE o.v <> 0)
        AND NOT coalesce(con.condeferrable, false)
        AND coalesce(con.contype, 'u') <> 'x')::text,
       (w.attnum = ANY (i.indkey::int2[]))::text,
       (i.indisprimary AND i.indnkeyatts = 1 AND EXISTS (
            SELECT FROM pg_attribute AS pa
            WHERE pa.attrelid = i.indrelid AND pa.attnum = i.indkey[0]
              AND pa.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)))::text,
       i.indnkeyatts::text,
       (SELECT array_to_json(array_agg(a.attname::text ORDER BY k.n))::text
        FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
        LEFT JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
FROM w
JOIN pg_index AS i ON i.indrelid = w.rel
JOIN pg_class AS ic ON ic.oid = i.indexrelid
JOIN pg_am AS am ON am.oid = ic.relam
LEFT JOIN pg_constraint AS con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
    AND con.contype IN ('p', 'u', 'x')
ORDER BY 1, 2"
    );
    let rows = fetch(conn, sql, names, timeout, what).await?;
    let mut out: BTreeMap<usize, Vec<Index>> = BTreeMap::new();
    for row in &rows {
        let columns: Vec<Option<String>> =
            serde_json::from_str(&db::text(row, 9, what)?).map_err(|e| DbError::Decode {
                what: what.to_string(),
                message: format!("an index's columns: {e}"),
            })?;
        let keys = usize::try_from(db::int(row, 8, what)?).unwrap_or(columns.len());
        let (key, include) = columns.split_at(keys.min(columns.len()));
        let constraint = match (db::opt_text(row, 3, what)?, db::opt_text(row, 4, what)?) {
            (Some(name), Some(kind)) => Some((name, kind.chars().next().unwrap_or('u'))),
            _ => None,
        };
        out.entry(ord(row, what)?).or_default().push(Index {
            name: db::text(row, 1, what)?,
            key: key.to_vec(),
            include: include.to_vec(),
            unique: db::flag(row, 2, what)?,
            constraint,
            plain: db::flag(row, 5, what)?,
            holds: db::flag(row, 6, what)?,
            integer_key: db::flag(row, 7, what)?,
        });
    }
    Ok(out)
}
