//! The crate's error type for everything that is not a model call: configuration, cache files
//! and batch bookkeeping. Model calls fail with [`psyche_core::ModelError`].

use std::path::PathBuf;

use psyche_core::ModelError;

/// Failure outside a single model call. Never carries an API key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// A configuration value is invalid; `field` names it.
    #[error("invalid configuration: field `{field}`: {message}")]
    Config {
        /// The offending field (e.g. `retry.max_backoff`).
        field: String,
        /// Why it is invalid.
        message: String,
    },
    /// A file (cache, batch state, results) could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A batch failed as a whole (validation, expiry, cancellation) or its bookkeeping is
    /// inconsistent.
    #[error("batch `{batch}`: {message}")]
    Batch {
        /// The provider's batch id (or the state file when there is no id yet).
        batch: String,
        /// What happened.
        message: String,
    },
    /// A call to the provider failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl BackendError {
    pub(crate) fn config(field: &str, message: impl Into<String>) -> Self {
        Self::Config {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.into(),
            message: message.to_string(),
        }
    }
}
