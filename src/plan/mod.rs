//! `headroom plan`: for every column at warning or worse or narrower than what feeds it,
//! ordered by exhaustion date (then by used ratio), the type it widens to and every
//! statement that does it, for it and for each column that must widen with it, with the
//! table's size and what the rebuild costs. The same document for one column is served at
//! `GET /api/columns/{shard}/{schema}/{table}/{column}`.
//!
//! # Layout
//! - [`rule`]: the target type, the `MODIFY` text, the tool commands, the estimate. Pure.
//! - [`related`]: which columns widen together, and the range a group needs. Pure.
//! - [`definition`]: the reader of a column's definition and its table's size, and of the
//!   foreign keys that hold it (KEY_COLUMN_USAGE says where, `SHOW CREATE TABLE` what).
//! - [`show_create`]: the foreign keys in a `SHOW CREATE TABLE` text. Pure.
//! - this file: [`select`] (pure: what to widen, to what), [`change`] (pure: one widening
//!   written out), [`read`] (the definitions from the shards) and the `plan` command.

pub mod command;
pub mod definition;
pub mod related;
pub mod rule;
pub mod show_create;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::config::{Endpoint, Settings};
use crate::db::budget::{self, Budget, Busy};
use crate::headroom::{IntType, Status};
use crate::inventory::ColumnId;
use crate::measure::{ColumnReport, Kind};
use crate::mysql::Connector;
use crate::policy::ColumnGlobs;
use crate::state::Snapshot;
use definition::{ForeignKey, TableSize};
use rule::Definition;

pub use crate::measure::plan_path as path;

pub use crate::config::DEFAULT_REBUILD_MB_PER_SECOND;

/// One column to widen: where it is, its type now and the type it takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Widening {
    /// The shard that holds it.
    pub shard: String,
    /// The column.
    pub id: ColumnId,
    /// Its COLUMN_TYPE now.
    pub from: String,
    /// The type it widens to.
    pub to: IntType,
}

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

/// The type maximum of what feeds `r`: its parent's (on the same shard, from `maxima`, by
/// shard index and name) or its source's.
fn origin(
    snapshot: &Snapshot,
    maxima: &HashMap<(usize, String), u64>,
    shard: usize,
    r: &ColumnReport,
) -> Option<u64> {
    if let Some(parent) = related::parent_of(r) {
        return maxima.get(&(shard, parent.to_string())).copied();
    }
    let source = related::source_of(r)?;
    snapshot
        .sources
        .iter()
        .find(|s| s.name == source)
        .and_then(|s| s.max)
}

fn reason(r: &ColumnReport) -> String {
    let mut why = Vec::new();
    if r.status >= Status::Warning {
        why.push(format!(
            "{}: {} of {} used",
            r.status,
            crate::headroom::percent(r.used_ratio),
            r.int_type
        ));
    }
    if r.type_mismatch {
        let from = match r.kind {
            Kind::Reference => "its source",
            _ => "its parent",
        };
        why.push(format!(
            "narrower than {from} {}",
            r.source.as_deref().unwrap_or("")
        ));
    }
    why.join("; ")
}

