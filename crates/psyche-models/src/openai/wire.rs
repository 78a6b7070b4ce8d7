//! Parsing OpenAI wire answers into psyche-core types.

use psyche_core::{
    Choice, FinishReason, GenerateResponse, LogLikelihood, ModelError, TokenLogprob, TopLogprob,
    Usage,
};
use serde_json::Value;

fn invalid(msg: impl Into<String>) -> ModelError {
    ModelError::InvalidResponse(msg.into())
}

pub(crate) fn finish_reason(v: &Value) -> FinishReason {
    match v.as_str() {
        Some("stop") | Some("end_turn") | Some("stop_sequence") | None => FinishReason::Stop,
        Some("length") | Some("max_tokens") => FinishReason::Length,
        Some("content_filter") => FinishReason::ContentFilter,
        Some(other) => FinishReason::Other(other.to_owned()),
    }
}

fn bytes_of(v: &Value) -> Option<Vec<u8>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(Value::as_u64)
            .map(|b| b.min(255) as u8)
            .collect()
    })
}

fn token_logprobs(content: &Value, choice: usize) -> Result<Option<Vec<TokenLogprob>>, ModelError> {
    let Some(items) = content.as_array() else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = |f: &str| format!("choices[{choice}].logprobs.content[{i}].{f}");
        let token = item["token"]
            .as_str()
            .ok_or_else(|| invalid(format!("field `{}` is missing", field("token"))))?;
        let logprob = item["logprob"]
            .as_f64()
            .ok_or_else(|| invalid(format!("field `{}` is missing", field("logprob"))))?;
        let mut top = Vec::new();
        for (j, t) in item["top_logprobs"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            match (t["token"].as_str(), t["logprob"].as_f64()) {
                (Some(tok), Some(lp)) => top.push(TopLogprob::new(tok, lp)),
                _ => {
                    return Err(invalid(format!(
                        "field `{}` needs `token` and `logprob`",
                        field(&format!("top_logprobs[{j}]"))
                    )));
                }
            }
        }
        top.sort_by(|a, b| b.logprob.total_cmp(&a.logprob));
        out.push(TokenLogprob {
            token: token.to_owned(),
            logprob,
            bytes: bytes_of(&item["bytes"]),
            top_logprobs: top,
        });
    }
    Ok(Some(out))
}

/// Parses a chat-completion answer.
pub(crate) fn parse_chat_completion(
    v: &Value,
    model: &str,
) -> Result<GenerateResponse, ModelError> {
    let choices = v["choices"]
        .as_array()
        .ok_or_else(|| invalid("chat completion has no `choices` array"))?;
    if choices.is_empty() {
        return Err(invalid("chat completion has an empty `choices` array"));
    }
    let mut indexed = Vec::with_capacity(choices.len());
    for (pos, c) in choices.iter().enumerate() {
        let index = c["index"].as_u64().unwrap_or(pos as u64);
        let text = match &c["message"]["content"] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => {
                return Err(invalid(format!(
                    "field `choices[{pos}].message.content` is not a string: {other}"
                )));
            }
        };
        let logprobs = token_logprobs(&c["logprobs"]["content"], pos)?;
        indexed.push((
            index,
            Choice {
                text,
                finish_reason: finish_reason(&c["finish_reason"]),
                logprobs,
            },
        ));
    }
    indexed.sort_by_key(|(i, _)| *i);
    let usage = Usage {
        prompt_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
        completion_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
    };
    Ok(GenerateResponse {
        model: v["model"].as_str().unwrap_or(model).to_owned(),
        choices: indexed.into_iter().map(|(_, c)| c).collect(),
        usage,
    })
}

/// Sums the logprobs of the echoed prompt tokens that overlap characters `[start, end)`.
pub(crate) fn continuation_loglikelihood(
    v: &Value,
    start: usize,
    end: usize,
) -> Result<LogLikelihood, ModelError> {
    let lp = &v["choices"][0]["logprobs"];
    let tokens = lp["tokens"]
        .as_array()
        .ok_or_else(|| invalid("completion has no `choices[0].logprobs.tokens` (does the server support echo + logprobs?)"))?;
    let token_lps = lp["token_logprobs"]
        .as_array()
        .ok_or_else(|| invalid("completion has no `choices[0].logprobs.token_logprobs`"))?;
    let offsets = lp["text_offset"]
        .as_array()
        .ok_or_else(|| invalid("completion has no `choices[0].logprobs.text_offset`"))?;
    let tops = lp["top_logprobs"].as_array();
    let mut out = LogLikelihood {
        logprob: 0.0,
        is_greedy: true,
        token_logprobs: Vec::new(),
    };
    for (i, tok) in tokens.iter().enumerate() {
        let tok = tok.as_str().unwrap_or("");
        let Some(off) = offsets.get(i).and_then(Value::as_u64) else {
            return Err(invalid(format!("field `text_offset[{i}]` is missing")));
        };
        let off = off as usize;
        let tok_end = off + tok.chars().count();
        if tok_end <= start || off >= end {
            continue;
        }
        let lp = token_lps
            .get(i)
            .and_then(Value::as_f64)
            .ok_or_else(|| invalid(format!("field `token_logprobs[{i}]` is missing")))?;
        out.logprob += lp;
        out.token_logprobs.push(lp);
        if let Some(top) = tops.and_then(|t| t.get(i)).and_then(Value::as_object) {
            let best = top
                .iter()
                .filter_map(|(k, v)| v.as_f64().map(|v| (k, v)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((best_tok, best_lp)) = best
                && best_tok != tok
                && best_lp > lp
            {
                out.is_greedy = false;
            }
        }
    }
    if out.token_logprobs.is_empty() {
        return Err(invalid(
            "the echoed tokens do not cover the continuation (server did not echo the prompt?)",
        ));
    }
    Ok(out)
}
