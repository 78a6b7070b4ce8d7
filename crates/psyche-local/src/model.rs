//! [`LocalModel`]: the embedded model behind the [`Model`] trait.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, mpsc};

use async_trait::async_trait;
use candle_core::{Device, Tensor};
use futures::channel::oneshot;
use psyche_core::{
    Capabilities, Choice, Conversation, FineTuneSupport, GenerateRequest, GenerateResponse,
    HiddenStates, LogLikelihood, LogprobSupport, Model, ModelError, ModelInfo, OptionProbabilities,
    OptionQuery, ProbabilityMethod, SteerFrom, TokenDistribution, TopLogprob, Usage,
    option_probabilities_from_distribution,
};
use serde::{Deserialize, Serialize};

use crate::LocalError;
use crate::config::{DeviceChoice, LocalConfig, WeightFormat};
use crate::engine::{
    BatchLimits, Engine, GenJob, GenParams, Job, ScoreJob, ScoreOut, spawn_worker,
};
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
/// settings, all recorded by [`Model::info`].
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

    /// The first position steered for id-level calls: [`SteerFrom::Message`] needs a
    /// conversation.
    fn steer_start_ids(&self) -> Result<usize, LocalError> {
        match self.inner.steering.as_ref().map(|s| s.from) {
            None | Some(SteerFrom::Start) => Ok(0),
            Some(SteerFrom::Token(n)) => Ok(n),
            Some(SteerFrom::Message(_)) => Err(LocalError::config(
                "steering.from",
                "a message position needs a conversation; token-id calls take `Token(n)` or \
                 `Start`",
            )),
        }
    }

    /// The first position of the chat prompt of `messages` that is steered: message `i` starts
    /// where the rendering of the messages before it ends.
    fn steer_start(&self, messages: &Conversation) -> Result<usize, LocalError> {
        let Some(SteerFrom::Message(i)) = self.inner.steering.as_ref().map(|s| s.from) else {
            return self.steer_start_ids();
        };
        if i == 0 {
            return Ok(0);
        }
        if i > messages.len() {
            return Err(LocalError::config(
                "steering.from",
                format!(
                    "message {i} is past the conversation's {} messages",
                    messages.len()
                ),
            ));
        }
        let head = Conversation::from(messages.messages()[..i].to_vec());
        let head = self.tokenize(&self.render_chat(&head, false)?)?;
        let full = self.prompt_ids(messages)?;
        if !full.starts_with(&head) {
            return Err(LocalError::config(
                "steering.from",
                format!(
                    "the chat template does not render the first {i} messages as a prefix of \
                     the conversation, so message {i} has no token position"
                ),
            ));
        }
        Ok(head.len())
    }

    async fn score(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<ScoreOut, LocalError>>) -> ScoreJob,
    ) -> Result<ScoreOut, LocalError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Job::Score(job(tx)))
            .map_err(|_| LocalError::WorkerStopped(self.inner.id.clone()))?;
        rx.await
            .map_err(|_| LocalError::WorkerStopped(self.inner.id.clone()))?
    }

    /// The exact log-distribution over the whole vocabulary after `ids` (indexed by token id).
    ///
    /// # Errors
    ///
    /// [`LocalError`] when the input is empty or too long, or the computation fails.
    pub async fn next_token_logprobs_ids(&self, ids: Vec<u32>) -> Result<Vec<f32>, LocalError> {
        let from = self.steer_start_ids()?;
        self.next_token_logprobs_from(ids, from).await
    }

    async fn next_token_logprobs_from(
        &self,
        ids: Vec<u32>,
        steer_from: usize,
    ) -> Result<Vec<f32>, LocalError> {
        let out = self
            .score(|reply| ScoreJob {
                ids,
                cont_start: None,
                want_dist: true,
                want_hidden: false,
                steer_from,
                prune_below: 0.0,
                reply,
            })
            .await?;
        out.last_logprobs
            .ok_or_else(|| LocalError::Candle(candle_core::Error::Msg("no distribution".into())))
    }

    /// The exact next-token log-distribution after a chat prompt (indexed by token id).
    ///
    /// # Errors
    ///
    /// As [`next_token_logprobs_ids`](Self::next_token_logprobs_ids), plus template errors.
    pub async fn next_token_logprobs(
        &self,
        messages: &Conversation,
    ) -> Result<Vec<f32>, LocalError> {
        let ids = self.prompt_ids(messages)?;
        let from = self.steer_start(messages)?;
        self.next_token_logprobs_from(ids, from).await
    }

    /// Per-token logprobs of `continuation` after `prompt`, both token ids, in one pass, with
    /// whether each token is the argmax.
    ///
    /// # Errors
    ///
    /// [`LocalError`] when the continuation is empty or the input too long.
    pub async fn continuation_logprobs(
        &self,
        prompt: &[u32],
        continuation: &[u32],
    ) -> Result<Vec<(f32, bool)>, LocalError> {
        let from = self.steer_start_ids()?;
        self.continuation_logprobs_from(prompt, continuation, from)
            .await
    }

    async fn continuation_logprobs_from(
        &self,
        prompt: &[u32],
        continuation: &[u32],
        steer_from: usize,
    ) -> Result<Vec<(f32, bool)>, LocalError> {
        if prompt.is_empty() || continuation.is_empty() {
            return Err(LocalError::Tokenizer(
                "prompt and continuation must each hold at least one token".into(),
            ));
        }
        let mut ids = prompt.to_vec();
        ids.extend_from_slice(continuation);
        let start = prompt.len();
        Ok(self
            .score(|reply| ScoreJob {
                ids,
                cont_start: Some(start),
                want_dist: false,
                want_hidden: false,
                steer_from,
                prune_below: 0.0,
                reply,
            })
            .await?
            .cont)
    }

    /// Per-token logprobs of each continuation in `continuations` after `prompt`, scored in one
    /// batch (their common tokens once). A continuation whose prefix has a probability below
    /// `prune_below` keeps `-inf` for its remaining tokens.
    async fn continuations_logprobs_from(
        &self,
        prompt: &[u32],
        continuations: &[Vec<u32>],
        steer_from: usize,
        prune_below: f32,
    ) -> Result<Vec<Vec<(f32, bool)>>, LocalError> {
        if prompt.is_empty() || continuations.iter().any(Vec::is_empty) {
            return Err(LocalError::Tokenizer(
                "prompt and continuation must each hold at least one token".into(),
            ));
        }
        let mut jobs = Vec::with_capacity(continuations.len());
        let mut replies = Vec::with_capacity(continuations.len());
        for c in continuations {
            let (tx, rx) = oneshot::channel();
            let mut ids = prompt.to_vec();
            ids.extend_from_slice(c);
            jobs.push(ScoreJob {
                ids,
                cont_start: Some(prompt.len()),
                want_dist: false,
                want_hidden: false,
                steer_from,
                prune_below,
                reply: tx,
            });
            replies.push(rx);
        }
        self.inner
            .tx
            .send(Job::Scores(jobs))
            .map_err(|_| LocalError::WorkerStopped(self.inner.id.clone()))?;
        let mut out = Vec::with_capacity(replies.len());
        for rx in replies {
            let scored = rx
                .await
                .map_err(|_| LocalError::WorkerStopped(self.inner.id.clone()))??;
            out.push(scored.cont);
        }
        Ok(out)
    }

    /// [`LocalConfig::option_prune_below`] as the engine takes it.
    fn prune_below(&self) -> f32 {
        self.inner.config.option_prune_below as f32
    }

    /// Hidden states at the last position of `ids`: the embedding output and every block's
    /// output (`n_layer + 1` vectors).
    ///
    /// # Errors
    ///
    /// [`LocalError`] when the input is empty or too long.
    pub async fn hidden_states_ids(&self, ids: Vec<u32>) -> Result<Vec<Vec<f32>>, LocalError> {
        let from = self.steer_start_ids()?;
        self.hidden_states_from(ids, from).await
    }

    async fn hidden_states_from(
        &self,
        ids: Vec<u32>,
        steer_from: usize,
    ) -> Result<Vec<Vec<f32>>, LocalError> {
        let out = self
            .score(|reply| ScoreJob {
                ids,
                cont_start: None,
                want_dist: false,
                want_hidden: true,
                steer_from,
                prune_below: 0.0,
                reply,
            })
            .await?;
        out.hidden
            .ok_or_else(|| LocalError::Candle(candle_core::Error::Msg("no hidden states".into())))
    }

    async fn generate_ids(
        &self,
        ids: Vec<u32>,
        params: GenParams,
        steer_from: usize,
    ) -> Result<Vec<crate::engine::GenOut>, LocalError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Job::Generate(GenJob {
                ids,
                params,
                steer_from,
                reply: tx,
            }))
            .map_err(|_| LocalError::WorkerStopped(self.inner.id.clone()))?;
        rx.await
            .map_err(|_| LocalError::WorkerStopped(self.inner.id.clone()))?
    }

    fn settings(&self) -> serde_json::Value {
        let i = &self.inner;
        serde_json::json!({
            "weights": i.weights.format.as_str(),
            "kv_cache": "f32",
            "prefix_cache_bytes": i.config.prefix_cache_bytes,
            "option_prune_below": i.config.option_prune_below,
            "device": format!("{:?}", i.config.device),
            "threads": i.config.threads,
            "candle": "0.11.1",
            "cpu_features": crate::qmatvec::cpu_features(),
            "tokenizer_pre": i.tokenizer.pre,
            "tokenizer_fix": i.tokenizer.fix_applied,
            "chat_template": if i.tokenizer.template_from_gguf { "gguf" } else { "chatml-fallback" },
            "default_system_prompt": i.tokenizer.default_system,
            "architecture": i.weights.hp.architecture,
            "tensor_types": i.weights.tensor_types,
            "adapter": i.adapter.as_ref().map(|a| serde_json::json!({
                "path": a.path, "merged": a.merged, "manifest": a.summary,
            })),
            "steering": i.steering.as_ref().map(|s| serde_json::json!({
                "layer": s.layer, "strength": s.strength, "from": s.from,
                "norm": s.vector.iter().map(|x| (x * x) as f64).sum::<f64>().sqrt(),
            })),
        })
    }
}

