//! The `headroom` binary: `check` output and exit codes, config errors, and SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Cluster, start_servers};

const BIN: &str = env!("CARGO_BIN_EXE_headroom");

fn write_config(dir: &tempfile::TempDir, toml: &str) -> std::path::PathBuf {
    let path = dir.path().join("headroom.toml");
    std::fs::write(&path, toml).expect("write config");
    path
}

fn check(config: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("check")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("running headroom check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_configuration_exits_2_listing_every_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        &dir,
        "[poll]\ninterval = \"often\"\n[[shards]]\nname = \"a\"\nurl = \"mysql://monitor:pw123@db\"\nport = 1\n",
    );
    for sub in ["check", "run"] {
        let out = Command::new(BIN)
            .args([sub, "--config"])
            .arg(&path)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{sub}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("2 problems"), "{stderr}");
        assert!(stderr.contains("poll.interval"), "{stderr}");
        assert!(stderr.contains("shards[0].port: unknown key"), "{stderr}");
        assert!(!stderr.contains("pw123"), "{stderr}");
    }
    let out = Command::new(BIN)
        .args(["check", "--config", "/nonexistent/headroom.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file"));
}

#[test]
fn check_exits_by_the_worst_status_and_prints_the_etsy_case() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().expect("tempdir");

    // Tickets below 2^31: the INT columns are at 99.99 %, the feed counter at 88 %: critical.
    let config = write_config(&dir, &cluster.toml(""));
    let (code, stdout, _) = check(&config, &[]);
    assert_eq!(code, 2, "{stdout}");
    assert!(stdout.contains("critical"), "{stdout}");
    assert!(
        !stdout.contains("shops.shop_id"),
        "ok columns are hidden by default:\n{stdout}"
    );

    // Past 2^31 − 1: the INT signed reference is exhausted.
    cluster.hand_out(400);
    let (code, stdout, _) = check(&config, &[]);
    assert_eq!(code, 2);
    let actor = stdout
        .lines()
        .find(|l| l.contains("shard-01") && l.contains("etsy.activity_feed.actor_id"))
        .unwrap_or_else(|| panic!("no actor_id line:\n{stdout}"));
    assert!(actor.starts_with("exhausted"), "{actor}");
    assert!(actor.contains("yes"), "mismatch flagged: {actor}");

    let (_, all, _) = check(&config, &["--all"]);
    assert!(all.contains("etsy.shops.shop_id"));
    let (code, json, _) = check(&config, &["--json", "--all"]);
    assert_eq!(code, 2);
    let doc: serde_json::Value = serde_json::from_str(&json).expect("json document");
    let statuses: Vec<&str> = doc["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["status"].as_str())
        .collect();
    assert!(
        statuses.contains(&"exhausted")
            && statuses.contains(&"critical")
            && statuses.contains(&"ok")
    );

    // Only a warning: raise the thresholds so 0.5 is a warning and nothing is critical.
    let quiet = write_config(
        &dir,
        &cluster
            .toml("")
            .replace(
                "[poll]",
                "[thresholds]\nwarning = 0.4\ncritical = 0.99\n[poll]",
            )
            .replace(
                "exclude = [\"etsy.teams.*\"]",
                "exclude = [\"etsy.teams.*\", \"etsy.activity_feed.*\"]",
            ),
    );
    cluster.shards[0].exec("DROP DATABASE etsy;").expect("drop");
    cluster.shards[1]
        .exec("DROP TABLE etsy.activity_feed;")
        .expect("drop");
    cluster.shards[0]
        .exec("CREATE DATABASE etsy; CREATE TABLE etsy.x (treasury_id INT UNSIGNED NOT NULL);")
        .expect("create");
    let (code, stdout, _) = check(&quiet, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.lines().skip(1).all(|l| l.starts_with("warning")),
        "{stdout}"
    );

    // All ok: a threshold no column reaches.
    let calm = write_config(
        &dir,
        &cluster.toml("").replace(
            "[poll]",
            "[thresholds]\nwarning = 0.98\ncritical = 0.99\n[poll]",
        ),
    );
    let (code, stdout, _) = check(&calm, &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("No column at warning or worse."));

    // A shard that cannot be reached makes it 2 whatever the columns say.
    let mut shards = cluster.shards;
    shards[1].stop();
    let (code, stdout, _) = check(&calm, &[]);
    assert_eq!(code, 2);
    assert!(stdout.contains("UNREACHABLE shard shard-02"), "{stdout}");
}

