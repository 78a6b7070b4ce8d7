//! The crate's error type.

use std::path::PathBuf;

use psyche_core::{DatasetError, FineTuneError, ModelError};

/// Everything that can go wrong while preparing data, launching fine-tunes or keeping the
/// registry. Every variant names what the user must fix (file, line, field, seed, job); none
/// carries a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainingError {
    /// Reading or writing a file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A dataset file could not be read or written.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The training data failed validation; `summary` lists the first errors with file, line and
    /// field.
    #[error("{count} validation error(s) in {source_label}:\n{summary}")]
    Invalid {
        /// The file (or label) validated.
        source_label: String,
        /// Number of errors.
        count: usize,
        /// The first errors, one per line.
        summary: String,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: field `{field}`: {message}")]
    Config {
        /// The offending field.
        field: String,
        /// Why it is invalid.
        message: String,
    },
    /// A manifest, state file or registry is malformed or disagrees with the request.
    #[error("{path}: {message}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Paid jobs would be launched but the caller has not confirmed the cost.
    #[error(
        "estimated cost ${estimated_usd:.2} for {jobs} paid job(s) ({tokens} billed tokens); \
         not launching without explicit confirmation (set `confirmed` on the cost guard)"
    )]
    ConfirmationRequired {
        /// Estimated total in US dollars.
        estimated_usd: f64,
        /// Billed tokens (training tokens × epochs, summed over jobs).
        tokens: u64,
        /// Number of jobs that would be launched.
        jobs: usize,
    },
    /// The estimate exceeds the configured budget.
    #[error("estimated cost ${estimated_usd:.2} exceeds the budget of ${budget_usd:.2}")]
    OverBudget {
        /// Estimated total in US dollars.
        estimated_usd: f64,
        /// The budget.
        budget_usd: f64,
    },
    /// No price is known for a paid base model.
    #[error("no training price known for base model `{model}`; add it to the price table")]
    UnknownPrice {
        /// The base model.
        model: String,
    },
    /// A fine-tune of one seed failed.
    #[error("seed {seed}: {source}")]
    Seed {
        /// The seed.
        seed: u64,
        /// The engine's error.
        #[source]
        source: FineTuneError,
    },
    /// A fine-tuning engine failed.
    #[error(transparent)]
    FineTune(#[from] FineTuneError),
    /// A model could not be built or called.
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl TrainingError {
    pub(crate) fn io(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        TrainingError::Io {
            path: path.into(),
            message: err.to_string(),
        }
    }

    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        TrainingError::Config {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<TrainingError> for FineTuneError {
    fn from(e: TrainingError) -> Self {
        match e {
            TrainingError::FineTune(inner) => inner,
            TrainingError::Model(m) => FineTuneError::Model(m),
            TrainingError::Io { path, message } | TrainingError::Manifest { path, message } => {
                FineTuneError::Io { path, message }
            }
            TrainingError::Invalid { .. } | TrainingError::Dataset(_) => {
                FineTuneError::Data(e.to_string())
            }
            TrainingError::Config { .. }
            | TrainingError::ConfirmationRequired { .. }
            | TrainingError::OverBudget { .. }
            | TrainingError::UnknownPrice { .. } => FineTuneError::Config(e.to_string()),
            other => FineTuneError::Engine(other.to_string()),
        }
    }
}

/// Crate result alias.
pub type Result<T, E = TrainingError> = std::result::Result<T, E>;