#[async_trait]
impl Model for LocalModel {
    fn id(&self) -> &str {
        &self.inner.id
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            logprobs: Some(LogprobSupport {
                max_top_k: self.inner.weights.hp.vocab_size as u32,
            }),
            full_distribution: true,
            loglikelihood: true,
            hidden_states: true,
            seeded_sampling: true,
            fine_tuning: (self.inner.weights.format == WeightFormat::F32)
                .then_some(FineTuneSupport::Lora),
            steering: true,
        }
    }

    /// [`with_steering`](LocalModel::with_steering) behind the core seam: the view runs its own
    /// worker on the shared weights, so its calls batch among themselves.
    fn steered(&self, steering: &Steering) -> Result<Arc<dyn Model>, ModelError> {
        let hp = &self.inner.weights.hp;
        steering.check(hp.n_layer, hp.d_model)?;
        Ok(Arc::new(self.with_steering(steering.clone())?))
    }

    fn info(&self) -> ModelInfo {
        let file = self
            .inner
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let weights = match self.sha256() {
            Ok(h) => format!("{file} sha256:{h}"),
            Err(_) => file,
        };
        ModelInfo {
            id: self.inner.id.clone(),
            backend: "psyche-local".into(),
            weights: Some(weights),
            settings: self.settings(),
        }
    }

    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        request.validate()?;
        let ids = self.prompt_ids(&request.messages)?;
        let steer_from = self.steer_start(&request.messages)?;
        let prompt_tokens = ids.len() as u64;
        let seed = request.seed.unwrap_or_else(rand::random);
        let params = GenParams {
            n: request.n as usize,
            max_tokens: request.max_tokens as usize,
            temperature: request.temperature,
            top_p: request.top_p,
            seed,
            stop: request.stop.clone(),
            top_logprobs: request.top_logprobs,
        };
        let outs = self.generate_ids(ids, params, steer_from).await?;
        let completion_tokens = outs.iter().map(|o| o.ids.len() as u64).sum();
        Ok(GenerateResponse {
            model: self.inner.id.clone(),
            choices: outs
                .into_iter()
                .map(|o| Choice {
                    text: o.text,
                    finish_reason: o.finish,
                    logprobs: o.logprobs,
                })
                .collect(),
            usage: Usage {
                prompt_tokens,
                completion_tokens,
            },
        })
    }

    /// The exact distribution over the whole vocabulary (`complete: true`), most likely first;
    /// `top_k` is ignored because nothing is truncated.
    async fn next_token_distribution(
        &self,
        messages: &Conversation,
        top_k: u32,
    ) -> Result<TokenDistribution, ModelError> {
        let _ = top_k;
        let lp = self.next_token_logprobs(messages).await?;
        let texts = self.inner.tokenizer.token_texts();
        let mut order: Vec<usize> = (0..lp.len()).collect();
        order.sort_by(|&a, &b| lp[b].total_cmp(&lp[a]).then(a.cmp(&b)));
        Ok(TokenDistribution {
            tokens: order
                .into_iter()
                .map(|i| TopLogprob::new(texts.get(i).cloned().unwrap_or_default(), lp[i] as f64))
                .collect(),
            complete: true,
        })
    }

    async fn loglikelihood(
        &self,
        context: &Conversation,
        continuation: &str,
    ) -> Result<LogLikelihood, ModelError> {
        if continuation.is_empty() {
            return Err(ModelError::InvalidRequest(
                "field `continuation`: must not be empty".into(),
            ));
        }
        let prompt = self.prompt_ids(context)?;
        let from = self.steer_start(context)?;
        let cont = self.tokenize(continuation)?;
        let scored = self
            .continuation_logprobs_from(&prompt, &cont, from)
            .await?;
        let token_logprobs: Vec<f64> = scored.iter().map(|s| s.0 as f64).collect();
        Ok(LogLikelihood {
            logprob: token_logprobs.iter().sum(),
            is_greedy: scored.iter().all(|s| s.1),
            token_logprobs,
        })
    }

    async fn hidden_states(&self, messages: &Conversation) -> Result<HiddenStates, ModelError> {
        let ids = self.prompt_ids(messages)?;
        let from = self.steer_start(messages)?;
        Ok(HiddenStates {
            layers: self.hidden_states_from(ids, from).await?,
        })
    }

    /// The same semantics as every backend ([`OptionQuery`]), computed exactly. When every
    /// option is a single token, the mass of the first-token distribution over the whole
    /// vocabulary that designates each option ([`ProbabilityMethod::FirstToken`] with
    /// `complete: true`). Otherwise, for each option the sum over its
    /// [`answer_forms`](OptionQuery::answer_forms) (`o`, `(o)`, `o)`) of the probability of the
    /// form followed by the chat template's end-of-turn token
    /// ([`ProbabilityMethod::CompleteAnswer`]): complete answers are disjoint events, so an
    /// option that prefixes another (`"1"` and `"10"`) is not counted twice.
    async fn option_probabilities(
        &self,
        messages: &Conversation,
        query: &OptionQuery,
    ) -> Result<OptionProbabilities, ModelError> {
        query.check()?;
        let mut single = true;
        for o in &query.options {
            single &= self.tokenize(o)?.len() == 1;
        }
        if single {
            let dist = self.next_token_distribution(messages, 0).await?;
            return option_probabilities_from_distribution(&dist, query);
        }
        let from = self.steer_start(messages)?;
        let (owner, forms): (Vec<usize>, Vec<String>) = query.answer_forms().into_iter().unzip();
        let (prompt, answers) = self.inner.tokenizer.encode_answers(messages, &forms)?;
        let results = self
            .continuations_logprobs_from(&prompt, &answers, from, self.prune_below())
            .await?;
        let mut masses = vec![0.0; query.options.len()];
        for (i, scored) in owner.into_iter().zip(results) {
            masses[i] += scored.iter().map(|s| s.0 as f64).sum::<f64>().exp();
        }
        Ok(OptionProbabilities::from_masses(
            query.options.clone(),
            masses,
            ProbabilityMethod::CompleteAnswer,
        ))
    }
}
