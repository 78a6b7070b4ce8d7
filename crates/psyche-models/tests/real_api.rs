//! Issue 29: requests the real services would reject, against psyche-test-server's strict
//! checks (seed range, per-model sampling parameters, reasoning budgets), Anthropic `n > 1`
//! as one permit and one retry per sample, idempotent batches and every batch end state,
//! redacted cache settings, and credentials dropped on a redirect to another origin.

mod common;

use std::time::Duration;

use psyche_core::{Conversation, GenerateRequest, Model, ModelError};
use psyche_models::{
    Anthropic, AnthropicBatch, AnthropicConfig, ApiKey, BatchConfig, BatchItem, BatchProvider,
    BatchRunner, Cache, CacheConfig, ConcurrencyLimit, MaxTokensField, ModelParams, ModelTable,
    OpenAiBatch, OpenAiCompatible, OpenAiConfig, Retry, wire_seed,
};
use psyche_test_server::{BatchEnd, Fault, ServerConfig, TestServer};
use serde_json::json;

/// A seed as the runner derives them: above `i64::MAX` (from a quickstart record).
const BIG_SEED: u64 = 16_514_971_225_805_027_880;

fn ask(i: usize) -> GenerateRequest {
    GenerateRequest::new(Conversation::user(format!("What is {i} + 5?"))).max_tokens(8)
}

fn fast(state: &std::path::Path) -> BatchConfig {
    BatchConfig::new(state).poll_interval(Duration::from_millis(20))
}

#[tokio::test]
async fn seeds_above_the_signed_range_are_sent_in_range() {
    let server = TestServer::start(ServerConfig::default()).await;
    let model = common::backend(&server);
    let resp = model.generate(&ask(1).seed(BIG_SEED)).await.unwrap();
    assert_eq!(resp.text(), "6");
    let sent = &server.request_bodies("/v1/chat/completions")[0]["seed"];
    assert_eq!(sent.as_i64(), Some(wire_seed(BIG_SEED)));
    assert_eq!(wire_seed(BIG_SEED), (BIG_SEED - (1 << 63)) as i64);
    // Seeds in range are unchanged.
    model.generate(&ask(1).seed(12345)).await.unwrap();
    assert_eq!(
        server.request_bodies("/v1/chat/completions")[1]["seed"],
        12345
    );

    // Batches build their lines the same way: no line fails on its seed.
    let dir = tempfile::tempdir().unwrap();
    let runner = BatchRunner::new(
        OpenAiBatch::new(OpenAiConfig::new(server.base_url(), "test-model")).unwrap(),
        fast(&dir.path().join("b.json")),
    );
    let items: Vec<BatchItem> = (0..4)
        .map(|i| BatchItem::new(format!("s{i}"), ask(i).seed(BIG_SEED + i as u64)))
        .collect();
    let out = runner.run(&items).await.unwrap();
    assert_eq!(out.failed(), 0, "{:?}", out.results);
}

