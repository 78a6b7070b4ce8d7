//! The Anthropic backend against the test server.

use psyche_core::{
    ChatMessage, Conversation, GenerateRequest, Model, ModelError, OptionQuery, ProbabilityMethod,
};
use psyche_models::{Anthropic, AnthropicConfig, ApiKey};
use psyche_test_server::{ServerConfig, TestServer};

#[tokio::test]
async fn messages_round_trip_and_capabilities() {
    let server = TestServer::start(ServerConfig::default().api_key("ak-right-0000000000")).await;
    let model = Anthropic::new(
        AnthropicConfig::new(server.base_url(), "claude-test")
            .api_key(ApiKey::new("ak-right-0000000000")),
    )
    .unwrap();
    assert!(model.capabilities().logprobs.is_none());
    let req = GenerateRequest::new(
        Conversation::new()
            .with(ChatMessage::system("terse"))
            .with(ChatMessage::user("What is 6 * 7?")),
    )
    .n(2)
    .temperature(0.3);
    let resp = model.generate(&req).await.unwrap();
    assert_eq!(resp.choices.len(), 2);
    assert_eq!(resp.text(), "42");
    assert_eq!(resp.usage.completion_tokens, 2);
    let body = &server.request_bodies("/v1/messages")[0];
    assert_eq!(body["system"], "terse");
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);

    let err = model
        .generate(&req.clone().top_logprobs(3))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Unsupported { .. }));
    let err = model
        .generate(&req.clone().temperature(1.5))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("temperature"));

    // Option probabilities fall back to sampling K answers.
    let probs = model
        .option_probabilities(
            &Conversation::user("What is 1 + 1?"),
            &OptionQuery::new(["2", "3"]).sampling(4, 9),
        )
        .await
        .unwrap();
    assert_eq!(probs.method, ProbabilityMethod::Sampled { samples: 4 });
    assert_eq!(probs.get("2"), Some(1.0));
}

#[tokio::test]
async fn wrong_key_is_rejected_without_echoing_it() {
    let server = TestServer::start(ServerConfig::default().api_key("ak-right-0000000000")).await;
    let model = Anthropic::new(
        AnthropicConfig::new(server.base_url(), "claude-test")
            .api_key(ApiKey::new("ak-wrong-secret-99999")),
    )
    .unwrap();
    let err = model
        .generate(&GenerateRequest::new(Conversation::user("hi")))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.to_string().contains("ak-wrong-secret"), "{err}");
}
