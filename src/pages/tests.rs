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
        plans: Arc::new(crate::api::plan_cache::Plans::new()),
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

/// [`columns`], with three samples a minute apart of `shop.orders.id` held in the store's
/// histories, the last one its current value.
fn store_with_history() -> Store {
    let store = store_with(columns());
    let id = ColumnId::new("shop", "orders", "id");
    let mut tracker = crate::growth::Tracker::default();
    let now = tokio::time::Instant::now();
    for (ago, value) in [
        (120, 1_999_988_000),
        (60, 1_999_994_000),
        (0, 2_000_000_000),
    ] {
        let at = now - Duration::from_secs(ago);
        tracker.round(at, [(id.clone(), value, int().max())]);
    }
    store
        .histories()
        .lock()
        .expect("histories")
        .insert("s".to_string(), tracker);
    store
}

#[tokio::test]
async fn a_column_page_shows_the_numbers_of_api_columns_and_charts_its_history() {
    let store = store_with_history();
    let json = get(app(store.clone()), "/api/columns?table=orders").await;
    let doc: serde_json::Value = serde_json::from_str(&json.body).expect("JSON");
    let column = &doc["columns"][0];
    let got = get(app(store), "/columns/s/shop/orders/id").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header(header::CONTENT_TYPE), "text/html; charset=utf-8");
    let body = &got.body;
    for (attr, key) in [
        ("data-current", "current"),
        ("data-max", "max"),
        ("data-remaining", "remaining"),
    ] {
        let at = body.find(&format!(" {attr}=")).expect(attr);
        assert_eq!(
            attribute(&body[at - 1..], attr),
            Some(column[key].to_string().as_str()),
            "{attr}"
        );
    }
    assert!(body.contains("2,000,000,000"));
    assert!(body.contains("147,483,647"), "remaining");
    // The chart: three samples, the forecast to the maximum, which is far.
    assert!(
        body.contains("<polyline class=\"history\" points=\""),
        "{body}"
    );
    assert!(body.contains("<line class=\"forecast\""));
    assert!(body.contains("3 samples held"));
    // Why: the thresholds it passed.
    assert!(body.contains("93.1% of its type used"));
    assert!(body.contains("from 85%"), "the critical ratio");
    assert!(body.contains("Runs out in ~17 days at its growth rate"));
    assert!(body.contains("within 14 days"));
    assert!(
        body.contains("Its shard&#39;s strict mode is not known yet")
            || body.contains("Its shard's strict mode is not known yet")
    );
    assert!(body.contains("No notifier is configured"));
    // Its JSON twins.
    assert!(body.contains("href=\"/api/columns/s/shop/orders/id\""));
    assert!(body.contains("href=\"/api/columns/s/shop/orders/id/history\""));
    // The plan reads the shard, which refuses: the page says so and shows the rest.
    assert!(
        body.contains("No plan now: reading the column definitions: shard s: connecting"),
        "{body}"
    );
}

#[tokio::test]
async fn the_history_json_holds_the_samples_and_the_forecast() {
    let got = get(
        app(store_with_history()),
        "/api/columns/s/shop/orders/id/history",
    )
    .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header(header::CONTENT_TYPE), "application/json");
    let doc: serde_json::Value = serde_json::from_str(&got.body).expect("JSON");
    let values: Vec<u64> = doc["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p[1].as_u64().expect("a value"))
        .collect();
    assert_eq!(values, [1_999_988_000, 1_999_994_000, 2_000_000_000]);
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = doc["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| {
            chrono::DateTime::parse_from_rfc3339(p[0].as_str().expect("a time")).expect("RFC 3339")
        })
        .collect();
    // A minute apart, to the millisecond the history keeps.
    let apart = (times[2] - times[0]).num_milliseconds();
    assert!((119_999..=120_001).contains(&apart), "{apart} ms");
    assert_eq!(doc["forecast"]["growth_per_second"], 100.0);
    assert_eq!(doc["forecast"]["seconds_to_exhaustion"], 1_474_836);
    assert_eq!(doc["forecast"]["from"][1], 2_000_000_000);
    assert_eq!(doc["max"], 2_147_483_647u64);
    assert_eq!(doc["last_jump"], serde_json::Value::Null);
    // A column with no history held yet: no points, and no forecast until it grows.
    let got = get(
        app(store_with_history()),
        "/api/columns/s/shop/users/id/history",
    )
    .await;
    let doc: serde_json::Value = serde_json::from_str(&got.body).expect("JSON");
    assert_eq!(doc["points"], serde_json::json!([]));
    assert_eq!(doc["forecast"], serde_json::Value::Null);
}

