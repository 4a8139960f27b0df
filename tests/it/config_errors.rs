//! Configuration: every problem reported at once with its key, environment overrides,
//! and passwords kept out of every message.

use std::collections::BTreeMap;

use headroom::config::{self, ConfigError};

fn problems(toml: &str, env: &[(&str, &str)]) -> Vec<String> {
    let vars: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match config::from_toml_str(toml, &|n| vars.get(n).cloned()) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(|p| p.to_string()).collect(),
    }
}

fn has(problems: &[String], key: &str, text: &str) -> bool {
    problems
        .iter()
        .any(|p| p.starts_with(&format!("{key}: ")) && p.contains(text))
}

#[test]
fn every_problem_is_listed_with_the_key_that_holds_it() {
    let toml = r#"
[server]
listen = "nowhere"
colour = "blue"
[poll]
interval = "6o seconds"
query_timeout = "0s"
concurrency = 0
[thresholds]
warning = 0.9
critical = 0.8
[[shards]]
name = "shard-01"
url = "oracle://monitor@db1:1521"
[[shards]]
name = "shard-01"
url = "mysql://monitor@db2:3306"
password_env = "NOT_SET_ANYWHERE"
[[shards]]
url = "not a url"
[[sources]]
name = "tickets64"
kind = "snowflake"
servers = ["mysql://monitor@ticket-a:3306"]
[[references]]
source = "tickets32"
columns = ["etsy.*"]
"#;
    let p = problems(toml, &[]);
    let expected = [
        ("server.listen", "not a host:port"),
        ("server.colour", "unknown key"),
        ("poll.interval", "is not a duration"),
        ("poll.query_timeout", "longer than zero"),
        ("poll.concurrency", "at least 1"),
        ("thresholds.warning", "must be below critical"),
        ("shards[0].url", "expected mysql://"),
        ("shards[1].name", "used twice"),
        ("shards[1].password_env", "NOT_SET_ANYWHERE is not set"),
        ("shards[2].name", "is missing"),
        ("shards[2].url", "is not a URL"),
        ("sources[0].kind", "unknown source kind"),
        ("sources[0].servers[0]", "names no database"),
        ("sources[0].table", "is missing"),
        ("references[0].source", "not a defined source"),
        ("references[0].columns[0]", "schema.table.column"),
    ];
    for (key, text) in expected {
        assert!(
            has(&p, key, text),
            "no problem {key}: …{text}… in\n{}",
            p.join("\n")
        );
    }
    assert_eq!(
        p.len(),
        expected.len(),
        "unexpected extra problems:\n{}",
        p.join("\n")
    );
}

#[test]
fn a_file_without_shards_is_refused() {
    let p = problems("[poll]\ninterval = \"10s\"\n", &[]);
    assert_eq!(p, vec!["shards: is missing".to_string()]);
}

#[test]
fn defaults_fill_every_optional_key() {
    let s = config::from_toml_str(
        "[[shards]]\nname = \"a\"\nurl = \"mysql://monitor@db1\"\n",
        &|_| None,
    )
    .expect("valid");
    assert_eq!(s.server.listen.to_string(), "127.0.0.1:9187");
    assert_eq!(s.poll.interval.as_secs(), 60);
    assert_eq!(s.poll.query_timeout.as_secs(), 10);
    assert_eq!(s.poll.concurrency, 8);
    assert_eq!(s.policy.default.ratio.warning.get(), 700_000);
    assert_eq!(s.policy.default.ratio.critical.get(), 850_000);
    assert!(s.shards[0].schemas.is_none());
    assert_eq!(s.shards[0].endpoint.label(), "db1:3306");
}

