//! The pages in process, through the whole router: what they show of a fleet built by hand
//! (a critical column, a hostile name, a column not yet measured, a shard never polled, an
//! empty fleet), that they show it as text, that their numbers are the JSON's, and the
//! headers every page carries.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use tower::ServiceExt as _;

use crate::api::{AppState, router};
use crate::growth::Forecast;
use crate::headroom::{IntType, Width};
use crate::inventory::ColumnId;
use crate::measure::fixture;
use crate::measure::{ColumnReport, Kind};
use crate::metrics::Metrics;
use crate::state::Store;

/// The table of the hostile column: markup that would run if it were not text.
pub(super) const HOSTILE_TABLE: &str = "<script>alert(1)</script>";
/// The hostile column: a right-to-left override, quotes and an escape sequence.
pub(super) const HOSTILE_COLUMN: &str = "rl\u{202e}o\"'\u{1b}[31m";

/// Shard `s`, polled, and shard `t`, never polled, both on a port nothing listens on: a
/// plan that reads them fails at once.
fn settings() -> crate::config::Settings {
    let toml = "[poll]\nquery_timeout = \"2s\"\n\
                [[shards]]\nname = \"s\"\nurl = \"mysql://u@127.0.0.1:1/\"\n\
                [[shards]]\nname = \"t\"\nurl = \"mysql://u@127.0.0.1:1/\"\n";
    crate::config::from_toml_str(toml, &|_| None).expect("settings")
}

fn int() -> IntType {
    IntType::new(Width::Int, false)
}

/// A forecast of `per_second` IDs a second, running out in `seconds`.
fn growing(per_second: f64, seconds: u64) -> Forecast {
    Forecast {
        growth_per_second: Some(per_second),
        seconds_to_exhaustion: Some(seconds),
        last_jump: None,
    }
}

/// The columns of shard `s`: `shop.orders.id`, critical and running out in 17 days;
/// `shop.users.id`, ok and not measured long enough to grow; `shop.items.owner_id`, ok but
/// narrower than the BIGINT that feeds it; and the hostile column, warning, running out in
/// 100 days.
pub(super) fn columns() -> Vec<ColumnReport> {
    let id = |s: &str, t: &str, c: &str| ColumnId::new(s, t, c);
    vec![
        fixture::column("s", id("shop", "orders", "id"), int(), 2_000_000_000)
            .forecast(growing(100.0, 1_474_836))
            .build(),
        fixture::column("s", id("shop", "users", "id"), int(), 5).build(),
        fixture::column("s", id("shop", "items", "owner_id"), int(), 10)
            .kind(Kind::Reference)
            .source(Some("tickets64"))
            .feeder_max(Some(u64::MAX))
            .forecast(Forecast {
                growth_per_second: Some(0.0),
                ..Forecast::NONE
            })
            .build(),
        fixture::column(
            "s",
            id("app", HOSTILE_TABLE, HOSTILE_COLUMN),
            int(),
            1_600_000_000,
        )
        .forecast(growing(60.0, 100 * 86_400))
        .build(),
    ]
}

/// A store of [`settings`] whose shard `s` holds `columns`.
pub(super) fn store_with(columns: Vec<ColumnReport>) -> Store {
    let store = Store::new(&settings());
    store.shard_succeeded(
        "s",
        columns,
        Vec::new(),
        Duration::from_millis(3),
        Utc::now(),
    );
    store
}

pub(super) fn app(store: Store) -> axum::Router {
    router(AppState {
        store,
        metrics: Arc::new(Metrics::new()),
        pager: None,
        reload: None,
        settings: Arc::new(std::sync::RwLock::new(Arc::new(settings()))),
        // The tests that look at a plan's outcome wait for it, however busy the machine.
        plans: Arc::new(
            crate::api::plan_cache::Plans::new().waiting_at_most(Duration::from_secs(30)),
        ),
    })
}

/// What a GET of `uri` answered.
pub(super) struct Got {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

pub(super) async fn get(app: axum::Router, uri: &str) -> Got {
    let response = app
        .oneshot(Request::get(uri).body(Body::empty()).expect("a request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the body");
    Got {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).expect("UTF-8"),
    }
}

impl Got {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The text of every element `<tag ...>` opening in the body whose attributes contain
    /// `marker`, up to the next `</tag>`.
    fn rows_with(&self, marker: &str) -> Vec<&str> {
        self.body
            .split("<tr ")
            .skip(1)
            .filter(|r| r.contains(marker))
            .map(|r| r.split("</tr>").next().unwrap_or(""))
            .collect()
    }
}

/// The value of attribute `name` in `html` (the first one).
fn attribute<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    let start = html.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = html[start..].find('"')? + start;
    Some(&html[start..end])
}