#[tokio::test]
async fn an_unknown_column_is_a_404_page_and_its_history_a_404_json_error() {
    let store = store_with(columns());
    let got = get(app(store.clone()), "/columns/s/shop/nope/id").await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    assert_eq!(got.header(header::CONTENT_TYPE), "text/html; charset=utf-8");
    assert!(
        got.body
            .contains("no ID column shop.nope.id is known on shard &quot;s&quot;")
    );
    let got = get(app(store.clone()), "/columns/t/shop/orders/id").await;
    assert_eq!(got.status, StatusCode::NOT_FOUND, "a shard never polled");
    let got = get(app(store), "/api/columns/s/shop/nope/id/history").await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    assert_eq!(
        got.body,
        r#"{"error":"no ID column shop.nope.id is known on shard \"s\""}"#
    );
}

#[tokio::test]
async fn a_column_that_needs_no_widening_says_so_and_has_no_history_yet() {
    let got = get(app(store_with(columns())), "/columns/s/shop/users/id").await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(
        got.body.contains("No widening needed: INT holds it."),
        "{}",
        got.body
    );
    assert!(got.body.contains("No history held yet"));
    assert!(
        got.body
            .contains("Not running out at its growth rate (not measured yet)")
    );
    assert!(got.body.contains("Not silenced."));
}

#[tokio::test]
async fn a_hostile_column_page_shows_its_names_as_text() {
    let path = crate::measure::page_path("s", "app", HOSTILE_TABLE, HOSTILE_COLUMN);
    let got = get(app(store_with(columns())), &path).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(!got.body.contains("<script>alert"));
    assert!(!got.body.contains('\u{202e}'));
    assert!(!got.body.contains('\u{1b}'));
    assert!(
        got.body
            .contains("<bdi>&lt;script&gt;alert(1)&lt;/script&gt;</bdi>")
    );
}

#[test]
fn a_plan_shows_statements_and_commands_escaped_with_copy_buttons_that_copy_them_exactly() {
    use super::column::{Plan, View, render};
    use crate::plan::{Change, Step, TableSize};
    let c = columns().swap_remove(3);
    let statement = format!(
        "ALTER TABLE `app`.`{HOSTILE_TABLE}` MODIFY COLUMN `{HOSTILE_COLUMN}` BIGINT UNSIGNED NOT NULL"
    );
    let mut planned = crate::plan::unplanned(&c);
    planned.plan.target_type = "BIGINT UNSIGNED".to_string();
    planned.plan.reason = "warning: 74.5% used".to_string();
    planned.plan.changes = vec![Change {
        shard: "s".to_string(),
        schema: "app".to_string(),
        table: HOSTILE_TABLE.to_string(),
        column: HOSTILE_COLUMN.to_string(),
        host: "127.0.0.1".to_string(),
        port: 3306,
        from_type: "int(11)".to_string(),
        to_type: "BIGINT UNSIGNED".to_string(),
        definition: None,
        table_size: Some(TableSize {
            rows: 1_000_000,
            data_bytes: 50 << 20,
            index_bytes: 10 << 20,
            engine: "InnoDB".to_string(),
        }),
        statement: Some(statement.clone()),
        gh_ost: Some("gh-ost --alter='MODIFY id BIGINT' --execute".to_string()),
        pt_online_schema_change: Some(
            "pt-online-schema-change --alter 'MODIFY id BIGINT'".to_string(),
        ),
        rebuilds: true,
        rebuild_seconds_estimate: Some(120),
        note: None,
    }];
    planned.plan.steps = vec![Step {
        shard: "s".to_string(),
        statement: statement.clone(),
    }];
    let view = View {
        column: c,
        samples: crate::growth::Samples::default(),
        limits: crate::policy::Limits::default(),
        strict_mode: Some(false),
        sql_mode: Some("NO_ENGINE_SUBSTITUTION".to_string()),
        incidents: Some(Vec::new()),
        plan: Plan::Ready(Arc::new(planned)),
    };
    let html = render(&view, Utc::now()).into_string();
    assert!(html.contains(
        "<button class=\"copy\" type=\"button\" data-copy=\"plan-statements\" hidden>Copy</button>"
    ));
    // Shown with visible escapes; copied from a hidden twin that holds it exactly.
    let exact = maud::html! { (format!("-- on shard s\n{statement}\n")) }.into_string();
    assert!(html.contains(&format!("<pre id=\"plan-statements\" hidden>{exact}</pre>")));
    let shown = maud::html! { (super::format::lines(&format!("-- on shard s\n{statement}\n"))) }
        .into_string();
    assert!(shown.contains("\\u{202e}"), "{shown}");
    assert!(html.contains(&format!("<pre>{shown}</pre>")));
    // Commands without hostile characters are shown once, as they are.
    assert!(
        html.contains(
            "<pre id=\"plan-gh-ost-0\">gh-ost --alter='MODIFY id BIGINT' --execute</pre>"
        )
    );
    assert!(html.contains("data-copy=\"plan-pt-osc-0\""));
    assert!(html.contains(
        "<td class=\"num\">1,000,000</td><td class=\"num\">60 MB</td><td>~2 minutes</td>"
    ));
    assert!(html.contains("Its shard is not in strict mode"));
    assert!(html.contains("No open incident."));
}

