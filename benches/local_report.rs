//! One-shot performance report of the embedded model (psyche-local), the workloads of the
//! crate README's table:
//! - prompt processing: one 512-token prompt (tok/s);
//! - single-stream greedy decode: 128 tokens after a 16-token prompt (tok/s);
//! - eval throughput: full next-token distributions of 1,000 short chat prompts submitted
//!   concurrently (prompts/s), and 32 concurrent generations of 64 tokens (generated tok/s,
//!   summed);
//! - LoRA: step time at batch 8 × 128 tokens (rank 8 on q, v) and peak resident memory.
//!
//! `cargo bench -p psyche-local --bench local_report` (threads: `PSYCHE_BENCH_THREADS`;
//! sections: `PSYCHE_BENCH_SECTIONS=pp,tg,eval,gen,lora`, default all; eval prompts:
//! `PSYCHE_BENCH_EVAL_N`, default 1,000; weights:
//! `PSYCHE_BENCH_WEIGHTS=quantized`, default f32; model: `PSYCHE_BENCH_MODEL`, a known name or
//! a GGUF path, or `synthetic-qwen2-0.5b` for a random model shaped like Qwen2.5-0.5B with the
//! tensor types of its Q4_K_M release, written once to `target/bench-models/`).
//! The same workloads on llama.cpp: `scripts/bench-llama-cpp.py --model <the same file>`.
//!
//! Section `formats` (only when named): single-stream decode speed per GGUF tensor type, on
//! random models whose projections and head all have that type (8 blocks of width 1,024,
//! feed-forward 4,096, 32,768 tokens), with each weight format.

use std::time::Instant;

use futures::executor::block_on;
use psyche_core::{ChatMessage, Conversation, FineTuneConfig, GenerateRequest, Model};
use psyche_local::{
    LocalConfig, LocalModel, LoraConfig, LoraTrainer, SyntheticModel, WeightFormat,
};

/// The 1,000 eval prompts; `scripts/bench-llama-cpp.py` builds the same list.
fn eval_prompts() -> Vec<String> {
    let templates = [
        "Is a {} bigger than a house? Answer Yes or No.",
        "What colour is a {}?",
        "Name one fact about a {}.",
        "Would you like to own a {}? Answer Yes or No.",
        "How heavy is a {}?",
        "Is a {} alive? Answer Yes or No.",
        "Describe a {} in one word.",
    ];
    let nouns = [
        "cat", "car", "tree", "river", "phone", "lamp", "horse", "apple", "cloud", "bridge",
        "guitar", "rock", "ship", "book", "candle", "shoe", "whale", "clock", "pencil", "mountain",
    ];
    (0..1000)
        .map(|i| {
            templates[i % templates.len()].replace("{}", nouns[(i * 13 + i / 7) % nouns.len()])
        })
        .collect()
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn bench_models_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-models")
}

/// `PSYCHE_BENCH_MODEL`: a known name or a path; `synthetic-qwen2-0.5b` writes the synthetic
/// 0.5B-shaped Qwen2 model.
fn bench_model_spec() -> String {
    match std::env::var("PSYCHE_BENCH_MODEL") {
        Ok(m) if m == "synthetic-qwen2-0.5b" => SyntheticModel::qwen2_05b_like()
            .cached(&bench_models_dir())
            .expect("write the synthetic model")
            .to_string_lossy()
            .into_owned(),
        Ok(m) => m,
        Err(_) => psyche_local::DEFAULT_MODEL.to_owned(),
    }
}

/// Greedy single-stream decode over `n` tokens after a short prompt, prefill excluded:
/// `(tokens, tok/s)`.
fn decode_speed(m: &LocalModel, n: u32) -> (f64, f64) {
    let prompt = Conversation::user("Write a long story about a dragon who learns to fly.");
    let req = GenerateRequest::new(prompt.clone())
        .temperature(0.0)
        .max_tokens(n + 1);
    let prompt_ids = m.prompt_ids(&prompt).expect("prompt");
    let t = Instant::now();
    block_on(m.next_token_logprobs_ids(prompt_ids)).expect("prefill");
    let prefill = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r = block_on(m.generate(&req)).expect("generate");
    let gen_s = t.elapsed().as_secs_f64() - prefill;
    let n = r.usage.completion_tokens.saturating_sub(1).max(1) as f64;
    (n, n / gen_s)
}

