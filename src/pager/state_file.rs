//! The pager's state file (`[state] path`): every notifier's open incidents and undelivered
//! events, so that a restart during a PagerDuty outage loses no page and re-pages nothing
//! that is open.
//!
//! Two files hold it:
//! - the **snapshot** (`<path>`), rewritten whole when an evaluation changes incidents or
//!   outboxes: a temporary file created exclusively beside it (a unique name, `O_EXCL`,
//!   `O_NOFOLLOW`, mode 0600), written, fsynced, renamed over it, and the directory fsynced;
//! - the **journal** (`<path>.journal`), one JSON line per event taken off an outbox
//!   (delivered, or dropped on a 400), appended and fsynced: a delivery costs one short line
//!   instead of a rewrite of the whole outbox. A snapshot folds it in and empties it.
//!
//! Every change has a sequence number; the snapshot records the last one it holds, so journal
//! lines it already holds (a crash between the rename and the journal's truncation) are
//! skipped when the journal is replayed at load.
//!
//! At load: an absent file is a fresh start (with a warning); a corrupt one (unparsable, or of
//! an unknown version) is set aside as `<path>.corrupt` and headroom starts fresh (with a
//! warning); any other read error (permissions, a directory at the path) is a [`LoadError`]:
//! headroom refuses to start rather than overwrite pages it could not read. A torn last
//! journal line (a crash mid-append) is ignored with a warning; any other unparsable journal
//! line sets the journal aside as `<path>.journal.corrupt` and the snapshot is used alone.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::{Action, Event};
use crate::durable;

const VERSION: u32 = 1;

/// Everything the snapshot holds.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileState {
    pub version: u32,
    /// The last change this snapshot holds: journal lines numbered up to it are folded in.
    /// (Files written before the journal existed have none: 0.)
    #[serde(default)]
    pub seq: u64,
    /// By notifier name (`pagerduty`, `webhook`).
    pub notifiers: BTreeMap<String, NotifierFile>,
}

/// One notifier's part.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct NotifierFile {
    /// Open incidents by dedup key, each with the last trigger sent for it.
    pub incidents: BTreeMap<String, Event>,
    /// Events not yet delivered, oldest first.
    pub outbox: VecDeque<Event>,
}

/// One journal line: an event taken off the front of a notifier's outbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Taken {
    /// The change's sequence number.
    pub seq: u64,
    pub notifier: String,
    /// Which event: the three together are unique within an outbox.
    pub dedup_key: String,
    pub action: Action,
    pub created_at: DateTime<Utc>,
}

impl Taken {
    /// The line for taking `event` off `notifier`'s outbox as change `seq`.
    pub fn new(seq: u64, notifier: &str, event: &Event) -> Taken {
        Taken {
            seq,
            notifier: notifier.to_string(),
            dedup_key: event.dedup_key.clone(),
            action: event.action,
            created_at: event.created_at,
        }
    }

    fn is(&self, event: &Event) -> bool {
        self.dedup_key == event.dedup_key
            && self.action == event.action
            && self.created_at == event.created_at
    }
}