#[test]
fn environment_variables_override_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("headroom.toml");
    std::fs::write(
        &path,
        "[poll]\ninterval = \"60s\"\n[[shards]]\nname = \"a\"\nurl = \"mysql://monitor@db1:3306\"\npassword_env = \"PW\"\n",
    )
    .expect("write");
    let env = BTreeMap::from([
        ("HEADROOM__POLL__INTERVAL".to_string(), "15s".to_string()),
        ("HEADROOM__POLL__CONCURRENCY".to_string(), "3".to_string()),
        (
            "HEADROOM__THRESHOLDS__CRITICAL".to_string(),
            "0.9".to_string(),
        ),
        ("PW".to_string(), "hunter2".to_string()),
    ]);
    let s = config::load_with_env(&path, Some(env)).expect("valid");
    assert_eq!(s.poll.interval.as_secs(), 15);
    assert_eq!(s.poll.concurrency, 3);
    assert_eq!(s.policy.default.ratio.critical.get(), 900_000);
    assert_eq!(s.shards[0].endpoint.expose_password(), Some("hunter2"));

    let env = BTreeMap::from([("HEADROOM__POLL__INTERVAL".to_string(), "soon".to_string())]);
    match config::load_with_env(&path, Some(env)) {
        Err(ConfigError::Invalid { problems, .. }) => {
            assert!(problems.iter().any(|p| p.key == "poll.interval"));
            assert!(problems.iter().any(|p| p.key == "shards[0].password_env"));
        }
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn passwords_never_appear_in_errors_urls_or_debug_output() {
    let toml = r#"
[[shards]]
name = "a"
url = "mysql://monitor:s3cret-pw@db1:3306"
password_env = "ALSO"
[[shards]]
name = "b"
url = "mysql://monitor:0ther-pw@db2:3306"
colour = 1
[[shards]]
name = "c"
url = "monitor:n0scheme-pw@db3:3306"
[[shards]]
name = "d"
url = "mysql://monitor:12/sl4sh-pw@db4"
[[shards]]
name = "e"
url = "mysql://monitor:opt10n-pw@db5:3306?ssl-mode=sometimes"
"#;
    let p = problems(toml, &[("ALSO", "x")]);
    assert!(has(&p, "shards[0].url", "keep one"));
    assert!(has(&p, "shards[1].colour", "unknown key"));
    assert!(has(&p, "shards[2].url", "expected mysql://"));
    assert!(has(&p, "shards[3].url", "names no user"));
    assert!(has(&p, "shards[4].url", "sometimes"));
    assert_eq!(p.len(), 5, "{}", p.join("\n"));
    let all = p.join("\n");
    for secret in [
        "s3cret-pw",
        "0ther-pw",
        "n0scheme-pw",
        "sl4sh-pw",
        "opt10n-pw",
    ] {
        assert!(!all.contains(secret), "{secret} shown in:\n{all}");
    }

    let s = config::from_toml_str(
        "[[shards]]\nname = \"a\"\nurl = \"mysql://monitor:s3cret-pw@db1:3306\"\n",
        &|_| None,
    )
    .expect("valid");
    let endpoint = &s.shards[0].endpoint;
    assert_eq!(endpoint.to_string(), "mysql://monitor@db1:3306");
    assert_eq!(endpoint.expose_password(), Some("s3cret-pw"));
    assert!(!format!("{s:?}").contains("s3cret-pw"));
}

#[test]
fn a_password_file_is_read_and_trimmed() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pw"), "from-file\n").expect("write");
    let path = dir.path().join("headroom.toml");
    std::fs::write(
        &path,
        "[[shards]]\nname = \"a\"\nurl = \"mysql://monitor@db1\"\npassword_file = \"pw\"\n",
    )
    .expect("write");
    let s = config::load_with_env(&path, Some(BTreeMap::new())).expect("valid");
    assert_eq!(s.shards[0].endpoint.expose_password(), Some("from-file"));
}

#[test]
fn the_shipped_example_configuration_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/headroom.toml");
    let env = BTreeMap::from([
        ("SHARD_PASSWORD".to_string(), "pw".to_string()),
        ("PAGERDUTY_ROUTING_KEY".to_string(), "key".to_string()),
    ]);
    let s = config::load_with_env(&path, Some(env)).expect("config/headroom.toml is valid");
    assert_eq!(s.shards.len(), 2);
    assert_eq!(s.sources[0].servers.len(), 2);
    assert!(s.references[0].matches("etsy", "treasury_comments", "treasury_id"));
    assert!(!s.references[0].matches("etsy", "teams", "team_id"));
    assert!(!s.references[0].matches("other", "treasury_comments", "treasury_id"));
}

