//! The pager's state file under faults: a file headroom may not read (refused, left
//! untouched), a corrupt one (kept aside), an absent one (fresh start), a symlink planted at
//! the old temporary path (not followed), a directory it cannot write (/readyz 503 until a
//! write succeeds), and deliveries journalled after a snapshot surviving a restart.
//!
//! The shards here are down (nothing listens on their port): after `blind_after = "1ms"`
//! each one pages as blind, which gives the pager events without any database.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use headroom_sandbox::pagerduty::{Mode, Receiver};
use serde_json::Value;

use crate::harness::{TestApp, metric_value, settings, spawn_app};

const BIN: &str = env!("CARGO_BIN_EXE_headroom");
const NOWHERE: &str = "http://127.0.0.1:9/hook";

/// Two shards that are down, a webhook to `hook`, the state at `state`.
fn toml(state: &Path, hook: &str, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\
         [poll]\ninterval = \"300ms\"\nquery_timeout = \"1s\"\n\
         [state]\npath = \"{}\"\n\
         [webhook]\nurl = \"{hook}\"\nretry_initial = \"50ms\"\nretry_max = \"200ms\"\n{extra}\n\
         [[shards]]\nname = \"s1\"\nurl = \"mysql://root@127.0.0.1:1\"\n\
         [[shards]]\nname = \"s2\"\nurl = \"mysql://root@127.0.0.1:1\"\n",
        state.display()
    )
}

/// Runs `headroom run` on `config` (as `uid` if given) until it exits; `None` if it still
/// runs after 30 s (then it is killed).
fn run_until_exit(config: &Path, uid: Option<u32>) -> (Option<i32>, String) {
    // Another user may not reach the build's directory (a checkout under a private
    // directory): run a copy from a directory anyone can read.
    let copy = tempfile::tempdir().expect("tempdir");
    let program = match uid {
        None => PathBuf::from(BIN),
        Some(_) => {
            use std::os::unix::fs::PermissionsExt;
            let program = copy.path().join("headroom");
            std::fs::copy(BIN, &program).expect("copy the binary");
            for path in [copy.path(), program.as_path()] {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod");
            }
            program
        }
    };
    let mut command = Command::new(&program);
    command
        .arg("run")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(uid) = uid {
        use std::os::unix::process::CommandExt;
        command.uid(uid).gid(uid);
    }
    let mut child = command.spawn().expect("spawn headroom run");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (code, reader.join().expect("stderr reader"))
}

fn write_config(dir: &Path, state: &Path) -> PathBuf {
    let config = dir.join("headroom.toml");
    std::fs::write(&config, toml(state, NOWHERE, "")).expect("config");
    config
}

/// Every name in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn run_exits_2_when_a_directory_is_at_the_state_path_and_leaves_it_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    std::fs::create_dir(&state).expect("dir at the path");
    std::fs::write(state.join("inside"), "x").expect("inside");
    let config = write_config(dir.path(), &state);
    let (code, stderr) = run_until_exit(&config, None);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot read the state file {}: Is a directory",
            state.display()
        )),
        "{stderr}"
    );
    assert_eq!(names(dir.path()), ["headroom.toml", "state.json"]);
    assert_eq!(names(&state), ["inside"]);
    assert_eq!(
        std::fs::read_to_string(state.join("inside")).expect("inside"),
        "x"
    );
}

#[test]
fn run_exits_2_when_the_state_path_is_under_a_file_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"{\"bytes\": [0, 1, 2]}\n").expect("file");
    let state = file.join("state.json");
    let config = write_config(dir.path(), &state);
    let (code, stderr) = run_until_exit(&config, None);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot read the state file {}: Not a directory",
            state.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&file).expect("file"),
        b"{\"bytes\": [0, 1, 2]}\n"
    );
    assert_eq!(names(dir.path()), ["headroom.toml", "not-a-dir"]);
}

#[test]
fn run_exits_2_on_a_state_file_it_may_not_read_and_leaves_it_byte_for_byte() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    // Root reads through any mode: as root, run headroom as nobody.
    let uid = (unsafe { libc::geteuid() } == 0).then_some(65534);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let state = dir.path().join("state.json");
    let saved = br#"{"version":1,"seq":12,"notifiers":{"webhook":{"incidents":{},"outbox":[]}}}"#;
    std::fs::write(&state, saved).expect("state");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let config = write_config(dir.path(), &state);
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let (code, stderr) = run_until_exit(&config, uid);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot read the state file {}: Permission denied",
            state.display()
        )),
        "{stderr}"
    );
    assert_eq!(names(dir.path()), ["headroom.toml", "state.json"]);
    let mode = std::fs::metadata(&state)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0);
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_eq!(std::fs::read(&state).expect("state"), saved);
}

