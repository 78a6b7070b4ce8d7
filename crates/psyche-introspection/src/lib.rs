//! # psyche-introspection
//!
//! Looking Inward (Binder, Chua et al. 2024) as composable steps: can a model predict
//! properties of its own behaviour better than another model trained on that behaviour can?
//!
//! The crate follows the paper's method section:
//!
//! | step | API |
//! |---|---|
//! | object-level task families (6 training, 6 held-out, user families from a file) | [`family`]: [`Family`], [`FamilyGenerator`], [`train_families`], [`held_out_families`] |
//! | hypothetical prompts quoting the object prompt, for every property the judges know | [`hypothetical`]: [`HypotheticalTemplate`], [`PromptShift`], [`hypothetical_samples`], [`HypotheticalGenerator`] |
//! | the released data | [`released`]: [`load_released`] |
//! | object-level answers at T = 0 (mode of n where not deterministic), non-answers excluded | [`collect`]: [`collect_object`], [`ObjectBehaviour`]; [`solve::ObjectSolver`] |
//! | hypothetical answers (free, or constrained to valid answers) | [`collect::collect_hypothetical`], [`solve::AnswerMethod`] |
//! | self- and cross-prediction fine-tuning sets | [`training`]: [`paired_training_sets`], [`TrainingSet`] |
//! | held-out accuracy vs the mode baseline on the same items, micro average, CIs, self − cross over fine-tuning runs | [`scoring`]: [`score`], [`summarise`], [`seed_contrast`] |
//! | calibration (exact object distributions where available) | [`calibration`]: [`calibrate`] |
//! | behaviour change, agreement of two models | [`behaviour`] |
//! | entropy guard, entropy-matched re-scoring, entropy self-prediction | [`entropy`] |
//! | injected thoughts (Lindsey 2025): concept vectors, injection over layers × strengths, controls, held-out cell | [`injected`]: [`run_injection`], [`ConceptSet`], [`InjectionConfig`] → [`InjectionResult`] |
//! | everything, fine-tuning through any [`FineTuner`](psyche_core::FineTuner) | [`experiment`]: [`LookingInwardConfig::small`] → [`LookingInward::builder`] → [`LookingInwardResult`], an [`ExperimentResult`](psyche_runner::experiment::ExperimentResult) (shared headlines and report; [`LookingInwardSummary`] for the main numbers) |
//!
//! Models and trainers are reached only through `psyche_core`'s [`Model`](psyche_core::Model)
//! and [`FineTuner`](psyche_core::FineTuner) traits: the embedded model with local LoRA, an
//! OpenAI-compatible API with OpenAI fine-tuning, or anything else. Every collection pass runs
//! through psyche-runner into a resumable run log.
//!
//! A one-run self-prediction eval (the quickstart):
//!
//! ```no_run
//! # async fn demo(model: std::sync::Arc<dyn psyche_core::Model>) -> Result<(), Box<dyn std::error::Error>> {
//! use psyche_introspection::{Family, FamilyGenerator, HypotheticalGenerator, AnswerMethod, scoring};
//! use psyche_runner::Eval;
//! let animals = HypotheticalGenerator::new(FamilyGenerator::new(Family::builtin("animals")?, 30))
//!     .method(AnswerMethod::constrained());
//! let log = "runs/self-prediction.jsonl";
//! Eval::builder("self-prediction").task(&animals, 0).model(model).log_path(log).build()?.run().await?;
//! let (_, records) = psyche_runner::read_log(log)?;
//! let summary = scoring::summarise(&scoring::items_from_records(&records, "self_prediction"), &Default::default());
//! println!("accuracy {:.2} vs mode baseline {:.2}", summary.micro.accuracy, summary.micro.baseline);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod behaviour;
pub mod calibration;
pub mod collect;
pub mod data;
pub mod entropy;
mod error;
pub mod experiment;
pub mod family;
pub mod hypothetical;
pub mod injected;
pub mod released;
pub mod report;
pub mod scoring;
pub mod solve;
pub mod summary;
pub mod training;

#[cfg(test)]
mod regressions;
#[cfg(test)]
mod test_models;

pub use calibration::calibrate;
pub use collect::{ObjectBehaviour, RunOptions, collect_hypothetical, collect_object};
pub use error::{IntrospectionError, Result};
pub use experiment::{
    CrossModel, LookingInward, LookingInwardBuilder, LookingInwardConfig, LookingInwardResult,
    Sizes,
};
pub use family::{
    Family, FamilyGenerator, FamilyKind, SplitOverlap, held_out_families, split_overlap,
    train_families,
};
pub use hypothetical::{
    HypotheticalGenerator, HypotheticalTemplate, PromptShift, hypothetical_samples,
};
pub use injected::{ConceptSet, InjectionConfig, InjectionResult, run_injection};
pub use released::load_released;
pub use scoring::{ArmContrast, score, seed_contrast, summarise};
pub use solve::AnswerMethod;
pub use summary::LookingInwardSummary;
pub use training::{TrainingSet, paired_training_sets};

/// The README's examples, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
