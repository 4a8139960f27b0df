//! The throwaway PostgreSQL clusters of the sandbox (`headroom_sandbox::Postgres`), proved
//! before anything is built on them: their own ports, SQL through psql, databases reached
//! by URL through sqlx (the daemon's driver), password roles, TLS, stop, freeze, drop, and
//! the account they run as.

use std::os::unix::fs::MetadataExt;
use std::str::FromStr;
use std::time::Duration;

use headroom_sandbox::{PasswordAuth, Postgres, PostgresOptions};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};

/// Starts a cluster on this (the test's) thread; panics naming what is missing.
fn cluster(name: &str) -> Postgres {
    Postgres::start(name).unwrap_or_else(|e| panic!("starting PostgreSQL cluster {name}: {e}"))
}

fn options(url: &str) -> PgConnectOptions {
    PgConnectOptions::from_str(url).unwrap_or_else(|e| panic!("parsing {url}: {e}"))
}

/// The SQLSTATE of a server's error, if the error is one.
fn sqlstate(err: &sqlx::Error) -> Option<String> {
    err.as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
}

/// Whether a process (or, for a negative id, a process group) exists.
fn exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the target exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[test]
fn two_clusters_run_at_once_on_their_own_ports_with_their_own_data() {
    let a = cluster("a");
    let b = cluster("b");
    assert_ne!(a.port(), b.port());
    for pg in [&a, &b] {
        assert_ne!(pg.port(), 5432, "never the machine's own server");
        assert_eq!(
            pg.exec("SHOW port").expect("SHOW port"),
            format!("{}\n", pg.port())
        );
    }
    a.exec("CREATE TABLE only_in_a (id int)").expect("create");
    let count = "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'";
    assert_eq!(a.exec(count).expect("count on a"), "1\n");
    assert_eq!(b.exec(count).expect("count on b"), "0\n");
}

#[test]
fn exec_round_trips_a_hostile_identifier_and_its_rows() {
    let pg = cluster("hostile");
    let hostile = "sh\"ard `{table}` #-- ;\t\u{1}é";
    let quoted = format!("\"{}\"", hostile.replace('"', "\"\""));
    pg.exec(&format!(
        "CREATE TABLE {quoted} (id bigint, note text);\n\
         INSERT INTO {quoted} VALUES (9223372036854775807, 'a''b');"
    ))
    .expect("create and insert");
    assert_eq!(
        pg.exec("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace")
            .expect("names"),
        format!("{hostile}\n")
    );
    assert_eq!(
        pg.exec(&format!("SELECT id, note FROM {quoted}"))
            .expect("rows"),
        "9223372036854775807\ta'b\n"
    );
}

#[test]
fn exec_returns_the_servers_error_and_stops_at_it() {
    let pg = cluster("error");
    let err = pg
        .exec("CREATE TABLE before_error (id int);\nSELECT * FROM missing;\nCREATE TABLE after_error (id int);")
        .expect_err("a missing table is an error");
    assert!(
        err.to_string()
            .contains("relation \"missing\" does not exist"),
        "{err}"
    );
    assert_eq!(
        pg.exec("SELECT string_agg(tablename, ',') FROM pg_tables WHERE tablename LIKE '%_error'")
            .expect("tables"),
        "before_error\n"
    );
}

#[tokio::test]
async fn a_created_database_is_reached_by_url_through_sqlx() {
    let pg = cluster("url");
    let name = "shard \"07\" {db}/é?";
    pg.create_database(name).expect("create database");
    assert_eq!(
        pg.url("postgres", "app"),
        format!("postgres://postgres@127.0.0.1:{}/app", pg.port())
    );
    let url = pg.url("postgres", name);
    let mut conn = PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    let (db, user): (String, String) =
        sqlx::query_as("SELECT current_database(), current_user::text")
            .fetch_one(&mut conn)
            .await
            .expect("query");
    assert_eq!(db, name);
    assert_eq!(user, "postgres");
}

/// A role created with `auth` is refused without its password and with a wrong one, and let
/// in with it; its password is stored as `stored` begins.
async fn password_role_is_required(auth: PasswordAuth, stored: &str) {
    let mut pg = cluster("secrets");
    pg.create_database("app").expect("create database");
    let password = "s3cr'et @:/%";
    pg.create_login("app user", password, auth)
        .expect("create login");
    let prefix = pg
        .exec(&format!(
            "SELECT left(rolpassword, {}) FROM pg_authid WHERE rolname = 'app user'",
            stored.len()
        ))
        .expect("stored password");
    assert_eq!(prefix, format!("{stored}\n"));
    let url = pg.url("app user", "app");

    let without = PgConnection::connect(&url)
        .await
        .expect_err("no password given");
    assert_eq!(sqlstate(&without).as_deref(), Some("28P01"), "{without}");
    let wrong = PgConnection::connect_with(&options(&url).password("wrong"))
        .await
        .expect_err("a wrong password");
    assert_eq!(sqlstate(&wrong).as_deref(), Some("28P01"), "{wrong}");

    let mut conn = PgConnection::connect_with(&options(&url).password(password))
        .await
        .unwrap_or_else(|e| panic!("connecting with the password: {e}"));
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut conn)
        .await
        .expect("query");
    assert_eq!(user, "app user");
    // Other roles keep the trust of TCP clients.
    PgConnection::connect(&pg.url("postgres", "app"))
        .await
        .unwrap_or_else(|e| panic!("the superuser without a password: {e}"));
}

