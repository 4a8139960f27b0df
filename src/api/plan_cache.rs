//! The one-column plans that HTTP requests ask for (`GET /api/columns/{shard}/...`, and any
//! page that shows a column's plan): each computed once per poll and served to every request
//! for it. Concurrent requests for one column wait for the one computation instead of each
//! reading the shard, and every session a computation opens is taken from the per-shard
//! [`Budget`], so however many requests arrive, a shard sees at most
//! [`crate::db::budget::SESSIONS_PER_SHARD`] of them at once.
//!
//! A plan is kept per column with its generation: the poll count of the column's shard and
//! of every shard its widenings are read from, the read count of every source (they decide
//! what a group widens to), and the settings it was written with (a reload swaps them).
//! While a plan is computed, requests made in the same poll of its column's shard wait for
//! it. A request whose column's generation has moved on computes it again; at that moment
//! the plans of older generations are dropped, and at most [`CAPACITY`] are kept. A failure
//! is handed to the requests that waited for it and then forgotten: the next request tries
//! again. A column not in the latest state is answered at once and nothing is kept for it.
//!
//! A group member on a shard the plan does not read (one that needs no widening) is not in
//! the generation: a change there reaches the plan at its own shard's next poll.
//!
//! A page does not wait for a plan longer than [`Plans::page_wait`] ([`Plans::show`]): past
//! it, it shows the last plan computed for the column, of an earlier poll, while the
//! current one is computed. That plan is kept when its slot is dropped or computed again,
//! until the current one is computed; the kept ones count towards [`CAPACITY`], and are
//! dropped first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::Settings;
use crate::db::budget::{Budget, Busy};
use crate::inventory::ColumnId;
use crate::measure::ColumnReport;
use crate::plan::{self, Planned, ReadError, Widening};
use crate::state::{Snapshot, Store};

/// The most plans kept: beyond it the oldest finished ones are dropped first.
pub const CAPACITY: usize = 1024;

/// Why a column's plan could not be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// No such shard, or no such column on it, in the latest state (the text says which).
    #[error("{0}")]
    NotFound(String),
    /// A shard it reads had no session free within the wait (503 with `Retry-After`).
    #[error(transparent)]
    Busy(Busy),
    /// A shard it reads could not be read (the text names the shard).
    #[error("reading the column definitions: {0}")]
    Read(String),
}

/// A plan, or why there is none; shared by every request that waited for it.
pub type Outcome = Result<Arc<Planned>, Failure>;

/// What a page shows of a column's plan after waiting at most [`Plans::page_wait`].
#[derive(Debug, Clone)]
pub enum Shown {
    /// The plan of the latest polls, or why there is none.
    Now(Outcome),
    /// Still being computed.
    Computing {
        /// The last plan computed for the column, of an earlier poll (its column's
        /// `observed_at` says which), if one is kept.
        earlier: Option<Arc<Planned>>,
        /// Why the last computation for the column failed, if it did and no plan was
        /// computed since: a shard that takes long to fail is said, not waited for forever.
        failed: Option<Failure>,
    },
}

/// Which column: its shard and its name.
type Key = (String, ColumnId);

/// A computation to wait for, the column's earlier plan and its last failure.
type Started = (
    watch::Receiver<Option<Done>>,
    Option<Arc<Planned>>,
    Option<Failure>,
);

/// The plans and the session budget, one per process (held in [`super::AppState`]).
pub struct Plans {
    /// The sessions requests may open, per shard.
    budget: Arc<Budget>,
    slots: Mutex<Slots>,
    /// The most plans kept ([`CAPACITY`]).
    capacity: usize,
    /// How long a page waits for a plan ([`crate::pages::column::PLAN_WAIT`]).
    page_wait: Duration,
}

#[derive(Default)]
struct Slots {
    by_column: HashMap<Key, Slot>,
    /// The last plan computed for a column whose slot was dropped, or is computing again,
    /// with that slot's stamp; until a plan of its column is computed again.
    earlier: HashMap<Key, (u64, Arc<Planned>)>,
    /// Why the last computation for a column failed, when its slot was dropped; until a
    /// plan of its column is computed. At most [`Plans`]' capacity.
    failed: HashMap<Key, Failure>,
    /// The stamp of the next slot made: older slots are dropped first.
    next: u64,
}

