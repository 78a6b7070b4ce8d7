//! The persistent cache: reruns cost zero HTTP requests; answer-changing parameters miss.

mod common;

use std::sync::Arc;
use std::time::Duration;

use psyche_core::{Conversation, GenerateRequest, Model};
use psyche_models::{ApiKey, Cache, CacheConfig, OpenAiCompatible, OpenAiConfig};
use psyche_test_server::{ServerConfig, TestServer};

fn requests() -> Vec<GenerateRequest> {
    (0..5)
        .map(|i| {
            GenerateRequest::new(Conversation::user(format!("What is {i} * 3?")))
                .seed(1)
                .temperature(0.0)
        })
        .collect()
}

#[tokio::test]
async fn rerun_is_served_from_disk_and_parameters_miss() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(ServerConfig::default()).await;
    let first = Cache::new(common::backend(&server), CacheConfig::new(dir.path())).unwrap();
    for r in requests() {
        first.generate(&r).await.unwrap();
    }
    assert_eq!(server.request_count(), 5);

    // A new process: fresh wrapper, different timeout and API key (neither is in the key).
    let other_settings = OpenAiCompatible::new(
        OpenAiConfig::new(server.base_url(), "test-model")
            .timeout(Duration::from_secs(3))
            .api_key(ApiKey::new("sk-irrelevant")),
    )
    .unwrap();
    let second = Cache::new(other_settings, CacheConfig::new(dir.path())).unwrap();
    for (i, r) in requests().iter().enumerate() {
        assert_eq!(
            second.generate(r).await.unwrap().text(),
            (i * 3).to_string()
        );
    }
    assert_eq!(server.request_count(), 5, "rerun made no HTTP requests");
    assert_eq!(second.stats().hits, 5);

    let base = requests().remove(0);
    second
        .generate(&base.clone().temperature(0.7))
        .await
        .unwrap();
    assert_eq!(server.request_count(), 6, "temperature change misses");
    second.generate(&base.clone().seed(2)).await.unwrap();
    assert_eq!(server.request_count(), 7, "seed change misses");
    second.generate(&base.clone().n(2)).await.unwrap();
    assert_eq!(server.request_count(), 8, "n change misses");

    // Another base URL is another model.
    let server2 = TestServer::start(ServerConfig::default()).await;
    let elsewhere = Cache::new(common::backend(&server2), CacheConfig::new(dir.path())).unwrap();
    elsewhere.generate(&base).await.unwrap();
    assert_eq!(server2.request_count(), 1, "base URL is part of the key");

    // Provided methods are cached too.
    let conv = Conversation::user("What is 2 + 2?");
    second.next_token_distribution(&conv, 5).await.unwrap();
    let n = server.request_count();
    let again = Cache::new(common::backend(&server), CacheConfig::new(dir.path())).unwrap();
    again.next_token_distribution(&conv, 5).await.unwrap();
    assert_eq!(server.request_count(), n);
}

#[tokio::test]
async fn corrupt_entry_is_a_reported_miss_then_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(ServerConfig::default()).await;
    let cache = Cache::new(common::backend(&server), CacheConfig::new(dir.path())).unwrap();
    let req = requests().remove(1);
    cache.generate(&req).await.unwrap();
    let key = cache.key_components("generate", serde_json::to_value(&req).unwrap());
    let path = cache.entry_path(&key);
    assert!(path.exists());
    std::fs::write(&path, b"{\"key\": tru").unwrap();

    let resp = cache.generate(&req).await.unwrap();
    assert_eq!(resp.text(), "3");
    assert_eq!(cache.stats().corrupt, 1);
    assert_eq!(server.request_count(), 2);
    cache.generate(&req).await.unwrap();
    assert_eq!(server.request_count(), 2, "entry was rewritten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_leave_valid_entries() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(ServerConfig::default()).await;
    let caches: Vec<Arc<Cache<OpenAiCompatible>>> = (0..4)
        .map(|_| {
            Arc::new(Cache::new(common::backend(&server), CacheConfig::new(dir.path())).unwrap())
        })
        .collect();
    let mut tasks = Vec::new();
    for round in 0..20 {
        for c in &caches {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let req =
                    GenerateRequest::new(Conversation::user(format!("What is {} + 1?", round % 5)));
                c.generate(&req).await.unwrap().text().to_owned()
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let fresh = Cache::new(common::backend(&server), CacheConfig::new(dir.path())).unwrap();
    let before = server.request_count();
    for i in 0..5 {
        let req = GenerateRequest::new(Conversation::user(format!("What is {i} + 1?")));
        assert_eq!(
            fresh.generate(&req).await.unwrap().text(),
            (i + 1).to_string()
        );
    }
    assert_eq!(server.request_count(), before);
    assert_eq!(fresh.stats().corrupt, 0);
    // No temporary files are left behind.
    let leftovers = walk(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "json"))
        .count();
    assert_eq!(leftovers, 0);
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
