//! `headroom plan`: for every column at warning or worse or narrower than what feeds it,
//! ordered by exhaustion date (then by used ratio), the type it widens to and every
//! statement that does it, for it and for each column that must widen with it, with the
//! table's size and what the rebuild costs. The same document for one column is served at
//! `GET /api/columns/{shard}/{schema}/{table}/{column}`.
//!
//! # Layout
//! - `select.rs`: [`select`], what to widen and to what, in the plan's order; the entry of
//!   one column alone (what [`find`] gives the plan endpoint). Pure.
//! - [`related`]: which columns widen together (all groups, or one column's), and the range
//!   a group needs. Pure.
//! - [`rule`]: the target type and the rebuild estimate. Pure.
//! - `found.rs`: what is read at plan time, as plain data ([`Found`], [`Definition`],
//!   [`TableSize`], [`ForeignKey`]).
//! - this file: [`read`] (the loop over shards, each read through its engine's session,
//!   [`crate::engine::Session::plan_reads`]), [`change`] and [`write()`] (pure: the widenings
//!   written out, their statements in the shard's engine's words, [`Engine::widen`]).
//! - [`command`]: the `plan` command and its text, JSON and SQL.
//!
//! The statements and the reads are the engine's: for MySQL and MariaDB, `mysql/plan/`;
//! for PostgreSQL, `postgres/plan/`, whose changes also say in which database they run
//! ([`ColumnPlan::postgres`]).

pub mod command;
#[cfg(test)]
mod fixtures;
pub mod found;
pub mod related;
pub mod rule;
mod select;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::config::{Endpoint, Settings};
use crate::db::budget::{self, Budget, Busy};
use crate::engine::{Connector, Engine};
use crate::headroom::IntType;
use crate::inventory::ColumnId;
use crate::measure::ColumnReport;
use crate::state::Snapshot;

pub use found::{Definition, ForeignKey, Found, SequenceDefinition, TableSize, Widening, Written};
pub use select::select;

pub use crate::measure::plan_path as path;

pub use crate::config::DEFAULT_REBUILD_MB_PER_SECOND;

/// One column that needs widening, and the widenings that do it.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The column as /api/columns shows it.
    pub column: &'a ColumnReport,
    /// The type it takes; its own type when nothing wider exists.
    pub target: IntType,
    /// Why it is in the plan.
    pub reason: String,
    /// Every widening of its group, its own among them (absent when it cannot widen), in
    /// snapshot order; shared by the group's entries, so a large group costs its size once.
    pub widenings: Arc<[Widening]>,
    /// Which group it belongs to: entries of one group share one plan.
    pub group: usize,
}

impl Entry<'_> {
    /// Whether `w` is this entry's own column.
    fn owns(&self, w: &Widening) -> bool {
        *w.shard == *self.column.shard && w.id == self.column.id
    }

    /// Its own widening first, then the rest of its group.
    pub fn ordered(&self) -> Vec<&Widening> {
        let own = self.widenings.iter().filter(|w| self.owns(w));
        own.chain(self.widenings.iter().filter(|w| !self.owns(w)))
            .collect()
    }
}

/// One widening written out: the statement, the commands, the table and its rebuild.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub shard: String,
    pub schema: String,
    pub table: String,
    pub column: String,
    /// The shard's server, for the online schema change tools.
    pub host: String,
    pub port: u16,
    /// COLUMN_TYPE now.
    pub from_type: String,
    /// The type it takes, e.g. `BIGINT UNSIGNED`.
    pub to_type: String,
    /// The definition read at plan time; `null` when the column was not found.
    pub definition: Option<Definition>,
    /// Its table's rows, data and index bytes and engine.
    pub table_size: Option<TableSize>,
    /// `ALTER TABLE … MODIFY COLUMN …`; `null` when it must be written by hand (`note`).
    pub statement: Option<String>,
    pub gh_ost: Option<String>,
    pub pt_online_schema_change: Option<String>,
    /// A type change copies the whole table and rebuilds every index (InnoDB's
    /// ALGORITHM=COPY; other engines copy too).
    pub rebuilds: bool,
    /// Data and index bytes at `[plan] rebuild_mb_per_second`, rounded up.
    pub rebuild_seconds_estimate: Option<u64>,
    /// Why a statement is missing, or what to watch for.
    pub note: Option<String>,
}

