//! OpenAI-style generation routes: `/v1/chat/completions`, `/v1/completions`, `/v1/models`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::responder::{answer_tokens, default_answer};
use crate::state::SharedState;

pub(crate) fn routes() -> Router<Arc<SharedState>> {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
}

/// An OpenAI-style error response.
pub(crate) fn error_response(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "type": kind, "code": null}})),
    )
        .into_response()
}

pub(crate) fn unauthorized(sent: Option<String>) -> Response {
    let message = match sent {
        Some(k) => format!("Incorrect API key provided: {k}. Check the key and try again."),
        None => "You didn't provide an API key.".to_owned(),
    };
    error_response(StatusCode::UNAUTHORIZED, "invalid_request_error", &message)
}

/// Parses a JSON request body, or answers 400.
pub(crate) fn parse_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("request body is not valid JSON: {e}"),
        )
    })
}

/// Answers a generation request: latency, then a fault or the rendered body.
pub(crate) async fn answer(state: &SharedState, result: Value) -> Response {
    state.delay().await;
    if result.get("error").is_some() {
        let status = result
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| StatusCode::from_u16(s as u16).ok())
            .unwrap_or(StatusCode::BAD_REQUEST);
        return (status, axum::Json(result)).into_response();
    }
    let ok_body = serde_json::to_vec(&result).unwrap_or_default();
    if let Some(fault) = state.next_fault() {
        return state.fault_response(fault, ok_body).await;
    }
    state.answered.fetch_add(1, Ordering::SeqCst);
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        ok_body,
    )
        .into_response()
}

async fn chat_completions(
    State(state): State<Arc<SharedState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(sent) = state.check_key(&headers) {
        return unauthorized(sent);
    }
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    state.record_body("/v1/chat/completions", &body);
    if let Err(e) = crate::strict::check_chat(&body) {
        return (StatusCode::BAD_REQUEST, axum::Json(e)).into_response();
    }
    let result = (state.config.responder)(&body);
    answer(&state, result).await
}

/// The logprob the server gives a token of a `/v1/completions` prompt or continuation:
/// `-0.1 × (number of non-space characters) − 0.05`.
pub fn completion_token_logprob(token: &str) -> f64 {
    -0.1 * token.trim().chars().count() as f64 - 0.05
}

async fn completions(
    State(state): State<Arc<SharedState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(sent) = state.check_key(&headers) {
        return unauthorized(sent);
    }
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    state.record_body("/v1/completions", &body);
    let Some(prompt) = body.get("prompt").and_then(Value::as_str) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "field `prompt` must be a string",
        );
    };
    let echo = body.get("echo").and_then(Value::as_bool) == Some(true);
    let max_tokens = body.get("max_tokens").and_then(Value::as_u64).unwrap_or(16) as usize;
    let logprobs = body.get("logprobs").and_then(Value::as_u64);
    let mut generated: Vec<String> = answer_tokens(&format!(" {}", default_answer(prompt)));
    generated.truncate(max_tokens);
    let mut tokens: Vec<String> = if echo {
        answer_tokens(prompt)
    } else {
        Vec::new()
    };
    let n_prompt = tokens.len();
    tokens.extend(generated.iter().cloned());
    let text = if echo {
        format!("{prompt}{}", generated.concat())
    } else {
        generated.concat()
    };
    let logprobs_json = logprobs.map(|k| {
        let mut offset = 0usize;
        let mut token_logprobs = Vec::new();
        let mut top = Vec::new();
        let mut offsets = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            offsets.push(offset);
            offset += t.chars().count();
            if echo && i == 0 {
                token_logprobs.push(Value::Null);
                top.push(Value::Null);
                continue;
            }
            let lp = completion_token_logprob(t);
            token_logprobs.push(json!(lp));
            let mut alts = serde_json::Map::new();
            alts.insert(t.clone(), json!(lp));
            if k > 1 {
                alts.insert("<alt>".to_owned(), json!(lp - 1.0));
            }
            top.push(Value::Object(alts));
        }
        json!({"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top, "text_offset": offsets})
    });
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("test-model");
    let result = json!({
        "id": "cmpl-test",
        "object": "text_completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": logprobs_json, "finish_reason": "length"}],
        "usage": {"prompt_tokens": n_prompt, "completion_tokens": generated.len(), "total_tokens": n_prompt + generated.len()},
    });
    answer(&state, result).await
}

async fn models(State(state): State<Arc<SharedState>>) -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [{"id": state.config.model_id, "object": "model", "created": 0, "owned_by": "psyche-test-server"}],
    }))
    .into_response()
}
