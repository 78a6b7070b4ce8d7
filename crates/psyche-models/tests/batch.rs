//! Batch APIs end to end against the test server, including resume after a dropped client.

use std::sync::Arc;
use std::time::Duration;

use psyche_core::{Conversation, GenerateRequest};
use psyche_models::{
    AnthropicBatch, AnthropicConfig, BatchConfig, BatchItem, BatchRunner, OpenAiBatch, OpenAiConfig,
};
use psyche_test_server::{ServerConfig, TestServer, default_responder};
use serde_json::{Value, json};

fn items(n: usize) -> Vec<BatchItem> {
    (0..n)
        .map(|i| {
            BatchItem::new(
                format!("q-{i}"),
                GenerateRequest::new(Conversation::user(format!("What is {i} + 5?"))).max_tokens(8),
            )
        })
        .collect()
}

/// Drives a batch run until its state file appears, then drops it (a killed client).
async fn interrupt_after_submission<F: std::future::Future>(run: F, state: &std::path::Path) {
    tokio::pin!(run);
    loop {
        tokio::select! {
            _ = &mut run => panic!("the run must still be polling when dropped"),
            _ = tokio::time::sleep(Duration::from_millis(5)) => {
                if state.exists() {
                    return;
                }
            }
        }
    }
}

fn fast(state: &std::path::Path) -> BatchConfig {
    BatchConfig::new(state).poll_interval(Duration::from_millis(30))
}

#[tokio::test]
async fn openai_batch_end_to_end_with_errors_file() {
    // Requests for 13 fail on the server's side and land in the errors file.
    let base = default_responder();
    let responder = Arc::new(move |body: &Value| {
        if body.to_string().contains("What is 13 ") {
            json!({"error": {"message": "unlucky request", "type": "invalid_request_error"}})
        } else {
            base(body)
        }
    });
    let server =
        TestServer::start(ServerConfig::with_responder(responder).batch_polls_before_complete(2))
            .await;
    let dir = tempfile::tempdir().unwrap();
    let runner = BatchRunner::new(
        OpenAiBatch::new(OpenAiConfig::new(server.base_url(), "test-model")).unwrap(),
        fast(&dir.path().join("batch.json")),
    );
    let out = runner.run(&items(20)).await.unwrap();
    assert!(!out.resumed);
    assert_eq!(out.results.len(), 20);
    assert_eq!(out.failed(), 1);
    let bad = out.results["q-13"].as_ref().unwrap_err();
    assert_eq!(bad.status, Some(400));
    assert!(bad.message.contains("unlucky"));
    for i in (0..20).filter(|i| *i != 13) {
        assert_eq!(
            out.results[&format!("q-{i}")].as_ref().unwrap().text(),
            (i + 5).to_string()
        );
    }
    assert_eq!(server.count_for("POST", "/v1/files"), 1);
    assert_eq!(server.count_for("POST", "/v1/batches"), 1);
}

#[tokio::test]
async fn duplicate_custom_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let runner = BatchRunner::new(
        OpenAiBatch::new(OpenAiConfig::new("http://127.0.0.1:9/v1", "m")).unwrap(),
        fast(&dir.path().join("b.json")),
    );
    let mut it = items(3);
    it[2].custom_id = "q-0".into();
    let err = runner.run(&it).await.unwrap_err();
    assert!(err.to_string().contains("items[2].custom_id"), "{err}");
}

#[tokio::test]
async fn dropped_client_resumes_polling_instead_of_resubmitting() {
    let server = TestServer::start(ServerConfig::default().batch_polls_before_complete(6)).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").join("batch.json");
    let make = || {
        BatchRunner::new(
            OpenAiBatch::new(OpenAiConfig::new(server.base_url(), "test-model")).unwrap(),
            fast(&state),
        )
    };
    let first = make();
    let interrupted = tokio::time::timeout(Duration::from_millis(100), first.run(&items(4))).await;
    assert!(
        interrupted.is_err(),
        "the first run must still be polling when dropped"
    );
    drop(first);
    assert!(state.exists());
    assert_eq!(server.count_for("POST", "/v1/batches"), 1);

    let out = make().run(&items(4)).await.unwrap();
    assert!(out.resumed);
    assert_eq!(out.failed(), 0);
    assert_eq!(out.results["q-3"].as_ref().unwrap().text(), "8");
    assert_eq!(
        server.count_for("POST", "/v1/batches"),
        1,
        "no second batch"
    );
    assert_eq!(server.count_for("POST", "/v1/files"), 1, "no second upload");

    // Different items with the same state file are refused rather than mixed up.
    let err = make().run(&items(5)).await.unwrap_err();
    assert!(err.to_string().contains("different input"), "{err}");
}

#[tokio::test]
async fn anthropic_message_batch_end_to_end_and_resume() {
    let server = TestServer::start(ServerConfig::default().batch_polls_before_complete(5)).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("anthropic.json");
    let make = || {
        BatchRunner::new(
            AnthropicBatch::new(AnthropicConfig::new(server.base_url(), "claude-test")).unwrap(),
            fast(&state),
        )
    };
    interrupt_after_submission(make().run(&items(6)), &state).await;
    let out = make().run(&items(6)).await.unwrap();
    assert!(out.resumed);
    assert_eq!(server.count_for("POST", "/v1/messages/batches"), 1);
    for i in 0..6 {
        assert_eq!(
            out.results[&format!("q-{i}")].as_ref().unwrap().text(),
            (i + 5).to_string()
        );
    }
}
