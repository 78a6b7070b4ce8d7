//! Anthropic Messages route: `/v1/messages`, answered by the chat responder through a
//! translation both ways.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::state::SharedState;

pub(crate) fn routes() -> Router<Arc<SharedState>> {
    Router::new().route("/v1/messages", post(messages))
}

pub(crate) fn anthropic_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"type": "error", "error": {"type": kind, "message": message}})),
    )
        .into_response()
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// Translates a Messages API body to a chat-completions body.
pub(crate) fn to_chat(body: &Value) -> Result<Value, String> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or("field `model` is required")?;
    let max_tokens = body
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or("field `max_tokens` is required")?;
    let msgs = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("field `messages` is required")?;
    let mut out = Vec::new();
    if let Some(system) = body.get("system") {
        out.push(json!({"role": "system", "content": content_text(system)}));
    }
    for m in msgs {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "user" && role != "assistant" {
            return Err(format!("messages: unexpected role `{role}`"));
        }
        out.push(json!({"role": role, "content": content_text(m.get("content").unwrap_or(&Value::Null))}));
    }
    let mut chat = json!({"model": model, "max_tokens": max_tokens, "messages": out});
    if let Some(stop) = body.get("stop_sequences") {
        chat["stop"] = stop.clone();
    }
    if let Some(t) = body.get("temperature") {
        chat["temperature"] = t.clone();
    }
    if let Some(p) = body.get("top_p") {
        chat["top_p"] = p.clone();
    }
    Ok(chat)
}

/// Translates a chat-completion response into a Messages API response (first choice only).
pub(crate) fn from_chat(chat: &Value, model: &str) -> Value {
    let choice = &chat["choices"][0];
    let text = choice["message"]["content"].as_str().unwrap_or("");
    let stop_reason = match choice["finish_reason"].as_str() {
        Some("length") => "max_tokens",
        _ => "end_turn",
    };
    json!({
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {
            "input_tokens": chat["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
            "output_tokens": chat["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        },
    })
}

/// Answers one Messages body: `Ok(message)` or `Err(error object)`.
pub(crate) fn respond(state: &SharedState, body: &Value) -> Result<Value, Value> {
    crate::strict::check_messages(body, &state.config.no_temperature_models)?;
    let chat = to_chat(body).map_err(|m| json!({"type": "invalid_request_error", "message": m}))?;
    let result = (state.config.responder)(&chat);
    if let Some(err) = result.get("error") {
        let message = err["message"].as_str().unwrap_or("error").to_owned();
        return Err(json!({"type": "invalid_request_error", "message": message}));
    }
    Ok(from_chat(&result, chat["model"].as_str().unwrap_or("")))
}

async fn messages(
    State(state): State<Arc<SharedState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(sent) = state.check_key(&headers) {
        let message = match sent {
            Some(k) => format!("invalid x-api-key: {k}"),
            None => "x-api-key header is required".to_owned(),
        };
        return anthropic_error(StatusCode::UNAUTHORIZED, "authentication_error", &message);
    }
    if headers.get("anthropic-version").is_none() {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version header is required",
        );
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return anthropic_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("request body is not valid JSON: {e}"),
            );
        }
    };
    state.record_body("/v1/messages", &body);
    state.delay().await;
    match respond(&state, &body) {
        Err(e) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"type": "error", "error": e})),
        )
            .into_response(),
        Ok(message) => {
            let ok_body = serde_json::to_vec(&message).unwrap_or_default();
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
    }
}
