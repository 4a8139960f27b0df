//! Settings: the TOML file named by `--config`, overridden by `HEADROOM__SECTION__KEY`
//! environment variables, read through the `config` crate and validated in one pass that
//! reports every problem at once, each with the key that holds it.
//!
//! The file is walked key by key (rather than deserialised straight into structs) so that an
//! unknown key, a missing key, a bad duration and a bad URL in the same file are all listed
//! together instead of one per restart. Unknown keys are errors, as `deny_unknown_fields`
//! would make them.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::str::FromStr;
use std::time::Duration;

use config::{Value, ValueKind};
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use chrono::{DateTime, Utc};

use crate::headroom::{Ppm, Thresholds};
use crate::policy::{Limits, Override, Policy, Severity, Silence};

/// The environment variable prefix; `HEADROOM__POLL__INTERVAL=30s` sets `poll.interval`.
pub const ENV_PREFIX: &str = "HEADROOM";

/// Everything headroom needs to run, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the HTTP server listens.
    pub server: ServerSettings,
    /// How often and how carefully databases are polled.
    pub poll: PollSettings,
    /// Thresholds (ratio and time), overrides and silences.
    pub policy: Policy,
    /// Every monitored shard, in file order.
    pub shards: Vec<ShardSettings>,
    /// Global ID generators.
    pub sources: Vec<SourceSettings>,
    /// Which columns store IDs made by which source.
    pub references: Vec<ReferenceRule>,
    /// Where pages go: `[pagerduty]`, `[webhook]`.
    pub notifiers: Vec<NotifierSettings>,
    /// The state file: open incidents and undelivered events.
    pub state_path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// `host:port` for /metrics and the API; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// How people reach the API, for links in pages; default `http://{listen}`.
    pub external_url: String,
}

#[derive(Debug, Clone)]
pub struct PollSettings {
    /// Time between the starts of two polls.
    pub interval: Duration,
    /// Limit on each query, on connecting, and on the server side where it supports one.
    pub query_timeout: Duration,
    /// How many shards are polled at once.
    pub concurrency: usize,
}

/// A database server to connect to. The password is held apart from the URL so that the
/// URL can be shown anywhere.
#[derive(Clone)]
pub struct Endpoint {
    /// The URL without its password.
    pub url: Url,
    /// From the URL, `password_env` or `password_file`.
    pub password: Option<SecretString>,
}

impl Endpoint {
    /// `host:port`: a label of bounded cardinality that never carries credentials.
    pub fn label(&self) -> String {
        let host = self.url.host_str().unwrap_or("localhost");
        let port = self.url.port().unwrap_or(3306);
        format!("{host}:{port}")
    }

    /// The database named in the URL path, if any.
    pub fn database(&self) -> Option<String> {
        let path = self.url.path().trim_start_matches('/');
        if path.is_empty() {
            None
        } else {
            Some(percent_decode(path))
        }
    }

    /// The user name, decoded.
    pub fn username(&self) -> String {
        percent_decode(self.url.username())
    }

    /// The password, for the driver only.
    pub fn expose_password(&self) -> Option<&str> {
        self.password.as_ref().map(|p| p.expose_secret())
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url.as_str())
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct ShardSettings {
    /// Unique name, used as the `shard` label.
    pub name: String,
    pub endpoint: Endpoint,
    /// Schemas to watch; `None` means every non-system schema the user can see.
    pub schemas: Option<Vec<String>>,
}

/// The kinds of ID generator headroom can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Flickr-style ticket servers: `REPLACE INTO Tickets64 (stub) VALUES ('a')`.
    TicketServer,
}

impl SourceKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            SourceKind::TicketServer => "ticket_server",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// Unique name, referenced by `[[references]] source`.
    pub name: String,
    pub kind: SourceKind,
    /// Every server of the generator (a Flickr pair has two); each URL names the database.
    pub servers: Vec<Endpoint>,
    /// The ticket table, e.g. `Tickets64`.
    pub table: String,
}

/// `schema.table.column` globs with exclusions; matching ignores case, as MySQL does for
/// column names.
#[derive(Debug, Clone)]
pub struct ColumnGlobs {
    /// The globs as written, for messages.
    pub patterns: Vec<String>,
    include: GlobSet,
    exclude: GlobSet,
}