/// Why the state cannot be loaded: headroom must not start (and must not overwrite it).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "cannot read the state file {path}: {error}; headroom will not start and overwrite \
         the undelivered pages it may hold (fix its permissions, or move it away to start fresh)"
    )]
    Unreadable {
        path: PathBuf,
        /// Kept in the message rather than as a source: `main` prints one line.
        error: std::io::Error,
    },
    #[error(
        "the state file {path} is corrupt and cannot be set aside: {error}; headroom will not \
         start and overwrite it (move it away to start fresh)"
    )]
    SetAside {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// What [`load`] found.
#[derive(Debug, Default, PartialEq)]
pub struct Loaded {
    /// The snapshot with the journal replayed onto it.
    pub state: FileState,
    /// The highest change number seen (snapshot or journal): new changes number after it.
    pub seq: u64,
}

/// `<path>.journal`.
pub fn journal_path(path: &Path) -> PathBuf {
    with_suffix(path, ".journal")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Reads the snapshot and replays the journal onto it. See the module's documentation for
/// what happens to an absent, corrupt or unreadable file.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let unreadable = |path: &Path, error| LoadError::Unreadable {
        path: path.to_path_buf(),
        error,
    };
    let mut state = match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<FileState>(&bytes) {
            Ok(state) if state.version == VERSION => state,
            Ok(state) => {
                tracing::warn!(path = %path.display(), version = state.version, "State file of an unknown version, set aside; starting fresh");
                set_aside(path)?;
                FileState::default()
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "State file corrupt, set aside; starting fresh");
                set_aside(path)?;
                FileState::default()
            }
        },
        Err(e) if e.kind() == ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), "No state file, starting fresh: no open incidents or undelivered pages are known");
            FileState::default()
        }
        Err(e) => return Err(unreadable(path, e)),
    };
    let journal = journal_path(path);
    let bytes = match std::fs::read(&journal) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(unreadable(&journal, e)),
    };
    let mut seq = state.seq;
    match parse_journal(&bytes) {
        Ok((lines, torn)) => {
            if let Some(valid) = torn {
                tracing::warn!(path = %journal.display(), "The state journal's last line is torn (a crash while writing it): ignored");
                if let Err(e) = truncate(&journal, valid) {
                    tracing::warn!(path = %journal.display(), error = %e, "Cannot cut the torn line off the state journal");
                }
            }
            seq = seq.max(replay(&mut state, &lines));
        }
        Err(line) => {
            tracing::warn!(path = %journal.display(), line, "State journal corrupt, set aside; using the snapshot alone (events delivered since may be sent again)");
            set_aside(&journal)?;
        }
    }
    Ok(Loaded { state, seq })
}

/// The journal's lines, and where its valid part ends if the last line is torn; `Err` with
/// the (1-based) number of a bad line that is not the last.
fn parse_journal(bytes: &[u8]) -> Result<(Vec<Taken>, Option<u64>), usize> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut number = 0;
    while start < bytes.len() {
        number += 1;
        let (end, terminated) = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => (start + i, true),
            None => (bytes.len(), false),
        };
        let line = &bytes[start..end];
        if !line.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Taken>(line) {
                Ok(taken) => lines.push(taken),
                // Unterminated and unparsable: the write was cut short.
                Err(_) if !terminated => return Ok((lines, Some(start as u64))),
                Err(_) => return Err(number),
            }
        }
        start = end + 1;
    }
    Ok((lines, None))
}

/// Applies the journal lines the snapshot does not hold yet; returns the highest number seen.
fn replay(state: &mut FileState, lines: &[Taken]) -> u64 {
    let mut seq = state.seq;
    for taken in lines {
        seq = seq.max(taken.seq);
        if taken.seq <= state.seq {
            continue;
        }
        let outbox = state
            .notifiers
            .get_mut(&taken.notifier)
            .map(|n| &mut n.outbox);
        match outbox {
            Some(outbox) if outbox.front().is_some_and(|e| taken.is(e)) => {
                outbox.pop_front();
            }
            // An event queued after the snapshot and delivered before the crash: it never
            // reached the file, there is nothing to take off.
            _ => {}
        }
    }
    seq
}

fn truncate(path: &Path, len: u64) -> std::io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.set_len(len)?;
    file.sync_all()
}

/// Renames a bad file to `<path>.corrupt` (or `.corrupt.1`, `.corrupt.2`… if taken), so
/// that nothing overwrites it.
fn set_aside(path: &Path) -> Result<(), LoadError> {
    let mut aside = with_suffix(path, ".corrupt");
    let mut n = 0;
    while std::fs::symlink_metadata(&aside).is_ok() && n < 1000 {
        n += 1;
        aside = with_suffix(path, &format!(".corrupt.{n}"));
    }
    std::fs::rename(path, &aside).map_err(|error| LoadError::SetAside {
        path: path.to_path_buf(),
        error,
    })?;
    tracing::warn!(path = %path.display(), aside = %aside.display(), "Bad state kept for inspection");
    Ok(())
}

/// Writes the snapshot atomically ([`durable::replace`]). Does not touch the journal.
pub fn save(path: &Path, state: &FileState) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(&FileState {
        version: VERSION,
        seq: state.seq,
        notifiers: state.notifiers.clone(),
    })?;
    bytes.push(b'\n');
    durable::replace(path, &bytes)
}

/// The journal beside a state file, opened on the first append and kept open.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Option<File>,
}

impl Journal {
    /// The journal of the state file at `state_path`.
    pub fn new(state_path: &Path) -> Journal {
        Journal {
            path: journal_path(state_path),
            file: None,
        }
    }

