//! # psyche-finetune
//!
//! Fine-tuning as a pluggable step of an evaluation: whichever engine trains, "fine-tune this
//! dataset with these seeds and give me the resulting models" is one call.
//!
//! - [`dataset`]: validate OpenAI chat JSONL (roles, alternation, empty assistant turns, token
//!   estimates, duplicates) with findings naming file, line and field; seeded splits; statistics;
//!   export.
//! - [`registry`]: per-model [`registry::Manifest`]s and a [`registry::Registry`] file that
//!   evaluations look models up in. (Training over arms and seeds, resumably, is
//!   `psyche_runner::training::train_runs` with a `Resumable` engine.)
//! - [`openai`]: the OpenAI fine-tuning jobs API as a `FineTuner` (upload, create, poll with
//!   backoff, events, resumable waits keyed by data hash + config), returning models through
//!   `psyche_models::OpenAiCompatible`.
//! - `local` (feature `local`, on by default here): psyche-local's LoRA trainer behind the same
//!   trait, with the papers' recipes mapped onto it. Without the feature nothing of psyche-local
//!   or candle is compiled.
//! - [`external`]: job directories for TRL/PEFT trainers on a GPU cluster, and registration of
//!   the resulting adapters served by vLLM as `base:adapter`.
//! - [`cost`]: cost estimates (tokens × epochs × price) and the explicit confirmation paid
//!   launches need.
//! - [`presets`]: the papers' hyperparameters (table in `docs/guides/fine-tuning.md`).
//!
//! Library code reaches models only through `psyche_core` traits; the concrete backends used
//! are `psyche_models::OpenAiCompatible` (remote and vLLM models) and `psyche_local`
//! (the local trainer).
//!
//! ```
//! use psyche_finetune::dataset::{validate_str, CharsPerToken, ValidationOptions};
//! let line = r#"{"messages":[{"role":"user","content":"Pick A or B."},{"role":"assistant","content":"A"}]}"#;
//! let prepared = validate_str(line, "data.jsonl", &ValidationOptions::default(), &CharsPerToken::default());
//! // One example is valid on its own, but OpenAI needs at least 10.
//! assert!(!prepared.report.is_valid());
//! assert_eq!(prepared.examples.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod cost;
pub mod dataset;
mod error;
pub mod external;
mod fsutil;
#[cfg(feature = "local")]
pub mod local;
pub mod openai;
pub mod presets;
pub mod registry;

pub use error::{Result, TrainingError};
pub use registry::{Manifest, Registry, RegistryEntry};
