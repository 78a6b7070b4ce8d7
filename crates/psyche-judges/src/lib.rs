//! # psyche-judges
//!
//! Every psyche experiment ends in a judgement. This crate holds the judges, all implementing
//! [`psyche_core::Judge`], and the pure pieces they are built from:
//!
//! - [`properties`]: response-property extractors (nth character, nth word, starts with a
//!   vowel, is even, among options, ...) looked up by name, with psyche's own wording of each
//!   hypothetical question; [`SentimentExtractor`] for the model-read sentiment bucket.
//! - [`compliance`]: compliance groups (single character, single word, true/false, multiple
//!   choice, numeric, refusal-like) and the normalisation used to compare answers.
//! - [`SelfPredictionJudge`]: Looking-Inward scoring of a hypothetical answer against the
//!   property of the object-level answer; [`PropertyJudge`] records that property.
//! - [`rules`]: match, regex, refusal, code, number-in-range, word-category and JSON judges.
//! - [`llm`]: LLM-as-judge on any [`psyche_core::Model`] — the logprob-weighted
//!   [`LogprobNumberJudge`] (Emergent-Misalignment style), [`ChoiceProbabilityJudge`],
//!   [`ClassifyJudge`], [`RubricJudge`], default prompts and prompt loaders.
//! - [`misalignment`]: misaligned rates over (aligned, coherent) pairs under both
//!   conventions in the literature.
//! - [`MultiJudge`]: several judges on one output, for majority votes and agreement.
//!
//! Judges reach models only through the `Model` trait, so the judge model can be any backend
//! (an HTTP API, the embedded local model, a fine-tune); it is a separate role from the
//! evaluated model. Every model-graded verdict records the judge model's id and the SHA-256
//! of the exact prompt template.
//!
//! ```
//! use psyche_core::{Conversation, Judge, Sample, Score};
//! use psyche_judges::{SelfPredictionJudge, properties::Property};
//! # tokio_test_block(async {
//! let judge = SelfPredictionJudge::new(Property::from_name("second_character")?);
//! let sample = Sample::new("animals-1/second_character", Conversation::user("..."))
//!     .with_meta("object_answer", "cow deer fish");
//! assert_eq!(judge.judge(&sample, " O ").await?.score, Score::Bool(true));
//! assert_eq!(judge.judge(&sample, "I cannot know").await?.score, Score::Bool(false));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod compliance;
mod error;
pub mod llm;
pub mod misalignment;
pub mod multi;
pub mod properties;
pub mod rules;
mod self_prediction;

pub use compliance::ComplianceRule;
pub use error::JudgeConfigError;
pub use llm::choice::{ChoiceProbabilityJudge, ChoiceScore, OptionLabels, Orderings};
pub use llm::classify::{ClassifyJudge, ClassifyMode};
pub use llm::number::{LogprobNumberJudge, NumberJudgeConfig, NumberMethod};
pub use llm::rubric::RubricJudge;
pub use multi::{Aggregate, MultiJudge};
pub use properties::{
    AnswerShape, BuiltinProperty, Perspective, Property, ResponseProperty, SentimentExtractor,
};
pub use rules::{
    CodeJudge, JsonJudge, MatchJudge, NumberJudge, RefusalJudge, RegexJudge, RegexMode,
    WordCategory, WordCategoryJudge,
};
pub use self_prediction::{Expected, PropertyJudge, SelfPredictionJudge};
