//! [`LocalModel`]: the embedded model behind the [`Model`](psyche_core::Model) trait.

mod jobs;
mod trait_impl;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, mpsc};

use candle_core::{Device, Tensor};
use psyche_core::{Conversation, SteerFrom};
use serde::{Deserialize, Serialize};

use crate::LocalError;
use crate::config::{DeviceChoice, LocalConfig, WeightFormat};
use crate::engine::{BatchLimits, Engine, Job, spawn_worker};
use crate::llama::{Hparams, LoraSet, SteeringTensor, Weights, load_gguf};
use crate::prefix::{KvKey, PrefixCache, PrefixCacheStats};
use crate::resolve::{known_model, resolve_model, sha256_file};
use crate::tokenizer::ChatTokenizer;

/// The additive steering vector of psyche-core ([`psyche_core::Steering`]): `strength · vector`
/// after block `layer`, at every position or from a position ([`SteerFrom`]) onward.
pub use psyche_core::Steering;

/// Where a model's adapter came from, recorded in [`ModelInfo::settings`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AdapterTag {
    pub(crate) path: PathBuf,
    pub(crate) merged: bool,
    pub(crate) summary: serde_json::Value,
}

struct Inner {
    id: String,
    config: LocalConfig,
    path: PathBuf,
    sha256: OnceLock<String>,
    weights: Arc<Weights>,
    tokenizer: Arc<ChatTokenizer>,
    lora: Option<Arc<LoraSet>>,
    adapter: Option<AdapterTag>,
    steering: Option<Steering>,
    tx: mpsc::Sender<Job>,
    /// Shared with every model derived from the same load.
    cache: Arc<parking_lot::Mutex<PrefixCache>>,
    /// Identities of the weights and of an unmerged adapter, for the cache key.
    weights_id: u64,
    lora_id: Option<u64>,
}

/// A process-wide counter naming weights and adapters in prefix cache keys.
fn next_state_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A GGUF model of a supported architecture ([`SUPPORTED_ARCHITECTURES`]) running in-process.
///
/// [`SUPPORTED_ARCHITECTURES`]: crate::SUPPORTED_ARCHITECTURES
///
/// Cheap to clone (an `Arc` inside); all clones share one inference worker whose dynamic
/// batcher groups concurrent requests. Numbers depend on the backend, weight format and
/// settings, all recorded by [`Model::info`](psyche_core::Model::info).
///
/// ```no_run
/// use psyche_core::{Conversation, Model};
/// use psyche_local::{LocalConfig, LocalModel};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let model = LocalModel::load(&LocalConfig::default())?;
/// let dist = model
///     .next_token_distribution(&Conversation::user("Is the sky blue? Answer Yes or No."), 5)
///     .await?;
/// assert!(dist.complete);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LocalModel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("id", &self.inner.id)
            .field("path", &self.inner.path)
            .field("weights", &self.inner.weights.format)
            .field("adapter", &self.inner.adapter.as_ref().map(|a| &a.path))
            .finish_non_exhaustive()
    }
}

fn device_of(choice: DeviceChoice) -> Result<Device, LocalError> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda(i) => Device::new_cuda(i).map_err(|e| {
            LocalError::config(
                "device",
                format!("CUDA device {i}: {e} (build with the `cuda` feature)"),
            )
        }),
    }
}

