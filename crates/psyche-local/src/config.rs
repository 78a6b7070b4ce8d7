//! [`LocalConfig`]: which model to load and how.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::resolve::DEFAULT_MODEL;

/// How the weights are held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightFormat {
    /// Dequantize every tensor to f32 (default): fast batched prompts, trainable with LoRA, and
    /// the numerics of the unquantized model on the quantized values. About 5× the file size:
    /// the Q4_0/Q4_1/Q8_0 blocks are also kept, and products with at most 8 rows (decode steps)
    /// read them instead of the f32 copy, with the same weight values (sums differ only in
    /// rounding order).
    #[default]
    F32,
    /// Keep only the GGUF's quantized tensors (less memory, no LoRA training). Q4_0, Q4_1 and
    /// Q8_0 run through our AVX2 kernels on the same weight values as `F32`; other formats and
    /// devices use candle's quantized matmul, which rounds activations to 8 bits.
    Quantized,
}

impl WeightFormat {
    /// The name recorded in [`psyche_core::ModelInfo::settings`].
    pub fn as_str(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::Quantized => "quantized",
        }
    }
}

/// What the chat template does for a conversation without a system message.
///
/// Many instruct templates inject a default system prompt then (Qwen2.5's names the model and
/// its maker; SmolLM2's does the same). `Template` keeps that behaviour, as the Emergent
/// Misalignment authors did for training and evaluation; `Omit` renders no system turn at all;
/// `Custom` supplies a system message of your own. A conversation that has a system message is
/// always rendered as it is.
///
/// ```
/// use psyche_local::DefaultSystemPrompt;
/// let p: DefaultSystemPrompt = serde_json::from_str(r#"{"custom": "Be brief."}"#).unwrap();
/// assert_eq!(p, DefaultSystemPrompt::Custom("Be brief.".into()));
/// let p: DefaultSystemPrompt = serde_json::from_str(r#""omit""#).unwrap();
/// assert_eq!(p, DefaultSystemPrompt::Omit);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultSystemPrompt {
    /// Whatever the model's chat template does (default).
    #[default]
    Template,
    /// No system turn.
    Omit,
    /// This system message.
    Custom(String),
}

/// Which compute device to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "ordinal")]
pub enum DeviceChoice {
    /// The CPU (default).
    #[default]
    Cpu,
    /// A CUDA GPU by ordinal; needs the `cuda` cargo feature.
    Cuda(usize),
}

/// Configuration of a [`LocalModel`](crate::LocalModel).
///
/// ```
/// use psyche_local::{LocalConfig, WeightFormat};
/// let cfg = LocalConfig::new("smollm2-135m-instruct").threads(2).weights(WeightFormat::F32);
/// assert_eq!(cfg.max_batch, 32);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalConfig {
    /// A known model name (see [`known_models`](crate::known_models)) or a path to a GGUF file.
    pub model: String,
    /// The id recorded with results; defaults to the model name (file stem for paths).
    pub id: Option<String>,
    /// How the weights are held.
    pub weights: WeightFormat,
    /// Compute threads; `None` uses all cores.
    pub threads: Option<usize>,
    /// The most sequences run through the model at once.
    pub max_batch: usize,
    /// The most (padded) tokens of one prompt batch; longer batches are split.
    pub max_batch_tokens: usize,
    /// How long the batcher waits for more requests after the first one arrives.
    #[serde(with = "millis")]
    pub batch_wait: Duration,
    /// The compute device.
    pub device: DeviceChoice,
    /// The system prompt of conversations that have none (see [`DefaultSystemPrompt`]).
    pub default_system_prompt: DefaultSystemPrompt,
    /// The most bytes of key/value state the prefix cache keeps (shared by the loaded model and
    /// the models derived from it); 0 disables it and every request recomputes its prompt.
    /// Default 256 MiB (about 5,800 tokens of SmolLM2-135M, 46 KiB per token).
    pub prefix_cache_bytes: u64,
    /// 0 (the default, [`DEFAULT_OPTION_PRUNE_BELOW`]): [`option_probabilities`]
    /// over multi-token options scores every answer form to its end, the forms' tree packed
    /// into as few passes as fit (exact). Above 0 it scores the forms level by level (one token
    /// of every form per pass) and stops extending the least probable prefixes while their
    /// summed probability stays within this fraction of the mass of the complete answers
    /// already found. Every answer under a prefix together has at most the prefix's
    /// probability, so the total mass falls by at most this fraction and each option
    /// probability moves by at most about it (the prefixes left out and their summed
    /// probability are logged at debug level). The level-by-level passes cost more than the
    /// packed ones, so a small fraction is slower than exact scoring: on the 101 numbers of the
    /// EM judge prompt 5e-4 took 4.26x and 4.63x one first-token pass where exact scoring took
    /// 4.03x and 4.17x (`benches/scoring_cache.rs`, idle 2-core machine); only a coarse budget
    /// that leaves whole options out saves time.
    ///
    /// [`option_probabilities`]: psyche_core::Model::option_probabilities
    pub option_prune_below: f64,
}

