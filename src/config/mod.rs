//! Settings: the TOML file named by `--config`, overridden by `HEADROOM__SECTION__KEY`
//! environment variables, read through the `config` crate and validated in one pass that
//! reports every problem at once, each with the key (or the variable) that holds it.
//!
//! The file is walked key by key (rather than deserialised straight into structs) so that an
//! unknown key, a missing key, a bad duration and a bad URL in the same file are all listed
//! together instead of one per restart. Unknown keys are errors, as `deny_unknown_fields`
//! would make them, and so are values of the wrong type.
//!
//! # Layout
//! - this file: the settings types, [`load`], and `parse`, which calls one reader per
//!   section and assembles the result;
//! - `section`: the walker every reader uses (typed values, problems, unknown keys);
//! - `server`: `[server]`, `[poll]`;
//! - `fleet`: `[[shards]]`, `[[sources]]`, `[[references]]`;
//! - `include`: `[include] files`, more fleet entries from other files;
//! - `range`: `{N..M}` ranges in a shard's name, URL and password file, expanded;
//! - `environment`: `environment` of a shard or source (`dev`, `staging`, `production`);
//! - `policy`: `[thresholds]`, `[[overrides]]`, `[[silences]]`, glob lists;
//! - `metrics`: `[metrics]`;
//! - `inference`: `[inference]`; `template`: the `[[inference.rules]]` templates, parsed and bound;
//! - `plan`: `[plan]`;
//! - `lint`: `[lint]`;
//! - `notifiers`: `[pagerduty]`, `[webhook]`, `[state]`;
//! - `endpoint`: server URLs, their passwords and redaction;
//! - `secret`: the one reader of passwords and keys from a variable or a file;
//! - `testing` (tests only): settings read after one configured shard.

mod cluster;
mod endpoint;
mod environment;
pub mod file;
mod fleet;
mod include;
mod inference;
mod lint;
mod metrics;
mod notifiers;
mod plan;
mod policy;
mod range;
mod secret;
mod section;
mod server;
pub mod template;
#[cfg(test)]
pub(crate) mod testing;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use config::Value;
use secrecy::SecretString;
use url::Url;

use crate::cluster::Member;
use crate::policy::{ColumnGlobs, Policy, Severity};
use section::Section;

pub use endpoint::{Endpoint, redact_text};
pub use environment::Environment;
pub use lint::{Allow, DEFAULT_ALLOWED_AUTO_INCREMENT, LintSettings};
pub use metrics::{MetricColumns, MetricsSettings};
pub use plan::DEFAULT_REBUILD_MB_PER_SECOND;

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
    /// Every shard this replica monitors, in file order: all configured shards, or with
    /// `[cluster]` (or `run --member`) the ones this member owns.
    pub shards: Vec<ShardSettings>,
    /// This replica's share of a fleet split across replicas; `None`: every shard.
    pub cluster: Option<Member>,
    /// Every shard the configuration names, this replica's or not, in file order.
    pub configured_shards: Vec<ShardSettings>,
    /// Global ID generators.
    pub sources: Vec<SourceSettings>,
    /// Which columns store IDs made by which source.
    pub references: Vec<ReferenceRule>,
    /// `[inference]`: undeclared references guessed from names.
    pub inference: template::Settings,
    /// Where pages go: `[pagerduty]`, `[webhook]`.
    pub notifiers: Vec<NotifierSettings>,
    /// The state file: open incidents and undelivered events.
    pub state_path: PathBuf,
    /// How many per-column series `/metrics` writes.
    pub metrics: MetricsSettings,
    /// What is valid but probably not meant (logged at start-up, printed by `check`).
    pub warnings: Vec<Problem>,
    /// `[plan]`: what `headroom plan` assumes.
    pub plan: PlanSettings,
    /// `[lint]`: what `headroom lint` accepts.
    pub lint: LintSettings,
}