impl LocalModel {
    /// Resolves (fetching on first use), reads and starts the model. Blocking.
    ///
    /// # Errors
    ///
    /// [`LocalError`] from resolution ([`resolve_model`]), a bad or unsupported GGUF file, or an
    /// invalid configuration.
    pub fn load(config: &LocalConfig) -> Result<LocalModel, LocalError> {
        config.validate()?;
        let path = resolve_model(&config.model)?;
        let device = device_of(config.device)?;
        let started = std::time::Instant::now();
        let (weights, mut tokenizer) = load_gguf(&path, config.weights, &device)?;
        tokenizer.default_system = config.default_system_prompt.clone();
        tracing::info!(
            path = %path.display(),
            weights = config.weights.as_str(),
            seconds = started.elapsed().as_secs_f64(),
            "local model loaded"
        );
        let id = config.id.clone().unwrap_or_else(|| {
            if known_model(&config.model).is_some() {
                config.model.clone()
            } else {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| config.model.clone())
            }
        });
        let sha256 = OnceLock::new();
        if let Some(k) = path
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(known_model)
            .filter(|k| {
                path.starts_with(crate::resolve::cache_dir().unwrap_or_default())
                    && !k.sha256.is_empty()
            })
        {
            let _ = sha256.set(k.sha256.to_owned());
        }
        Self::start(Inner {
            id,
            config: config.clone(),
            path,
            sha256,
            weights: Arc::new(weights),
            tokenizer: Arc::new(tokenizer),
            lora: None,
            adapter: None,
            steering: None,
            tx: mpsc::channel().0,
            cache: Arc::new(parking_lot::Mutex::new(PrefixCache::new(
                config.prefix_cache_bytes,
            ))),
            weights_id: next_state_id(),
            lora_id: None,
        })
    }

    fn start(mut inner: Inner) -> Result<LocalModel, LocalError> {
        let steering = match &inner.steering {
            Some(s) => {
                s.check(inner.weights.hp.n_layer, inner.weights.hp.d_model)
                    .map_err(|e| LocalError::config("steering", e.to_string()))?;
                let v: Vec<f32> = s.vector.iter().map(|x| x * s.strength).collect();
                Some(SteeringTensor {
                    layer: s.layer,
                    vector: Tensor::from_vec(v, inner.weights.hp.d_model, &inner.weights.device)?,
                })
            }
            None => None,
        };
        let engine = Engine {
            weights: inner.weights.clone(),
            tokenizer: inner.tokenizer.clone(),
            lora: inner.lora.clone(),
            steering,
            limits: BatchLimits {
                max_batch: inner.config.max_batch,
                max_batch_tokens: inner.config.max_batch_tokens,
                wait: inner.config.batch_wait,
            },
            cache: inner.cache.clone(),
            key: KvKey {
                weights: inner.weights_id,
                lora: inner.lora_id,
                steering: inner.steering.clone(),
            },
        };
        inner.tx = spawn_worker(engine, inner.config.threads, &inner.id)?;
        Ok(LocalModel {
            inner: Arc::new(inner),
        })
    }

    fn derive(
        &self,
        id: String,
        weights: (Arc<Weights>, u64),
        lora: Option<(Arc<LoraSet>, u64)>,
        adapter: Option<AdapterTag>,
        steering: Option<Steering>,
    ) -> Result<LocalModel, LocalError> {
        let (weights, weights_id) = weights;
        let (lora, lora_id) = match lora {
            Some((l, id)) => (Some(l), Some(id)),
            None => (None, None),
        };
        let i = &self.inner;
        let sha256 = OnceLock::new();
        if let Some(s) = i.sha256.get() {
            let _ = sha256.set(s.clone());
        }
        Self::start(Inner {
            id,
            config: i.config.clone(),
            path: i.path.clone(),
            sha256,
            weights,
            tokenizer: i.tokenizer.clone(),
            lora,
            adapter,
            steering,
            tx: mpsc::channel().0,
            cache: i.cache.clone(),
            weights_id,
            lora_id,
        })
    }

    /// The same model with a steering vector (replacing any previous one), added from the
    /// position its [`SteerFrom`] names onward in every call. The id gains
    /// `+steer{layer}x{strength}` (and `@{from}` when it does not start at the first token).
    ///
    /// # Errors
    ///
    /// [`LocalError::Config`] when the layer or the vector's length does not fit the model.
    pub fn with_steering(&self, steering: Steering) -> Result<LocalModel, LocalError> {
        let i = &self.inner;
        let at = match steering.from {
            SteerFrom::Start => String::new(),
            SteerFrom::Token(n) => format!("@token{n}"),
            SteerFrom::Message(m) => format!("@message{m}"),
        };
        let id = format!("{}+steer{}x{}{at}", i.id, steering.layer, steering.strength);
        self.derive(
            id,
            (i.weights.clone(), i.weights_id),
            i.lora.clone().zip(i.lora_id),
            i.adapter.clone(),
            Some(steering),
        )
    }

    pub(crate) fn with_lora(
        &self,
        id: String,
        lora: LoraSet,
        tag: AdapterTag,
        merge: bool,
    ) -> Result<LocalModel, LocalError> {
        let i = &self.inner;
        if merge {
            let merged = i.weights.merged(&lora)?;
            let tag = AdapterTag {
                merged: true,
                ..tag
            };
            self.derive(
                id,
                (Arc::new(merged), next_state_id()),
                None,
                Some(tag),
                i.steering.clone(),
            )
        } else {
            self.derive(
                id,
                (i.weights.clone(), i.weights_id),
                Some((Arc::new(lora), next_state_id())),
                Some(tag),
                i.steering.clone(),
            )
        }
    }

    /// Hit, miss and eviction counts of the prefix cache, which this model shares with the
    /// model it was loaded as and every model derived from that (adapters, steering).
    pub fn prefix_cache_stats(&self) -> PrefixCacheStats {
        self.inner.cache.lock().stats()
    }

    pub(crate) fn weights(&self) -> &Arc<Weights> {
        &self.inner.weights
    }

    pub(crate) fn chat_tokenizer(&self) -> &ChatTokenizer {
        &self.inner.tokenizer
    }

    pub(crate) fn config(&self) -> &LocalConfig {
        &self.inner.config
    }

    /// The model's shape and numerics.
    pub fn hparams(&self) -> &Hparams {
        &self.inner.weights.hp
    }

    /// The GGUF file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// SHA-256 of the GGUF file (computed once, on first use).
    ///
    /// # Errors
    ///
    /// [`LocalError::Io`] when the file cannot be read.
    pub fn sha256(&self) -> Result<String, LocalError> {
        if let Some(s) = self.inner.sha256.get() {
            return Ok(s.clone());
        }
        let s = sha256_file(&self.inner.path)?;
        let _ = self.inner.sha256.set(s.clone());
        Ok(s)
    }

    /// The weight format in use.
    pub fn weight_format(&self) -> WeightFormat {
        self.inner.weights.format
    }

    /// Renders a conversation with the model's chat template.
    ///
    /// # Errors
    ///
    /// [`LocalError::Template`] when the template fails.
    pub fn render_chat(
        &self,
        messages: &Conversation,
        add_generation_prompt: bool,
    ) -> Result<String, LocalError> {
        self.inner.tokenizer.render(messages, add_generation_prompt)
    }

    /// Token ids of raw text; special tokens written in the text (`<|im_start|>`) are recognised.
    ///
    /// # Errors
    ///
    /// [`LocalError::Tokenizer`].
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, LocalError> {
        self.inner.tokenizer.encode(text)
    }

    /// Text of token ids, special tokens included.
    ///
    /// # Errors
    ///
    /// [`LocalError::Tokenizer`].
    pub fn detokenize(&self, ids: &[u32]) -> Result<String, LocalError> {
        self.inner.tokenizer.decode(ids, false)
    }

    /// The chat prompt's token ids, ending where the assistant's answer begins.
    ///
    /// # Errors
    ///
    /// [`LocalError::Template`] / [`LocalError::Tokenizer`].
    pub fn prompt_ids(&self, messages: &Conversation) -> Result<Vec<u32>, LocalError> {
        self.inner.tokenizer.encode_prompt(messages)
    }

    /// The decoded text of a token id.
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.inner
            .tokenizer
            .token_texts()
            .get(id as usize)
            .map(String::as_str)
    }
}
