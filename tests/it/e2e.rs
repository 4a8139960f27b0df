//! End to end, on real parts: MariaDB shards and a ticket pair, headroom, a real Prometheus
//! (Debian's `prometheus`) scraping it with alert-rules/ loaded, and a real Alertmanager
//! (`prometheus-alertmanager`) sending to a local webhook receiver. A column driven past
//! the critical threshold must arrive at the receiver as an alert; then every PromQL
//! expression in dashboards/ and alert-rules/ must parse and return data, and name no
//! metric headroom does not export.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use headroom_sandbox::pagerduty::Receiver;
use serde_json::Value;

use crate::harness::{Cluster, settings, spawn_app};

/// A child process killed when dropped.
struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn find(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{program} not found: apt-get install prometheus prometheus-alertmanager (scripts/test.sh does)")
        })
}

fn spawn(program: &str, args: &[String], log: &Path) -> Proc {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    let child = Command::new(find(program))
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    Proc { child }
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every PromQL expression of the dashboard: panel targets and variable queries.
fn dashboard_expressions() -> Vec<String> {
    let text = std::fs::read_to_string(repo("dashboards/headroom.json")).expect("dashboard");
    let dash: Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            out.push(target["expr"].as_str().expect("expr").to_string());
        }
    }
    for var in dash["templating"]["list"].as_array().expect("variables") {
        if let Some(q) = var["query"]["query"].as_str() {
            // label_values(<selector>, label) → the selector.
            let inner = q
                .trim_start_matches("label_values(")
                .rsplit_once(',')
                .map(|(sel, _)| sel.to_string())
                .expect("label_values query");
            out.push(inner);
        }
    }
    out
}

/// Every expression of the rule file: (is a recording rule, expr).
fn rule_expressions(rules: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut recording = false;
    for line in rules.lines().map(str::trim) {
        if line.starts_with("- record:") {
            recording = true;
        } else if line.starts_with("- alert:") {
            recording = false;
        } else if let Some(expr) = line.strip_prefix("expr:") {
            out.push((recording, expr.trim().to_string()));
        }
    }
    out
}

/// An alert expression's inputs: its operands across `or`, `and` and `unless` without their
/// `on (...)` matchers, parentheses and comparisons with constants
/// (`x and on (a) (y == 2)` → `x`, `y`), leaving out `absent()`, which has data only when
/// something is missing.
fn alert_inputs(expr: &str) -> Vec<String> {
    let mut parts = vec![expr.to_string()];
    for op in [" or ", " and ", " unless "] {
        parts = parts
            .iter()
            .flat_map(|p| p.split(op).map(str::to_string).collect::<Vec<_>>())
            .collect();
    }
    parts
        .into_iter()
        .map(|part| {
            let mut part = part.trim().to_string();
            if part.starts_with("on (")
                && let Some(close) = part.find(')')
            {
                part = part[close + 1..].trim().to_string();
            }
            if part.starts_with('(') && part.ends_with(')') {
                part = part[1..part.len() - 1].trim().to_string();
            }
            part
        })
        .filter(|part| !part.starts_with("absent("))
        .map(|mut part| {
            loop {
                let cut = ["==", "!=", ">=", "<=", ">", "<"]
                    .iter()
                    .filter_map(|op| part.rfind(op).map(|i| (i, op.len())))
                    .max();
                match cut {
                    Some((i, len))
                        if part[i + len..]
                            .chars()
                            .all(|c| c.is_ascii_digit() || " .*".contains(c)) =>
                    {
                        part.truncate(i);
                        part = part.trim().to_string();
                    }
                    _ => break part,
                }
            }
        })
        .collect()
}

/// Grafana's variables, as the dashboard's "All" would set them.
fn substitute(expr: &str) -> String {
    expr.replace("$shard", ".*")
        .replace("$schema", ".*")
        .replace("$__rate_interval", "1m")
}

/// headroom metric and recording-rule names an expression uses.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("headroom") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b':')
        {
            end += 1;
        }
        let before_ok =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let name = &expr[start..end];
        if before_ok && (name.starts_with("headroom_") || name.starts_with("headroom:")) {
            names.push(name.to_string());
        }
        i = end.max(start + 1);
    }
    names
}

async fn query(prom: &str, expr: &str) -> Value {
    let resp = reqwest::Client::new()
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .expect("query Prometheus");
    resp.json().await.expect("Prometheus JSON")
}

