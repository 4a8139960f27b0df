//! A sequence as an ID source (`[[sources]] kind = "sequence"`): a central sequence whose
//! values other shards store. Its reading is what it has handed out, counted in its own
//! direction, with its type; its increment and start stand for a ticket server's
//! `auto_increment_increment` and offset, so that two servers' sequences that interleave
//! (`INCREMENT 2`, starts 1 and 2) are told apart from two that collide.

use std::time::Duration;

use sqlx::postgres::PgConnection;

use super::catalog;
use super::inventory;
use crate::sources::collision::Sequence as Stride;
use crate::sources::{Reading, SourceError};

/// Reads the sequence `schema.name` of the database `conn` is connected to (`database`).
pub async fn read(
    conn: &mut PgConnection,
    database: &str,
    schema: &str,
    name: &str,
    timeout: Duration,
) -> Result<Reading, SourceError> {
    let found = catalog::sequence(conn, schema, name, timeout).await?;
    let Some(sequence) = found else {
        return Err(SourceError::NoSequence {
            database: database.to_string(),
            schema: schema.to_string(),
            name: name.to_string(),
        });
    };
    reading(&sequence).map_err(|why| SourceError::SequenceUnreadable {
        schema: schema.to_string(),
        name: name.to_string(),
        why,
    })
}

/// A sequence's reading; `Err` says why it cannot be read. Pure.
pub fn reading(sequence: &catalog::Sequence) -> Result<Reading, String> {
    let measured = inventory::sequence(sequence);
    let highest = measured.handed_out?;
    let step = u64::try_from(sequence.increment.unsigned_abs()).unwrap_or(u64::MAX);
    let start = u64::try_from(sequence.start.unsigned_abs()).unwrap_or(u64::MAX);
    Ok(Reading {
        highest,
        column_type: sequence.int_type.name().to_string(),
        int_type: inventory::int_type(sequence.int_type),
        last_id: None,
        sequence: Stride {
            increment: step,
            offset: start,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::catalog::{IntType, SequenceRef, SequenceValue, Unreadable};

    fn sequence(last: SequenceValue) -> catalog::Sequence {
        catalog::Sequence {
            id: SequenceRef::new("ids", "global"),
            int_type: IntType::Bigint,
            start: 2,
            increment: 2,
            min: 1,
            max: i64::MAX.into(),
            cycle: false,
            last,
        }
    }

    #[test]
    fn a_sequence_reads_as_a_source_server() {
        let r = reading(&sequence(SequenceValue::At(5_000_000_000))).expect("readable");
        assert_eq!(r.highest, 5_000_000_000);
        assert_eq!(r.column_type, "bigint");
        assert_eq!(r.int_type.max(), 9_223_372_036_854_775_807);
        assert_eq!((r.sequence.increment, r.sequence.offset), (2, 2));
        assert_eq!(
            reading(&sequence(SequenceValue::Unused)).map(|r| r.highest),
            Ok(0)
        );
        let why = reading(&sequence(SequenceValue::Unreadable(
            Unreadable::NoPrivilege,
        )))
        .expect_err("unreadable");
        assert!(why.contains("GRANT"), "{why}");
    }
}
