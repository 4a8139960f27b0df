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
//! The statements and the reads are the engine's: for MySQL and MariaDB, `mysql/plan/`.

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

pub use found::{Definition, ForeignKey, Found, TableSize, Widening, Written};
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
        let r = self.column;
        *w.shard == *r.shard
            && w.id.schema == r.id.schema
            && w.id.table == r.id.table
            && w.id.column == r.id.column
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
    let host = endpoint.url.host_str().unwrap_or("localhost").to_string();
    let port = endpoint.url.port().unwrap_or(3306);
    let mut out = Change {
        shard: w.shard.clone(),
        schema: w.id.schema.clone(),
        table: w.id.table.clone(),
        column: w.id.column.clone(),
        host,
        port,
        from_type: w.from.clone(),
        to_type: w.to.display_name(),
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
        return out;
    };
    if definition.generated() {
        out.note =
            Some("a generated column: write its MODIFY by hand, with its expression".to_string());
        return out;
    }
    // The scheme was checked when the configuration was read: this only guards a URL
    // built some other way.
    let Some(engine) = Engine::of(&endpoint.url) else {
        out.note = Some(format!(
            "no statement for a server of scheme {:?}",
            endpoint.url.scheme()
        ));
        return out;
    };
    let written = engine.widen(w, &out.host, port, definition);
    out.gh_ost = written.gh_ost;
    out.pt_online_schema_change = written.pt_online_schema_change;
    out.note = written.note;
    out.statement = Some(written.statement);
    out
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
    let widened: HashSet<(&str, &str, &str)> = widenings
        .iter()
        .filter(|w| w.shard == shard)
        .map(|w| {
            (
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
            fk.columns
                .iter()
                .any(|c| widened.contains(&(fk.schema.as_str(), fk.table.as_str(), c.as_str())))
                || fk.parent_columns.iter().any(|c| {
                    widened.contains(&(
                        fk.parent_schema.as_str(),
                        fk.parent_table.as_str(),
                        c.as_str(),
                    ))
                })
        })
        .collect()
}

