//! [`OpenAiFineTuner`]: its construction, public job operations and the [`FineTuner`]
//! implementation.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{
    Conversation, FineTuneConfig, FineTuneError, FineTuner, Model, ModelError, TrainedModel,
    conversations_hash,
};
use psyche_models::{ApiKey, AuthStyle, HttpClient, OpenAiCompatible, OpenAiConfig, RetryPolicy};
use serde_json::{Value, json};

use super::jobs::backend_config;
use super::{Checkpoint, ENGINE, JobState, MAX_PAGES, OpenAiFineTunerConfig};
use crate::dataset::{CharsPerToken, TokenEstimator};
use crate::error::TrainingError;
use crate::fsutil;

/// The OpenAI fine-tuning driver. See the [module docs](super).
pub struct OpenAiFineTuner {
    pub(super) config: OpenAiFineTunerConfig,
    pub(super) key: Option<ApiKey>,
    pub(super) http: HttpClient,
    pub(super) retry: RetryPolicy,
    pub(super) estimator: Arc<dyn TokenEstimator>,
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

    pub(super) fn check_config(config: &FineTuneConfig) -> Result<(), TrainingError> {
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