#[test]
fn paging_sections_report_every_problem_with_its_key() {
    let toml = r#"
[thresholds]
warning_within = "7d"
critical_within = "30d"
[[shards]]
name = "a"
url = "mysql://monitor@db1"
[[overrides]]
columns = ["etsy.logs"]
warning = 2
[[silences]]
columns = ["etsy.*.*"]
until = "next tuesday"
reason = ""
[pagerduty]
min_severity = "loud"
blind_after = "soon"
url = "ftp://pd"
[webhook]
retry_initial = "0s"
[state]
path = "/tmp/x.json"
color = "red"
"#;
    let p = problems(toml, &[]);
    let expected = [
        ("thresholds.warning_within", "longer than critical_within"),
        ("overrides[0].columns[0]", "schema.table.column"),
        ("overrides[0].warning", "is not a ratio"),
        ("silences[0].until", "RFC 3339"),
        ("silences[0].reason", "must say why"),
        ("pagerduty.routing_key_env", "is missing"),
        ("pagerduty.min_severity", "not a severity"),
        ("pagerduty.blind_after", "not a duration"),
        ("pagerduty.url", "http:// or https://"),
        ("webhook.url", "is missing"),
        ("webhook.retry_initial", "longer than zero"),
        ("state.color", "unknown key"),
    ];
    for (key, text) in expected {
        assert!(
            has(&p, key, text),
            "no problem {key}: …{text}… in\n{}",
            p.join("\n")
        );
    }
    assert_eq!(p.len(), expected.len(), "{}", p.join("\n"));
}

#[test]
fn paging_defaults_and_overrides_are_read() {
    let toml = r#"
[server]
listen = "0.0.0.0:9187"
[thresholds]
critical_within = "7d"
[[shards]]
name = "a"
url = "mysql://monitor@db1"
[[overrides]]
columns = ["etsy.logs.*"]
critical = 0.99
[[silences]]
columns = ["etsy.treasury_comments.*"]
until = "2026-12-31T00:00:00Z"
reason = "migration to BIGINT under way"
[pagerduty]
routing_key_env = "PD"
"#;
    let vars = BTreeMap::from([("PD".to_string(), "k3y".to_string())]);
    let s = config::from_toml_str(toml, &|n| vars.get(n).cloned()).expect("valid");
    // A wildcard listen address is not where people reach headroom: the host name is.
    assert!(
        !s.server.external_url.contains("0.0.0.0"),
        "{}",
        s.server.external_url
    );
    assert!(s.server.external_url.ends_with(":9187"));
    assert_eq!(s.policy.default.warning_within.as_secs(), 90 * 86_400);
    assert_eq!(s.policy.default.critical_within.as_secs(), 7 * 86_400);
    let logs = s.policy.limits("etsy", "logs", "id");
    assert_eq!(logs.ratio.critical.get(), 990_000);
    assert_eq!(
        logs.ratio.warning.get(),
        700_000,
        "the rest from [thresholds]"
    );
    assert_eq!(logs.critical_within.as_secs(), 7 * 86_400);
    assert_eq!(s.policy.silences[0].reason, "migration to BIGINT under way");
    let pd = &s.notifiers[0];
    assert_eq!(pd.name, "pagerduty");
    assert_eq!(pd.url.as_str(), config::PAGERDUTY_URL);
    assert_eq!(pd.min_severity, headroom::policy::Severity::Critical);
    assert_eq!(pd.blind_after.as_secs(), 900);
    assert_eq!(pd.max_events_per_minute, 100);
    assert_eq!(pd.timeout.as_secs(), 10);
    assert!(!format!("{pd:?}").contains("k3y"));
    assert_eq!(s.state_path, std::path::Path::new("./headroom-state.json"));
}

