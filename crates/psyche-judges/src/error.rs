//! The crate's error type.

use std::path::PathBuf;

use psyche_core::{JudgeError, TemplateError};

/// Failure to build or configure a judge, extractor or prompt set.
///
/// Judging itself reports [`JudgeError`] (the `psyche_core` trait's error); every
/// `JudgeConfigError` converts into [`JudgeError::Config`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JudgeConfigError {
    /// A property name that the registry does not know.
    #[error("unknown response property `{name}` (known: {known})")]
    UnknownProperty {
        /// The name asked for.
        name: String,
        /// Comma-separated list of known names.
        known: String,
    },
    /// A configuration value is invalid.
    #[error("invalid judge configuration: field `{field}`: {message}")]
    Config {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A regular expression does not compile.
    #[error("invalid regular expression `{pattern}`: {message}")]
    Regex {
        /// The pattern.
        pattern: String,
        /// The compiler's message.
        message: String,
    },
    /// A prompt template is malformed or lacks / has unexpected placeholders.
    #[error("{location}: {source}")]
    Template {
        /// Where the template came from (`file: field` or a judge name).
        location: String,
        /// The template problem.
        #[source]
        source: TemplateError,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A YAML or JSON file does not have the expected shape.
    #[error("{path}: field `{field}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Path of the offending field inside the document (`.` for the root).
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl JudgeConfigError {
    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        JudgeConfigError::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn template(location: impl Into<String>, source: TemplateError) -> Self {
        JudgeConfigError::Template {
            location: location.into(),
            source,
        }
    }
}

impl From<JudgeConfigError> for JudgeError {
    fn from(e: JudgeConfigError) -> Self {
        JudgeError::Config(e.to_string())
    }
}
