//! `[metrics] columns = "at_risk"` on real MariaDB: per-column series only for columns at
//! risk; the per-shard aggregates always.

use crate::harness::{metric_value, settings, spawn_app, start_servers};

/// `app.warm` at 75 % of INT (warning by the default thresholds), `app.cold` at 1 %.
const SCHEMA_SQL: &str = "CREATE DATABASE app;
CREATE TABLE app.warm (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=1610612736;
CREATE TABLE app.cold (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=21474837;";

fn column(table: &str) -> [(&str, &str); 5] {
    [
        ("shard", "s1"),
        ("schema", "app"),
        ("table", table),
        ("column", "id"),
        ("kind", "auto_increment"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_risk_exports_a_column_at_warning_but_not_one_at_one_percent_and_always_the_shard_aggregates()
 {
    let servers = start_servers(&["atrisk"]);
    servers[0].exec(SCHEMA_SQL).expect("seed");
    let toml = |metrics: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"1h\"\n{metrics}[[shards]]\nname = \"s1\"\nurl = \"{}\"\n",
            servers[0].url("root", None)
        )
    };
    let app = spawn_app(settings(&toml(
        "[metrics]\ncolumns = \"at_risk\"\nused_ratio = true\n",
    )))
    .await;
    app.wait_ready().await;
    let (status, text) = app.get_text("/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        metric_value(&text, "headroom_column_used_ratio", &column("warm")),
        Some(1_610_612_736.0 / 2_147_483_647.0)
    );
    assert_eq!(
        metric_value(&text, "headroom_column_status", &column("warm")),
        Some(1.0)
    );
    assert!(
        !text.contains("table=\"cold\""),
        "a column at 1 % has no series:\n{text}"
    );
    for (status, count) in [
        ("ok", 1.0),
        ("warning", 1.0),
        ("critical", 0.0),
        ("exhausted", 0.0),
    ] {
        assert_eq!(
            metric_value(
                &text,
                "headroom_shard_columns",
                &[("shard", "s1"), ("status", status)]
            ),
            Some(count),
            "{status}"
        );
    }
    assert_eq!(
        metric_value(&text, "headroom_shard_max_used_ratio", &[("shard", "s1")]),
        Some(1_610_612_736.0 / 2_147_483_647.0)
    );
    app.stop().await;

    // min_ratio brings the 1 % column in.
    let app = spawn_app(settings(&toml(
        "[metrics]\ncolumns = \"at_risk\"\nmin_ratio = 0.005\n",
    )))
    .await;
    app.wait_ready().await;
    let (_, text) = app.get_text("/metrics").await;
    assert_eq!(
        metric_value(&text, "headroom_column_current", &column("cold")),
        Some(21_474_837.0)
    );
    app.stop().await;

    // The default exports both.
    let app = spawn_app(settings(&toml(""))).await;
    app.wait_ready().await;
    let (_, text) = app.get_text("/metrics").await;
    assert!(metric_value(&text, "headroom_column_current", &column("cold")).is_some());
    assert!(metric_value(&text, "headroom_column_current", &column("warm")).is_some());
    app.stop().await;
}