const SHARD: &str = "[[shards]]\nname = \"a\"\nurl = \"mysql://monitor@db1\"\n";

#[test]
fn values_of_the_wrong_type_are_problems_not_converted() {
    let p = problems(
        "[poll]\ninterval = 60\nconcurrency = \"8\"\n[thresholds]\nwarning = \"0.7\"\n\
         [[shards]]\nname = 123\nurl = \"mysql://monitor@db1\"\n",
        &[],
    );
    assert!(
        has(&p, "shards[0].name", "must be a string, not a number (123)"),
        "{p:?}"
    );
    assert!(
        has(&p, "poll.interval", "must be a string, not a number (60)"),
        "{p:?}"
    );
    assert!(
        has(&p, "poll.concurrency", "\"8\" is not a whole number"),
        "{p:?}"
    );
    assert!(
        has(&p, "thresholds.warning", "\"0.7\" is not a ratio"),
        "{p:?}"
    );
    assert_eq!(p.len(), 4, "{p:?}");
}

#[test]
fn an_environment_password_is_trimmed_like_a_file_and_an_empty_one_is_a_problem() {
    let toml = format!("{SHARD}password_env = \"PW\"\n");
    let vars: BTreeMap<String, String> = BTreeMap::from([("PW".into(), "hunter2\r\n".into())]);
    let settings = config::from_toml_str(&toml, &|n| vars.get(n).cloned()).expect("valid");
    assert_eq!(
        settings.shards[0].endpoint.expose_password(),
        Some("hunter2")
    );
    let p = problems(&toml, &[("PW", "\n")]);
    assert_eq!(
        p,
        ["shards[0].password_env: environment variable PW is empty"]
    );
    let p = problems(
        "[pagerduty]\nrouting_key_env = \"KEY\"\n[[shards]]\nname = \"a\"\nurl = \"mysql://m@db1\"\n",
        &[("KEY", "  ")],
    );
    assert_eq!(
        p,
        ["pagerduty.routing_key_env: environment variable KEY is empty"]
    );
}

#[test]
fn a_password_in_the_url_and_in_password_env_or_file_conflict_whatever_they_hold() {
    for (url, extra) in [
        ("mysql://monitor:pw@db1", "password_env = \"UNSET\""),
        ("mysql://monitor:@db1", "password_env = \"PW\""),
        ("mysql://monitor:pw@db1", "password_file = \"/nonexistent\""),
    ] {
        let p = problems(
            &format!("[[shards]]\nname = \"a\"\nurl = \"{url}\"\n{extra}\n"),
            &[("PW", "x")],
        );
        assert!(
            has(
                &p,
                "shards[0].url",
                "has a password and password_env or password_file is also set"
            ),
            "{url} {extra}: {p:?}"
        );
    }
    let p = problems(
        "[[sources]]\nname = \"t\"\nkind = \"ticket_server\"\ntable = \"T\"\n\
         servers = [\"mysql://m:pw@t1/tickets\"]\npassword_env = \"PW\"\n[[shards]]\nname = \"a\"\nurl = \"mysql://m@db1\"\n",
        &[("PW", "x")],
    );
    assert!(has(&p, "sources[0].servers[0]", "has a password"), "{p:?}");
}

#[test]
fn a_first_retry_longer_than_the_last_is_a_problem() {
    let p = problems(
        &format!(
            "[webhook]\nurl = \"http://hook\"\nretry_initial = \"10m\"\nretry_max = \"1m\"\n{SHARD}"
        ),
        &[],
    );
    assert_eq!(
        p,
        ["webhook.retry_initial: retry_initial (10m) must not be longer than retry_max (1m)"]
    );
}

