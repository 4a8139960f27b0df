//! The HTTP edge: header read timeout (first and later requests of a connection), the
//! connection limit, the server keys, TLS and basic auth from the web configuration file,
//! and the start-up failures of a bad web configuration file.
//!
//! These tests need a running headroom, not a database: the one shard points at a closed
//! port and is simply down.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::harness::{TestApp, settings, spawn_app};

const BIN: &str = env!("CARGO_BIN_EXE_headroom");

/// A configuration whose only shard is unreachable; `server` is added to `[server]`.
fn toml(server: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{server}\n[poll]\ninterval = \"1h\"\nquery_timeout = \"1s\"\n[[shards]]\nname = \"s1\"\nurl = \"mysql://monitor@127.0.0.1:1\"\n"
    )
}

/// Reads what has arrived without blocking; true once the server has closed the stream.
fn closed(stream: &Mutex<TcpStream>, received: &Mutex<Vec<u8>>) -> bool {
    let mut stream = stream.lock().expect("lock");
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => received.lock().expect("lock").extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(e) => panic!("reading: {e}"),
        }
    }
}

fn connect(app: &TestApp) -> TcpStream {
    let stream = TcpStream::connect(app.addr).expect("connect");
    stream.set_nonblocking(true).expect("nonblocking");
    stream
}

/// Waits until the server closes `stream`; returns what it sent before.
async fn wait_closed(app: &TestApp, what: &str, stream: TcpStream) -> String {
    let stream = Mutex::new(stream);
    let received = Mutex::new(Vec::new());
    app.wait_until(what, |_| std::future::ready(closed(&stream, &received)))
        .await;
    String::from_utf8_lossy(&received.lock().expect("lock")).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_half_a_request_line_is_closed_after_the_header_read_timeout() {
    let app = spawn_app(settings(&toml("header_read_timeout = \"1s\""))).await;
    let mut stream = connect(&app);
    stream.write_all(b"GET /heal").expect("write");
    let received = wait_closed(&app, "the half request closed", stream).await;
    assert_eq!(received, "", "closed without an answer");
    // The server is still fine.
    assert_eq!(app.get_json("/healthz").await.0, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_idle_mid_second_request_is_closed_after_the_header_read_timeout() {
    let app = spawn_app(settings(&toml("header_read_timeout = \"1s\""))).await;
    let mut stream = TcpStream::connect(app.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    // The whole first response: headers, then the body of its content-length.
    let mut first = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&first).ends_with("{\"status\":\"ok\"}") {
        let n = stream.read(&mut buf).expect("first response");
        assert!(n > 0, "closed after the first request");
        first.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&first).starts_with("HTTP/1.1 200 OK\r\n"));
    stream.write_all(b"GET /hea").expect("write");
    stream.set_nonblocking(true).expect("nonblocking");
    let received = wait_closed(&app, "the second, half request closed", stream).await;
    assert_eq!(received, "", "closed without an answer");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_connections_a_client_waits_until_a_stalled_connection_is_closed() {
    let app = spawn_app(settings(&toml(
        "header_read_timeout = \"2s\"\nmax_connections = 2",
    )))
    .await;
    let stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = connect(&app);
            s.write_all(b"GET /heal").expect("write");
            s
        })
        .collect();
    // The third client: its connection is queued in the backlog until a slot frees.
    let mut third = TcpStream::connect(app.addr).expect("connect");
    third
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut answer = String::new();
    third.read_to_string(&mut answer).expect("third answered");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("{\"status\":\"ok\"}"), "{answer}");
    // It was served only once a stalled connection had been closed (the two time out a
    // moment apart, so the other may still be closing): at least one already reads EOF,
    // and both are closed without an answer.
    let stalled: Vec<(Mutex<TcpStream>, Mutex<Vec<u8>>)> = stalled
        .into_iter()
        .map(|s| (Mutex::new(s), Mutex::new(Vec::new())))
        .collect();
    assert!(
        stalled.iter().any(|(s, r)| closed(s, r)),
        "the third client was served while both stalled connections held their slots"
    );
    app.wait_until("both stalled connections closed", |_| {
        std::future::ready(stalled.iter().all(|(s, r)| closed(s, r)))
    })
    .await;
    for (_, received) in &stalled {
        assert!(
            received.lock().expect("lock").is_empty(),
            "closed without an answer"
        );
    }
    app.stop().await;
}

