//! `headroom bump`: Etsy's "in our development environment bring all of the ID numbers
//! above the max INT". Every ticket server and every AUTO_INCREMENT counter of a development
//! configuration is raised above a bound (2147483647 by default), so that a column too
//! narrow for the IDs it stores fails in development instead of in production.
//!
//! This file is the pure part: which configurations may be bumped ([`not_dev`]), what each
//! counter is set to ([`plan`], [`next_above`]) and the report ([`render`]).
//! `bump/servers.rs` ([`run`]) reads every server and then raises, through each server's
//! engine ([`crate::engine::Writer`]); the sessions, statements and locks are the engine's
//! (for MySQL and MariaDB, `mysql/bump.rs`).
//!
//! A counter is the table's AUTO_INCREMENT: the next value the server hands out. A server
//! with `auto_increment_increment` = i and `auto_increment_offset` = o hands out only values
//! ≡ o (mod i) (MariaDB and MySQL compute the next one as the least such value at or above
//! the counter), so a counter is raised to the least value above the bound in that series:
//! a ticket pair keeps handing out odd IDs on one server and even ones on the other. A
//! counter already above the bound is left alone, never lowered, which makes a second run
//! change nothing. On InnoDB an `ALTER TABLE ... AUTO_INCREMENT = n` below the counter does
//! lower it (down to the largest ID stored, plus one), so with `--apply` each counter is
//! read and raised under a write lock on its table: another session cannot raise it between
//! the read and the ALTER only to have it set back down. A column whose type cannot hold any
//! value of the series above the bound (an `INT` counter above 2147483647) is left alone and
//! reported: raising it would only make every insert into its table fail, which `headroom
//! lint` reports as a type problem instead.

mod servers;

use std::fmt::Write as _;

use crate::config::{Environment, Settings};
use crate::escape::escape;

pub use servers::{Outcome, ServerError, run};

/// The default bound: the maximum of a signed `INT`.
pub const DEFAULT_ABOVE: u64 = 2_147_483_647;

/// A server's `auto_increment_increment` and `auto_increment_offset` (session values of the
/// connection, which is what an insert on it uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The distance between two values the server hands out (at least 1).
    pub increment: u64,
    /// Which values of each `increment` it hands out: those ≡ `offset` (mod `increment`).
    pub offset: u64,
}

/// The least value above `above` that a server with `step` hands out: `v > above`,
/// `v ≡ offset (mod increment)`, and at least `offset` (the servers' formula never goes
/// below it). Exact: the result may exceed every column type (u128).
pub fn next_above(above: u64, step: Step) -> u128 {
    let increment = u128::from(step.increment.max(1));
    let offset = u128::from(step.offset);
    let first = u128::from(above) + 1;
    let residue = offset % increment;
    let v = first + (residue + increment - first % increment) % increment;
    v.max(offset)
}

/// What to do with one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Set AUTO_INCREMENT to `to`.
    Raise {
        /// The new counter: the next value handed out.
        to: u128,
    },
    /// The counter is above the bound already: left alone.
    AlreadyAbove,
    /// The column's type cannot hold `needed`, the least value to raise it to: left alone.
    TooNarrow {
        /// What the counter would have been raised to.
        needed: u128,
    },
    /// Raising it to `to` was tried and failed (`--apply` only; the error is reported
    /// beside the table). [`plan`] never returns it.
    Failed {
        /// What the counter was to be raised to.
        to: u128,
    },
}

/// What to do with a counter standing at `current` (the next value handed out) on a server
/// with `step`, in a column whose type holds at most `max`, to bring it above `above`.
pub fn plan(current: i128, above: u64, step: Step, max: u64) -> Action {
    if current > i128::from(above) {
        return Action::AlreadyAbove;
    }
    let to = next_above(above, step);
    if to > u128::from(max) {
        Action::TooNarrow { needed: to }
    } else {
        Action::Raise { to }
    }
}

/// Every shard and source of `settings` that is not `environment = "dev"`, as the refusal
/// names them (`shard shard-01 (production)`); empty when bump may run.
pub fn not_dev(settings: &Settings) -> Vec<String> {
    let shards = settings
        .configured_shards
        .iter()
        .filter(|s| s.environment != Environment::Dev)
        .map(|s| format!("shard {} ({})", s.name, s.environment));
    let sources = settings
        .sources
        .iter()
        .filter(|s| s.environment != Environment::Dev)
        .map(|s| format!("source {} ({})", s.name, s.environment));
    shards.chain(sources).collect()
}