#[test]
fn an_unknown_key_from_the_environment_names_its_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("headroom.toml");
    std::fs::write(&path, SHARD).expect("write");
    let env = BTreeMap::from([
        ("HEADROOM__POLL__INTREVAL".to_string(), "5s".to_string()),
        (
            "HEADROOM__POLL__CONCURRENCY".to_string(),
            "many".to_string(),
        ),
        ("HEADROOM__PAGING__ON".to_string(), "yes".to_string()),
    ]);
    match config::load_with_env(&path, Some(env)) {
        Err(ConfigError::Invalid { problems, .. }) => {
            let p: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            assert!(
                p.contains(&"poll.intreval: unknown key, set by the environment variable HEADROOM__POLL__INTREVAL".to_string()),
                "{p:?}"
            );
            assert!(
                p.contains(
                    &"paging: unknown key, set by the environment variable HEADROOM__PAGING"
                        .to_string()
                ),
                "{p:?}"
            );
            assert!(
                p.contains(&"poll.concurrency: \"many\" (from HEADROOM__POLL__CONCURRENCY) is not a whole number of at least 1".to_string()),
                "{p:?}"
            );
        }
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn a_directory_or_a_syntax_error_is_named_without_quoting_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    match config::load(dir.path()) {
        Err(e) => assert!(
            e.to_string()
                .ends_with("is a directory: give the path of the TOML file"),
            "{e}"
        ),
        Ok(_) => panic!("a directory loaded"),
    }
    let path = dir.path().join("headroom.toml");
    std::fs::write(
        &path,
        "[[shards]]\nname = \"a\"\nurl = \"mysql://monitor:hunter2@db1:3306\npassword_file = x\n",
    )
    .expect("write");
    let message = match config::load(&path) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a broken file loaded"),
    };
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        message.contains("TOML parse error at line 3, column 40"),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn a_wildcard_listen_address_links_pages_to_the_host_name_with_a_warning() {
    let settings = config::from_toml_str(
        &format!("[server]\nlisten = \"0.0.0.0:9187\"\n{SHARD}"),
        &|_| None,
    )
    .expect("valid");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    assert_eq!(settings.server.external_url, format!("http://{host}:9187"));
    assert_eq!(settings.warnings.len(), 1);
    assert_eq!(settings.warnings[0].key, "server.external_url");
    let settings = config::from_toml_str(
        &format!("[server]\nlisten = \"[::]:9187\"\nexternal_url = \"https://headroom.example.com/\"\n{SHARD}"),
        &|_| None,
    )
    .expect("valid");
    assert_eq!(settings.server.external_url, "https://headroom.example.com");
    assert!(settings.warnings.is_empty());
}

#[test]
fn a_cluster_needs_a_member_below_members_counted_from_zero() {
    let fleet = "[[shards]]\nname = \"a\"\nurl = \"mysql://m@db1\"\n";
    for (cluster, key, text) in [
        (
            "member = 3\nmembers = 3",
            "cluster.member",
            "counted from 0",
        ),
        ("member = 0\nmembers = 0", "cluster.members", "at least 1"),
        ("member = -1\nmembers = 2", "cluster.member", "at least 0"),
        ("members = 2", "cluster.member", "is missing"),
        ("member = 0", "cluster.members", "is missing"),
        (
            "member = \"0\"\nmembers = 2",
            "cluster.member",
            "whole number",
        ),
        (
            "member = 0\nmembers = 5000",
            "cluster.members",
            "more than the 1024",
        ),
        (
            "member = 0\nmembers = 2\nreplicas = 2",
            "cluster.replicas",
            "unknown key",
        ),
    ] {
        let p = problems(&format!("[cluster]\n{cluster}\n{fleet}"), &[]);
        assert!(has(&p, key, text), "{cluster}: {p:?}");
    }
    // The environment sets it too (a StatefulSet's ordinal, say).
    let settings = config::from_toml_str(
        &format!("[cluster]\nmember = 1\nmembers = 2\n{fleet}"),
        &|_| None,
    )
    .expect("valid");
    assert_eq!(settings.configured_shards.len(), 1);
    assert_eq!(settings.cluster.map(|m| m.to_string()), Some("1/2".into()));
}
