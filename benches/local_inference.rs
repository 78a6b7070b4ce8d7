//! Criterion benches of the embedded model (psyche-local): prompt processing, single-stream
//! decode and batched next-token distributions.
//!
//! `cargo bench -p psyche-local --bench local_inference` (threads: `PSYCHE_BENCH_THREADS`,
//! default all cores). The one-shot report with the full workloads (1,000 prompts,
//! batch-32 generation, LoRA step time, peak memory) is `--bench local_report`.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::executor::block_on;
use psyche_core::{Conversation, GenerateRequest, Model};
use psyche_local::{LocalConfig, LocalModel};

fn load() -> LocalModel {
    let mut cfg = LocalConfig::default();
    if let Some(t) = std::env::var("PSYCHE_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        cfg = cfg.threads(t);
    }
    LocalModel::load(&cfg).expect("load the model")
}

fn bench(c: &mut Criterion) {
    let m = load();
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(60);
    let ids: Vec<u32> = m.tokenize(&text).expect("tokenize")[..128].to_vec();

    let mut g = c.benchmark_group("local");
    g.sample_size(10).measurement_time(Duration::from_secs(20));

    g.throughput(Throughput::Elements(ids.len() as u64));
    g.bench_function("prompt_128_tokens", |b| {
        b.iter(|| block_on(m.next_token_logprobs_ids(ids.clone())).expect("score"))
    });

    let req = GenerateRequest::new(Conversation::user("Tell me about the ocean."))
        .temperature(0.0)
        .max_tokens(32);
    g.throughput(Throughput::Elements(32));
    g.bench_function("decode_32_tokens_single_stream", |b| {
        b.iter(|| block_on(m.generate(&req)).expect("generate"))
    });

    let prompts: Vec<Conversation> = (0..32)
        .map(|i| Conversation::user(format!("Is {i} an even number? Answer Yes or No.")))
        .collect();
    g.throughput(Throughput::Elements(prompts.len() as u64));
    g.bench_function("next_token_distribution_batch_32", |b| {
        b.iter(|| {
            block_on(futures::future::try_join_all(
                prompts.iter().map(|p| m.next_token_logprobs(p)),
            ))
            .expect("score")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
