//! Small file helpers: atomic, durable writes and JSON reads whose errors name the file and
//! field.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, TrainingError};

/// Writes pretty JSON through [`write_atomic`].
pub(crate) fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let body = serde_json::to_vec_pretty(value).map_err(|e| TrainingError::io(path, e))?;
    write_atomic(path, &body)
}

/// [`psyche_core::write_atomic`] (temporary file in the same directory, fsync, rename, fsync of
/// the directory; parents created): a crash leaves either the old or the new file, never half
/// of one. The error names the file.
pub(crate) fn write_atomic(path: &Path, body: &[u8]) -> Result<()> {
    psyche_core::write_atomic(path, body).map_err(|e| {
        // The core error already names the path that failed; do not repeat the target's.
        let text = e.to_string();
        let prefix = format!("{}: ", path.display());
        TrainingError::io(path, text.strip_prefix(&prefix).unwrap_or(&text))
    })
}

/// Reads JSON; `None` when the file does not exist. Parse errors name the field path.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TrainingError::io(path, e)),
    };
    psyche_core::parse_json_line(&text)
        .map(Some)
        .map_err(|message| TrainingError::Manifest {
            path: path.to_owned(),
            message,
        })
}

/// Hex SHA-256 of bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
