//! 2,000 requests under a 20% fault mix: each completes exactly once with the right answer.

mod common;

use std::time::Duration;

use futures::StreamExt;
use psyche_core::{Conversation, GenerateRequest, Model};
use psyche_models::{AdaptiveConfig, ConcurrencyLimit, LimitChange, Retry};
use psyche_test_server::{Fault, FaultMix, ServerConfig, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_requests_under_twenty_percent_faults() {
    let server = TestServer::start(
        ServerConfig::default()
            .fault_mix(FaultMix::uniform(0.2, &Fault::ALL))
            .stall(Duration::from_secs(3))
            .retry_after(Duration::from_millis(5))
            .seed(2026),
    )
    .await;
    let limited = ConcurrencyLimit::adaptive(
        common::backend(&server),
        AdaptiveConfig {
            min: 8,
            initial: 32,
            max: 128,
            decrease_factor: 0.8,
            cooldown: Duration::from_millis(50),
        },
    )
    .unwrap();
    let model = Retry::new(limited, common::fast_retry(7)).unwrap();

    const N: u64 = 2_000;
    let results: Vec<(u64, Result<String, String>)> = futures::stream::iter(0..N)
        .map(|i| {
            let model = &model;
            async move {
                let req = GenerateRequest::new(Conversation::user(format!("What is {i} + 1000?")))
                    .temperature(0.0);
                let r = model.generate(&req).await;
                (i, r.map(|r| r.text().to_owned()).map_err(|e| e.to_string()))
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;

    assert_eq!(results.len(), N as usize);
    let mut seen = vec![0u32; N as usize];
    for (i, r) in &results {
        seen[*i as usize] += 1;
        assert_eq!(
            r.as_deref(),
            Ok((i + 1000).to_string().as_str()),
            "request {i}"
        );
    }
    assert!(
        seen.iter().all(|&c| c == 1),
        "every request completes exactly once"
    );
    let faults = server.faults_injected();
    let attempts = server.count_for("POST", "/v1/chat/completions");
    assert!(
        attempts >= N + faults,
        "attempts {attempts}, faults {faults}"
    );
    assert!(
        faults as f64 > 0.15 * N as f64,
        "fault mix was applied: {faults}"
    );
    assert!(server.answered() >= N);
    // The adaptive limiter saw rate limits and shrank at least once.
    let history = model.get_ref().limiter().history();
    assert!(
        history.iter().any(|(c, _)| *c == LimitChange::RateLimit),
        "{history:?}"
    );
}
