//! The LoRA hyperparameters ([`LoraConfig`]) and the engine's constants.

use serde::{Deserialize, Serialize};

use crate::LocalError;
use crate::llama::LoraTarget;

/// The engine name recorded in manifests and
/// [`TrainedModel::engine`](psyche_core::TrainedModel::engine).
pub const ENGINE: &str = "psyche-local-lora";

/// Epochs used when [`FineTuneConfig::epochs`](psyche_core::FineTuneConfig::epochs) is "auto" (`None`): one pass over the data.
pub const AUTO_EPOCHS: u32 = 1;

/// Micro-batch size used when [`FineTuneConfig::batch_size`](psyche_core::FineTuneConfig::batch_size) is "auto" (`None`): one example
/// (with `gradient_accumulation` setting the effective batch).
pub const AUTO_BATCH_SIZE: u32 = 1;

pub(super) const ADAPTER_FILE: &str = "adapter.safetensors";
pub(super) const MANIFEST_FILE: &str = "manifest.json";
pub(super) const FORMAT: &str = "psyche-lora-adapter/1";

/// LoRA hyperparameters. Read from [`FineTuneConfig::extra`](psyche_core::FineTuneConfig::extra); `seed`, `epochs`, `batch_size`
/// and `learning_rate` come from the [`FineTuneConfig`](psyche_core::FineTuneConfig) itself. PEFT's names are accepted as
/// aliases (`r`, `lora_alpha`, `lora_dropout`, `target_modules`, `layers_to_transform`,
/// `use_rslora`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraConfig {
    /// Adapter rank `r`.
    #[serde(alias = "r")]
    pub rank: usize,
    /// Scaling numerator: the update is scaled by `alpha / rank` (`alpha / √rank` with
    /// [`rslora`](Self::rslora)).
    #[serde(alias = "lora_alpha")]
    pub alpha: f64,
    /// Rank-stabilised LoRA: scale by `alpha / √rank` instead of `alpha / rank`.
    #[serde(alias = "use_rslora")]
    pub rslora: bool,
    /// Dropout on the adapter input during training, in `[0, 1)`.
    #[serde(alias = "lora_dropout")]
    pub dropout: f32,
    /// Which projections get adapters.
    #[serde(alias = "target_modules")]
    pub targets: Vec<LoraTarget>,
    /// Which layers get adapters (`None`: all).
    #[serde(alias = "layers_to_transform")]
    pub layers: Option<Vec<usize>>,
    /// Peak learning rate when the fine-tune config sets none.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Optimiser steps of linear warmup before the linear decay.
    pub warmup_steps: usize,
    /// Micro-batches per optimiser step.
    pub gradient_accumulation: usize,
    /// Longest training example in tokens (longer ones are rejected, naming the example).
    pub max_seq_len: usize,
    /// Save a checkpoint every this many optimiser steps.
    pub checkpoint_every: Option<usize>,
    /// Merge the adapter into the weights when loading the trained model.
    pub merge: bool,
    /// Show a progress bar (only ever drawn on a terminal).
    pub progress: bool,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            rank: 8,
            alpha: 16.0,
            rslora: false,
            dropout: 0.0,
            targets: vec![LoraTarget::Q, LoraTarget::V],
            layers: None,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            warmup_steps: 0,
            gradient_accumulation: 1,
            max_seq_len: 512,
            checkpoint_every: None,
            merge: false,
            progress: true,
        }
    }
}

impl LoraConfig {
    /// Reads the config from a fine-tune config's `extra` map (unknown keys are errors).
    ///
    /// # Errors
    ///
    /// [`LocalError::Config`] naming the offending field.
    pub fn from_extra(
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, LocalError> {
        let v = serde_json::Value::Object(extra.clone());
        serde_path_to_error::deserialize(v)
            .map_err(|e| LocalError::config(&format!("extra.{}", e.path()), e.inner().to_string()))
    }

    /// Writes the config into a fine-tune config's `extra` map.
    pub fn to_extra(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        }
    }

    /// Checks the config against a model with `n_layer` blocks.
    ///
    /// # Errors
    ///
    /// [`LocalError::Config`] naming the field.
    pub fn validate(&self, n_layer: usize) -> Result<(), LocalError> {
        if self.rank == 0 {
            return Err(LocalError::config("rank", "must be at least 1"));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(LocalError::config("alpha", "must be a positive number"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(LocalError::config("dropout", "must lie in [0, 1)"));
        }
        if self.targets.is_empty() {
            return Err(LocalError::config(
                "targets",
                "must name at least one projection",
            ));
        }
        if let Some(layers) = &self.layers {
            if layers.is_empty() {
                return Err(LocalError::config("layers", "must name at least one layer"));
            }
            if let Some(l) = layers.iter().find(|&&l| l >= n_layer) {
                return Err(LocalError::config(
                    "layers",
                    format!("layer {l} does not exist (the model has {n_layer})"),
                ));
            }
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(LocalError::config(
                "learning_rate",
                "must be a positive number",
            ));
        }
        if self.gradient_accumulation == 0 {
            return Err(LocalError::config(
                "gradient_accumulation",
                "must be at least 1",
            ));
        }
        if self.max_seq_len < 2 {
            return Err(LocalError::config("max_seq_len", "must be at least 2"));
        }
        if self.checkpoint_every == Some(0) {
            return Err(LocalError::config("checkpoint_every", "must be at least 1"));
        }
        Ok(())
    }

    /// The factor applied to `B·A`: `alpha / rank`, or `alpha / √rank` with `rslora`.
    pub fn scale(&self) -> f64 {
        let r = self.rank.max(1) as f64;
        if self.rslora {
            self.alpha / r.sqrt()
        } else {
            self.alpha / r
        }
    }

    pub(super) fn layer_list(&self, n_layer: usize) -> Vec<usize> {
        let mut l = self
            .layers
            .clone()
            .unwrap_or_else(|| (0..n_layer).collect());
        l.sort_unstable();
        l.dedup();
        l
    }

    pub(super) fn target_list(&self) -> Vec<LoraTarget> {
        let mut t = self.targets.clone();
        t.sort();
        t.dedup();
        t
    }
}
