//! headroom watches every integer ID column of a sharded MySQL/MariaDB fleet, and the
//! ticket servers that feed them, and says how close each one is to running out.
//!
//! # Layout
//! The way of a poll, top to bottom: what is read, the pure steps, what is published, who
//! acts on it.
//! - [`config`]: settings from TOML and `HEADROOM__*` variables, validated all at once; one
//!   reader per section.
//! - [`engine`]: the one seam to the database engines: the URL's scheme picks one;
//!   connectors and sessions answer in plain data (a shard's catalog, `MAX()` dives, ticket
//!   readings, what a plan needs), a plan's statements are written in the engine's words,
//!   and `bump` writes through its write sessions.
//! - [`mysql`]: everything that speaks MySQL and MariaDB, and nothing else does: sessions,
//!   queries, identifier quoting, the information_schema readers, strict mode, dives,
//!   ticket servers, plan's definition and foreign-key reads and statements
//!   (`mysql/plan/`), bump's counters, locks and ALTERs (`mysql/bump.rs`).
//! - [`postgres`]: everything that speaks PostgreSQL: sessions bound to one database, queries,
//!   identifier quoting, the databases a shard watches, one database's catalog (integer
//!   columns, sequences and what they feed, foreign keys, indexes), dives and wraparound ages,
//!   plan's reads, statements and online steps (`postgres/plan/`).
//! - [`db`]: what every engine shares: the errors of a read (never what a server sent),
//!   the one time bound on a step, and the per-shard session budget of requests.
//! - [`inventory`]: what exists on a shard (columns, foreign keys, indexes), as plain data.
//! - [`sources`]: ID generators (ticket servers): a round of a source's readings assessed
//!   in one pure step (`assess`: the highest ID over its servers, growth, status), and
//!   whether its servers can hand out the same ID (`collision`, pure).
//! - [`dives`]: which columns a poll reads `MAX()` from (at-risk and new ones every poll, the
//!   others in turn within `poll.reread_within`), and each shard's last dives. Pure.
//! - [`inference`]: undeclared references guessed from names (`kind = inferred`). Pure.
//! - [`headroom`]: pure arithmetic: type maxima, remaining, ratio, status, percentages.
//! - [`measure`]: which columns are measured and how (`measure/mod.rs`), their `current`
//!   along FK chains (`resolve`), and the one pure step from what a shard poll read to what
//!   the store takes: [`measure::prepare`] (inference and the plan), then
//!   [`measure::report`] (reports, strict mode, ambiguity: a `ShardResult`); dives a column
//!   needs (`dives`). Pure.
//! - [`growth`]: bounded histories, steps, growth rates and time to exhaustion (pure), and
//!   their file beside the state file.
//! - [`policy`]: status from ratio and time thresholds, overrides, silences, column globs,
//!   clamped columns on shards without strict mode. Pure.
//! - [`poller`]: the poll loop, wiring only: reads through the engine, calls the pure
//!   steps, hands each result to the store in one call. It knows neither metrics nor pager.
//! - [`state`]: the latest known state of shards, sources and columns; only stores, and
//!   publishes each finished shard poll on a `watch` channel; holds the handle of the
//!   poller's growth histories, for requests to read.
//! - [`select`]: the filters and orders of /api/columns and `check`, over a snapshot.
//! - [`pager`]: subscribes to the polls: the conditions evaluated, incident lifecycle,
//!   delivery (PagerDuty Events v2, webhook), the state file and its writer, reloads.
//! - [`metrics`]: every Prometheus metric, in one place: the registry (`metrics/mod.rs`),
//!   the shard and source families (`gauges`) and the per-column ones (`columns`), all
//!   following the store's state at each scrape.
//! - [`api`]: the axum router: the pages, /metrics, /api/columns, /api/shards,
//!   /api/sources, /api/incidents, health; the JSON formats (a column row, `api/row.rs`, also
//!   of `check` and `plan`; the pager's incidents, `api/incidents.rs`; a column's history,
//!   `api/history.rs`); one-column plans computed once per poll, within the per-shard
//!   session budget of requests ([`db::budget`]).
//! - [`pages`]: the HTML pages beside the JSON (`/`, `/columns/...`, `/shards`, `/sources`,
//!   `/incidents`): maud templates, server-drawn SVG charts, one stylesheet, a strict
//!   Content-Security-Policy; read from the store like the JSON.
//! - [`web`]: the HTTP edge: connection limits and timeouts, TLS and basic auth from the
//!   web configuration file.
//! - [`cluster`]: which shards this replica owns when a fleet is split (`--member I/N`).
//! - [`check`]: the one-shot `headroom check` report and its exit codes.
//! - [`plan`]: `headroom plan`: the columns at warning or worse or mismatched, every
//!   column that must widen with them and the type each takes (pure), read and written
//!   through each shard's engine (the statements and the reads are in `mysql/plan/` and
//!   `postgres/plan/`).
//! - [`lint`]: `headroom lint`, the CI gate: pure rules over one poll of every configured
//!   shard (narrow, signed or disallowed ID types, shards without strict mode), and the
//!   text, JSON and JUnit reports.
//! - [`infer`]: `headroom infer`: every configured shard's catalog read once, the
//!   inference's guesses with their evidence and runners-up, the ambiguous columns, and the
//!   `[[inference.rules]]` pins that settle them, as text or JSON.
//! - [`bump`]: `headroom bump`: raises a development fleet's counters above a bound (pure
//!   planning and the report; `bump/servers.rs` reads every server, then raises, each
//!   through its engine's write session; the MySQL statements are in `mysql/bump.rs`).
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
pub mod infer;
pub mod inference;
pub mod inventory;
pub mod lint;
pub mod measure;
pub mod metrics;
pub mod mysql;
pub mod pager;
pub mod pages;
pub mod plan;
pub mod policy;
pub mod poller;
pub mod postgres;
pub mod reload;
pub mod select;
pub mod shutdown;
pub mod sources;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod web;
pub mod wraparound;