/// What needs widening and to what, ordered by exhaustion date (none last), then by used
/// ratio (highest first): every column at warning or worse or mismatched whose
/// `schema.table.column` matches `globs` (all when `None`). Pure.
pub fn select<'a>(snapshot: &'a Snapshot, globs: Option<&ColumnGlobs>) -> Vec<Entry<'a>> {
    let shards: Vec<&[ColumnReport]> = snapshot
        .shards
        .iter()
        .map(|s| s.columns.as_slice())
        .collect();
    let maxima: HashMap<(usize, String), u64> = shards
        .iter()
        .enumerate()
        .flat_map(|(s, cols)| cols.iter().map(move |c| ((s, c.name()), c.max)))
        .collect();
    let mut entries = Vec::new();
    for (index, group) in related::groups(&shards).into_iter().enumerate() {
        let members: Vec<&ColumnReport> = group.iter().map(|&(s, c)| &shards[s][c]).collect();
        let need = related::need(
            &group
                .iter()
                .map(|&(s, c)| (&shards[s][c], origin(snapshot, &maxima, s, &shards[s][c])))
                .collect::<Vec<_>>(),
        );
        let widenings: Arc<[Widening]> = members
            .iter()
            .filter_map(|r| {
                let to = rule::holding(r.int_type, need);
                (to != r.int_type).then(|| Widening {
                    shard: r.shard.to_string(),
                    id: r.id.clone(),
                    from: r.column_type.to_string(),
                    to,
                })
            })
            .collect();
        for r in &members {
            let wanted = r.status >= Status::Warning || r.type_mismatch;
            if !wanted || globs.is_some_and(|g| !g.matches(&r.id.schema, &r.id.table, &r.id.column))
            {
                continue;
            }
            entries.push(Entry {
                column: r,
                target: rule::holding(r.int_type, need),
                reason: reason(r),
                widenings: Arc::clone(&widenings),
                group: index,
            });
        }
    }
    entries.sort_by(|a, b| {
        let (x, y) = (a.column, b.column);
        match (x.exhausts_at(), y.exhausts_at()) {
            (Some(p), Some(q)) => p.cmp(&q),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then(y.used_ratio.total_cmp(&x.used_ratio))
        .then_with(|| {
            (&x.shard, &x.id.schema, &x.id.table, &x.id.column).cmp(&(
                &y.shard,
                &y.id.schema,
                &y.id.table,
                &y.id.column,
            ))
        })
    });
    entries
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
    let (s, t, c) = (&w.id.schema, &w.id.table, &w.id.column);
    let modify = rule::modify(c, w.to, definition);
    let at = rule::Target {
        host: &out.host,
        port,
        schema: s,
        table: t,
    };
    out.gh_ost = Some(rule::gh_ost(&at, &modify));
    out.pt_online_schema_change = rule::pt_online_schema_change(&at, &modify);
    if out.pt_online_schema_change.is_none() {
        out.note = Some(
            "a name holds `,` or `=`, which a pt-online-schema-change DSN cannot carry".to_string(),
        );
    }
    out.statement = Some(rule::alter(s, t, c, w.to, definition));
    out
}

/// What is read at plan time: each widened column's definition and table size (`None`
/// when the column is gone), every foreign key that holds a widened column, by shard, and
/// the widened tables whose keys could not all be seen, with why.
#[derive(Debug, Default)]
pub struct Found {
    /// By shard and column.
    pub definitions: HashMap<(String, ColumnId), Option<(Definition, TableSize)>>,
    /// By shard, each constraint once.
    pub foreign_keys: HashMap<String, Vec<ForeignKey>>,
    /// By shard, schema and table of a widened table: why a statement that changes it
    /// could fail for what the monitoring user cannot see, so that none is written.
    pub blocked: HashMap<(String, String, String), Vec<String>>,
}

impl Found {
    fn block(&mut self, shard: &str, schema: &str, table: &str, why: String) {
        let reasons = self
            .blocked
            .entry((shard.to_string(), schema.to_string(), table.to_string()))
            .or_default();
        if !reasons.contains(&why) {
            reasons.push(why);
        }
    }
}