/// Every statement in the order it must run, shard by shard: the foreign keys that hold a
/// widened column dropped, the columns widened, the keys added again, each as the shard's
/// engine (`engine_of`) writes it; none on a `withheld` shard.
fn steps(
    found: &Found,
    widenings: &[&Widening],
    changes: &[Change],
    withheld: &HashMap<&str, Vec<String>>,
    engine_of: &dyn Fn(&str) -> Option<Engine>,
) -> Vec<Step> {
    let mut shards: Vec<&str> = Vec::new();
    for w in widenings {
        if !shards.contains(&w.shard.as_str()) && !withheld.contains_key(w.shard.as_str()) {
            shards.push(&w.shard);
        }
    }
    let mut out = Vec::new();
    for shard in shards {
        // Only a shard not configured has none, and it has neither changes nor keys.
        let Some(engine) = engine_of(shard) else {
            continue;
        };
        let step = |statement: String| Step {
            shard: shard.to_string(),
            statement,
        };
        let fks = touched(found, shard, widenings);
        out.extend(fks.iter().map(|fk| step(engine.drop_foreign_key(fk))));
        out.extend(
            changes
                .iter()
                .filter(|c| c.shard == shard)
                .filter_map(|c| c.statement.clone())
                .map(step),
        );
        out.extend(fks.iter().map(|fk| step(engine.add_foreign_key(fk))));
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
    let ordered = e.ordered();
    let mut changes: Vec<Change> = ordered
        .iter()
        .filter_map(|w| {
            let at = endpoint(&w.shard)?;
            let got = found
                .definitions
                .get(&(w.shard.clone(), w.id.clone()))
                .and_then(Option::as_ref);
            Some(change(w, got, at, rate))
        })
        .collect();
    let mut foreign_keys = Vec::new();
    for shard in settings.shards.iter().map(|s| s.name.as_str()) {
        foreign_keys.extend(touched(found, shard, &ordered).into_iter().cloned());
    }
    for c in &mut changes {
        let keyed = foreign_keys.iter().any(|fk| {
            (fk.schema == c.schema && fk.table == c.table)
                || (fk.parent_schema == c.schema && fk.parent_table == c.table)
        });
        if keyed && c.statement.is_some() {
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
        let key = (w.shard.clone(), w.id.schema.clone(), w.id.table.clone());
        for why in found.blocked.get(&key).into_iter().flatten() {
            let reasons = withheld.entry(w.shard.as_str()).or_default();
            if !reasons.contains(why) {
                reasons.push(why.clone());
            }
        }
    }
    for c in &mut changes {
        if let Some(reasons) = withheld.get(c.shard.as_str())
            && c.statement.is_some()
        {
            c.statement = None;
            c.gh_ost = None;
            c.pt_online_schema_change = None;
            c.note = Some(format!("not written: {}", reasons.join("; ")));
        }
    }
    let engine_of = |shard: &str| endpoint(shard).and_then(|e| Engine::of(&e.url));
    let steps = steps(found, &ordered, &changes, &withheld, &engine_of);
    Planned {
        column: e.column.clone(),
        plan: ColumnPlan {
            target_type: e.target.display_name(),
            reason: e.reason.clone(),
            changes,
            foreign_keys,
            steps,
            same_as: None,
        },
    }
}

/// One column of `snapshot`; `Err` says which of the shard or the column is not known.
/// Cheap: one shard's columns are searched, nothing is planned.
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
        .position(|c| {
            c.id.schema == id.schema && c.id.table == id.table && c.id.column == id.column
        })
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
                planned.plan.target_type = e.target.display_name();
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
mod tests {
    use super::*;
    use fixtures::{settings, snapshot};

    #[test]
    fn a_change_carries_the_statement_the_commands_and_the_estimate() {
        let settings = settings();
        let snapshot = snapshot(&settings);
        let entries = select(&snapshot, None);
        let w = &entries[0].widenings[3];
        let definition = Definition {
            column_type: "int(11)".to_string(),
            nullable: false,
            default: None,
            extra: "auto_increment".to_string(),
            comment: "user's id".to_string(),
        };
        let size = TableSize {
            rows: 1000,
            data_bytes: 150 << 20,
            index_bytes: 50 << 20,
            engine: "InnoDB".to_string(),
        };
        let c = change(
            w,
            Some(&(definition, size)),
            &settings.shards[1].endpoint,
            50,
        );
        assert_eq!((c.host.as_str(), c.port), ("db-b", 3307));
        assert_eq!(
            c.statement.as_deref(),
            Some(
                "ALTER TABLE `shop`.`users` MODIFY COLUMN `id` BIGINT NOT NULL AUTO_INCREMENT \
                 COMMENT 'user''s id'"
            )
        );
        assert!(c.rebuilds);
        assert_eq!(c.rebuild_seconds_estimate, Some(4));
        assert!(
            c.gh_ost
                .as_deref()
                .is_some_and(|g| g.starts_with("gh-ost --host='db-b' --port=3307"))
        );
        assert!(c.pt_online_schema_change.is_some());
        let missing = change(w, None, &settings.shards[1].endpoint, 50);
        assert_eq!(missing.statement, None);
        assert!(missing.note.is_some());
    }

    /// What `read` finds for every widening of the first entry: an INT column, and no key.
    fn found_for(settings: &Settings, snapshot: &Snapshot) -> Found {
        let entries = select(snapshot, None);
        let mut found = Found::default();
        for w in entries[0].widenings.iter() {
            let definition = Definition {
                column_type: "int(11)".to_string(),
                ..Definition::default()
            };
            found.definitions.insert(
                (w.shard.clone(), w.id.clone()),
                Some((definition, TableSize::default())),
            );
        }
        for s in &settings.shards {
            found.foreign_keys.insert(s.name.clone(), Vec::new());
        }
        found
    }

    #[test]
    fn a_blocked_table_withholds_every_statement_on_its_shard_and_only_there() {
        let settings = settings();
        let snapshot = snapshot(&settings);
        let entries = select(&snapshot, None);
        let mut found = found_for(&settings, &snapshot);
        found.block(
            "a",
            "shop",
            "orders",
            "the keys of shop.orders: no".to_string(),
        );
        let planned = write_one(&settings, &entries[0], &found);
        let written: Vec<(String, bool, Option<String>)> = planned
            .plan
            .changes
            .iter()
            .map(|c| {
                (
                    format!("{}/{}.{}", c.shard, c.table, c.column),
                    c.statement.is_some() || c.gh_ost.is_some(),
                    c.note.clone(),
                )
            })
            .collect();
        let withheld = Some("not written: the keys of shop.orders: no".to_string());
        assert_eq!(
            written,
            vec![
                ("a/users.id".to_string(), false, withheld.clone()),
                ("a/orders.user_id".to_string(), false, withheld.clone()),
                ("a/notes.user_ref".to_string(), false, withheld),
                ("b/users.id".to_string(), true, None),
            ]
        );
        let steps: Vec<&str> = planned
            .plan
            .steps
            .iter()
            .map(|s| s.shard.as_str())
            .collect();
        assert_eq!(steps, vec!["b"]);
    }

    #[test]
    fn a_columns_plan_found_alone_is_its_plan_in_the_whole_plan() {
        let settings = fixtures::chains_settings();
        let snapshot = fixtures::chains(&settings);
        let entries = select(&snapshot, None);
        // Every widened column found as INT, and a key from a chain's child to its parent.
        let mut found = Found::default();
        for w in entries.iter().flat_map(|e| e.widenings.iter()) {
            let definition = Definition {
                column_type: "int(11)".to_string(),
                extra: "auto_increment".to_string(),
                ..Definition::default()
            };
            let size = TableSize {
                rows: 10,
                data_bytes: 1 << 20,
                ..TableSize::default()
            };
            found
                .definitions
                .insert((w.shard.clone(), w.id.clone()), Some((definition, size)));
        }
        found.foreign_keys.insert(
            "a".to_string(),
            vec![ForeignKey {
                name: "fk_orders_user".to_string(),
                schema: "shop".to_string(),
                table: "orders".to_string(),
                columns: vec!["user_id".to_string()],
                parent_schema: "shop".to_string(),
                parent_table: "users".to_string(),
                parent_columns: vec!["id".to_string()],
                on_update: "RESTRICT".to_string(),
                on_delete: "CASCADE".to_string(),
            }],
        );
        assert_eq!(entries.len(), 5);
        for e in &entries {
            let c = e.column;
            let (column, alone) = find(&snapshot, &c.shard, &c.id).expect("known");
            assert!(std::ptr::eq(column, c));
            let alone = alone.expect("in the plan");
            let json = |p: &Planned| serde_json::to_value(p).expect("JSON");
            assert_eq!(
                json(&write_one(&settings, &alone, &found)),
                json(&write_one(&settings, e, &found)),
                "{}/{}",
                c.shard,
                c.name()
            );
        }
        let users = find(&snapshot, "a", &ColumnId::new("shop", "users", "id"))
            .expect("known")
            .1
            .expect("in the plan");
        let planned = write_one(&settings, &users, &found);
        assert_eq!(planned.plan.changes.len(), 7);
        assert_eq!(planned.plan.foreign_keys.len(), 1);
        assert_eq!(planned.plan.steps.len(), 9, "{:?}", planned.plan.steps);
        // Not in the plan: fine, or only a child of a column that is.
        for (shard, name) in [("c", "tags"), ("a", "reviews")] {
            let id = if name == "tags" {
                ColumnId::new("shop", "tags", "id")
            } else {
                ColumnId::new("shop", "reviews", "note_id")
            };
            assert!(find(&snapshot, shard, &id).expect("known").1.is_none());
        }
        assert_eq!(
            find(&snapshot, "c", &ColumnId::new("shop", "nope", "id")).map(|_| ()),
            Err("no ID column shop.nope.id is known on shard \"c\"".to_string())
        );
    }
}
