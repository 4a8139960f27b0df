//! What a page says: the event every notifier sends (PagerDuty renders it as Events API v2,
//! the webhook posts it as it is), built from a column, a source, a source whose servers can
//! hand out the same ID, or a blind shard. Summaries
//! are written for a person woken at 3 a.m. and stay under PagerDuty's 1024 characters.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::growth::humanize;
use crate::headroom::{Status, percent};
use crate::measure::ColumnReport;
use crate::policy::Severity;
use crate::state::{ShardState, SourceState};

/// PagerDuty's limit on `payload.summary`.
pub const SUMMARY_LIMIT: usize = 1024;
/// PagerDuty's limit on `dedup_key`.
pub const DEDUP_KEY_LIMIT: usize = 255;

/// What to do, in every column page.
const WHAT_TO_DO: &str = "Widen the column to BIGINT UNSIGNED with an online schema change \
(gh-ost or pt-online-schema-change), together with every column that stores the same IDs; \
expect the rebuild of a large table's indexes to take time and load. Silence the column \
with a [[silences]] entry in headroom's configuration while the migration runs.";

/// What to do, in the page of a clamped column.
const CLAMPED_WHAT_TO_DO: &str = "Turn strict mode on (add STRICT_TRANS_TABLES to sql_mode, \
globally and in my.cnf) so that inserts fail instead of storing the maximum, find the rows \
that hold the maximum, and widen the column as for an exhausted one.";

/// Open or close an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Trigger,
    Resolve,
}

impl Action {
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Trigger => "trigger",
            Action::Resolve => "resolve",
        }
    }
}

/// One event, as kept in the outbox and as the webhook posts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub action: Action,
    /// Stable across restarts and replicas: one incident per column, source or shard.
    pub dedup_key: String,
    pub severity: Severity,
    pub summary: String,
    /// The shard (or source) the condition is on.
    pub source: String,
    /// `schema.table.column`, the source name, or the shard name.
    pub component: String,
    /// The shard, or `sources`.
    pub group: String,
    /// `id_column`, `id_source` or `blind_shard`.
    pub class: String,
    pub custom_details: serde_json::Value,
    /// The condition in headroom's API.
    pub link: Option<String>,
    pub created_at: DateTime<Utc>,
    /// How bad, finer than `severity`: 1 warning, 2 critical, 3 exhausted. A rise
    /// re-triggers even where PagerDuty's severity stays `critical`.
    #[serde(default)]
    pub level: u8,
}

/// A subject that may need an incident: its key, how bad it is now, and how to write the
/// trigger (built only when one is sent: most subjects are fine at most polls).
pub struct Condition<'a> {
    pub dedup_key: String,
    /// `None`: all is well.
    pub severity: Option<Severity>,
    /// 1 warning, 2 critical, 3 exhausted.
    pub level: u8,
    /// A silence keeps it from triggering.
    pub silenced: bool,
    /// Nothing can be concluded now (its shard is down, its forecast not known yet):
    /// neither trigger nor count towards a resolve.
    pub hold: bool,
    /// The observation it reflects (its shard's poll count, its source's read count): an
    /// observation counts once towards a resolve, however often it is evaluated.
    pub seen: u64,
    /// Writes the trigger, at a moment.
    pub build: Box<dyn Fn(DateTime<Utc>) -> Event + 'a>,
}