/// `schema.table.column`, for notes.
fn column_name(schema: &str, table: &str, column: &str) -> String {
    format!("{schema}.{table}.{column}")
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
/// one shard at a time; an error names the shard. With a `budget` (what HTTP requests
/// read through), each shard's session is taken from it first, waiting at most
/// [`budget::wait_for`]`(poll.query_timeout)`.
///
/// The foreign keys are read so that a user with only `SELECT` finds them: KEY_COLUMN_USAGE
/// says which tables hold a key on a widened table (MariaDB shows such a user those rows,
/// but not REFERENTIAL_CONSTRAINTS), and `SHOW CREATE TABLE` of each of them and of every
/// widened table says what the keys are. A widened table is blocked (no statement written
/// for its plan on that shard) when a table that holds one of its keys cannot be read, when
/// KEY_COLUMN_USAGE names a key that `SHOW CREATE TABLE` does not show, or when the other
/// side of a key is not widened with it and is not visible or would not match its new
/// type: adding the key again would fail.
pub async fn read(
    settings: &Settings,
    widenings: &[&Widening],
    budget: Option<&Budget>,
) -> Result<Found, ReadError> {
    let mut found = Found::default();
    for shard in &settings.shards {
        let wanted: Vec<&&Widening> = widenings.iter().filter(|w| w.shard == shard.name).collect();
        if wanted.is_empty() {
            continue;
        }
        let timeout = settings.poll.query_timeout;
        // Held until this shard's session is closed.
        let _permit = match budget {
            Some(b) => Some(b.acquire(&shard.name, budget::wait_for(timeout)).await?),
            None => None,
        };
        let connector = Connector::new(
            &shard.endpoint.url,
            shard.endpoint.expose_password(),
            timeout,
        )
        .map_err(|e| ReadError::Shard(format!("shard {}: {e}", shard.name)))?;
        let report = |e: crate::db::DbError| {
            ReadError::Shard(format!(
                "shard {}: {}",
                shard.name,
                crate::db::ErrorReport::from(&e).message
            ))
        };
        let mut session = connector.acquire().await.map_err(report)?;
        let mut tables: Vec<(String, String)> = Vec::new();
        let mut seen = HashSet::new();
        for w in &wanted {
            let key = (w.shard.clone(), w.id.clone());
            if let std::collections::hash_map::Entry::Vacant(slot) = found.definitions.entry(key) {
                slot.insert(
                    definition::read(&mut session, &w.id, timeout)
                        .await
                        .map_err(report)?,
                );
            }
            if seen.insert((w.id.schema.as_str(), w.id.table.as_str())) {
                tables.push((w.id.schema.clone(), w.id.table.clone()));
            }
        }
        read_keys(
            &mut session,
            &shard.name,
            &wanted,
            &tables,
            timeout,
            &mut found,
        )
        .await
        .map_err(report)?;
        session.release();
        connector.close(Duration::from_secs(1)).await;
    }
    Ok(found)
}

/// Reads the foreign keys that hold the `wanted` widenings of `shard` (in `tables`) into
/// `found`, blocking a widened table where something a statement depends on cannot be
/// seen (see [`read`]).
async fn read_keys(
    conn: &mut sqlx::mysql::MySqlConnection,
    shard: &str,
    wanted: &[&&Widening],
    tables: &[(String, String)],
    timeout: Duration,
    found: &mut Found,
) -> Result<(), crate::db::DbError> {
    let targets: HashMap<(&str, &str, &str), IntType> = wanted
        .iter()
        .map(|w| {
            (
                (
                    w.id.schema.as_str(),
                    w.id.table.as_str(),
                    w.id.column.as_str(),
                ),
                w.to,
            )
        })
        .collect();
    let widened =
        |schema: &str, table: &str, column: &str| targets.get(&(schema, table, column)).copied();

    // Where to look: every widened table, and every table KEY_COLUMN_USAGE names as
    // holding a key on one.
    let mut uses: HashSet<definition::KeyUse> = HashSet::new();
    let mut candidates: HashSet<(String, String)> = tables.iter().cloned().collect();
    for (schema, table) in tables {
        for u in definition::referencing(conn, schema, table, timeout).await? {
            candidates.insert((u.child.schema.clone(), u.child.table.clone()));
            uses.insert(u);
        }
    }
    let mut declared: HashMap<(String, String), Result<Vec<ForeignKey>, String>> = HashMap::new();
    for (schema, table) in candidates {
        let keys = definition::declared(conn, &schema, &table, timeout).await?;
        declared.insert((schema, table), keys);
    }
    for (schema, table) in tables {
        if let Some(Err(why)) = declared.get(&(schema.clone(), table.clone())) {
            found.block(
                shard,
                schema,
                table,
                format!("the foreign keys of {schema}.{table} could not be read ({why})"),
            );
        }
    }
    // Each key KEY_COLUMN_USAGE shows on a widened column must be one read whole.
    let mut uses: Vec<definition::KeyUse> = uses.into_iter().collect();
    uses.sort_by(|a, b| {
        let key = |u: &definition::KeyUse| {
            (
                u.child.schema.clone(),
                u.child.table.clone(),
                u.name.clone(),
                u.child.column.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    for u in &uses {
        let (c, p) = (&u.child, &u.parent);
        let holds = [
            widened(&c.schema, &c.table, &c.column).map(|_| c),
            widened(&p.schema, &p.table, &p.column).map(|_| p),
        ];
        let why = match declared.get(&(c.schema.clone(), c.table.clone())) {
            Some(Ok(keys)) if keys.iter().any(|k| k.name == u.name) => continue,
            Some(Err(why)) => format!(
                "the foreign key {} of {}.{} could not be read ({why})",
                u.name, c.schema, c.table
            ),
            _ => format!(
                "KEY_COLUMN_USAGE names the foreign key {} of {}.{}, which SHOW CREATE \
                 TABLE does not show",
                u.name, c.schema, c.table
            ),
        };
        for id in holds.into_iter().flatten() {
            found.block(shard, &id.schema, &id.table, why.clone());
        }
    }
    let mut keys: Vec<ForeignKey> = declared
        .into_values()
        .filter_map(Result::ok)
        .flatten()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    keys.sort_by(|a, b| (&a.schema, &a.table, &a.name).cmp(&(&b.schema, &b.table, &b.name)));
    // A key whose one side widens and whose other does not is added again only if the
    // other side already has the new type.
    for fk in &keys {
        for (c, p) in fk.columns.iter().zip(&fk.parent_columns) {
            let child = widened(&fk.schema, &fk.table, c);
            let parent = widened(&fk.parent_schema, &fk.parent_table, p);
            let (to, side, other, at) = match (child, parent) {
                (Some(to), None) => (
                    to,
                    "parent",
                    ColumnId::new(&fk.parent_schema, &fk.parent_table, p),
                    (&fk.schema, &fk.table),
                ),
                (None, Some(to)) => (
                    to,
                    "child",
                    ColumnId::new(&fk.schema, &fk.table, c),
                    (&fk.parent_schema, &fk.parent_table),
                ),
                _ => continue,
            };
            let other_name = column_name(&other.schema, &other.table, &other.column);
            let why = match definition::read(conn, &other, timeout).await? {
                None => format!(
                    "the {side} {other_name} of foreign key {} is not visible to the \
                     monitoring user: widen both by hand",
                    fk.name
                ),
                Some((d, _)) if IntType::parse(&d.column_type) != Some(to) => format!(
                    "the {side} {other_name} of foreign key {} is {}, not {}: widen both \
                     by hand",
                    fk.name,
                    d.column_type,
                    to.display_name()
                ),
                Some(_) => continue,
            };
            found.block(shard, at.0, at.1, why);
        }
    }
    found.foreign_keys.insert(shard.to_string(), keys);
    Ok(())
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
/// widened column dropped, the columns widened, the keys added again; none on a `withheld`
/// shard.
fn steps(
    found: &Found,
    widenings: &[&Widening],
    changes: &[Change],
    withheld: &HashMap<&str, Vec<String>>,
) -> Vec<Step> {
    let mut shards: Vec<&str> = Vec::new();
    for w in widenings {
        if !shards.contains(&w.shard.as_str()) && !withheld.contains_key(w.shard.as_str()) {
            shards.push(&w.shard);
        }
    }
    let mut out = Vec::new();
    for shard in shards {
        let step = |statement: String| Step {
            shard: shard.to_string(),
            statement,
        };
        let fks = touched(found, shard, widenings);
        out.extend(fks.iter().map(|fk| step(rule::drop_foreign_key(fk))));
        out.extend(
            changes
                .iter()
                .filter(|c| c.shard == shard)
                .filter_map(|c| c.statement.clone())
                .map(step),
        );
        out.extend(fks.iter().map(|fk| step(rule::add_foreign_key(fk))));
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
    let steps = steps(found, &ordered, &changes, &withheld);
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
    let state = snapshot
        .shards
        .iter()
        .find(|s| s.name == shard)
        .ok_or_else(|| format!("no shard named {shard:?}"))?;
    state
        .columns
        .iter()
        .find(|c| c.id.schema == id.schema && c.id.table == id.table && c.id.column == id.column)
        .ok_or_else(|| format!("no ID column {id} is known on shard {shard:?}"))
}

/// One column of `snapshot` and its entry in the plan (`None`: it needs no widening);
/// `Err` as [`locate`]'s. Plans the whole snapshot to find the column's group.
pub fn find<'a>(
    snapshot: &'a Snapshot,
    shard: &str,
    id: &ColumnId,
) -> Result<(&'a ColumnReport, Option<Entry<'a>>), String> {
    let column = locate(snapshot, shard, id)?;
    let entry = select(snapshot, None)
        .into_iter()
        .find(|e| std::ptr::eq(e.column, column));
    Ok((column, entry))
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

/// The widenings [`write`] writes out in full: those of the first entry of each group.
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
    use crate::headroom::Width;
    use crate::state::Store;
    use chrono::Utc;

    fn settings() -> Settings {
        crate::config::from_toml_str(
            "[[shards]]\nname = \"a\"\nurl = \"mysql://u@db-a:3306/\"\n\
             [[shards]]\nname = \"b\"\nurl = \"mysql://u@db-b:3307/\"\n\
             [[sources]]\nname = \"tickets64\"\nkind = \"ticket_server\"\n\
             servers = [\"mysql://u@t:3306/tickets\"]\ntable = \"Tickets64\"\n\
             [[references]]\nsource = \"tickets64\"\ncolumns = [\"shop.*.treasury_id\"]\n",
            &|_| None,
        )
        .expect("settings")
    }

    fn report(
        shard: &str,
        name: &str,
        t: IntType,
        kind: Kind,
        source: Option<&str>,
        current: i128,
        mismatch: bool,
    ) -> ColumnReport {
        let p: Vec<&str> = name.split('.').collect();
        let id = ColumnId::new(p[0], p[1], p[2]);
        crate::measure::fixture::column(shard, id, t, current)
            .kind(kind)
            .source(source)
            .type_mismatch(mismatch)
            .build()
    }

    /// Shard a: `users.id` (INT, 98 % used), `orders.user_id` and `notes.user_ref` (its
    /// foreign-key child, and grandchild), a mismatched reference column, and `tags.id`
    /// (fine). Shard b: the same `users.id`, nearly empty.
    fn snapshot(settings: &Settings) -> Snapshot {
        let int = IntType::new(Width::Int, false);
        let int_u = IntType::new(Width::Int, true);
        let store = Store::new(settings);
        let (fk, auto, reference) = (Kind::ForeignKey, Kind::AutoIncrement, Kind::Reference);
        let a = vec![
            report("a", "shop.users.id", int, auto, None, 2_104_533_975, false),
            report(
                "a",
                "shop.orders.user_id",
                int_u,
                fk,
                Some("shop.users.id"),
                1,
                false,
            ),
            report(
                "a",
                "shop.notes.user_ref",
                int,
                fk,
                Some("shop.orders.user_id"),
                1,
                false,
            ),
            report(
                "a",
                "shop.likes.treasury_id",
                int,
                reference,
                Some("tickets64"),
                5,
                true,
            ),
            report("a", "shop.tags.id", int, auto, None, 5, false),
        ];
        let b = vec![report("b", "shop.users.id", int, auto, None, 10, false)];
        let now = Utc::now();
        store.shard_succeeded("a", a, Vec::new(), Duration::from_millis(1), now);
        store.shard_succeeded("b", b, Vec::new(), Duration::from_millis(1), now);
        let mut snapshot = store.read().clone();
        snapshot.sources[0].max = Some(u64::MAX);
        snapshot
    }

    fn summary(e: &Entry<'_>) -> Vec<String> {
        e.ordered()
            .iter()
            .map(|w| format!("{}/{} {}", w.shard, w.id, w.to))
            .collect()
    }

    #[test]
    fn a_column_running_out_widens_with_its_children_both_ways_and_on_every_shard() {
        let settings = settings();
        let snapshot = snapshot(&settings);
        let entries = select(&snapshot, None);
        let names: Vec<String> = entries.iter().map(|e| e.column.name()).collect();
        assert_eq!(names, vec!["shop.users.id", "shop.likes.treasury_id"]);
        let users = &entries[0];
        assert_eq!(users.target, IntType::new(Width::Big, false));
        assert_eq!(
            summary(users),
            vec![
                "a/shop.users.id BIGINT",
                "a/shop.orders.user_id BIGINT UNSIGNED",
                "a/shop.notes.user_ref BIGINT",
                "b/shop.users.id BIGINT",
            ]
        );
        assert!(users.reason.starts_with("critical: 98"), "{}", users.reason);
        let likes = &entries[1];
        assert_eq!(likes.target, IntType::new(Width::Big, true));
        assert_eq!(
            summary(likes),
            vec!["a/shop.likes.treasury_id BIGINT UNSIGNED"]
        );
        assert!(likes.reason.contains("narrower than its source tickets64"));
    }

    #[test]
    fn a_column_glob_restricts_the_plan_but_not_what_widens_with_it() {
        let settings = settings();
        let snapshot = snapshot(&settings);
        let globs = ColumnGlobs::new(&["shop.users.*".to_string()], &[]).expect("glob");
        let entries = select(&snapshot, Some(&globs));
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].widenings.len(), 4);
        let globs = ColumnGlobs::new(&["other.*.*".to_string()], &[]).expect("glob");
        assert!(select(&snapshot, Some(&globs)).is_empty());
    }

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
}
