//! headroom watches every integer ID column of a sharded MySQL/MariaDB fleet, and the
//! ticket servers that feed them, and says how close each one is to running out.
//!
//! # Layout
//! - [`config`]: settings from TOML and `HEADROOM__*` variables, validated all at once.
//! - [`growth`]: bounded histories, growth rates and time to exhaustion. Pure.
//! - [`headroom`]: pure arithmetic: type maxima, remaining, ratio, status. No I/O.
//! - [`inventory`]: information_schema readers (columns, foreign keys, indexes) and MAX dives.
//! - [`sources`]: ID generators (ticket servers).
//! - [`measure`]: which columns are measured and how; resolves `current`, FK chains. Pure.
//! - [`policy`]: status from ratio and time thresholds, overrides, silences. Pure.
//! - [`db`]: connection pools, read-only sessions, bounded queries, cell decoding.
//! - [`state`]: the latest known state of shards, sources and columns.
//! - [`poller`]: the poll loop that reads, computes and publishes.
//! - [`metrics`]: every Prometheus metric, in one place.
//! - [`api`]: the axum router: /metrics, /api/columns, /api/shards, /api/sources, health.
//! - [`pager`]: incident lifecycle, PagerDuty Events v2 and webhook delivery, state file.
//! - [`check`]: the one-shot `headroom check` report and its exit codes.
//! - [`startup`]: `App::build` and `App::run`.
//! - [`shutdown`]: SIGINT/SIGTERM to a cancellation token.
//! - [`telemetry`]: tracing set-up.
//! - [`sandbox`]: throwaway MariaDB servers for the tests and the demo.

pub mod api;
pub mod check;
pub mod config;
pub mod db;
pub mod growth;
pub mod headroom;
pub mod inventory;
pub mod measure;
pub mod metrics;
pub mod pager;
pub mod policy;
pub mod poller;
pub mod sandbox;
pub mod shutdown;
pub mod sources;
pub mod startup;
pub mod state;
pub mod telemetry;
