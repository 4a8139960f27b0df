//! The pages people look at, served by the daemon beside the JSON they mirror: the fleet
//! at a glance (`/`), a column with its history, risk and plan
//! (`/columns/{shard}/{schema}/{table}/{column}`), the shards (`/shards`), the ticket
//! sources (`/sources`) and the incidents (`/incidents`).
//!
//! Server-rendered HTML from maud templates (every value escaped by construction), charts
//! drawn as SVG on the server, one small stylesheet and one small script served from here,
//! and a Content-Security-Policy that forbids everything else: a page works on an
//! air-gapped network. Every page reads the store's latest state, as the JSON does; only a
//! column's plan reads its shard, through the plan endpoint's cache and per-shard budget.
//!
//! # Layout
//! - `layout`: the shell (navigation, JSON twin), the stylesheet and script, the headers;
//! - `format`: numbers, times and names as the pages write them;
//! - `fleet`, `column`, `shards`, `sources`, `incidents`: one file per page;
//! - `chart`: a column's history as SVG.

pub mod chart;
pub mod column;
pub mod fleet;
pub mod format;
pub mod incidents;
pub mod layout;
pub mod shards;
pub mod sources;

#[cfg(test)]
mod tests;
