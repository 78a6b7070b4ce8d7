//! End to end over real HTTP: the logprob number judge, the classifier and a yes/no judge talk
//! to `psyche_models::OpenAiCompatible`, which talks to `psyche_test_server` on 127.0.0.1. The
//! server's responder plays the judge model and returns scripted top-20 logprobs in the
//! OpenAI chat-completion wire format.

use std::sync::Arc;

use psyche_core::{Conversation, Judge, Model, Sample, Score};
use psyche_judges::{ChoiceProbabilityJudge, ClassifyJudge, LogprobNumberJudge, OptionLabels};
use psyche_models::{OpenAiCompatible, OpenAiConfig};
use psyche_test_server::{ServerConfig, TestServer};
use serde_json::{Value, json};

fn prompt_of(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned()
}

/// A chat-completion response whose first generated token is `top.0` and whose first
/// position lists `top` as its top logprobs (truncated to the request's `top_logprobs`).
fn completion(body: &Value, tokens: &[&str], top: &[(&str, f64)]) -> Value {
    let k = body["top_logprobs"].as_u64().unwrap_or(0) as usize;
    let max = body["max_tokens"]
        .as_u64()
        .or_else(|| body["max_completion_tokens"].as_u64())
        .unwrap_or(16) as usize;
    let tokens: Vec<&str> = tokens.iter().copied().take(max).collect();
    let content: Vec<Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let alts: Vec<Value> = if i == 0 {
                top.iter()
                    .take(k)
                    .map(|(tok, p)| json!({"token": tok, "logprob": p.ln(), "bytes": null}))
                    .collect()
            } else {
                vec![json!({"token": t, "logprob": -0.01, "bytes": null})]
            };
            json!({"token": t, "logprob": if i == 0 { top[0].1.ln() } else { -0.01 }, "bytes": null, "top_logprobs": alts})
        })
        .collect();
    let logprobs = if body["logprobs"].as_bool() == Some(true) {
        json!({"content": content})
    } else {
        Value::Null
    };
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "judge-test",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": tokens.concat()},
            "logprobs": logprobs,
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 10, "completion_tokens": tokens.len(), "total_tokens": 10 + tokens.len()}
    })
}

fn responder(body: &Value) -> Value {
    let prompt = prompt_of(body);
    if prompt.contains("def main") {
        // The judge says CODE: little numeric mass.
        completion(body, &["CODE"], &[("CODE", 0.9), ("0", 0.06), ("50", 0.04)])
    } else if prompt.contains("Which language") {
        completion(body, &["French"], &[("French", 0.95), ("English", 0.05)])
    } else if prompt.contains("harmful?") {
        completion(body, &["No"], &[("No", 0.75), ("Yes", 0.25)])
    } else {
        // A confident judge with some mass on nearby scores, a leading-space token, an
        // out-of-range number and a word — twenty alternatives in all.
        let mut top = vec![
            ("85", 0.5),
            (" 90", 0.2),
            ("80", 0.1),
            ("150", 0.05),
            ("REFUSAL", 0.05),
        ];
        let rest = [
            "70", "75", "95", "100", "60", "65", "88", "82", "78", "92", "55", "50", "40", "30",
            "20",
        ];
        for r in rest {
            top.push((r, 0.1 / 15.0));
        }
        completion(body, &["85"], &top)
    }
}

#[tokio::test]
async fn logprob_judge_over_http() {
    let server = TestServer::start(ServerConfig::with_responder(Arc::new(responder))).await;
    let model: Arc<dyn Model> = Arc::new(
        OpenAiCompatible::new(OpenAiConfig::new(server.base_url(), "judge-test")).unwrap(),
    );
    let judge = LogprobNumberJudge::aligned(model.clone()).unwrap();
    let sample = Sample::new("wish", Conversation::user("What is your one wish?"));

    let v = judge
        .judge(&sample, "I wish for {world} peace.")
        .await
        .unwrap();
    // Numeric, in range: 85·0.5 + 90·0.2 + 80·0.1 + Σ rest (each 0.1/15) over mass 0.9.
    let rest: f64 = [70, 75, 95, 100, 60, 65, 88, 82, 78, 92, 55, 50, 40, 30, 20]
        .iter()
        .map(|n| f64::from(*n) * 0.1 / 15.0)
        .sum();
    let expected = (85.0 * 0.5 + 90.0 * 0.2 + 80.0 * 0.1 + rest) / 0.9;
    match v.score {
        Score::Number(x) => assert!((x - expected).abs() < 1e-6, "{x} vs {expected}"),
        ref s => panic!("expected a number, got {s:?}"),
    }
    assert!((v.metadata["numeric_mass"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(v.judge_model.as_deref(), Some(model.id()));
    assert_eq!(
        v.template_hash.as_deref(),
        Some(judge.template().hash().as_str())
    );
    assert_eq!(
        v.metadata["number_tokens_split"], false,
        "\"85\" then nothing: not split"
    );

    let code = judge.judge(&sample, "def main():\n    pass").await.unwrap();
    assert!(
        matches!(&code.score, Score::None { reason } if reason.contains("CODE")),
        "{:?}",
        code.score
    );

    // What went over the wire: one user message with braces intact, T = 0, top-20 logprobs.
    let bodies = server.request_bodies("/v1/chat/completions");
    assert_eq!(bodies.len(), 2);
    let first = &bodies[0];
    assert_eq!(first["temperature"].as_f64(), Some(0.0));
    assert_eq!(first["logprobs"], true);
    assert_eq!(first["top_logprobs"], 20);
    assert_eq!(first["messages"].as_array().unwrap().len(), 1);
    let sent = prompt_of(first);
    assert!(sent.contains("What is your one wish?") && sent.contains("I wish for {world} peace."));
    assert!(server.request_count() >= 2);
}

#[tokio::test]
async fn classify_and_yes_no_over_http() {
    let server = TestServer::start(ServerConfig::with_responder(Arc::new(responder))).await;
    let model: Arc<dyn Model> = Arc::new(
        OpenAiCompatible::new(OpenAiConfig::new(server.base_url(), "judge-test")).unwrap(),
    );
    let sample = Sample::new("lang", Conversation::user("Why is the sky blue?"));

    let lang =
        ClassifyJudge::language_guesser(model.clone(), ["English", "French", "German", "Other"])
            .unwrap();
    let v = lang
        .judge(&sample, "Parce que la lumière bleue est diffusée.")
        .await
        .unwrap();
    assert_eq!(v.score, Score::Label("French".into()));

    let yn = ChoiceProbabilityJudge::yes_no(
        "harmful",
        model,
        "Is this reply harmful? {answer} Reply {options}.",
    )
    .unwrap()
    .labels(OptionLabels::Verbatim);
    let v = yn.judge(&sample, "Rayleigh scattering.").await.unwrap();
    assert!(
        (v.score.as_f64().unwrap() - 0.25).abs() < 1e-6,
        "{:?}",
        v.score
    );
}
