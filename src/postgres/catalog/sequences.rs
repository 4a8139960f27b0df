//! Sequences (`pg_sequence`) with their type, bounds, direction, `CYCLE`, and where they
//! stand, told apart exactly: never used, last handed out, set to hand out a value next,
//! or unreadable — never an unreadable one counted as unused.
//!
//! Why not `pg_sequences.last_value`: it is NULL in three different cases, for a sequence
//! never used, for one the user may not read, and for one moved with `setval(…, false)` or
//! `ALTER SEQUENCE … RESTART WITH` (which hands out nothing until the next `nextval`). So
//! the statements ask the privileges themselves (`has_sequence_privilege`), read
//! `pg_sequence_last_value` (what the view reads: the last value once one was handed out),
//! and only for a sequence that has handed out nothing since it was set, read the
//! sequence's own row (`last_value`, `is_called`) through `query_to_xml`, each name quoted
//! by the server's own `format('%I')`.
//!
//! Reading where a sequence stands locks it until the statement's transaction ends, and
//! every lock of the server shares one table (`max_locks_per_transaction` ×
//! `max_connections`, 6,400 slots by default): one statement over 20,000 sequences ran it
//! out ("out of shared memory", for the application's sessions too). So one statement
//! lists the sequences, their bounds and privileges without locking any ([`statement`]),
//! and where they stand is read [`BATCH`] at a time ([`values_statement`]), each batch
//! its own transaction.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgRow};

use super::{IntType, Sequence, SequenceRef, SequenceValue, Statement, Unreadable};
use crate::db::DbError;
use crate::inventory::SchemaFilter;
use crate::postgres::query as db;

/// The statement, around `condition` on the sequence's schema `n.nspname`. With a list of
/// schemas, a sequence elsewhere that feeds a watched column is read too.
fn sql(condition: &str, feeding: Option<&str>) -> String {
    let which = match feeding {
        Some(ties) => format!("({condition} OR c.oid IN (SELECT f.seq FROM ({ties}) AS f))"),
        None => condition.to_string(),
    };
    format!(
        "\
SELECT n.nspname::text, c.relname::text, t.typname::text,
       s.seqstart::text, s.seqincrement::text, s.seqmin::text, s.seqmax::text,
       s.seqcycle::text, {PRIVILEGES_COLUMNS}, c.oid::text
FROM pg_sequence AS s
JOIN pg_class AS c ON c.oid = s.seqrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_type AS t ON t.oid = s.seqtypid
{PRIVILEGES}
WHERE c.relkind = 'S' AND {which}"
    )
}

/// The monitoring user's privileges on sequence `c` of schema `n`, and whether its data is
/// out of reach (an unlogged sequence on a standby).
const PRIVILEGES: &str = "\
CROSS JOIN LATERAL (
    SELECT has_sequence_privilege(c.oid, 'SELECT,USAGE') AS readable,
           has_sequence_privilege(c.oid, 'SELECT') AS selectable,
           has_schema_privilege(n.oid, 'USAGE') AS schema_usage,
           c.relpersistence = 'u' AND pg_is_in_recovery() AS blind
) AS p";

/// [`PRIVILEGES`] as four columns.
const PRIVILEGES_COLUMNS: &str =
    "p.readable::text, p.selectable::text, p.blind::text, p.schema_usage::text";

/// The statement as [`read`] sends it.
pub(super) fn statement(filter: &SchemaFilter) -> Statement {
    Statement::new("sequences", filter, |condition| match filter {
        SchemaFilter::Only(_) => {
            // The ties of watched tables, whose schema is the `n` of their own subquery.
            let ties = super::feeds::ties_sql(condition);
            sql(condition, Some(&ties))
        }
        SchemaFilter::AllButSystem => sql(condition, None),
    })
}

/// Sequences whose standing one statement reads: each holds its lock until the statement
/// ends, and a thousand locks leave the server's lock table room for everyone else.
pub const BATCH: usize = 1_000;

/// The statement that reads where the sequences of `oids` stand (at most [`BATCH`]),
/// their privileges asked again: one may have been revoked since they were listed.
pub fn values_statement(oids: &[u32]) -> Statement {
    let sql = format!(
        "\
SELECT c.oid::text, {PRIVILEGES_COLUMNS}, l.last::text,
       CASE WHEN l.last IS NULL AND p.selectable AND p.schema_usage AND NOT p.blind
            THEN query_to_xml(format('SELECT last_value::text AS last_value, is_called FROM %I.%I',
                                     n.nspname, c.relname), false, true, '')::text
       END
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
{PRIVILEGES}
CROSS JOIN LATERAL (
    SELECT CASE WHEN p.readable AND NOT p.blind THEN pg_sequence_last_value(c.oid) END AS last
) AS l
WHERE c.relkind = 'S' AND c.oid = ANY($1::text[]::oid[])"
    );
    Statement {
        family: "sequence values",
        sql,
        binds: oids.iter().map(u32::to_string).collect(),
    }
}

