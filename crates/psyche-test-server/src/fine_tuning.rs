//! Emulation of the OpenAI fine-tuning jobs API, in memory, over the files uploaded through
//! `/v1/files` (`purpose=fine-tune`).
//!
//! - `POST /v1/fine_tuning/jobs`, `GET /v1/fine_tuning/jobs` (newest first, `limit`, and
//!   `metadata[key]=value` filters), `GET /v1/fine_tuning/jobs/{id}`,
//!   `GET /v1/fine_tuning/jobs/{id}/events` and `GET .../checkpoints` (newest first, `limit`
//!   (default 20, at most 100), `after`, `has_more`), `POST /v1/fine_tuning/jobs/{id}/cancel`.
//! - Creation is checked as OpenAI checks it: hyperparameters given in `method`
//!   (`{"type": "supervised", "supervised": {"hyperparameters": {...}}}`; `dpo` and
//!   `reinforcement` are accepted as types) or in the deprecated top-level `hyperparameters`,
//!   each `"auto"` or in range (`n_epochs` 1-50, `batch_size` 1-256,
//!   `learning_rate_multiplier` > 0), no unknown hyperparameter, `seed` in 0..=2147483647,
//!   and an existing `fine-tune` file as `validation_file` when one is named.
//! - One checkpoint (`ft:...:ckpt-step-N`) per running poll.
//! - A job advances one stage per status poll (`GET .../jobs/{id}`), as configured in
//!   [`FineTuningConfig`]: `validating_files` — where the training file is checked (JSONL with a
//!   non-empty `messages` array per line, at least `min_examples` lines) and the job fails with
//!   `invalid_training_file` otherwise — then `queued`, then `running` (one metrics event per
//!   poll), then `succeeded` with `fine_tuned_model = "ft:{model}:psyche-test:{suffix}:{job id}"`.
//!   A job whose `suffix` equals [`FineTuningConfig::failing_suffix`] fails at the end of
//!   `running`.
//! - The first [`FineTuningConfig::rate_limited_requests`] requests to these routes are answered
//!   429 with the server's `retry_after` (as `retry-after`, rounded up to seconds, and as
//!   `retry-after-ms`), like an injected [`Fault::RateLimit`](crate::Fault::RateLimit).
//! - Creation bodies are recorded under `/v1/fine_tuning/jobs` for
//!   [`TestServer::request_bodies`](crate::TestServer::request_bodies).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::openai::{error_response, parse_body, unauthorized};
use crate::state::SharedState;

/// How emulated fine-tuning jobs behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FineTuningConfig {
    /// Status polls answered `validating_files` (the file is checked on the last of them).
    pub validating_polls: u32,
    /// Status polls answered `queued`.
    pub queued_polls: u32,
    /// Status polls answered `running` (one metrics event each).
    pub running_polls: u32,
    /// Jobs created with this `suffix` fail at the end of training.
    pub failing_suffix: Option<String>,
    /// Training files with fewer examples are rejected as invalid.
    pub min_examples: usize,
    /// The first this many requests to the fine-tuning routes are answered 429 (rate limit).
    pub rate_limited_requests: u32,
}

impl Default for FineTuningConfig {
    /// One poll validating, one queued, two running; no failing suffix; at least 10 examples
    /// (OpenAI's minimum); no rate limiting.
    fn default() -> Self {
        Self {
            validating_polls: 1,
            queued_polls: 1,
            running_polls: 2,
            failing_suffix: None,
            min_examples: 10,
            rate_limited_requests: 0,
        }
    }
}

struct Job {
    id: String,
    body: Value,
    created_at: u64,
    polls: u32,
    status: &'static str,
    error: Value,
    events: Vec<Value>,
    fine_tuned_model: Option<String>,
    trained_tokens: Option<u64>,
    checkpoints: Vec<Value>,
}

