//! Request checks the real services make and a lax emulator would skip, with the providers'
//! error shapes.
//!
//! OpenAI chat completions (also applied to each line of a batch):
//!
//! - `seed` must be an integer in the signed 64-bit range (`integer_above_max_value` /
//!   `integer_below_min_value`, `param: "seed"`).
//! - Reasoning models — names starting `o1`, `o3`, `o4` or `gpt-5` (not `gpt-5-chat`), a
//!   leading `ft:` ignored — refuse `temperature` and `top_p` other than 1 (`unsupported_value`),
//!   and `logprobs`, `top_logprobs` and `max_tokens` (`unsupported_parameter`; the limit goes in
//!   `max_completion_tokens`).
//!
//! Anthropic Messages (also applied to each request of a message batch):
//!
//! - `claude-opus-4-1`, `claude-opus-4-5`, `claude-sonnet-4-5` and `claude-haiku-4-5` refuse
//!   `temperature` and `top_p` in the same request.
//! - Model names in [`ServerConfig::no_temperature_models`](crate::ServerConfig) (prefixes)
//!   refuse `temperature` outright.
//! - `temperature` must lie in `[0, 1]`.

use serde_json::{Value, json};

/// Whether the emulator treats `model` as an OpenAI reasoning model.
pub fn is_reasoning_model(model: &str) -> bool {
    let m = model.strip_prefix("ft:").unwrap_or(model);
    (["o1", "o3", "o4", "gpt-5"].iter().any(|p| m.starts_with(p))) && !m.starts_with("gpt-5-chat")
}

/// Whether the emulator refuses `temperature` together with `top_p` for this Claude model.
pub fn claude_temperature_xor_top_p(model: &str) -> bool {
    [
        "claude-opus-4-1",
        "claude-opus-4-5",
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
    ]
    .iter()
    .any(|p| model.starts_with(p))
}

fn openai_error(message: String, param: &str, code: &str) -> Value {
    json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}})
}

/// Checks a chat-completions body; `Err` holds the OpenAI error body (sent with status 400).
pub(crate) fn check_chat(body: &Value) -> Result<(), Value> {
    if let Some(seed) = body.get("seed").filter(|s| !s.is_null())
        && seed.as_i64().is_none()
    {
        let code = if seed.as_u64().is_some() {
            "integer_above_max_value"
        } else if seed.is_number() {
            "integer_below_min_value"
        } else {
            "invalid_type"
        };
        return Err(openai_error(
            format!(
                "Invalid 'seed': {seed} is out of range. Expected an integer between {} and {}.",
                i64::MIN,
                i64::MAX
            ),
            "seed",
            code,
        ));
    }
    let model = body.get("model").and_then(Value::as_str).unwrap_or("");
    if is_reasoning_model(model) {
        for field in ["temperature", "top_p"] {
            if let Some(v) = body.get(field).and_then(Value::as_f64)
                && v != 1.0
            {
                return Err(openai_error(
                    format!(
                        "Unsupported value: '{field}' does not support {v} with this model. Only the default (1) value is supported."
                    ),
                    field,
                    "unsupported_value",
                ));
            }
        }
        for field in ["logprobs", "top_logprobs", "max_tokens"] {
            if body.get(field).is_some_and(|v| !v.is_null()) {
                let hint = if field == "max_tokens" {
                    " Use 'max_completion_tokens' instead."
                } else {
                    ""
                };
                return Err(openai_error(
                    format!(
                        "Unsupported parameter: '{field}' is not supported with this model.{hint}"
                    ),
                    field,
                    "unsupported_parameter",
                ));
            }
        }
    }
    Ok(())
}

/// Checks a Messages body; `Err` holds the Anthropic `error` object (type + message).
pub(crate) fn check_messages(body: &Value, no_temperature: &[String]) -> Result<(), Value> {
    let model = body.get("model").and_then(Value::as_str).unwrap_or("");
    let err = |m: String| json!({"type": "invalid_request_error", "message": m});
    let has = |f: &str| body.get(f).is_some_and(|v| !v.is_null());
    if has("temperature") && no_temperature.iter().any(|p| model.starts_with(p.as_str())) {
        return Err(err(format!(
            "temperature: this parameter is not supported for model {model}"
        )));
    }
    if has("temperature") && has("top_p") && claude_temperature_xor_top_p(model) {
        return Err(err(
            "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
                .to_owned(),
        ));
    }
    if let Some(t) = body.get("temperature").and_then(Value::as_f64)
        && !(0.0..=1.0).contains(&t)
    {
        return Err(err(format!(
            "temperature: range: 0 <= temperature <= 1 (got {t})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_reasoning_models() {
        assert!(check_chat(&json!({"model": "m", "seed": i64::MAX})).is_ok());
        let e = check_chat(&json!({"model": "m", "seed": 16514971225805027880u64})).unwrap_err();
        assert_eq!(e["error"]["param"], "seed");
        assert_eq!(e["error"]["code"], "integer_above_max_value");
        assert!(check_chat(&json!({"model": "o3-mini", "max_tokens": 5})).is_err());
        assert!(check_chat(&json!({"model": "gpt-5", "temperature": 0.0})).is_err());
        assert!(check_chat(&json!({"model": "gpt-5", "temperature": 1.0})).is_ok());
        assert!(check_chat(&json!({"model": "gpt-5-chat-latest", "temperature": 0.0})).is_ok());
        assert!(check_chat(&json!({"model": "o4-mini", "logprobs": true})).is_err());
        assert!(
            check_messages(
                &json!({"model": "claude-sonnet-4-5", "temperature": 0.5, "top_p": 0.9}),
                &[]
            )
            .is_err()
        );
        assert!(
            check_messages(
                &json!({"model": "claude-3-5-haiku", "temperature": 0.5, "top_p": 0.9}),
                &[]
            )
            .is_ok()
        );
        assert!(
            check_messages(
                &json!({"model": "claude-x", "temperature": 0.5}),
                &["claude-x".to_owned()]
            )
            .is_err()
        );
    }
}