#[tokio::test]
async fn the_shards_page_shows_up_down_never_polled_strict_mode_and_what_is_not_measured() {
    let store = Store::new(&settings());
    let result = crate::measure::ShardResult {
        columns: columns(),
        unresolved: vec!["app.t.x_id: its source tickets64 has not been read".to_string()],
        ambiguous: vec![crate::inference::Ambiguous {
            column: "app.stars.repo_id".to_string(),
            candidates: vec!["a.repos.id".to_string(), "b.repos.id".to_string()],
        }],
        mode: Some("NO_ENGINE_SUBSTITUTION".to_string()),
        strict: false,
    };
    store.shard_polled("s", Ok(result), Duration::from_millis(250), Utc::now());
    let got = get(app(store.clone()), "/shards").await;
    assert_eq!(got.status, StatusCode::OK);
    let body = &got.body;
    assert!(body.contains("2 shards: 1 up, 1 not polled yet, <span class=\"st st-warning\">1 without strict mode</span>."), "{body}");
    assert!(body.contains("href=\"/api/shards\""), "its JSON twin");
    assert!(body.contains("<span class=\"st st-warning\">no</span><br><span class=\"muted mode\">NO_ENGINE_SUBSTITUTION</span>"));
    assert!(body.contains("<summary>1 columns</summary><ul><li><bdi>app.stars.repo_id</bdi>: <bdi>a.repos.id</bdi>, <bdi>b.repos.id</bdi></li></ul>"));
    assert!(body.contains("app.t.x_id: its source tickets64 has not been read"));
    assert!(body.contains("took 0.25 s"));
    assert!(body.contains("href=\"/?shard=s\">4</a>"));
    // Shard t fails: its error in headroom's words, its class and code.
    store.shard_failed(
        "t",
        crate::db::ErrorReport {
            message: "connecting: server error 1045 (28000): access denied".to_string(),
            class: "access_denied",
            code: Some(1045),
        },
        Duration::from_millis(5),
        Utc::now(),
    );
    let got = get(app(store), "/shards").await;
    assert!(got.body.contains("<span class=\"st st-critical\">down</span><br><bdi>connecting: server error 1045 (28000): access denied</bdi><br><span class=\"muted\">access_denied, error 1045, 0 failed polls in a row</span>"), "{}", got.body);
}

