//! Emulation of the OpenAI files + batches APIs and of Anthropic Message Batches, in memory.
//!
//! An OpenAI batch answers `validating` to its first status poll and `in_progress` to the rest
//! of its first [`batch_polls_before_complete`](crate::ServerConfig::batch_polls_before_complete)
//! polls; it is processed (through the configured responder, without faults, each line checked
//! like a live request by [`strict`](crate::strict)) on the next one, which answers
//! `finalizing` (or `cancelling`), and the poll after that gives the final status with the
//! output and error files. How it ends is [`BatchEnd`](crate::BatchEnd): `completed`,
//! `expired` (unprocessed lines as `batch_expired` errors) or `cancelled` (`batch_cancelled`).
//! `GET /v1/batches` lists batches newest first with `limit`, `after`, `has_more`, and each
//! batch's `metadata`.
//!
//! An Anthropic message batch answers `in_progress` (or `canceling`) until processed, then
//! `ended`; its results hold `succeeded`, `errored`, `expired` and `canceled` lines.
//!
//! Output lines come back in reverse input order, so clients must join on `custom_id`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::BatchEnd;
use crate::anthropic::{anthropic_error, respond};
use crate::openai::{error_response, unauthorized};
use crate::state::{SharedState, StoredBatch, StoredFile};

pub(crate) fn routes() -> Router<Arc<SharedState>> {
    Router::new()
        .route("/v1/files", post(upload_file))
        .route("/v1/files/{id}", get(file_meta))
        .route("/v1/files/{id}/content", get(file_content))
        .route("/v1/batches", post(create_batch).get(list_batches))
        .route("/v1/batches/{id}", get(get_batch))
        .route("/v1/messages/batches", post(create_message_batch))
        .route("/v1/messages/batches/{id}", get(get_message_batch))
        .route(
            "/v1/messages/batches/{id}/results",
            get(message_batch_results),
        )
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn file_json(id: &str, f: &StoredFile) -> Value {
    json!({"id": id, "object": "file", "bytes": f.bytes.len(), "created_at": now(), "filename": f.filename, "purpose": f.purpose})
}

async fn upload_file(
    State(state): State<Arc<SharedState>>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    if let Err(sent) = state.check_key(&headers) {
        return unauthorized(sent);
    }
    let mut purpose = None;
    let mut file = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_owned();
                let filename = field.file_name().unwrap_or("upload.jsonl").to_owned();
                let Ok(data) = field.bytes().await else {
                    return error_response(
                        StatusCode::BAD_REQUEST,
                        "invalid_request_error",
                        "unreadable multipart field",
                    );
                };
                match name.as_str() {
                    "purpose" => purpose = Some(String::from_utf8_lossy(&data).into_owned()),
                    "file" => file = Some((filename, data.to_vec())),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("bad multipart body: {e}"),
                );
            }
        }
    }
    let (Some(purpose), Some((filename, bytes))) = (purpose, file) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "fields `purpose` and `file` are required",
        );
    };
    let id = state.fresh_id("file-");
    let stored = StoredFile {
        filename,
        purpose,
        bytes,
    };
    let body = file_json(&id, &stored);
    state.files.lock().insert(id, stored);
    axum::Json(body).into_response()
}

async fn file_meta(
    State(state): State<Arc<SharedState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(sent) = state.check_key(&headers) {
        return unauthorized(sent);
    }
    match state.files.lock().get(&id) {
        Some(f) => axum::Json(file_json(&id, f)).into_response(),
        None => error_response(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("No such File object: {id}"),
        ),
    }
}

