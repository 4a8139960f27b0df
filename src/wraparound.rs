//! Transaction-ID and MultiXact wraparound of a PostgreSQL shard's databases, judged as a
//! column is: each age against the 2^31 at which the server stops handing out IDs, by the
//! default ratio and time thresholds, with a forecast from the same growth engine (an age
//! that falls, after a VACUUM FREEZE, starts its history over: a reset, not growth). Pure:
//! the poller passes the ages read and the shard's tracker in.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::growth::Tracker;
use crate::headroom::{Headroom, Status};
use crate::inventory::DatabaseAges;
use crate::measure::Moment;
use crate::policy::Policy;

/// The age at which a server refuses new transaction IDs (and MultiXact IDs): 2^31.
pub const LIMIT: u64 = 1 << 31;

/// One age (transaction IDs or MultiXact IDs) of a database, judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Age {
    pub age: i64,
    /// `age / 2^31`.
    pub used_ratio: f64,
    pub status: Status,
    /// How fast the age grows, per second; `null` until two polls have seen it.
    pub growth_per_second: Option<f64>,
    /// Seconds until the age reaches 2^31 at that rate; `null` while it does not grow.
    pub seconds_to_wraparound: Option<u64>,
    pub wraps_at: Option<DateTime<Utc>>,
}

/// A database's wraparound, as `/api/shards` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseState {
    pub database: String,
    /// `age(datfrozenxid)`.
    pub xid: Age,
    /// `mxid_age(datminmxid)`.
    pub multixact: Age,
    /// The worse of the two.
    pub status: Status,
    /// Its tables with the oldest `relfrozenxid` (`schema.table`, age), oldest first: what
    /// a `VACUUM FREEZE` must reach first. Empty for a database the shard does not watch.
    pub oldest_tables: Vec<OldTable>,
}

/// A table holding its database's age back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OldTable {
    /// `schema.table` (for a TOAST table, the table it belongs to).
    pub table: String,
    pub xid_age: i64,
}

/// Judges `ages` at `at` by the policy's default thresholds, recording each age in
/// `tracker` (keyed `database` and `xid`/`multixact`; databases gone leave it).
pub fn assess(
    ages: &[DatabaseAges],
    tracker: &mut Tracker<(String, &'static str)>,
    policy: &Policy,
    at: Moment,
) -> Vec<DatabaseState> {
    let values = ages.iter().flat_map(|a| {
        [
            ((a.database.clone(), "xid"), i128::from(a.xid_age), LIMIT),
            (
                (a.database.clone(), "multixact"),
                i128::from(a.multixact_age),
                LIMIT,
            ),
        ]
    });
    let forecasts = tracker.round(at.instant, values);
    let mut forecasts = forecasts.into_iter().map(|(_, f)| f);
    ages.iter()
        .map(|a| {
            let mut judge = |age: i64| {
                let forecast = forecasts.next().unwrap_or(crate::growth::Forecast::NONE);
                let headroom = Headroom::new(i128::from(age), LIMIT);
                Age {
                    age,
                    used_ratio: headroom.used_ratio(),
                    status: policy.source_status(headroom, &forecast),
                    growth_per_second: forecast.growth_per_second,
                    seconds_to_wraparound: forecast.seconds_to_exhaustion,
                    wraps_at: crate::growth::exhausts_at(at.wall, forecast.seconds_to_exhaustion),
                }
            };
            let xid = judge(a.xid_age);
            let multixact = judge(a.multixact_age);
            DatabaseState {
                database: a.database.clone(),
                status: xid.status.max(multixact.status),
                xid,
                multixact,
                oldest_tables: a
                    .oldest_tables
                    .iter()
                    .map(|(table, xid_age)| OldTable {
                        table: table.clone(),
                        xid_age: *xid_age,
                    })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn moment(instant: tokio::time::Instant) -> Moment {
        Moment {
            instant,
            wall: Utc::now(),
        }
    }

    fn ages(xid: i64, multixact: i64) -> Vec<DatabaseAges> {
        vec![DatabaseAges {
            database: "app".to_string(),
            xid_age: xid,
            multixact_age: multixact,
            oldest_tables: vec![("public.big".to_string(), xid)],
        }]
    }

    #[tokio::test(start_paused = true)]
    async fn ages_are_judged_against_two_to_the_31_and_a_vacuum_is_a_reset() {
        let policy = Policy {
            default: crate::policy::Limits::default(),
            overrides: Vec::new(),
            silences: Vec::new(),
        };
        let mut tracker = Tracker::default();
        let start = tokio::time::Instant::now();
        let first = assess(
            &ages(1_000_000_000, 10),
            &mut tracker,
            &policy,
            moment(start),
        );
        assert_eq!(first[0].xid.age, 1_000_000_000);
        assert_eq!(first[0].status, Status::Ok);
        assert_eq!(first[0].oldest_tables[0].table, "public.big");
        assert!(first[0].xid.seconds_to_wraparound.is_none());

        tokio::time::advance(Duration::from_secs(600)).await;
        let later = tokio::time::Instant::now();
        let grown = assess(
            &ages(1_900_000_000, 10),
            &mut tracker,
            &policy,
            moment(later),
        );
        assert_eq!(grown[0].xid.status, Status::Critical, "{:?}", grown[0].xid);
        assert_eq!(grown[0].status, Status::Critical);
        let rate = grown[0].xid.growth_per_second.expect("a rate");
        assert!((rate - 1_500_000.0).abs() < 1.0, "{rate}");
        assert!(grown[0].xid.seconds_to_wraparound.is_some());
        assert_eq!(grown[0].multixact.status, Status::Ok);

        // VACUUM FREEZE: the age falls; the history starts over instead of a negative rate.
        tokio::time::advance(Duration::from_secs(600)).await;
        let vacuumed = assess(
            &ages(50_000_000, 10),
            &mut tracker,
            &policy,
            moment(tokio::time::Instant::now()),
        );
        assert_eq!(vacuumed[0].xid.status, Status::Ok);
        assert!(vacuumed[0].xid.growth_per_second.is_none_or(|g| g >= 0.0));
        assert!(vacuumed[0].xid.seconds_to_wraparound.is_none());
    }
}
