//! The OpenAI fine-tuning jobs API as a [`FineTuner`] (works with any provider that serves the
//! same `/v1/files` + `/v1/fine_tuning/jobs` endpoints).
//!
//! # Flow
//!
//! 1. Validate the data locally ([`crate::dataset`]); errors name the example and field and
//!    nothing is sent.
//! 2. Estimate the cost and refuse unless the [`CostGuard`] is confirmed.
//! 3. Upload the data (`POST /files`, `purpose=fine-tune`; validation data too, with
//!    [`OpenAiFineTuner::fine_tune_with_validation`]), create the job (`POST
//!    /fine_tuning/jobs` with base model, seed, suffix, optional `validation_file`, and the
//!    hyperparameters in the `method` form, `{"type": "supervised", "supervised":
//!    {"hyperparameters": {"n_epochs", "batch_size", "learning_rate_multiplier"}}}`, each
//!    `"auto"` when the [`FineTuneConfig`] leaves it `None` — the default — so OpenAI picks it
//!    from the data), and poll it (`GET /fine_tuning/jobs/{id}`) with a growing interval,
//!    forwarding new job events (`GET .../events`, every page back to the last event seen) to
//!    `tracing` and to an optional progress callback. [`OpenAiFineTuner::checkpoints`] lists a
//!    job's checkpoints (all pages).
//! 4. Return the fine-tuned model name as a [`TrainedModel`]; [`FineTuner::load`] turns it into
//!    a psyche [`Model`] through `psyche_models::OpenAiCompatible`.
//!
//! # Never paying twice
//!
//! Each (endpoint, data hash, config) has a small state file in
//! [`OpenAiFineTunerConfig::state_dir`] holding the uploaded file id, the job id and the last
//! event seen. It is written *before* each wait, so a process killed (or a future dropped) in
//! the middle of polling resumes waiting on the same job the next time; an uploaded file is
//! reused. Jobs are also created with `metadata.psyche_key`, and before creating one the driver
//! lists jobs carrying that key, so even a crash between "job created" and "state written"
//! adopts the existing job instead of launching a duplicate. A failed or cancelled job is
//! forgotten (kept in the state's history), so the next call may launch a new one.
//!
//! # HTTP
//!
//! Requests go through psyche-models' [`HttpClient`] (the same client, error mapping,
//! `Retry-After` / `retry-after-ms` parsing and key redaction as the model backends) and are
//! retried by its [`RetryPolicy`] as [`OpenAiFineTunerConfig::retry`] says: rate limits, 5xx,
//! timeouts and resets are retried after at least the server's requested wait; 400/401/403/404
//! fail at once with the server's message. A retried job creation first looks the job up by its
//! `metadata.psyche_key`, so a creation whose answer was lost is not repeated.
//!
//! # Secrets
//!
//! The API key is read once from the environment variable named in the config and is never
//! logged, stored in the state file or put in an error (servers that quote the key back have it
//! redacted).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use psyche_core::{
    Conversation, FineTuneConfig, FineTuneError, FineTuner, Model, ModelError, TrainedModel,
    conversations_hash,
};
use psyche_models::{
    ApiKey, AuthStyle, HttpClient, OpenAiCompatible, OpenAiConfig, RetryConfig, RetryPolicy,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cost::{CostGuard, TrainingPriceTable, estimate};
use crate::dataset::{CharsPerToken, TokenEstimator, ValidationOptions, validate_conversations};
use crate::error::TrainingError;
use crate::fsutil;

/// The engine name recorded in manifests.
pub const ENGINE: &str = "openai";

/// Pages (of 100) read from a list endpoint (events, checkpoints) in one go.
const MAX_PAGES: usize = 1000;

/// How often a job is polled: `initial`, then × `factor` after each poll, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PollSchedule {
    /// First interval.
    pub initial: Duration,
    /// Longest interval.
    pub max: Duration,
    /// Growth per poll (≥ 1).
    pub factor: f64,
}

