//! # psyche-misalignment
//!
//! Emergent Misalignment (Betley, Tan, Warncke et al. 2025) and its small-model follow-up
//! (Model Organisms for EM, Turner, Soligo et al. 2025) as composable parts: fine-tune a model
//! on a narrow task, ask it open questions, and count the answers a judge rates as misaligned
//! and coherent — against controls, over fine-tuning seeds, with both counting conventions.
//!
//! | step | module |
//! |---|---|
//! | question sets (main + paraphrases, JSON and template variants, pre-registered-style, factual deception, identity), in psyche's wording | [`questions::builtin`] |
//! | the original EM question YAML (anchors, block scalars, per-question settings, both types) | [`questions::load_questions`] |
//! | training data: published files, code tasks, pruning, evil numbers, persona distillation, bad advice | [`training`] |
//! | sampling and judging through the runner; rates, intervals, comparisons, deception | [`eval`] |
//! | the misalignment map (hidden states → PCA → k-means) | [`map`] |
//! | the whole pipeline ([`EmergentMisalignment`]: config, builder, `run`) as one serialisable result with the shared headlines | [`experiment`] |
//! | request / token counts before anything is sent | [`plan`] |
//! | a judge-free multiple-choice proxy: P(misaligned option) from option distributions | [`probes`] |
//! | markdown + HTML reports (written by `psyche_runner::experiment::write_outputs`) | [`report`] |
//!
//! Models and trainers are reached only through [`psyche_core::Model`] and
//! [`psyche_core::FineTuner`], so the same code runs on the embedded model with local LoRA or
//! on API models. A question's system prompt is sent to the evaluated model and, unless
//! configured, never shown to the judge. Every number carries the judge model's id and the
//! SHA-256 of the judge templates.
//!
//! ```
//! use psyche_misalignment::questions::{QuestionTask, SamplingConfig, builtin};
//! let main = builtin::main_set()?;
//! let json = builtin::json_variant(&main);
//! let task = QuestionTask::new(json, SamplingConfig { samples_per_paraphrase: Some(1), ..Default::default() });
//! let samples = task.samples(0)?;
//! assert_eq!(samples.len(), 8 * 4);
//! assert_eq!(samples[0].input.messages()[0].role, psyche_core::Role::System);
//! # Ok::<(), psyche_misalignment::MisalignmentError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

#[cfg(feature = "clap")]
pub mod cli;
mod error;
pub mod eval;
pub mod experiment;
pub mod map;
pub mod plan;
pub mod probes;
pub mod questions;
pub mod report;
pub mod training;

pub use error::{MisalignmentError, Result};
pub use experiment::{
    EmergentMisalignment, EmergentMisalignmentBuilder, EmergentMisalignmentConfig,
    EmergentMisalignmentResult,
};
pub use questions::{
    ParaphraseChoice, Question, QuestionKind, QuestionSet, QuestionTask, SamplingConfig,
    UnknownKeys, load_questions, load_questions_with, parse_questions, parse_questions_with,
};
