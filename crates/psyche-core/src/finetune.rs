//! The [`FineTuner`] trait: training data and a config in, a usable model out.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::FineTuneError;
use crate::message::Conversation;
use crate::model::Model;
use crate::sample::derive_seed;

/// Engine-independent fine-tuning settings. Engine-specific settings (LoRA rank, target
/// modules...) go in `extra` and are validated by the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineTuneConfig {
    /// The base model to tune (provider model name, local model name or path).
    pub base_model: String,
    /// Seed for data order and initialisation.
    pub seed: u64,
    /// Passes over the data; `None` is "auto": the engine chooses (OpenAI from the data size,
    /// local engines their own default).
    #[serde(default)]
    pub epochs: Option<u32>,
    /// Examples per optimiser step; `None` is "auto", as for `epochs`.
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// Absolute learning rate (local engines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    /// Learning-rate multiplier (OpenAI-style engines); `None` is "auto".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate_multiplier: Option<f64>,
    /// A suffix for the resulting model's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Engine-specific settings.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl FineTuneConfig {
    /// A config with every hyperparameter "auto" (`None`): the engine chooses epochs, batch
    /// size and learning rate.
    pub fn new(base_model: impl Into<String>, seed: u64) -> Self {
        Self {
            base_model: base_model.into(),
            seed,
            epochs: None,
            batch_size: None,
            learning_rate: None,
            learning_rate_multiplier: None,
            suffix: None,
            extra: serde_json::Map::new(),
        }
    }
}

/// A finished fine-tune: everything needed to find, reload and describe it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedModel {
    /// The id under which the tuned model is evaluated.
    pub model_id: String,
    /// The engine that trained it (`"openai"`, `"psyche-local-lora"`, ...).
    pub engine: String,
    /// The config it was trained with (base model, seed, hyperparameters).
    pub config: FineTuneConfig,
    /// [`conversations_hash`] of the training data.
    pub data_hash: String,
    /// Local artefact (adapter directory), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<PathBuf>,
    /// Engine-specific details (job id, final loss, ...).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// Hex SHA-256 of the training data, serialised one conversation per line as in chat JSONL.
pub fn conversations_hash(data: &[Conversation]) -> String {
    let mut h = Sha256::new();
    for conv in data {
        // Serialising plain strings and enums cannot fail.
        let line = serde_json::to_string(conv).unwrap_or_default();
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// Fine-tunes models, whichever engine does the training.
///
/// Required: [`engine`](FineTuner::engine), [`fine_tune`](FineTuner::fine_tune) and
/// [`load`](FineTuner::load).
#[async_trait]
pub trait FineTuner: Send + Sync {
    /// The engine's name, recorded in manifests.
    fn engine(&self) -> &str;

    /// Trains on `data` (each conversation ends with the assistant turn to learn).
    ///
    /// # Errors
    ///
    /// [`FineTuneError`] naming the invalid example, config field, or the engine's failure.
    async fn fine_tune(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<TrainedModel, FineTuneError>;

    /// A [`Model`] that answers as the tuned model.
    ///
    /// # Errors
    ///
    /// [`FineTuneError`] when the artefact cannot be loaded.
    async fn load(&self, trained: &TrainedModel) -> Result<Arc<dyn Model>, FineTuneError>;
}

#[async_trait]
impl<F: FineTuner + ?Sized> FineTuner for Arc<F> {
    fn engine(&self) -> &str {
        (**self).engine()
    }
    async fn fine_tune(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<TrainedModel, FineTuneError> {
        (**self).fine_tune(data, config).await
    }
    async fn load(&self, trained: &TrainedModel) -> Result<Arc<dyn Model>, FineTuneError> {
        (**self).load(trained).await
    }
}

/// Where each fine-tuning run's training set comes from, when the set is drawn at random
/// (which items, which rows carry the trigger).
///
/// With [`DataSeeds::PerRun`] (the default) every run draws its own set from a data seed
/// derived from the base data seed and its run seed, so the variance between runs includes the
/// variance of the drawn data and a verdict about the training procedure does not hinge on one
/// drawn dataset. [`DataSeeds::Fixed`] trains every run on the one set drawn from the base data
/// seed (runs then differ only by the fine-tuning seed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSeeds {
    /// Each run draws its own training set (default).
    #[default]
    PerRun,
    /// Every run uses the training set of the base data seed.
    Fixed,
}

impl DataSeeds {
    /// The data seed of the run with fine-tuning seed `run_seed`: `base` when fixed, else
    /// `derive_seed(base, "data/run-<run_seed>")`.
    pub fn for_run(self, base: u64, run_seed: u64) -> u64 {
        match self {
            DataSeeds::Fixed => base,
            DataSeeds::PerRun => derive_seed(base, &format!("data/run-{run_seed}")),
        }
    }
}
