//! Error types shared across the traits of psyche-core.
//!
//! Each error carries what a user needs to fix the problem: the file and line of a bad dataset
//! row, the field of a bad request, the HTTP status and server message of a failed call. No error
//! ever carries a credential.

use std::path::PathBuf;
use std::time::Duration;

use crate::capabilities::Capability;

/// Failure of a [`Model`](crate::Model) call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The request itself is invalid (checked before anything is sent).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The backend cannot do what was asked.
    #[error("model `{model}` does not support {capability}")]
    Unsupported {
        /// The model's id.
        model: String,
        /// The missing capability.
        capability: Capability,
    },
    /// The server answered with an HTTP error status.
    #[error("HTTP {status} from {endpoint}: {message}")]
    Http {
        /// Status code.
        status: u16,
        /// The endpoint path (never a URL carrying credentials).
        endpoint: String,
        /// The server's error message.
        message: String,
        /// The server's `Retry-After`, when given.
        retry_after: Option<Duration>,
    },
    /// The call did not finish in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The connection failed or was reset.
    #[error("connection failed: {0}")]
    Connection(String),
    /// The server answered something that could not be understood.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// Anything else the backend reports (model loading, tensor errors, ...).
    #[error("{0}")]
    Backend(String),
}

impl ModelError {
    /// Whether retrying the same request may succeed: rate limits (429), server errors (5xx),
    /// timeouts, connection failures and unreadable responses. Client errors (400, 401, 403,
    /// 404, ...) and unsupported capabilities are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            ModelError::Http { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            ModelError::Timeout(_) | ModelError::Connection(_) | ModelError::InvalidResponse(_) => {
                true
            }
            _ => false,
        }
    }

    /// Whether this is a rate-limit answer (HTTP 429).
    pub fn is_rate_limit(&self) -> bool {
        matches!(self, ModelError::Http { status: 429, .. })
    }

    /// The HTTP status, when the failure came from one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ModelError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ModelError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Failure of a [`Judge`](crate::Judge). A judge that *declines* to score (refusal, too little
/// numeric mass) is not an error: it returns [`Score::None`](crate::Score::None).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JudgeError {
    /// The judge's model call failed.
    #[error("judge model call failed: {0}")]
    Model(#[from] ModelError),
    /// The judge's configuration is invalid (bad template, bad threshold, ...).
    #[error("invalid judge configuration: {0}")]
    Config(String),
    /// The sample lacks something the judge needs (e.g. a target).
    #[error("sample `{sample}`: {message}")]
    Sample {
        /// The sample id.
        sample: String,
        /// What is missing.
        message: String,
    },
}

/// Failure to read or write a dataset file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// One line is not what the format requires.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file (or a label such as `<memory>`).
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, including the field when known.
        message: String,
    },
    /// A row could not be serialised.
    #[error("{path}: cannot serialise row {index}: {message}")]
    Serialise {
        /// The file.
        path: PathBuf,
        /// 0-based row index.
        index: usize,
        /// What went wrong.
        message: String,
    },
}

/// Failure of a [`TaskGenerator`](crate::TaskGenerator).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The generator's configuration is invalid.
    #[error("invalid task configuration: {0}")]
    Config(String),
    /// Reading the generator's source data failed.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A prompt template is invalid.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// Failure of a [`FineTuner`](crate::FineTuner).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FineTuneError {
    /// The training data is invalid; the message names the example and field.
    #[error("invalid training data: {0}")]
    Data(String),
    /// The configuration is invalid; the message names the field.
    #[error("invalid fine-tuning configuration: {0}")]
    Config(String),
    /// A call to a remote service failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The training job failed on the engine's side.
    #[error("fine-tuning job `{job}` failed: {message}")]
    JobFailed {
        /// The engine's job id.
        job: String,
        /// The engine's reason.
        message: String,
    },
    /// Reading or writing checkpoints, adapters or manifests failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Anything else the engine reports.
    #[error("{0}")]
    Engine(String),
}

/// A prompt template is malformed or does not fit its use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A `{` without a matching `}` (or the reverse).
    #[error("template `{template}`: unbalanced brace at byte {offset}")]
    Unbalanced {
        /// The template's name.
        template: String,
        /// Byte offset of the brace.
        offset: usize,
    },
    /// A required placeholder does not appear.
    #[error("template `{template}`: missing placeholder `{{{placeholder}}}`")]
    MissingPlaceholder {
        /// The template's name.
        template: String,
        /// The placeholder's name.
        placeholder: String,
    },
    /// A placeholder that the caller does not provide.
    #[error("template `{template}`: unknown placeholder `{{{placeholder}}}` (known: {known})")]
    UnknownPlaceholder {
        /// The template's name.
        template: String,
        /// The placeholder's name.
        placeholder: String,
        /// Comma-separated list of known placeholders.
        known: String,
    },
}
