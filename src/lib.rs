//! headroom watches every integer ID column of a sharded MySQL/MariaDB fleet, and the
//! ticket servers that feed them, and says how close each one is to running out.
//!
//! # Layout
//! The way of a poll, top to bottom: what is read, the pure steps, what is published, who
//! acts on it.
//! - [`config`]: settings from TOML and `HEADROOM__*` variables, validated all at once; one
//!   reader per section.
//! - [`engine`]: the one seam between the daemon and the database engines: an enum over
//!   them picked by the URL's scheme; a `Connector` per server hands out `Session`s that
//!   answer in plain data (a shard's catalog, `MAX()` dives, a ticket server's reading).
//! - [`mysql`]: everything that speaks MySQL and MariaDB: connections and read-only
//!   sessions, statements and identifier quoting, the information_schema readers, the
//!   shard's strict mode (`sql_mode`), MAX dives, ticket servers.
//! - [`db`]: what every engine shares: errors that never repeat what a server sent, the
//!   one time bound on a step, and the per-shard session budget of HTTP requests.
//! - [`inventory`]: what exists on a shard, as plain data whatever its engine (integer
//!   columns, foreign keys, leading index columns, primary keys); nothing here speaks SQL.
//! - [`sources`]: ID generators (ticket servers), and whether a source's servers can hand
//!   out the same ID (`collision`, pure).
//! - [`dives`]: which columns a poll reads `MAX()` from (at-risk and new ones every poll, the
//!   others in turn within `poll.reread_within`), and each shard's last dives. Pure.
//! - [`inference`]: undeclared references guessed from names (`kind = inferred`). Pure.
//! - [`headroom`]: pure arithmetic: type maxima, remaining, ratio, status, percentages.
//! - [`measure`]: which columns are measured and how (`measure/mod.rs`), their `current`
//!   along FK chains (`resolve`), and [`measure::report`], the one pure step from what was
//!   read to a shard's reports (`report`); dives a column needs (`dives`). Pure.
//! - [`growth`]: bounded histories, steps, growth rates and time to exhaustion (pure), and
//!   their file beside the state file.
//! - [`policy`]: status from ratio and time thresholds, overrides, silences, column globs,
//!   clamped columns on shards without strict mode. Pure.
//! - [`poller`]: the poll loop: reads, calls the pure steps, stores.
//! - [`state`]: the latest known state of shards, sources and columns; publishes each
//!   finished shard poll on a `watch` channel.
//! - [`select`]: the filters and orders of /api/columns and `check`, over a snapshot.
//! - [`pager`]: subscribes to the polls: the conditions evaluated, incident lifecycle,
//!   delivery (PagerDuty Events v2, webhook), the state file and its writer, reloads.
//! - [`metrics`]: every Prometheus metric, in one place: the registry (`metrics/mod.rs`),
//!   the shard and source families (`gauges`), the per-column families written at each
//!   scrape (`columns`).
//! - [`api`]: the axum router: /metrics, /api/columns, /api/shards, /api/sources,
//!   /api/incidents, health; the JSON formats (a column row, `api/row.rs`, also of `check`
//!   and `plan`; the pager's incidents, `api/incidents.rs`); one-column plans computed once
//!   per poll, within the per-shard session budget of requests ([`db::budget`]).
//! - [`web`]: the HTTP edge: connection limits and timeouts, TLS and basic auth from the
//!   web configuration file.
//! - [`cluster`]: which shards this replica owns when a fleet is split (`--member I/N`).
//! - [`check`]: the one-shot `headroom check` report and its exit codes.
//! - [`plan`]: `headroom plan`: the statements that widen the columns at warning or
//!   worse or mismatched, and every column that must widen with them.
//! - [`lint`]: `headroom lint`, the CI gate: pure rules over one poll of every configured
//!   shard (narrow, signed or disallowed ID types, shards without strict mode), and the
//!   text, JSON and JUnit reports.
//! - [`bump`]: `headroom bump`: raises a development fleet's counters above a bound (pure
//!   planning; `bump/servers.rs` reads and writes).
//! - [`startup`]: `App::build` and `App::run`.
//! - [`reload`]: a new configuration without a restart (SIGHUP, `POST /-/reload`): load,
//!   compare, swap.
//! - [`shutdown`]: SIGINT/SIGTERM to a cancellation token.
//! - [`telemetry`]: tracing set-up; [`escape`]: names from databases made safe for
//!   terminals and text logs; [`durable`]: files replaced atomically, fsynced; [`hash`]:
//!   FNV-1a, the one stable hash of names (shard owners, first polls, long dedup keys).
//!
//! Throwaway servers for the tests and the demo live in a crate of their own
//! (`tests/sandbox`), never compiled into the daemon.

pub mod api;
pub mod bump;
pub mod check;
pub mod cluster;
pub mod config;
pub mod db;
pub mod dives;
pub mod durable;
pub mod engine;
pub mod escape;
pub mod growth;
pub mod hash;
pub mod headroom;
pub mod inference;
pub mod inventory;
pub mod lint;
pub mod measure;
pub mod metrics;
pub mod mysql;
pub mod pager;
pub mod plan;
pub mod policy;
pub mod poller;
pub mod reload;
pub mod select;
pub mod shutdown;
pub mod sources;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod web;
