//! Deterministic answers for chat-completion requests.

use std::sync::Arc;

use serde_json::{Value, json};

/// Maps the raw JSON body of a `/v1/chat/completions` request to the full chat-completion
/// response JSON.
pub type ReplyFn = Arc<dyn Fn(&Value) -> Value + Send + Sync>;

/// The default answer to a user text: the result of the first `a <op> b` integer expression
/// (`+`, `-`, `*`, `/` with integer division) if there is one, else `"echo: <text>"`.
///
/// ```
/// assert_eq!(psyche_test_server::default_answer("What is 12 + 30?"), "42");
/// assert_eq!(psyche_test_server::default_answer("hello"), "echo: hello");
/// ```
pub fn default_answer(text: &str) -> String {
    arithmetic(text).map_or_else(|| format!("echo: {text}"), |v| v.to_string())
}

fn arithmetic(text: &str) -> Option<i64> {
    let words: Vec<&str> = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| c == '?' || c == '.' || c == ',' || c == '!'))
        .collect();
    words.windows(3).find_map(|w| {
        let a: i64 = w[0].parse().ok()?;
        let b: i64 = w[2].parse().ok()?;
        match w[1] {
            "+" => a.checked_add(b),
            "-" => a.checked_sub(b),
            "*" | "x" | "×" => a.checked_mul(b),
            "/" if b != 0 => Some(a / b),
            _ => None,
        }
    })
}

/// Splits text into tokens the way the default responder counts them: each token is a word
/// with its leading whitespace (`"echo: hi there"` → `["echo:", " hi", " there"]`).
pub fn answer_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if in_word {
                tokens.push(std::mem::take(&mut cur));
                in_word = false;
            }
            cur.push(c);
        } else {
            in_word = true;
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    tokens
}

/// The logprob the default responder gives a token at position `i`: `-0.1 * (i + 1)`, and its
/// `j`-th alternative (`j ≥ 1`, token `"<alt{j}>"`): `-(j + 1)`.
pub fn token_logprob(i: usize, j: usize) -> f64 {
    if j == 0 {
        -0.1 * (i as f64 + 1.0)
    } else {
        -(j as f64 + 1.0)
    }
}

fn last_user_text(body: &Value) -> String {
    body.get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .and_then(|m| m.get("content"))
        .map(|c| match c {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        })
        .unwrap_or_default()
}

fn prompt_tokens(body: &Value) -> usize {
    body.get("messages")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|m| m.get("content").and_then(Value::as_str))
                .map(|c| answer_tokens(c).len())
                .sum()
        })
        .unwrap_or(0)
}

/// The default responder: answers [`default_answer`] of the last user message for every one of
/// `n` choices, honours `max_tokens` (finish reason `length`) and `stop`, and returns
/// `logprobs.content` with [`token_logprob`] values when `logprobs` is true (with `top_logprobs`
/// alternatives, the chosen token first). A request without `messages` gets an error object.
pub fn default_responder() -> ReplyFn {
    Arc::new(|body: &Value| {
        if body.get("messages").and_then(Value::as_array).is_none() {
            return json!({"error": {"message": "field `messages` is required", "type": "invalid_request_error"}});
        }
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("test-model");
        let n = body.get("n").and_then(Value::as_u64).unwrap_or(1).max(1);
        let mut text = default_answer(&last_user_text(body));
        let mut finish = "stop";
        if let Some(stops) = body.get("stop") {
            let stops: Vec<&str> = match stops {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            for s in stops {
                if let Some(pos) = text.find(s) {
                    text.truncate(pos);
                }
            }
        }
        let mut tokens = answer_tokens(&text);
        let max = body
            .get("max_tokens")
            .or_else(|| body.get("max_completion_tokens"))
            .and_then(Value::as_u64);
        if let Some(max) = max
            && tokens.len() as u64 > max
        {
            tokens.truncate(max as usize);
            text = tokens.concat();
            finish = "length";
        }
        let want_logprobs = body.get("logprobs").and_then(Value::as_bool) == Some(true);
        let k = body
            .get("top_logprobs")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        let logprobs = want_logprobs.then(|| {
            let content: Vec<Value> = tokens
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let mut top = Vec::new();
                    for j in 0..k {
                        let tok = if j == 0 { t.clone() } else { format!("<alt{j}>") };
                        top.push(json!({"token": tok, "logprob": token_logprob(i, j), "bytes": tok.as_bytes()}));
                    }
                    json!({"token": t, "logprob": token_logprob(i, 0), "bytes": t.as_bytes(), "top_logprobs": top})
                })
                .collect();
            json!({"content": content})
        });
        let choices: Vec<Value> = (0..n)
            .map(|i| {
                json!({
                    "index": i,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                    "logprobs": logprobs.clone(),
                })
            })
            .collect();
        json!({
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens(body),
                "completion_tokens": tokens.len() as u64 * n,
                "total_tokens": prompt_tokens(body) as u64 + tokens.len() as u64 * n,
            },
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_echo() {
        assert_eq!(default_answer("What is 7 * 6?"), "42");
        assert_eq!(default_answer("compute 10 / 3 please"), "3");
        assert_eq!(default_answer("no maths here"), "echo: no maths here");
    }

    #[test]
    fn tokens_keep_leading_space() {
        assert_eq!(
            answer_tokens("echo: hi  there"),
            vec!["echo:", " hi", "  there"]
        );
        assert_eq!(answer_tokens("42").concat(), "42");
    }

    #[test]
    fn responder_honours_max_tokens_and_logprobs() {
        let r = default_responder();
        let out = r(
            &json!({"messages": [{"role": "user", "content": "a b c d"}], "max_tokens": 2, "logprobs": true, "top_logprobs": 3, "n": 2}),
        );
        assert_eq!(out["choices"][1]["message"]["content"], "echo: a");
        assert_eq!(out["choices"][0]["finish_reason"], "length");
        assert_eq!(
            out["choices"][0]["logprobs"]["content"][1]["top_logprobs"][2]["token"],
            "<alt2>"
        );
        let err = r(&json!({"model": "m"}));
        assert!(err.get("error").is_some());
    }
}
