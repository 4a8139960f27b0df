//! `GET /columns/{shard}/{schema}/{table}/{column}` (names percent-encoded, as `plan_url`):
//! one column. Its numbers (those of `/api/columns`), a chart of the history the daemon
//! holds with the forecast, why it is at risk (thresholds, type mismatch, the evidence of an
//! inferred parent, the shard's strict mode), its incident and silence, and its widening
//! plan with copy buttons. The plan comes from the plan endpoint's cache, within its
//! per-shard session budget; the page waits for it at most [`PLAN_WAIT`], then shows the
//! last plan computed for the column, of an earlier poll, with a note, or why the last
//! attempt failed, or says it is being computed and has the browser load the page again in
//! [`RELOAD_SECONDS`] (the computation goes on, and the next view shows it).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::chart::chart;
use super::format::{self, column_name, name, rfc3339, status, thousands, used_bar};
use super::layout::{self, Nav};
use crate::api::AppState;
use crate::api::plan_cache::{Failure, Shown};
use crate::growth::{Samples, humanize};
use crate::headroom::{Ppm, Status};
use crate::measure::{ColumnReport, Kind};
use crate::pager::event::Event;
use crate::plan::Planned;
use crate::policy::Limits;

/// How long a view waits for a plan being computed before it shows the rest: a column's
/// group is found in milliseconds, so this is mostly the shard's answer.
pub const PLAN_WAIT: Duration = Duration::from_millis(30);

/// After how long a page whose plan is being computed loads itself again.
pub const RELOAD_SECONDS: u32 = 2;

/// Where the plan stands.
#[derive(Debug, Clone)]
pub enum Plan {
    Ready(Arc<Planned>),
    /// Still being computed after [`PLAN_WAIT`]: the last plan computed for the column, of
    /// an earlier poll.
    Earlier(Arc<Planned>),
    /// Still being computed after [`PLAN_WAIT`], and none computed before.
    Pending,
    /// Why there is none now (a shard busy or unreadable).
    Failed(String),
}