/// One column's plan of one generation, computed or being computed.
struct Slot {
    /// The generation of its own shard when the computation started: while it runs,
    /// requests of that generation wait for it.
    started: Generation,
    stamp: u64,
    /// `None` while it is computed; the computing task sends its result once.
    done: watch::Receiver<Option<Done>>,
}

/// A finished computation.
#[derive(Clone)]
struct Done {
    /// What the plan was computed from; `None` when the column was gone by then.
    generation: Option<Generation>,
    outcome: Outcome,
}

impl Slot {
    /// Whether a request on `snapshot` under `settings` may take it: a plan of the current
    /// generation, or a computation still running that started in it. A failure never is.
    fn usable(&self, snapshot: &Snapshot, settings: &Arc<Settings>) -> bool {
        match &*self.done.borrow() {
            Some(done) => {
                done.outcome.is_ok()
                    && done
                        .generation
                        .as_ref()
                        .is_some_and(|g| g.current(snapshot, settings))
            }
            // A computing task that ended without a result (it panicked) never gives one.
            None => self.done.has_changed().is_ok() && self.started.current(snapshot, settings),
        }
    }

    fn finished(&self) -> bool {
        self.done.borrow().is_some()
    }

    /// Why it failed, once it has.
    fn failure(&self) -> Option<Failure> {
        match &*self.done.borrow() {
            Some(Done {
                outcome: Err(failure),
                ..
            }) => Some(failure.clone()),
            _ => None,
        }
    }

    /// Its plan, once computed.
    fn planned(&self) -> Option<Arc<Planned>> {
        match &*self.done.borrow() {
            Some(Done {
                outcome: Ok(planned),
                ..
            }) => Some(Arc::clone(planned)),
            _ => None,
        }
    }
}

/// What a plan was computed from.
#[derive(Debug, Clone)]
struct Generation {
    settings: Arc<Settings>,
    /// Each shard read, or whose column is shown: its index in the state, name and polls.
    shards: Vec<(usize, String, u64)>,
    /// Every source's read count, in the state's order.
    sources: Vec<u64>,
}

impl Generation {
    /// The generation of `shards` (names; unknown ones left out) in `snapshot`.
    fn of<'a>(
        snapshot: &Snapshot,
        settings: &Arc<Settings>,
        shards: impl IntoIterator<Item = &'a str>,
    ) -> Generation {
        Generation {
            settings: Arc::clone(settings),
            shards: shards
                .into_iter()
                .filter_map(|name| {
                    let index = snapshot.shards.iter().position(|s| s.name == name)?;
                    Some((index, name.to_string(), snapshot.shards[index].polls))
                })
                .collect(),
            sources: snapshot.sources.iter().map(|s| s.reads).collect(),
        }
    }

    /// Whether `snapshot`, under `settings`, is still of this generation.
    fn current(&self, snapshot: &Snapshot, settings: &Arc<Settings>) -> bool {
        Arc::ptr_eq(&self.settings, settings)
            && self.sources.len() == snapshot.sources.len()
            && self
                .sources
                .iter()
                .zip(&snapshot.sources)
                .all(|(reads, s)| *reads == s.reads)
            && self.shards.iter().all(|(index, name, polls)| {
                snapshot
                    .shards
                    .get(*index)
                    .is_some_and(|s| s.name == *name && s.polls == *polls)
            })
    }
}

/// What computing a plan needs, copied out of the state (the column and its group's
/// widenings, not the snapshot).
struct Work {
    column: ColumnReport,
    /// `None` when the column needs no widening.
    entry: Option<Parts>,
    generation: Generation,
}

/// A [`plan::Entry`] without its column.
struct Parts {
    target: crate::headroom::IntType,
    reason: String,
    widenings: Arc<[Widening]>,
    group: usize,
}

impl Default for Plans {
    fn default() -> Plans {
        Plans::new()
    }
}

impl Plans {
    pub fn new() -> Plans {
        Plans::with_capacity(CAPACITY)
    }

    /// Keeping at most `capacity` plans.
    pub fn with_capacity(capacity: usize) -> Plans {
        Plans {
            budget: Arc::default(),
            slots: Mutex::default(),
            capacity: capacity.max(1),
            page_wait: crate::pages::column::PLAN_WAIT,
        }
    }

    /// Pages wait at most `wait` for a plan (tests that must see the plan's outcome).
    pub fn waiting_at_most(mut self, wait: Duration) -> Plans {
        self.page_wait = wait;
        self
    }