#[tokio::test]
async fn an_md5_role_is_refused_without_its_password_and_let_in_with_it() {
    password_role_is_required(PasswordAuth::Md5, "md5").await;
}

#[tokio::test]
async fn a_scram_role_is_refused_without_its_password_and_let_in_with_it() {
    password_role_is_required(PasswordAuth::Scram, "SCRAM-SHA-256$").await;
}

#[tokio::test]
async fn require_tls_refuses_plain_clients_and_admits_verified_tls() {
    let mut pg = cluster("tls");
    pg.require_tls().expect("require TLS");
    let url = pg.url("postgres", "postgres");
    let plain = PgConnection::connect_with(&options(&url).ssl_mode(PgSslMode::Disable))
        .await
        .expect_err("a plain client");
    // invalid_authorization_specification: no pg_hba.conf line for a plain client.
    assert_eq!(sqlstate(&plain).as_deref(), Some("28000"), "{plain}");

    let ca = pg.ca_pem().expect("a CA once TLS is required");
    let verified = options(&url)
        .ssl_mode(PgSslMode::VerifyFull)
        .ssl_root_cert(&ca);
    let mut conn = PgConnection::connect_with(&verified)
        .await
        .unwrap_or_else(|e| panic!("connecting with TLS: {e}"));
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .expect("query");
    assert!(ssl);
}

#[tokio::test]
async fn stop_makes_connections_fail_with_connection_refused() {
    let mut pg = cluster("stop");
    let url = pg.url("postgres", "postgres");
    PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connecting before the stop: {e}"));
    pg.stop();
    let err = PgConnection::connect(&url)
        .await
        .expect_err("a stopped server");
    match &err {
        sqlx::Error::Io(io) => assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("expected connection refused, got {other}"),
    }
    assert!(pg.pid().is_none());
}

#[test]
fn restart_keeps_the_data_and_the_port() {
    let mut pg = cluster("restart");
    let port = pg.port();
    pg.exec("CREATE TABLE kept (id int); INSERT INTO kept VALUES (42);")
        .expect("seed");
    pg.restart().expect("restart");
    assert_eq!(pg.port(), port);
    assert_eq!(pg.exec("SELECT id FROM kept").expect("select"), "42\n");
}

#[tokio::test]
async fn a_frozen_cluster_answers_nothing_until_thawed() {
    let pg = cluster("freeze");
    let url = pg.url("postgres", "postgres");
    pg.freeze();
    let frozen =
        tokio::time::timeout(Duration::from_millis(500), PgConnection::connect(&url)).await;
    assert!(frozen.is_err(), "a frozen server answered");
    pg.thaw();
    let mut conn = PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connecting after the thaw: {e}"));
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .expect("query");
    assert_eq!(one, 1);
}

#[test]
fn max_connections_is_the_one_asked_for() {
    let pg = Postgres::start_with("max", PostgresOptions { max_connections: 7 })
        .unwrap_or_else(|e| panic!("starting PostgreSQL: {e}"));
    assert_eq!(pg.exec("SHOW max_connections").expect("show"), "7\n");
}

#[tokio::test]
async fn drop_leaves_no_server_process_and_no_directory() {
    let pg = cluster("drop");
    let pid = i32::try_from(pg.pid().expect("running")).expect("pid");
    let data = pg.data_dir();
    assert!(data.join("postmaster.pid").is_file());
    // A session, so that a backend is in the group too.
    let mut conn = PgConnection::connect(&pg.url("postgres", "postgres"))
        .await
        .unwrap_or_else(|e| panic!("connecting: {e}"));
    assert!(exists(pid) && exists(-pid));
    drop(pg);
    assert!(!exists(pid), "the postmaster outlived the drop");
    assert!(!exists(-pid), "a process of the cluster outlived the drop");
    assert!(!data.exists(), "{} outlived the drop", data.display());
    assert!(conn.ping().await.is_err());
}

#[test]
fn the_cluster_runs_as_an_unprivileged_account_when_the_tests_run_as_root() {
    let pg = cluster("account");
    let pid = pg.pid().expect("running");
    let server_uid = std::fs::metadata(format!("/proc/{pid}"))
        .expect("the postmaster's /proc entry")
        .uid();
    assert_ne!(server_uid, 0);
    assert_eq!(server_uid, pg.os_uid());
    // SAFETY: geteuid has no preconditions and cannot fail.
    let ours = unsafe { libc::geteuid() };
    if ours != 0 {
        assert_eq!(server_uid, ours);
    }
    let data = std::fs::metadata(pg.data_dir()).expect("data directory");
    assert_eq!(data.uid(), server_uid);
    assert_eq!(data.mode() & 0o777, 0o700);
}