fn has_data(answer: &Value) -> bool {
    answer["status"] == "success"
        && match answer["data"]["resultType"].as_str() {
            Some("vector") | Some("matrix") => answer["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty()),
            Some("scalar") => true,
            _ => false,
        }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_travels_from_a_column_through_prometheus_and_alertmanager_and_every_query_has_data()
 {
    let cluster = Cluster::start_at(1_000_000_000);
    cluster.shards[0]
        .exec("CREATE DATABASE app; CREATE TABLE app.orders (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=1000000000;")
        .expect("seed");
    // A PostgreSQL shard too, so that its series (a database's wraparound ages) exist.
    let pg = headroom_sandbox::Postgres::start("e2e-pg").expect("a PostgreSQL cluster");
    pg.create_database("app").expect("database");
    pg.exec_in("app", "CREATE TABLE accounts (id serial PRIMARY KEY);")
        .expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");

    // Tickets keep advancing, so growth and time-left series exist.
    let mut pools = Vec::new();
    for t in &cluster.tickets {
        pools.push(
            sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(1)
                .connect(&t.url("root", Some("tickets")))
                .await
                .expect("ticket pool"),
        );
    }
    let traffic = tokio::spawn(async move {
        loop {
            for pool in &pools {
                let _ = headroom_sandbox::hand_out_tickets_async(pool, 20).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    // headroom, paging through a webhook too, so the pager series exist.
    let pages = Receiver::start_webhook(0).await.expect("page receiver");
    let headroom_port = free_port();
    let toml = cluster
        .toml(&format!(
            "[webhook]\nurl = \"{}\"\nretry_initial = \"100ms\"\n[state]\npath = \"{}\"\n\
             [[overrides]]\ncolumns = [\"etsy.*.*\"]\nwarning_within = \"36500d\"\ncritical_within = \"3650d\"\n\
             [[silences]]\ncolumns = [\"etsy.shops.*\"]\nuntil = \"2099-01-01T00:00:00Z\"\nreason = \"e2e: the sparse silenced series exists\"\n",
            pages.hook_url(),
            dir.path().join("state.json").display()
        ))
        .replace("127.0.0.1:0", &format!("127.0.0.1:{headroom_port}"))
        .replace("interval = \"1s\"", "interval = \"500ms\"")
        + &format!(
            "[[shards]]\nname = \"pg\"\nurl = \"{}\"\n",
            pg.url(headroom_sandbox::postgres::SUPERUSER, "app")
        );
    let app = spawn_app(settings(&toml)).await;

    // Alertmanager, sending to a local receiver.
    let alerts = Receiver::start_webhook(0).await.expect("alert receiver");
    let am_port = free_port();
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname, shard, schema, table, column]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: {}\n",
            alerts.hook_url()
        ),
    )
    .expect("alertmanager config");
    let am = spawn(
        "prometheus-alertmanager",
        &[
            format!("--config.file={}", am_config.display()),
            format!("--storage.path={}", dir.path().join("am").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".to_string(),
        ],
        &dir.path().join("alertmanager.log"),
    );

    // Prometheus with the rules; `for:` shortened so the test need not wait the real
    // durations (promtool's tests cover those).
    let rules = std::fs::read_to_string(repo("alert-rules/headroom.rules.yml")).expect("rules");
    let fast_rules: String = rules
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for:") {
            Some(_) => format!("{}for: 1s", &l[..l.len() - l.trim_start().len()]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let rules_path = dir.path().join("headroom.rules.yml");
    std::fs::write(&rules_path, fast_rules).expect("rules copy");
    let prom_port = free_port();
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
             scrape_configs:\n  - job_name: headroom\n    static_configs:\n      - targets: ['127.0.0.1:{headroom_port}']\n",
            rules_path.display()
        ),
    )
    .expect("prometheus config");
    let prom = spawn(
        "prometheus",
        &[
            format!("--config.file={}", prom_config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &dir.path().join("prometheus.log"),
    );
    let prom_url = format!("http://127.0.0.1:{prom_port}");
    let logs = || {
        ["prometheus.log", "alertmanager.log"]
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!(
                    "--- {f}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = reqwest::Client::new()
            .get(format!("{prom_url}/api/v1/query"))
            .query(&[("query", "headroom_shard_up")])
            .send()
            .await;
        if let Ok(r) = answer
            && let Ok(v) = r.json::<Value>().await
            && has_data(&v)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped headroom\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Drive the column past the critical threshold.
    cluster.shards[0]
        .exec("ALTER TABLE app.orders AUTO_INCREMENT = 2000000000;")
        .expect("to 93%");
    let arrived = |alerts: &Receiver| {
        alerts.events().iter().any(|n| {
            n["alerts"].as_array().is_some_and(|a| {
                a.iter().any(|a| {
                    a["labels"]["alertname"] == "HeadroomColumnCritical"
                        && a["labels"]["table"] == "orders"
                        && a["labels"]["severity"] == "page"
                        && a["status"] == "firing"
                })
            })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !arrived(&alerts) {
        assert!(
            Instant::now() < deadline,
            "HeadroomColumnCritical never reached the receiver\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let notification = alerts
        .events()
        .into_iter()
        .find(|n| {
            n["commonLabels"]["table"] == "orders"
                && n["commonLabels"]["alertname"] == "HeadroomColumnCritical"
        })
        .expect("the orders notification");
    let annotations = &notification["alerts"][0]["annotations"];
    assert_eq!(
        annotations["summary"],
        "app.orders.id on shard-01 is 93.13% used"
    );
    assert!(
        annotations["runbook_url"]
            .as_str()
            .unwrap_or("")
            .ends_with("docs/runbooks/HeadroomColumnCritical.md")
    );

    // Every expression parses and returns data; every headroom name in it exists.
    let exported = query(
        &prom_url,
        "count by (__name__) ({__name__=~\"headroom.*\"})",
    )
    .await;
    let known: Vec<String> = exported["data"]["result"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(|r| r["metric"]["__name__"].as_str().map(str::to_string))
        .collect();
    let dashboard = dashboard_expressions();
    let rules = rule_expressions(&rules);
    assert!(dashboard.len() >= 12 && rules.len() >= 15);
    // Dashboard queries and recording rules must return data; alert expressions are empty
    // while all is well, so their inputs must (their thresholds set aside).
    let mut checks: Vec<String> = dashboard.clone();
    for (recording, expr) in &rules {
        if *recording {
            checks.push(expr.clone());
        } else {
            checks.extend(alert_inputs(expr));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for expr in dashboard
        .iter()
        .chain(rules.iter().map(|(_, e)| e))
        .chain(&checks)
    {
        let expr = substitute(expr);
        for name in metric_names(&expr) {
            assert!(
                known.contains(&name),
                "{expr} names {name}, which headroom does not export (exported: {known:?})"
            );
        }
        let answer = query(&prom_url, &expr).await;
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
    }
    for expr in &checks {
        let expr = substitute(expr);
        while !has_data(&query(&prom_url, &expr).await) {
            assert!(Instant::now() < deadline, "no data for {expr}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    traffic.abort();
    app.stop().await;
    drop(prom);
    drop(am);
}

#[test]
fn alert_inputs_set_thresholds_matchers_and_absent_aside() {
    assert_eq!(
        alert_inputs("headroom:column_used_ratio:unsilenced >= 0.85 <= 1"),
        ["headroom:column_used_ratio:unsilenced"]
    );
    assert_eq!(
        alert_inputs(
            "headroom:column_used_ratio:unsilenced and on (shard, schema, table, column, kind) (headroom:column_status:unsilenced == 2) unless on (shard, schema, table, column, kind) (headroom:column_time_status:unsilenced == 2)"
        ),
        [
            "headroom:column_used_ratio:unsilenced",
            "headroom:column_status:unsilenced",
            "headroom:column_time_status:unsilenced"
        ]
    );
    assert_eq!(
        alert_inputs("headroom_source_used_ratio and on (source) (headroom_source_status >= 2)"),
        ["headroom_source_used_ratio", "headroom_source_status"]
    );
    assert_eq!(
        alert_inputs("up{job=\"headroom\"} == 0 or on () absent(up{job=\"headroom\"})"),
        ["up{job=\"headroom\"}"]
    );
}

#[test]
fn the_compose_demo_seeds_the_same_schema_as_the_sandbox() {
    let sql = std::fs::read_to_string(repo("config/compose/shard.sql")).expect("shard.sql");
    assert!(sql.contains(headroom_sandbox::ETSY_SCHEMA_SQL.trim_start()));
    assert!(sql.contains("GRANT SELECT ON etsy.* TO 'headroom'@'%';"));
}
