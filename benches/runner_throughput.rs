//! Runner throughput against the zero-latency local test server: samples per second for a
//! one-generation eval (`Generate`, no judge) with a JSONL log.
//!
//! `cargo bench -p psyche-runner --bench runner_throughput`
//!
//! Compare with inspect_ai on the same server: `python3 benches/inspect_compare.py`.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use psyche_core::{Conversation, Sample};
use psyche_models::{OpenAiCompatible, OpenAiConfig};
use psyche_runner::{Eval, Generate, ProgressMode};
use psyche_test_server::{ServerConfig, TestServer};

const SAMPLES: usize = 5_000;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let server = rt.block_on(TestServer::start(ServerConfig::default()));
    let model: Arc<dyn psyche_core::Model> = Arc::new(
        OpenAiCompatible::new(OpenAiConfig::new(server.base_url(), "bench-model"))
            .expect("backend"),
    );
    let samples: Vec<Sample> = (0..SAMPLES)
        .map(|i| {
            Sample::new(
                format!("s{i}"),
                Conversation::user(format!("What is {i} + 1?")),
            )
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("runner");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SAMPLES as u64));
    for concurrency in [100usize, 1_000] {
        let mut round = 0u64;
        group.bench_function(
            format!("{SAMPLES}_samples_concurrency_{concurrency}"),
            |b| {
                b.iter(|| {
                    round += 1;
                    let log = dir.path().join(format!("c{concurrency}-{round}.jsonl"));
                    rt.block_on(async {
                        Eval::builder(format!("bench-{round}"))
                            .samples(samples.clone())
                            .model(model.clone())
                            .solver(Generate::new(16))
                            .concurrency(concurrency)
                            .progress(ProgressMode::Quiet)
                            .log_path(&log)
                            .build()
                            .expect("config")
                            .run()
                            .await
                            .expect("run")
                    })
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