async fn file_content(
    State(state): State<Arc<SharedState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(sent) = state.check_key(&headers) {
        return unauthorized(sent);
    }
    match state.files.lock().get(&id) {
        Some(f) => (
            [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
            f.bytes.clone(),
        )
            .into_response(),
        None => error_response(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("No such File object: {id}"),
        ),
    }
}

fn batch_json(b: &StoredBatch, status: &str, errors: Option<Value>) -> Value {
    let done = matches!(status, "completed" | "expired" | "cancelled");
    json!({
        "metadata": b.metadata,
        "id": b.id,
        "object": "batch",
        "endpoint": b.endpoint,
        "errors": errors,
        "input_file_id": b.input_file_id,
        "completion_window": "24h",
        "status": status,
        "output_file_id": if done { b.output_file_id.clone() } else { None },
        "error_file_id": if done { b.error_file_id.clone() } else { None },
        "created_at": b.created_at,
        "request_counts": {"total": b.counts.0, "completed": b.counts.1, "failed": b.counts.2},
    })
}

/// Checks an OpenAI batch input file; returns its parsed lines or a description of the problem.
fn parse_input(bytes: &[u8], endpoint: &str) -> Result<Vec<Value>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "input file is not UTF-8".to_owned())?;
    let mut seen = HashSet::new();
    let mut lines = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: invalid JSON: {e}", i + 1))?;
        let id = v["custom_id"]
            .as_str()
            .ok_or(format!("line {}: missing custom_id", i + 1))?;
        if !seen.insert(id.to_owned()) {
            return Err(format!("line {}: duplicate custom_id `{id}`", i + 1));
        }
        if v["url"].as_str() != Some(endpoint) || v["method"].as_str() != Some("POST") {
            return Err(format!(
                "line {}: method/url must be POST {endpoint}",
                i + 1
            ));
        }
        lines.push(v);
    }
    Ok(lines)
}

async fn create_batch(
    State(state): State<Arc<SharedState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(sent) = state.check_key(&headers) {
        return unauthorized(sent);
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "request body is not valid JSON",
        );
    };
    let (Some(file_id), Some(endpoint)) =
        (body["input_file_id"].as_str(), body["endpoint"].as_str())
    else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "fields `input_file_id` and `endpoint` are required",
        );
    };
    if !state.files.lock().contains_key(file_id) {
        return error_response(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("No such File object: {file_id}"),
        );
    }
    let batch = StoredBatch {
        id: state.fresh_id("batch_"),
        created_at: now(),
        polls: 0,
        input_file_id: Some(file_id.to_owned()),
        endpoint: endpoint.to_owned(),
        anthropic_requests: None,
        output_file_id: None,
        error_file_id: None,
        counts: (0, 0, 0),
        anthropic_results: None,
        metadata: body.get("metadata").cloned().unwrap_or(Value::Null),
        final_status: None,
        polls_after_processing: 0,
        lapsed: (0, 0),
    };
    let out = batch_json(&batch, "validating", None);
    state.batches.lock().insert(batch.id.clone(), batch);
    axum::Json(out).into_response()
}

