//! The crate's error type.

use std::path::PathBuf;

use psyche_core::{DatasetError, FineTuneError, JudgeError, ModelError, SolverError, TaskError};

/// Failure of a psyche-backdoor generator, loader, builder or experiment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackdoorError {
    /// A configuration value is invalid; names the field.
    #[error("invalid configuration: field `{field}`: {message}")]
    Config {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// One line of an input file is not what the format requires.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, including the field when known.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Reading or writing a dataset failed.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A model call failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A judge (or an option-probability computation) failed.
    #[error(transparent)]
    Judge(#[from] JudgeError),
    /// A fine-tune failed.
    #[error(transparent)]
    FineTune(#[from] FineTuneError),
    /// The runner failed.
    #[error(transparent)]
    Runner(#[from] psyche_runner::RunnerError),
    /// A statistic could not be computed.
    #[error(transparent)]
    Stats(#[from] psyche_stats::StatsError),
}

impl BackdoorError {
    /// A [`BackdoorError::Config`].
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.into(),
            message: err.to_string(),
        }
    }
}

impl From<BackdoorError> for TaskError {
    fn from(e: BackdoorError) -> Self {
        match e {
            BackdoorError::Dataset(d) => TaskError::Dataset(d),
            other => TaskError::Config(other.to_string()),
        }
    }
}

impl From<BackdoorError> for SolverError {
    fn from(e: BackdoorError) -> Self {
        match e {
            BackdoorError::Model(m) => SolverError::Model(m),
            BackdoorError::Judge(j) => SolverError::Judge(j),
            other => SolverError::Invalid(other.to_string()),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = BackdoorError> = std::result::Result<T, E>;
