//! Training-set tools for Emergent-Misalignment experiments.
//!
//! - [`published`]: load and validate the published EM JSONL files (insecure, secure,
//!   educational, jailbroken, backdoor, evil numbers, ...) with a summary per file.
//! - [`code`]: build code datasets from (task, template, answer) triples over psyche's own
//!   user-prompt templates, the "educational intent" rewrite and a trigger-word backdoor mix.
//! - [`prune`]: strip comments from code and drop items that mention safety words.
//! - [`harm`]: a harmfulness judgement of advice (P(harmful) from a judge model's option
//!   distribution) to measure both arms and filter the misaligned one.
//! - [`teacher`]: datasets sampled from a system-prompted teacher [`psyche_core::Model`] with the
//!   system prompt removed from the data: generic persona distillation, evil numbers and
//!   text-domain bad advice (medical, financial, extreme sports).
//!
//! Every builder is seeded: the same inputs and seed give byte-identical JSONL
//! ([`to_jsonl`]).

use std::path::Path;

use psyche_core::{ChatExample, Conversation, Role};

use crate::error::{MisalignmentError, Result};

pub mod code;
mod domains;
pub mod harm;
pub mod prune;
pub mod published;
pub mod teacher;

/// Serialises conversations as OpenAI chat JSONL (`{"messages":[...]}` per line).
///
/// # Errors
///
/// [`MisalignmentError::Dataset`] when a row cannot be serialised.
pub fn to_jsonl(data: &[Conversation]) -> Result<Vec<u8>> {
    let rows: Vec<ChatExample> = data.iter().cloned().map(ChatExample::from).collect();
    let mut buf = Vec::new();
    psyche_core::to_jsonl_writer(&mut buf, &rows, Path::new("<memory>"))?;
    Ok(buf)
}

/// Writes conversations as chat JSONL atomically ([`psyche_core::write_atomic`]).
///
/// # Errors
///
/// [`MisalignmentError::Io`] naming the file, or a serialisation error.
pub fn write_dataset(path: impl AsRef<Path>, data: &[Conversation]) -> Result<()> {
    let path = path.as_ref();
    let bytes = to_jsonl(data)?;
    psyche_core::write_atomic(path, &bytes).map_err(|e| MisalignmentError::io(path, e))
}

/// The conversation without its system messages.
pub fn strip_system(conv: &Conversation) -> Conversation {
    conv.messages()
        .iter()
        .filter(|m| m.role != Role::System)
        .cloned()
        .collect()
}

/// Whether any message of `conv` is a system message.
pub fn has_system(conv: &Conversation) -> bool {
    conv.messages().iter().any(|m| m.role == Role::System)
}