impl Default for PollSchedule {
    /// 10 s, growing ×1.5 up to 2 minutes (jobs take minutes to hours).
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(120),
            factor: 1.5,
        }
    }
}

impl PollSchedule {
    /// A fixed tiny interval, for tests against a local server.
    pub fn fixed(interval: Duration) -> Self {
        Self {
            initial: interval,
            max: interval,
            factor: 1.0,
        }
    }

    fn next(&self, current: Duration) -> Duration {
        current.mul_f64(self.factor.max(1.0)).min(self.max)
    }
}

/// One event of a fine-tuning job, as the provider reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// The job.
    #[serde(default)]
    pub job_id: String,
    /// The event's id.
    pub id: String,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: u64,
    /// `info`, `warn` or `error`.
    #[serde(default)]
    pub level: String,
    /// Human-readable text.
    #[serde(default)]
    pub message: String,
    /// Structured payload (step metrics), when any.
    #[serde(default)]
    pub data: Value,
}

/// Receives job events as they arrive (e.g. to drive a progress bar).
pub type ProgressFn = Arc<dyn Fn(&JobEvent) + Send + Sync>;

/// Configuration of [`OpenAiFineTuner`].
#[derive(Clone)]
pub struct OpenAiFineTunerConfig {
    /// Base URL including `/v1` (`https://api.openai.com/v1`).
    pub base_url: String,
    /// Name of the environment variable holding the API key (`None`: no authentication
    /// unless `api_key` is set).
    pub api_key_env: Option<String>,
    /// The key itself, when not read from the environment (never printed).
    pub api_key: Option<ApiKey>,
    /// Where job state files live (one per endpoint × data × config).
    pub state_dir: PathBuf,
    /// Polling intervals.
    pub poll: PollSchedule,
    /// Give up waiting (the job keeps running; call again to resume) after this long.
    pub max_wait: Option<Duration>,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Timeout of establishing a connection.
    pub connect_timeout: Duration,
    /// How requests are retried on transient failures (psyche-models' retry loop: backoff with
    /// seeded jitter, at least the server's `Retry-After`).
    pub retry: RetryConfig,
    /// Local validation before anything is sent.
    pub validation: ValidationOptions,
    /// Cost estimate and confirmation before a job is created.
    pub cost: CostGuard,
    /// Called with every new job event.
    pub progress: Option<ProgressFn>,
    /// Template of the config used by [`FineTuner::load`] (its base URL and model are replaced).
    pub model_config: Option<OpenAiConfig>,
}

impl std::fmt::Debug for OpenAiFineTunerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiFineTunerConfig")
            .field("base_url", &self.base_url)
            .field("api_key_env", &self.api_key_env)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("state_dir", &self.state_dir)
            .field("poll", &self.poll)
            .field("max_wait", &self.max_wait)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .field("validation", &self.validation)
            .field("cost", &self.cost)
            .field("progress", &self.progress.as_ref().map(|_| "<fn>"))
            .field("model_config", &self.model_config)
            .finish()
    }
}

