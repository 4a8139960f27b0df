//! `GET /`: the fleet at a glance. First what matters (columns by status, the soonest
//! exhaustion, shards up and down, sources, open incidents, the age of the latest poll),
//! then the columns at risk, soonest first, filtered by the query parameters of
//! `/api/columns` (same names, same meanings; an empty one means any, so that the form works
//! without JavaScript) and paged at 100 rows. Read from the store's latest state: a view
//! never queries a database.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::format::{self, column_name, name, rfc3339, runs_out, status, thousands, used_bar};
use super::layout::{self, Nav};
use crate::api::AppState;
use crate::escape::escape;
use crate::headroom::Status;
use crate::measure::{ColumnReport, Kind};
use crate::pager::IncidentCounts;
use crate::select::{ColumnQuery, Sort, select};
use crate::state::Snapshot;

/// Rows a page shows unless `limit` says otherwise.
pub const PAGE_ROWS: usize = 100;
/// The most rows a page shows (`limit` above it is refused): a page stays light.
pub const MAX_ROWS: usize = 1000;
/// `status=` of the link that shows every column.
const EVERY_STATUS: &str = "ok,warning,critical,exhausted";

/// The filters of a view, and the parameters as given (for the form and the links).
#[derive(Debug, Clone)]
pub struct Filters {
    pub query: ColumnQuery,
    /// The non-empty parameters, in order.
    pub given: Vec<(String, String)>,
}

impl Filters {
    /// The filters of `raw`, read as `/api/columns` reads them ([`crate::api::columns::parse`]),
    /// empty values dropped; without `status`, the columns at risk; without `sort`, soonest
    /// exhaustion first; without `limit`, [`PAGE_ROWS`].
    pub fn parse(raw: &str) -> Result<Filters, String> {
        let given: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let has = |key: &str| given.iter().any(|(k, _)| k == key);
        let mut query = crate::api::columns::parse(&encode(&given))?;
        query.at_risk = !has("status");
        if !has("sort") {
            query.sort = Sort::Exhaustion;
        }
        match query.limit {
            None => query.limit = Some(PAGE_ROWS),
            Some(n) if n > MAX_ROWS => {
                return Err(format!(
                    "limit: {n} rows is more than a page shows (at most {MAX_ROWS})"
                ));
            }
            Some(_) => {}
        }
        Ok(Filters { query, given })
    }

    /// The value of `key`, as given.
    fn get(&self, key: &str) -> Option<&str> {
        self.given
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// This view's parameters with `offset` set to `offset` (dropped at 0).
    fn at_offset(&self, offset: usize) -> String {
        let mut pairs: Vec<(String, String)> = self
            .given
            .iter()
            .filter(|(k, _)| k != "offset")
            .cloned()
            .collect();
        if offset > 0 {
            pairs.push(("offset".to_string(), offset.to_string()));
        }
        query_string(&pairs)
    }
}

/// `a=b&c=d`, form-encoded.
fn encode(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `?a=b&c=d`, or nothing when there are no pairs.
fn query_string(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", encode(pairs))
    }
}

/// `GET /`.
pub async fn handler(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let filters = match Filters::parse(raw.as_deref().unwrap_or("")) {
        Ok(f) => f,
        Err(message) => {
            return layout::problem(
                StatusCode::BAD_REQUEST,
                Nav::Fleet,
                "/api/columns",
                &message,
            );
        }
    };
    let incidents = state.pager.as_ref().map(|p| p.incident_counts());
    let markup = render(
        &state.store.read(),
        incidents.as_deref(),
        &filters,
        Utc::now(),
    );
    layout::respond(StatusCode::OK, markup)
}

/// What the header counts.
struct Summary<'a> {
    /// Columns per status, in [`Status::ALL`]'s order.
    by_status: [usize; 4],
    mismatched: usize,
    total: usize,
    /// The column that runs out first, and when.
    soonest: Option<(&'a ColumnReport, DateTime<Utc>)>,
    shards_up: usize,
    shards_down: usize,
    shards_waiting: usize,
    latest_poll: Option<DateTime<Utc>>,
}

fn summarize(snapshot: &Snapshot) -> Summary<'_> {
    let mut s = Summary {
        by_status: [0; 4],
        mismatched: 0,
        total: 0,
        soonest: None,
        shards_up: 0,
        shards_down: 0,
        shards_waiting: 0,
        latest_poll: None,
    };
    for shard in &snapshot.shards {
        match (shard.polled, shard.up) {
            (false, _) => s.shards_waiting += 1,
            (true, true) => s.shards_up += 1,
            (true, false) => s.shards_down += 1,
        }
        s.latest_poll = s.latest_poll.max(shard.last_poll);
        for c in shard.columns.iter() {
            s.total += 1;
            s.by_status[c.status.number() as usize] += 1;
            s.mismatched += usize::from(c.type_mismatch);
            if let Some(at) = c.exhausts_at()
                && s.soonest.is_none_or(|(_, soonest)| at < soonest)
            {
                s.soonest = Some((c, at));
            }
        }
    }
    s
}