async fn get_batch(
    State(state): State<Arc<SharedState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(sent) = state.check_key(&headers) {
        return unauthorized(sent);
    }
    let mut batches = state.batches.lock();
    let Some(b) = batches.get_mut(&id) else {
        return error_response(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("No such batch: {id}"),
        );
    };
    b.polls += 1;
    if let Some(fin) = b.final_status {
        // The processing poll answered `finalizing` / `cancelling`; this one the end.
        b.polls_after_processing += 1;
        return axum::Json(batch_json(b, fin, None)).into_response();
    }
    if b.polls <= state.config.batch_polls_before_complete {
        let status = if b.polls == 1 {
            "validating"
        } else {
            "in_progress"
        };
        return axum::Json(batch_json(b, status, None)).into_response();
    }
    let input = b
        .input_file_id
        .as_deref()
        .and_then(|f| state.files.lock().get(f).map(|f| f.bytes.clone()))
        .unwrap_or_default();
    let lines = match parse_input(&input, &b.endpoint) {
        Ok(l) => l,
        Err(msg) => {
            let errors =
                json!({"object": "list", "data": [{"code": "invalid_input", "message": msg}]});
            b.final_status = Some("failed");
            return axum::Json(batch_json(b, "failed", Some(errors))).into_response();
        }
    };
    let (processed, fin, lapse_code) = match state.config.batch_end {
        BatchEnd::Expired { processed } => (processed, "expired", "batch_expired"),
        BatchEnd::Cancelled { processed } => (processed, "cancelled", "batch_cancelled"),
        _ => (usize::MAX, "completed", ""),
    };
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    for (i, line) in lines.iter().enumerate().rev() {
        let custom_id = line["custom_id"].clone();
        if i >= processed {
            let message = if fin == "expired" {
                "This request could not be executed before the completion window expired."
            } else {
                "This request was not executed because the batch was cancelled."
            };
            failed.push(json!({"id": format!("batch_req_{i}"), "custom_id": custom_id, "response": null, "error": {"code": lapse_code, "message": message}}));
            continue;
        }
        let result = match crate::strict::check_chat(&line["body"]) {
            Ok(()) => (state.config.responder)(&line["body"]),
            Err(e) => e,
        };
        if result.get("error").is_some() {
            failed.push(json!({"id": format!("batch_req_{i}"), "custom_id": custom_id, "response": {"status_code": 400, "request_id": format!("req_{i}"), "body": result}, "error": null}));
        } else {
            ok.push(json!({"id": format!("batch_req_{i}"), "custom_id": custom_id, "response": {"status_code": 200, "request_id": format!("req_{i}"), "body": result}, "error": null}));
        }
    }
    let to_file = |rows: &[Value], name: &str| -> Option<String> {
        if rows.is_empty() {
            return None;
        }
        let mut bytes = Vec::new();
        for r in rows {
            bytes.extend(serde_json::to_vec(r).unwrap_or_default());
            bytes.push(b'\n');
        }
        let id = state.fresh_id("file-");
        state.files.lock().insert(
            id.clone(),
            StoredFile {
                filename: name.to_owned(),
                purpose: "batch_output".to_owned(),
                bytes,
            },
        );
        Some(id)
    };
    let lapsed = lines.len().saturating_sub(processed) as u64;
    b.output_file_id = to_file(&ok, "output.jsonl");
    b.error_file_id = to_file(&failed, "errors.jsonl");
    b.counts = (
        lines.len() as u64,
        ok.len() as u64,
        failed.len() as u64 - lapsed,
    );
    b.final_status = Some(fin);
    b.polls_after_processing = 0;
    let status = match fin {
        "completed" => "finalizing",
        "cancelled" => "cancelling",
        s => s,
    };
    axum::Json(batch_json(b, status, None)).into_response()
}

async fn list_batches(
    State(state): State<Arc<SharedState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(sent) = state.check_key(&headers) {
        return unauthorized(sent);
    }
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let batches = state.batches.lock();
    let mut list: Vec<&StoredBatch> = batches
        .values()
        .filter(|b| b.input_file_id.is_some())
        .collect();
    // Newest first: ids carry an increasing counter.
    list.sort_by_key(|b| std::cmp::Reverse(id_number(&b.id)));
    let start = match q.get("after") {
        Some(after) => match list.iter().position(|b| &b.id == after) {
            Some(i) => i + 1,
            None => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("No such batch: {after}"),
                );
            }
        },
        None => 0,
    };
    let page: Vec<Value> = list
        .iter()
        .skip(start)
        .take(limit)
        .map(|b| {
            let status = match b.final_status {
                Some(s) => s,
                None if b.polls == 0 => "validating",
                None => "in_progress",
            };
            batch_json(b, status, None)
        })
        .collect();
    let has_more = list.len() > start + page.len();
    axum::Json(json!({
        "object": "list",
        "data": page,
        "first_id": page.first().map(|b| b["id"].clone()),
        "last_id": page.last().map(|b| b["id"].clone()),
        "has_more": has_more,
    }))
    .into_response()
}

fn id_number(id: &str) -> u64 {
    id.trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or(0)
}

fn message_batch_json(state: &SharedState, b: &StoredBatch) -> Value {
    let n = b.anthropic_requests.as_ref().map_or(0, Vec::len) as u64;
    let ended = b.anthropic_results.is_some() && b.polls_after_processing > 0;
    let status = match (ended, state.config.batch_end) {
        (true, _) => "ended",
        (false, BatchEnd::Cancelled { .. }) if b.anthropic_results.is_some() => "canceling",
        _ => "in_progress",
    };
    json!({
        "id": b.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {
            "processing": if ended { 0 } else { n },
            "succeeded": if ended { b.counts.1 } else { 0 },
            "errored": if ended { b.counts.2 } else { 0 },
            "canceled": if ended { b.lapsed.1 } else { 0 },
            "expired": if ended { b.lapsed.0 } else { 0 },
        },
        "created_at": b.created_at,
        "results_url": ended.then(|| format!("{}/v1/messages/batches/{}/results", state.origin(), b.id)),
    })
}