/// Writes one widening out from its definition (`None`: the column was not found). Pure.
pub fn change(
    w: &Widening,
    found: Option<&(Definition, TableSize)>,
    endpoint: &Endpoint,
    mb_per_second: u64,
) -> Change {
    write_change(w, found, endpoint, mb_per_second).0
}

/// [`change`], and what the engine wrote beyond it, when it wrote anything.
fn write_change(
    w: &Widening,
    found: Option<&(Definition, TableSize)>,
    endpoint: &Endpoint,
    mb_per_second: u64,
) -> (Change, Option<Written>) {
    // The scheme was checked when the configuration was read: `None` only guards a URL
    // built some other way.
    let engine = Engine::of(&endpoint.url);
    let host = endpoint.url.host_str().unwrap_or("localhost").to_string();
    let port = endpoint
        .url
        .port()
        .unwrap_or(engine.map_or(3306, Engine::default_port));
    let mut out = Change {
        shard: w.shard.clone(),
        schema: w.id.schema.clone(),
        table: w.id.table.clone(),
        column: w.id.column.clone(),
        host,
        port,
        from_type: w.from.clone(),
        to_type: engine.map_or_else(|| w.to.display_name(), |e| e.type_name(w.to)),
        definition: found.map(|f| f.0.clone()),
        table_size: found.map(|f| f.1.clone()),
        statement: None,
        gh_ost: None,
        pt_online_schema_change: None,
        rebuilds: true,
        rebuild_seconds_estimate: found.map(|f| rule::rebuild_seconds(f.1.bytes(), mb_per_second)),
        note: None,
    };
    let Some((definition, _)) = found else {
        out.note = Some("the column was not found when its definition was read".to_string());
        return (out, None);
    };
    if definition.generated() {
        out.note = Some(match engine {
            Some(Engine::Postgres) => {
                "a generated column: widen it by hand, with its expression".to_string()
            }
            _ => "a generated column: write its MODIFY by hand, with its expression".to_string(),
        });
        return (out, None);
    }
    let Some(engine) = engine else {
        out.note = Some(format!(
            "no statement for a server of scheme {:?}",
            endpoint.url.scheme()
        ));
        return (out, None);
    };
    let written = engine.widen(w, &out.host, port, definition);
    out.gh_ost = written.gh_ost.clone();
    out.pt_online_schema_change = written.pt_online_schema_change.clone();
    out.note = written.note.clone();
    out.statement = written.statement.clone();
    if !written.rebuilds {
        out.rebuilds = false;
        out.rebuild_seconds_estimate = None;
    }
    (out, Some(written))
}

/// Why [`read`] could not read what a plan needs.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    /// A shard's request sessions stayed in use for the whole wait.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// A shard could not be read: the message names it.
    #[error("{0}")]
    Shard(String),
}

/// Reads what every widening needs from its shard, each query under `poll.query_timeout`,
/// one shard at a time, through the shard's engine ([`crate::engine::Session::plan_reads`]:
/// each widened column's definition and table size, the foreign keys that hold it, and the
/// widened tables a statement could fail on for what the monitoring user cannot see); an
/// error names the shard. With a `budget` (what HTTP requests read through), each shard's
/// session is taken from it first, waiting at most [`budget::wait_for`]`(poll.query_timeout)`.
pub async fn read(
    settings: &Settings,
    widenings: &[&Widening],
    budget: Option<&Budget>,
) -> Result<Found, ReadError> {
    let mut found = Found::default();
    for shard in &settings.shards {
        let wanted: Vec<&Widening> = widenings
            .iter()
            .copied()
            .filter(|w| w.shard == shard.name)
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let timeout = settings.poll.query_timeout;
        // Held until this shard's session is closed.
        let _permit = match budget {
            Some(b) => Some(b.acquire(&shard.name, budget::wait_for(timeout)).await?),
            None => None,
        };
        let report = |e: crate::db::DbError| {
            ReadError::Shard(format!(
                "shard {}: {}",
                shard.name,
                crate::db::ErrorReport::from(&e).message
            ))
        };
        let connector = Connector::new(
            &shard.endpoint.url,
            shard.endpoint.expose_password(),
            timeout,
        )
        .map_err(|e| ReadError::Shard(format!("shard {}: {e}", shard.name)))?;
        let mut session = connector.acquire().await.map_err(report)?;
        session
            .plan_reads(&shard.name, &wanted, timeout, &mut found)
            .await
            .map_err(report)?;
        session.release();
        connector.close(Duration::from_secs(1)).await;
    }
    Ok(found)
}

