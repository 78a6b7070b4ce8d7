//! Preparing OpenAI chat JSONL for fine-tuning: validation, statistics, deduplication,
//! seeded train/validation splits and export.
//!
//! Validation reads each line as raw JSON so that one pass reports *every* problem, each as an
//! [`Issue`] naming the file, the 1-based line and the field (`messages[2].content`). Errors make
//! a file unusable for training; warnings (duplicates, empty user turns, very long examples,
//! unknown keys) are reported and left to the caller.
//!
//! # Token estimates
//!
//! Unless a real tokenizer is supplied through [`TokenEstimator`], token counts use the
//! documented heuristic [`CharsPerToken`]: `ceil(chars / 4)` per message text, plus
//! [`MESSAGE_OVERHEAD_TOKENS`] per message and [`CONVERSATION_OVERHEAD_TOKENS`] per example for
//! the chat format's role markers. For English text this is typically within ±20% of the
//! GPT-4o tokenizer; it is meant for cost estimates and length limits, not for billing.
//!
//! # Examples
//!
//! ```
//! use psyche_finetune::dataset::{validate_str, ValidationOptions, CharsPerToken, train_val_split};
//! let text = r#"{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"}]}
//! {"messages":[{"role":"user","content":"Bye"},{"role":"assistant","content":""}]}
//! "#;
//! let opts = ValidationOptions { min_examples: 1, ..ValidationOptions::default() };
//! let prepared = validate_str(text, "toy.jsonl", &opts, &CharsPerToken::default());
//! let err = &prepared.report.errors()[0];
//! assert_eq!((err.line, err.field.as_str()), (2, "messages[1].content"));
//! let split = train_val_split(&prepared.examples, 0.5, 7)?;
//! assert_eq!(split.train.len() + split.validation.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod split;
mod stats;
mod validate;

pub use split::{
    ExportedFiles, TrainValSplit, dedupe, export, shuffled, to_chat_jsonl, train_val_split,
};
pub use stats::{DatasetStats, LengthSummary, RoleStats};
pub use validate::{
    Issue, PreparedDataset, Severity, ValidationOptions, ValidationReport, validate_conversations,
    validate_file, validate_str,
};

use psyche_core::{ChatMessage, Conversation};

/// Tokens added per message for role markers (heuristic).
pub const MESSAGE_OVERHEAD_TOKENS: u64 = 3;
/// Tokens added per example for the reply priming (heuristic).
pub const CONVERSATION_OVERHEAD_TOKENS: u64 = 3;

/// Counts tokens of a text. Implement it over a real tokenizer for exact numbers.
pub trait TokenEstimator: Send + Sync {
    /// A short name recorded in statistics (`"chars/4"`, `"cl100k"`, ...).
    fn name(&self) -> String;
    /// Number of tokens of `text`.
    fn count(&self, text: &str) -> u64;

    /// Tokens of one message: its text plus [`MESSAGE_OVERHEAD_TOKENS`].
    fn message_tokens(&self, message: &ChatMessage) -> u64 {
        self.count(&message.content) + MESSAGE_OVERHEAD_TOKENS
    }

    /// Tokens of a whole example, overheads included.
    fn conversation_tokens(&self, conversation: &Conversation) -> u64 {
        conversation
            .messages()
            .iter()
            .map(|m| self.message_tokens(m))
            .sum::<u64>()
            + CONVERSATION_OVERHEAD_TOKENS
    }
}

/// The heuristic estimator: `ceil(chars / chars_per_token)` (characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CharsPerToken(pub f64);

impl Default for CharsPerToken {
    fn default() -> Self {
        Self(4.0)
    }
}

impl TokenEstimator for CharsPerToken {
    fn name(&self) -> String {
        format!("chars/{}", self.0)
    }
    fn count(&self, text: &str) -> u64 {
        let chars = text.chars().count() as f64;
        (chars / self.0.max(f64::MIN_POSITIVE)).ceil() as u64
    }
}