/// The default [`LocalConfig::option_prune_below`]: 0, every answer form scored to its end
/// (exact, and faster than a small budget).
pub const DEFAULT_OPTION_PRUNE_BELOW: f64 = 0.0;

/// The default [`LocalConfig::prefix_cache_bytes`]: 256 MiB.
pub const DEFAULT_PREFIX_CACHE_BYTES: u64 = 256 << 20;

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            model: DEFAULT_MODEL.to_owned(),
            id: None,
            weights: WeightFormat::F32,
            threads: None,
            max_batch: 32,
            max_batch_tokens: 32 * 512,
            batch_wait: Duration::from_millis(2),
            device: DeviceChoice::Cpu,
            default_system_prompt: DefaultSystemPrompt::Template,
            prefix_cache_bytes: DEFAULT_PREFIX_CACHE_BYTES,
            option_prune_below: DEFAULT_OPTION_PRUNE_BELOW,
        }
    }
}

impl LocalConfig {
    /// The default configuration for a model name or GGUF path.
    pub fn new(name_or_path: impl Into<String>) -> Self {
        Self {
            model: name_or_path.into(),
            ..Self::default()
        }
    }

    /// Sets the recorded id.
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the weight format.
    #[must_use]
    pub fn weights(mut self, weights: WeightFormat) -> Self {
        self.weights = weights;
        self
    }

    /// Sets the number of compute threads.
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Sets the largest batch.
    #[must_use]
    pub fn max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch;
        self
    }

    /// Sets the compute device.
    #[must_use]
    pub fn device(mut self, device: DeviceChoice) -> Self {
        self.device = device;
        self
    }

    /// Sets the prefix cache's cap in bytes (0 disables the cache).
    #[must_use]
    pub fn prefix_cache_bytes(mut self, bytes: u64) -> Self {
        self.prefix_cache_bytes = bytes;
        self
    }

    /// Sets the probability below which option scoring stops extending an answer form
    /// ([`option_prune_below`](Self::option_prune_below); 0: exact).
    #[must_use]
    pub fn option_prune_below(mut self, p: f64) -> Self {
        self.option_prune_below = p;
        self
    }

    /// Sets the system prompt of conversations that have none.
    #[must_use]
    pub fn default_system_prompt(mut self, prompt: DefaultSystemPrompt) -> Self {
        self.default_system_prompt = prompt;
        self
    }

    /// Checks the configuration's own invariants.
    ///
    /// # Errors
    ///
    /// [`LocalError::Config`](crate::LocalError::Config) naming the field: `model` empty,
    /// `threads` 0, `max_batch` 0, `max_batch_tokens` 0, `option_prune_below` outside [0, 1).
    pub fn validate(&self) -> Result<(), crate::LocalError> {
        use crate::LocalError;
        if self.model.trim().is_empty() {
            return Err(LocalError::config(
                "model",
                "must name a model or a GGUF path",
            ));
        }
        if self.threads == Some(0) {
            return Err(LocalError::config("threads", "must be at least 1"));
        }
        if self.max_batch == 0 {
            return Err(LocalError::config("max_batch", "must be at least 1"));
        }
        if self.max_batch_tokens == 0 {
            return Err(LocalError::config("max_batch_tokens", "must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.option_prune_below) {
            return Err(LocalError::config(
                "option_prune_below",
                format!("must be in [0, 1), got {}", self.option_prune_below),
            ));
        }
        Ok(())
    }
}
