//! Fleets written once and changed without a restart: `{N..M}` ranges, `[include]` files,
//! and reloads (`POST /-/reload`, SIGHUP) on real MariaDB.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use headroom::config;
use headroom::reload;
use headroom::startup::App;
use headroom_sandbox::MariaDb;
use headroom_sandbox::pagerduty::Receiver;

use crate::harness::{TestApp, find_column, metric_value, spawn_built, start_servers};

/// `keep.orders.id` INT at 2e9 (critical); `gone.t.id` and `added.t.id` small; a schema
/// with a hostile name.
fn seeded(name: &str) -> Vec<MariaDb> {
    let servers = start_servers(&[name]);
    servers[0]
        .exec(
            "CREATE DATABASE keep; CREATE DATABASE gone; CREATE DATABASE added;
CREATE DATABASE `we{table}ird`;
CREATE TABLE keep.orders (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=2000000000;
CREATE TABLE gone.t (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=10;
CREATE TABLE added.t (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=20;
CREATE TABLE `we{table}ird`.t (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=30;",
        )
        .expect("seed");
    servers
}

/// The head of every configuration here: port 0, a fast poll, the state in `dir`.
fn head(dir: &Path) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"300ms\"\nquery_timeout = \"2s\"\n\
         [state]\npath = \"{}\"\n",
        dir.join("state.json").display()
    )
}

/// A `[[shards]]` entry watching `schema` on `server`.
fn shard(name: &str, server: &MariaDb, schema: &str) -> String {
    format!(
        "[[shards]]\nname = \"{name}\"\nurl = \"{}\"\nschemas = [\"{schema}\"]\n",
        server.url("root", None)
    )
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write config");
}

/// headroom from the file at `path`, reloadable, `POST /-/reload` on when `lifecycle`.
async fn app_from(path: &Path, lifecycle: bool) -> TestApp {
    let settings = config::load(path).expect("configuration");
    let app = App::build(settings).await.expect("building the app");
    let source = reload::Source {
        path: path.to_path_buf(),
        overrides: Default::default(),
    };
    spawn_built(app.reloadable(source, lifecycle))
}

fn shard_names(app: &TestApp) -> Vec<String> {
    app.store
        .read()
        .shards
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

/// Waits until shard `name` has finished `n` more polls.
async fn polls_of(app: &TestApp, name: &str, n: u64) {
    let count = |app: &TestApp| {
        app.store
            .read()
            .shards
            .iter()
            .find(|s| s.name == name)
            .map_or(0, |s| s.polls)
    };
    let target = count(app) + n;
    app.wait_until(&format!("{n} more polls of {name}"), |app| {
        let done = count(app) >= target;
        async move { done }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_and_an_included_file_give_shards_that_are_each_polled() {
    let servers = seeded("ranges");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("conf.d")).expect("mkdir");
    let url = servers[0].url("root", None);
    let base = url.trim_end_matches('/');
    // The database in the URL path differs per shard: one server, two shards.
    let main = format!(
        "{}[include]\nfiles = [\"conf.d/*.toml\"]\n\
         [[shards]]\nname = \"r-{{01..02}}\"\nurl = \"{base}/keep_{{01..02}}\"\nschemas = [\"keep\"]\n",
        head(dir.path())
    );
    // The databases the URLs name must exist to connect.
    servers[0]
        .exec("CREATE DATABASE keep_01; CREATE DATABASE keep_02;")
        .expect("databases");
    write(&dir.path().join("headroom.toml"), &main);
    write(
        &dir.path().join("conf.d/a.toml"),
        &shard("inc-{1..1}", &servers[0], "we{table}ird"),
    );
    let app = app_from(&dir.path().join("headroom.toml"), false).await;
    app.wait_ready().await;
    assert_eq!(shard_names(&app), ["r-01", "r-02", "inc-1"]);
    let (_, shards) = app.get_json("/api/shards").await;
    let rows: Vec<(String, bool, String)> = shards["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| {
            let url = s["url"].as_str().unwrap_or("").to_string();
            let db = url.rsplit('/').next().unwrap_or("").to_string();
            (
                s["name"].as_str().unwrap_or("").to_string(),
                s["up"] == true,
                db,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("r-01".to_string(), true, "keep_01".to_string()),
            ("r-02".to_string(), true, "keep_02".to_string()),
            ("inc-1".to_string(), true, String::new()),
        ]
    );
    let (_, columns) = app.get_json("/api/columns").await;
    for s in ["r-01", "r-02"] {
        assert_eq!(
            find_column(&columns, s, "keep.orders.id")["current"],
            2_000_000_000u64
        );
    }
    assert_eq!(
        find_column(&columns, "inc-1", "we{table}ird.t.id")["current"],
        30
    );
    app.stop().await;
}

/// The configuration of the reload test: `keep` and `gone`, or `keep` and `added`.
fn reload_config(dir: &Path, server: &MariaDb, hook: &str, second: (&str, &str)) -> String {
    format!(
        "{}[webhook]\nurl = \"{hook}\"\nretry_initial = \"50ms\"\n{}{}",
        head(dir),
        shard("keep", server, "keep"),
        shard(second.0, server, second.1)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_and_removes_shards_and_those_that_stay_keep_their_state() {
    let servers = seeded("reload");
    let hook = Receiver::start_webhook(0).await.expect("webhook");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("headroom.toml");
    write(
        &path,
        &reload_config(dir.path(), &servers[0], &hook.hook_url(), ("gone", "gone")),
    );
    let app = app_from(&path, true).await;
    let key = "headroom/column/keep/keep.orders.id";
    let triggers = || {
        hook.events()
            .iter()
            .filter(|e| e["action"] == "trigger" && e["dedup_key"] == key)
            .count()
    };
    // keep.orders grows between polls, so that it has a growth forecast.
    let grow = || {
        servers[0]
            .exec("INSERT INTO keep.orders () VALUES (), (), (), ();")
            .expect("insert");
    };
    let mut grown = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !grown || triggers() == 0 {
        assert!(Instant::now() < deadline, "no forecast or no trigger");
        grow();
        polls_of(&app, "keep", 1).await;
        let (_, doc) = app.get_json("/api/columns?shard=keep").await;
        grown = find_column(&doc, "keep", "keep.orders.id")["growth_per_second"]
            .as_f64()
            .is_some_and(|rate| rate > 0.0);
    }
    polls_of(&app, "gone", 1).await;
    assert!(app.metrics_text().contains("shard=\"gone\""));
    let history = "/api/columns/keep/keep/orders/id/history";
    let (_, before) = app.get_json(history).await;
    let held = before["points"].as_array().map_or(0, Vec::len);
    assert!(held >= 2, "{before}");

    write(
        &path,
        &reload_config(
            dir.path(),
            &servers[0],
            &hook.hook_url(),
            ("added", "added"),
        ),
    );
    let (status, body) = app.post_json("/-/reload").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "reloaded");
    assert_eq!(shard_names(&app), ["keep", "added"]);
    // The histories stayed in place, readable from a request; the removed shard's went.
    let (_, after) = app.get_json(history).await;
    assert!(
        after["points"].as_array().map_or(0, Vec::len) >= held,
        "{before} then {after}"
    );
    assert!(
        !app.store
            .histories()
            .lock()
            .expect("histories")
            .contains_key("gone")
    );

    // The first poll of `keep` under the new configuration still forecasts: its history
    // was handed over (a fresh one has a single sample and no rate).
    polls_of(&app, "keep", 1).await;
    let (_, doc) = app.get_json("/api/columns?shard=keep").await;
    let c = find_column(&doc, "keep", "keep.orders.id");
    assert!(c["growth_per_second"].as_f64().unwrap_or(0.0) > 0.0, "{c}");
    polls_of(&app, "added", 1).await;
    let (_, doc) = app.get_json("/api/columns").await;
    assert_eq!(find_column(&doc, "added", "added.t.id")["current"], 20);
    assert!(
        doc["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .all(|c| c["shard"] != "gone"),
        "{doc}"
    );
    let (_, shards) = app.get_json("/api/shards").await;
    assert_eq!(shards["shards"].as_array().expect("shards").len(), 2);
    let text = app.get_text("/metrics").await.1;
    assert!(!text.contains("shard=\"gone\""), "{text}");
    assert_eq!(
        metric_value(&text, "headroom_shard_up", &[("shard", "added")]),
        Some(1.0)
    );
    // The open incident of `keep` stayed open: no second trigger, no resolve.
    polls_of(&app, "keep", 2).await;
    assert_eq!(triggers(), 1);
    assert!(hook.events().iter().all(|e| e["action"] == "trigger"));
    assert_eq!(
        metric_value(&text, "headroom_config_last_reload_successful", &[]),
        Some(1.0)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_is_rejected_whole_and_the_running_one_keeps_polling() {
    let servers = seeded("reject");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("headroom.toml");
    let good = format!("{}{}", head(dir.path()), shard("keep", &servers[0], "keep"));
    write(&path, &good);
    let app = app_from(&path, true).await;
    app.wait_ready().await;
    let text = app.get_text("/metrics").await.1;
    let started = metric_value(
        &text,
        "headroom_config_last_reload_success_timestamp_seconds",
        &[],
    )
    .expect("set at start");
    assert!(started > 1.7e9, "{started}");

    // Two problems, in two keys; and new shards that must not start.
    write(
        &path,
        &format!(
            "{}{}",
            good.replace("interval = \"300ms\"", "interval = \"often\""),
            shard("new-{1..2}", &servers[0], "added").replace("schemas", "schemaz")
        ),
    );
    let (status, body) = app.post_json("/-/reload").await;
    assert_eq!(status, 500, "{body}");
    let problems: Vec<&str> = body["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("shards[1].schemaz: unknown key")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("poll.interval")),
        "{problems:?}"
    );
    assert_eq!(shard_names(&app), ["keep"]);
    polls_of(&app, "keep", 2).await;
    let text = app.get_text("/metrics").await.1;
    assert_eq!(
        metric_value(&text, "headroom_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert_eq!(
        metric_value(
            &text,
            "headroom_config_last_reload_success_timestamp_seconds",
            &[]
        ),
        Some(started)
    );

    // [server] changes are kept as they run, with a warning.
    write(&path, &good.replace("127.0.0.1:0", "127.0.0.1:1"));
    let (status, body) = app.post_json("/-/reload").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["warnings"][0],
        "[server] changed: it takes a restart; the running values are kept"
    );
    let text = app.get_text("/metrics").await.1;
    assert_eq!(
        metric_value(&text, "headroom_config_last_reload_successful", &[]),
        Some(1.0)
    );
    app.stop().await;
}

/// A huge file matched by `[include] files` is refused by its size before it is read: the
/// reload fails naming it, quickly, and the running configuration keeps polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_included_file_over_the_size_limit_is_refused_by_name_and_the_running_one_stays() {
    let servers = seeded("huge");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("conf.d")).expect("mkdir");
    let path = dir.path().join("headroom.toml");
    let good = format!(
        "{}[include]\nfiles = [\"conf.d/*.toml\"]\n{}",
        head(dir.path()),
        shard("keep", &servers[0], "keep")
    );
    write(&path, &good);
    let app = app_from(&path, true).await;
    app.wait_ready().await;
    // 512 MiB, sparse: it takes no disk, and would take gigabytes of memory to parse.
    let huge = std::fs::File::create(dir.path().join("conf.d/huge.toml")).expect("create");
    huge.set_len(512 * 1024 * 1024).expect("size");
    let (status, body) = app.post_json("/-/reload").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body["problems"],
        serde_json::json!([
            "include.files[0]: cannot read conf.d/huge.toml: 536870912 bytes, over the limit of 4 MiB for a configuration file"
        ])
    );
    assert_eq!(shard_names(&app), ["keep"]);
    polls_of(&app, "keep", 2).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reload_endpoint_is_forbidden_without_the_lifecycle_flag_and_never_a_get() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("headroom.toml");
    write(
        &path,
        &format!(
            "{}[[shards]]\nname = \"a\"\nurl = \"mysql://m@127.0.0.1:1/\"\n",
            head(dir.path())
        ),
    );
    let app = app_from(&path, false).await;
    let (status, body) = app.post_json("/-/reload").await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"],
        "the lifecycle API is not enabled: start headroom with --web.enable-lifecycle"
    );
    let (status, body) = app.get_json("/-/reload").await;
    assert_eq!(status, 405);
    assert_eq!(
        body["error"],
        "method GET is not allowed here: /-/reload answers POST"
    );
    app.stop().await;
}

/// `GET path` on `127.0.0.1:port`: the status and the body.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

#[test]
fn sighup_reloads_the_configuration_of_the_running_binary() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let dir = tempfile::tempdir().expect("tempdir");
    let path: PathBuf = dir.path().join("headroom.toml");
    let config = |shards: &str| {
        format!(
            "{}{shards}",
            head(dir.path()).replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
        )
    };
    let one = "[[shards]]\nname = \"a\"\nurl = \"mysql://m@127.0.0.1:1/\"\n";
    write(&path, &config(one));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_headroom"))
        .args(["run", "--config"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("headroom run");
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // Ready: the signal handlers are installed before the listener answers.
    wait("/readyz", &|| {
        http_get(port, "/readyz").is_some_and(|(s, _)| s == 200)
    });
    write(
        &path,
        &config(&format!(
            "{one}[[shards]]\nname = \"b-{{1..2}}\"\nurl = \"mysql://m@127.0.0.1:1/\"\n"
        )),
    );
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGHUP);
    }
    wait("the new shards", &|| {
        http_get(port, "/api/shards").is_some_and(|(_, body)| {
            body.contains("\"name\":\"b-1\"") && body.contains("\"name\":\"b-2\"")
        })
    });
    assert!(child.try_wait().expect("wait").is_none(), "still running");
    // SAFETY: as above.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}");
}
