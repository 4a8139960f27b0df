//! The pages in a real browser: Debian's `chromium`, headless, loads the pages of a running
//! headroom that watches a real MariaDB shard holding a critical column and a table and a
//! column with hostile names. It checks the rendered DOM (the column is there; the hostile
//! names are text, no element of theirs), that the page asked nothing of another host (the
//! browser's own network log: every request the page made went to headroom), that the
//! page's own stylesheet and script were allowed by its policy (the script ran), and that a
//! column page draws its chart; screenshots go to `target/tmp/browser/`.
//!
//! `scripts/test.sh` installs chromium when it is missing; where it is not installed, the
//! test says so and passes without running.

use std::path::{Path, PathBuf};
use std::time::Duration;

use headroom::mysql::{ident, qualified};
use serde_json::Value;
use sqlx::{Connection, Executor};

use crate::harness::{TestApp, settings, spawn_app, start_servers};

/// A table named as markup that would run if it were not text.
const HOSTILE_TABLE: &str = "<script>alert(1)</script>";
/// A column named as an element with a handler, with a right-to-left override.
const HOSTILE_COLUMN: &str = "<img src=x onerror=alert(2)>\u{202e}di";

/// The browser: `HEADROOM_CHROMIUM`, else Debian's `/usr/bin/chromium`, else `chromium` on
/// the `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HEADROOM_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let debian = PathBuf::from("/usr/bin/chromium");
    if debian.is_file() {
        return Some(debian);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
    })
}

/// What one run of the browser left.
struct Run {
    stdout: String,
    stderr: String,
    /// The browser's network log (`--log-net-log`).
    netlog: Value,
}

/// Runs the browser headless on `url` with `args` (`--dump-dom`, `--screenshot=...`), in a
/// fresh profile, with no way to resolve any host but 127.0.0.1 and its network log kept.
async fn browse(binary: &Path, args: &[String], url: &str) -> Run {
    let dir = tempfile::tempdir().expect("a profile directory");
    let netlog = dir.path().join("netlog.json");
    let profile = dir.path().join("profile");
    let mut command = tokio::process::Command::new(binary);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--log-net-log={}", netlog.display()))
        .args(args)
        .arg(url)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .unwrap_or_else(|_| panic!("chromium did not finish with {url} within 90 s"))
        .expect("running chromium");
    assert!(
        output.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log = std::fs::read_to_string(&netlog).expect("the network log");
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        netlog: serde_json::from_str(&log).expect("the network log is JSON"),
    }
}