/// The whole page, as of `now`. Pure: the tests call it with a snapshot built by hand.
pub fn render(
    snapshot: &Snapshot,
    incidents: Option<&[IncidentCounts]>,
    filters: &Filters,
    now: DateTime<Utc>,
) -> Markup {
    let summary = summarize(snapshot);
    let (picks, total) = select(snapshot, &filters.query);
    let offset = filters.query.offset;
    let limit = filters.query.limit.unwrap_or(PAGE_ROWS);
    let heading = if filters.query.at_risk {
        "Columns at risk"
    } else {
        "Columns"
    };
    let body = html! {
        h1 { "The fleet" }
        (header(snapshot, &summary, incidents, now))
        (form(snapshot, filters))
        h2 id="columns" {
            (heading) " "
            span.muted { (thousands(total as i128)) }
        }
        @if picks.is_empty() {
            p.muted {
                @if summary.total == 0 {
                    "No column measured yet: the shards have not been polled, or hold no ID column."
                } @else if filters.query.at_risk && filters.given.is_empty() {
                    "No column at risk: every column is ok and as wide as what feeds it."
                } @else {
                    "No column matches these filters."
                }
            }
        } @else {
            div.scroll {
                table.columns {
                    thead { tr {
                        th { "Column" } th { "Type" } th { "Kind" } th { "Used" }
                        th.num { "Growth" } th { "Runs out" } th { "Status" } th { "Silence" }
                    } }
                    tbody {
                        @for p in &picks { (row(p.column, now)) }
                    }
                }
            }
        }
        nav.pages {
            @if total > 0 {
                span.muted {
                    (thousands((offset.min(total) + 1) as i128)) "–"
                    (thousands((offset + picks.len()) as i128)) " of " (thousands(total as i128))
                }
            }
            @if offset > 0 {
                a href={ "/" (filters.at_offset(offset.saturating_sub(limit))) } rel="prev" { "← previous" }
            }
            @if offset + picks.len() < total {
                a href={ "/" (filters.at_offset(offset + limit)) } rel="next" { "next →" }
            }
            @if filters.query.at_risk {
                a href={ "/?status=" (EVERY_STATUS) } { "show every column" }
            } @else {
                a href="/" { "show the columns at risk" }
            }
        }
    };
    layout::page("Fleet", Nav::Fleet, &twin_link(filters), body)
}

/// `/api/columns` with this view's parameters.
fn twin_link(filters: &Filters) -> String {
    let mut pairs = filters.given.clone();
    if filters.get("sort").is_none() {
        pairs.push(("sort".to_string(), "exhaustion".to_string()));
    }
    if filters.get("limit").is_none() {
        pairs.push(("limit".to_string(), PAGE_ROWS.to_string()));
    }
    format!("/api/columns{}", query_string(&pairs))
}

/// The cards: what matters first.
fn header(
    snapshot: &Snapshot,
    s: &Summary<'_>,
    incidents: Option<&[IncidentCounts]>,
    now: DateTime<Utc>,
) -> Markup {
    let sources_at_risk = snapshot
        .sources
        .iter()
        .filter(|src| src.status.is_some_and(|st| st != Status::Ok) || src.collision_risk)
        .count();
    html! {
        section.cards {
            div.card {
                h2 { "Columns" }
                div.big { (thousands(s.total as i128)) }
                @for st in Status::ALL.iter().rev() {
                    @let n = s.by_status[st.number() as usize];
                    @if n > 0 || *st != Status::Ok {
                        a.count href={ "/?status=" (st.as_str()) } { (thousands(n as i128)) " " (status(*st)) }
                    }
                }
                @if s.mismatched > 0 {
                    br;
                    (thousands(s.mismatched as i128)) " narrower than what feeds them"
                }
            }
            div.card {
                h2 { "Soonest exhaustion" }
                @match s.soonest {
                    Some((c, at)) => {
                        div.big { (format::relative(now, at)) }
                        a.name href=(c.page_url()) { (column_name(c)) }
                        br;
                        (format::date(at))
                    }
                    None => { div.big { "—" } span.muted { "no column is growing toward its maximum" } }
                }
            }
            div.card {
                h2 { "Shards" }
                div.big { (s.shards_up) " up" }
                @if s.shards_down > 0 { a href="/shards" { span.st.st-critical { (s.shards_down) " down" } } " " }
                @if s.shards_waiting > 0 { span.muted { (s.shards_waiting) " not polled yet" } }
                @if s.shards_down == 0 && s.shards_waiting == 0 { span.muted { "all of " (snapshot.shards.len()) } }
            }
            div.card {
                h2 { "Sources" }
                div.big { (snapshot.sources.len()) }
                @if sources_at_risk > 0 { a href="/sources" { span.st.st-warning { (sources_at_risk) " at risk" } } }
                @else if snapshot.sources.is_empty() { span.muted { "none configured" } }
                @else { span.muted { "none at risk" } }
            }
            div.card {
                h2 { "Open incidents" }
                @match incidents {
                    Some(notifiers) => {
                        @let open: usize = notifiers.iter().map(|n| n.open).sum();
                        @let undelivered: usize = notifiers.iter().map(|n| n.undelivered).sum();
                        div.big { a href="/incidents" { (open) } }
                        @if undelivered > 0 { span.st.st-critical { (undelivered) " undelivered" } }
                        @else { span.muted { "all delivered" } }
                    }
                    None => { div.big { "—" } span.muted { "no notifier configured" } }
                }
            }
            div.card {
                h2 { "Latest poll" }
                @match s.latest_poll {
                    Some(at) => { div.big { (format::relative(now, at)) } (format::date(at)) }
                    None => { div.big { "—" } span.muted { "no shard polled yet" } }
                }
            }
        }
    }
}