impl ColumnGlobs {
    pub fn new(columns: &[String], exclude: &[String]) -> Result<ColumnGlobs, String> {
        Ok(ColumnGlobs {
            patterns: columns.to_vec(),
            include: glob_set(columns)?,
            exclude: glob_set(exclude)?,
        })
    }

    /// Whether `schema.table.column` is matched and not excluded.
    pub fn matches(&self, schema: &str, table: &str, column: &str) -> bool {
        let name = format!("{schema}.{table}.{column}");
        self.include.is_match(&name) && !self.exclude.is_match(&name)
    }
}

/// `[[references]]`: columns matched by `columns` and not by `exclude` store IDs from `source`.
#[derive(Debug, Clone)]
pub struct ReferenceRule {
    pub source: String,
    pub columns: ColumnGlobs,
}

impl ReferenceRule {
    pub fn new(source: &str, columns: &[String], exclude: &[String]) -> Result<Self, String> {
        Ok(ReferenceRule {
            source: source.to_string(),
            columns: ColumnGlobs::new(columns, exclude)?,
        })
    }

    /// Whether `schema.table.column` is covered by this rule.
    pub fn matches(&self, schema: &str, table: &str, column: &str) -> bool {
        self.columns.matches(schema, table, column)
    }
}

/// Which notifier a `[pagerduty]` or `[webhook]` table configures.
#[derive(Clone)]
pub enum NotifierKind {
    /// PagerDuty Events API v2, with the integration's routing key.
    PagerDuty { routing_key: SecretString },
    /// A JSON POST of every event (README: "Webhook").
    Webhook,
}

/// One notifier: where events go and which ones.
#[derive(Clone)]
pub struct NotifierSettings {
    /// `pagerduty` or `webhook`: the state file's section and the `notifier` label.
    pub name: &'static str,
    pub kind: NotifierKind,
    pub url: Url,
    /// The least severity that pages.
    pub min_severity: Severity,
    /// A shard unreachable for this long pages as its own incident.
    pub blind_after: Duration,
    /// First wait before retrying an undelivered event; doubles up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Rate limit: events sent per minute at most (PagerDuty allows about 120 per key;
    /// the default, 100, stays under it).
    pub max_events_per_minute: u32,
    /// Limit on one delivery request.
    pub timeout: Duration,
}

impl fmt::Debug for NotifierSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only scheme and host: a webhook URL's path is often a secret.
        let url = format!(
            "{}://{}/...",
            self.url.scheme(),
            self.url.host_str().unwrap_or("")
        );
        f.debug_struct("NotifierSettings")
            .field("name", &self.name)
            .field("url", &url)
            .field("min_severity", &self.min_severity)
            .field("blind_after", &self.blind_after)
            .finish()
    }
}

/// The public PagerDuty Events API v2 endpoint.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// One problem in the configuration, with the key that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path, e.g. `shards[1].url`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{} in configuration {path}:\n{}", count(.problems.len()), list(.problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 problem".to_string()
    } else {
        format!("{n} problems")
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads `path`, applies `HEADROOM__SECTION__KEY` overrides from the process environment,
/// and validates the result.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    load_with_env(path, None)
}

/// As [`load`], with the environment given explicitly (tests); `None` reads the process's.
pub fn load_with_env(
    path: &Path,
    env: Option<BTreeMap<String, String>>,
) -> Result<Settings, ConfigError> {
    if !path.is_file() {
        return Err(ConfigError::Read {
            path: path.to_path_buf(),
            message: "no such file".to_string(),
        });
    }
    let mut environment = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__");
    if let Some(vars) = env.as_ref() {
        environment = environment.source(Some(vars.clone().into_iter().collect()));
    }
    let built = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .add_source(environment)
        .build()
        .map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let lookup = |name: &str| match env.as_ref() {
        Some(vars) => vars.get(name).cloned(),
        None => std::env::var(name).ok(),
    };
    let base = path.parent().unwrap_or(Path::new("."));
    parse(built.cache, &lookup, base).map_err(|problems| ConfigError::Invalid {
        path: path.to_path_buf(),
        problems,
    })
}

