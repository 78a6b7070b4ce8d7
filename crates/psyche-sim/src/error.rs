//! The crate's error type.

/// What can go wrong running an organism through an experiment.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The organism or the experiment could not be set up.
    #[error("setting up the organism: {0}")]
    Setup(String),
    /// The experiment failed.
    #[error("the experiment failed: {0}")]
    Experiment(String),
    /// The experiment's result lacks what the validation reads.
    #[error("the result has no {0}")]
    Missing(String),
    /// A statistic could not be computed.
    #[error(transparent)]
    Stats(#[from] psyche_stats::StatsError),
    /// A temporary directory or runtime could not be made.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
