//! The OpenAI-compatible backend against the local test server.

mod common;

use std::sync::Arc;

use psyche_core::{
    ChatMessage, Conversation, FinishReason, GenerateRequest, Model, ModelError, OptionQuery,
    ProbabilityMethod,
};
use psyche_models::{ApiKey, OpenAiCompatible, OpenAiConfig, PromptFormat};
use psyche_test_server::{
    ServerConfig, TestServer, answer_tokens, completion_token_logprob, token_logprob,
};
use serde_json::json;

#[tokio::test]
async fn generate_answers_and_sends_all_parameters() {
    let server = TestServer::start(ServerConfig::default()).await;
    let model = OpenAiCompatible::new(
        OpenAiConfig::new(server.base_url(), "test-model")
            .extra_body("repetition_penalty", json!(1.1))
            .header("x-trace", "abc"),
    )
    .unwrap();
    let req = GenerateRequest::new(
        Conversation::new()
            .with(ChatMessage::system("be brief"))
            .with(ChatMessage::user("What is 20 + 22?")),
    )
    .temperature(0.5)
    .top_p(0.9)
    .seed(7)
    .n(3)
    .stop("\n")
    .max_tokens(10);
    let resp = model.generate(&req).await.unwrap();
    assert_eq!(resp.choices.len(), 3);
    assert!(resp.choices.iter().all(|c| c.text == "42"));
    assert_eq!(resp.choices[0].finish_reason, FinishReason::Stop);
    assert_eq!(resp.usage.completion_tokens, 3);
    let body = &server.request_bodies("/v1/chat/completions")[0];
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["seed"], 7);
    assert_eq!(body["n"], 3);
    assert_eq!(body["stop"], json!(["\n"]));
    assert_eq!(body["max_tokens"], 10);
    assert_eq!(body["repetition_penalty"], 1.1);
    assert_eq!(body["messages"][0]["role"], "system");
    assert!(body.get("logprobs").is_none());
}

#[tokio::test]
async fn logprobs_and_top_logprobs_round_trip() {
    let server = TestServer::start(ServerConfig::default()).await;
    let model = common::backend(&server);
    let req = GenerateRequest::new(Conversation::user("alpha beta")).top_logprobs(5);
    let resp = model.generate(&req).await.unwrap();
    let lps = resp.choices[0].logprobs.as_ref().unwrap();
    // "echo: alpha beta" → tokens "echo:", " alpha", " beta"
    assert_eq!(lps.len(), 3);
    assert_eq!(lps[1].token, " alpha");
    assert_eq!(lps[1].bytes.as_deref(), Some(" alpha".as_bytes()));
    assert!((lps[1].logprob - token_logprob(1, 0)).abs() < 1e-12);
    assert_eq!(lps[2].top_logprobs.len(), 5);
    assert_eq!(lps[2].top_logprobs[0].token, " beta");
    assert_eq!(lps[2].top_logprobs[4].token, "<alt4>");
    assert!((lps[2].top_logprobs[4].logprob - token_logprob(2, 4)).abs() < 1e-12);
    let body = &server.request_bodies("/v1/chat/completions")[0];
    assert_eq!(body["logprobs"], true);
    assert_eq!(body["top_logprobs"], 5);

    // The provided next-token distribution reads the same numbers.
    let dist = model
        .next_token_distribution(&Conversation::user("What is 1 + 1?"), 3)
        .await
        .unwrap();
    assert!(!dist.complete);
    assert_eq!(dist.tokens.len(), 3);
    assert_eq!(dist.tokens[0].token, "2");
    assert!((dist.tokens[0].logprob - token_logprob(0, 0)).abs() < 1e-12);
}

#[tokio::test]
async fn scripted_top_logprobs_give_option_probabilities() {
    let responder = Arc::new(|_: &serde_json::Value| {
        json!({
            "model": "scripted",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Yes"}, "finish_reason": "length",
              "logprobs": {"content": [{"token": "Yes", "logprob": -0.2231435513, "top_logprobs": [
                {"token": "Yes", "logprob": -0.2231435513}, {"token": " No", "logprob": -1.6094379124}, {"token": "Maybe", "logprob": -4.0}]}]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1}
        })
    });
    let server = TestServer::start(ServerConfig::with_responder(responder)).await;
    let model = common::backend(&server);
    let probs = model
        .option_probabilities(&Conversation::user("?"), &OptionQuery::new(["Yes", "No"]))
        .await
        .unwrap();
    assert_eq!(
        probs.method,
        ProbabilityMethod::FirstToken { complete: false }
    );
    assert!((probs.mass - 1.0).abs() < 1e-6, "mass {}", probs.mass);
    assert!((probs.get("Yes").unwrap() - 0.8).abs() < 1e-6);
    assert!((probs.get("No").unwrap() - 0.2).abs() < 1e-6);
}