/// Parses TOML text directly, with no environment overrides (tests and tools).
pub fn from_toml_str(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, Vec<Problem>> {
    let built = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .map_err(|e| {
            vec![Problem {
                key: "(file)".to_string(),
                message: e.to_string(),
            }]
        })?;
    parse(built.cache, lookup, Path::new("."))
}

/// Walks the merged tree and builds [`Settings`], collecting every problem.
fn parse(
    root: Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    base: &Path,
) -> Result<Settings, Vec<Problem>> {
    let problems = Rc::new(RefCell::new(Vec::new()));
    let mut root = Section::root(root, Rc::clone(&problems));

    let server = root.section("server").map(|mut s| {
        let listen = s
            .string("listen", false)
            .unwrap_or_else(|| "127.0.0.1:9187".to_string());
        let listen = match listen.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                s.problem(
                    "listen",
                    format!("{listen:?} is not a host:port address such as 127.0.0.1:9187"),
                );
                None
            }
        };
        let external_url = s.string("external_url", false);
        if let Some(text) = &external_url
            && !Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            s.problem(
                "external_url",
                format!("{text:?} is not an http:// or https:// URL"),
            );
        }
        s.finish();
        listen.map(|listen| ServerSettings {
            listen,
            external_url: external_url
                .unwrap_or_else(|| format!("http://{listen}"))
                .trim_end_matches('/')
                .to_string(),
        })
    });

    let poll = root.section("poll").map(|mut s| {
        let interval = s.duration("interval", Duration::from_secs(60));
        let query_timeout = s.duration("query_timeout", Duration::from_secs(10));
        let concurrency = s.positive("concurrency", 8);
        s.finish();
        (interval, query_timeout, concurrency)
    });

    let limits = root.section("thresholds").and_then(|mut s| {
        let limits = s.limits(None);
        s.finish();
        limits
    });

    let mut shard_names = HashSet::new();
    let shards: Vec<Option<ShardSettings>> = root.tables("shards", true, |s| {
        let name = s.name("name", &mut shard_names, "shard");
        let url = s.string("url", true);
        let password = s.password(lookup, base);
        let endpoint = url.and_then(|text| s.endpoint("url", &text, &password));
        let schemas = s.string_list("schemas", false);
        if let Some(list) = &schemas
            && list.is_empty()
        {
            s.problem(
                "schemas",
                "is empty: leave it out to watch every schema".to_string(),
            );
        }
        s.finish();
        Some(ShardSettings {
            name: name?,
            endpoint: endpoint?,
            schemas,
        })
    });

    let mut source_names = HashSet::new();
    let sources: Vec<Option<SourceSettings>> = root.tables("sources", false, |s| {
        let name = s.name("name", &mut source_names, "source");
        let kind = s.string("kind", true).and_then(|kind| match kind.as_str() {
            "ticket_server" => Some(SourceKind::TicketServer),
            other => {
                s.problem("kind", format!("unknown source kind {other:?}: expected \"ticket_server\""));
                None
            }
        });
        let password = s.password(lookup, base);
        let servers = s.list("servers", true).map(|values| {
            if values.is_empty() {
                s.problem("servers", "is empty: a source needs at least one server".to_string());
            }
            let mut endpoints = Vec::new();
            let mut seen = HashSet::new();
            for (i, value) in values.into_iter().enumerate() {
                let key = format!("servers[{i}]");
                let Ok(text) = value.into_string() else {
                    s.problem(&key, "must be a URL string".to_string());
                    continue;
                };
                let Some(endpoint) = s.endpoint(&key, &text, &password) else {
                    continue;
                };
                if endpoint.database().is_none() {
                    s.problem(&key, format!("{endpoint} names no database: write the ticket database in the path, e.g. mysql://monitor@ticket-a:3306/tickets"));
                }
                if !seen.insert(endpoint.label()) {
                    s.problem(&key, format!("server {} is listed twice", endpoint.label()));
                }
                endpoints.push(endpoint);
            }
            endpoints
        });
        let table = s.string("table", true);
        if let Some(table) = &table
            && (table.is_empty() || table.contains('\0'))
        {
            s.problem("table", "must be a table name".to_string());
        }
        s.finish();
        Some(SourceSettings {
            name: name?,
            kind: kind?,
            servers: servers?,
            table: table?,
        })
    });

    let defined: HashSet<String> = sources
        .iter()
        .flatten()
        .map(|s| s.name.clone())
        .chain(source_names.iter().cloned())
        .collect();
    let references: Vec<Option<ReferenceRule>> = root.tables("references", false, |s| {
        let source = s.string("source", true);
        if let Some(source) = &source
            && !defined.contains(source)
        {
            let known = if defined.is_empty() {
                "no [[sources]] are defined".to_string()
            } else {
                let mut names: Vec<_> = defined.iter().cloned().collect();
                names.sort();
                format!("defined sources: {}", names.join(", "))
            };
            s.problem(
                "source",
                format!("{source:?} is not a defined source ({known})"),
            );
        }
        let columns = s.globs("columns", true);
        s.finish();
        let source = source.filter(|s| defined.contains(s))?;
        Some(ReferenceRule {
            source,
            columns: columns?,
        })
    });

    let overrides: Vec<Option<Override>> = root.tables("overrides", false, |s| {
        let columns = s.globs("columns", true);
        // With [thresholds] in error the built-in defaults stand in, so that this table's
        // own problems are still reported.
        let limits = s.limits(limits);
        s.finish();
        Some(Override {
            columns: columns?,
            limits: limits?,
        })
    });

    let silences: Vec<Option<Silence>> = root.tables("silences", false, |s| {
        let columns = s.globs("columns", true);
        let until = s.string("until", true).and_then(|text| {
            match DateTime::parse_from_rfc3339(text.trim()) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(e) => {
                    s.problem(
                        "until",
                        format!(
                            "{text:?} is not an RFC 3339 time such as 2026-12-31T00:00:00Z: {e}"
                        ),
                    );
                    None
                }
            }
        });
        let reason = s.string("reason", true);
        if reason.as_ref().is_some_and(|r| r.trim().is_empty()) {
            s.problem(
                "reason",
                "must say why, for whoever wonders why a column does not page".to_string(),
            );
        }
        s.finish();
        Some(Silence {
            columns: columns?,
            until: until?,
            reason: reason.filter(|r| !r.trim().is_empty())?,
        })
    });

    let mut notifiers = Vec::new();
    if root.has("pagerduty") {
        let pagerduty = root.section("pagerduty").and_then(|mut s| {
            let key = s.secret("routing_key_env", "routing_key_file", lookup, base);
            let kind = key.map(|routing_key| NotifierKind::PagerDuty { routing_key });
            let notifier = s.notifier("pagerduty", kind, Some(PAGERDUTY_URL));
            s.finish();
            notifier
        });
        notifiers.push(pagerduty);
    }
    if root.has("webhook") {
        let webhook = root.section("webhook").and_then(|mut s| {
            let notifier = s.notifier("webhook", Some(NotifierKind::Webhook), None);
            s.finish();
            notifier
        });
        notifiers.push(webhook);
    }

    let state_path = root.section("state").map(|mut s| {
        let path = s
            .string("path", false)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("headroom-state.json"));
        s.finish();
        if path.is_absolute() {
            path
        } else {
            base.join(path)
        }
    });

    root.finish();

    let problems = problems.take();
    if !problems.is_empty() {
        return Err(problems);
    }
    // With no problems recorded every part parsed; the fallbacks below are unreachable.
    let missing = || {
        vec![Problem {
            key: "(file)".to_string(),
            message: "incomplete configuration".to_string(),
        }]
    };
    let (interval, query_timeout, concurrency) = match poll {
        Some((Some(i), Some(t), Some(c))) => (i, t, c),
        _ => return Err(missing()),
    };
    Ok(Settings {
        server: server.flatten().ok_or_else(missing)?,
        poll: PollSettings {
            interval,
            query_timeout,
            concurrency,
        },
        policy: Policy {
            default: limits.ok_or_else(missing)?,
            overrides: overrides
                .into_iter()
                .collect::<Option<_>>()
                .ok_or_else(missing)?,
            silences: silences
                .into_iter()
                .collect::<Option<_>>()
                .ok_or_else(missing)?,
        },
        shards: shards
            .into_iter()
            .collect::<Option<_>>()
            .ok_or_else(missing)?,
        sources: sources
            .into_iter()
            .collect::<Option<_>>()
            .ok_or_else(missing)?,
        references: references
            .into_iter()
            .collect::<Option<_>>()
            .ok_or_else(missing)?,
        notifiers: notifiers
            .into_iter()
            .collect::<Option<_>>()
            .ok_or_else(missing)?,
        state_path: state_path.ok_or_else(missing)?,
    })
}

