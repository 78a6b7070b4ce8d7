//! Client overhead of psyche-models' OpenAI-compatible backend against the local test server
//! with zero latency: requests/s and p50/p99 latency at concurrency 1, 64 and 1,000.
//!
//! Run: `cargo bench -p psyche-models --bench models_client`
//! (raises no limits itself; concurrency 1,000 needs `ulimit -n` ≥ 4096).
//!
//! The latency table is printed first (one fixed run of 4,000 requests per level); criterion
//! then measures throughput per wave of `concurrency` requests.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use psyche_core::{Conversation, GenerateRequest, Model};
use psyche_models::{OpenAiCompatible, OpenAiConfig};
use psyche_test_server::{ServerConfig, TestServer};

const LEVELS: [usize; 3] = [1, 64, 1000];

async fn run(model: &OpenAiCompatible, total: usize, concurrency: usize) -> Vec<Duration> {
    futures::stream::iter(0..total)
        .map(|i| async move {
            let req =
                GenerateRequest::new(Conversation::user(format!("What is {i} + 1?"))).max_tokens(8);
            let t = Instant::now();
            model.generate(&req).await.expect("bench request failed");
            t.elapsed()
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(TestServer::start(ServerConfig::default()));
    let model = OpenAiCompatible::new(OpenAiConfig::new(server.base_url(), "test-model")).unwrap();

    eprintln!("concurrency | requests/s | p50 latency | p99 latency");
    for &level in &LEVELS {
        rt.block_on(run(&model, level.max(200), level)); // warm the connection pool
        let total = 4000;
        let start = Instant::now();
        let mut lat = rt.block_on(run(&model, total, level));
        let secs = start.elapsed().as_secs_f64();
        lat.sort();
        eprintln!(
            "{level:>11} | {:>10.0} | {:>11.2?} | {:>11.2?}",
            total as f64 / secs,
            pct(&lat, 0.5),
            pct(&lat, 0.99)
        );
    }

    let mut group = c.benchmark_group("openai_compatible_generate");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for &level in &LEVELS {
        group.throughput(Throughput::Elements(level as u64));
        group.bench_with_input(BenchmarkId::from_parameter(level), &level, |b, &level| {
            b.to_async(&rt).iter(|| run(&model, level, level));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