/// As [`TestApp::wait_until`], for a check that needs the app across an await.
async fn until(app: &TestApp, what: &str, check: impl AsyncFn(&TestApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check(app).await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn state_metrics(app: &TestApp) -> (Option<f64>, Option<f64>) {
    let (_, text) = app.get_text("/metrics").await;
    (
        metric_value(&text, "headroom_state_save_errors_total", &[]),
        metric_value(
            &text,
            "headroom_state_last_save_success_timestamp_seconds",
            &[],
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_state_file_is_kept_aside_and_headroom_starts_fresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    std::fs::write(&state, "{\"version\": 1, \"notif").expect("corrupt");
    // One kept from an earlier start: not overwritten.
    std::fs::write(dir.path().join("state.json.corrupt"), "earlier").expect("earlier");
    let app = spawn_app(settings(&toml(&state, NOWHERE, ""))).await;
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state.json.corrupt.1")).expect("kept"),
        "{\"version\": 1, \"notif"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state.json.corrupt")).expect("earlier"),
        "earlier"
    );
    app.wait_ready().await;
    let (status, incidents) = app.get_json("/api/incidents").await;
    assert_eq!(status, 200);
    assert_eq!(incidents["notifiers"][0]["open"], serde_json::json!([]));
    assert_eq!(incidents["notifiers"][0]["undelivered"], 0);
    assert_eq!(app.get_json("/readyz").await.0, 200);
    assert_eq!(state_metrics(&app).await, (Some(0.0), None));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_state_file_is_a_fresh_start_that_writes_nothing_until_a_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let app = spawn_app(settings(&toml(&state, NOWHERE, ""))).await;
    app.wait_ready().await;
    let (_, incidents) = app.get_json("/api/incidents").await;
    assert_eq!(incidents["notifiers"][0]["open"], serde_json::json!([]));
    assert_eq!(incidents["notifiers"][0]["undelivered"], 0);
    assert_eq!(app.get_json("/readyz").await.0, 200);
    // The shards are not blind before 15 minutes (the default): nothing to write.
    assert_eq!(state_metrics(&app).await, (Some(0.0), None));
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_planted_at_the_old_temporary_path_is_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let target = dir.path().join("target");
    std::fs::write(&target, "precious").expect("target");
    std::os::unix::fs::symlink(&target, dir.path().join("state.json.tmp")).expect("symlink");
    let app = spawn_app(settings(&toml(&state, NOWHERE, "blind_after = \"1ms\""))).await;
    app.wait_until("both blind pages saved", |_| {
        let state = state.clone();
        async move {
            std::fs::read_to_string(&state).is_ok_and(|t| {
                t.contains("\"headroom/blind/s1\"") && t.contains("\"headroom/blind/s2\"")
            })
        }
    })
    .await;
    app.stop().await;
    assert_eq!(
        std::fs::read_to_string(&target).expect("target"),
        "precious"
    );
    assert_eq!(
        names(dir.path()),
        [
            "state.json",
            "state.json.history",
            "state.json.tmp",
            "target"
        ],
        "no temporary file left behind"
    );
    assert!(
        std::fs::symlink_metadata(dir.path().join("state.json.tmp"))
            .expect("stat")
            .file_type()
            .is_symlink()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_state_directory_makes_readyz_503_naming_it_until_a_write_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    // /proc takes no new file, even from root.
    let state_dir = dir.path().join("d");
    std::os::unix::fs::symlink("/proc", &state_dir).expect("symlink");
    let state = state_dir.join("state.json");
    let app = spawn_app(settings(&toml(&state, NOWHERE, "blind_after = \"1ms\""))).await;
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "state file not writable");
    // The start-up check's finding, unless the first poll (its shard refuses at once) has
    // already queued a page whose save failed and said so.
    let error = body["error"].as_str().unwrap_or("");
    assert!(
        error
            == format!(
                "the state directory {} is not writable: No such file or directory (os error 2)",
                state_dir.display()
            )
            || error.starts_with(&format!(
                "cannot write the state file {}: ",
                state.display()
            )),
        "{body}"
    );
    // The pages queued meanwhile cannot be saved: still 503, naming the file.
    until(&app, "a failed save", async |app| {
        state_metrics(app).await.0 >= Some(1.0)
    })
    .await;
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").starts_with(&format!(
            "cannot write the state file {}: ",
            state.display()
        )),
        "{body}"
    );
    assert_eq!(state_metrics(&app).await.1, None, "never written");

    std::fs::remove_file(&state_dir).expect("unlink");
    std::fs::create_dir(&state_dir).expect("mkdir");
    let before = Utc::now().timestamp_millis() as f64 / 1000.0;
    until(&app, "ready again", async |app| {
        app.get_json("/readyz").await.0 == 200
    })
    .await;
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("written")).expect("json");
    assert_eq!(
        saved["notifiers"]["webhook"]["outbox"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "both blind pages, queued while the directory was unwritable"
    );
    let (errors, last) = state_metrics(&app).await;
    assert!(last >= Some(before), "{last:?} >= {before}");
    app.stop().await;
    assert!(errors >= Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_after_a_snapshot_survive_a_restart_and_are_not_sent_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let journal = dir.path().join("state.json.journal");
    let first_hook = Receiver::start_webhook(0).await.expect("receiver");
    // One event a minute: the first blind page goes out, the second waits.
    let started = Utc::now().timestamp_millis() as f64 / 1000.0;
    let first = spawn_app(settings(&toml(
        &state,
        &first_hook.hook_url(),
        "blind_after = \"1ms\"\nmax_events_per_minute = 1",
    )))
    .await;
    // The shards are polled on their own schedules, so the second blind page may be queued
    // (and the journal folded into a new snapshot) before or after the first delivery: what
    // is on disk must say, either way, that one page went out and one waits.
    let undelivered_on_disk = || -> Option<(usize, usize)> {
        let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).ok()?).ok()?;
        let outbox = saved["notifiers"]["webhook"]["outbox"].as_array()?.len();
        let open = saved["notifiers"]["webhook"]["incidents"]
            .as_object()?
            .len();
        let taken = std::fs::read_to_string(&journal)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        Some((outbox.checked_sub(taken)?, open))
    };
    first
        .wait_until("one delivery on disk, one page waiting", |_| {
            let done = first_hook.events().len() == 1 && undelivered_on_disk() == Some((1, 2));
            async move { done }
        })
        .await;
    let (errors, last) = state_metrics(&first).await;
    let now = Utc::now().timestamp_millis() as f64 / 1000.0;
    assert_eq!(errors, Some(0.0));
    assert!(
        last.is_some_and(|t| started <= t && t <= now),
        "{started} <= {last:?} <= {now}"
    );
    first.stop().await;
    let delivered: Vec<Value> = first_hook.events();
    assert_eq!(delivered.len(), 1);
    // Both shards are polled at once on start, so either may page first.
    let first_key = delivered[0]["dedup_key"].as_str().map(str::to_owned);
    let other_key = match first_key.as_deref() {
        Some("headroom/blind/s1") => "headroom/blind/s2",
        Some("headroom/blind/s2") => "headroom/blind/s1",
        other => panic!("unexpected first page {other:?}"),
    };

    assert_eq!(undelivered_on_disk(), Some((1, 2)));

    // Restarted against a receiver that fails for now: only the undelivered page is queued.
    let second_hook = Receiver::start_webhook(0).await.expect("receiver");
    second_hook.set_mode(Mode::Fail);
    let second = spawn_app(settings(&toml(
        &state,
        &second_hook.hook_url(),
        "blind_after = \"1ms\"",
    )))
    .await;
    assert_eq!(second.pager().outbox_len("webhook"), 1);
    let (_, incidents) = second.get_json("/api/incidents").await;
    assert_eq!(
        incidents["notifiers"][0]["open"].as_array().map(Vec::len),
        Some(2)
    );
    second_hook.set_mode(Mode::Accept);
    second
        .wait_until("the rest delivered", |app| {
            let pager = app.pager();
            async move { pager.outbox_len("webhook") == 0 }
        })
        .await;
    second.wait_ready().await;
    second.stop().await;
    let events = second_hook.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["dedup_key"], other_key);
    assert_eq!(first_hook.events().len(), 1);
}