/// The filters, as a form that works without JavaScript (empty fields mean any).
fn form(snapshot: &Snapshot, filters: &Filters) -> Markup {
    let value = |key: &str| filters.get(key).unwrap_or("").to_string();
    let statuses: [(&str, &str); 7] = [
        ("", "at risk"),
        ("warning", "warning"),
        ("critical", "critical"),
        ("exhausted", "exhausted"),
        ("critical,exhausted", "critical or exhausted"),
        ("ok", "ok"),
        (EVERY_STATUS, "any (every column)"),
    ];
    let sorts = [
        ("exhaustion", "soonest exhaustion"),
        ("ratio", "most used"),
        ("name", "name"),
    ];
    let sort = filters.get("sort").unwrap_or("exhaustion");
    let kind = value("kind");
    let status_now = value("status");
    html! {
        form.filters method="get" action="/" {
            label { "shard" input name="shard" list="shard-names" value=(value("shard")); }
            datalist id="shard-names" {
                @for s in &snapshot.shards { option value=(s.name) {} }
            }
            label { "schema" input name="schema" value=(value("schema")); }
            label { "table" input name="table" value=(value("table")); }
            label { "column" input name="column" value=(value("column")); }
            label { "kind" select name="kind" {
                option value="" selected[kind.is_empty()] { "any" }
                @for k in Kind::ALL {
                    option value=(k.as_str()) selected[kind == k.as_str()] { (k.as_str()) }
                }
                @if !kind.is_empty() && !Kind::ALL.iter().any(|k| k.as_str() == kind) {
                    option value=(kind) selected { (kind) }
                }
            } }
            label { "status" select name="status" {
                @for (v, text) in statuses {
                    option value=(v) selected[status_now == v] { (text) }
                }
                @if !statuses.iter().any(|(v, _)| *v == status_now) {
                    option value=(status_now) selected { (status_now) }
                }
            } }
            label { "used at least" input.short name="min_ratio" type="number" min="0" max="1" step="0.01" placeholder="0.85" value=(value("min_ratio")); }
            label { "order" select name="sort" {
                @for (v, text) in sorts { option value=(v) selected[sort == v] { (text) } }
            } }
            @if let Some(limit) = filters.get("limit") { input type="hidden" name="limit" value=(limit); }
            button type="submit" { "Show" }
            a href="/" { "reset" }
        }
    }
}

/// One column's row.
fn row(c: &ColumnReport, now: DateTime<Utc>) -> Markup {
    html! {
        // The names as shown (control and bidi characters as visible escapes), so that an
        // attribute carries nothing the text would not.
        tr data-shard=(escape(&c.shard)) data-schema=(escape(&c.id.schema)) data-table=(escape(&c.id.table)) data-column=(escape(&c.id.column)) {
            td.name { a href=(c.page_url()) { (column_name(c)) } }
            td title=(c.column_type) { (c.int_type.display_name()) }
            td {
                (c.kind.as_str())
                @if let Some(parent) = c.parent() {
                    br; span.muted { "parent " (name(parent)) }
                } @else if let Some(source) = &c.source {
                    br; span.muted { "from " (name(source)) }
                }
            }
            td data-current=(c.current) data-max=(c.max) data-ratio=(c.used_ratio) { (used_bar(c.used_ratio, c.status)) }
            td.num data-growth=(c.growth_per_second.map(|g| g.to_string()).unwrap_or_default()) { (format::per_day(c.growth_per_second)) }
            td data-exhausts-at=(c.exhausts_at().map(rfc3339).unwrap_or_default()) { (runs_out(c, now)) }
            td {
                (status(c.status))
                @if c.type_mismatch { span.flag title="narrower than what feeds it" { "mismatch" } }
                @if c.clamped { span.flag title=(crate::policy::CLAMPED_REASON) { "clamped" } }
            }
            td {
                @if let Some(s) = &c.silenced {
                    "until " (format::date(s.until)) br; span.muted { (s.reason) }
                }
            }
        }
    }
}