/// One statement of a plan, on its shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub shard: String,
    pub statement: String,
}

/// The foreign keys on `shard` that hold a widened column, as child or parent.
fn touched<'a>(found: &'a Found, shard: &str, widenings: &[&Widening]) -> Vec<&'a ForeignKey> {
    let widened: HashSet<(Option<&str>, &str, &str, &str)> = widenings
        .iter()
        .filter(|w| w.shard == shard)
        .map(|w| {
            (
                w.id.database(),
                w.id.schema.as_str(),
                w.id.table.as_str(),
                w.id.column.as_str(),
            )
        })
        .collect();
    found
        .foreign_keys
        .get(shard)
        .into_iter()
        .flatten()
        .filter(|fk| {
            let database = fk.database.as_deref();
            fk.columns.iter().any(|c| {
                widened.contains(&(database, fk.schema.as_str(), fk.table.as_str(), c.as_str()))
            }) || fk.parent_columns.iter().any(|c| {
                widened.contains(&(
                    database,
                    fk.parent_schema.as_str(),
                    fk.parent_table.as_str(),
                    c.as_str(),
                ))
            })
        })
        .collect()
}

/// Every statement in the order it must run, shard by shard: the foreign keys that hold a
/// widened column dropped (where the engine must), each change's statements (`statements`,
/// beside `changes`), the keys added again, each as the shard's engine (`engine_of`) writes
/// it; none on a `withheld` shard. A statement already written on its shard (a sequence
/// shared by two widened columns) is not written again.
fn steps(
    found: &Found,
    widenings: &[&Widening],
    changes: &[(&Change, &[String])],
    withheld: &HashMap<&str, Vec<String>>,
    engine_of: &dyn Fn(&str) -> Option<Engine>,
) -> Vec<Step> {
    let mut shards: Vec<&str> = Vec::new();
    for w in widenings {
        if !shards.contains(&w.shard.as_str()) && !withheld.contains_key(w.shard.as_str()) {
            shards.push(&w.shard);
        }
    }
    let mut out: Vec<Step> = Vec::new();
    for shard in shards {
        // Only a shard not configured has none, and it has neither changes nor keys.
        let Some(engine) = engine_of(shard) else {
            continue;
        };
        let mut written: HashSet<&str> = HashSet::new();
        let mut step = |statement: String| {
            out.push(Step {
                shard: shard.to_string(),
                statement,
            });
        };
        let fks = touched(found, shard, widenings);
        fks.iter()
            .filter_map(|fk| engine.drop_foreign_key(fk))
            .for_each(&mut step);
        for (_, statements) in changes.iter().filter(|(c, _)| c.shard == shard) {
            for statement in statements.iter() {
                if written.insert(statement) {
                    step(statement.clone());
                }
            }
        }
        fks.iter()
            .filter_map(|fk| engine.add_foreign_key(fk))
            .for_each(&mut step);
    }
    out
}

/// One column with its plan: the /api/columns row and `plan`.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    #[serde(flatten)]
    pub column: ColumnReport,
    pub plan: ColumnPlan,
}

/// A column's plan.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnPlan {
    /// The type it takes (its own when nothing wider exists).
    pub target_type: String,
    /// Why it needs widening; empty when it does not.
    pub reason: String,
    /// Its own change first, then every column that must widen with it.
    pub changes: Vec<Change>,
    /// Declared foreign keys that hold a widened column: InnoDB will not change the type
    /// of a column in one, so each is dropped before and added again after.
    pub foreign_keys: Vec<ForeignKey>,
    /// Every statement, in the order to run them, each on its shard.
    pub steps: Vec<Step>,
    /// In `headroom plan`, a column whose group an earlier column's plan already widens:
    /// that column (`shard/schema.table.column`), and no changes of its own here.
    pub same_as: Option<String>,
    /// On PostgreSQL shards, one for each change there, in the order of `changes`: the
    /// database it runs in, its statements and its online steps. Not in the JSON of a plan
    /// with none (MySQL).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub postgres: Vec<PostgresChange>,
}

