//! Usage metering over HTTP, including calls that reach `generate` through provided methods
//! and cache hits.

mod common;

use psyche_core::{Conversation, GenerateRequest, Model};
use psyche_models::{Cache, CacheConfig, UsageMeter};
use psyche_test_server::{ServerConfig, TestServer};

#[tokio::test]
async fn provided_methods_and_cache_hits_are_metered() {
    let server = TestServer::start(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let meter = UsageMeter::new(
        Cache::new(common::backend(&server), CacheConfig::new(dir.path())).unwrap(),
    );
    let conv = Conversation::user("What is 1 + 2?");
    meter.next_token_distribution(&conv, 3).await.unwrap();
    meter
        .generate(&GenerateRequest::new(conv.clone()))
        .await
        .unwrap();
    meter
        .generate(&GenerateRequest::new(conv.clone()))
        .await
        .unwrap();
    let r = meter.report();
    let u = &r.models["test-model"];
    assert_eq!(u.calls, 2, "{r:?}");
    assert_eq!(u.cache_hits, 1);
    assert_eq!(u.completion_tokens, 2);
    assert_eq!(server.request_count(), 2);
}