struct Jobs {
    config: FineTuningConfig,
    jobs: Mutex<Vec<Job>>,
    rate_limited: std::sync::atomic::AtomicU32,
}

impl Jobs {
    /// A 429 while the configured number of rate-limited requests is not used up.
    async fn rate_limit(&self, state: &SharedState) -> Option<Response> {
        use std::sync::atomic::Ordering;
        let limit = self.config.rate_limited_requests;
        self.rate_limited
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        state.faults.fetch_add(1, Ordering::SeqCst);
        Some(
            state
                .fault_response(crate::Fault::RateLimit, Vec::new())
                .await,
        )
    }
}

pub(crate) fn routes(config: FineTuningConfig) -> Router<Arc<SharedState>> {
    let jobs = Arc::new(Jobs {
        config,
        jobs: Mutex::new(Vec::new()),
        rate_limited: std::sync::atomic::AtomicU32::new(0),
    });
    Router::new()
        .route("/v1/fine_tuning/jobs", post(create).get(list))
        .route("/v1/fine_tuning/jobs/{id}", get(retrieve))
        .route("/v1/fine_tuning/jobs/{id}/events", get(events))
        .route("/v1/fine_tuning/jobs/{id}/checkpoints", get(checkpoints))
        .route("/v1/fine_tuning/jobs/{id}/cancel", post(cancel))
        .layer(Extension(jobs))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn bad_request(message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

fn not_found(id: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        &format!("No fine-tuning job with id `{id}`"),
    )
}

fn job_json(j: &Job) -> Value {
    json!({
        "id": j.id,
        "object": "fine_tuning.job",
        "created_at": j.created_at,
        "model": j.body["model"],
        "training_file": j.body["training_file"],
        "validation_file": j.body.get("validation_file").cloned().unwrap_or(Value::Null),
        "status": j.status,
        "fine_tuned_model": j.fine_tuned_model,
        "error": j.error,
        "seed": j.body.get("seed").cloned().unwrap_or(Value::Null),
        "suffix": j.body.get("suffix").cloned().unwrap_or(Value::Null),
        "hyperparameters": hyperparameters(&j.body),
        "method": j.body.get("method").cloned().unwrap_or_else(|| json!({"type": "supervised", "supervised": {"hyperparameters": hyperparameters(&j.body)}})),
        "metadata": j.body.get("metadata").cloned().unwrap_or(Value::Null),
        "trained_tokens": j.trained_tokens,
    })
}

fn event(state: &SharedState, level: &str, message: &str, data: Value) -> Value {
    let kind = if data.is_null() { "message" } else { "metrics" };
    json!({
        "object": "fine_tuning.job.event",
        "id": state.fresh_id("ftevent-"),
        "created_at": now(),
        "level": level,
        "message": message,
        "data": data,
        "type": kind,
    })
}

async fn create(
    State(state): State<Arc<SharedState>>,
    Extension(jobs): Extension<Arc<Jobs>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(sent) = state.check_key(&headers) {
        return unauthorized(sent);
    }
    if let Some(r) = jobs.rate_limit(&state).await {
        return r;
    }
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    state.record_body("/v1/fine_tuning/jobs", &body);
    if body.get("model").and_then(Value::as_str).is_none() {
        return bad_request("`model` is required");
    }
    let Some(file) = body.get("training_file").and_then(Value::as_str) else {
        return bad_request("`training_file` is required");
    };
    match state.files.lock().get(file) {
        None => return bad_request(&format!("training file `{file}` does not exist")),
        Some(f) if f.purpose != "fine-tune" => {
            return bad_request(&format!(
                "file `{file}` has purpose `{}`, not `fine-tune`",
                f.purpose
            ));
        }
        Some(_) => {}
    }
    if let Err(why) = check_job_body(&body) {
        return bad_request(&why);
    }
    if let Some(file) = body.get("validation_file").and_then(Value::as_str) {
        match state.files.lock().get(file) {
            None => return bad_request(&format!("validation file `{file}` does not exist")),
            Some(f) if f.purpose != "fine-tune" => {
                return bad_request(&format!(
                    "file `{file}` has purpose `{}`, not `fine-tune`",
                    f.purpose
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(s) = body.get("suffix").and_then(Value::as_str)
        && s.len() > 64
    {
        return bad_request("suffix must be at most 64 characters");
    }
    let job = Job {
        id: state.fresh_id("ftjob-"),
        body,
        created_at: now(),
        polls: 0,
        status: "validating_files",
        error: Value::Null,
        events: vec![event(
            &state,
            "info",
            "Job created; validating the training file",
            Value::Null,
        )],
        fine_tuned_model: None,
        trained_tokens: None,
        checkpoints: Vec::new(),
    };
    let out = job_json(&job);
    jobs.jobs.lock().push(job);
    axum::Json(out).into_response()
}

/// The hyperparameters of a creation body: `method.<type>.hyperparameters`, else the deprecated
/// top-level `hyperparameters`, else all `"auto"`.
fn hyperparameters(body: &Value) -> Value {
    let kind = body.pointer("/method/type").and_then(Value::as_str);
    kind.and_then(|k| body.pointer(&format!("/method/{k}/hyperparameters")))
        .or_else(|| body.get("hyperparameters"))
        .cloned()
        .unwrap_or_else(|| json!({"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}))
}

/// `"auto"` or an integer in `range`.
fn check_int_or_auto(
    h: &Value,
    field: &str,
    range: std::ops::RangeInclusive<u64>,
    at: &str,
) -> Result<(), String> {
    match h.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s == "auto" => Ok(()),
        Some(v) => match v.as_u64() {
            Some(n) if range.contains(&n) => Ok(()),
            _ => Err(format!(
                "{at}.{field} must be \"auto\" or an integer between {} and {} (got {v})",
                range.start(),
                range.end()
            )),
        },
    }
}

/// The checks OpenAI's API makes on a job creation body, beyond the files.
fn check_job_body(body: &Value) -> Result<(), String> {
    let check_hyper = |h: &Value, at: &str| -> Result<(), String> {
        let Some(map) = h.as_object() else {
            return Err(format!("{at} must be an object"));
        };
        for k in map.keys() {
            if !matches!(
                k.as_str(),
                "n_epochs" | "batch_size" | "learning_rate_multiplier" | "beta"
            ) {
                return Err(format!("{at}.{k} is not a recognised hyperparameter"));
            }
        }
        check_int_or_auto(h, "n_epochs", 1..=50, at)?;
        check_int_or_auto(h, "batch_size", 1..=256, at)?;
        match h.get("learning_rate_multiplier") {
            None | Some(Value::Null) => Ok(()),
            Some(Value::String(s)) if s == "auto" => Ok(()),
            Some(v) => match v.as_f64() {
                Some(m) if m > 0.0 => Ok(()),
                _ => Err(format!(
                    "{at}.learning_rate_multiplier must be \"auto\" or a positive number (got {v})"
                )),
            },
        }
    };
    if let Some(h) = body.get("hyperparameters") {
        check_hyper(h, "hyperparameters")?;
    }
    if let Some(m) = body.get("method") {
        let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
        if !matches!(kind, "supervised" | "dpo" | "reinforcement") {
            return Err(format!(
                "method.type must be one of supervised, dpo, reinforcement (got `{kind}`)"
            ));
        }
        if let Some(h) = m.pointer(&format!("/{kind}/hyperparameters")) {
            check_hyper(h, &format!("method.{kind}.hyperparameters"))?;
        }
    }
    if let Some(seed) = body.get("seed").filter(|s| !s.is_null()) {
        match seed.as_u64() {
            Some(s) if s <= 2_147_483_647 => {}
            _ => {
                return Err(format!(
                    "seed must be an integer between 0 and 2147483647 (got {seed})"
                ));
            }
        }
    }
    Ok(())
}

/// Why a training file is unusable, if it is.
fn check_file(bytes: &[u8], min: usize) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut n = 0;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let ok = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| {
                v.get("messages")
                    .and_then(Value::as_array)
                    .map(|m| !m.is_empty())
            })
            .unwrap_or(false);
        if !ok {
            return Some(format!(
                "line {}: expected an object with a non-empty `messages` array",
                i + 1
            ));
        }
        n += 1;
    }
    (n < min).then(|| format!("the training file has {n} example(s); at least {min} are required"))
}

fn advance(state: &SharedState, config: &FineTuningConfig, j: &mut Job) {
    if matches!(j.status, "succeeded" | "failed" | "cancelled") {
        return;
    }
    j.polls += 1;
    let p = j.polls;
    let validated = config.validating_polls.max(1);
    let started = validated + config.queued_polls;
    if p == validated {
        let file = j.body["training_file"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let bytes = state
            .files
            .lock()
            .get(&file)
            .map(|f| f.bytes.clone())
            .unwrap_or_default();
        if let Some(why) = check_file(&bytes, config.min_examples) {
            j.status = "failed";
            j.error = json!({
                "code": "invalid_training_file",
                "message": format!("Training file {file} is invalid: {why}"),
                "param": "training_file",
            });
            j.events.push(event(
                state,
                "error",
                "Training file validation failed",
                Value::Null,
            ));
            return;
        }
        j.status = "queued";
        j.events.push(event(
            state,
            "info",
            "Training file validated; job queued",
            Value::Null,
        ));
    }
    if p == started {
        j.status = "running";
        j.events
            .push(event(state, "info", "Training started", Value::Null));
    } else if p > started && p <= started + config.running_polls {
        let step = p - started;
        let base = j.body["model"].as_str().unwrap_or("model").to_owned();
        let suffix = j
            .body
            .get("suffix")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        j.checkpoints.push(json!({
            "object": "fine_tuning.job.checkpoint",
            "id": state.fresh_id("ftckpt-"),
            "created_at": now(),
            "fine_tuned_model_checkpoint": format!("ft:{base}:psyche-test:{suffix}:{}:ckpt-step-{step}", j.id),
            "step_number": step,
            "metrics": {"step": step, "train_loss": 1.0 / f64::from(step)},
            "fine_tuning_job_id": j.id,
        }));
        j.events.push(event(
            state,
            "info",
            &format!("Step {step}/{}", config.running_polls),
            json!({"step": step, "train_loss": 1.0 / f64::from(step)}),
        ));
        if step == config.running_polls {
            let suffix = j.body.get("suffix").and_then(Value::as_str);
            if suffix.is_some() && suffix == config.failing_suffix.as_deref() {
                j.status = "failed";
                j.error = json!({
                    "code": "training_error",
                    "message": "The job failed due to an internal error during training",
                    "param": null,
                });
                j.events
                    .push(event(state, "error", "Training failed", Value::Null));
            } else {
                j.status = "succeeded";
                let base = j.body["model"].as_str().unwrap_or("model");
                j.fine_tuned_model = Some(format!(
                    "ft:{base}:psyche-test:{}:{}",
                    suffix.unwrap_or(""),
                    j.id
                ));
                j.trained_tokens = Some(1234);
                j.events.push(event(
                    state,
                    "info",
                    "Fine-tuning job completed",
                    Value::Null,
                ));
            }
        }
    }
}

async fn retrieve(
    State(state): State<Arc<SharedState>>,
    Extension(jobs): Extension<Arc<Jobs>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(sent) = state.check_key(&headers) {
        return unauthorized(sent);
    }
    if let Some(r) = jobs.rate_limit(&state).await {
        return r;
    }
    let mut list = jobs.jobs.lock();
    let Some(j) = list.iter_mut().find(|j| j.id == id) else {
        return not_found(&id);
    };
    advance(&state, &jobs.config, j);
    axum::Json(job_json(j)).into_response()
}

async fn list(
    State(state): State<Arc<SharedState>>,
    Extension(jobs): Extension<Arc<Jobs>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(sent) = state.check_key(&headers) {
        return unauthorized(sent);
    }
    if let Some(r) = jobs.rate_limit(&state).await {
        return r;
    }
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
    let filters: Vec<(&str, &str)> = q
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata[")
                .and_then(|k| k.strip_suffix(']'))
                .map(|k| (k, v.as_str()))
        })
        .collect();
    let list = jobs.jobs.lock();
    let matching: Vec<Value> = list
        .iter()
        .rev()
        .filter(|j| {
            filters.iter().all(|(k, v)| {
                j.body
                    .get("metadata")
                    .and_then(|m| m.get(*k))
                    .and_then(Value::as_str)
                    == Some(*v)
            })
        })
        .map(job_json)
        .collect();
    let has_more = matching.len() > limit;
    let data: Vec<Value> = matching.into_iter().take(limit).collect();
    axum::Json(json!({"object": "list", "data": data, "has_more": has_more})).into_response()
}

async fn events(
    State(state): State<Arc<SharedState>>,
    Extension(jobs): Extension<Arc<Jobs>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(sent) = state.check_key(&headers) {
        return unauthorized(sent);
    }
    if let Some(r) = jobs.rate_limit(&state).await {
        return r;
    }
    let list = jobs.jobs.lock();
    let Some(j) = list.iter().find(|j| j.id == id) else {
        return not_found(&id);
    };
    page(&j.events, &q)
}

/// A page of `items` (stored oldest first, listed newest first) after `q["after"]`, at most
/// `q["limit"]` (default 20, at most 100) long.
fn page(items: &[Value], q: &HashMap<String, String>) -> Response {
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let newest_first: Vec<&Value> = items.iter().rev().collect();
    let start = match q.get("after") {
        Some(after) => match newest_first
            .iter()
            .position(|e| e["id"].as_str() == Some(after))
        {
            Some(i) => i + 1,
            None => return bad_request(&format!("no item with id `{after}` to page after")),
        },
        None => 0,
    };
    let data: Vec<Value> = newest_first
        .iter()
        .skip(start)
        .take(limit)
        .map(|v| (*v).clone())
        .collect();
    let has_more = newest_first.len() > start + data.len();
    axum::Json(json!({
        "object": "list",
        "data": data,
        "first_id": data.first().map(|e| e["id"].clone()),
        "last_id": data.last().map(|e| e["id"].clone()),
        "has_more": has_more,
    }))
    .into_response()
}

async fn checkpoints(
    State(state): State<Arc<SharedState>>,
    Extension(jobs): Extension<Arc<Jobs>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(sent) = state.check_key(&headers) {
        return unauthorized(sent);
    }
    if let Some(r) = jobs.rate_limit(&state).await {
        return r;
    }
    let list = jobs.jobs.lock();
    let Some(j) = list.iter().find(|j| j.id == id) else {
        return not_found(&id);
    };
    page(&j.checkpoints, &q)
}

async fn cancel(
    State(state): State<Arc<SharedState>>,
    Extension(jobs): Extension<Arc<Jobs>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(sent) = state.check_key(&headers) {
        return unauthorized(sent);
    }
    if let Some(r) = jobs.rate_limit(&state).await {
        return r;
    }
    let mut list = jobs.jobs.lock();
    let Some(j) = list.iter_mut().find(|j| j.id == id) else {
        return not_found(&id);
    };
    if matches!(j.status, "succeeded" | "failed" | "cancelled") {
        return bad_request(&format!("job `{id}` has already finished ({})", j.status));
    }
    j.status = "cancelled";
    j.events
        .push(event(&state, "info", "Job cancelled", Value::Null));
    axum::Json(job_json(j)).into_response()
}