/// A change on a PostgreSQL shard, in its database: what a session there runs to widen it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostgresChange {
    pub shard: String,
    /// The database that holds the column: every statement below runs there.
    pub database: String,
    pub schema: String,
    pub table: String,
    pub column: String,
    /// Its statements, in order (as in `steps`): the `ALTER TABLE`, then the `ALTER
    /// SEQUENCE` its sequence needs; or the `ALTER SEQUENCE` alone when only the sequence
    /// widens. Empty when none is written (the change's `note` says why).
    pub statements: Vec<String>,
    /// The online alternative to `statements`, which rewrite the table under an ACCESS
    /// EXCLUSIVE lock: a new column kept in step by a trigger, filled in batches, indexed
    /// `CONCURRENTLY`, and swapped in one short transaction; each a statement, to run in
    /// order in autocommit mode. Empty when there are none (`online_note` says why).
    pub online_steps: Vec<String>,
    /// Why there are no online steps, when there are none for a statement that rewrites.
    pub online_note: Option<String>,
}

/// One entry written out with what was `found`.
pub fn write_one(settings: &Settings, e: &Entry<'_>, found: &Found) -> Planned {
    let rate = settings.plan.rebuild_mb_per_second;
    let endpoint = |shard: &str| {
        settings
            .shards
            .iter()
            .find(|s| s.name == shard)
            .map(|s| &s.endpoint)
    };
    let engine_of = |shard: &str| endpoint(shard).and_then(|e| Engine::of(&e.url));
    let ordered = e.ordered();
    let mut written: Vec<(Change, Option<Written>, &Widening)> = ordered
        .iter()
        .filter_map(|w| {
            let at = endpoint(&w.shard)?;
            let got = found
                .definitions
                .get(&(w.shard.clone(), w.id.clone()))
                .and_then(Option::as_ref);
            let (change, written) = write_change(w, got, at, rate);
            Some((change, written, *w))
        })
        .collect();
    let mut foreign_keys = Vec::new();
    for shard in settings.shards.iter().map(|s| s.name.as_str()) {
        foreign_keys.extend(touched(found, shard, &ordered).into_iter().cloned());
    }
    for (c, _, _) in &mut written {
        let keyed = foreign_keys.iter().any(|fk| {
            (fk.schema == c.schema && fk.table == c.table)
                || (fk.parent_schema == c.schema && fk.parent_table == c.table)
        });
        if keyed && c.statement.is_some() && engine_of(&c.shard) == Some(Engine::Mysql) {
            c.gh_ost = None;
            c.note = Some(
                "the table has foreign keys: gh-ost refuses it; run the steps in order (pt-online-schema-change needs --alter-foreign-keys-method)"
                    .to_string(),
            );
        }
    }
    // A shard where something the statements depend on could not be seen gets none: one
    // could fail halfway, with keys dropped and not added again.
    let mut withheld: HashMap<&str, Vec<String>> = HashMap::new();
    for w in &ordered {
        let key = (
            w.shard.clone(),
            w.id.database().map(str::to_string),
            w.id.schema.clone(),
            w.id.table.clone(),
        );
        for why in found.blocked.get(&key).into_iter().flatten() {
            let reasons = withheld.entry(w.shard.as_str()).or_default();
            if !reasons.contains(why) {
                reasons.push(why.clone());
            }
        }
    }
    for (c, written, _) in &mut written {
        if let Some(reasons) = withheld.get(c.shard.as_str())
            && c.statement.is_some()
        {
            c.statement = None;
            c.gh_ost = None;
            c.pt_online_schema_change = None;
            c.note = Some(format!("not written: {}", reasons.join("; ")));
            if let Some(w) = written {
                w.then.clear();
                w.online_steps.clear();
                w.online_note = None;
            }
        }
    }
    // Each change's statements: its own, then what must follow it.
    let statements: Vec<Vec<String>> = written
        .iter()
        .map(|(c, w, _)| {
            let then = w.iter().flat_map(|w| w.then.iter().cloned());
            c.statement.iter().cloned().chain(then).collect()
        })
        .collect();
    let by_change: Vec<(&Change, &[String])> = written
        .iter()
        .zip(&statements)
        .map(|((c, _, _), s)| (c, s.as_slice()))
        .collect();
    let steps = steps(found, &ordered, &by_change, &withheld, &engine_of);
    let postgres: Vec<PostgresChange> = written
        .iter()
        .zip(&statements)
        .filter_map(|((c, written, w), statements)| {
            let database = w.id.database()?;
            let (online_steps, online_note) = match written {
                Some(w) => (w.online_steps.clone(), w.online_note.clone()),
                None => (Vec::new(), None),
            };
            Some(PostgresChange {
                shard: c.shard.clone(),
                database: database.to_string(),
                schema: c.schema.clone(),
                table: c.table.clone(),
                column: c.column.clone(),
                statements: statements.clone(),
                online_steps,
                online_note,
            })
        })
        .collect();
    Planned {
        column: e.column.clone(),
        plan: ColumnPlan {
            target_type: target_type(settings, e),
            reason: e.reason.clone(),
            changes: written.into_iter().map(|(c, _, _)| c).collect(),
            foreign_keys,
            steps,
            same_as: None,
            postgres,
        },
    }
}

