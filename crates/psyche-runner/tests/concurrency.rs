//! 20,000 samples at concurrency 1,000 against the zero-latency test server: every sample is
//! answered and recorded once. (Throughput is measured by the `runner_throughput` bench, not
//! asserted here.)

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use psyche_models::{OpenAiCompatible, OpenAiConfig};
use psyche_runner::{Eval, Generate, ProgressMode, scan};
use psyche_test_server::{ServerConfig, TestServer};
use support::{ExactMatch, arithmetic_samples};

#[tokio::test(flavor = "multi_thread")]
async fn twenty_thousand_samples_at_concurrency_one_thousand() {
    const N: usize = 20_000;
    let server = TestServer::start(ServerConfig::default()).await;
    let model = OpenAiCompatible::new(OpenAiConfig::new(server.base_url(), "m")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.jsonl");
    let summary = Eval::builder("concurrency")
        .samples(arithmetic_samples(N))
        .model(Arc::new(model))
        .judge(Arc::new(ExactMatch))
        .solver(Generate::new(8))
        .concurrency(1_000)
        .progress(ProgressMode::Quiet)
        .log_path(&log)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    eprintln!(
        "20k samples at concurrency 1000: {:.0} samples/s ({:?})",
        summary.rate(),
        summary.elapsed
    );
    assert_eq!(summary.completed as usize, N);
    assert_eq!(summary.errors, 0);
    assert_eq!(server.answered() as usize, N);
    let s = scan(&log).unwrap();
    assert_eq!((s.records, s.duplicates, s.errors), (N, 0, 0));
    let (_, records) = psyche_runner::read_log(&log).unwrap();
    let ids: HashSet<_> = records.iter().map(|r| r.sample_id.as_str()).collect();
    assert_eq!(ids.len(), N);
    assert!(records.iter().all(|r| r.score("exact") == Some(1.0)));
}
