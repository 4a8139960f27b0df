//! `GET /incidents`: every notifier's open incidents (the worst first, at most
//! [`MAX_LISTED`]) and undelivered events, as `/api/incidents` has them, each incident
//! linked to the page of what it is about (a column, the sources, the shards).

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::format::{self, name};
use super::layout::{self, Nav};
use crate::api::AppState;
use crate::pager::Incidents;
use crate::pager::event::{Event, column_key};
use crate::state::Snapshot;

/// The most incidents listed per notifier: beyond it the page says how many more there are
/// (all of them are in `/api/incidents`).
pub const MAX_LISTED: usize = 1000;

/// `GET /incidents`.
pub async fn handler(State(state): State<AppState>) -> Response {
    let incidents = state.pager.as_ref().map(|p| {
        let mut notifiers = p.incidents();
        for n in &mut notifiers {
            // The worst first, then the oldest.
            n.open
                .sort_by(|a, b| b.level.cmp(&a.level).then(a.created_at.cmp(&b.created_at)));
        }
        notifiers
    });
    let markup = render(&state.store.read(), incidents.as_deref(), Utc::now());
    layout::respond(StatusCode::OK, markup)
}

/// The page of each open column incident, by dedup key: the columns' keys are made only
/// when a column incident is open.
fn column_pages(snapshot: &Snapshot, notifiers: &[Incidents]) -> HashMap<String, String> {
    let open: HashSet<&str> = notifiers
        .iter()
        .flat_map(|n| n.open.iter())
        .filter(|e| e.class == "id_column")
        .map(|e| e.dedup_key.as_str())
        .collect();
    if open.is_empty() {
        return HashMap::new();
    }
    snapshot
        .shards
        .iter()
        .flat_map(|s| s.columns.iter())
        .filter_map(|c| {
            let key = column_key(c);
            open.contains(key.as_str()).then(|| (key, c.page_url()))
        })
        .collect()
}

/// The whole page, as of `now`; `notifiers` is `None` without any.
pub fn render(snapshot: &Snapshot, notifiers: Option<&[Incidents]>, now: DateTime<Utc>) -> Markup {
    let pages = notifiers.map_or_else(HashMap::new, |n| column_pages(snapshot, n));
    let body = html! {
        h1 { "Incidents" }
        @match notifiers {
            None => { p.muted { "No notifier is configured: nothing pages. See [pagerduty] and [webhook] in the configuration." } }
            Some(notifiers) => {
                @for n in notifiers {
                    section data-notifier=(n.notifier) {
                        h2 { (n.notifier) " " span.muted { "pages from " (n.min_severity.as_str()) } }
                        p {
                            (n.open.len()) " open; "
                            @if n.undelivered > 0 { span.st.st-critical { (n.undelivered) " events undelivered" } " (retried)" }
                            @else { "every event delivered" }
                            "."
                        }
                        @if !n.open.is_empty() {
                            div.scroll {
                                table {
                                    thead { tr { th { "Severity" } th { "About" } th { "Summary" } th { "Since" } } }
                                    tbody { @for e in n.open.iter().take(MAX_LISTED) { (row(e, &pages, now)) } }
                                }
                            }
                            @if n.open.len() > MAX_LISTED {
                                p.muted { "And " (n.open.len() - MAX_LISTED) " more: every one is in " a href="/api/incidents" { "/api/incidents" } "." }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page("Incidents", Nav::Incidents, "/api/incidents", body)
}

fn row(e: &Event, pages: &HashMap<String, String>, now: DateTime<Utc>) -> Markup {
    let href = match e.class.as_str() {
        "id_column" => pages.get(&e.dedup_key).map(String::as_str),
        "id_source" | "id_collision" => Some("/sources"),
        "blind_shard" => Some("/shards"),
        _ => None,
    };
    html! {
        tr data-dedup-key=(crate::escape::escape(&e.dedup_key)) {
            td { span class={ "st st-" (if e.level >= 3 { "exhausted" } else { e.severity.as_str() }) } { (e.severity.as_str()) } }
            td.name {
                @match href {
                    Some(href) => { a href=(href) { (name(&e.source)) " · " (name(&e.component)) } }
                    None => { (name(&e.source)) " · " (name(&e.component)) }
                }
                br; span.muted { (e.class) }
            }
            td { (name(&e.summary)) }
            td { (format::date(e.created_at)) br; span.muted { (format::relative(now, e.created_at)) } }
        }
    }
}