#[tokio::test]
async fn reasoning_models_get_no_sampling_parameters_and_room_to_answer() {
    let server = TestServer::start(ServerConfig::default()).await;
    // Even configured with `max_tokens` (as for vLLM), a reasoning model gets
    // `max_completion_tokens` with the reasoning allowance on top.
    let model = OpenAiCompatible::new(
        OpenAiConfig::new(server.base_url(), "o3-mini")
            .max_tokens_field(MaxTokensField::MaxTokens)
            .reasoning_tokens(1000),
    )
    .unwrap();
    let resp = model.generate(&ask(2)).await.unwrap();
    assert_eq!(resp.text(), "7");
    let body = &server.request_bodies("/v1/chat/completions")[0];
    assert_eq!(body["max_completion_tokens"], 1008, "{body}");
    for f in ["max_tokens", "temperature", "top_p", "logprobs"] {
        assert!(body.get(f).is_none(), "{f} sent: {body}");
    }
    assert!(model.capabilities().logprobs.is_none());

    // What the model cannot do fails before anything is sent, naming model and parameter.
    let before = server.request_count();
    let err = model.generate(&ask(2).temperature(0.0)).await.unwrap_err();
    assert!(matches!(err, ModelError::InvalidRequest(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("o3-mini") && msg.contains("temperature"),
        "{msg}"
    );
    let gpt5 = OpenAiCompatible::new(OpenAiConfig::openai("gpt-5-mini").api_key(ApiKey::new("k")))
        .unwrap();
    let err = gpt5.chat_body(&ask(2).top_logprobs(5)).unwrap_err();
    assert!(err.to_string().contains("gpt-5-mini"), "{err}");
    assert_eq!(server.request_count(), before);

    // The table is the user's to extend.
    let custom = OpenAiCompatible::new(
        OpenAiConfig::new(server.base_url(), "my-thinker")
            .models(ModelTable::openai_defaults().with("my-thinker", ModelParams::reasoning())),
    )
    .unwrap();
    let body = custom.chat_body(&ask(1)).unwrap();
    assert!(body.get("temperature").is_none() && body.get("max_tokens").is_none());
    // A standard model still gets everything.
    let body = common::backend(&server)
        .chat_body(&ask(1).temperature(0.2))
        .unwrap();
    assert_eq!(body["max_tokens"], 8);
    assert!(body.get("temperature").is_some() && body.get("top_p").is_some());
}

#[tokio::test]
async fn newer_claude_models_get_temperature_or_top_p_not_both() {
    let server = TestServer::start(ServerConfig::default()).await;
    let model =
        Anthropic::new(AnthropicConfig::new(server.base_url(), "claude-sonnet-4-5")).unwrap();
    // top_p alone: sent without a temperature.
    let resp = model.generate(&ask(3).top_p(0.9)).await.unwrap();
    assert_eq!(resp.text(), "8");
    let body = &server.request_bodies("/v1/messages")[0];
    assert_eq!(
        body["top_p"].as_f64().map(|p| (p * 10.0).round()),
        Some(9.0)
    );
    assert!(body.get("temperature").is_none(), "{body}");
    // temperature alone.
    model.generate(&ask(3).temperature(0.0)).await.unwrap();
    let body = &server.request_bodies("/v1/messages")[1];
    assert_eq!(body["temperature"], 0.0);
    assert!(body.get("top_p").is_none(), "{body}");
    // Both: refused before sending.
    let before = server.request_count();
    let err = model
        .generate(&ask(3).temperature(0.5).top_p(0.9))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("claude-sonnet-4-5"), "{err}");
    assert_eq!(server.request_count(), before);
    // A model the user marks as refusing temperature.
    let server = TestServer::start(ServerConfig {
        no_temperature_models: vec!["claude-next".into()],
        ..ServerConfig::default()
    })
    .await;
    let no_t = ModelParams {
        temperature: false,
        logprobs: false,
        ..ModelParams::standard()
    };
    let model = Anthropic::new(
        AnthropicConfig::new(server.base_url(), "claude-next-1")
            .models(ModelTable::anthropic_defaults().with("claude-next", no_t)),
    )
    .unwrap();
    model.generate(&ask(1)).await.unwrap();
    assert!(
        model
            .generate(&ask(1).temperature(0.0))
            .await
            .unwrap_err()
            .to_string()
            .contains("temperature")
    );
}

#[tokio::test]
async fn anthropic_samples_take_one_permit_each_and_retry_alone() {
    let server = TestServer::start(
        ServerConfig::default()
            .latency(Duration::from_millis(40))
            .scripted_faults([Fault::RateLimit]),
    )
    .await;
    let backend = Anthropic::new(AnthropicConfig::new(server.base_url(), "claude-test")).unwrap();
    let limited = ConcurrencyLimit::fixed(backend, 1).unwrap();
    let model = Retry::new(limited, common::fast_retry(1)).unwrap();
    let resp = model.generate(&ask(4).n(3)).await.unwrap();
    assert_eq!(resp.choices.len(), 3);
    assert!(resp.choices.iter().all(|c| c.text == "9"));
    // One 429 repeated one sample, not all three.
    assert_eq!(server.count_for("POST", "/v1/messages"), 4);
    // One permit: never more than one call in flight.
    assert_eq!(server.max_in_flight(), 1);
}

#[tokio::test]
async fn an_openai_batch_whose_creation_answer_was_lost_is_adopted() {
    let server = TestServer::start(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let provider = OpenAiBatch::new(OpenAiConfig::new(server.base_url(), "test-model")).unwrap();
    let runner = BatchRunner::new(provider.clone(), fast(&dir.path().join("b.json")));
    let items: Vec<BatchItem> = (0..3)
        .map(|i| BatchItem::new(format!("q{i}"), ask(i)))
        .collect();
    // A first process submitted the batch but died before recording it.
    let lines = provider.lines(&items).unwrap();
    let input_hash = runner.input_hash(&lines);
    let lost = provider.submit(&lines, &input_hash).await.unwrap();
    // Batches of other inputs are passed over.
    for _ in 0..3 {
        provider.submit(&lines[..1], "other").await.unwrap();
    }
    let out = runner.run(&items).await.unwrap();
    assert_eq!(out.batch_id, lost);
    assert!(out.resumed);
    assert_eq!(out.failed(), 0);
    assert_eq!(server.count_for("POST", "/v1/batches"), 4);
}

#[tokio::test]
async fn expired_and_cancelled_batches_keep_what_finished_and_are_not_reused() {
    let server =
        TestServer::start(ServerConfig::default().batch_end(BatchEnd::Expired { processed: 2 }))
            .await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("b.json");
    let provider = OpenAiBatch::new(OpenAiConfig::new(server.base_url(), "test-model")).unwrap();
    let runner = BatchRunner::new(provider, fast(&state));
    let items: Vec<BatchItem> = (0..5)
        .map(|i| BatchItem::new(format!("q{i}"), ask(i)))
        .collect();
    let out = runner.run(&items).await.unwrap();
    assert_eq!(out.failed(), 3);
    assert_eq!(out.results["q0"].as_ref().unwrap().text(), "5");
    let lapsed = out.results["q4"].as_ref().unwrap_err();
    assert!(lapsed.message.contains("completion window"), "{lapsed}");
    // Forget every local record: the provider's expired batch is not adopted.
    std::fs::remove_dir_all(dir.path()).unwrap();
    let again = runner.run(&items).await.unwrap();
    assert!(!again.resumed);
    assert_ne!(again.batch_id, out.batch_id);

    // Anthropic: canceled results for what was not processed.
    let server =
        TestServer::start(ServerConfig::default().batch_end(BatchEnd::Cancelled { processed: 1 }))
            .await;
    let dir = tempfile::tempdir().unwrap();
    let runner = BatchRunner::new(
        AnthropicBatch::new(AnthropicConfig::new(server.base_url(), "claude-test")).unwrap(),
        fast(&dir.path().join("b.json")),
    );
    let out = runner.run(&items[..3]).await.unwrap();
    assert_eq!(out.failed(), 2);
    assert_eq!(out.results["q0"].as_ref().unwrap().text(), "5");
    assert!(
        out.results["q2"]
            .as_ref()
            .unwrap_err()
            .message
            .contains("canceled")
    );
}

#[tokio::test]
async fn an_anthropic_batch_is_found_in_the_local_ledger() {
    let server = TestServer::start(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("b.json");
    let runner = BatchRunner::new(
        AnthropicBatch::new(AnthropicConfig::new(server.base_url(), "claude-test")).unwrap(),
        fast(&state),
    );
    let items: Vec<BatchItem> = (0..3)
        .map(|i| BatchItem::new(format!("q{i}"), ask(i)))
        .collect();
    let first = runner.run(&items).await.unwrap();
    // The state file is lost (deleted, or overwritten by another run): the ledger remembers.
    std::fs::remove_file(&state).unwrap();
    let again = runner.run(&items).await.unwrap();
    assert!(again.resumed);
    assert_eq!(again.batch_id, first.batch_id);
    assert_eq!(server.count_for("POST", "/v1/messages/batches"), 1);
}

#[tokio::test]
async fn cache_entries_hold_no_credentials_from_settings() {
    let server = TestServer::start(ServerConfig::default()).await;
    let base = server
        .base_url()
        .replace("http://", "http://psyche:url-password-777@");
    let model = OpenAiCompatible::new(
        OpenAiConfig::new(format!("{base}?api-key=query-secret-888"), "test-model")
            .api_key(ApiKey::new("sk-config-key-0000999"))
            .extra_body("api_key", json!("body-secret-999"))
            .extra_body("note", json!("sk-config-key-0000999")),
    )
    .unwrap();
    // Query-string credentials (some gateways take the key there) are redacted in `info()`.
    let info = serde_json::to_string(&model.info()).unwrap();
    // The cached model: credentials in the URL's user-info and in the body.
    let model = OpenAiCompatible::new(
        OpenAiConfig::new(base, "test-model")
            .api_key(ApiKey::new("sk-config-key-0000999"))
            .extra_body("api_key", json!("body-secret-999"))
            .extra_body("note", json!("sk-config-key-0000999")),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(model, CacheConfig::new(dir.path())).unwrap();
    let req = GenerateRequest::new(Conversation::user("hello"));
    cache.generate(&req).await.unwrap();
    cache.generate(&req).await.unwrap();
    assert_eq!(cache.stats().hits, 1);
    let mut stored = info;
    for entry in walk(dir.path()) {
        stored.push_str(&std::fs::read_to_string(entry).unwrap());
    }
    for secret in [
        "url-password-777",
        "query-secret-888",
        "body-secret-999",
        "sk-config-key-0000999",
    ] {
        assert!(!stored.contains(secret), "{secret} stored");
    }
    assert!(
        stored.contains("127.0.0.1"),
        "the rest of the settings is kept"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn keys_are_dropped_on_a_redirect_to_another_origin() {
    // Same host (127.0.0.1), another port: another origin.
    let target = TestServer::start(ServerConfig::default().api_key("ak-target-key-123456")).await;
    let redirector =
        TestServer::start(ServerConfig::default().redirect_to(format!("http://{}", target.addr())))
            .await;
    let anthropic = Anthropic::new(
        AnthropicConfig::new(redirector.base_url(), "claude-test")
            .api_key(ApiKey::new("ak-target-key-123456")),
    )
    .unwrap();
    let err = anthropic.generate(&ask(1)).await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    let openai = OpenAiCompatible::new(
        OpenAiConfig::new(redirector.base_url(), "test-model")
            .api_key(ApiKey::new("ak-target-key-123456")),
    )
    .unwrap();
    assert_eq!(
        openai.generate(&ask(1)).await.unwrap_err().status(),
        Some(401)
    );
    // The redirector saw the keys; the other origin never did.
    assert!(redirector.credentials_seen().iter().all(Option::is_some));
    assert_eq!(target.credentials_seen(), vec![None, None]);
}
