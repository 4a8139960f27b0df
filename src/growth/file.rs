//! The history file: every column's and source's growth history, saved beside the state
//! file (`[state] path` + `.history`) so that a restart keeps its forecasts.
//!
//! JSON, one object per history, times and values delta-of-delta encoded
//! ([`super::SavedHistory`]). Written atomically: a temporary file created exclusively in the
//! same directory, fsync, rename over the old one, fsync of the directory. A missing file is
//! a fresh start; one saved longer ago than the retention (a week) is ignored; a corrupt one
//! is set aside as `.corrupt`; each with a warning, never a crash.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{RETENTION, SavedHistory, Tracker};
use crate::inventory::ColumnId;

/// The version written: 2 holds the samples as base64 bytes. Version 1 files (the samples
/// as a JSON array of numbers) are still read.
const VERSION: u32 = 2;
/// Versions read.
const READS: [u32; 2] = [1, VERSION];

/// Everything the file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct HistoryFile {
    pub version: u32,
    /// Unix milliseconds of the save.
    pub saved_at: i64,
    /// Column histories by shard.
    pub shards: BTreeMap<String, Vec<SavedColumn>>,
    /// Source histories by source name.
    pub sources: BTreeMap<String, SavedHistory>,
}

/// One column's history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedColumn {
    /// `[schema, table, column]`, or `[database, schema, table, column]` for a PostgreSQL
    /// column (one database may hold the same names as another).
    #[serde(
        serialize_with = "name_as_triple",
        deserialize_with = "name_from_triple"
    )]
    pub c: ColumnId,
    /// Not flattened: serde's flatten cannot carry the 128-bit deltas.
    pub h: SavedHistory,
}

/// A column's name as the file writes it: `[schema, table, column]`, with its database
/// first when it has one (PostgreSQL), borrowed.
fn name_as_triple<S: serde::Serializer>(id: &ColumnId, serializer: S) -> Result<S::Ok, S::Error> {
    match id.database() {
        Some(database) => (database, &id.schema, &id.table, &id.column).serialize(serializer),
        None => (&id.schema, &id.table, &id.column).serialize(serializer),
    }
}

fn name_from_triple<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<ColumnId, D::Error> {
    let parts = <Vec<String>>::deserialize(deserializer)?;
    match <[String; 4]>::try_from(parts) {
        Ok([database, schema, table, column]) => Ok(ColumnId::in_database(
            Some(database.into()),
            schema,
            table,
            column,
        )),
        Err(parts) => match <[String; 3]>::try_from(parts) {
            Ok([schema, table, column]) => Ok(ColumnId::from_parts(schema, table, column)),
            Err(parts) => Err(serde::de::Error::invalid_length(
                parts.len(),
                &"[schema, table, column] or [database, schema, table, column]",
            )),
        },
    }
}

/// The history file that goes with the state file `state_path`.
pub fn path_for(state_path: &Path) -> PathBuf {
    let mut path = state_path.as_os_str().to_owned();
    path.push(".history");
    PathBuf::from(path)
}

/// The current wall-clock time in Unix milliseconds.
pub fn unix_ms_now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Copies every history out of the poller's trackers, one shard at a time so that a poll
/// waits for one shard's copy at most.
pub fn collect(
    columns: &Mutex<HashMap<String, Tracker<ColumnId>>>,
    sources: &Mutex<Tracker<String>>,
    now: Instant,
    now_unix_ms: i64,
) -> HistoryFile {
    let names: Vec<String> = columns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .cloned()
        .collect();
    let mut shards = BTreeMap::new();
    for name in names {
        let saved = columns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .map(|t| t.to_saved(now, now_unix_ms))
            .unwrap_or_default();
        let saved = saved
            .into_iter()
            .map(|(c, h)| SavedColumn { c, h })
            .collect();
        shards.insert(name, saved);
    }
    let sources = sources
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .to_saved(now, now_unix_ms)
        .into_iter()
        .collect();
    HistoryFile {
        version: VERSION,
        saved_at: now_unix_ms,
        shards,
        sources,
    }
}

impl HistoryFile {
    /// The column trackers of the shards named in `shards`, as of `now`; other shards'
    /// histories are dropped.
    pub fn column_trackers(
        &self,
        shards: &[&str],
        now: Instant,
        now_unix_ms: i64,
    ) -> HashMap<String, Tracker<ColumnId>> {
        let mut out = HashMap::new();
        for (name, columns) in &self.shards {
            if !shards.contains(&name.as_str()) {
                continue;
            }
            let mut tracker = Tracker::default();
            tracker.restore(
                columns.iter().map(|c| (c.c.clone(), c.h.clone())),
                now,
                now_unix_ms,
            );
            out.insert(name.clone(), tracker);
        }
        out
    }

