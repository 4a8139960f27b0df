//! The pure rules of a widening: which type a column widens to, and what its rebuild costs.
//! No I/O, and no statement: the engine writes those (for MySQL, `mysql/plan/statements.rs`).
//!
//! # The target type
//! A group of columns that must widen together (see [`super::related`]) needs one value
//! range, `need`: the largest of every member's own maximum, the maximum of each member's
//! parent or source when the member is narrower than it, and, for a member at warning or
//! worse, the maximum of its [`widened`] type. Each member then takes [`holding`]: the
//! narrowest integer type of its own signedness whose maximum reaches `need`, or BIGINT
//! UNSIGNED when no type of its signedness does (a signed column under a BIGINT UNSIGNED
//! parent). So a column is never narrowed, keeps its signedness unless only UNSIGNED can
//! hold its parent's values, and is at least as wide as its parent afterwards.
//!
//! A column running out widens straight to BIGINT (UNSIGNED if it was): each step in
//! between buys only 256 times the room for a second rebuild of the same table, which is
//! what Etsy's second outage was. A signed BIGINT running out becomes BIGINT UNSIGNED; a
//! BIGINT UNSIGNED has nothing wider.
//!
//! # PostgreSQL
//! PostgreSQL has `smallint`, `integer` and `bigint`, all signed ([`Types::Postgres`]): a
//! column widens within them, `bigint` has nothing wider, and a group that needs more than
//! `bigint` holds gets `bigint`.

use crate::headroom::{IntType, Width};
use crate::measure::ColumnReport;

/// The integer types of a column's engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Types {
    /// MySQL and MariaDB: five widths, each signed or UNSIGNED.
    Mysql,
    /// PostgreSQL: `smallint`, `integer` and `bigint`, signed only.
    Postgres,
}

impl Types {
    /// The types of the engine that holds `r`: a column named in a database (see
    /// [`crate::inventory::ColumnId::database`]) is PostgreSQL's.
    pub fn of(r: &ColumnReport) -> Types {
        if r.id.database().is_some() {
            Types::Postgres
        } else {
            Types::Mysql
        }
    }

    /// The widths, narrowest first.
    fn widths(self) -> &'static [Width] {
        match self {
            Types::Mysql => &[
                Width::Tiny,
                Width::Small,
                Width::Medium,
                Width::Int,
                Width::Big,
            ],
            Types::Postgres => &[Width::Small, Width::Int, Width::Big],
        }
    }

    /// The widest type.
    fn widest(self) -> IntType {
        IntType::new(Width::Big, self == Types::Mysql)
    }
}

/// The type a MySQL column running out widens to; `None` for BIGINT UNSIGNED.
pub fn widened(from: IntType) -> Option<IntType> {
    widened_in(Types::Mysql, from)
}

/// The type a column of an engine of `types` running out widens to; `None` for the widest.
pub fn widened_in(types: Types, from: IntType) -> Option<IntType> {
    match (types, from.width, from.unsigned) {
        (Types::Mysql, Width::Big, true) => None,
        (Types::Mysql, Width::Big, false) => Some(IntType::new(Width::Big, true)),
        (Types::Mysql, _, unsigned) => Some(IntType::new(Width::Big, unsigned)),
        (Types::Postgres, Width::Big, _) => None,
        (Types::Postgres, _, _) => Some(IntType::new(Width::Big, false)),
    }
}

/// The narrowest MySQL type of `from`'s signedness, never narrower than `from`, whose
/// maximum is at least `need`; BIGINT UNSIGNED when no such type exists.
pub fn holding(from: IntType, need: u64) -> IntType {
    holding_in(Types::Mysql, from, need)
}

/// As [`holding`], among `types`: the widest of them when none holds `need`.
pub fn holding_in(types: Types, from: IntType, need: u64) -> IntType {
    types
        .widths()
        .iter()
        .filter(|w| **w >= from.width)
        .map(|w| IntType::new(*w, from.unsigned))
        .find(|t| t.max() >= need)
        .unwrap_or(types.widest())
}

/// Seconds to copy `bytes` (data and indexes) at `mb_per_second` MiB/s, rounded up.
pub fn rebuild_seconds(bytes: u64, mb_per_second: u64) -> u64 {
    let rate = mb_per_second.max(1).saturating_mul(1 << 20);
    bytes.div_ceil(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(width: Width, unsigned: bool) -> IntType {
        IntType::new(width, unsigned)
    }

    #[test]
    fn a_column_running_out_widens_to_bigint_keeping_its_signedness() {
        assert_eq!(widened(t(Width::Int, false)), Some(t(Width::Big, false)));
        assert_eq!(widened(t(Width::Int, true)), Some(t(Width::Big, true)));
        assert_eq!(widened(t(Width::Small, true)), Some(t(Width::Big, true)));
        assert_eq!(widened(t(Width::Big, false)), Some(t(Width::Big, true)));
        assert_eq!(widened(t(Width::Big, true)), None);
    }

    #[test]
    fn the_target_is_the_narrowest_type_of_the_same_signedness_that_holds_the_need() {
        let int_u = t(Width::Int, true).max();
        let big = t(Width::Big, false).max();
        // A signed INT under an INT UNSIGNED parent: signed BIGINT holds it.
        assert_eq!(holding(t(Width::Int, false), int_u), t(Width::Big, false));
        // An unsigned SMALLINT under an INT UNSIGNED parent: INT UNSIGNED, not BIGINT.
        assert_eq!(holding(t(Width::Small, true), int_u), t(Width::Int, true));
        // Under a signed BIGINT: an unsigned child becomes BIGINT UNSIGNED.
        assert_eq!(holding(t(Width::Int, true), big), t(Width::Big, true));
        // Only UNSIGNED holds a BIGINT UNSIGNED parent.
        assert_eq!(holding(t(Width::Int, false), u64::MAX), t(Width::Big, true));
        // Never narrowed.
        assert_eq!(holding(t(Width::Big, false), 10), t(Width::Big, false));
        assert_eq!(
            holding(t(Width::Medium, false), 8_388_607),
            t(Width::Medium, false)
        );
    }

    #[test]
    fn a_postgresql_column_widens_to_bigint_and_never_past_it() {
        let pg = Types::Postgres;
        assert_eq!(
            widened_in(pg, t(Width::Small, false)),
            Some(t(Width::Big, false))
        );
        assert_eq!(
            widened_in(pg, t(Width::Int, false)),
            Some(t(Width::Big, false))
        );
        assert_eq!(widened_in(pg, t(Width::Big, false)), None);
        // smallint under an integer parent: integer, never a MySQL-only width.
        let int = t(Width::Int, false).max();
        assert_eq!(
            holding_in(pg, t(Width::Small, false), int),
            t(Width::Int, false)
        );
        assert_eq!(
            holding_in(pg, t(Width::Small, false), 40_000),
            t(Width::Int, false)
        );
        // More than bigint holds: bigint, the widest there is.
        assert_eq!(
            holding_in(pg, t(Width::Int, false), u64::MAX),
            t(Width::Big, false)
        );
        assert_eq!(
            holding_in(pg, t(Width::Big, false), 10),
            t(Width::Big, false)
        );
    }

    #[test]
    fn the_rebuild_estimate_rounds_up_at_the_configured_rate() {
        assert_eq!(rebuild_seconds(0, 50), 0);
        assert_eq!(rebuild_seconds(1, 50), 1);
        assert_eq!(rebuild_seconds(50 << 20, 50), 1);
        assert_eq!(rebuild_seconds((50 << 20) + 1, 50), 2);
        assert_eq!(rebuild_seconds(10 << 30, 50), 205);
    }
}
