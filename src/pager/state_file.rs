//! The pager's state file (`[state] path`): every notifier's open incidents and undelivered
//! events, so that a restart during a PagerDuty outage loses no page and re-pages nothing
//! that is open. Written atomically (a temporary file, fsync, rename); a missing file is a
//! fresh start, a corrupt one is set aside with a warning, never a crash.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::event::Event;

const VERSION: u32 = 1;

/// Everything the file holds.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FileState {
    pub version: u32,
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

/// Reads the state file. Missing: empty. Unreadable or corrupt: empty, with a warning, and
/// the bad file renamed to `<path>.corrupt` for inspection.
pub fn load(path: &Path) -> FileState {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), "No state file, starting fresh: no open incidents or undelivered pages are known");
            return FileState::default();
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "State file unreadable, starting fresh");
            return FileState::default();
        }
    };
    match serde_json::from_str::<FileState>(&text) {
        Ok(state) if state.version == VERSION => state,
        Ok(state) => {
            tracing::warn!(path = %path.display(), version = state.version, "State file of an unknown version, starting fresh");
            set_aside(path);
            FileState::default()
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "State file corrupt, starting fresh");
            set_aside(path);
            FileState::default()
        }
    }
}

fn set_aside(path: &Path) {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".corrupt");
    if let Err(e) = std::fs::rename(path, &aside) {
        tracing::warn!(path = %path.display(), error = %e, "Cannot set the bad state file aside");
    }
}

/// Writes the state atomically: readers see the old file or the new one, never half.
pub fn save(path: &Path, state: &FileState) -> std::io::Result<()> {
    let mut state_json = serde_json::to_vec_pretty(&FileState {
        version: VERSION,
        notifiers: state.notifiers.clone(),
    })?;
    state_json.push(b'\n');
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&state_json)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_loads_back_and_a_corrupt_one_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path), FileState::default());
        let mut state = FileState::default();
        state
            .notifiers
            .insert("pagerduty".into(), NotifierFile::default());
        save(&path, &state).unwrap();
        let back = load(&path);
        assert!(back.notifiers.contains_key("pagerduty"));

        std::fs::write(&path, "{ not json").unwrap();
        assert_eq!(load(&path), FileState::default());
        assert!(dir.path().join("state.json.corrupt").exists());
    }
}
