//! Criterion benches of the embedded model (psyche-local): prompt processing, single-stream
//! decode and batched next-token distributions, for two architectures:
//! - `local`: the default model (SmolLM2-135M-Instruct, Llama architecture, Q4_1);
//! - `qwen2`: a Qwen2 file, the GGUF at `PSYCHE_BENCH_QWEN2` (e.g. a real
//!   `qwen2.5-0.5b-instruct-q4_k_m.gguf`) or else a random model shaped like Qwen2.5-0.5B with
//!   the tensor types of its Q4_K_M release (`SyntheticModel::qwen2_05b_like`, written once to
//!   `target/bench-models/`, ~400 MB, about a minute).
//!
//! `cargo bench -p psyche-local --bench local_inference` (threads: `PSYCHE_BENCH_THREADS`,
//! default all cores; `PSYCHE_BENCH_GROUPS=local,qwen2`, default both). The one-shot report
//! with the full workloads (1,000 prompts, batch-32 generation, LoRA step time, peak
//! memory, decode speed per GGUF tensor type) is `--bench local_report`.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::executor::block_on;
use psyche_core::{Conversation, GenerateRequest, Model};
use psyche_local::{LocalConfig, LocalModel, SyntheticModel};

fn load(model: &str) -> LocalModel {
    let mut cfg = LocalConfig::new(model);
    if let Some(t) = std::env::var("PSYCHE_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        cfg = cfg.threads(t);
    }
    LocalModel::load(&cfg).expect("load the model")
}

/// The Qwen2 file: `PSYCHE_BENCH_QWEN2`, else the synthetic 0.5B-shaped model.
fn qwen2_path() -> String {
    if let Ok(p) = std::env::var("PSYCHE_BENCH_QWEN2") {
        return p;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-models");
    SyntheticModel::qwen2_05b_like()
        .cached(&dir)
        .expect("write the synthetic Qwen2 model")
        .to_string_lossy()
        .into_owned()
}

fn bench_model(c: &mut Criterion, group: &str, m: &LocalModel) {
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(60);
    let ids: Vec<u32> = m.tokenize(&text).expect("tokenize")[..128].to_vec();

    let mut g = c.benchmark_group(group);
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

fn bench(c: &mut Criterion) {
    let groups = std::env::var("PSYCHE_BENCH_GROUPS").unwrap_or_default();
    let on = |name: &str| groups.is_empty() || groups.split(',').any(|s| s.trim() == name);
    if on("local") {
        bench_model(c, "local", &load(psyche_local::DEFAULT_MODEL));
    }
    if on("qwen2") {
        bench_model(c, "qwen2", &load(&qwen2_path()));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