/// A table being read: takes keys out one by one, so that what is left at `finish` is
/// unknown.
struct Section {
    path: String,
    table: BTreeMap<String, Value>,
    /// Shared by every section of one parse.
    problems: Rc<RefCell<Vec<Problem>>>,
}

impl Section {
    fn root(value: Value, problems: Rc<RefCell<Vec<Problem>>>) -> Section {
        let table = match value.kind {
            ValueKind::Table(t) => t.into_iter().collect(),
            _ => BTreeMap::new(),
        };
        Section {
            path: String::new(),
            table,
            problems,
        }
    }

    fn child(&self, path: String, table: BTreeMap<String, Value>) -> Section {
        Section {
            path,
            table,
            problems: Rc::clone(&self.problems),
        }
    }

    fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn problem(&mut self, key: &str, message: String) {
        let key = self.key(key);
        self.problems.borrow_mut().push(Problem { key, message });
    }

    /// A sub-table (`[poll]`); absent is an empty table, so defaults apply.
    fn section(&mut self, key: &str) -> Option<Section> {
        let path = self.key(key);
        match self.table.remove(key).map(|v| v.kind) {
            None | Some(ValueKind::Nil) => Some(self.child(path, BTreeMap::new())),
            Some(ValueKind::Table(t)) => Some(self.child(path, t.into_iter().collect())),
            Some(_) => {
                self.problem(key, "must be a table, e.g. [".to_string() + key + "]");
                None
            }
        }
    }