    /// The source tracker, for the sources named in `sources`, as of `now`.
    pub fn source_tracker(
        &self,
        sources: &[&str],
        now: Instant,
        now_unix_ms: i64,
    ) -> Tracker<String> {
        let mut tracker = Tracker::default();
        tracker.restore(
            self.sources
                .iter()
                .filter(|(name, _)| sources.contains(&name.as_str()))
                .map(|(name, h)| (name.clone(), h.clone())),
            now,
            now_unix_ms,
        );
        tracker
    }
}

/// The trackers saved in `path` for the shards and sources named (others are dropped), or
/// empty ones when there is no usable file.
pub fn restore<'a>(
    path: &Path,
    shards: impl IntoIterator<Item = &'a str>,
    sources: impl IntoIterator<Item = &'a str>,
) -> (HashMap<String, Tracker<ColumnId>>, Tracker<String>) {
    let (now, now_unix_ms) = (Instant::now(), unix_ms_now());
    match load(path, now_unix_ms) {
        Some(file) => {
            let shards: Vec<&str> = shards.into_iter().collect();
            let sources: Vec<&str> = sources.into_iter().collect();
            (
                file.column_trackers(&shards, now, now_unix_ms),
                file.source_tracker(&sources, now, now_unix_ms),
            )
        }
        None => (HashMap::new(), Tracker::default()),
    }
}

/// Reads the history file as of `now_unix_ms`. Missing, unreadable, corrupt (set aside as
/// `<path>.corrupt`) or stale: `None`, with a warning.
pub fn load(path: &Path, now_unix_ms: i64) -> Option<HistoryFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), "No history file: forecasts start from the first polls");
            return None;
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "History file unreadable: forecasts start from the first polls");
            return None;
        }
    };
    let file = match serde_json::from_str::<HistoryFile>(&text) {
        Ok(file) if READS.contains(&file.version) => file,
        Ok(file) => {
            tracing::warn!(path = %path.display(), version = file.version, "History file of an unknown version set aside: forecasts start from the first polls");
            set_aside(path);
            return None;
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "History file corrupt, set aside: forecasts start from the first polls");
            set_aside(path);
            return None;
        }
    };
    let age_ms = now_unix_ms.saturating_sub(file.saved_at);
    if age_ms > RETENTION.as_millis() as i64 {
        tracing::warn!(path = %path.display(), age_hours = age_ms / 3_600_000, "History file older than the retention ignored: forecasts start from the first polls");
        return None;
    }
    Some(file)
}

fn set_aside(path: &Path) {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".corrupt");
    if let Err(e) = std::fs::rename(path, &aside) {
        tracing::warn!(path = %path.display(), error = %e, "Cannot set the bad history file aside");
    }
}

