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
//!
//! [`FineTuner`]: psyche_core::FineTuner
//! [`TrainedModel`]: psyche_core::TrainedModel
//! [`FineTuner::load`]: psyche_core::FineTuner::load
//! [`Model`]: psyche_core::Model
//! [`HttpClient`]: psyche_models::HttpClient
//! [`RetryPolicy`]: psyche_models::RetryPolicy

mod jobs;
mod tuner;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use psyche_core::FineTuneConfig;
use psyche_models::{ApiKey, OpenAiConfig, RetryConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cost::{CostGuard, TrainingPriceTable};
use crate::dataset::ValidationOptions;

pub use tuner::OpenAiFineTuner;

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
    /// Template of the config used by [`FineTuner::load`](psyche_core::FineTuner::load) (its base URL and model are replaced).
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