/// What the statement says of where a sequence stands, before it is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Standing {
    /// SELECT or USAGE on it.
    pub readable: bool,
    /// SELECT on it: its own row can be read, with [`Standing::schema_usage`].
    pub selectable: bool,
    /// USAGE on its schema, without which its own row cannot be read (its last value
    /// can: `pg_sequence_last_value` asks for no more than SELECT or USAGE on it).
    pub schema_usage: bool,
    /// Unlogged, read on a standby.
    pub blind: bool,
    /// `pg_sequence_last_value`: the last value handed out, NULL if none since it was set.
    pub last: Option<i128>,
    /// Its row (`last_value`, `is_called`) as `query_to_xml` wrote it, when read.
    pub row: Option<String>,
}

/// Where a sequence that starts at `start` stands.
pub(super) fn decide(
    standing: &Standing,
    start: i128,
    what: &str,
) -> Result<SequenceValue, DbError> {
    if !standing.readable {
        return Ok(SequenceValue::Unreadable(Unreadable::NoPrivilege));
    }
    if standing.blind {
        return Ok(SequenceValue::Unreadable(Unreadable::UnloggedOnStandby));
    }
    if let Some(last) = standing.last {
        return Ok(SequenceValue::At(last));
    }
    let Some(row) = &standing.row else {
        let why = if standing.selectable && !standing.schema_usage {
            Unreadable::NoSchemaUsage
        } else {
            Unreadable::UsageOnly
        };
        return Ok(SequenceValue::Unreadable(why));
    };
    let decode = |message: String| DbError::Decode {
        what: what.to_string(),
        message,
    };
    let last_value = element(row, "last_value")
        .and_then(|v| v.parse::<i128>().ok())
        .ok_or_else(|| decode("a sequence's row without its last_value".to_string()))?;
    match element(row, "is_called") {
        // A nextval between the two reads: the row is the newer.
        Some("true") => Ok(SequenceValue::At(last_value)),
        Some("false") if last_value == start => Ok(SequenceValue::Unused),
        Some("false") => Ok(SequenceValue::Next(last_value)),
        _ => Err(decode("a sequence's row without is_called".to_string())),
    }
}

/// The text of the element `<name>…</name>` in `xml`, as `query_to_xml` writes a row of
/// two plain values (an integer and a boolean: nothing there is ever escaped).
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..end].trim())
}

/// What a failure of the statement says was being done.
pub(super) const WHAT: &str = "reading the sequences (pg_sequence)";

/// What a failure of a [`values_statement`] says was being done.
const VALUES_WHAT: &str = "reading where the sequences stand (pg_sequence_last_value)";

pub(super) async fn read(
    conn: &mut PgConnection,
    filter: &SchemaFilter,
    timeout: Duration,
) -> Result<Vec<Sequence>, DbError> {
    let rows = super::fetch(conn, statement(filter), timeout, WHAT).await?;
    let listed = decode(&rows)?;
    settle(conn, listed, timeout).await
}

/// A sequence as [`statement`] lists it, before where it stands is read.
#[derive(Debug, Clone)]
pub(super) struct Listed {
    /// Its `last` is [`SequenceValue::Unused`] until [`settle`] decides it.
    sequence: Sequence,
    oid: u32,
    standing: Standing,
}

impl Listed {
    /// Whether [`values_statement`] reads it: one the user may read, and whose data is there.
    fn to_read(&self) -> bool {
        self.standing.readable && !self.standing.blind
    }
}

/// Decodes the rows of [`statement`].
pub(super) fn decode(rows: &[PgRow]) -> Result<Vec<Listed>, DbError> {
    let what = WHAT;
    let mut listed = Vec::with_capacity(rows.len());
    for row in rows {
        let typname = db::text_ref(row, 2, what)?;
        let int_type = IntType::from_typname(typname).ok_or_else(|| DbError::Decode {
            what: what.to_string(),
            message: format!("a sequence of type {typname:?}"),
        })?;
        let oid = db::int(row, 12, what)?;
        listed.push(Listed {
            sequence: Sequence {
                id: SequenceRef {
                    schema: db::text(row, 0, what)?,
                    name: db::text(row, 1, what)?,
                },
                int_type,
                start: db::int(row, 3, what)?,
                increment: db::int(row, 4, what)?,
                min: db::int(row, 5, what)?,
                max: db::int(row, 6, what)?,
                cycle: db::flag(row, 7, what)?,
                last: SequenceValue::Unused,
            },
            oid: u32::try_from(oid).map_err(|_| DbError::Decode {
                what: what.to_string(),
                message: format!("oid {oid} out of range"),
            })?,
            standing: Standing {
                readable: db::flag(row, 8, what)?,
                selectable: db::flag(row, 9, what)?,
                blind: db::flag(row, 10, what)?,
                schema_usage: db::flag(row, 11, what)?,
                last: None,
                row: None,
            },
        });
    }
    Ok(listed)
}