/// A dedup key within PagerDuty's limit: long ones keep their start and end a stable hash.
pub fn dedup_key(parts: &[&str]) -> String {
    let mut key = String::with_capacity(8 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    key.push_str("headroom");
    for part in parts {
        key.push('/');
        key.push_str(part);
    }
    within_limit(key)
}

/// What every column key starts with, before its shard.
const COLUMN: &str = "headroom/column/";

/// `headroom/column/<shard>/`, the start of every column key of `shard` (see `column_key`):
/// a shard's column incidents are held, or handed over, by it.
pub fn column_prefix(shard: &str) -> String {
    prefix_with_room(shard, 0)
}

/// [`column_prefix`], with room for `more` bytes after it.
fn prefix_with_room(shard: &str, more: usize) -> String {
    let mut key = String::with_capacity(COLUMN.len() + shard.len() + 1 + more);
    key.push_str(COLUMN);
    key.push_str(shard);
    key.push('/');
    key
}

/// The dedup key of a column's incident, `headroom/column/<shard>/<schema.table.column>`
/// (`<database.schema.table.column>` on PostgreSQL, whose databases may hold the same
/// names), as [`dedup_key`] writes it, built in one allocation: every column's is made at
/// every evaluation.
pub fn column_key(c: &ColumnReport) -> String {
    let id = &c.id;
    let database = id.database();
    let mut key = prefix_with_room(
        &c.shard,
        database.map_or(0, |d| d.len() + 1)
            + id.schema.len()
            + id.table.len()
            + id.column.len()
            + 2,
    );
    if let Some(database) = database {
        key.push_str(database);
        key.push('.');
    }
    for part in [&*id.schema, ".", &id.table, "."] {
        key.push_str(part);
    }
    key.push_str(&id.column);
    within_limit(key)
}

/// `key` as it is, or cut to PagerDuty's limit with a stable hash of the whole at its end.
fn within_limit(key: String) -> String {
    if key.len() <= DEDUP_KEY_LIMIT {
        return key;
    }
    // FNV-1a: stable across versions, platforms and replicas.
    let hash = crate::hash::fnv1a(key.as_bytes());
    let mut cut = DEDUP_KEY_LIMIT - 17;
    while !key.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{hash:016x}", &key[..cut])
}

pub(super) fn truncate(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut cut = limit - 3;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

fn runs_out(seconds: Option<u64>, growth: Option<f64>) -> String {
    match (seconds, growth) {
        (Some(0), _) => "already out".to_string(),
        (Some(s), _) => format!("runs out in {}", humanize(s)),
        (None, None) => "growth not measured yet".to_string(),
        (None, Some(_)) => "not growing".to_string(),
    }
}

fn link(base: &str, params: &[(&str, &str)]) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{base}/api/columns?{query}")
}

/// The condition of a column of `shard` (a down shard's columns are last known values,
/// held).
/// Whether a column's condition can open or raise an incident: it is not ok.
pub fn may_trigger(c: &ColumnReport) -> bool {
    Severity::of(c.status).is_some()
}

pub fn column<'a>(c: &'a ColumnReport, shard: &ShardState, external_url: &'a str) -> Condition<'a> {
    let shard_up = shard.up;
    let severity = Severity::of(c.status);
    Condition {
        dedup_key: column_key(c),
        severity,
        level: c.status.number(),
        silenced: c.silenced.is_some(),
        // Ok by ratio with no forecast yet (just restarted): the time rule cannot tell.
        hold: !shard_up || (severity.is_none() && c.growth_per_second.is_none()),
        seen: shard.polls,
        build: Box::new(move |now| column_event(c, external_url, now)),
    }
}

fn column_event(c: &ColumnReport, external_url: &str, now: DateTime<Utc>) -> Event {
    let name = c.name();
    let ty = c.int_type.display_name();
    let summary = if c.clamped {
        format!(
            "{name} on {}: EXHAUSTED. It holds {}, the exact maximum of {ty}, on a shard without strict mode: larger IDs were probably clamped to it and stored wrong",
            c.shard, c.max
        )
    } else if c.status == Status::Exhausted {
        format!(
            "{name} on {}: EXHAUSTED. {ty} holds at most {}, and IDs up to {} are already handed out; inserts fail",
            c.shard, c.max, c.current
        )
    } else {
        format!(
            "{name} on {}: {} of {ty} used, {}",
            c.shard,
            percent(c.used_ratio),
            runs_out(c.seconds_to_exhaustion, c.growth_per_second)
        )
    };
    let summary = if c.type_mismatch {
        // An inferred parent is a guess from names: the page says so, and why.
        let origin = match (c.parent(), &c.evidence) {
            (Some(parent), Some(evidence)) => format!("inferred parent {parent}, {evidence}"),
            _ => format!("source {}", c.source.as_deref().unwrap_or("?")),
        };
        format!("{summary} (narrower than its {origin})")
    } else {
        summary
    };
    let details = json!({
        "shard": c.shard,
        "column": name,
        "column_type": c.column_type,
        "kind": c.kind,
        "source": c.source,
        "parent": c.parent(),
        "evidence": c.evidence,
        "current": c.current,
        "max": c.max,
        "remaining": c.remaining(),
        "used_ratio": c.used_ratio,
        "status": c.status,
        "type_mismatch": c.type_mismatch,
        "growth_per_second": c.growth_per_second,
        "seconds_to_exhaustion": c.seconds_to_exhaustion,
        "exhausts_at": c.exhausts_at(),
        "observed_at": c.observed_at,
        "clamped": c.clamped,
        "reason": c.reason(),
        "what_to_do": if c.clamped { CLAMPED_WHAT_TO_DO } else { WHAT_TO_DO },
        "plan_url": format!("{external_url}{}", c.plan_url()),
        "page_url": format!("{external_url}{}", c.page_url()),
    });
    let severity = Severity::of(c.status).unwrap_or(Severity::Warning);
    Event {
        action: Action::Trigger,
        dedup_key: column_key(c),
        severity,
        summary: truncate(summary, SUMMARY_LIMIT),
        source: c.shard.to_string(),
        component: name,
        group: c.shard.to_string(),
        class: "id_column".to_string(),
        custom_details: details,
        link: Some(link(
            external_url,
            &[
                ("shard", &c.shard),
                ("schema", &c.id.schema),
                ("table", &c.id.table),
                ("column", &c.id.column),
            ],
        )),
        created_at: now,
        level: c.status.number(),
    }
}

/// The condition of an ID source (one that has been read at least once).
pub fn source<'a>(s: &'a SourceState, external_url: &'a str) -> Condition<'a> {
    let status = s.status.unwrap_or(Status::Ok);
    Condition {
        dedup_key: dedup_key(&["source", &s.name]),
        severity: Severity::of(status),
        level: status.number(),
        silenced: false,
        hold: s.current.is_none() || (status == Status::Ok && s.growth_per_second.is_none()),
        seen: s.reads,
        build: Box::new(move |now| source_event(s, external_url, now)),
    }
}

fn source_event(s: &SourceState, external_url: &str, now: DateTime<Utc>) -> Event {
    let status = s.status.unwrap_or(Status::Ok);
    let ty = s.int_type.map(|t| t.display_name()).unwrap_or_default();
    let summary = match status {
        Status::Exhausted => format!(
            "ID source {}: EXHAUSTED, its {ty} counter is past its maximum",
            s.name
        ),
        _ => format!(
            "ID source {}: {} of {ty} handed out, {}",
            s.name,
            percent(s.used_ratio.unwrap_or(0.0)),
            runs_out(s.seconds_to_exhaustion, s.growth_per_second)
        ),
    };
    let details = json!({
        "source": s.name,
        "kind": s.kind,
        "current": s.current,
        "max": s.max,
        "remaining": s.remaining,
        "used_ratio": s.used_ratio,
        "growth_per_second": s.growth_per_second,
        "seconds_to_exhaustion": s.seconds_to_exhaustion,
        "exhausts_at": s.exhausts_at,
        "column_type": s.column_type,
        "what_to_do": "Every column that stores this source's IDs is at risk: widen the generator's column and plan a new ID scheme before it runs out.",
    });
    Event {
        action: Action::Trigger,
        dedup_key: dedup_key(&["source", &s.name]),
        severity: Severity::of(status).unwrap_or(Severity::Warning),
        summary: truncate(summary, SUMMARY_LIMIT),
        source: s.name.clone(),
        component: s.name.clone(),
        group: "sources".to_string(),
        class: "id_source".to_string(),
        custom_details: details,
        link: Some(format!("{external_url}/api/sources")),
        created_at: now,
        level: status.number(),
    }
}

/// The condition of a source whose servers may hand out the same ID (one with at least one
/// server read): critical while [`crate::sources::collision::risk`] says so, resolved once it
/// no longer does.
pub fn collision<'a>(s: &'a SourceState, external_url: &'a str) -> Condition<'a> {
    let risk = s.collision_risk;
    Condition {
        dedup_key: dedup_key(&["collision", &s.name]),
        severity: risk.then_some(Severity::Critical),
        level: if risk { 2 } else { 0 },
        silenced: false,
        hold: false,
        seen: s.reads,
        build: Box::new(move |now| collision_event(s, external_url, now)),
    }
}

fn collision_event(s: &SourceState, external_url: &str, now: DateTime<Utc>) -> Event {
    let reason = s.collision_reason.as_deref().unwrap_or("unknown");
    let summary = format!(
        "ID source {}: its servers can hand out the same ID. {reason}",
        s.name
    );
    let servers: Vec<serde_json::Value> = s
        .servers
        .iter()
        .map(|srv| {
            json!({
                "server": srv.server,
                "current": srv.current,
                "auto_increment_increment": srv.auto_increment_increment,
                "auto_increment_offset": srv.auto_increment_offset,
            })
        })
        .collect();
    Event {
        action: Action::Trigger,
        dedup_key: dedup_key(&["collision", &s.name]),
        severity: Severity::Critical,
        summary: truncate(summary, SUMMARY_LIMIT),
        source: s.name.clone(),
        component: s.name.clone(),
        group: "sources".to_string(),
        class: "id_collision".to_string(),
        custom_details: json!({
            "source": s.name,
            "collision_reason": s.collision_reason,
            "servers": servers,
            "what_to_do": "Stop handing out IDs from all but one server of the source, give every server auto_increment_increment >= the number of servers and its own auto_increment_offset (in my.cnf and with SET GLOBAL, then reconnect the applications), move each counter past every ID handed out, and look for duplicate IDs stored since the overlap began.",
        }),
        link: Some(format!("{external_url}/api/sources")),
        created_at: now,
        level: 2,
    }
}

/// The condition of a shard headroom cannot read: critical once it has been unreadable
/// for `blind_after` (counted from its last success, or from `started` if it has had none
/// since this process started); held while it is down but not yet for that long, so that a
/// restart neither resolves an open blind incident nor opens one early.
pub fn blind_shard<'a>(
    s: &'a ShardState,
    blind_after: std::time::Duration,
    started: DateTime<Utc>,
    external_url: &'a str,
    now: DateTime<Utc>,
) -> Condition<'a> {
    // A shard added by a reload is blind from then, not from the start.
    let since = s.last_success.unwrap_or(started.max(s.watched_since));
    let blind_for = (now - since).to_std().unwrap_or_default();
    let down = !s.up;
    let blind = s.polled && down && blind_for >= blind_after;
    Condition {
        dedup_key: dedup_key(&["blind", &s.name]),
        severity: blind.then_some(Severity::Critical),
        level: if blind { 2 } else { 0 },
        silenced: false,
        hold: down && !blind,
        seen: s.polls,
        build: Box::new(move |now| {
            let summary = format!(
                "headroom cannot read shard {} for {}: its ID columns are not watched. Last error: {}",
                s.name,
                humanize(blind_for.as_secs()).trim_start_matches('~'),
                s.last_error.as_deref().unwrap_or("none")
            );
            Event {
                action: Action::Trigger,
                dedup_key: dedup_key(&["blind", &s.name]),
                severity: Severity::Critical,
                summary: truncate(summary, SUMMARY_LIMIT),
                source: s.name.clone(),
                component: s.name.clone(),
                group: s.name.clone(),
                class: "blind_shard".to_string(),
                custom_details: json!({
                    "shard": s.name,
                    "url": s.url,
                    "last_success": s.last_success,
                    "last_error": s.last_error,
                    "what_to_do": "Check that the shard is up and that headroom's user can connect and SELECT; see /api/shards.",
                }),
                link: Some(format!("{external_url}/api/shards")),
                created_at: now,
                level: 2,
            }
        }),
    }
}