impl Run {
    /// The URL of every request a page of `origin` made (its initiator is the page), the
    /// navigation to it included; the browser's own requests (updates, accounts) are not
    /// the page's.
    fn requests_of(&self, origin: &str) -> Vec<String> {
        let start = self.netlog["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].clone();
        self.netlog["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["type"] == start)
            .filter_map(|e| {
                let url = e["params"]["url"].as_str()?;
                let initiator = e["params"]["initiator"].as_str().unwrap_or("");
                (initiator == origin || url.starts_with(origin)).then(|| url.to_string())
            })
            .collect()
    }

    /// Messages of the page's console about its Content-Security-Policy.
    fn policy_violations(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.contains("Content Security Policy") || l.contains("Refused to"))
            .collect()
    }
}

/// Seeds `url` (as root): `shop.orders`, 93% of INT used; the hostile table, 75%.
async fn seed(url: &str) {
    let mut conn = sqlx::MySqlConnection::connect(url)
        .await
        .expect("connecting as root");
    let statements = [
        "CREATE DATABASE shop".to_string(),
        "CREATE TABLE shop.orders (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, note CHAR(1) NOT NULL DEFAULT '') AUTO_INCREMENT = 2000000000".to_string(),
        "INSERT INTO shop.orders (note) VALUES ('a')".to_string(),
        format!(
            "CREATE TABLE {} ({} INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT = 1600000000",
            qualified("shop", HOSTILE_TABLE),
            ident(HOSTILE_COLUMN)
        ),
        format!("INSERT INTO {} VALUES (NULL)", qualified("shop", HOSTILE_TABLE)),
    ];
    for sql in statements {
        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let _ = conn.close().await;
}

/// Inserts `n` orders.
async fn order(url: &str, n: usize) {
    let mut conn = sqlx::MySqlConnection::connect(url)
        .await
        .expect("connecting");
    for _ in 0..n {
        conn.execute("INSERT INTO shop.orders (note) VALUES ('b')")
            .await
            .expect("an order");
    }
    let _ = conn.close().await;
}

/// Waits for `n` more polls of the one shard.
async fn polls(app: &TestApp, n: u64) {
    let target = app.store.read().shards[0].polls + n;
    app.wait_until("more polls", |app| {
        let polls = app.store.read().shards[0].polls;
        async move { polls >= target }
    })
    .await;
}

/// The width and height of a PNG file.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is a PNG",
        path.display()
    );
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    (be(16), be(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_fleet_and_a_column_chart_with_hostile_names_as_text_and_nothing_from_another_host()
 {
    let Some(binary) = chromium() else {
        eprintln!(
            "SKIPPED: chromium is not installed (scripts/test.sh installs Debian's chromium; or set HEADROOM_CHROMIUM)"
        );
        return;
    };
    let servers = start_servers(&["browser"]);
    let root = servers[0].url("root", None);
    seed(&root).await;
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"1s\"\nquery_timeout = \"5s\"\n\
         [[shards]]\nname = \"shard-01\"\nurl = \"{root}\"\nschemas = [\"shop\"]\n"
    );
    let app = spawn_app(settings(&toml)).await;
    app.wait_ready().await;
    // Orders keep coming: the history grows, and so does the forecast.
    for _ in 0..3 {
        order(&root, 20).await;
        polls(&app, 1).await;
    }
    let origin = format!("http://{}", app.addr);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).expect("the screenshot directory");

    // The fleet page, rendered, with the numbers of /api/columns.
    let (_, doc) = app.get_json("/api/columns?table=orders").await;
    let orders = &doc["columns"][0];
    let fleet = browse(&binary, &["--dump-dom".to_string()], &app.url("/")).await;
    let dom = &fleet.stdout;
    assert!(
        dom.contains(&format!(
            "data-current=\"{}\" data-max=\"{}\"",
            orders["current"], orders["max"]
        )),
        "{orders} in {dom}"
    );
    assert!(
        dom.contains("data-table=\"orders\""),
        "the critical column is listed: {dom}"
    );
    assert!(dom.contains("<span class=\"st st-critical\">critical</span>"));
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the hostile table is text: {dom}"
    );
    assert!(
        dom.contains("&lt;img src=x onerror=alert(2)&gt;\\u{202e}di"),
        "{dom}"
    );
    assert_eq!(
        dom.matches("<script").count(),
        1,
        "only the page's own script: {dom}"
    );
    assert!(
        !dom.contains("<img"),
        "no element of the hostile column: {dom}"
    );
    // Its own files, and nothing else, from headroom only.
    let asked = fleet.requests_of(&origin);
    assert!(asked.iter().any(|u| u.ends_with(".css")), "{asked:?}");
    assert!(asked.iter().any(|u| u.ends_with(".js")), "{asked:?}");
    let elsewhere: Vec<&String> = asked
        .iter()
        .filter(|u| !u.starts_with(&format!("{origin}/")))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "the page asked another host: {elsewhere:?}"
    );
    assert_eq!(fleet.policy_violations(), Vec::<&str>::new());

    // A column page: its chart, and its plan's copy buttons shown by the script.
    let (status, _) = app.get_json("/api/columns/shard-01/shop/orders/id").await;
    assert_eq!(
        status, 200,
        "the plan is read once, for the page to show it"
    );
    let column = browse(
        &binary,
        &["--dump-dom".to_string()],
        &app.url("/columns/shard-01/shop/orders/id"),
    )
    .await;
    let dom = &column.stdout;
    assert!(dom.contains("<svg class=\"chart\""), "{dom}");
    let line = dom
        .split("<polyline class=\"history\" points=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no history line: {dom}"));
    assert!(
        line.split(' ').count() >= 3,
        "at least three samples: {line}"
    );
    assert!(dom.contains("<line class=\"forecast\""), "{dom}");
    assert!(
        dom.contains(
            "<button class=\"copy\" type=\"button\" data-copy=\"plan-statements\">Copy</button>"
        ),
        "the script ran and showed the copy button: {dom}"
    );
    let elsewhere: Vec<String> = column
        .requests_of(&origin)
        .into_iter()
        .filter(|u| !u.starts_with(&format!("{origin}/")))
        .collect();
    assert!(elsewhere.is_empty(), "{elsewhere:?}");
    assert_eq!(column.policy_violations(), Vec::<&str>::new());

    // The hostile column's own page.
    let path = headroom::measure::page_path("shard-01", "shop", HOSTILE_TABLE, HOSTILE_COLUMN);
    let hostile = browse(&binary, &["--dump-dom".to_string()], &app.url(&path)).await;
    assert_eq!(
        hostile.stdout.matches("<script").count(),
        1,
        "{}",
        hostile.stdout
    );
    assert!(!hostile.stdout.contains("<img"));
    assert!(
        hostile
            .stdout
            .contains("&lt;img src=x onerror=alert(2)&gt;\\u{202e}di")
    );

    // Screenshots, to look at.
    for (name, page) in [
        ("fleet", "/".to_string()),
        ("column", "/columns/shard-01/shop/orders/id".to_string()),
    ] {
        let png = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&png);
        browse(
            &binary,
            &[
                format!("--screenshot={}", png.display()),
                "--window-size=1280,900".to_string(),
            ],
            &app.url(&page),
        )
        .await;
        assert_eq!(png_size(&png), (1280, 900), "{}", png.display());
    }
    app.stop().await;
}