#[test]
fn the_server_keys_default_to_30s_60s_and_256_and_are_read() {
    let s = settings(&toml(""));
    assert_eq!(s.server.header_read_timeout, Duration::from_secs(30));
    assert_eq!(s.server.request_timeout, Duration::from_secs(60));
    assert_eq!(s.server.max_connections, 256);
    assert_eq!(s.server.web_config_file, None);
    let s = settings(&toml(
        "header_read_timeout = \"5s\"\nrequest_timeout = \"2m\"\nmax_connections = 9\nweb_config_file = \"/etc/headroom/web.yml\"",
    ));
    assert_eq!(s.server.header_read_timeout, Duration::from_secs(5));
    assert_eq!(s.server.request_timeout, Duration::from_secs(120));
    assert_eq!(s.server.max_connections, 9);
    assert_eq!(
        s.server.web_config_file,
        Some(PathBuf::from("/etc/headroom/web.yml"))
    );
}

/// A self-signed certificate for `localhost` and its key, written into `dir`.
fn self_signed(dir: &Path) -> String {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let pem = certified.cert.pem();
    std::fs::write(dir.join("cert.pem"), &pem).expect("write cert");
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).expect("write key");
    pem
}

fn write_web_config(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("web.yml");
    std::fs::write(&path, yaml).expect("write web config");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_from_the_web_config_file_serves_https_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = self_signed(dir.path());
    // Relative names: taken from the web config file's folder.
    let web = write_web_config(
        dir.path(),
        "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n",
    );
    let app = spawn_app(settings(&toml(&format!(
        "header_read_timeout = \"1s\"\nweb_config_file = {:?}",
        web.display().to_string()
    ))))
    .await;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("pem"))
        .resolve("localhost", app.addr)
        .build()
        .expect("client");
    let url = format!("https://localhost:{}", app.addr.port());
    let resp = client
        .get(format!("{url}/healthz"))
        .send()
        .await
        .expect("GET over TLS");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await.expect("body"), "{\"status\":\"ok\"}");
    let resp = client
        .get(format!("{url}/api/shards"))
        .send()
        .await
        .expect("GET over TLS");
    assert_eq!(resp.status().as_u16(), 200);

    // Plain HTTP on the TLS port gets no answer, and a client that never starts the
    // handshake is closed after the header read timeout.
    assert!(reqwest::get(app.url("/healthz")).await.is_err());
    let silent = connect(&app);
    let received = wait_closed(&app, "the silent TLS client closed", silent).await;
    assert_eq!(received, "");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_from_the_web_config_file_guards_every_endpoint_but_healthz() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = bcrypt::hash("s3cret", 4).expect("hash");
    let web = write_web_config(
        dir.path(),
        &format!("basic_auth_users:\n  prom: '{hash}'\n"),
    );
    let app = spawn_app(settings(&toml(&format!(
        "web_config_file = {:?}",
        web.display().to_string()
    ))))
    .await;
    let client = reqwest::Client::new();
    for path in [
        "/metrics",
        "/api/columns",
        "/api/shards",
        "/readyz",
        "/nothing",
    ] {
        for auth in [None, Some(("prom", "wrong")), Some(("nobody", "s3cret"))] {
            let mut request = client.get(app.url(path));
            if let Some((user, password)) = auth {
                request = request.basic_auth(user, Some(password));
            }
            let resp = request.send().await.expect("GET");
            assert_eq!(resp.status().as_u16(), 401, "{path} {auth:?}");
            assert_eq!(
                resp.headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Basic realm=\"headroom\""),
                "{path}"
            );
            let body: serde_json::Value = resp.json().await.expect("JSON body");
            assert_eq!(
                body,
                serde_json::json!({"error": "authentication required: send HTTP basic auth credentials"})
            );
        }
    }
    for path in ["/metrics", "/api/columns"] {
        let resp = client
            .get(app.url(path))
            .basic_auth("prom", Some("s3cret"))
            .send()
            .await
            .expect("GET");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
    }
    assert_eq!(
        app.get_json("/healthz").await,
        (200, serde_json::json!({"status": "ok"}))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_guards_the_pages_and_their_files_and_a_page_error_is_a_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = bcrypt::hash("s3cret", 4).expect("hash");
    let web = write_web_config(
        dir.path(),
        &format!("basic_auth_users:\n  prom: '{hash}'\n"),
    );
    let app = spawn_app(settings(&toml(&format!(
        "web_config_file = {:?}",
        web.display().to_string()
    ))))
    .await;
    let client = reqwest::Client::new();
    let get = |path: &str, auth: Option<(&str, &str)>| {
        let mut request = client.get(app.url(path)).header("accept", "text/html");
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, Some(password));
        }
        request.send()
    };
    let page = get("/", Some(("prom", "s3cret"))).await.expect("GET /");
    assert_eq!(page.status().as_u16(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert!(header(&page, "content-security-policy").starts_with("default-src 'none'"));
    let html = page.text().await.expect("the page");
    let stylesheet = html
        .split("<link rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the stylesheet's link")
        .to_string();
    let css = get(&stylesheet, Some(("prom", "s3cret")))
        .await
        .expect("GET css");
    assert_eq!(css.status().as_u16(), 200);
    assert_eq!(header(&css, "content-type"), "text/css; charset=utf-8");

    for path in [
        "/",
        "/shards",
        "/sources",
        "/incidents",
        "/columns/s1/app/orders/id",
        "/api/columns/s1/app/orders/id/history",
        stylesheet.as_str(),
    ] {
        for auth in [None, Some(("prom", "wrong"))] {
            let resp = get(path, auth).await.expect("GET");
            assert_eq!(resp.status().as_u16(), 401, "{path} {auth:?}");
            assert_eq!(
                header(&resp, "www-authenticate"),
                "Basic realm=\"headroom\"",
                "{path}"
            );
        }
    }

    // A column the shard does not hold: a page that says so, for the person reading it.
    let missing = get("/columns/s1/app/orders/id", Some(("prom", "s3cret")))
        .await
        .expect("GET");
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(header(&missing, "content-type"), "text/html; charset=utf-8");
    assert!(header(&missing, "content-security-policy").starts_with("default-src 'none'"));
    let body = missing.text().await.expect("the page");
    assert!(body.starts_with("<!DOCTYPE html>"), "{body}");
    assert!(
        body.contains(
            "<p class=\"problem\">no ID column app.orders.id is known on shard &quot;s1&quot;</p>"
        ),
        "{body}"
    );
    app.stop().await;
}

/// Runs `headroom run` on `config` with `args`, which must fail at start-up.
fn run_fails(config: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(config)
        .args(args)
        .output()
        .expect("headroom run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_web_config_file_stops_run_with_exit_2_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    self_signed(dir.path());
    std::fs::write(dir.path().join("junk.pem"), "not a certificate\n").expect("write");
    let web = dir.path().join("web.yml");
    let shown = web.display().to_string();
    // The key in the config file names a file that does not exist; the flag wins over it.
    let config = dir.path().join("headroom.toml");
    std::fs::write(&config, toml("web_config_file = \"absent.yml\"")).expect("write config");
    let (code, stderr) = run_fails(&config, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "1 problem in web configuration file {}",
            dir.path().join("absent.yml").display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("cannot read the file: No such file"),
        "{stderr}"
    );

    let cases: &[(&str, &str)] = &[
        ("basic_auth_users: [\n", "not YAML: "),
        (
            "tls_server_config:\n  cert_file: junk.pem\n  key_file: key.pem\n",
            "tls_server_config.cert_file: cannot read a PEM certificate from",
        ),
        (
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: junk.pem\n",
            "tls_server_config.key_file: cannot read a PEM private key from",
        ),
        (
            "basic_auth_users:\n  prom: 'hunter2'\n",
            "basic_auth_users.\"prom\": not a bcrypt hash: it must start with $2a$, $2b$ or $2y$",
        ),
        (
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_ca_file: ca.pem\n",
            "tls_server_config.client_ca_file: not supported by headroom",
        ),
        (
            "rate_limit:\n  burst: 1\n",
            "rate_limit: not supported by headroom",
        ),
        ("basic_auth: {}\n", "\"basic_auth\": unknown key"),
    ];
    for (yaml, problem) in cases {
        std::fs::write(&web, yaml).expect("write web config");
        let (code, stderr) = run_fails(&config, &["--web.config.file", &shown]);
        assert_eq!(code, Some(2), "{yaml}: {stderr}");
        assert!(
            stderr.contains(&format!("problem in web configuration file {shown}")),
            "{yaml}: {stderr}"
        );
        assert!(stderr.contains(problem), "{yaml}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_and_closes_a_connection_still_sending_its_headers() {
    // A header read timeout far longer than the test: only the drain limit can close it.
    let app = spawn_app(settings(&toml("header_read_timeout = \"1h\""))).await;
    let mut stalled = connect(&app);
    stalled.write_all(b"GET /heal").expect("write");
    let idle = connect(&app);
    assert_eq!(app.get_json("/healthz").await.0, 200);
    let addr = app.addr;
    // `stop` waits for the server to return; the deadline only keeps a hang from lasting.
    tokio::time::timeout(Duration::from_secs(60), app.stop())
        .await
        .expect("the server returned after shutdown with a stalled connection open");
    for (what, s) in [("stalled", stalled), ("idle", idle)] {
        let s = Mutex::new(s);
        assert!(
            closed(&s, &Mutex::new(Vec::new())),
            "{what} connection still open"
        );
    }
    assert!(
        TcpStream::connect(addr).is_err(),
        "the listener is closed after shutdown"
    );
}
