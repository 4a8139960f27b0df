//! The test harness: throwaway MariaDB servers (see `headroom_sandbox`), an Etsy-like
//! cluster of two shards and a Flickr ticket pair, and `spawn_app` that runs a real
//! headroom on port 0 against them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::sync::Arc;

use headroom::config::{self, Settings};
use headroom::metrics::Metrics;
use headroom::poller::Poller;
use headroom::startup::App;
use headroom::state::Store;
use headroom_sandbox::{self as sandbox, MariaDb};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Where the ticket pair starts: just below 2^31 − 1, so a few tickets cross it.
pub const TICKET_START: u64 = 2_147_483_000;

/// Runs `headroom <command> --config <toml> args...` (the built binary, the configuration in
/// a temporary file): exit code, stdout, stderr.
pub fn headroom(command: &str, toml: &str, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("headroom.toml");
    std::fs::write(&path, toml).expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_headroom"))
        .arg(command)
        .arg("--config")
        .arg(&path)
        .args(args)
        .output()
        .expect("running headroom");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts servers on this (the test's) thread; panics naming the one that failed.
pub fn start_servers(names: &[&str]) -> Vec<MariaDb> {
    sandbox::start_many(names).unwrap_or_else(|e| panic!("starting {names:?}: {e}"))
}

/// Two Etsy-like shards and a ticket pair whose counters sit at [`TICKET_START`].
pub struct Cluster {
    pub shards: Vec<MariaDb>,
    pub tickets: Vec<MariaDb>,
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::start_at(TICKET_START)
    }

    /// As [`Cluster::start`], with the ticket counters at `start`.
    pub fn start_at(start: u64) -> Cluster {
        let mut servers = start_servers(&["shard-01", "shard-02", "ticket-a", "ticket-b"]);
        let tickets = servers.split_off(2);
        for shard in &servers {
            shard
                .exec(sandbox::ETSY_SCHEMA_SQL)
                .expect("seeding etsy schema");
        }
        for (i, t) in tickets.iter().enumerate() {
            t.exec(&sandbox::ticket_server_sql(i as u8 + 1, start))
                .expect("seeding ticket server");
        }
        Cluster {
            shards: servers,
            tickets,
        }
    }

    /// Hands out `n` tickets on each server; returns the last ID each one handed out.
    pub fn hand_out(&self, n: usize) -> Vec<u64> {
        self.tickets
            .iter()
            .map(|t| sandbox::hand_out_tickets(t, n).expect("handing out tickets"))
            .collect()
    }

    /// A configuration for this cluster; `extra` is appended (more TOML).
    pub fn toml(&self, extra: &str) -> String {
        let head = "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"1s\"\nquery_timeout = \"2s\"\n";
        sandbox::cluster_toml(head, &self.shards, &self.tickets) + extra
    }
}

/// Parses TOML into settings, panicking with every problem listed.
pub fn settings(toml: &str) -> Settings {
    settings_with_env(toml, &[])
}

pub fn settings_with_env(toml: &str, env: &[(&str, &str)]) -> Settings {
    let vars: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut settings =
        config::from_toml_str(toml, &|name| vars.get(name).cloned()).unwrap_or_else(|problems| {
            panic!(
                "config problems:\n{}",
                problems
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
    if !toml.contains("[state]") {
        // The default state path is relative to the working directory, which every test
        // shares: give each app its own, so that no test reads another's saved histories.
        settings.state_path = private_dir().join("headroom-state.json");
    }
    settings
}

/// A directory of its own for each call, under one temporary directory per test process
/// (a static is never dropped: it stays in the system's temporary directory).
fn private_dir() -> std::path::PathBuf {
    static ROOT: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let root = ROOT.get_or_init(|| tempfile::tempdir().expect("tempdir"));
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    root.path().join(format!("app-{n}"))
}

/// A poller (no HTTP) for `toml`, with the store it writes to.
pub fn poller(toml: &str) -> (Poller, Store) {
    let settings = Arc::new(settings(toml));
    let store = Store::new(&settings);
    let poller = Poller::new(Arc::clone(&settings), store.clone()).expect("poller");
    (poller, store)
}

/// Polls once with a fresh poller and returns the store.
pub async fn poll_once(toml: &str) -> Store {
    let (poller, store) = poller(toml);
    poller.poll_once().await;
    poller.close().await;
    store
}

/// A headroom running in this process on a free port.
pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Store,
    pager: Option<std::sync::Arc<headroom::pager::Pager>>,
    metrics: std::sync::Arc<Metrics>,
    pub token: CancellationToken,
    pub handle: JoinHandle<anyhow::Result<()>>,
    client: reqwest::Client,
}

pub async fn spawn_app(settings: Settings) -> TestApp {
    spawn_built(App::build(settings).await.expect("building the app"))
}

/// Runs an app already built (e.g. made reloadable).
pub fn spawn_built(app: App) -> TestApp {
    let addr = app.local_addr();
    let store = app.store();
    let pager = app.pager();
    let metrics = app.metrics();
    let token = CancellationToken::new();
    let handle = tokio::spawn(app.run(token.clone()));
    TestApp {
        addr,
        store,
        pager,
        metrics,
        token,
        handle,
        client: reqwest::Client::new(),
    }
}

impl TestApp {
    /// POST with an empty body, returning the status and the parsed JSON body.
    pub async fn post_json(&self, path: &str) -> (u16, Value) {
        let resp = self.client.post(self.url(path)).send().await.expect("POST");
        let status = resp.status().as_u16();
        let body = resp.text().await.expect("body");
        let value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path} did not return JSON ({e}): {body}"));
        (status, value)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// GET returning the status and the parsed JSON body.
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let resp = self.client.get(self.url(path)).send().await.expect("GET");
        let status = resp.status().as_u16();
        let body = resp.text().await.expect("body");
        let value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path} did not return JSON ({e}): {body}"));
        (status, value)
    }

    /// GET returning the status and the raw text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let resp = self.client.get(self.url(path)).send().await.expect("GET");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    }

    /// Waits until every shard has been polled once (`/readyz` is 200).
    pub async fn wait_ready(&self) {
        self.wait_until("every shard polled", |app| {
            let store = app.store.clone();
            async move { store.ready() }
        })
        .await;
    }

    /// Waits (up to 30 s) until `check` holds; panics naming `what` otherwise.
    pub async fn wait_until<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn(&TestApp) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !check(self).await {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The pager (the configuration must have a notifier).
    pub fn pager(&self) -> std::sync::Arc<headroom::pager::Pager> {
        self.pager.clone().expect("a notifier is configured")
    }

    /// /metrics as the app renders it, without HTTP (for use inside sync closures).
    pub fn metrics_text(&self) -> String {
        self.metrics.render(&self.store.read())
    }

    /// Stops the app and returns how long it took.
    pub async fn stop(self) -> Duration {
        let started = Instant::now();
        self.token.cancel();
        self.handle
            .await
            .expect("app task")
            .expect("app ran without error");
        started.elapsed()
    }
}

/// The column `schema.table.column` on `shard` in an /api/columns document.
pub fn find_column<'a>(doc: &'a Value, shard: &str, name: &str) -> &'a Value {
    let parts: Vec<&str> = name.split('.').collect();
    doc["columns"]
        .as_array()
        .expect("columns array")
        .iter()
        .find(|c| {
            c["shard"] == shard
                && c["schema"] == parts[0]
                && c["table"] == parts[1]
                && c["column"] == parts[2]
        })
        .unwrap_or_else(|| panic!("{shard} {name} not in {doc:#}"))
}

/// The value of the sample of `metric` whose labels include every pair in `labels`.
pub fn metric_value(text: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{metric}{{")) || l.starts_with(&format!("{metric} ")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
