//! Durable file writes: [`write_atomic`], the one helper every psyche crate writes whole files
//! with (manifests, reports, caches, datasets).

use std::io::Write as _;
use std::path::Path;

/// Writes `bytes` to `path` so that a crash or kill at any moment leaves either the old file or
/// the new one, never a torn mix, and the new file survives a power loss once this returns.
///
/// The bytes go to a temporary file in the same directory, which is flushed and fsynced, then
/// renamed over `path`; on Unix the directory is fsynced too so the rename itself is durable.
/// Parent directories are created.
///
/// # Errors
///
/// The underlying I/O error; its message names the path that failed.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("nested/manifest.json");
/// psyche_core::write_atomic(&path, b"{\"seed\": 1}")?;
/// assert_eq!(std::fs::read(&path)?, b"{\"seed\": 1}");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> std::io::Result<()> {
    let path = path.as_ref();
    let named = |e: std::io::Error, what: &Path| {
        std::io::Error::new(e.kind(), format!("{}: {e}", what.display()))
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| named(e, dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| named(e, dir))?;
    tmp.write_all(bytes).map_err(|e| named(e, tmp.path()))?;
    tmp.as_file().sync_all().map_err(|e| named(e, tmp.path()))?;
    tmp.persist(path).map_err(|e| named(e.error, path))?;
    #[cfg(unix)]
    {
        // Make the rename durable; failure here leaves a complete file, so only report it.
        if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
            tracing::debug!(dir = %dir.display(), error = %e, "directory fsync failed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_existing_file_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary files left behind: {names:?}");
    }

    #[test]
    fn error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        // A file where a directory is needed.
        let err = write_atomic(blocker.join("sub/out.json"), b"y").unwrap_err();
        assert!(err.to_string().contains("file"), "{err}");
    }
}