/// `[plan]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSettings {
    /// How fast a table is copied when a column's type changes, in MiB of data and
    /// indexes per second: the rebuild estimate.
    pub rebuild_mb_per_second: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// `host:port` for /metrics and the API; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// How people reach the API, for links in pages; default `http://{listen}`.
    pub external_url: String,
    /// A connection that has not sent complete request headers within this is closed
    /// (also between two requests on a keep-alive connection).
    pub header_read_timeout: Duration,
    /// A request whose handler runs longer is answered 503.
    pub request_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// The web configuration file (TLS, basic auth), resolved against the config's folder;
    /// `run --web.config.file` replaces it.
    pub web_config_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct PollSettings {
    /// Time between the starts of two polls.
    pub interval: Duration,
    /// Limit on each query, on connecting, and on the server side where it supports one.
    pub query_timeout: Duration,
    /// How many shard polls run at once, over all the shards' own schedules.
    pub concurrency: usize,
    /// Limit on a whole shard poll (connecting, inventory, dives, computing); default
    /// `interval`.
    pub shard_timeout: Duration,
    /// Every column whose `MAX()` is read (an index dive) is read again at least this often;
    /// at-risk columns on every poll (see [`crate::dives`]).
    pub reread_within: Duration,
}

#[derive(Debug, Clone)]
pub struct ShardSettings {
    /// Unique name, used as the `shard` label.
    pub name: String,
    pub endpoint: Endpoint,
    /// Schemas to watch; `None` means every non-system schema the user can see.
    pub schemas: Option<Vec<String>>,
    /// PostgreSQL: the databases to watch, as glob patterns; `None` means every database
    /// that accepts connections and is not a template.
    pub databases: Option<Vec<String>>,
    /// Which fleet the shard belongs to (`environment`, default `production`).
    pub environment: Environment,
}

/// The kinds of ID generator headroom can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Flickr-style ticket servers: `REPLACE INTO Tickets64 (stub) VALUES ('a')`.
    TicketServer,
    /// A PostgreSQL sequence that hands out IDs other shards store (`sequence =
    /// "schema.name"` on each server).
    Sequence,
}

impl SourceKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            SourceKind::TicketServer => "ticket_server",
            SourceKind::Sequence => "sequence",
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
    /// The ticket table, e.g. `Tickets64` (`ticket_server`; empty for `sequence`).
    pub table: String,
    /// The sequence, `(schema, name)` (`sequence` sources only).
    pub sequence: Option<(String, String)>,
    /// Which fleet the source belongs to (`environment`, default `production`).
    pub environment: Environment,
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
    /// A JSON POST of every event (docs/paging.md: "Webhook").
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// What the command line sets over the file: applied by [`load_with`] on every load (at
/// start and on each reload), so that a reload never forgets them.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `run --member I/N`: replaces `[cluster]`.
    pub member: Option<Member>,
    /// `run --web.config.file`: replaces `server.web_config_file`.
    pub web_config_file: Option<PathBuf>,
}

/// As [`load`], with the command line's overrides applied.
pub fn load_with(path: &Path, overrides: &Overrides) -> Result<Settings, ConfigError> {
    let mut settings = load(path)?;
    if let Some(file) = &overrides.web_config_file {
        settings.server.web_config_file = Some(file.clone());
    }
    if overrides.member.is_some() {
        settings.set_member(overrides.member);
    }
    Ok(settings)
}

/// As [`load`], with the environment given explicitly (tests); `None` reads the process's.
pub fn load_with_env(
    path: &Path,
    env: Option<BTreeMap<String, String>>,
) -> Result<Settings, ConfigError> {
    if path.is_dir() {
        return Err(ConfigError::Read {
            path: path.to_path_buf(),
            message: "is a directory: give the path of the TOML file".to_string(),
        });
    }
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
    let text = file::read(path).map_err(|message| ConfigError::Read {
        path: path.to_path_buf(),
        message,
    })?;
    let built = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .add_source(environment)
        .build()
        .map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            message: without_quoted_lines(&e.to_string()),
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
                message: without_quoted_lines(&e.to_string()),
            }]
        })?;
    parse(built.cache, lookup, Path::new("."))
}