impl Event {
    /// The resolve that closes `dedup_key`.
    pub fn resolve(open: &Event, now: DateTime<Utc>) -> Event {
        Event {
            action: Action::Resolve,
            created_at: now,
            ..open.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_key_is_the_dedup_key_of_its_parts() {
        use crate::headroom::{IntType, Width};
        let long = "x".repeat(300);
        for (shard, database, schema, table, column) in [
            ("shard-01", None, "etsy", "activity_feed", "actor_id"),
            ("s", None, "we`ird", "t{table}", long.as_str()),
            // PostgreSQL: two databases of a server may hold the same names.
            ("pg", Some("app_eu"), "public", "orders", "id"),
            ("pg", Some("app \"us\""), "public", "orders", "id"),
        ] {
            let id = crate::inventory::ColumnId::in_database(
                database.map(Into::into),
                schema.to_string(),
                table.to_string(),
                column.to_string(),
            );
            let int = IntType::new(Width::Int, false);
            let c = crate::measure::fixture::column(shard, id.clone(), int, 1).build();
            let want = dedup_key(&["column", shard, &id.to_string()]);
            assert_eq!(column_key(&c), want);
            assert!(want.len() <= DEDUP_KEY_LIMIT);
        }
    }

    #[test]
    fn dedup_keys_are_stable_and_within_the_limit() {
        assert_eq!(
            dedup_key(&["column", "shard-03", "etsy.t.c"]),
            "headroom/column/shard-03/etsy.t.c"
        );
        let long = "x".repeat(400);
        let a = dedup_key(&["column", "s", &long]);
        assert_eq!(a.len(), DEDUP_KEY_LIMIT);
        assert_eq!(a, dedup_key(&["column", "s", &long]));
        assert_ne!(a, dedup_key(&["column", "t", &long]));
    }

    #[test]
    fn an_inferred_mismatch_names_its_parent_and_the_rule_in_the_summary() {
        use crate::headroom::{IntType, Width};
        let id = crate::inventory::ColumnId::new("gh", "stars", "repository_id");
        let int = IntType::new(Width::Int, false);
        let c = crate::measure::fixture::column("s", id, int, 2_147_483_700)
            .kind(crate::measure::Kind::Inferred)
            .source(Some("gh.repositories.id"))
            .type_mismatch(true)
            .evidence("rails: repository_id -> repositories.id")
            .build();
        let now = Utc::now();
        let event = column_event(&c, "http://h", now);
        assert!(
            event.summary.ends_with(
                "(narrower than its inferred parent gh.repositories.id, rails: repository_id -> repositories.id)"
            ),
            "{}",
            event.summary
        );
        assert_eq!(event.custom_details["kind"], "inferred");
        assert_eq!(event.custom_details["parent"], "gh.repositories.id");
    }

    #[test]
    fn a_column_page_links_to_the_columns_page_beside_its_json() {
        use crate::headroom::{IntType, Width};
        let id = crate::inventory::ColumnId::new("etsy", "t{x}", "actor id");
        let int = IntType::new(Width::Int, false);
        let c = crate::measure::fixture::column("shard-01", id, int, 2_147_000_000).build();
        let event = column_event(&c, "https://headroom.example", Utc::now());
        assert_eq!(
            event.custom_details["page_url"],
            "https://headroom.example/columns/shard-01/etsy/t%7Bx%7D/actor%20id"
        );
        assert_eq!(
            event.custom_details["plan_url"],
            "https://headroom.example/api/columns/shard-01/etsy/t%7Bx%7D/actor%20id"
        );
        let body =
            super::super::delivery::pagerduty_body(&event, "key", "https://headroom.example");
        let links: Vec<(&str, &str)> = body["links"]
            .as_array()
            .expect("links")
            .iter()
            .map(|l| {
                (
                    l["href"].as_str().unwrap_or(""),
                    l["text"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            links,
            [
                (
                    "https://headroom.example/api/columns?shard=shard-01&schema=etsy&table=t%7Bx%7D&column=actor+id",
                    "This condition in headroom"
                ),
                (
                    "https://headroom.example/api/columns/shard-01/etsy/t%7Bx%7D/actor%20id",
                    "The plan that widens this column"
                ),
                (
                    "https://headroom.example/columns/shard-01/etsy/t%7Bx%7D/actor%20id",
                    "This column's page"
                ),
            ]
        );
    }

    #[test]
    fn summaries_are_cut_at_the_limit() {
        let s = truncate("é".repeat(700), SUMMARY_LIMIT);
        assert!(s.len() <= SUMMARY_LIMIT && s.ends_with("..."));
    }
}
