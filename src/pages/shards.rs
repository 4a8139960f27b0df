//! `GET /shards`: every shard's health, as `/api/shards` has it: up or down, the last error
//! in headroom's words (never the server's), the last and next poll, strict mode, the
//! ambiguous inferences and the columns that could not be measured; and each PostgreSQL
//! database's transaction-ID and MultiXact wraparound, with the tables to freeze first.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::format::{self, name, status, thousands};
use super::layout::{self, Nav};
use crate::api::AppState;
use crate::state::{ShardState, Snapshot};

/// `GET /shards`.
pub async fn handler(State(state): State<AppState>) -> Response {
    let markup = render(&state.store.read(), Utc::now());
    layout::respond(StatusCode::OK, markup)
}

/// The whole page, as of `now`.
pub fn render(snapshot: &Snapshot, now: DateTime<Utc>) -> Markup {
    let down = snapshot.shards.iter().filter(|s| s.polled && !s.up).count();
    let waiting = snapshot.shards.iter().filter(|s| !s.polled).count();
    let lax = snapshot
        .shards
        .iter()
        .filter(|s| s.strict_mode == Some(false))
        .count();
    let body = html! {
        h1 { "Shards" }
        p {
            (snapshot.shards.len()) " shards: "
            (snapshot.shards.len() - down - waiting) " up"
            @if down > 0 { ", " span.st.st-critical { (down) " down" } }
            @if waiting > 0 { ", " (waiting) " not polled yet" }
            @if lax > 0 { ", " span.st.st-warning { (lax) " without strict mode" } }
            "."
        }
        @if snapshot.shards.is_empty() {
            p.muted { "No shard is configured." }
        } @else {
            div.scroll {
                table {
                    thead { tr {
                        th { "Shard" } th { "State" } th { "Last poll" } th { "Next poll" }
                        th.num { "Columns" } th { "Strict mode" } th { "Ambiguous" } th { "Not measured" }
                    } }
                    tbody { @for s in &snapshot.shards { (row(s, now)) } }
                }
            }
            @if snapshot.shards.iter().any(|s| s.databases.is_some()) {
                h2 { "PostgreSQL wraparound" }
                p.muted { "Each database's age(datfrozenxid) and mxid_age(datminmxid) against 2^31, where the server stops accepting writes; VACUUM FREEZE the oldest tables first." }
                div.scroll {
                    table {
                        thead { tr {
                            th { "Shard" } th { "Database" } th { "Transaction IDs" } th { "MultiXact IDs" }
                            th { "Status" } th { "Wraps around" } th { "Oldest tables" }
                        } }
                        tbody { @for s in &snapshot.shards { @for d in s.databases.iter().flatten() {
                            (database_row(s, d, now))
                        } } }
                    }
                }
            }
        }
    };
    layout::page("Shards", Nav::Shards, "/api/shards", body)
}

fn database_row(
    s: &ShardState,
    d: &crate::wraparound::DatabaseState,
    now: DateTime<Utc>,
) -> Markup {
    let age = |a: &crate::wraparound::Age| {
        html! { (thousands(i128::from(a.age))) " " span.muted { "(" (crate::headroom::percent(a.used_ratio)) ")" } }
    };
    let soonest = [&d.xid, &d.multixact]
        .into_iter()
        .filter_map(|a| a.wraps_at)
        .min();
    html! {
        tr {
            td { (name(&s.name)) }
            td { (name(&d.database)) }
            td.num { (age(&d.xid)) }
            td.num { (age(&d.multixact)) }
            td { (status(d.status)) }
            td { @match soonest {
                Some(at) => { (format::relative(now, at)) }
                None => { span.muted { "not growing" } }
            } }
            td { @if d.oldest_tables.is_empty() { span.muted { "not watched" } } @else {
                @for (i, t) in d.oldest_tables.iter().enumerate() {
                    @if i > 0 { ", " } (name(&t.table))
                }
            } }
        }
    }
}

fn row(s: &ShardState, now: DateTime<Utc>) -> Markup {
    let at_risk = format!(
        "/?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("shard", &s.name)
            .finish()
    );
    html! {
        tr data-shard=(crate::escape::escape(&s.name)) {
            td.name { (name(&s.name)) br; span.muted { (name(&s.url)) } }
            td {
                @match (s.polled, s.up) {
                    (false, _) => { span.muted { "not polled yet" } }
                    (true, true) => { span.st.st-ok { "up" } }
                    (true, false) => {
                        span.st.st-critical { "down" }
                        @if let Some(e) = &s.last_error { br; (name(e)) }
                        br;
                        span.muted {
                            (s.last_error_class.unwrap_or("unknown"))
                            @if let Some(code) = s.last_error_code { ", error " (code) }
                            ", " (s.consecutive_failures) " failed polls in a row"
                        }
                    }
                }
            }
            td {
                @match s.last_poll {
                    Some(at) => {
                        (format::relative(now, at)) br;
                        span.muted {
                            @if let Some(took) = s.poll_duration_seconds { "took " (format!("{took:.2}")) " s" }
                            @if let Some(ok) = s.last_success && s.last_success != s.last_poll {
                                ", last success " (format::relative(now, ok))
                            }
                        }
                    }
                    None => { span.muted { "never" } }
                }
            }
            td { @if let Some(at) = s.next_poll_at { (format::relative(now, at)) } @else { span.muted { "not scheduled" } } }
            td.num { a href=(at_risk) { (thousands(s.column_count as i128)) } }
            td {
                @match s.strict_mode {
                    // PostgreSQL has no such mode: it always refuses such a value.
                    Some(true) if s.databases.is_some() => { span.muted { "does not apply (PostgreSQL refuses)" } }
                    Some(true) => { "yes" }
                    Some(false) => { span.st.st-warning { "no" } }
                    None => { span.muted { "not known yet" } }
                }
                @if let Some(mode) = &s.sql_mode { br; span.muted.mode { (mode) } }
            }
            td {
                @if s.ambiguous.is_empty() { span.muted { "none" } } @else {
                    details {
                        summary { (s.ambiguous.len()) " columns" }
                        ul { @for a in &s.ambiguous {
                            li { (name(&a.column)) ": "
                                @for (i, c) in a.candidates.iter().enumerate() {
                                    @if i > 0 { ", " } (name(c))
                                }
                            }
                        } }
                    }
                }
            }
            td {
                @if s.unresolved.is_empty() { span.muted { "none" } } @else {
                    details {
                        summary { (s.unresolved.len()) " columns" }
                        ul { @for u in &s.unresolved { li { (name(u)) } } }
                    }
                }
            }
        }
    }
}