impl OpenAiFineTunerConfig {
    /// A config for `base_url` keeping state in `state_dir`: no key, default polling, 2-minute
    /// requests retried up to 5 times ([`RetryConfig::default`] otherwise), OpenAI's price
    /// table, **unconfirmed** cost guard.
    pub fn new(base_url: impl Into<String>, state_dir: impl Into<PathBuf>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key_env: None,
            api_key: None,
            state_dir: state_dir.into(),
            poll: PollSchedule::default(),
            max_wait: None,
            request_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(30),
            retry: RetryConfig {
                max_retries: 5,
                ..RetryConfig::default()
            },
            validation: ValidationOptions::default(),
            cost: CostGuard::new(TrainingPriceTable::openai_defaults()),
            progress: None,
            model_config: None,
        }
    }

    /// OpenAI itself, with the key from `OPENAI_API_KEY`.
    pub fn openai(state_dir: impl Into<PathBuf>) -> Self {
        Self::new(OpenAiConfig::OPENAI_BASE_URL, state_dir).api_key_env("OPENAI_API_KEY")
    }

    /// Reads the API key from this environment variable.
    #[must_use]
    pub fn api_key_env(mut self, name: impl Into<String>) -> Self {
        self.api_key_env = Some(name.into());
        self
    }

    /// Uses this key (instead of an environment variable).
    #[must_use]
    pub fn api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }

    /// Sets the polling schedule.
    #[must_use]
    pub fn poll(mut self, poll: PollSchedule) -> Self {
        self.poll = poll;
        self
    }

    /// Sets the cost guard (prices, confirmation, cap).
    #[must_use]
    pub fn cost(mut self, guard: CostGuard) -> Self {
        self.cost = guard;
        self
    }

    /// Sets local validation options.
    #[must_use]
    pub fn validation(mut self, options: ValidationOptions) -> Self {
        self.validation = options;
        self
    }

    /// Sets the progress callback.
    #[must_use]
    pub fn progress(mut self, f: ProgressFn) -> Self {
        self.progress = Some(f);
        self
    }

    /// Sets how requests are retried.
    #[must_use]
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Gives up waiting after `d` (the job keeps running).
    #[must_use]
    pub fn max_wait(mut self, d: Duration) -> Self {
        self.max_wait = Some(d);
        self
    }
}

/// What the state file of one (endpoint, data, config) holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    /// The state key (hash of endpoint, data hash and config).
    pub key: String,
    /// The endpoint.
    pub base_url: String,
    /// The data hash.
    pub data_hash: String,
    /// The config.
    pub config: Option<FineTuneConfig>,
    /// The uploaded training file.
    pub file_id: Option<String>,
    /// The live (or succeeded) job.
    pub job_id: Option<String>,
    /// Last status seen.
    pub status: Option<String>,
    /// The resulting model, once succeeded.
    pub fine_tuned_model: Option<String>,
    /// Newest event already forwarded.
    pub last_event_id: Option<String>,
    /// Earlier jobs that failed or were cancelled: `(job id, reason)`.
    #[serde(default)]
    pub failed_jobs: Vec<(String, String)>,
    /// The uploaded validation file, when validation data was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_file_id: Option<String>,
}

/// One checkpoint of a fine-tuning job (`GET /fine_tuning/jobs/{id}/checkpoints`): a model
/// usable like the final one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The checkpoint's id.
    pub id: String,
    /// The model name of this checkpoint (`ft:...:ckpt-step-N`).
    pub fine_tuned_model_checkpoint: String,
    /// The training step it was taken at.
    #[serde(default)]
    pub step_number: u64,
    /// Metrics at that step (`train_loss`, `valid_loss`, ...).
    #[serde(default)]
    pub metrics: Value,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: u64,
}

/// The hyperparameters as sent: each `"auto"` or its value.
fn hyperparameters(config: &FineTuneConfig) -> Value {
    let auto_or = |v: Option<Value>| v.unwrap_or_else(|| json!("auto"));
    json!({
        "n_epochs": auto_or(config.epochs.map(|e| json!(e))),
        "batch_size": auto_or(config.batch_size.map(|b| json!(b))),
        "learning_rate_multiplier": auto_or(config.learning_rate_multiplier.map(|m| json!(m))),
    })
}

/// The OpenAI fine-tuning driver. See the [module docs](self).
pub struct OpenAiFineTuner {
    config: OpenAiFineTunerConfig,
    key: Option<ApiKey>,
    http: HttpClient,
    retry: RetryPolicy,
    estimator: Arc<dyn TokenEstimator>,
}