    /// An array of tables (`[[shards]]`), each read by `read`.
    fn tables<T>(
        &mut self,
        key: &str,
        required: bool,
        mut read: impl FnMut(&mut Section) -> Option<T>,
    ) -> Vec<Option<T>> {
        let Some(values) = self.list(key, required) else {
            return vec![None];
        };
        if required && values.is_empty() {
            self.problem(key, format!("is empty: at least one [[{key}]] is needed"));
        }
        let mut out = Vec::new();
        for (i, value) in values.into_iter().enumerate() {
            let path = format!("{}[{i}]", self.key(key));
            match value.kind {
                ValueKind::Table(t) => {
                    let mut section = self.child(path, t.into_iter().collect());
                    out.push(read(&mut section));
                }
                _ => {
                    self.problem(
                        &format!("{key}[{i}]"),
                        format!("must be a table: write it as [[{key}]]"),
                    );
                    out.push(None);
                }
            }
        }
        out
    }

    fn list(&mut self, key: &str, required: bool) -> Option<Vec<Value>> {
        match self.table.remove(key).map(|v| v.kind) {
            None | Some(ValueKind::Nil) => {
                if required {
                    self.problem(key, "is missing".to_string());
                    None
                } else {
                    Some(Vec::new())
                }
            }
            Some(ValueKind::Array(values)) => Some(values),
            Some(_) => {
                self.problem(key, "must be a list".to_string());
                None
            }
        }
    }

    fn string(&mut self, key: &str, required: bool) -> Option<String> {
        match self.table.remove(key) {
            None => {
                if required {
                    self.problem(key, "is missing".to_string());
                }
                None
            }
            Some(value) => match value.kind {
                ValueKind::String(s) => Some(s),
                ValueKind::Table(_) | ValueKind::Array(_) | ValueKind::Nil => {
                    self.problem(key, "must be a string".to_string());
                    None
                }
                other => Some(Value::new(None, other).to_string()),
            },
        }
    }

    fn string_list(&mut self, key: &str, required: bool) -> Option<Vec<String>> {
        if !required && !self.table.contains_key(key) {
            return None;
        }
        let values = self.list(key, required)?;
        let mut out = Vec::new();
        for (i, value) in values.into_iter().enumerate() {
            match value.kind {
                ValueKind::String(s) => out.push(s),
                _ => self.problem(&format!("{key}[{i}]"), "must be a string".to_string()),
            }
        }
        Some(out)
    }

