//! Files that must survive a crash and must not be turned against headroom: a file is
//! replaced atomically through a temporary file created exclusively beside it (a unique
//! name, `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600, so a file or symlink planted at a
//! predictable name is never written through), fsynced, renamed over it, and the directory
//! fsynced. Used by the pager's state file and the growth histories.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;

/// Replaces the file at `path` with `bytes`: readers see the old file or the new one, never
/// half. A failed write removes its temporary file. Blocks: call it off the runtime's
/// worker threads (or inside `block_in_place`).
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = dir_of(path);
    std::fs::create_dir_all(dir)?;
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "headroom".to_string());
    let (mut file, tmp) = create_unique(dir, &stem)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            std::fs::rename(&tmp, path)
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// The directory a file at `path` lives in.
pub fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Creates a new file in `dir` with a unique name starting with `.<stem>.`, exclusively
/// (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600): a file or a symlink planted at any name is
/// never opened, another name is tried.
pub fn create_unique(dir: &Path, stem: &str) -> std::io::Result<(File, PathBuf)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut last = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
        let name = format!(".{stem}.{}.{n}.{nanos:x}.tmp", std::process::id());
        let path = dir.join(name);
        match create_exclusive(&path) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| ErrorKind::AlreadyExists.into()))
}

/// Opens `path` as a new file: fails if anything (a file, a symlink) is there.
pub fn create_exclusive(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Whether `dir` takes a new file: creates and removes one, exclusively.
pub fn probe_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let (file, path) = create_unique(dir, "headroom-probe")?;
    drop(file);
    std::fs::remove_file(path)
}

pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        // Some file systems cannot fsync a directory; the rename is as durable as they allow.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        other => other,
    }
}
