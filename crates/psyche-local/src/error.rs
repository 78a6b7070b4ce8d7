//! The crate's error type.

use std::path::PathBuf;

use psyche_core::{FineTuneError, ModelError};

/// Everything that can go wrong while resolving, loading, running or fine-tuning a local model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No source could provide the model; `tried` lists every source with its reason.
    #[error("model `{name}` not found; tried: {}", tried.join("; "))]
    NotFound {
        /// The name or path asked for.
        name: String,
        /// Each source tried, with why it failed.
        tried: Vec<String>,
    },
    /// A downloaded or cached file does not have the pinned checksum.
    #[error("{path}: sha256 mismatch (expected {expected}, got {actual})")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// The file is not a readable GGUF file (wrong magic, truncated, bad metadata).
    #[error("{path}: invalid GGUF file: {message}")]
    Gguf {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The GGUF holds a model architecture this crate cannot run.
    #[error(
        "{path}: unsupported architecture `{architecture}` (supported: {})",
        crate::llama::SUPPORTED_ARCHITECTURES.join(", ")
    )]
    UnsupportedArchitecture {
        /// The file.
        path: PathBuf,
        /// `general.architecture` as found in the file.
        architecture: String,
    },
    /// The GGUF holds a tensor in a quantization type this crate cannot read.
    #[error(
        "{path}: unsupported tensor type {tensor_type} (supported: {})",
        crate::llama::SUPPORTED_TENSOR_TYPES.join(", ")
    )]
    UnsupportedTensorType {
        /// The file.
        path: PathBuf,
        /// The GGML type's name and number as found in the file (`IQ4_XS (23)`).
        tensor_type: String,
    },
    /// A required metadata key or tensor is missing or has the wrong type.
    #[error("{path}: metadata `{key}`: {message}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The metadata key or tensor name.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Building or running the tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Rendering the chat template failed.
    #[error("chat template: {0}")]
    Template(String),
    /// A configuration value is invalid.
    #[error("invalid configuration field `{field}`: {message}")]
    Config {
        /// The field.
        field: String,
        /// Why it is invalid.
        message: String,
    },
    /// An input is too long for the model's context window.
    #[error("input of {tokens} tokens (plus {max_new} new) exceeds the context length {context}")]
    ContextLength {
        /// Prompt tokens.
        tokens: usize,
        /// Tokens to generate.
        max_new: usize,
        /// The model's context length.
        context: usize,
    },
    /// A LoRA adapter could not be loaded, saved or applied.
    #[error("adapter {path}: {message}")]
    Adapter {
        /// The adapter directory or file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Tensor computation failed.
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// The inference worker thread is gone (it panicked or the model was dropped).
    #[error("the inference worker of model `{0}` stopped")]
    WorkerStopped(String),
}

impl LocalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LocalError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(field: &str, message: impl Into<String>) -> Self {
        LocalError::Config {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl From<LocalError> for ModelError {
    fn from(e: LocalError) -> Self {
        match e {
            LocalError::ContextLength { .. }
            | LocalError::Tokenizer(_)
            | LocalError::Template(_) => ModelError::InvalidRequest(e.to_string()),
            other => ModelError::Backend(other.to_string()),
        }
    }
}

impl From<LocalError> for FineTuneError {
    fn from(e: LocalError) -> Self {
        match e {
            LocalError::Io { path, source } => FineTuneError::Io {
                path,
                message: source.to_string(),
            },
            LocalError::Adapter { path, message } => FineTuneError::Io { path, message },
            LocalError::Config { .. } => FineTuneError::Config(e.to_string()),
            other => FineTuneError::Engine(other.to_string()),
        }
    }
}