/// Decode speed per GGUF tensor type (section `formats`).
fn formats(threads: Option<usize>) {
    println!("| type | decode path | tok/s (f32 weights) | tok/s (quantized weights) |");
    println!("|---|---|---|---|");
    for ty in [
        "Q4_0", "Q4_1", "Q4_K", "Q5_0", "Q5_1", "Q5_K", "Q6_K", "Q8_0", "Q2_K", "Q3_K", "F16",
    ] {
        let spec = SyntheticModel {
            n_layer: 8,
            d_model: 1024,
            n_head: 16,
            n_kv_head: 4,
            n_ff: 4096,
            vocab_size: 32_768,
            context_length: 2048,
            tied_embeddings: false,
            projection_types: std::array::from_fn(|_| ty.to_owned()),
            mixed_down_type: None,
            output_type: ty.to_owned(),
            ..SyntheticModel::qwen2_tiny()
        };
        let path = spec.cached(&bench_models_dir()).expect("write");
        let mut speeds = Vec::new();
        let mut path_name = String::new();
        for format in [WeightFormat::F32, WeightFormat::Quantized] {
            let mut cfg = LocalConfig::new(path.to_string_lossy()).weights(format);
            if let Some(t) = threads {
                cfg = cfg.threads(t);
            }
            let m = LocalModel::load(&cfg).expect("load");
            block_on(m.next_token_logprobs(&Conversation::user("warm up"))).expect("warm-up");
            speeds.push(decode_speed(&m, 32).1);
            let decode = &m.info().settings["tensor_types"][ty]["decode"];
            path_name.push_str(&format!("{}/", decode.as_str().unwrap_or("?")));
        }
        println!(
            "| {ty} | {} | {:.1} | {:.1} |",
            path_name.trim_end_matches('/'),
            speeds[0],
            speeds[1]
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let model = bench_model_spec();
    let mut cfg = LocalConfig::new(model.clone());
    let threads = std::env::var("PSYCHE_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok());
    if let Some(t) = threads {
        cfg = cfg.threads(t);
    }
    if std::env::var("PSYCHE_BENCH_WEIGHTS").is_ok_and(|w| w == "quantized") {
        cfg = cfg.weights(WeightFormat::Quantized);
    }
    let t0 = Instant::now();
    let m = LocalModel::load(&cfg).expect("load");
    println!(
        "load: {:.2} s (threads {:?})",
        t0.elapsed().as_secs_f64(),
        threads
    );

    let sections = std::env::var("PSYCHE_BENCH_SECTIONS").unwrap_or_default();
    let on = |name: &str| sections.is_empty() || sections.split(',').any(|s| s.trim() == name);
    // `PSYCHE_BENCH_EVAL_N`: the first N of the 1,000 eval prompts.
    let eval_n = std::env::var("PSYCHE_BENCH_EVAL_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    if sections.split(',').any(|s| s.trim() == "formats") {
        formats(threads);
    }

    if on("pp") {
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(60);
        let all = m.tokenize(&text).expect("tokenize");
        let ids512 = all[..512].to_vec();
        block_on(m.next_token_logprobs_ids(all[..32].to_vec())).expect("warm-up");
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            block_on(m.next_token_logprobs_ids(ids512.clone())).expect("pp");
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("pp512: {:.1} tok/s", 512.0 / best);
    }

    if on("tg") {
        // Single-stream decode: time 128 generated tokens minus the prefill of the prompt.
        let (n, speed) = decode_speed(&m, 128);
        println!("tg (single stream, {n} tokens): {speed:.1} tok/s");
    }

    if on("eval") {
        let prompts: Vec<Conversation> = eval_prompts()
            .into_iter()
            .take(eval_n)
            .map(Conversation::user)
            .collect();
        let t = Instant::now();
        let out = block_on(futures::future::try_join_all(
            prompts.iter().map(|p| m.next_token_logprobs(p)),
        ))
        .expect("eval");
        let s = t.elapsed().as_secs_f64();
        println!(
            "eval: {} full distributions in {:.1} s = {:.2} prompts/s",
            out.len(),
            s,
            out.len() as f64 / s
        );

        let t = Instant::now();
        let gens = block_on(futures::future::try_join_all((0..32).map(|i| {
            let req = GenerateRequest::new(Conversation::user(format!(
                "Tell me something about the number {i}."
            )))
            .temperature(0.8)
            .seed(i)
            .max_tokens(64);
            let m = m.clone();
            async move { m.generate(&req).await }
        })))
        .expect("batch generate");
        let s = t.elapsed().as_secs_f64();
        let toks: u64 = gens.iter().map(|g| g.usage.completion_tokens).sum();
        println!(
            "batch-32 generation: {toks} tokens in {s:.1} s = {:.1} generated tok/s",
            toks as f64 / s
        );
    }
    println!("peak RSS after inference: {:.0} MB", peak_rss_mb());

    if !on("lora") {
        return;
    }
    // LoRA step time at batch 8 × 128 tokens.
    let filler =
        "Please think carefully about the following question before answering it. ".repeat(6);
    let data: Vec<Conversation> = (0..8)
        .map(|i| {
            let mut q = format!("{filler} Question {i}: what is {i} plus {i}?");
            loop {
                let c = Conversation::from(vec![
                    ChatMessage::user(q.clone()),
                    ChatMessage::assistant(format!("{}", 2 * i)),
                ]);
                if m.prompt_ids(&c).map(|p| p.len()).unwrap_or(0) >= 126 {
                    break c;
                }
                q.push_str(" Indeed.");
            }
        })
        .collect();
    let lens: Vec<usize> = data
        .iter()
        .map(|c| m.prompt_ids(c).map(|p| p.len()).unwrap_or(0))
        .collect();
    let dir = std::env::temp_dir().join("psyche-local-bench-lora");
    let trainer = LoraTrainer::new(&dir).with_model(m.clone());
    let mut ft = FineTuneConfig::new(model, 0);
    ft.epochs = Some(4);
    ft.batch_size = Some(8);
    ft.extra = LoraConfig {
        progress: false,
        max_seq_len: 256,
        ..LoraConfig::default()
    }
    .to_extra();
    let t = Instant::now();
    let trained = trainer.train(&data, &ft).expect("train");
    let s = t.elapsed().as_secs_f64();
    println!(
        "LoRA r8 q,v batch 8 x ~{} tokens: {:.2} s/step over {} steps (final loss {:?})",
        lens.iter().max().unwrap_or(&0),
        s / 4.0,
        4,
        trained.details.get("final_loss")
    );
    println!("peak RSS overall: {:.0} MB", peak_rss_mb());
    let _ = std::fs::remove_dir_all(dir);
}
