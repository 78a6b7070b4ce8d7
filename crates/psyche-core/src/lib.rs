//! # psyche-core
//!
//! The shared vocabulary of psyche, a library of evaluation primitives for LLM psychology
//! (introspection, behavioural self-awareness, emergent misalignment). Every other psyche crate
//! builds on these types and traits; this crate depends on no other psyche crate and on nothing
//! heavy, so users' own backends, judges and tasks can build on it cheaply.
//!
//! - Chat: [`ChatMessage`], [`Conversation`], [`Role`].
//! - Generation: [`GenerateRequest`] → [`GenerateResponse`] with per-token [`TokenLogprob`]s.
//! - Seams: [`Model`] (with [`Capabilities`] declared as types), [`Judge`], [`TaskGenerator`],
//!   [`Solver`], [`FineTuner`].
//! - Data: [`Sample`] in, [`Record`] out; OpenAI chat JSONL both ways ([`read_chat_jsonl`],
//!   [`write_chat_jsonl`]); prompt templates ([`PromptTemplate`]); durable whole-file writes
//!   ([`write_atomic`]).
//!
//! ```
//! use psyche_core::{Conversation, GenerateRequest, Sample};
//! let sample = Sample::new("q1", Conversation::user("Name a colour."))
//!     .with_meta("task", "colours")
//!     .with_cluster("q1");
//! let request = GenerateRequest::new(sample.input.clone()).temperature(0.0).max_tokens(16);
//! assert_eq!(request.messages.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod capabilities;
mod dataset;
mod error;
mod finetune;
mod forward;
mod fs;
mod generation;
mod judge;
mod message;
mod model;
mod record;
mod sample;
mod solver;
mod template;

pub use capabilities::{Capabilities, Capability, FineTuneSupport, LogprobSupport};
pub use dataset::{
    ChatExample, JsonlReader, parse_json_line, parse_jsonl, read_chat_jsonl, read_jsonl,
    to_jsonl_writer, write_chat_jsonl, write_jsonl,
};
pub use error::{DatasetError, FineTuneError, JudgeError, ModelError, TaskError, TemplateError};
pub use finetune::{DataSeeds, FineTuneConfig, FineTuner, TrainedModel, conversations_hash};
pub use fs::write_atomic;
pub use generation::{
    Choice, FinishReason, GenerateRequest, GenerateResponse, HiddenStates, LogLikelihood,
    SteerFrom, Steering, TokenDistribution, TokenLogprob, TopLogprob, Usage,
};
pub use judge::{Judge, Score, Verdict};
pub use message::{ChatMessage, Conversation, Role};
pub use model::{
    Model, ModelInfo, OptionProbabilities, OptionQuery, ProbabilityMethod,
    first_token_or_sampled_option_probabilities, option_probabilities_from_distribution,
    option_probabilities_from_samples,
};
pub use record::{Record, RecordKey, Timing};
pub use sample::{Metadata, Sample, Split, TaskGenerator, derive_seed, seeded_rng};
pub use solver::{Roles, Solution, SolveContext, Solver, SolverError};
pub use template::PromptTemplate;

/// Re-exported so generators name the exact RNG type psyche seeds.
pub use rand_chacha::ChaCha8Rng;