/// Writes `file` atomically ([`crate::durable::replace`]). Blocks: call it from
/// `spawn_blocking`.
pub fn save(path: &Path, file: &HistoryFile) -> std::io::Result<()> {
    let mut json = serde_json::to_vec(file)?;
    json.push(b'\n');
    crate::durable::replace(path, &json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const DAY_MS: i64 = 86_400_000;

    /// A tracker with one column grown for `minutes` at one ID a second.
    async fn grown(minutes: u64) -> (Mutex<HashMap<String, Tracker<ColumnId>>>, Instant) {
        let id = ColumnId::new("app", "orders", "id");
        let mut tracker = Tracker::default();
        for i in 0..minutes {
            tracker.round(Instant::now(), [(id.clone(), i128::from(i * 60), u64::MAX)]);
            tokio::time::advance(Duration::from_secs(60)).await;
        }
        (
            Mutex::new(HashMap::from([("s1".to_string(), tracker)])),
            Instant::now(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_saved_file_loads_back_with_the_same_forecast() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("state.json"));
        assert_eq!(path, dir.path().join("state.json.history"));
        let (columns, now) = grown(90).await;
        let sources = Mutex::new(Tracker::default());
        let wall = 1_800_000_000_000;
        save(&path, &collect(&columns, &sources, now, wall)).unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers,
            vec![std::ffi::OsString::from("state.json.history")]
        );

        // A new process, ten minutes later by the wall clock, on a fresh Instant.
        let file = load(&path, wall + 600_000).expect("loads");
        let later = Instant::now();
        let mut restored = file.column_trackers(&["s1"], later, wall + 600_000);
        let id = ColumnId::new("app", "orders", "id");
        let mut before = columns.into_inner().unwrap();
        let expected = before
            .get_mut("s1")
            .unwrap()
            .round(now, [(id.clone(), 5_400, u64::MAX)]);
        let got = restored
            .get_mut("s1")
            .expect("shard kept")
            .round(later, [(id.clone(), 5_400 + 600, u64::MAX)]);
        let (e, g) = (
            expected[0].1.growth_per_second.unwrap(),
            got[0].1.growth_per_second.unwrap(),
        );
        assert!((e - 1.0).abs() < 1e-9 && (g - 1.0).abs() < 1e-9, "{e} {g}");
        assert!(
            file.column_trackers(&["s2"], later, wall).is_empty(),
            "a shard no longer configured is dropped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_a_stale_and_a_corrupt_file_are_ignored_and_the_corrupt_one_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json.history");
        assert!(load(&path, 0).is_none());

        let (columns, now) = grown(5).await;
        let sources = Mutex::new(Tracker::default());
        let wall = 1_800_000_000_000;
        save(&path, &collect(&columns, &sources, now, wall)).unwrap();
        assert!(load(&path, wall + 7 * DAY_MS).is_some(), "a week old: kept");
        assert!(load(&path, wall + 7 * DAY_MS + 1).is_none(), "stale");
        assert!(path.exists(), "a stale file is left to be overwritten");

        std::fs::write(&path, "{\"version\":1,\"saved_at\":").unwrap();
        assert!(load(&path, wall).is_none());
        assert!(!path.exists());
        assert!(dir.path().join("state.json.history.corrupt").exists());
    }

    #[tokio::test(start_paused = true)]
    async fn a_week_of_history_saves_in_a_few_kilobytes_per_column() {
        // A week at a 10 s interval, growing 50 IDs a second with some jitter.
        let id = ColumnId::new("app", "orders", "id");
        let mut tracker = Tracker::default();
        let mut value = 3_000_000_000i128;
        for i in 0..(7 * 24 * 360u64) {
            tracker.round(Instant::now(), [(id.clone(), value, u64::MAX)]);
            tokio::time::advance(Duration::from_millis(10_000 + i % 7)).await;
            value += 500 + i128::from((i % 5) as u8);
        }
        let columns = Mutex::new(HashMap::from([("shard-01".to_string(), tracker)]));
        let file = collect(&columns, &Mutex::new(Tracker::default()), Instant::now(), 0);
        let bytes = serde_json::to_vec(&file).unwrap().len();
        let saved = &file.shards["shard-01"][0].h;
        let points = super::super::History::from_saved(saved, Instant::now(), 0)
            .expect("loads back")
            .len();
        println!("a week: {points} samples, {bytes} bytes");
        assert!(points > 200, "{points}");
        assert!(bytes < 3_000, "{bytes} bytes");
    }

    #[tokio::test(start_paused = true)]
    async fn a_saved_history_that_does_not_hold_together_is_dropped() {
        let now = Instant::now();
        let bad = [
            // Time going backwards.
            SavedHistory {
                t: 0,
                v: 1,
                b: None,
                d: vec![-5, 1],
                j: None,
                x: None,
                p: None,
            },
            // An odd number of deltas.
            SavedHistory {
                t: 0,
                v: 1,
                b: None,
                d: vec![5],
                j: None,
                x: None,
                p: None,
            },
            // A value past u64.
            SavedHistory {
                t: 0,
                v: u64::MAX,
                b: None,
                d: vec![5, 1],
                j: None,
                x: None,
                p: None,
            },
            // From the future.
            SavedHistory {
                t: 10_000,
                v: 1,
                b: None,
                d: vec![],
                j: None,
                x: None,
                p: None,
            },
        ];
        for saved in &bad {
            assert!(
                super::super::History::from_saved(saved, now, 1_000).is_none(),
                "{saved:?}"
            );
        }
    }

    #[test]
    fn a_column_of_a_database_is_saved_with_it_and_one_of_none_as_before() {
        let saved = |c: ColumnId| SavedColumn {
            c,
            h: SavedHistory {
                t: 0,
                v: 1,
                b: None,
                d: vec![],
                j: None,
                x: None,
                p: None,
            },
        };
        let mysql = ColumnId::new("app", "orders", "id");
        let pg = ColumnId::in_database(
            Some("eu \"1\"".into()),
            "public".to_string(),
            "orders".to_string(),
            "id".to_string(),
        );
        for (id, name) in [
            (mysql, r#"["app","orders","id"]"#),
            (pg, r#"["eu \"1\"","public","orders","id"]"#),
        ] {
            let text = serde_json::to_string(&saved(id.clone())).unwrap();
            assert!(text.starts_with(&format!(r#"{{"c":{name},"#)), "{text}");
            let back: SavedColumn = serde_json::from_str(&text).unwrap();
            assert_eq!(back.c, id);
            assert_eq!(back.c.database(), id.database());
        }
        let two = serde_json::from_str::<SavedColumn>(r#"{"c":["a","b"],"h":{"t":0,"v":1}}"#);
        assert!(two.is_err());
    }
}