    fn duration(&mut self, key: &str, default: Duration) -> Option<Duration> {
        let Some(text) = self.string(key, false) else {
            return Some(default);
        };
        match humantime::parse_duration(text.trim()) {
            Ok(d) if d.is_zero() => {
                self.problem(key, "must be longer than zero".to_string());
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(
                    key,
                    format!("{text:?} is not a duration such as \"60s\" or \"5m\": {e}"),
                );
                None
            }
        }
    }

    fn positive(&mut self, key: &str, default: usize) -> Option<usize> {
        let Some(value) = self.table.remove(key) else {
            return Some(default);
        };
        let shown = value.to_string();
        match value.into_uint() {
            Ok(n) if n >= 1 => usize::try_from(n).ok(),
            _ => {
                self.problem(
                    key,
                    format!("{shown:?} is not a whole number of at least 1"),
                );
                None
            }
        }
    }

    fn ratio(&mut self, key: &str, default: Ppm) -> Option<Ppm> {
        let Some(value) = self.table.remove(key) else {
            return Some(default);
        };
        let shown = value.to_string();
        match value.into_float().ok().and_then(Ppm::from_ratio) {
            Some(p) if p.get() > 0 => Some(p),
            _ => {
                self.problem(
                    key,
                    format!("{shown:?} is not a ratio above 0 and at most 1, such as 0.85"),
                );
                None
            }
        }
    }

    fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// Ratio and time thresholds; absent keys take `defaults` (or the built-in defaults).
    fn limits(&mut self, defaults: Option<Limits>) -> Option<Limits> {
        let d = defaults.unwrap_or(Limits {
            ratio: Thresholds {
                warning: Ppm::from_ratio(0.70)?,
                critical: Ppm::from_ratio(0.85)?,
            },
            warning_within: Duration::from_secs(90 * 86_400),
            critical_within: Duration::from_secs(14 * 86_400),
        });
        let warning = self.ratio("warning", d.ratio.warning);
        let critical = self.ratio("critical", d.ratio.critical);
        let warning_within = self.duration("warning_within", d.warning_within);
        let critical_within = self.duration("critical_within", d.critical_within);
        let mut ok = true;
        if let (Some(w), Some(c)) = (warning, critical)
            && w >= c
        {
            self.problem(
                "warning",
                format!(
                    "warning ({}) must be below critical ({})",
                    w.as_ratio(),
                    c.as_ratio()
                ),
            );
            ok = false;
        }
        if let (Some(w), Some(c)) = (warning_within, critical_within)
            && w <= c
        {
            self.problem(
                "warning_within",
                format!(
                    "warning_within ({}) must be longer than critical_within ({})",
                    humantime::format_duration(w),
                    humantime::format_duration(c)
                ),
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        Some(Limits {
            ratio: Thresholds {
                warning: warning?,
                critical: critical?,
            },
            warning_within: warning_within?,
            critical_within: critical_within?,
        })
    }

    /// `columns` / `exclude` glob lists, checked.
    fn globs(&mut self, key: &str, required: bool) -> Option<ColumnGlobs> {
        let columns = self.string_list(key, required);
        if columns.as_ref().is_some_and(Vec::is_empty) {
            self.problem(
                key,
                "is empty: list at least one schema.table.column glob".to_string(),
            );
        }
        let exclude = self.string_list("exclude", false).unwrap_or_default();
        let mut ok = true;
        for (k, list) in [
            (key, columns.as_deref().unwrap_or_default()),
            ("exclude", &exclude[..]),
        ] {
            for (i, pattern) in list.iter().enumerate() {
                if let Err(message) = check_glob(pattern) {
                    self.problem(&format!("{k}[{i}]"), message);
                    ok = false;
                }
            }
        }
        let columns = columns?;
        if !ok || columns.is_empty() {
            return None;
        }
        ColumnGlobs::new(&columns, &exclude).ok()
    }

    /// A secret from an environment variable (`env_key`) or a file (`file_key`): exactly
    /// one of the two.
    fn secret(
        &mut self,
        env_key: &str,
        file_key: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
        base: &Path,
    ) -> Option<SecretString> {
        let env = self.string(env_key, false);
        let file = self.string(file_key, false);
        match (env, file) {
            (Some(_), Some(_)) => {
                self.problem(env_key, format!("and {file_key} are both set: keep one"));
                None
            }
            (None, None) => {
                self.problem(env_key, format!("is missing: set {env_key} or {file_key}"));
                None
            }
            (Some(var), None) => match lookup(&var).filter(|v| !v.trim().is_empty()) {
                Some(value) => Some(SecretString::from(value.trim().to_string())),
                None => {
                    self.problem(env_key, format!("environment variable {var} is not set"));
                    None
                }
            },
            (None, Some(file)) => {
                let path = base.join(file);
                match std::fs::read_to_string(&path) {
                    Ok(text) if !text.trim().is_empty() => {
                        Some(SecretString::from(text.trim().to_string()))
                    }
                    Ok(_) => {
                        self.problem(file_key, format!("{} is empty", path.display()));
                        None
                    }
                    Err(e) => {
                        self.problem(file_key, format!("cannot read {}: {e}", path.display()));
                        None
                    }
                }
            }
        }
    }

    /// A notifier's keys: `url` (default `default_url`), `min_severity`, `blind_after`, and
    /// the delivery knobs.
    fn notifier(
        &mut self,
        name: &'static str,
        kind: Option<NotifierKind>,
        default_url: Option<&str>,
    ) -> Option<NotifierSettings> {
        let url = match (self.string("url", default_url.is_none()), default_url) {
            (Some(text), _) => Some(text),
            (None, Some(d)) => Some(d.to_string()),
            (None, None) => None,
        };
        let url = url.and_then(|text| match Url::parse(&text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
            _ => {
                self.problem(
                    "url",
                    format!("{} is not an http:// or https:// URL", redact_text(&text)),
                );
                None
            }
        });
        let min_severity = match self.string("min_severity", false).as_deref() {
            None | Some("critical") => Some(Severity::Critical),
            Some("warning") => Some(Severity::Warning),
            Some(other) => {
                self.problem(
                    "min_severity",
                    format!("{other:?} is not a severity: expected \"critical\" or \"warning\""),
                );
                None
            }
        };
        let blind_after = self.duration("blind_after", Duration::from_secs(15 * 60));
        let retry_initial = self.duration("retry_initial", Duration::from_secs(1));
        let retry_max = self.duration("retry_max", Duration::from_secs(300));
        let rate = self.positive("max_events_per_minute", 100);
        let timeout = self.duration("timeout", Duration::from_secs(10));
        Some(NotifierSettings {
            name,
            kind: kind?,
            url: url?,
            min_severity: min_severity?,
            blind_after: blind_after?,
            retry_initial: retry_initial?,
            retry_max: retry_max?,
            max_events_per_minute: u32::try_from(rate?).unwrap_or(u32::MAX),
            timeout: timeout?,
        })
    }

    /// A unique, non-empty name.
    fn name(&mut self, key: &str, seen: &mut HashSet<String>, what: &str) -> Option<String> {
        let name = self.string(key, true)?;
        if name.trim().is_empty() {
            self.problem(key, "must not be empty".to_string());
            return None;
        }
        if !seen.insert(name.clone()) {
            self.problem(key, format!("{what} name {name:?} is used twice"));
            return None;
        }
        Some(name)
    }

    /// The section's `password_env` / `password_file`, resolved: `Some(None)` when neither
    /// is set, `None` when one is wrong (the problem is recorded).
    fn password(
        &mut self,
        lookup: &dyn Fn(&str) -> Option<String>,
        base: &Path,
    ) -> Option<Option<SecretString>> {
        let env = self.string("password_env", false);
        let file = self.string("password_file", false);
        match (env, file) {
            (Some(_), Some(_)) => {
                self.problem(
                    "password_env",
                    "and password_file are both set: keep one".to_string(),
                );
                None
            }
            (Some(var), None) => match lookup(&var) {
                Some(value) => Some(Some(SecretString::from(value))),
                None => {
                    self.problem(
                        "password_env",
                        format!("environment variable {var} is not set"),
                    );
                    None
                }
            },
            (None, Some(file)) => {
                let path = base.join(file);
                match std::fs::read_to_string(&path) {
                    Ok(text) => Some(Some(SecretString::from(
                        text.trim_end_matches(['\r', '\n']).to_string(),
                    ))),
                    Err(e) => {
                        self.problem(
                            "password_file",
                            format!("cannot read {}: {e}", path.display()),
                        );
                        None
                    }
                }
            }
            (None, None) => Some(None),
        }
    }

    /// A server URL under `key`, with the password from the URL or from `password`.
    fn endpoint(
        &mut self,
        key: &str,
        text: &str,
        password: &Option<Option<SecretString>>,
    ) -> Option<Endpoint> {
        match parse_url(text) {
            Ok((url, url_password)) => {
                let configured = password.as_ref()?;
                if url_password.is_some() && configured.is_some() {
                    self.problem(
                        key,
                        "has a password and password_env or password_file is also set: keep one"
                            .to_string(),
                    );
                    return None;
                }
                Some(Endpoint {
                    url,
                    password: url_password.or_else(|| configured.clone()),
                })
            }
            Err(message) => {
                self.problem(key, message);
                None
            }
        }
    }

    /// Reports every key nobody asked for.
    fn finish(&mut self) {
        let unknown: Vec<String> = std::mem::take(&mut self.table).into_keys().collect();
        for key in unknown {
            self.problem(&key, "unknown key".to_string());
        }
    }
}

/// Parses a `mysql://` URL and splits off its password. Every message shows the URL
/// redacted.
fn parse_url(text: &str) -> Result<(Url, Option<SecretString>), String> {
    let shown = redact_text(text);
    let mut url = Url::parse(text).map_err(|e| format!("{shown} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "mysql" | "mariadb") {
        return Err(format!(
            "{shown} has scheme {:?}: expected mysql:// or mariadb://",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{shown} names no host"));
    }
    if url.username().is_empty() {
        return Err(format!(
            "{shown} names no user: write mysql://USER@HOST:PORT"
        ));
    }
    let password = url
        .password()
        .map(|p| SecretString::from(percent_decode(p)));
    // Cannot fail: the URL has a host.
    let _ = url.set_password(None);
    // The driver's own reading of the options (ssl-mode=..., charset=...), checked now so
    // that a bad one is a configuration problem with its key, not a failure at start.
    sqlx::mysql::MySqlConnectOptions::from_str(url.as_str())
        .map_err(|e| format!("{shown}: {e}"))?;
    Ok((url, password))
}

/// A URL string as it may be shown: everything between the scheme (or the start) and the
/// last `@` after the user name is replaced by `***`. Works on text that is not a valid
/// URL too, so a malformed URL's password is never echoed.
pub fn redact_text(text: &str) -> String {
    let start = text.find("://").map(|i| i + 3).unwrap_or(0);
    let Some(at) = text.rfind('@').filter(|&at| at >= start) else {
        return text.to_string();
    };
    let userinfo = &text[start..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &text[..start],
            &userinfo[..colon],
            &text[at..]
        ),
        None => text.to_string(),
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn check_glob(pattern: &str) -> Result<(), String> {
    if pattern.split('.').count() != 3 {
        return Err(format!(
            "{pattern:?} must have the form schema.table.column, e.g. \"etsy.*.*_id\""
        ));
    }
    Glob::new(pattern)
        .map(|_| ())
        .map_err(|e| format!("{pattern:?} is not a valid glob: {e}"))
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, String> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern)
            .case_insensitive(true)
            .literal_separator(false)
            .build()
            .map_err(|e| format!("{pattern:?}: {e}"))?;
        builder.add(glob);
    }
    builder.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::redact_text;

    #[test]
    fn redaction_hides_passwords_even_in_malformed_urls() {
        assert_eq!(
            redact_text("mysql://monitor:s3cret@db1:3306"),
            "mysql://monitor:***@db1:3306"
        );
        assert_eq!(
            redact_text("monitor:s3cret@db1:3306"),
            "monitor:***@db1:3306"
        );
        assert_eq!(
            redact_text("mysql://monitor:12/34@x@db1/tickets"),
            "mysql://monitor:***@db1/tickets"
        );
        assert_eq!(
            redact_text("mysql://monitor@db1:3306"),
            "mysql://monitor@db1:3306"
        );
        assert_eq!(redact_text("not a url"), "not a url");
    }
}