/// Everything the page shows, gathered from the state; [`render`] is pure.
#[derive(Debug, Clone)]
pub struct View {
    pub column: ColumnReport,
    pub samples: Samples,
    /// The limits that decide its status.
    pub limits: Limits,
    /// Its shard's strict mode and `sql_mode`, as last read.
    pub strict_mode: Option<bool>,
    pub sql_mode: Option<String>,
    /// Its open incident per notifier; `None` without notifiers.
    pub incidents: Option<Vec<(&'static str, Event)>>,
    pub plan: Plan,
}

/// `GET /columns/{shard}/{schema}/{table}/{column}`.
pub async fn handler(
    State(state): State<AppState>,
    Path((shard, schema, table, column)): Path<(String, String, String, String)>,
    Query(at): Query<crate::api::InDatabase>,
) -> Response {
    let id = at.column(&schema, &table, &column);
    let twin = crate::measure::in_database(
        crate::measure::plan_path(&shard, &schema, &table, &column),
        id.database(),
    );
    let (column, samples) = match crate::api::history::column_and_samples(&state.store, &shard, &id)
    {
        Ok(found) => found,
        Err(message) => {
            return layout::problem(StatusCode::NOT_FOUND, Nav::Column, "/api/columns", &message);
        }
    };
    let (strict_mode, sql_mode) = {
        let snapshot = state.store.read();
        snapshot
            .shards
            .iter()
            .find(|s| s.name == shard)
            .map(|s| (s.strict_mode, s.sql_mode.clone()))
            .unwrap_or_default()
    };
    let settings = Arc::clone(&state.settings.read().unwrap_or_else(|e| e.into_inner()));
    let limits = settings.policy.limits(&schema, &table, &id.column);
    let incidents = state
        .pager
        .as_ref()
        .map(|pager| pager.incident(&crate::pager::event::column_key(&column)));
    let plan = match state.plans.show(&state.store, settings, &shard, &id).await {
        Shown::Now(Ok(planned)) => Plan::Ready(planned),
        Shown::Now(Err(Failure::NotFound(message))) => {
            return layout::problem(StatusCode::NOT_FOUND, Nav::Column, &twin, &message);
        }
        Shown::Now(Err(failure)) => Plan::Failed(failure.to_string()),
        Shown::Computing {
            earlier: Some(earlier),
            ..
        } => Plan::Earlier(earlier),
        // A shard that takes long to fail: said, rather than a reload after reload.
        Shown::Computing {
            failed: Some(failure),
            ..
        } => Plan::Failed(format!(
            "{failure} (at the last attempt; another is under way: reload in a moment)"
        )),
        Shown::Computing { .. } => Plan::Pending,
    };
    let view = View {
        column,
        samples,
        limits,
        strict_mode,
        sql_mode,
        incidents,
        plan,
    };
    layout::respond(StatusCode::OK, render(&view, Utc::now()))
}

/// The whole page, as of `now`.
pub fn render(view: &View, now: DateTime<Utc>) -> Markup {
    let c = &view.column;
    let twin = c.plan_url();
    let history = format!("{twin}/history");
    let title = format!(
        "{} · {}",
        crate::escape::escape(&c.shard),
        crate::escape::escape(&c.id.to_string())
    );
    let body = html! {
        h1 { (column_name(c)) " " (status(c.status)) }
        p.muted {
            "The same numbers as JSON: " a href=(twin) { "the column with its plan" }
            ", " a href=(history) { "its history" } "."
        }
        (facts(c, now))
        h2 { "History" }
        (chart(c, &view.samples))
        p.muted {
            (view.samples.points.len()) " samples held (the last 30 minutes as read, one an hour before, back a week)."
            @if let Some(j) = &view.samples.last_jump {
                " A step at " (format::date(j.at)) ", from " (thousands(i128::from(j.from)))
                " to " (thousands(i128::from(j.to))) ", is kept out of the growth rate."
            }
        }
        h2 { "Why" }
        (why(view))
        h2 { "Incident and silence" }
        (incident(view))
        h2 id="plan" { "Widening plan" }
        (plan(&view.plan, &c.page_url(), now))
    };
    match view.plan {
        Plan::Pending => layout::reloading(&title, Nav::Column, &twin, RELOAD_SECONDS, body),
        _ => layout::page(&title, Nav::Column, &twin, body),
    }
}

/// The column's numbers.
fn facts(c: &ColumnReport, now: DateTime<Utc>) -> Markup {
    html! {
        dl.facts {
            dt { "Type" } dd { (c.int_type.display_name()) " " span.muted { "(" (c.column_type) ")" } }
            dt { "Kind" } dd {
                (c.kind.as_str())
                @if let Some(parent) = c.parent() { ", parent " (name(parent)) }
                @else if let Some(source) = &c.source { ", from " (name(source)) }
            }
            dt { "Current" } dd data-current=(c.current) { (thousands(c.current)) }
            dt { "Maximum" } dd data-max=(c.max) { (thousands(i128::from(c.max))) }
            dt { "Remaining" } dd data-remaining=(c.remaining()) { (thousands(c.remaining())) }
            dt { "Used" } dd data-ratio=(c.used_ratio) { (used_bar(c.used_ratio, c.status)) }
            dt { "Growth" } dd data-growth=(c.growth_per_second.map(|g| g.to_string()).unwrap_or_default()) {
                (format::per_day(c.growth_per_second))
                @if let Some(g) = c.growth_per_second { span.muted { " (" (format!("{g:.3}")) " a second)" } }
            }
            dt { "Runs out" } dd data-exhausts-at=(c.exhausts_at().map(rfc3339).unwrap_or_default()) {
                (format::runs_out(c, now))
            }
            dt { "Read" } dd { (format::date(c.observed_at)) " " span.muted { "(" (format::relative(now, c.observed_at)) ")" } }
        }
    }
}

/// A ratio threshold as a percentage: `85%`, `99.5%`.
fn ppm(p: Ppm) -> String {
    let percent = f64::from(p.get()) / 10_000.0;
    format!("{}%", (percent * 10_000.0).round() / 10_000.0)
}

/// Why the column is (or is not) at risk.
fn why(view: &View) -> Markup {
    let c = &view.column;
    let l = &view.limits;
    let ratio = crate::headroom::percent(c.used_ratio);
    let within = |d: Duration| humanize(d.as_secs()).trim_start_matches('~').to_string();
    html! {
        ul.why {
            li {
                (ratio) " of its type used: "
                @if c.current > i128::from(c.max) {
                    "past its maximum, " (status(Status::Exhausted)) "."
                } @else {
                    (status(Status::Warning)) " from " (ppm(l.ratio.warning)) ", "
                    (status(Status::Critical)) " from " (ppm(l.ratio.critical)) "."
                }
            }
            li {
                @match c.seconds_to_exhaustion {
                    Some(s) => { "Runs out in " (humanize(s)) " at its growth rate: " }
                    None => { "Not running out at its growth rate (" (if c.growth_per_second.is_none() { "not measured yet" } else { "not growing" }) "): " }
                }
                (status(Status::Warning)) " within " (within(l.warning_within)) ", "
                (status(Status::Critical)) " within " (within(l.critical_within)) "."
            }
            @if c.type_mismatch {
                li {
                    span.st.st-warning { "Narrower than what feeds it" } ": "
                    @match (c.parent(), &c.source) {
                        (Some(parent), _) => { "its parent " (name(parent)) }
                        (None, Some(source)) => { (name(source)) }
                        (None, None) => { "its source" }
                    }
                    @if let Some(m) = c.feeder_max() { " holds up to " (thousands(i128::from(m))) }
                    ", and this column only up to " (thousands(i128::from(c.max))) "."
                }
            }
            @if c.kind == Kind::Inferred {
                li {
                    "Its parent is inferred from names, not declared: "
                    @if let Some(evidence) = &c.evidence { (name(evidence)) } @else { "no rule recorded" } "."
                }
            }
            li {
                @match view.strict_mode {
                    _ if view.column.id.database().is_some() => { "PostgreSQL refuses a value past the maximum: strict mode does not apply." }
                    Some(true) => { "Its shard is in strict mode: a value past the maximum is refused, not stored." }
                    Some(false) => {
                        span.st.st-critical { "Its shard is not in strict mode" }
                        " (sql_mode " (view.sql_mode.as_deref().unwrap_or("")) "): a value past the maximum is stored as the maximum, silently."
                    }
                    None => { "Its shard's strict mode is not known yet." }
                }
            }
            @if c.clamped {
                li { (status(Status::Exhausted)) ": " (crate::policy::CLAMPED_REASON) "." }
            }
            @if let Some(j) = &c.last_jump {
                li { "A step from " (thousands(i128::from(j.from))) " to " (thousands(i128::from(j.to))) " at " (format::date(j.at)) " is not counted as growth." }
            }
        }
    }
}

/// The column's open incidents and its silence.
fn incident(view: &View) -> Markup {
    let c = &view.column;
    html! {
        @match &view.incidents {
            None => { p.muted { "No notifier is configured: nothing pages." } }
            Some(open) if open.is_empty() => { p { "No open incident." } }
            Some(open) => {
                ul {
                    @for (notifier, e) in open {
                        li {
                            (notifier) ": " strong { (e.severity.as_str()) } ", since " (format::date(e.created_at))
                            br; span.muted { (e.summary) }
                        }
                    }
                }
                p { a href="/incidents" { "Every incident" } }
            }
        }
        @match &c.silenced {
            Some(s) => { p { "Silenced until " (format::date(s.until)) ": " (s.reason) " (measured and shown, not paged)." } }
            None => { p.muted { "Not silenced." } }
        }
    }
}

/// Text that runs as is (a statement, a command) shown with a copy button: shown with
/// control and bidi characters as visible escapes, copied exactly, from a hidden twin, when
/// it holds any.
fn copyable(id: &str, text: &str) -> Markup {
    let shown = format::lines(text);
    html! {
        button.copy type="button" data-copy=(id) hidden { "Copy" }
        @if shown == text {
            pre id=(id) { (text) }
        } @else {
            pre { (shown) }
            pre id=(id) hidden { (text) }
            p.muted { "A name in it holds control or bidi characters: shown escaped above, copied exactly." }
        }
    }
}

/// The widening plan on the page at `page`, as of `now`.
fn plan(plan: &Plan, page: &str, now: DateTime<Utc>) -> Markup {
    let planned = match plan {
        Plan::Pending => {
            return html! { p.muted { "The plan is being computed (its shard's definitions are read once per poll): this page loads again in " (RELOAD_SECONDS) " seconds." } };
        }
        Plan::Failed(why) => return html! { p.problem { "No plan now: " (why) } },
        Plan::Ready(planned) => planned,
        Plan::Earlier(planned) => {
            let at = planned.column.observed_at;
            return html! {
                p.note {
                    "This plan is of an earlier poll, of " (format::date(at)) " (" (format::relative(now, at)) "): the plan of the latest poll is being computed, "
                    a href=(format!("{page}#plan")) { "reload" } " in a moment to see it."
                }
                (written(planned))
            };
        }
    };
    written(planned)
}

/// A plan written out: what widens, the statements and the commands.
fn written(planned: &Planned) -> Markup {
    let p = &planned.plan;
    if p.changes.is_empty() {
        return html! { p { "No widening needed: " (p.target_type) " holds it." } };
    }
    let statements: String = {
        // A PostgreSQL statement runs in its column's database, named in its header
        // (escaped: a name read from a server cannot end the comment).
        let database_of: std::collections::HashMap<(&str, &str), &str> = p
            .postgres
            .iter()
            .flat_map(|pg| {
                pg.statements
                    .iter()
                    .map(move |st| ((pg.shard.as_str(), st.as_str()), pg.database.as_str()))
            })
            .collect();
        let mut out = String::new();
        let mut at: (&str, Option<&str>) = ("", None);
        for step in &p.steps {
            let here = (
                step.shard.as_str(),
                database_of
                    .get(&(step.shard.as_str(), step.statement.as_str()))
                    .copied(),
            );
            if here != at || out.is_empty() {
                at = here;
                match here.1 {
                    Some(db) => out.push_str(&format!(
                        "-- on shard {}, in database {}\n",
                        here.0,
                        crate::escape::escape(db)
                    )),
                    None => out.push_str(&format!("-- on shard {}\n", here.0)),
                }
            }
            out.push_str(&step.statement);
            out.push('\n');
        }
        out
    };
    html! {
        p { "Widen to " strong { (p.target_type) } ": " (p.reason) }
        div.scroll {
            table {
                thead { tr { th { "Column" } th { "From" } th { "To" } th.num { "Rows" } th.num { "Data and indexes" } th { "Rebuild" } th { "Note" } } }
                tbody {
                    @for ch in &p.changes {
                        tr {
                            td.name { (name(&ch.shard)) " · " (name(&ch.schema)) "." (name(&ch.table)) "." (name(&ch.column)) }
                            td { (ch.from_type) }
                            td { (ch.to_type) }
                            td.num { @if let Some(t) = &ch.table_size { (thousands(i128::from(t.rows))) } }
                            td.num { @if let Some(t) = &ch.table_size { (format::bytes(t.bytes())) } }
                            td { @if let Some(s) = ch.rebuild_seconds_estimate { (humanize(s)) } @else if !ch.rebuilds { "none" } }
                            td { @if let Some(n) = &ch.note { (n) } }
                        }
                    }
                }
            }
        }
        @if !p.steps.is_empty() {
            h2 { "Statements, in order" }
            (copyable("plan-statements", &statements))
        }
        @for (i, ch) in p.changes.iter().enumerate() {
            @if let Some(cmd) = &ch.gh_ost {
                h2 { "gh-ost: " (name(&ch.shard)) " · " (name(&ch.table)) }
                (copyable(&format!("plan-gh-ost-{i}"), cmd))
            }
            @if let Some(cmd) = &ch.pt_online_schema_change {
                h2 { "pt-online-schema-change: " (name(&ch.shard)) " · " (name(&ch.table)) }
                (copyable(&format!("plan-pt-osc-{i}"), cmd))
            }
        }
        @for (i, pg) in p.postgres.iter().enumerate() {
            @if !pg.online_steps.is_empty() {
                h2 { "Online, in database " (name(&pg.database)) ": " (name(&pg.table)) "." (name(&pg.column)) }
                p.muted { "Instead of the statement's rewrite under an ACCESS EXCLUSIVE lock: a new column kept in step by a trigger, filled in batches, and swapped in one short transaction. Run each step in order, in autocommit mode." }
                (copyable(&format!("plan-online-{i}"), &pg.online_steps.join("\n\n")))
            } @else if let Some(note) = &pg.online_note {
                p.muted { "No online steps for " (name(&pg.table)) "." (name(&pg.column)) ": " (note) }
            }
        }
        @if !p.foreign_keys.is_empty() {
            @if p.postgres.is_empty() {
                p.muted { (p.foreign_keys.len()) " foreign keys hold a widened column: the statements drop them first and add them again after." }
            } @else {
                p.muted { (p.foreign_keys.len()) " foreign keys hold a widened column: PostgreSQL keeps them, and checks them again after the change." }
            }
        }
    }
}
