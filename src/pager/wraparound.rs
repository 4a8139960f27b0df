//! The conditions of a PostgreSQL shard's databases: transaction-ID and MultiXact
//! wraparound, each age its own incident (`headroom/wraparound/<shard>/<database>/xid` and
//! `…/multixact`), judged by its status (see [`crate::wraparound`]); the page names the
//! tables a `VACUUM FREEZE` must reach first.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::event::{Action, Condition, Event, SUMMARY_LIMIT, dedup_key, truncate};
use crate::growth::humanize;
use crate::headroom::{Status, percent};
use crate::policy::Severity;
use crate::state::ShardState;
use crate::wraparound::{Age, DatabaseState, LIMIT};

/// `headroom/wraparound/<shard>/`: the start of every wraparound key of `shard`, held
/// while the shard is down.
pub fn prefix(shard: &str) -> String {
    let mut key = dedup_key(&["wraparound", shard]);
    key.push('/');
    key
}

/// Which age.
#[derive(Debug, Clone, Copy)]
enum Which {
    Xid,
    Multixact,
}

impl Which {
    fn key(self) -> &'static str {
        match self {
            Which::Xid => "xid",
            Which::Multixact => "multixact",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Which::Xid => "transaction ID",
            Which::Multixact => "MultiXact ID",
        }
    }
}

/// The two conditions of each database of `shard` (none on MySQL).
pub fn conditions<'a>(shard: &'a ShardState, external_url: &'a str) -> Vec<Condition<'a>> {
    let mut out = Vec::new();
    for d in shard.databases.iter().flatten() {
        for (which, age) in [(Which::Xid, &d.xid), (Which::Multixact, &d.multixact)] {
            out.push(condition(shard, d, which, age, external_url));
        }
    }
    out
}

fn condition<'a>(
    shard: &'a ShardState,
    d: &'a DatabaseState,
    which: Which,
    age: &'a Age,
    external_url: &'a str,
) -> Condition<'a> {
    Condition {
        dedup_key: dedup_key(&["wraparound", &shard.name, &d.database, which.key()]),
        severity: Severity::of(age.status),
        level: age.status.number(),
        silenced: false,
        hold: !shard.up,
        seen: shard.polls,
        build: Box::new(move |now| event(shard, d, which, age, external_url, now)),
    }
}

fn event(
    shard: &ShardState,
    d: &DatabaseState,
    which: Which,
    age: &Age,
    external_url: &str,
    now: DateTime<Utc>,
) -> Event {
    let when = match (age.seconds_to_wraparound, age.growth_per_second) {
        (Some(s), _) => format!("wraps around in {}", humanize(s)),
        (None, None) => "growth not measured yet".to_string(),
        (None, Some(_)) => "not growing".to_string(),
    };
    let tables: Vec<&str> = d.oldest_tables.iter().map(|t| t.table.as_str()).collect();
    let summary = format!(
        "{} wraparound on {} database {}: age {} of 2^31 ({}), {when}; VACUUM FREEZE first: {}",
        which.words(),
        shard.name,
        d.database,
        age.age,
        percent(age.used_ratio),
        if tables.is_empty() {
            "the database's oldest tables".to_string()
        } else {
            tables.join(", ")
        }
    );
    let severity = Severity::of(age.status).unwrap_or(Severity::Warning);
    Event {
        action: Action::Trigger,
        dedup_key: dedup_key(&["wraparound", &shard.name, &d.database, which.key()]),
        severity,
        summary: truncate(summary, SUMMARY_LIMIT),
        source: shard.name.clone(),
        component: d.database.clone(),
        group: shard.name.clone(),
        class: "wraparound".to_string(),
        custom_details: json!({
            "shard": shard.name,
            "database": d.database,
            "age": which.key(),
            "current": age.age,
            "max": LIMIT,
            "used_ratio": age.used_ratio,
            "growth_per_second": age.growth_per_second,
            "seconds_to_wraparound": age.seconds_to_wraparound,
            "wraps_at": age.wraps_at,
            "oldest_tables": d.oldest_tables,
            "what_to_do": "Run VACUUM (FREEZE, VERBOSE) on the oldest tables named here, oldest first, in this database; look for what holds the horizon back (long transactions, prepared transactions, replication slots). See docs/runbooks/wraparound.md.",
        }),
        link: Some(format!("{external_url}/api/shards")),
        created_at: now,
        level: if age.status == Status::Ok {
            0
        } else {
            age.status.number()
        },
    }
}
