//! The crate's error type.

use std::path::PathBuf;

use psyche_core::{DatasetError, FineTuneError, ModelError, TaskError, TemplateError};
use psyche_runner::RunnerError;
use psyche_stats::StatsError;

/// Everything that can go wrong in the Looking Inward pipeline. Errors about user input name
/// the file and line (or field) at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionError {
    /// A data file (word list, texts, items, released rows, templates) is malformed.
    #[error("{path}:{line}: {message}")]
    Data {
        /// The file (or the name of a shipped data file).
        path: PathBuf,
        /// 1-based line number (0 when the problem is not on one line).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An invalid configuration value.
    #[error("invalid configuration: field `{field}`: {message}")]
    Config {
        /// The field at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A prompt template is invalid.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A task generator failed.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// Reading or writing a dataset failed.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// An evaluation run failed.
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// A model call made outside the runner failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A fine-tune failed.
    #[error(transparent)]
    FineTune(#[from] FineTuneError),
    /// A statistic could not be computed.
    #[error(transparent)]
    Stats(#[from] StatsError),
    /// A judge failed (it names the sample).
    #[error(transparent)]
    Judge(#[from] psyche_core::JudgeError),
    /// A judge configuration (e.g. an unknown property name) is invalid.
    #[error(transparent)]
    JudgeConfig(#[from] psyche_judges::JudgeConfigError),
}

impl IntrospectionError {
    /// A [`IntrospectionError::Config`] error.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A [`IntrospectionError::Data`] error.
    pub fn data(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        Self::Data {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    /// A [`IntrospectionError::Io`] error.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<IntrospectionError> for TaskError {
    fn from(e: IntrospectionError) -> Self {
        match e {
            IntrospectionError::Task(t) => t,
            IntrospectionError::Template(t) => TaskError::Template(t),
            IntrospectionError::Dataset(d) => TaskError::Dataset(d),
            other => TaskError::Config(other.to_string()),
        }
    }
}

/// Shorthand result type.
pub type Result<T, E = IntrospectionError> = std::result::Result<T, E>;
