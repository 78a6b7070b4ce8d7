//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in psyche-misalignment.
///
/// Errors about input files name the file, the item (question id or line) and the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MisalignmentError {
    /// A question file has the wrong shape: the file, the item's id (or its position when it has
    /// none) and the field are named.
    #[error("{path}: item `{item}`: field `{field}`: {message}")]
    Questions {
        /// The file (or a label such as `<builtin main>`).
        path: PathBuf,
        /// The question id, or `#N` (0-based position) when the item has no id.
        item: String,
        /// The offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A training-data line is invalid: file, 1-based line and field are named.
    #[error("{path}:{line}: field `{field}`: {message}")]
    Data {
        /// The file (or a label).
        path: PathBuf,
        /// 1-based line number (0 when the problem is the whole file).
        line: usize,
        /// The offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A setting is invalid.
    #[error("invalid configuration: field `{field}`: {message}")]
    Config {
        /// The setting.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a JSONL dataset failed.
    #[error(transparent)]
    Dataset(#[from] psyche_core::DatasetError),
    /// Building a judge failed (a template or judge setting).
    #[error(transparent)]
    Judge(#[from] psyche_judges::JudgeConfigError),
    /// A model call failed (teacher sampling, embeddings).
    #[error(transparent)]
    Model(#[from] psyche_core::ModelError),
    /// Fine-tuning failed.
    #[error(transparent)]
    FineTune(#[from] psyche_core::FineTuneError),
    /// The evaluation engine failed.
    #[error(transparent)]
    Runner(#[from] psyche_runner::RunnerError),
    /// A template is invalid.
    #[error(transparent)]
    Template(#[from] psyche_core::TemplateError),
}

impl MisalignmentError {
    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<MisalignmentError> for psyche_core::TaskError {
    fn from(e: MisalignmentError) -> Self {
        match e {
            MisalignmentError::Dataset(d) => psyche_core::TaskError::Dataset(d),
            MisalignmentError::Template(t) => psyche_core::TaskError::Template(t),
            other => psyche_core::TaskError::Config(other.to_string()),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = MisalignmentError> = std::result::Result<T, E>;