/// One column of `snapshot`; `Err` says which of the shard or the column is not known.
/// The whole name counts, its database too: a PostgreSQL shard may hold the same
/// `schema.table.column` in several databases, and a column named without one is a MySQL
/// column. Cheap: one shard's columns are searched, nothing is planned.
pub fn locate<'a>(
    snapshot: &'a Snapshot,
    shard: &str,
    id: &ColumnId,
) -> Result<&'a ColumnReport, String> {
    place(snapshot, shard, id).map(|(s, c)| &snapshot.shards[s].columns[c])
}

/// Where [`locate`]'s column sits in `snapshot`.
fn place(snapshot: &Snapshot, shard: &str, id: &ColumnId) -> Result<related::Place, String> {
    let s = snapshot
        .shards
        .iter()
        .position(|s| s.name == shard)
        .ok_or_else(|| format!("no shard named {shard:?}"))?;
    let c = snapshot.shards[s]
        .columns
        .iter()
        // The whole name: its database too (PostgreSQL).
        .position(|c| c.id == *id)
        .ok_or_else(|| format!("no ID column {id} is known on shard {shard:?}"))?;
    Ok((s, c))
}

/// One column of `snapshot` and its entry in the plan (`None`: it needs no widening), as
/// [`select`] gives it (its `group` aside); `Err` as [`locate`]'s. Plans only the column's
/// own group ([`select::select_one`]).
pub fn find<'a>(
    snapshot: &'a Snapshot,
    shard: &str,
    id: &ColumnId,
) -> Result<(&'a ColumnReport, Option<Entry<'a>>), String> {
    let (s, c) = place(snapshot, shard, id)?;
    Ok((
        &snapshot.shards[s].columns[c],
        select::select_one(snapshot, (s, c)),
    ))
}

/// A column that needs no widening, with its empty plan.
pub fn unplanned(column: &ColumnReport) -> Planned {
    Planned {
        column: column.clone(),
        plan: ColumnPlan {
            target_type: column.int_type.display_name(),
            reason: String::new(),
            changes: Vec::new(),
            foreign_keys: Vec::new(),
            steps: Vec::new(),
            same_as: None,
            postgres: Vec::new(),
        },
    }
}

/// Every entry written out with what was `found`: the first of each group in full, the
/// others `same_as` it, so that a group is written once however many of its columns are
/// at risk.
pub fn write(settings: &Settings, entries: &[Entry<'_>], found: &Found) -> Vec<Planned> {
    let mut first: HashMap<usize, String> = HashMap::new();
    entries
        .iter()
        .map(|e| match first.get(&e.group) {
            Some(name) => {
                let mut planned = unplanned(e.column);
                planned.plan.target_type = target_type(settings, e);
                planned.plan.reason = e.reason.clone();
                planned.plan.same_as = Some(name.clone());
                planned
            }
            None => {
                first.insert(e.group, format!("{}/{}", e.column.shard, e.column.name()));
                write_one(settings, e, found)
            }
        })
        .collect()
}

/// The type an entry's column takes, as its shard's engine names it.
fn target_type(settings: &Settings, e: &Entry<'_>) -> String {
    let engine = settings
        .shards
        .iter()
        .find(|s| *s.name == *e.column.shard)
        .and_then(|s| Engine::of(&s.endpoint.url));
    engine.map_or_else(
        || e.target.display_name(),
        |engine| engine.type_name(e.target),
    )
}

/// The widenings [`write()`] writes out in full: those of the first entry of each group.
pub fn to_read<'a>(entries: &'a [Entry<'_>]) -> Vec<&'a Widening> {
    let mut seen = HashSet::new();
    entries
        .iter()
        .filter(|e| seen.insert(e.group))
        .flat_map(|e| e.widenings.iter())
        .collect()
}

#[cfg(test)]
mod tests;