/// The HTTP status of `GET path` on 127.0.0.1:`port`, or `None` while nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn sigterm_stops_the_daemon_within_seconds_even_during_a_hanging_poll() {
    let mut servers = start_servers(&["hang"]);
    servers[0]
        .exec("CREATE DATABASE a; CREATE TABLE a.t (id INT AUTO_INCREMENT PRIMARY KEY);")
        .expect("seed");
    // First while the very first connection hangs, then while a poll hangs on a server
    // that froze after it had answered (a pooled connection stuck mid-query).
    for freeze_after_first_poll in [false, true] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = write_config(
            &dir,
            &format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\n[poll]\ninterval = \"1s\"\nquery_timeout = \"60s\"\n[[shards]]\nname = \"hang\"\nurl = \"{}\"\n",
                servers[0].url("root", None)
            ),
        );
        if !freeze_after_first_poll {
            servers[0].freeze();
        }
        let mut child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("headroom run");
        let deadline = Instant::now() + Duration::from_secs(30);
        let wanted = if freeze_after_first_poll { 200 } else { 503 };
        while http_status(port, "/readyz") != Some(wanted) {
            assert!(
                Instant::now() < deadline,
                "headroom never answered /readyz {wanted}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if freeze_after_first_poll {
            servers[0].freeze();
            // The next poll starts within the 1 s interval and hangs.
            std::thread::sleep(Duration::from_millis(1500));
        }
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                servers[0].thaw();
                panic!(
                    "headroom did not stop within 10s of SIGTERM (freeze after first poll: {freeze_after_first_poll})"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        servers[0].thaw();
        assert!(status.success(), "{status}");
    }
    servers[0].stop();
}

#[test]
fn passwords_stay_out_of_logs_and_output_at_every_log_level() {
    let servers = start_servers(&["secrets"]);
    servers[0]
        .exec("CREATE DATABASE a; CREATE TABLE a.t (id INT AUTO_INCREMENT PRIMARY KEY); CREATE USER 'monitor'@'127.0.0.1' IDENTIFIED BY 'r1ght-pw'; GRANT SELECT ON a.* TO 'monitor'@'127.0.0.1';")
        .expect("seed");
    let port = servers[0].port();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        &dir,
        &format!(
            "[poll]\nquery_timeout = \"5s\"\n\
             [[shards]]\nname = \"good\"\nurl = \"mysql://monitor:r1ght-pw@127.0.0.1:{port}\"\n\
             [[shards]]\nname = \"bad\"\nurl = \"mysql://monitor@127.0.0.1:{port}\"\npassword_env = \"BAD_PW\"\n"
        ),
    );
    for format in ["text", "json"] {
        let out = Command::new(BIN)
            .args(["--log-format", format, "check", "--all", "--config"])
            .arg(&config)
            .env("RUST_LOG", "trace")
            .env("BAD_PW", "wr0ng-pw")
            .output()
            .expect("headroom check");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "the bad shard is unreachable");
        assert!(
            stdout.contains("a.t.id"),
            "the good shard is read: {stdout}"
        );
        assert!(stderr.contains("access denied"), "{stderr}");
        for text in [&stdout, &stderr] {
            assert!(
                !text.contains("r1ght-pw") && !text.contains("wr0ng-pw"),
                "{format}: {text}"
            );
        }
    }
}

#[test]
fn check_names_an_unreachable_shard_once_with_the_reason() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        &dir,
        &format!("[[shards]]\nname = \"closed\"\nurl = \"mysql://monitor@127.0.0.1:{port}\"\n"),
    );
    let (code, stdout, _) = check(&config, &[]);
    assert_eq!(code, 2);
    assert_eq!(
        stdout,
        "No column at warning or worse.\nUNREACHABLE shard closed: connecting: connection refused\n"
    );
}

#[test]
fn run_on_a_listen_address_already_in_use_exits_2_saying_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        &dir,
        &format!(
            "[server]\nlisten = \"{addr}\"\n[[shards]]\nname = \"a\"\nurl = \"mysql://monitor@127.0.0.1:1\"\n"
        ),
    );
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("headroom run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "headroom: cannot listen on {addr}: the address is already in use"
        )),
        "{stderr}"
    );
    drop(taken);
}

#[test]
fn check_leaves_the_daemons_history_file_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        &dir,
        "[[shards]]\nname = \"closed\"\nurl = \"mysql://monitor@127.0.0.1:1\"\n",
    );
    let history = dir.path().join("headroom-state.json.history");
    std::fs::write(&history, "{ not json").expect("history");
    let (code, _, stderr) = check(&config, &[]);
    assert_eq!(code, 2);
    assert_eq!(
        std::fs::read_to_string(&history).expect("still there"),
        "{ not json"
    );
    assert!(
        !dir.path()
            .join("headroom-state.json.history.corrupt")
            .exists()
    );
    assert!(!stderr.contains("History file"), "{stderr}");
}

#[test]
fn a_member_that_is_not_i_of_n_exits_2_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        &dir,
        "[[shards]]\nname = \"a\"\nurl = \"mysql://m@127.0.0.1:1\"\n",
    );
    for member in ["3/3", "one/3", "1"] {
        for sub in ["check", "run"] {
            let out = Command::new(BIN)
                .args([sub, "--member", member, "--config"])
                .arg(&path)
                .output()
                .expect("run");
            assert_eq!(out.status.code(), Some(2), "{sub} {member}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("--member"), "{stderr}");
            assert!(stderr.contains(&format!("'{member}'")), "{stderr}");
        }
    }
}