fn anthropic_auth(state: &SharedState, headers: &HeaderMap) -> Result<(), Response> {
    state.check_key(headers).map_err(|_| {
        anthropic_error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        )
    })
}

async fn create_message_batch(
    State(state): State<Arc<SharedState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = anthropic_auth(&state, &headers) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "request body is not valid JSON",
        );
    };
    let Some(requests) = body["requests"].as_array() else {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "field `requests` is required",
        );
    };
    let mut seen = HashSet::new();
    for (i, r) in requests.iter().enumerate() {
        match r["custom_id"].as_str() {
            Some(id) if seen.insert(id) => {}
            Some(id) => {
                return anthropic_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("requests.{i}: duplicate custom_id `{id}`"),
                );
            }
            None => {
                return anthropic_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("requests.{i}.custom_id is required"),
                );
            }
        }
    }
    let batch = StoredBatch {
        id: state.fresh_id("msgbatch_"),
        created_at: now(),
        polls: 0,
        input_file_id: None,
        endpoint: "/v1/messages".to_owned(),
        anthropic_requests: Some(requests.clone()),
        output_file_id: None,
        error_file_id: None,
        counts: (requests.len() as u64, 0, 0),
        anthropic_results: None,
        metadata: Value::Null,
        final_status: None,
        polls_after_processing: 0,
        lapsed: (0, 0),
    };
    let out = message_batch_json(&state, &batch);
    state.batches.lock().insert(batch.id.clone(), batch);
    axum::Json(out).into_response()
}

async fn get_message_batch(
    State(state): State<Arc<SharedState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = anthropic_auth(&state, &headers) {
        return r;
    }
    let mut batches = state.batches.lock();
    let Some(b) = batches.get_mut(&id) else {
        return anthropic_error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            &format!("no batch `{id}`"),
        );
    };
    b.polls += 1;
    if b.anthropic_results.is_some() {
        b.polls_after_processing += 1;
    }
    if b.anthropic_results.is_none() && b.polls > state.config.batch_polls_before_complete {
        let (processed, lapse) = match state.config.batch_end {
            BatchEnd::Expired { processed } => (processed, "expired"),
            BatchEnd::Cancelled { processed } => (processed, "canceled"),
            _ => (usize::MAX, ""),
        };
        let requests = b.anthropic_requests.clone().unwrap_or_default();
        let mut bytes = Vec::new();
        let (mut ok, mut bad, mut lapsed) = (0, 0, 0);
        for (i, r) in requests.iter().enumerate().rev() {
            let result = if i >= processed {
                lapsed += 1;
                json!({"type": lapse})
            } else {
                match respond(&state, &r["params"]) {
                    Ok(message) => {
                        ok += 1;
                        json!({"type": "succeeded", "message": message})
                    }
                    Err(error) => {
                        bad += 1;
                        json!({"type": "errored", "error": {"type": "error", "error": error}})
                    }
                }
            };
            bytes.extend(
                serde_json::to_vec(&json!({"custom_id": r["custom_id"], "result": result}))
                    .unwrap_or_default(),
            );
            bytes.push(b'\n');
        }
        b.counts = (b.counts.0, ok, bad);
        b.lapsed = if lapse == "expired" {
            (lapsed, 0)
        } else {
            (0, lapsed)
        };
        b.anthropic_results = Some(bytes);
        // A cancelled batch answers `canceling` on this poll and `ended` on the next.
        if !matches!(state.config.batch_end, BatchEnd::Cancelled { .. }) {
            b.polls_after_processing = 1;
        }
    }
    axum::Json(message_batch_json(&state, b)).into_response()
}

async fn message_batch_results(
    State(state): State<Arc<SharedState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = anthropic_auth(&state, &headers) {
        return r;
    }
    match state
        .batches
        .lock()
        .get(&id)
        .filter(|b| b.polls_after_processing > 0)
        .and_then(|b| b.anthropic_results.clone())
    {
        Some(bytes) => (
            [(axum::http::header::CONTENT_TYPE, "application/x-jsonl")],
            bytes,
        )
            .into_response(),
        None => anthropic_error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            &format!("results of `{id}` are not ready"),
        ),
    }
}