/// Every key the section readers ask for while reading `text` (no environment, no
/// included file read), as dotted paths with list indices written `[]` (`poll.interval`,
/// `shards[].url`, `lint.allow[].reason`), and sections as their own path (`pagerduty`):
/// what a configuration may hold. A reader asks for its keys whatever their values, so
/// a text with one entry in each list of tables yields every key the parser accepts; the
/// problems found are returned beside them (`unknown key` for any other). The test that
/// keeps docs/configuration.md whole reads this.
pub fn keys_asked(text: &str) -> (BTreeSet<String>, Vec<Problem>) {
    let built = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build();
    match built {
        Ok(built) => {
            let (settings, asked) = parse_asking(built.cache, &|_| None, Path::new("."));
            (asked, settings.err().unwrap_or_default())
        }
        Err(e) => (
            BTreeSet::new(),
            vec![Problem {
                key: "(file)".to_string(),
                message: without_quoted_lines(&e.to_string()),
            }],
        ),
    }
}

/// Walks the merged tree and builds [`Settings`]: one reader per section, every problem
/// collected.
fn parse(
    root: Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    base: &Path,
) -> Result<Settings, Vec<Problem>> {
    parse_asking(root, lookup, base).0
}

/// As [`parse`], with every key the readers asked for (see [`keys_asked`]).
fn parse_asking(
    root: Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    base: &Path,
) -> (Result<Settings, Vec<Problem>>, BTreeSet<String>) {
    let problems = Rc::new(RefCell::new(Vec::new()));
    let mut warnings = Vec::new();
    let mut root = Section::root(root, Rc::clone(&problems));

    let server = table(&mut root, "server", |s| {
        server::server(s, base, &mut warnings)
    });
    let poll = table(&mut root, "poll", server::poll);
    let limits = table(&mut root, "thresholds", |s| {
        let limits = policy::limits(s, None);
        s.finish();
        limits
    });
    let mut files = include::sections(&mut root, base);
    let mut shard_names = HashSet::new();
    let shards = shard_tables(&mut root, &mut files, |s| {
        fleet::shards(s, &mut shard_names, lookup, base)
    });
    // Every name given, also of sources in error, so that a reference to one is not a
    // second problem.
    let mut source_names = HashSet::new();
    let sources = every(&mut root, &mut files, "sources", |s| {
        fleet::source(s, &mut source_names, lookup, base)
    });
    let references = every(&mut root, &mut files, "references", |s| {
        fleet::reference(s, &source_names)
    });
    let overrides = every(&mut root, &mut files, "overrides", |s| {
        policy::an_override(s, limits)
    });
    let silences = every(&mut root, &mut files, "silences", policy::silence);
    for file in &mut files {
        file.finish_with(include::NOT_ALLOWED);
    }
    let notifiers = notifiers::every(&mut root, lookup, base);
    let state_path = table(&mut root, "state", |s| notifiers::state_path(s, base));
    let metrics = table(&mut root, "metrics", metrics::metrics);
    let inference = table(&mut root, "inference", inference::inference);
    let plan = table(&mut root, "plan", plan::plan);
    let lint = table(&mut root, "lint", lint::lint);
    let member = match root.has("cluster") {
        true => table(&mut root, "cluster", cluster::cluster).map(Some),
        false => Some(None),
    };
    root.finish();
    let asked = root.asked();

    // Every reader that gives nothing has recorded why.
    let settings = (|| {
        Some(Settings {
            server: server?,
            poll: poll?,
            policy: Policy {
                default: limits?,
                overrides: all(overrides)?,
                silences: all(silences)?,
            },
            shards: Vec::new(),
            configured_shards: all(shards)?.into_iter().flatten().collect(),
            cluster: member?,
            sources: all(sources)?,
            references: all(references)?,
            notifiers: all(notifiers)?,
            state_path: state_path?,
            metrics: metrics?,
            inference: inference?,
            warnings,
            plan: plan?,
            lint: lint?,
        })
    })();
    (settled(settings, distinct(problems.take())), asked)
}