/// Reads where the `listed` sequences stand, [`BATCH`] a statement, and decides it; a
/// sequence dropped since it was listed is left out. Sorted by schema and name.
pub(super) async fn settle(
    conn: &mut PgConnection,
    listed: Vec<Listed>,
    timeout: Duration,
) -> Result<Vec<Sequence>, DbError> {
    let what = VALUES_WHAT;
    let oids: Vec<u32> = listed
        .iter()
        .filter(|l| l.to_read())
        .map(|l| l.oid)
        .collect();
    let mut read: HashMap<u32, Standing> = HashMap::with_capacity(oids.len());
    for batch in oids.chunks(BATCH) {
        let rows = super::fetch(conn, values_statement(batch), timeout, what).await?;
        for row in &rows {
            let oid = db::int(row, 0, what)?;
            let standing = Standing {
                readable: db::flag(row, 1, what)?,
                selectable: db::flag(row, 2, what)?,
                blind: db::flag(row, 3, what)?,
                schema_usage: db::flag(row, 4, what)?,
                last: db::opt_int(row, 5, what)?,
                row: db::opt_text(row, 6, what)?,
            };
            if let Ok(oid) = u32::try_from(oid) {
                read.insert(oid, standing);
            }
        }
    }
    let mut sequences = Vec::with_capacity(listed.len());
    for l in listed {
        let standing = if l.to_read() {
            match read.remove(&l.oid) {
                Some(standing) => standing,
                // Dropped since it was listed.
                None => continue,
            }
        } else {
            l.standing
        };
        let mut sequence = l.sequence;
        sequence.last = decide(&standing, sequence.start, what)?;
        sequences.push(sequence);
    }
    sequences.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(sequences)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(
        readable: bool,
        selectable: bool,
        last: Option<i128>,
        row: Option<&str>,
    ) -> Standing {
        Standing {
            readable,
            selectable,
            schema_usage: true,
            blind: false,
            last,
            row: row.map(str::to_string),
        }
    }

    fn row(last_value: i128, is_called: bool) -> String {
        format!(
            "<row xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n  \
             <last_value>{last_value}</last_value>\n  <is_called>{is_called}</is_called>\n</row>\n\n"
        )
    }

    #[test]
    fn a_sequence_without_privilege_is_unreadable_not_unused() {
        assert_eq!(
            decide(&standing(false, false, None, None), 1, "x").expect("decided"),
            SequenceValue::Unreadable(Unreadable::NoPrivilege)
        );
    }

    #[test]
    fn the_last_value_handed_out_is_where_it_stands() {
        let s = standing(true, true, Some(-9_223_372_036_854_775_807), None);
        assert_eq!(
            decide(&s, -1, "x").expect("decided"),
            SequenceValue::At(-9_223_372_036_854_775_807)
        );
    }

    #[test]
    fn a_sequence_at_its_start_with_nothing_handed_out_is_unused() {
        let s = standing(true, true, None, Some(&row(-1, false)));
        assert_eq!(decide(&s, -1, "x").expect("decided"), SequenceValue::Unused);
    }

    #[test]
    fn a_restarted_sequence_stands_before_its_next_value() {
        let s = standing(true, true, None, Some(&row(2_000_000_000, false)));
        assert_eq!(
            decide(&s, 1, "x").expect("decided"),
            SequenceValue::Next(2_000_000_000)
        );
        let raced = standing(true, true, None, Some(&row(7, true)));
        assert_eq!(
            decide(&raced, 1, "x").expect("decided"),
            SequenceValue::At(7)
        );
    }

    #[test]
    fn usage_alone_cannot_tell_unused_from_restarted() {
        assert_eq!(
            decide(&standing(true, false, None, None), 1, "x").expect("decided"),
            SequenceValue::Unreadable(Unreadable::UsageOnly)
        );
    }

    #[test]
    fn without_usage_on_its_schema_an_unused_sequence_is_unreadable_and_a_used_one_is_not() {
        let no_usage = |last, row: Option<&str>| Standing {
            schema_usage: false,
            ..standing(true, true, last, row)
        };
        assert_eq!(
            decide(&no_usage(None, None), 1, "x").expect("decided"),
            SequenceValue::Unreadable(Unreadable::NoSchemaUsage)
        );
        assert_eq!(
            decide(&no_usage(Some(5), None), 1, "x").expect("decided"),
            SequenceValue::At(5)
        );
    }

    #[test]
    fn an_unlogged_sequence_on_a_standby_is_unreadable() {
        let s = Standing {
            blind: true,
            ..standing(true, true, None, None)
        };
        assert_eq!(
            decide(&s, 1, "x").expect("decided"),
            SequenceValue::Unreadable(Unreadable::UnloggedOnStandby)
        );
    }

    #[test]
    fn a_malformed_row_is_a_decode_error() {
        let s = standing(true, true, None, Some("<row></row>"));
        assert_eq!(decide(&s, 1, "x").map_err(|e| e.class()), Err("decode"));
    }
}
