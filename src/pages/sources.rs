//! `GET /sources`: the ID sources (ticket servers), as `/api/sources` has them: the highest
//! ID handed out over their servers, how much of the type it uses, its growth and when it
//! runs out, whether the servers can hand out the same ID and why, and each server.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::format::{self, name, status, thousands, used_bar};
use super::layout::{self, Nav};
use crate::api::AppState;
use crate::headroom::Status;
use crate::state::{Snapshot, SourceState};

/// `GET /sources`.
pub async fn handler(State(state): State<AppState>) -> Response {
    let markup = render(&state.store.read(), Utc::now());
    layout::respond(StatusCode::OK, markup)
}

/// The whole page, as of `now`.
pub fn render(snapshot: &Snapshot, now: DateTime<Utc>) -> Markup {
    let body = html! {
        h1 { "Sources" }
        @if snapshot.sources.is_empty() {
            p.muted { "No ID source is configured: every column is measured from its own shard." }
        }
        @for s in &snapshot.sources { (source(s, now)) }
    };
    layout::page("Sources", Nav::Sources, "/api/sources", body)
}

fn source(s: &SourceState, now: DateTime<Utc>) -> Markup {
    let columns = format!(
        "/?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("kind", "reference")
            .append_pair("status", "ok,warning,critical,exhausted")
            .finish()
    );
    html! {
        section data-source=(crate::escape::escape(&s.name)) {
            h2 {
                (name(&s.name)) " "
                @if let Some(st) = s.status { (status(st)) } @else { span.muted { "not read yet" } }
                @if s.collision_risk { " " span.st.st-critical { "collision risk" } }
            }
            dl.facts {
                dt { "Kind" } dd { (s.kind) " " span.muted { "(" a href=(columns) { "the columns it feeds" } ")" } }
                dt { "Current" } dd data-current=(s.current.map(|c| c.to_string()).unwrap_or_default()) {
                    @if let Some(c) = s.current { (thousands(c)) } @else { "—" }
                }
                dt { "Type" } dd {
                    @if let Some(t) = s.int_type { (t.display_name()) } @else { "—" }
                    @if let Some(max) = s.max { span.muted { " (at most " (thousands(i128::from(max))) ")" } }
                }
                @if let Some(ratio) = s.used_ratio {
                    dt { "Used" } dd { (used_bar(ratio, s.status.unwrap_or(Status::Ok))) }
                }
                dt { "Growth" } dd { (format::per_day(s.growth_per_second)) }
                dt { "Runs out" } dd {
                    (format::exhaustion(s.seconds_to_exhaustion, s.exhausts_at, s.growth_per_second, now))
                }
                @if let Some(j) = &s.last_jump {
                    dt { "Step" } dd { (thousands(i128::from(j.from))) " → " (thousands(i128::from(j.to))) " at " (format::date(j.at)) ", kept out of the rate" }
                }
                dt { "Collisions" } dd {
                    @match &s.collision_reason {
                        Some(why) => { span.st.st-critical { "possible" } ": " (name(why)) }
                        None => { "none possible from the servers' latest readings" }
                    }
                }
            }
            div.scroll {
                table {
                    thead { tr {
                        th { "Server" } th { "State" } th.num { "Current" } th { "Type" }
                        th.num { "Increment" } th.num { "Offset" } th { "Read" }
                    } }
                    tbody {
                        @for v in &s.servers {
                            tr {
                                td.name { (name(&v.server)) br; span.muted { (name(&v.url)) } }
                                td {
                                    @match (v.polled, v.up) {
                                        (false, _) => { span.muted { "not read yet" } }
                                        (true, true) => { span.st.st-ok { "up" } }
                                        (true, false) => {
                                            span.st.st-critical { "down" }
                                            @if let Some(e) = &v.last_error { br; (name(e)) }
                                            @if let Some(class) = v.last_error_class { br; span.muted { (class) @if let Some(code) = v.last_error_code { ", error " (code) } } }
                                        }
                                    }
                                }
                                td.num { @if let Some(c) = v.current { (thousands(c)) } @else { "—" } }
                                td { @if let Some(t) = &v.column_type { (t) } }
                                td.num { @if let Some(i) = v.auto_increment_increment { (i) } }
                                td.num { @if let Some(o) = v.auto_increment_offset { (o) } }
                                td { @if let Some(at) = v.observed_at { (format::relative(now, at)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}