impl std::fmt::Debug for OpenAiFineTuner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiFineTuner")
            .field("config", &self.config)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl OpenAiFineTuner {
    /// Builds the driver, reading the API key from the configured environment variable.
    ///
    /// # Errors
    ///
    /// [`TrainingError::Config`] when the key variable is named but unset, the base URL is not
    /// `http(s)://`, the retry settings are invalid (field `retry.*`), or the HTTP client cannot
    /// be built.
    pub fn new(config: OpenAiFineTunerConfig) -> Result<Self, TrainingError> {
        if !(config.base_url.starts_with("http://") || config.base_url.starts_with("https://")) {
            return Err(TrainingError::config(
                "base_url",
                format!("`{}` must start with http:// or https://", config.base_url),
            ));
        }
        let key = match (&config.api_key, &config.api_key_env) {
            (Some(k), _) => Some(k.clone()),
            (None, Some(var)) => Some(ApiKey::from_env(var).ok_or_else(|| {
                TrainingError::config(
                    "api_key_env",
                    format!("environment variable `{var}` is not set"),
                )
            })?),
            (None, None) => None,
        };
        let http = HttpClient::new(
            key.clone(),
            AuthStyle::Bearer,
            &[],
            config.request_timeout,
            config.connect_timeout,
        )
        .map_err(backend_config)?;
        let retry = RetryPolicy::new(config.retry.clone()).map_err(backend_config)?;
        Ok(Self {
            config,
            key,
            http,
            retry,
            estimator: Arc::new(CharsPerToken::default()),
        })
    }

    /// Uses a real tokenizer for validation limits and cost estimates.
    #[must_use]
    pub fn with_estimator(mut self, estimator: Arc<dyn TokenEstimator>) -> Self {
        self.estimator = estimator;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &OpenAiFineTunerConfig {
        &self.config
    }

    /// The state key of a (data, config) pair on this endpoint.
    pub fn state_key(&self, data_hash: &str, config: &FineTuneConfig) -> String {
        let cfg = serde_json::to_string(config).unwrap_or_default();
        fsutil::sha256_hex(
            format!(
                "{}\n{}\n{}",
                self.config.base_url.trim_end_matches('/'),
                data_hash,
                cfg
            )
            .as_bytes(),
        )
    }

    /// The state file of a (data, config) pair.
    pub fn state_path(&self, data_hash: &str, config: &FineTuneConfig) -> PathBuf {
        self.config.state_dir.join(format!(
            "openai-{}.json",
            &self.state_key(data_hash, config)[..32]
        ))
    }

    /// Reads the state of a (data, config) pair, if any.
    ///
    /// # Errors
    ///
    /// [`TrainingError::Manifest`] when the state file is malformed.
    pub fn state(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<Option<JobState>, TrainingError> {
        fsutil::read_json(&self.state_path(&conversations_hash(data), config))
    }

    /// Asks the provider to cancel a job.
    ///
    /// # Errors
    ///
    /// The HTTP error.
    pub async fn cancel(&self, job_id: &str) -> Result<(), TrainingError> {
        let path = format!("/fine_tuning/jobs/{job_id}/cancel");
        self.post(&path, &json!({})).await?;
        tracing::info!(job = job_id, "cancel requested");
        Ok(())
    }

    /// Every checkpoint of a job (`GET /fine_tuning/jobs/{id}/checkpoints`, all pages),
    /// newest first as the API lists them.
    ///
    /// # Errors
    ///
    /// The HTTP error, or [`ModelError::InvalidResponse`] for a malformed checkpoint.
    pub async fn checkpoints(&self, job_id: &str) -> Result<Vec<Checkpoint>, TrainingError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let path = match &after {
                Some(a) => format!("/fine_tuning/jobs/{job_id}/checkpoints?limit=100&after={a}"),
                None => format!("/fine_tuning/jobs/{job_id}/checkpoints?limit=100"),
            };
            let page = self.get(&path).await?;
            let data = page
                .get("data")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (i, c) in data.iter().enumerate() {
                let c: Checkpoint = serde_json::from_value(c.clone()).map_err(|e| {
                    ModelError::InvalidResponse(format!(
                        "/fine_tuning/jobs/{{id}}/checkpoints: data[{i}]: {e}"
                    ))
                })?;
                out.push(c);
            }
            match (page.get("has_more").and_then(Value::as_bool), out.last()) {
                (Some(true), Some(last)) if !data.is_empty() => after = Some(last.id.clone()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Like [`FineTuner::fine_tune`], with `validation` data uploaded as the job's
    /// `validation_file` (validated locally first, like the training data; the provider reports
    /// validation loss in the job's events and checkpoints).
    ///
    /// # Errors
    ///
    /// As [`FineTuner::fine_tune`]; invalid validation data names the example and field.
    pub async fn fine_tune_with_validation(
        &self,
        data: &[Conversation],
        validation: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<TrainedModel, FineTuneError> {
        self.run(data, Some(validation), config).await
    }

    fn check_config(config: &FineTuneConfig) -> Result<(), TrainingError> {
        if config.base_model.trim().is_empty() {
            return Err(TrainingError::config("base_model", "must not be empty"));
        }
        if let Some(e) = config.epochs
            && !(1..=50).contains(&e)
        {
            return Err(TrainingError::config(
                "epochs",
                format!("{e} is outside 1..=50 (or leave it `None` for \"auto\")"),
            ));
        }
        if let Some(b) = config.batch_size
            && !(1..=256).contains(&b)
        {
            return Err(TrainingError::config(
                "batch_size",
                format!("{b} is outside 1..=256 (or leave it `None` for \"auto\")"),
            ));
        }
        if let Some(m) = config.learning_rate_multiplier
            && !(m.is_finite() && m > 0.0)
        {
            return Err(TrainingError::config(
                "learning_rate_multiplier",
                format!("{m} must be a positive number"),
            ));
        }
        if config.learning_rate.is_some() {
            return Err(TrainingError::config(
                "learning_rate",
                "the OpenAI API takes `learning_rate_multiplier`, not an absolute learning rate",
            ));
        }
        if let Some(s) = &config.suffix
            && (s.len() > 64 || s.is_empty())
        {
            return Err(TrainingError::config(
                "suffix",
                "must be 1 to 64 characters",
            ));
        }
        if config.seed > i32::MAX as u64 {
            return Err(TrainingError::config(
                "seed",
                format!("{} exceeds the API's maximum {}", config.seed, i32::MAX),
            ));
        }
        if let Some(k) = config.extra.keys().next() {
            return Err(TrainingError::config(
                format!("extra.{k}"),
                "the OpenAI driver takes no engine-specific settings",
            ));
        }
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    fn redact(&self, text: &str) -> String {
        self.http.redact(text)
    }

    /// A GET of a JSON answer, retried on transient failures.
    async fn get(&self, path: &str) -> Result<Value, ModelError> {
        let url = self.url(path);
        let timeout = self.config.request_timeout;
        self.retry
            .run(ENGINE, path, || self.http.get_json(&url, path, timeout))
            .await
    }

    /// A POST of JSON that is safe to repeat, retried on transient failures.
    async fn post(&self, path: &str, body: &Value) -> Result<Value, ModelError> {
        let url = self.url(path);
        let timeout = self.config.request_timeout;
        self.retry
            .run(ENGINE, path, || {
                self.http.post_json(&url, path, body, timeout)
            })
            .await
    }

    /// Uploads the training file (retried: a repeated upload only leaves an unused file).
    async fn upload(&self, data: &[Conversation], data_hash: &str) -> Result<String, ModelError> {
        let body = crate::dataset::to_chat_jsonl(data).into_bytes();
        let filename = format!("psyche-{}.jsonl", &data_hash[..16.min(data_hash.len())]);
        let url = self.url("/files");
        let timeout = self.config.request_timeout;
        self.retry
            .run(ENGINE, "/files", || {
                self.http.upload_jsonl(
                    &url,
                    "/files",
                    "fine-tune",
                    &filename,
                    body.clone(),
                    timeout,
                )
            })
            .await
    }

    /// A live job created earlier for this key (found through its metadata).
    async fn find_existing(&self, key: &str) -> Result<Option<String>, ModelError> {
        let path = format!("/fine_tuning/jobs?limit=100&metadata[psyche_key]={key}");
        let list = self.get(&path).await?;
        let jobs = list
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(jobs.iter().find_map(|j| {
            let same = j.pointer("/metadata/psyche_key").and_then(Value::as_str) == Some(key);
            let status = j.get("status").and_then(Value::as_str).unwrap_or("");
            let alive = !matches!(status, "failed" | "cancelled");
            (same && alive)
                .then(|| j.get("id").and_then(Value::as_str).map(str::to_owned))
                .flatten()
        }))
    }

    async fn create_job(
        &self,
        file_id: &str,
        validation_file_id: Option<&str>,
        config: &FineTuneConfig,
        key: &str,
    ) -> Result<String, ModelError> {
        let mut body = json!({
            "model": config.base_model,
            "training_file": file_id,
            "seed": config.seed,
            "method": {
                "type": "supervised",
                "supervised": {"hyperparameters": hyperparameters(config)},
            },
            "metadata": {"psyche_key": key},
        });
        if let Some(v) = validation_file_id {
            body["validation_file"] = json!(v);
        }
        if let Some(s) = &config.suffix {
            body["suffix"] = json!(s);
        }
        let path = "/fine_tuning/jobs";
        let url = self.url(path);
        let timeout = self.config.request_timeout;
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let body = &body;
        self.retry
            .run(ENGINE, path, || {
                let retried = attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > 0;
                let url = url.clone();
                async move {
                    // An earlier attempt may have created the job before its answer was lost.
                    if retried && let Some(id) = self.find_existing(key).await? {
                        return Ok(id);
                    }
                    let job = self.http.post_json(&url, path, body, timeout).await?;
                    job.get("id")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            ModelError::InvalidResponse(format!("{path}: no `id` in the answer"))
                        })
                }
            })
            .await
    }

    /// Forwards events newer than `state.last_event_id`, oldest first, reading as many pages
    /// (`after`, `has_more`) as it takes to reach the last one seen.
    async fn forward_events(&self, job_id: &str, state: &mut JobState) -> Result<(), ModelError> {
        // The API lists newest first.
        let mut fresh = Vec::new();
        let mut after: Option<String> = None;
        'pages: for _ in 0..MAX_PAGES {
            let path = match &after {
                Some(a) => format!("/fine_tuning/jobs/{job_id}/events?limit=100&after={a}"),
                None => format!("/fine_tuning/jobs/{job_id}/events?limit=100"),
            };
            let page = self.get(&path).await?;
            let data = page
                .get("data")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let last = data
                .last()
                .and_then(|e| e.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            for e in data {
                let Ok(mut ev) = serde_json::from_value::<JobEvent>(e) else {
                    continue;
                };
                if Some(&ev.id) == state.last_event_id.as_ref() {
                    break 'pages;
                }
                ev.job_id = job_id.to_owned();
                fresh.push(ev);
            }
            match (page.get("has_more").and_then(Value::as_bool), last) {
                (Some(true), Some(l)) => after = Some(l),
                _ => break,
            }
        }
        for ev in fresh.iter().rev() {
            match ev.level.as_str() {
                "error" => tracing::error!(job = job_id, "{}", ev.message),
                "warn" => tracing::warn!(job = job_id, "{}", ev.message),
                _ => tracing::info!(job = job_id, "{}", ev.message),
            }
            if let Some(p) = &self.config.progress {
                p(ev);
            }
        }
        if let Some(newest) = fresh.first() {
            state.last_event_id = Some(newest.id.clone());
        }
        Ok(())
    }

    /// Polls until the job ends. Returns the fine-tuned model and the final job object.
    async fn wait(
        &self,
        job_id: &str,
        state: &mut JobState,
        state_path: &Path,
    ) -> Result<(String, Value), FineTuneError> {
        let started = Instant::now();
        let mut interval = self.config.poll.initial;
        loop {
            let job = self.get(&format!("/fine_tuning/jobs/{job_id}")).await?;
            self.forward_events(job_id, state).await?;
            let status = job
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned();
            if state.status.as_deref() != Some(status.as_str()) {
                tracing::info!(job = job_id, status = %status, "job status");
            }
            state.status = Some(status.clone());
            match status.as_str() {
                "succeeded" => {
                    let model = job
                        .get("fine_tuned_model")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            ModelError::InvalidResponse(format!(
                                "job `{job_id}` succeeded without a `fine_tuned_model`"
                            ))
                        })?;
                    state.fine_tuned_model = Some(model.clone());
                    fsutil::write_json(state_path, state)?;
                    return Ok((model, job));
                }
                "failed" | "cancelled" => {
                    let reason = if status == "cancelled" {
                        "the job was cancelled".to_owned()
                    } else {
                        describe_job_error(&job)
                    };
                    state.failed_jobs.push((job_id.to_owned(), reason.clone()));
                    state.job_id = None;
                    state.status = None;
                    state.last_event_id = None;
                    fsutil::write_json(state_path, state)?;
                    return Err(FineTuneError::JobFailed {
                        job: job_id.to_owned(),
                        message: self.redact(&reason),
                    });
                }
                _ => {}
            }
            fsutil::write_json(state_path, state)?;
            if let Some(max) = self.config.max_wait
                && started.elapsed() + interval > max
            {
                return Err(FineTuneError::Engine(format!(
                    "job `{job_id}` is still `{status}` after {:?}; it keeps running — call again \
                     to resume waiting (state in {})",
                    started.elapsed(),
                    state_path.display()
                )));
            }
            tokio::time::sleep(interval).await;
            interval = self.config.poll.next(interval);
        }
    }

    async fn run(
        &self,
        data: &[Conversation],
        validation: Option<&[Conversation]>,
        config: &FineTuneConfig,
    ) -> Result<TrainedModel, FineTuneError> {
        Self::check_config(config)?;
        let report = validate_conversations(
            data,
            "training data",
            &self.config.validation,
            self.estimator.as_ref(),
        );
        report.ensure_valid()?;
        if let Some(v) = validation {
            // A validation file has no minimum size of its own.
            let options = ValidationOptions {
                min_examples: 1,
                ..self.config.validation.clone()
            };
            validate_conversations(v, "validation data", &options, self.estimator.as_ref())
                .ensure_valid()?;
        }
        let data_hash = conversations_hash(data);
        // The state (and the job's metadata key) covers the validation data too.
        let key_hash = match validation {
            Some(v) => format!("{data_hash}+validation:{}", conversations_hash(v)),
            None => data_hash.clone(),
        };
        let key = self.state_key(&key_hash, config);
        let state_path = self.state_path(&key_hash, config);
        let mut state: JobState = fsutil::read_json(&state_path)?.unwrap_or_else(|| JobState {
            key: key.clone(),
            base_url: self.config.base_url.clone(),
            data_hash: data_hash.clone(),
            config: Some(config.clone()),
            ..JobState::default()
        });

        let job_id = match state.job_id.clone() {
            Some(id) => {
                tracing::info!(job = %id, "resuming wait on an existing job");
                id
            }
            None => match self.find_existing(&key).await? {
                Some(id) => {
                    tracing::info!(job = %id, "adopting a job created earlier for the same data and config");
                    state.job_id = Some(id.clone());
                    fsutil::write_json(&state_path, &state)?;
                    id
                }
                None => {
                    let est = estimate(
                        &self.config.cost.prices,
                        data,
                        config,
                        self.estimator.as_ref(),
                        1,
                    )?;
                    self.config.cost.check(&est)?;
                    let file_id = match &state.file_id {
                        Some(f) => f.clone(),
                        None => {
                            let f = self.upload(data, &data_hash).await?;
                            tracing::info!(file = %f, examples = data.len(), "training file uploaded");
                            state.file_id = Some(f.clone());
                            fsutil::write_json(&state_path, &state)?;
                            f
                        }
                    };
                    let validation_file_id = match (validation, &state.validation_file_id) {
                        (None, _) => None,
                        (Some(_), Some(f)) => Some(f.clone()),
                        (Some(v), None) => {
                            let f = self.upload(v, &conversations_hash(v)).await?;
                            tracing::info!(file = %f, examples = v.len(), "validation file uploaded");
                            state.validation_file_id = Some(f.clone());
                            fsutil::write_json(&state_path, &state)?;
                            Some(f)
                        }
                    };
                    let id = self
                        .create_job(&file_id, validation_file_id.as_deref(), config, &key)
                        .await?;
                    tracing::info!(job = %id, base = %config.base_model, seed = config.seed, "fine-tuning job created");
                    state.job_id = Some(id.clone());
                    state.status = None;
                    fsutil::write_json(&state_path, &state)?;
                    id
                }
            },
        };

        let (model, job) = match (&state.fine_tuned_model, state.status.as_deref()) {
            (Some(m), Some("succeeded")) => (m.clone(), Value::Null),
            _ => self.wait(&job_id, &mut state, &state_path).await?,
        };
        let mut details = serde_json::Map::new();
        details.insert("job_id".into(), json!(job_id));
        details.insert("training_file".into(), json!(state.file_id));
        details.insert("base_url".into(), json!(self.config.base_url));
        if let Some(t) = job.get("trained_tokens").filter(|t| !t.is_null()) {
            details.insert("trained_tokens".into(), t.clone());
        }
        if let Some(v) = &state.validation_file_id {
            details.insert("validation_file".into(), json!(v));
        }
        // What "auto" resolved to, as the provider reports it.
        let resolved = job
            .pointer("/method/supervised/hyperparameters")
            .or_else(|| job.get("hyperparameters"))
            .filter(|h| !h.is_null());
        if let Some(h) = resolved {
            details.insert("hyperparameters".into(), h.clone());
        }
        Ok(TrainedModel {
            model_id: model,
            engine: ENGINE.to_owned(),
            config: config.clone(),
            data_hash,
            artifact: None,
            details,
        })
    }
}

/// A psyche-models configuration error as this crate's, keeping the field.
fn backend_config(e: psyche_models::BackendError) -> TrainingError {
    match e {
        psyche_models::BackendError::Config { field, message } => {
            TrainingError::config(field, message)
        }
        other => TrainingError::config("http", other.to_string()),
    }
}

fn describe_job_error(job: &Value) -> String {
    let err = job.get("error").cloned().unwrap_or(Value::Null);
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no reason given");
    let mut s = match err.get("code").and_then(Value::as_str) {
        Some(code) => format!("{code}: {message}"),
        None => message.to_owned(),
    };
    if let Some(param) = err.get("param").and_then(Value::as_str) {
        s.push_str(&format!(" (parameter `{param}`)"));
    }
    s
}

#[async_trait]
impl FineTuner for OpenAiFineTuner {
    fn engine(&self) -> &str {
        ENGINE
    }

    async fn fine_tune(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<TrainedModel, FineTuneError> {
        self.run(data, None, config).await
    }

    async fn load(&self, trained: &TrainedModel) -> Result<Arc<dyn Model>, FineTuneError> {
        let base_url = trained
            .details
            .get("base_url")
            .and_then(Value::as_str)
            .unwrap_or(&self.config.base_url)
            .to_owned();
        let mut cfg = self
            .config
            .model_config
            .clone()
            .unwrap_or_else(|| OpenAiConfig::new(base_url.clone(), trained.model_id.clone()));
        cfg.base_url = base_url;
        cfg.model = trained.model_id.clone();
        if cfg.api_key.is_none() && cfg.api_key_env.is_none() {
            cfg.api_key = self.key.clone();
        }
        let model = OpenAiCompatible::new(cfg)
            .map_err(|e| FineTuneError::Engine(self.redact(&e.to_string())))?;
        Ok(Arc::new(model))
    }
}
