//! Reading a configuration file (the main file, an included file, a secret file, the web
//! configuration file) with a size limit, so that a huge or endless file named by mistake
//! or malice is refused by name before it is read, instead of filling memory.

use std::io::Read as _;
use std::path::Path;

/// The largest configuration file read: 4 MiB, far above a fleet of thousands of shards
/// (about 150 bytes each), far below what would strain the process.
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;

/// The text of `path`, or why not (the path is for the caller to name). A file over
/// [`MAX_BYTES`] is refused from its size alone; one that grows past it while read, or a
/// device or pipe that never ends, is cut at the limit and refused the same way.
pub fn read(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    let over = |size: String| {
        format!(
            "{size} bytes, over the limit of {} MiB for a configuration file",
            MAX_BYTES / (1024 * 1024)
        )
    };
    if size > MAX_BYTES {
        return Err(over(size.to_string()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(over(format!("more than {MAX_BYTES}")));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (byte {} is not part of a character)",
            e.utf8_error().valid_up_to()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_at_the_limit_is_read_and_one_byte_more_is_refused_by_its_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.toml");
        let file = std::fs::File::create(&path).expect("create");
        // Sparse: no real bytes are written.
        file.set_len(MAX_BYTES).expect("size");
        assert_eq!(read(&path).map(|t| t.len()), Ok(MAX_BYTES as usize));
        file.set_len(MAX_BYTES + 1).expect("size");
        assert_eq!(
            read(&path),
            Err("4194305 bytes, over the limit of 4 MiB for a configuration file".to_string())
        );
    }

    #[test]
    fn an_endless_device_is_cut_at_the_limit() {
        assert_eq!(
            read(Path::new("/dev/zero")),
            Err(
                "more than 4194304 bytes, over the limit of 4 MiB for a configuration file"
                    .to_string()
            )
        );
    }
}