#[tokio::test]
async fn the_fleet_page_is_html_under_a_policy_that_allows_only_its_own_files() {
    let got = get(app(store_with(columns())), "/").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header(header::CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(
        got.header(header::CONTENT_SECURITY_POLICY),
        "default-src 'none'; style-src 'self'; script-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    );
    assert_eq!(got.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(got.header(header::CACHE_CONTROL), "no-store");
    assert!(
        got.body.starts_with("<!DOCTYPE html>"),
        "{}",
        &got.body[..40]
    );
    // Nothing from another host: every link and file is a path on this one.
    for attr in ["href=\"", "src=\"", "action=\""] {
        for (i, _) in got.body.match_indices(attr) {
            let value = &got.body[i + attr.len()..];
            assert!(
                value.starts_with('/'),
                "{attr}{}",
                &value[..value.len().min(40)]
            );
        }
    }
    assert!(!got.body.contains("<style") && !got.body.contains(" style=\""));
}

#[tokio::test]
async fn the_fleet_page_lists_the_columns_at_risk_soonest_first() {
    let got = get(app(store_with(columns())), "/").await;
    let listed: Vec<&str> = got
        .rows_with("data-column=")
        .iter()
        .filter_map(|r| attribute(r, "data-table"))
        .collect();
    // Critical first (17 days), then the hostile warning (100 days), then the mismatched
    // column that does not grow; the ok column is not at risk.
    assert_eq!(
        listed,
        ["orders", "&lt;script&gt;alert(1)&lt;/script&gt;", "items"]
    );
    assert!(
        got.body
            .contains("Columns at risk <span class=\"muted\">3</span>")
    );
    assert!(
        got.body
            .contains("href=\"/?status=ok,warning,critical,exhausted\"")
    );
}

#[tokio::test]
async fn a_hostile_name_is_shown_as_text_and_injects_no_element() {
    let got = get(app(store_with(columns())), "/").await;
    assert!(
        !got.body.contains("<script>alert"),
        "the name became markup"
    );
    assert!(
        !got.body.contains('\u{202e}'),
        "the override reached the page"
    );
    assert!(!got.body.contains('\u{1b}'));
    assert!(got.body.contains(
        "<bdi>&lt;script&gt;alert(1)&lt;/script&gt;</bdi>.<bdi>rl\\u{202e}o&quot;'\\u{1b}[31m</bdi>"
    ));
    // The link to its page is percent-encoded, as plan_url is.
    assert!(got.body.contains(
        "href=\"/columns/s/app/%3Cscript%3Ealert%281%29%3C%2Fscript%3E/rl%E2%80%AEo%22%27%1B%5B31m\""
    ));
}

#[tokio::test]
async fn the_fleet_page_shows_the_numbers_of_api_columns() {
    let store = store_with(columns());
    let json = get(app(store.clone()), "/api/columns?sort=name").await;
    let doc: serde_json::Value = serde_json::from_str(&json.body).expect("JSON");
    let page = get(app(store), "/?status=ok,warning,critical,exhausted").await;
    let rows = page.rows_with("data-column=");
    assert_eq!(rows.len(), 4);
    for column in doc["columns"].as_array().expect("columns") {
        let table = column["table"].as_str().expect("table");
        let table = maud::html! { (crate::escape::escape(table)) }.into_string();
        let row = rows
            .iter()
            .find(|r| attribute(r, "data-table") == Some(table.as_str()))
            .unwrap_or_else(|| panic!("no row for {table}"));
        assert_eq!(
            attribute(row, "data-current"),
            Some(column["current"].to_string().as_str())
        );
        assert_eq!(
            attribute(row, "data-max"),
            Some(column["max"].to_string().as_str())
        );
        // serde_json reads a float to within a unit of its last place.
        let close = |page: Option<&str>, json: Option<f64>| match (page, json) {
            (Some(p), Some(j)) => {
                let p: f64 = p.parse().expect("a number");
                (p - j).abs() <= j.abs() * 1e-15
            }
            (None, None) => true,
            _ => false,
        };
        assert!(close(
            attribute(row, "data-ratio"),
            column["used_ratio"].as_f64()
        ));
        let growth = attribute(row, "data-growth").filter(|g| !g.is_empty());
        assert!(close(growth, column["growth_per_second"].as_f64()));
        let exhausts = attribute(row, "data-exhausts-at").filter(|g| !g.is_empty());
        let want = column["exhausts_at"]
            .as_str()
            .map(|t| chrono::DateTime::parse_from_rfc3339(t).expect("a date"));
        assert_eq!(
            exhausts.map(|t| chrono::DateTime::parse_from_rfc3339(t).expect("a date")),
            want
        );
        let status = column["status"].as_str().expect("status");
        assert!(row.contains(&format!("class=\"st st-{status}\">{status}</span>")));
    }
    // As a person reads it: the critical column's figures.
    let orders = rows
        .iter()
        .find(|r| attribute(r, "data-table") == Some("orders"))
        .expect("orders");
    assert!(orders.contains("93.1%"), "{orders}");
    assert!(orders.contains("8,640,000/day"), "{orders}");
    assert!(orders.contains("in ~17 days"), "{orders}");
}

#[tokio::test]
async fn the_header_counts_columns_shards_and_says_what_is_unknown() {
    let got = get(app(store_with(columns())), "/").await;
    let body = &got.body;
    assert!(body.contains("<div class=\"big\">4</div>"), "columns");
    assert!(body.contains("1 <span class=\"st st-critical\">critical</span>"));
    assert!(body.contains("1 <span class=\"st st-warning\">warning</span>"));
    assert!(body.contains("1 narrower than what feeds them"));
    assert!(body.contains("<div class=\"big\">1 up</div>"));
    assert!(body.contains("1 not polled yet"), "shard t");
    assert!(body.contains("no notifier configured"));
    assert!(body.contains("none configured"), "sources");
    // The soonest exhaustion is the critical column's.
    assert!(body.contains(
        "<div class=\"big\">in ~17 days</div><a class=\"name\" href=\"/columns/s/shop/orders/id\">"
    ));
    // A column that has not grown yet, and one that does not grow.
    let all = get(
        app(store_with(columns())),
        "/?status=ok,warning,critical,exhausted",
    )
    .await;
    assert!(all.body.contains("growth not measured yet"));
    assert!(all.body.contains("not growing"));
}

#[tokio::test]
async fn an_empty_fleet_says_nothing_is_measured_yet() {
    let got = get(app(Store::new(&settings())), "/").await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body.contains("No column measured yet"));
    assert!(got.body.contains("no shard polled yet"));
    assert!(got.body.contains("2 not polled yet"));
    assert!(got.body.contains("no column is growing toward its maximum"));
}

#[tokio::test]
async fn empty_form_fields_mean_any_and_a_bad_filter_is_a_page_naming_it() {
    let store = store_with(columns());
    let got = get(
        app(store.clone()),
        "/?shard=&schema=&table=&column=&kind=&status=&min_ratio=&sort=exhaustion",
    )
    .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.rows_with("data-column=").len(), 3);
    let got = get(app(store.clone()), "/?status=bogus").await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
    assert_eq!(got.header(header::CONTENT_TYPE), "text/html; charset=utf-8");
    assert!(
        got.body.contains(
            "unknown status &quot;bogus&quot;: expected ok, warning, critical or exhausted"
        )
    );
    let got = get(app(store.clone()), "/?limit=1001").await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
    assert!(
        got.body
            .contains("limit: 1001 rows is more than a page shows (at most 1000)")
    );
    let got = get(app(store), "/?kind=reference&status=ok").await;
    let listed: Vec<&str> = got
        .rows_with("data-column=")
        .iter()
        .filter_map(|r| attribute(r, "data-column"))
        .collect();
    assert_eq!(listed, ["owner_id"]);
}

#[tokio::test]
async fn a_long_list_is_paged_at_100_rows_with_links_to_the_next_and_previous() {
    let columns: Vec<ColumnReport> = (0..250)
        .map(|i| {
            let id = ColumnId::new("app", &format!("t{i:03}"), "id");
            fixture::column("s", id, int(), 1_900_000_000 + i).build()
        })
        .collect();
    let store = store_with(columns);
    let got = get(app(store.clone()), "/?sort=name").await;
    assert_eq!(got.rows_with("data-column=").len(), 100);
    assert!(got.body.contains("1–100 of 250"));
    assert!(
        got.body
            .contains("href=\"/?sort=name&amp;offset=100\" rel=\"next\"")
    );
    let got = get(app(store), "/?sort=name&offset=200").await;
    let rows = got.rows_with("data-column=");
    assert_eq!(rows.len(), 50);
    assert_eq!(attribute(rows[0], "data-table"), Some("t200"));
    assert!(got.body.contains("201–250 of 250"));
    assert!(
        got.body
            .contains("href=\"/?sort=name&amp;offset=100\" rel=\"prev\"")
    );
    assert!(!got.body.contains("rel=\"next\""));
}

#[tokio::test]
async fn the_stylesheet_and_script_are_served_here_and_cached_for_a_year() {
    let store = store_with(Vec::new());
    let page = get(app(store.clone()), "/").await;
    let css = attribute(&page.body, "href").filter(|h| h.ends_with(".css"));
    let css = css
        .map(str::to_string)
        .unwrap_or_else(|| super::layout::CSS_PATH.clone());
    assert!(
        page.body
            .contains(&format!("<link rel=\"stylesheet\" href=\"{css}\">"))
    );
    let got = get(app(store.clone()), &css).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header(header::CONTENT_TYPE), "text/css; charset=utf-8");
    assert_eq!(
        got.header(header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    assert!(got.body.contains("prefers-color-scheme: dark"));
    let js = super::layout::JS_PATH.clone();
    assert!(
        page.body
            .contains(&format!("<script src=\"{js}\" defer></script>"))
    );
    let got = get(app(store.clone()), &js).await;
    assert_eq!(
        got.header(header::CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    let got = get(app(store), "/static/headroom.css").await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    assert_eq!(got.header(header::CONTENT_TYPE), "application/json");
}

mod detail;