#[tokio::test]
async fn multi_token_options_are_scored_as_complete_answers_or_refused_never_zero() {
    let server = TestServer::start(ServerConfig::default()).await;
    let conv = Conversation::user("Which capital?");
    let options = ["Paris, France", "Berlin, Germany"];
    // With continuation scoring in ChatML, each answer form is scored up to `<|im_end|>`.
    let scoring = OpenAiCompatible::new(
        OpenAiConfig::new(server.base_url(), "test-model").loglikelihood(PromptFormat::ChatMl),
    )
    .unwrap();
    let p = scoring
        .option_probabilities(&conv, &OptionQuery::new(options))
        .await
        .unwrap();
    assert_eq!(p.method, ProbabilityMethod::CompleteAnswer);
    // The test server splits on whitespace and scores -0.1 per non-space character - 0.05.
    let complete = |s: String| -> f64 {
        answer_tokens(&format!("{s}<|im_end|>"))
            .iter()
            .map(|t| completion_token_logprob(t))
            .sum::<f64>()
            .exp()
    };
    let mass =
        |o: &str| complete(o.into()) + complete(format!("({o})")) + complete(format!("{o})"));
    let (a, b) = (mass(options[0]), mass(options[1]));
    assert!((p.mass - (a + b)).abs() < 1e-12, "{p:?}");
    assert!((p.probabilities[0] - a / (a + b)).abs() < 1e-12, "{p:?}");
    let prompts: Vec<String> = server
        .request_bodies("/v1/completions")
        .iter()
        .map(|b| b["prompt"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        prompts
            .iter()
            .any(|p| p.ends_with("<|im_start|>assistant\n(Paris, France)<|im_end|>"))
    );

    // With first-token logprobs only, the same query is an error naming the option.
    let err = common::backend(&server)
        .option_probabilities(&conv, &OptionQuery::new(options))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::InvalidRequest(_)), "{err}");
    assert!(err.to_string().contains("`Paris, France`"), "{err}");
}

#[tokio::test]
async fn wrong_key_fails_fast_without_leaking_it() {
    let secret = "sk-test-super-secret-0123456789";
    let server =
        TestServer::start(ServerConfig::default().api_key("sk-right-key-000000000000")).await;
    let model = psyche_models::Retry::new(
        OpenAiCompatible::new(
            OpenAiConfig::new(server.base_url(), "test-model").api_key(ApiKey::new(secret)),
        )
        .unwrap(),
        common::fast_retry(1),
    )
    .unwrap();
    let err = model
        .generate(&GenerateRequest::new(Conversation::user("hi")))
        .await
        .unwrap_err();
    assert_eq!(server.request_count(), 1, "401 must not be retried");
    assert_eq!(err.status(), Some(401));
    let text = format!("{err} {err:?}");
    assert!(text.contains("Incorrect API key"), "{text}");
    assert!(!text.contains("sk-test-super"), "key leaked: {text}");
    assert!(!format!("{model:?}").contains("sk-test-super"));

    // The right key works.
    let ok = OpenAiCompatible::new(
        OpenAiConfig::new(server.base_url(), "test-model")
            .api_key(ApiKey::new("sk-right-key-000000000000")),
    )
    .unwrap();
    assert_eq!(
        ok.generate(&GenerateRequest::new(Conversation::user("3 * 3")))
            .await
            .unwrap()
            .text(),
        "9"
    );
}

#[tokio::test]
async fn missing_key_variable_is_a_config_error() {
    let err = OpenAiCompatible::new(
        OpenAiConfig::new("http://127.0.0.1:1/v1", "m").api_key_env("PSYCHE_TEST_SURELY_UNSET_KEY"),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("PSYCHE_TEST_SURELY_UNSET_KEY"),
        "{err}"
    );
    let err = OpenAiCompatible::new(OpenAiConfig::new("not a url", "m")).unwrap_err();
    assert!(err.to_string().contains("base_url"), "{err}");
}

#[tokio::test]
async fn bad_requests_fail_before_sending() {
    let server = TestServer::start(ServerConfig::default()).await;
    let model = common::backend(&server);
    let err = model
        .generate(&GenerateRequest::new(Conversation::user("x")).top_logprobs(21))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ModelError::InvalidRequest(ref m) if m.contains("top_logprobs")),
        "{err}"
    );
    let err = model
        .generate(&GenerateRequest::new(Conversation::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::InvalidRequest(_)));
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn server_errors_carry_status_and_message() {
    let responder = Arc::new(
        |_: &serde_json::Value| json!({"status": 404, "error": {"message": "The model `nope` does not exist", "code": "model_not_found"}}),
    );
    let server = TestServer::start(ServerConfig::with_responder(responder)).await;
    let model = common::backend(&server);
    let err = model
        .generate(&GenerateRequest::new(Conversation::user("x")))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn unreachable_server_is_a_connection_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let model = OpenAiCompatible::new(OpenAiConfig::new(
        format!("http://127.0.0.1:{port}/v1"),
        "m",
    ))
    .unwrap();
    let err = model
        .generate(&GenerateRequest::new(Conversation::user("x")))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Connection(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn loglikelihood_through_completions_echo() {
    let server = TestServer::start(ServerConfig::default()).await;
    let model = OpenAiCompatible::new(
        OpenAiConfig::new(server.base_url(), "test-model").loglikelihood(PromptFormat::Plain),
    )
    .unwrap();
    assert!(model.capabilities().loglikelihood);
    let ctx = Conversation::user("The sky is");
    let ll = model.loglikelihood(&ctx, " very blue").await.unwrap();
    let expected = completion_token_logprob(" very") + completion_token_logprob(" blue");
    assert_eq!(ll.token_logprobs.len(), 2);
    assert!(
        (ll.logprob - expected).abs() < 1e-9,
        "{} vs {expected}",
        ll.logprob
    );
    assert!(ll.is_greedy);
    let body = &server.request_bodies("/v1/completions")[0];
    assert_eq!(body["echo"], true);
    assert_eq!(body["prompt"], "The sky is\n\n very blue");

    // Without the option the capability is absent and the call is refused.
    let plain = common::backend(&server);
    assert!(matches!(
        plain.loglikelihood(&ctx, "x").await,
        Err(ModelError::Unsupported { .. })
    ));
}
