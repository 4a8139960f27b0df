//! One integration-test binary: real MariaDB servers started per test (see harness.rs),
//! a real headroom on a free port, and assertions on exact values.

mod api;
mod browser;
mod bump;
mod cli;
mod cluster;
mod config_errors;
mod dives;
mod docs;
mod e2e;
mod faults;
mod growth;
mod harness;
mod hostile;
mod inference;
mod inference_recall;
mod lint;
mod measurement;
mod metrics;
mod paging;
mod plan;
mod plan_load;
mod postgres_commands;
mod postgres_oracle;
mod postgres_plan;
mod postgres_readers;
mod postgres_sandbox;
mod postgres_shard;
mod reload;
mod safety;
mod schedule;
mod state_file;
mod web;