    /// Appends one line and fsyncs it. After an error the file may end in a partial line:
    /// the caller must [`Journal::clear`] it (through a snapshot) before appending again.
    pub fn append(&mut self, taken: &Taken) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(taken)?;
        line.push(b'\n');
        let result = self.open().and_then(|f| {
            f.write_all(&line)?;
            f.sync_data()
        });
        if result.is_err() {
            self.file = None;
        }
        result
    }

    fn open(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            let existing = OpenOptions::new()
                .append(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&self.path);
            let file = match existing {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    let f = OpenOptions::new()
                        .append(true)
                        .create_new(true)
                        .mode(0o600)
                        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                        .open(&self.path)?;
                    // The new name must survive a crash along with the line.
                    durable::sync_dir(durable::dir_of(&self.path))?;
                    f
                }
                Err(e) => return Err(e),
            };
            self.file = Some(file);
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("journal not open"))
    }

    /// Empties the journal, once a snapshot holds everything in it. Lines left by a crash
    /// before this are harmless: the snapshot's number says they are already in it.
    pub fn clear(&mut self) -> std::io::Result<()> {
        let result = match &self.file {
            Some(f) => f.set_len(0),
            None => match truncate(&self.path, 0) {
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                other => other,
            },
        };
        if result.is_err() {
            self.file = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Severity;

    fn event(key: &str, at: i64) -> Event {
        Event {
            action: Action::Trigger,
            dedup_key: key.to_string(),
            severity: Severity::Critical,
            summary: key.to_string(),
            source: "s".into(),
            component: "c".into(),
            group: "g".into(),
            class: "id_column".into(),
            custom_details: serde_json::json!({}),
            link: None,
            created_at: DateTime::from_timestamp(at, 0).unwrap(),
            level: 2,
        }
    }

    /// A snapshot (change 7) with outbox [a, b, c] for `pagerduty`.
    fn three_queued(path: &Path) -> FileState {
        let mut state = FileState {
            version: VERSION,
            seq: 7,
            ..FileState::default()
        };
        state.notifiers.insert(
            "pagerduty".into(),
            NotifierFile {
                incidents: BTreeMap::new(),
                outbox: ["a", "b", "c"]
                    .iter()
                    .enumerate()
                    .map(|(i, k)| event(k, 1_000 + i as i64))
                    .collect(),
            },
        );
        save(path, &state).unwrap();
        state
    }

    fn keys(state: &FileState) -> Vec<String> {
        state.notifiers["pagerduty"]
            .outbox
            .iter()
            .map(|e| e.dedup_key.clone())
            .collect()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_saved_state_loads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let state = three_queued(&path);
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.state, state);
        assert_eq!(loaded.seq, 7);
        assert_eq!(names(dir.path()), ["state.json"], "no temporary file left");
    }

    #[test]
    fn the_snapshot_is_written_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        three_queued(&path);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn an_absent_file_is_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path).unwrap(), Loaded::default());
        assert!(names(dir.path()).is_empty(), "loading creates nothing");
    }

    #[test]
    fn a_corrupt_file_is_set_aside_and_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{ not json").unwrap();
        assert_eq!(load(&path).unwrap(), Loaded::default());
        assert_eq!(names(dir.path()), ["state.json.corrupt"]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("state.json.corrupt")).unwrap(),
            "{ not json"
        );
        // A second corrupt file does not overwrite the first one kept.
        std::fs::write(&path, r#"{"version": 99, "notifiers": {}}"#).unwrap();
        assert_eq!(load(&path).unwrap(), Loaded::default());
        assert_eq!(
            names(dir.path()),
            ["state.json.corrupt", "state.json.corrupt.1"]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("state.json.corrupt.1")).unwrap(),
            r#"{"version": 99, "notifiers": {}}"#
        );
    }

    #[test]
    fn a_directory_at_the_path_is_unreadable_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), "x").unwrap();
        let err = load(&path).unwrap_err();
        assert!(matches!(err, LoadError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(names(dir.path()), ["state.json"]);
        assert_eq!(names(&path), ["inside"]);
    }

    #[test]
    fn a_path_under_a_file_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let path = dir.path().join("file").join("state.json");
        assert!(matches!(
            load(&path).unwrap_err(),
            LoadError::Unreadable { .. }
        ));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("file")).unwrap(),
            "x"
        );
    }

    #[test]
    fn journal_lines_after_the_snapshot_take_events_off_the_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let state = three_queued(&path);
        let outbox = &state.notifiers["pagerduty"].outbox;
        let mut journal = Journal::new(&path);
        // Change 6 is older than the snapshot (a crash before the journal was emptied).
        journal
            .append(&Taken::new(6, "pagerduty", &outbox[0]))
            .unwrap();
        journal
            .append(&Taken::new(8, "pagerduty", &outbox[0]))
            .unwrap();
        journal
            .append(&Taken::new(9, "pagerduty", &outbox[1]))
            .unwrap();
        // An event queued after the snapshot and delivered: not in the file.
        journal
            .append(&Taken::new(11, "pagerduty", &event("z", 5)))
            .unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(keys(&loaded.state), ["c"]);
        assert_eq!(loaded.seq, 11);
        let line = std::fs::read_to_string(journal_path(&path)).unwrap();
        assert_eq!(line.lines().count(), 4);
        assert!(line.starts_with(r#"{"seq":6,"notifier":"pagerduty","dedup_key":"a","#));
    }

    #[test]
    fn a_torn_last_journal_line_is_ignored_and_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let state = three_queued(&path);
        let mut journal = Journal::new(&path);
        journal
            .append(&Taken::new(
                8,
                "pagerduty",
                &state.notifiers["pagerduty"].outbox[0],
            ))
            .unwrap();
        let whole = std::fs::read(journal_path(&path)).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(br#"{"seq":9,"notifier":"pager"#);
        std::fs::write(journal_path(&path), &torn).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(keys(&loaded.state), ["b", "c"]);
        assert_eq!(loaded.seq, 8);
        assert_eq!(std::fs::read(journal_path(&path)).unwrap(), whole);
    }

    #[test]
    fn a_bad_journal_line_before_the_last_sets_the_journal_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let state = three_queued(&path);
        let first = serde_json::to_string(&Taken::new(
            8,
            "pagerduty",
            &state.notifiers["pagerduty"].outbox[0],
        ))
        .unwrap();
        let text = format!("{first}\nnot json\n{first}\n");
        std::fs::write(journal_path(&path), &text).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(keys(&loaded.state), ["a", "b", "c"], "the snapshot alone");
        assert_eq!(
            names(dir.path()),
            ["state.json", "state.json.journal.corrupt"]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("state.json.journal.corrupt")).unwrap(),
            text
        );
    }

    #[test]
    fn a_cleared_journal_is_empty_and_takes_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let state = three_queued(&path);
        let outbox = &state.notifiers["pagerduty"].outbox;
        let mut journal = Journal::new(&path);
        journal
            .append(&Taken::new(8, "pagerduty", &outbox[0]))
            .unwrap();
        journal.clear().unwrap();
        assert_eq!(std::fs::read(journal_path(&path)).unwrap(), b"");
        journal
            .append(&Taken::new(9, "pagerduty", &outbox[0]))
            .unwrap();
        assert_eq!(keys(&load(&path).unwrap().state), ["b", "c"]);
        // A journal not opened by this process is emptied too.
        Journal::new(&path).clear().unwrap();
        assert_eq!(keys(&load(&path).unwrap().state), ["a", "b", "c"]);
    }

    #[test]
    fn a_symlink_at_the_old_temporary_path_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let target = dir.path().join("target");
        std::fs::write(&target, "precious").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("state.json.tmp")).unwrap();
        let state = three_queued(&path);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
        assert_eq!(load(&path).unwrap().state, state);
        assert!(
            std::fs::symlink_metadata(dir.path().join("state.json.tmp"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn an_exclusive_create_never_follows_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "precious").unwrap();
        let planted = dir.path().join(".state.json.1.2.3.tmp");
        std::os::unix::fs::symlink(&target, &planted).unwrap();
        let err = durable::create_exclusive(&planted).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        // Nor does the journal: a symlink there is an error, not a write into its target.
        std::os::unix::fs::symlink(&target, dir.path().join("state.json.journal")).unwrap();
        let mut journal = Journal::new(&dir.path().join("state.json"));
        assert!(journal.append(&Taken::new(1, "p", &event("a", 1))).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    }

    #[test]
    fn a_failed_save_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // The rename fails: a non-empty directory is at the path.
        let path = dir.path().join("state.json");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), "x").unwrap();
        assert!(save(&path, &FileState::default()).is_err());
        assert_eq!(names(dir.path()), ["state.json"]);
    }
}