#[tokio::test]
async fn the_sources_page_shows_a_source_its_collision_risk_and_its_servers() {
    let toml = "[[shards]]\nname = \"s\"\nurl = \"mysql://u@127.0.0.1:1/\"\n\
                [[sources]]\nname = \"tickets64\"\nkind = \"ticket_server\"\n\
                servers = [\"mysql://u@127.0.0.1:1/tickets\", \"mysql://u@127.0.0.1:2/tickets\"]\n\
                table = \"Tickets64\"\n";
    let settings = crate::config::from_toml_str(toml, &|_| None).expect("settings");
    let store = Store::new(&settings);
    let empty = get(app(store.clone()), "/sources").await;
    assert!(empty.body.contains("not read yet"));
    let mut source = store.source("tickets64").expect("the source");
    source.current = Some(2_147_234_949);
    source.max = Some(9_223_372_036_854_775_807);
    source.int_type = Some(IntType::new(Width::Big, false));
    source.used_ratio = Some(2_147_234_949.0 / 9_223_372_036_854_775_807.0);
    source.status = Some(crate::headroom::Status::Ok);
    source.growth_per_second = Some(800.0);
    source.collision_risk = true;
    source.collision_reason = Some("both servers step by 1 from 1".to_string());
    source.servers[0].polled = true;
    source.servers[0].up = true;
    source.servers[0].current = Some(2_147_234_949);
    source.servers[0].auto_increment_increment = Some(1);
    source.servers[0].auto_increment_offset = Some(1);
    store.source_polled(source);
    let got = get(app(store), "/sources").await;
    let body = &got.body;
    assert!(body.contains("<bdi>tickets64</bdi> <span class=\"st st-ok\">ok</span> <span class=\"st st-critical\">collision risk</span>"), "{body}");
    assert!(body.contains("<dd data-current=\"2147234949\">2,147,234,949</dd>"));
    assert!(
        body.contains("BIGINT<span class=\"muted\"> (at most 9,223,372,036,854,775,807)</span>")
    );
    assert!(body.contains("69,120,000/day"));
    assert!(body.contains(
        "<span class=\"st st-critical\">possible</span>: <bdi>both servers step by 1 from 1</bdi>"
    ));
    assert!(
        body.contains("<span class=\"muted\">not read yet</span>"),
        "the second server"
    );
    assert!(body.contains("href=\"/api/sources\""));
}

#[test]
fn the_incidents_page_links_a_column_incident_to_its_page_and_counts_what_is_undelivered() {
    let store = store_with(columns());
    let snapshot = store.read();
    let orders = &snapshot.shards[0].columns[0];
    let condition = crate::pager::event::column(orders, &snapshot.shards[0], "http://h:9187");
    let event = (condition.build)(Utc::now());
    let notifiers = [crate::pager::Incidents {
        notifier: "pagerduty",
        min_severity: crate::policy::Severity::Critical,
        open: vec![event],
        undelivered: 2,
    }];
    let html = super::incidents::render(&snapshot, Some(&notifiers), Utc::now()).into_string();
    assert!(
        html.contains("1 open; <span class=\"st st-critical\">2 events undelivered</span>"),
        "{html}"
    );
    assert!(html.contains(
        "<a href=\"/columns/s/shop/orders/id\"><bdi>s</bdi> · <bdi>shop.orders.id</bdi></a>"
    ));
    assert!(
        html.contains("shop.orders.id on s: 93.1% of INT used"),
        "{html}"
    );
    let none = super::incidents::render(&snapshot, None, Utc::now()).into_string();
    assert!(none.contains("No notifier is configured"));
}

#[tokio::test]
async fn every_page_links_to_the_others_and_is_sent_gzipped_when_asked() {
    let store = store_with(columns());
    for path in [
        "/",
        "/shards",
        "/sources",
        "/incidents",
        "/columns/s/shop/users/id",
    ] {
        let got = get(app(store.clone()), path).await;
        assert_eq!(got.status, StatusCode::OK, "{path}");
        for link in [
            "href=\"/\"",
            "href=\"/shards\"",
            "href=\"/sources\"",
            "href=\"/incidents\"",
        ] {
            assert!(got.body.contains(link), "{path} lacks {link}");
        }
        let response = app(store.clone())
            .oneshot(
                Request::get(path)
                    .header(header::ACCEPT_ENCODING, "gzip, deflate, br")
                    .body(Body::empty())
                    .expect("a request"),
            )
            .await
            .expect("infallible");
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_ENCODING)
                .map(|v| v.as_bytes()),
            Some(&b"gzip"[..]),
            "{path}"
        );
    }
}