    /// How long a page waits for a plan before it shows the rest.
    pub fn page_wait(&self) -> Duration {
        self.page_wait
    }

    /// The per-shard session budget, for anything else a request reads a shard for.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// The plan of `id` on `shard` as of the latest polls in `store`, written with
    /// `settings`: the one kept if its generation is current, else computed once, however
    /// many ask at the same time.
    pub async fn get(
        &self,
        store: &Store,
        settings: Arc<Settings>,
        shard: &str,
        id: &ColumnId,
    ) -> Outcome {
        let (done, _, _) = self.start(store, settings, shard, id)?;
        wait(done).await
    }

    /// What a page shows: [`Plans::get`]'s outcome if it comes within [`Plans::page_wait`],
    /// else the last plan computed for the column, or why the last computation failed, if
    /// any, while the computation goes on.
    pub async fn show(
        &self,
        store: &Store,
        settings: Arc<Settings>,
        shard: &str,
        id: &ColumnId,
    ) -> Shown {
        let (done, earlier, failed) = match self.start(store, settings, shard, id) {
            Ok(started) => started,
            Err(failure) => return Shown::Now(Err(failure)),
        };
        match tokio::time::timeout(self.page_wait, wait(done)).await {
            Ok(outcome) => Shown::Now(outcome),
            Err(_) => Shown::Computing { earlier, failed },
        }
    }

    /// The computation of the plan of `id` on `shard` (kept, running, or started now), the
    /// last plan computed for it before the current generation, if one is kept, and why the
    /// last computation for it failed, if it did since.
    fn start(
        &self,
        store: &Store,
        settings: Arc<Settings>,
        shard: &str,
        id: &ColumnId,
    ) -> Result<Started, Failure> {
        let key = (shard.to_string(), id.clone());
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let snapshot = store.read();
        let done = match slots.by_column.get(&key) {
            Some(slot) if slot.usable(&snapshot, &settings) => slot.done.clone(),
            _ => {
                plan::locate(&snapshot, shard, id).map_err(Failure::NotFound)?;
                let started = Generation::of(&snapshot, &settings, [shard]);
                slots.forget_stale(&snapshot, &settings, self.capacity);
                drop(snapshot);
                let (tx, rx) = watch::channel(None);
                let stamp = slots.next;
                slots.next += 1;
                let slot = Slot {
                    started,
                    stamp,
                    done: rx.clone(),
                };
                slots.by_column.insert(key.clone(), slot);
                // A task of its own: a client that goes away does not cancel what the
                // others wait for.
                let (store, budget) = (store.clone(), Arc::clone(&self.budget));
                let (shard, id) = (shard.to_string(), id.clone());
                tokio::spawn(async move {
                    let done = run(&store, settings, &budget, shard, id).await;
                    let _ = tx.send(Some(done));
                });
                rx
            }
        };
        let earlier = slots.earlier.get(&key).map(|(_, p)| Arc::clone(p));
        let failed = slots.failed.get(&key).cloned();
        Ok((done, earlier, failed))
    }
}

impl Slots {
    /// Drops the slots of older generations and failed ones (keeping the plan of each as
    /// its column's earlier one, or its failure), and the earlier plans and failures of
    /// columns computed again; then, at `capacity`, the oldest earlier plans and then the
    /// oldest finished slots, so that one more fits.
    fn forget_stale(&mut self, snapshot: &Snapshot, settings: &Arc<Settings>, capacity: usize) {
        let stale: Vec<Key> = self
            .by_column
            .iter()
            .filter(|(_, slot)| !slot.usable(snapshot, settings))
            .map(|(key, _)| key.clone())
            .collect();
        for key in stale {
            let Some(slot) = self.by_column.remove(&key) else {
                continue;
            };
            if let Some(planned) = slot.planned() {
                self.failed.remove(&key);
                self.earlier.insert(key, (slot.stamp, planned));
            } else if let Some(failure) = slot.failure() {
                if self.failed.len() >= capacity {
                    self.failed.clear();
                }
                self.failed.insert(key, failure);
            }
        }
        let by_column = &self.by_column;
        let computed = |key: &Key| by_column.get(key).is_some_and(|s| s.planned().is_some());
        self.earlier.retain(|key, _| !computed(key));
        self.failed.retain(|key, _| !computed(key));
        let mut over = (self.by_column.len() + self.earlier.len() + 1).saturating_sub(capacity);
        if over > 0 {
            let mut earlier: Vec<(u64, Key)> = self
                .earlier
                .iter()
                .map(|(key, (stamp, _))| (*stamp, key.clone()))
                .collect();
            earlier.sort_unstable_by_key(|(stamp, _)| *stamp);
            for (_, key) in earlier.into_iter().take(over) {
                self.earlier.remove(&key);
                over -= 1;
            }
        }
        if over > 0 {
            let mut finished: Vec<(u64, Key)> = self
                .by_column
                .iter()
                .filter(|(_, slot)| slot.finished())
                .map(|(key, slot)| (slot.stamp, key.clone()))
                .collect();
            finished.sort_unstable_by_key(|(stamp, _)| *stamp);
            for (_, key) in finished.into_iter().take(over) {
                self.by_column.remove(&key);
            }
        }
    }
}