/// One AUTO_INCREMENT counter as read from a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// Which server holds it: the shard's name, or the source's name and server.
    pub server: String,
    /// The table's schema (a ticket server's database).
    pub schema: String,
    pub table: String,
    /// The auto-increment column.
    pub column: String,
    /// As information_schema writes it, e.g. `bigint(20) unsigned`.
    pub column_type: String,
    /// The largest value the column's type holds.
    pub max: u64,
    /// AUTO_INCREMENT: the next value handed out.
    pub current: i128,
    /// The server's increment and offset (a PostgreSQL sequence's increment, and its
    /// start modulo it).
    pub step: Step,
    /// The PostgreSQL sequence behind the column, `(schema, name)`: what is raised (with
    /// `setval`); `None` for a MySQL AUTO_INCREMENT.
    pub sequence: Option<(String, String)>,
}

/// A counter and what was (or would be) done with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub counter: Counter,
    pub action: Action,
}

/// The report: one line per counter (names escaped for the terminal), then a summary.
/// `applied`: the raises were made, rather than planned.
pub fn render(rows: &[Row], above: u64, applied: bool) -> String {
    let header = [
        "SERVER",
        "COUNTER",
        "TYPE",
        "INCREMENT",
        "OFFSET",
        "CURRENT",
        "NEW",
        "ACTION",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|row| {
            let c = &row.counter;
            let (new, action) = match row.action {
                Action::Raise { to } if applied => (to.to_string(), "raised".to_string()),
                Action::Raise { to } => (to.to_string(), "would raise".to_string()),
                Action::AlreadyAbove => ("-".to_string(), "left alone: already above".to_string()),
                Action::TooNarrow { .. } => (
                    "-".to_string(),
                    format!("left alone: its type holds at most {}", c.max),
                ),
                Action::Failed { to } => (to.to_string(), "FAILED".to_string()),
            };
            [
                escape(&c.server).into_owned(),
                escape(&format!("{}.{}.{}", c.schema, c.table, c.column)).into_owned(),
                escape(&c.column_type).into_owned(),
                c.step.increment.to_string(),
                c.step.offset.to_string(),
                c.current.to_string(),
                new,
                action,
            ]
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Counters above {above}{}",
        if applied {
            ""
        } else {
            " (dry run: nothing is changed)"
        }
    );
    out.push('\n');
    out.push_str(&crate::escape::table(&header, &cells));
    out.push('\n');
    out.push_str(&summary(rows, above, applied));
    out
}

/// The last line(s): how many counters were (or would be) raised and how many left alone.
fn summary(rows: &[Row], above: u64, applied: bool) -> String {
    let count = |f: fn(&Action) -> bool| rows.iter().filter(|r| f(&r.action)).count();
    let raised = count(|a| matches!(a, Action::Raise { .. }));
    let alone = count(|a| matches!(a, Action::AlreadyAbove));
    let narrow = count(|a| matches!(a, Action::TooNarrow { .. }));
    let failed = count(|a| matches!(a, Action::Failed { .. }));
    let mut out = String::new();
    let counters = |n: usize| if n == 1 { "counter" } else { "counters" };
    if raised == 0 && failed == 0 {
        let _ = write!(
            out,
            "Nothing to change: {alone} {} already above {above}",
            counters(alone)
        );
    } else if applied {
        let _ = write!(
            out,
            "Raised {raised} {}; {alone} already above {above}",
            counters(raised)
        );
    } else {
        let _ = write!(
            out,
            "{raised} {} to raise; {alone} already above {above}",
            counters(raised)
        );
    }
    if narrow > 0 {
        let _ = write!(
            out,
            "; {narrow} too narrow to go above it (left alone: see headroom lint)"
        );
    }
    if failed > 0 {
        let _ = write!(out, "; {failed} FAILED (see the errors)");
    }
    out.push_str(".\n");
    if raised > 0 && !applied {
        out.push_str("Run again with --apply to raise them.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const INT_MAX: u64 = 2_147_483_647;
    const INT_UNSIGNED_MAX: u64 = 4_294_967_295;

    fn step(increment: u64, offset: u64) -> Step {
        Step { increment, offset }
    }

    #[test]
    fn a_ticket_pair_lands_on_the_first_odd_and_even_ids_above_int_max() {
        assert_eq!(next_above(INT_MAX, step(2, 1)), 2_147_483_649);
        assert_eq!(next_above(INT_MAX, step(2, 2)), 2_147_483_648);
        assert_eq!(next_above(INT_MAX, step(1, 1)), 2_147_483_648);
        // Three servers: offsets 1, 2, 3 of 3. 2147483648 = 3 × 715827882 + 2.
        assert_eq!(next_above(INT_MAX, step(3, 1)), 2_147_483_650);
        assert_eq!(next_above(INT_MAX, step(3, 2)), 2_147_483_648);
        assert_eq!(next_above(INT_MAX, step(3, 3)), 2_147_483_649);
        // An offset above the increment counts modulo it, and never below itself.
        assert_eq!(next_above(INT_MAX, step(2, 5)), 2_147_483_649);
        assert_eq!(next_above(0, step(2, 5)), 5);
        assert_eq!(next_above(0, step(10, 7)), 7);
    }

    #[test]
    fn next_above_the_largest_bound_is_exact() {
        assert_eq!(next_above(u64::MAX, step(1, 1)), 1u128 << 64);
        assert_eq!(next_above(u64::MAX, step(2, 2)), 1u128 << 64);
        assert_eq!(next_above(u64::MAX, step(2, 1)), (1u128 << 64) + 1);
        // 2^64 ≡ 1 (mod 65535).
        assert_eq!(next_above(u64::MAX, step(65_535, 1)), 1u128 << 64);
    }

    #[test]
    fn a_counter_is_raised_left_alone_above_or_too_narrow() {
        let big = u64::MAX;
        assert_eq!(
            plan(2_147_483_003, INT_MAX, step(2, 1), big),
            Action::Raise { to: 2_147_483_649 }
        );
        assert_eq!(
            plan(1, INT_MAX, step(1, 1), INT_UNSIGNED_MAX),
            Action::Raise { to: 2_147_483_648 }
        );
        assert_eq!(
            plan(2_147_483_648, INT_MAX, step(1, 1), big),
            Action::AlreadyAbove
        );
        assert_eq!(
            plan(5_000_000_000, INT_MAX, step(2, 1), big),
            Action::AlreadyAbove
        );
        // A signed INT counter can never be above its own maximum.
        assert_eq!(
            plan(1_900_000_000, INT_MAX, step(1, 1), INT_MAX),
            Action::TooNarrow {
                needed: 2_147_483_648
            }
        );
        // At the bound exactly: the next value handed out is not above it yet.
        assert_eq!(
            plan(i128::from(INT_MAX), INT_MAX, step(1, 1), big),
            Action::Raise { to: 2_147_483_648 }
        );
    }

    #[test]
    fn only_dev_shards_and_sources_may_be_bumped() {
        let text = "
[[shards]]
name = \"dev-1\"
url = \"mysql://root@db1:3306\"
environment = \"dev\"
[[shards]]
name = \"prod-1\"
url = \"mysql://root@db2:3306\"
[[sources]]
name = \"tickets\"
kind = \"ticket_server\"
servers = [\"mysql://root@t1:3306/tickets\"]
table = \"Tickets64\"
environment = \"staging\"
";
        let settings = crate::config::from_toml_str(text, &|_| None).expect("valid");
        assert_eq!(
            not_dev(&settings),
            vec![
                "shard prod-1 (production)".to_string(),
                "source tickets (staging)".to_string()
            ]
        );
        let all_dev = text.replace("\"staging\"", "\"dev\"").replace(
            "url = \"mysql://root@db2:3306\"\n",
            "url = \"mysql://root@db2:3306\"\nenvironment = \"dev\"\n",
        );
        let settings = crate::config::from_toml_str(&all_dev, &|_| None).expect("valid");
        assert!(not_dev(&settings).is_empty());
    }

    fn counter(server: &str, table: &str, current: i128, max: u64) -> Counter {
        Counter {
            sequence: None,
            server: server.to_string(),
            schema: "etsy".to_string(),
            table: table.to_string(),
            column: "id".to_string(),
            column_type: if max == INT_MAX {
                "int(11)".to_string()
            } else {
                "bigint(20) unsigned".to_string()
            },
            max,
            current,
            step: step(1, 1),
        }
    }

    #[test]
    fn the_report_lists_each_counter_and_says_what_a_dry_run_left_undone() {
        let rows = vec![
            Row {
                counter: counter("shard-01", "audit_log", 7, u64::MAX),
                action: Action::Raise { to: 2_147_483_648 },
            },
            Row {
                counter: counter("shard-01", "feed", 1_900_000_000, INT_MAX),
                action: Action::TooNarrow {
                    needed: 2_147_483_648,
                },
            },
            Row {
                counter: counter("shard-01", "new\nline", 3_000_000_000, u64::MAX),
                action: Action::AlreadyAbove,
            },
        ];
        let dry = render(&rows, INT_MAX, false);
        let lines: Vec<&str> = dry.lines().collect();
        assert_eq!(
            lines[0],
            "Counters above 2147483647 (dry run: nothing is changed)"
        );
        assert_eq!(
            lines[2],
            "SERVER    COUNTER            TYPE                 INCREMENT  OFFSET  CURRENT     NEW         ACTION"
        );
        assert_eq!(
            lines[3],
            "shard-01  etsy.audit_log.id  bigint(20) unsigned  1          1       7           2147483648  would raise"
        );
        assert_eq!(
            lines[4],
            "shard-01  etsy.feed.id       int(11)              1          1       1900000000  -           left alone: its type holds at most 2147483647"
        );
        assert!(
            lines[5].starts_with("shard-01  etsy.new\\nline.id"),
            "{dry}"
        );
        assert!(lines[5].ends_with("left alone: already above"), "{dry}");
        assert_eq!(
            lines[7],
            "1 counter to raise; 1 already above 2147483647; 1 too narrow to go above it (left alone: see headroom lint)."
        );
        assert_eq!(lines[8], "Run again with --apply to raise them.");

        let applied = render(&rows, INT_MAX, true);
        assert!(
            applied.starts_with("Counters above 2147483647\n"),
            "{applied}"
        );
        assert!(applied.contains("2147483648  raised\n"), "{applied}");
        assert!(applied.ends_with(
            "Raised 1 counter; 1 already above 2147483647; 1 too narrow to go above it (left alone: see headroom lint).\n"
        ));

        let mut failed = rows.clone();
        failed[0].action = Action::Failed { to: 2_147_483_648 };
        let failed = render(&failed, INT_MAX, true);
        assert!(failed.contains("2147483648  FAILED\n"), "{failed}");
        assert!(failed.ends_with(
            "Raised 0 counters; 1 already above 2147483647; 1 too narrow to go above it (left alone: see headroom lint); 1 FAILED (see the errors).\n"
        ), "{failed}");

        let settled = &rows[1..];
        assert!(render(settled, INT_MAX, true).ends_with(
            "Nothing to change: 1 counter already above 2147483647; 1 too narrow to go above it (left alone: see headroom lint).\n"
        ));
    }

    fn any_step() -> impl Strategy<Value = Step> {
        // MariaDB and MySQL allow 1..=65535 for both.
        (1u64..=65_535, 1u64..=65_535).prop_map(|(increment, offset)| Step { increment, offset })
    }

    fn any_bound() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(INT_MAX),
            Just(INT_UNSIGNED_MAX),
            Just(u64::MAX),
            Just(0u64),
            any::<u64>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// The target is above the bound, in the server's series, and the least such value.
        #[test]
        fn the_target_is_the_least_value_above_the_bound_in_the_series(
            above in any_bound(), step in any_step()
        ) {
            let v = next_above(above, step);
            let increment = u128::from(step.increment);
            prop_assert!(v > u128::from(above));
            prop_assert_eq!(v % increment, u128::from(step.offset) % increment);
            prop_assert!(v >= u128::from(step.offset));
            // Least: one step lower is at or below the bound, or below the offset.
            let lower = v.checked_sub(increment);
            let least = lower.is_none_or(|w| w <= u128::from(above) || w < u128::from(step.offset));
            prop_assert!(least, "{} is not the least", v);
        }

        /// A counter is never lowered, a raised one is above the bound in its series and
        /// fits its type, and planning again from the new value changes nothing.
        #[test]
        fn a_plan_never_lowers_and_is_idempotent(
            current in prop_oneof![0i128..=10, any::<u64>().prop_map(i128::from)],
            above in any_bound(),
            step in any_step(),
            max in prop_oneof![Just(INT_MAX), Just(INT_UNSIGNED_MAX), Just(u64::MAX), any::<u64>()],
        ) {
            match plan(current, above, step, max) {
                Action::Raise { to } => {
                    prop_assert!(i128::try_from(to).is_ok_and(|to| to > current));
                    prop_assert!(to > u128::from(above) && to <= u128::from(max));
                    let increment = u128::from(step.increment);
                    prop_assert_eq!(to % increment, u128::from(step.offset) % increment);
                    let again = i128::try_from(to).unwrap_or(i128::MAX);
                    prop_assert_eq!(plan(again, above, step, max), Action::AlreadyAbove);
                }
                Action::AlreadyAbove => prop_assert!(current > i128::from(above)),
                Action::TooNarrow { needed } => {
                    prop_assert!(current <= i128::from(above));
                    prop_assert!(needed > u128::from(max));
                }
                Action::Failed { .. } => prop_assert!(false, "planned a failure"),
            }
        }
    }
}
