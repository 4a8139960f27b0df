//! The column page, its history, and the shards, sources and incidents pages, in process
//! over the same hand-built fleets as the fleet page's tests.

use super::*;

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
    use crate::pages::column::{Plan, View, render};
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
    let shown =
        maud::html! { (crate::pages::format::lines(&format!("-- on shard s\n{statement}\n"))) }
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

/// The column page of `c` with `plan`, rendered.
fn page_with(c: ColumnReport, plan: crate::pages::column::Plan) -> String {
    use crate::pages::column::{View, render};
    let view = View {
        column: c,
        samples: crate::growth::Samples::default(),
        limits: crate::policy::Limits::default(),
        strict_mode: Some(true),
        sql_mode: None,
        incidents: None,
        plan,
    };
    render(&view, Utc::now()).into_string()
}

#[test]
fn a_plan_being_computed_is_said_and_the_page_loads_again_in_two_seconds() {
    use crate::pages::column::Plan;
    let html = page_with(columns().swap_remove(0), Plan::Pending);
    assert!(
        html.contains("<meta http-equiv=\"refresh\" content=\"2\">"),
        "{html}"
    );
    assert!(html.contains("The plan is being computed"));
    assert!(html.contains("this page loads again in 2 seconds"));
    // A plan shown, or its failure, is not reloaded.
    let c = columns().swap_remove(0);
    let ready = Plan::Ready(Arc::new(crate::plan::unplanned(&c)));
    for plan in [ready, Plan::Failed("shard s: busy".to_string())] {
        assert!(!page_with(c.clone(), plan).contains("http-equiv"));
    }
}

#[test]
fn an_earlier_plan_is_shown_with_the_poll_it_is_of_and_no_reload() {
    use crate::pages::column::Plan;
    let mut c = columns().swap_remove(0);
    c.observed_at = Utc::now() - chrono::Duration::minutes(3);
    let mut planned = crate::plan::unplanned(&c);
    planned.plan.target_type = "BIGINT".to_string();
    planned.plan.reason = "critical: 93.1% of INT used".to_string();
    planned.plan.changes = vec![crate::plan::Change {
        shard: "s".to_string(),
        schema: "shop".to_string(),
        table: "orders".to_string(),
        column: "id".to_string(),
        host: "127.0.0.1".to_string(),
        port: 1,
        from_type: "int(11)".to_string(),
        to_type: "BIGINT".to_string(),
        definition: None,
        table_size: None,
        statement: Some("ALTER TABLE `shop`.`orders` MODIFY COLUMN `id` BIGINT".to_string()),
        gh_ost: None,
        pt_online_schema_change: None,
        rebuilds: true,
        rebuild_seconds_estimate: None,
        note: None,
    }];
    planned.plan.steps = vec![crate::plan::Step {
        shard: "s".to_string(),
        statement: "ALTER TABLE `shop`.`orders` MODIFY COLUMN `id` BIGINT".to_string(),
    }];
    let html = page_with(c, Plan::Earlier(Arc::new(planned)));
    assert!(!html.contains("http-equiv"));
    assert!(html.contains("<p class=\"note\">This plan is of an earlier poll, of "));
    assert!(
        html.contains("(~3 minutes ago): the plan of the latest poll is being computed"),
        "{html}"
    );
    assert!(html.contains("<a href=\"/columns/s/shop/orders/id#plan\">reload</a>"));
    assert!(html.contains("Widen to <strong>BIGINT</strong>: critical: 93.1% of INT used"));
    assert!(
        html.contains("-- on shard s\nALTER TABLE `shop`.`orders` MODIFY COLUMN `id` BIGINT\n")
    );
}

#[tokio::test]
async fn a_column_page_does_not_wait_for_a_plan_past_its_wait() {
    let store = store_with(columns());
    let plans = Arc::new(crate::api::plan_cache::Plans::new());
    // Every session of shard s held: the plan waits for one, up to the query timeout (2 s).
    let held = plans
        .budget()
        .acquire("s", crate::db::budget::MAX_WAIT)
        .await
        .expect("a free shard");
    let app = router(AppState {
        store: store.clone(),
        metrics: Arc::new(Metrics::new()),
        pager: None,
        reload: None,
        settings: Arc::new(std::sync::RwLock::new(Arc::new(settings()))),
        plans: Arc::clone(&plans),
    });
    let got = get(app.clone(), "/columns/s/shop/orders/id").await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(
        got.body.contains("The plan is being computed"),
        "{}",
        got.body
    );
    assert!(
        got.body
            .contains("<meta http-equiv=\"refresh\" content=\"2\">")
    );
    assert!(got.body.contains("2,000,000,000"), "the rest of the page");
    drop(held);

    // That attempt fails (the shard refuses); while the next one waits, the page says why
    // the last one failed, and does not load itself again.
    let id = ColumnId::new("shop", "orders", "id");
    let settings = Arc::new(settings());
    assert!(plans.get(&store, settings, "s", &id).await.is_err());
    let held = plans
        .budget()
        .acquire("s", crate::db::budget::MAX_WAIT)
        .await
        .expect("a free shard");
    let got = get(app, "/columns/s/shop/orders/id").await;
    assert!(
        got.body
            .contains("No plan now: reading the column definitions: shard s: connecting"),
        "{}",
        got.body
    );
    assert!(
        got.body
            .contains("(at the last attempt; another is under way: reload in a moment)")
    );
    assert!(!got.body.contains("http-equiv"));
    drop(held);
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
        databases: None,
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
async fn a_postgresql_shard_says_strict_mode_does_not_apply_and_lists_its_wraparound() {
    use crate::headroom::Status;
    let store = Store::new(&settings());
    let age = |age: i64, status| crate::wraparound::Age {
        age,
        used_ratio: age as f64 / 2_147_483_648.0,
        status,
        growth_per_second: Some(10.0),
        seconds_to_wraparound: Some(86_400 * 3),
        wraps_at: Some(Utc::now() + chrono::Duration::days(3)),
    };
    let result = crate::measure::ShardResult {
        strict: true,
        databases: Some(vec![crate::wraparound::DatabaseState {
            database: "<b>app</b>".to_string(),
            xid: age(1_900_000_000, Status::Critical),
            multixact: age(7, Status::Ok),
            status: Status::Critical,
            oldest_tables: vec![crate::wraparound::OldTable {
                table: "public.events".to_string(),
                xid_age: 1_900_000_000,
            }],
        }]),
        ..Default::default()
    };
    store.shard_polled("s", Ok(result), Duration::from_millis(5), Utc::now());
    let got = get(app(store), "/shards").await;
    let body = &got.body;
    assert!(
        body.contains("does not apply (PostgreSQL refuses)"),
        "{body}"
    );
    assert!(body.contains("<h2>PostgreSQL wraparound</h2>"), "{body}");
    assert!(body.contains("<bdi>&lt;b&gt;app&lt;/b&gt;</bdi>"), "{body}");
    assert!(
        body.contains("1,900,000,000 <span class=\"muted\">(88.4%)</span>"),
        "{body}"
    );
    assert!(body.contains("<bdi>public.events</bdi>"), "{body}");
    assert!(!body.contains("<b>app</b>"));
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
    let html =
        crate::pages::incidents::render(&snapshot, Some(&notifiers), Utc::now()).into_string();
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
    let none = crate::pages::incidents::render(&snapshot, None, Utc::now()).into_string();
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