/// Computes the plan of `id` on `shard` from the latest state of `store`.
async fn run(
    store: &Store,
    settings: Arc<Settings>,
    budget: &Budget,
    shard: String,
    id: ColumnId,
) -> Done {
    // Finding the column's group looks at every column of the fleet (milliseconds for
    // 100,000 columns): on a copy (the columns are shared, not copied), off the async
    // threads and outside the store's lock, which the poller waits for.
    let snapshot = store.read().clone();
    let prepared = {
        let settings = Arc::clone(&settings);
        tokio::task::spawn_blocking(move || prepare(&snapshot, &settings, &shard, &id)).await
    };
    let work = match prepared {
        Ok(Ok(work)) => work,
        Ok(Err(failure)) => {
            return Done {
                generation: None,
                outcome: Err(failure),
            };
        }
        Err(_) => {
            return Done {
                generation: None,
                outcome: Err(Failure::Read(
                    "the plan's computation stopped before it finished".to_string(),
                )),
            };
        }
    };
    let generation = work.generation.clone();
    Done {
        generation: Some(generation),
        outcome: compute(work, &settings, budget).await,
    }
}

/// The column, its group's widenings and the generation they are of, from `snapshot`.
fn prepare(
    snapshot: &Snapshot,
    settings: &Arc<Settings>,
    shard: &str,
    id: &ColumnId,
) -> Result<Work, Failure> {
    let (column, entry) = plan::find(snapshot, shard, id).map_err(Failure::NotFound)?;
    let mut read: Vec<&str> = vec![shard];
    for w in entry.iter().flat_map(|e| e.widenings.iter()) {
        if !read.contains(&w.shard.as_str()) {
            read.push(&w.shard);
        }
    }
    Ok(Work {
        column: column.clone(),
        generation: Generation::of(snapshot, settings, read),
        entry: entry.map(|e| Parts {
            target: e.target,
            reason: e.reason,
            widenings: e.widenings,
            group: e.group,
        }),
    })
}

/// The plan of `work`: its definitions read through `budget`.
async fn compute(work: Work, settings: &Settings, budget: &Budget) -> Outcome {
    let Some(parts) = work.entry else {
        return Ok(Arc::new(plan::unplanned(&work.column)));
    };
    let entry = plan::Entry {
        column: &work.column,
        target: parts.target,
        reason: parts.reason,
        widenings: parts.widenings,
        group: parts.group,
    };
    let widenings: Vec<&Widening> = entry.widenings.iter().collect();
    match plan::read(settings, &widenings, Some(budget)).await {
        Ok(found) => Ok(Arc::new(plan::write_one(settings, &entry, &found))),
        Err(ReadError::Busy(busy)) => Err(Failure::Busy(busy)),
        Err(ReadError::Shard(message)) => Err(Failure::Read(message)),
    }
}

/// Waits for the computation behind `done` and takes its outcome.
async fn wait(mut done: watch::Receiver<Option<Done>>) -> Outcome {
    match done.wait_for(Option::is_some).await {
        Ok(done) => match &*done {
            Some(done) => done.outcome.clone(),
            None => Err(Failure::Read(
                "the plan's computation gave no answer".to_string(),
            )),
        },
        Err(_) => Err(Failure::Read(
            "the plan's computation stopped before it finished".to_string(),
        )),
    }
}

#[cfg(test)]
pub(super) mod tests;
