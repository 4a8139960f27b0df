//! Saving the pager's books: the state file's writer (a whole snapshot, or one journal
//! line per delivery), written outside the books' lock, one write at a time, and what a
//! failed write means for `/readyz` and the metrics.

use chrono::Utc;

use super::state_file::{self, FileState, Journal, NotifierFile, Taken};
use super::{Books, Pager};

/// The writing side of the state file, under its own lock: writes happen outside the books'
/// lock (an fsync does not hold up delivery or `/api/incidents`), one at a time, and a write
/// older than what is on disk is skipped.
pub(super) struct Writer {
    journal: Journal,
    /// The last change the snapshot on disk holds.
    saved_seq: u64,
    /// A change could not be written (or the directory was not writable at start): the next
    /// write is a whole snapshot, and every evaluation tries it until it succeeds.
    dirty: bool,
}

impl Writer {
    /// The writer of the state file at `path`, whose snapshot on disk holds change
    /// `saved_seq`; `dirty` when the next write must be a whole snapshot.
    pub(super) fn new(path: &std::path::Path, saved_seq: u64, dirty: bool) -> Writer {
        Writer {
            journal: Journal::new(path),
            saved_seq,
            dirty,
        }
    }
}

/// Runs a blocking write: on a multi-threaded runtime, tells it this thread blocks a moment.
pub(super) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

impl Pager {
    /// Saves what an evaluation changed (`changed`): a whole snapshot, outside the books'
    /// lock; it also retries a write that failed before.
    pub(super) fn save_evaluated(&self, changed: bool) {
        blocking(|| {
            let mut w = self.lock_writer();
            if changed || w.dirty {
                self.save_snapshot(&mut w);
            }
        });
    }

    pub(super) fn lock_writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the state file cannot be written now (path and error), for `/readyz`; `None`
    /// while it can.
    pub fn state_problem(&self) -> Option<String> {
        self.state_problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The snapshot of everything, and the change it is at.
    pub(super) fn file_state(&self, books: &Books) -> FileState {
        FileState {
            version: 0,
            seq: books.seq,
            notifiers: self
                .notifiers
                .iter()
                .zip(books.lifecycles.iter().zip(&books.outboxes))
                .map(|(n, (l, o))| {
                    (
                        n.name.to_string(),
                        NotifierFile {
                            incidents: l.incidents.clone(),
                            outbox: o.clone(),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Writes a whole snapshot if the file misses a change: taken under the
    /// books' lock, written after releasing it. The caller holds the writer.
    pub(super) fn save_snapshot(&self, w: &mut Writer) {
        let state = {
            let books = self.lock();
            if !w.dirty && books.seq <= w.saved_seq {
                return;
            }
            self.file_state(&books)
        };
        let result = state_file::save(&self.state_path, &state).and_then(|()| {
            // Lines in the journal are in the snapshot now.
            w.journal.clear()
        });
        if result.is_ok() {
            w.saved_seq = state.seq;
        }
        self.saved(w, result);
    }

    /// Records the outcome of a write: metrics, the readiness problem, and whether the next
    /// write must be a whole snapshot.
    pub(super) fn saved(&self, w: &mut Writer, result: std::io::Result<()>) {
        let mut problem = self.state_problem.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(()) => {
                w.dirty = false;
                self.metrics
                    .state_saved(Utc::now().timestamp_millis() as f64 / 1000.0);
                if problem.take().is_some() {
                    tracing::info!(path = %self.state_path.display(), "The state file is written again");
                }
            }
            Err(e) => {
                w.dirty = true;
                self.metrics.state_save_failed();
                let why = format!(
                    "cannot write the state file {}: {e}",
                    self.state_path.display()
                );
                // Once per distinct problem at error level; the counter shows every one.
                if problem.as_deref() != Some(why.as_str()) {
                    tracing::error!(path = %self.state_path.display(), error = %e, "Cannot write the state file; undelivered pages would not survive a restart");
                } else {
                    tracing::debug!(path = %self.state_path.display(), error = %e, "Cannot write the state file, still");
                }
                *problem = Some(why);
            }
        }
    }

    /// Persists the change `taken` (an event off an outbox): one journal line, or a whole
    /// snapshot if the file misses an earlier change.
    pub(super) fn persist_taken(&self, taken: &Taken) {
        blocking(|| {
            let mut w = self.lock_writer();
            if w.dirty {
                self.save_snapshot(&mut w);
            } else if taken.seq > w.saved_seq {
                let result = w.journal.append(taken);
                self.saved(&mut w, result);
            }
        });
    }
}
