//! The jobs API calls behind [`OpenAiFineTuner`]: upload, create (or adopt), events, the wait
//! with backoff, and one whole fine-tune.

use std::path::Path;
use std::time::Instant;

use psyche_core::{
    Conversation, FineTuneConfig, FineTuneError, ModelError, TrainedModel, conversations_hash,
};
use serde_json::{Value, json};

use super::tuner::OpenAiFineTuner;
use super::{ENGINE, JobEvent, JobState, MAX_PAGES};
use crate::cost::estimate;
use crate::dataset::{ValidationOptions, validate_conversations};
use crate::error::TrainingError;
use crate::fsutil;

impl OpenAiFineTuner {
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    pub(super) fn redact(&self, text: &str) -> String {
        self.http.redact(text)
    }

    /// A GET of a JSON answer, retried on transient failures.
    pub(super) async fn get(&self, path: &str) -> Result<Value, ModelError> {
        let url = self.url(path);
        let timeout = self.config.request_timeout;
        self.retry
            .run(ENGINE, path, || self.http.get_json(&url, path, timeout))
            .await
    }

    /// A POST of JSON that is safe to repeat, retried on transient failures.
    pub(super) async fn post(&self, path: &str, body: &Value) -> Result<Value, ModelError> {
        let url = self.url(path);
        let timeout = self.config.request_timeout;
        self.retry
            .run(ENGINE, path, || {
                self.http.post_json(&url, path, body, timeout)
            })
            .await
    }

    /// Uploads the training file (retried: a repeated upload only leaves an unused file).
    pub(super) async fn upload(
        &self,
        data: &[Conversation],
        data_hash: &str,
    ) -> Result<String, ModelError> {
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
    pub(super) async fn find_existing(&self, key: &str) -> Result<Option<String>, ModelError> {
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

    pub(super) async fn create_job(
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
    pub(super) async fn forward_events(
        &self,
        job_id: &str,
        state: &mut JobState,
    ) -> Result<(), ModelError> {
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
    pub(super) async fn wait(
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

    pub(super) async fn run(
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
pub(super) fn backend_config(e: psyche_models::BackendError) -> TrainingError {
    match e {
        psyche_models::BackendError::Config { field, message } => {
            TrainingError::config(field, message)
        }
        other => TrainingError::config("http", other.to_string()),
    }
}

pub(super) fn describe_job_error(job: &Value) -> String {
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

/// The hyperparameters as sent: each `"auto"` or its value.
pub(super) fn hyperparameters(config: &FineTuneConfig) -> Value {
    let auto_or = |v: Option<Value>| v.unwrap_or_else(|| json!("auto"));
    json!({
        "n_epochs": auto_or(config.epochs.map(|e| json!(e))),
        "batch_size": auto_or(config.batch_size.map(|b| json!(b))),
        "learning_rate_multiplier": auto_or(config.learning_rate_multiplier.map(|m| json!(m))),
    })
}