/// The settings when every reader gave its part and no problem was found, split for this
/// member; every problem otherwise.
fn settled(settings: Option<Settings>, problems: Vec<Problem>) -> Result<Settings, Vec<Problem>> {
    match settings {
        Some(mut settings) if problems.is_empty() => {
            settings.split();
            Ok(settings)
        }
        _ => Err(problems),
    }
}

/// The section `key` read by `read` (a missing one is read as empty).
fn table<T>(
    root: &mut Section,
    key: &str,
    read: impl FnOnce(&mut Section) -> Option<T>,
) -> Option<T> {
    root.section(key).and_then(|mut s| read(&mut s))
}

impl Settings {
    /// Sets this replica's member (`None`: every shard) and keeps in `shards` the
    /// configured shards it owns; a member left with none gets a warning.
    pub fn set_member(&mut self, member: Option<Member>) {
        self.cluster = member;
        self.split();
    }

    fn split(&mut self) {
        self.shards = match self.cluster {
            None => self.configured_shards.clone(),
            Some(member) => self
                .configured_shards
                .iter()
                .filter(|s| member.owns(&s.name))
                .cloned()
                .collect(),
        };
        self.warnings.retain(|w| w.key != "cluster.member");
        if let Some(member) = self.cluster
            && self.shards.is_empty()
        {
            self.warnings.push(Problem {
                key: "cluster.member".to_string(),
                message: format!(
                    "member {member} owns none of the {} configured shards: this replica reads only the sources",
                    self.configured_shards.len()
                ),
            });
        }
    }
}

/// `[[key]]` of the main file, then of every included file, each read by `read`.
fn every<T>(
    root: &mut Section,
    files: &mut [Section],
    key: &str,
    mut read: impl FnMut(&mut Section) -> Option<T>,
) -> Vec<Option<T>> {
    let mut out = root.tables(key, false, &mut read);
    for file in files {
        out.extend(file.tables(key, false, &mut read));
    }
    out
}

/// `[[shards]]` of every file: at least one over all of them.
fn shard_tables<T>(
    root: &mut Section,
    files: &mut [Section],
    read: impl FnMut(&mut Section) -> Option<T>,
) -> Vec<Option<T>> {
    if files.is_empty() {
        return root.tables("shards", true, read);
    }
    let out = every(root, files, "shards", read);
    if out.is_empty() {
        root.problem(
            "shards",
            "is missing: at least one [[shards]] is needed, in this file or an included one"
                .to_string(),
        );
    }
    out
}

/// Each problem once: an entry expanded from a range repeats the problems of the keys its
/// entries share.
fn distinct(problems: Vec<Problem>) -> Vec<Problem> {
    let mut seen = HashSet::new();
    problems
        .into_iter()
        .filter(|p| seen.insert(p.clone()))
        .collect()
}

/// Every part, if each one was read.
fn all<T>(parts: Vec<Option<T>>) -> Option<Vec<T>> {
    parts.into_iter().collect()
}

/// A parse error without the file's text. The TOML parser quotes the offending line under
/// the message (`3 | url = "mysql://monitor:hunter2@...`), and that line may hold a
/// password: only the position and the message are kept.
fn without_quoted_lines(message: &str) -> String {
    message
        .lines()
        .filter(|line| {
            let rest = line
                .trim_start()
                .trim_start_matches(|c: char| c.is_ascii_digit());
            !rest.trim_start().starts_with('|')
        })
        .map(|line| redact_text(line.trim()))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
        .replace(": in ", " in ")
}
