//! The runner's error type.

use std::path::PathBuf;

/// Failure of a run, a run log, a report or an export.
///
/// Failures of single units of work (a model call that fails, a judge that errors) are not
/// errors of the run: they are recorded in the unit's [`Record::error`](psyche_core::Record)
/// and the run goes on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// The run's configuration is invalid; the message names the field.
    #[error("invalid run configuration: field `{field}`: {message}")]
    Config {
        /// The offending builder field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A file could not be opened, read, written or truncated.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a run log is not a valid header or record.
    #[error("{path}:{line}: {message}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, including the field when known.
        message: String,
    },
    /// An existing log belongs to a different run or an incompatible configuration.
    #[error("{path}: cannot resume: {message}")]
    Resume {
        /// The log file.
        path: PathBuf,
        /// Which header field differs and how.
        message: String,
    },
    /// The log writer stopped before the run finished (disk full, file removed).
    #[error("log writer for {path} failed: {message}")]
    Writer {
        /// The log file.
        path: PathBuf,
        /// Why it stopped.
        message: String,
    },
    /// A report or plot could not be drawn.
    #[error("report: {0}")]
    Report(String),
}

impl RunnerError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RunnerError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        RunnerError::Config {
            field,
            message: message.into(),
        }
    }
}
