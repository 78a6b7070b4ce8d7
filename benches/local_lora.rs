//! LoRA fine-tuning benchmark of the embedded model (psyche-local), two workloads:
//!
//! - `step`: rank 8 on q and v, batch 8 × ~127 tokens (8 padded-free examples), the shape of
//!   the PyTorch + peft anchor (`scripts/bench-lora-vs-torch.sh` runs both). 2 warm-up steps,
//!   then `PSYCHE_LORA_STEPS` (default 6) timed steps: median and minimum s/step, tokens/s.
//! - `epoch`: one epoch over 256 short chat examples of mixed length (about nine in ten of
//!   50–90 tokens, one in ten of 120–150; mean ~77), batch 8, rank 8 on q and v: wall time,
//!   s/step and tokens/s. Short examples should cost what their tokens cost.
//!
//! Both print the peak resident memory of the process so far (`VmHWM`).
//!
//! `cargo bench -p psyche-local --bench local_lora` (threads: `PSYCHE_BENCH_THREADS`;
//! workloads: `PSYCHE_LORA_BENCH=step,epoch`, default both).

use std::time::Instant;

use psyche_core::{ChatMessage, Conversation, FineTuneConfig};
use psyche_local::{LocalConfig, LocalModel, LoraConfig, LoraTrainer};

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

/// A user question padded with filler sentences until the whole example (prompt and answer)
/// has at least `tokens` tokens.
fn example(m: &LocalModel, i: usize, tokens: usize, answer: String) -> Conversation {
    let mut q = format!("Question {i}: consider the following situation carefully.");
    loop {
        let c = Conversation::from(vec![
            ChatMessage::user(q.clone()),
            ChatMessage::assistant(answer.clone()),
        ]);
        if m.prompt_ids(&c).map(|p| p.len()).unwrap_or(usize::MAX) >= tokens {
            return c;
        }
        q.push_str(" Indeed.");
    }
}

fn numbers(v: Option<&serde_json::Value>) -> Vec<f64> {
    v.and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default()
}

fn config(epochs: u32) -> FineTuneConfig {
    let mut ft = FineTuneConfig::new(psyche_local::DEFAULT_MODEL, 0);
    ft.epochs = Some(epochs);
    ft.batch_size = Some(8);
    ft.extra = LoraConfig {
        progress: false,
        max_seq_len: 256,
        ..LoraConfig::default()
    }
    .to_extra();
    ft
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut cfg = LocalConfig::default();
    if let Some(t) = std::env::var("PSYCHE_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        cfg = cfg.threads(t);
    }
    let m = LocalModel::load(&cfg).expect("load");
    let which = std::env::var("PSYCHE_LORA_BENCH").unwrap_or_default();
    let on = |name: &str| which.is_empty() || which.split(',').any(|s| s.trim() == name);
    let dir = std::env::temp_dir().join(format!("psyche-local-bench-lora-{}", std::process::id()));
    let trainer = LoraTrainer::new(&dir).with_model(m.clone());

    if on("step") {
        let timed: usize = std::env::var("PSYCHE_LORA_STEPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(6);
        // One step per epoch: 8 examples, batch 8.
        let data: Vec<Conversation> = (0..8)
            .map(|i| example(&m, i, 126, format!("{}", 2 * i)))
            .collect();
        let tokens: usize = data.iter().map(|c| m.prompt_ids(c).unwrap().len()).sum();
        let t = Instant::now();
        let trained = trainer
            .train(&data, &config(2 + timed as u32))
            .expect("train");
        let wall = t.elapsed().as_secs_f64();
        let mut s = numbers(trained.details.get("step_seconds"));
        if s.is_empty() {
            // A trainer that records no per-step times: the mean over all steps.
            s = vec![wall / (2 + timed) as f64; 2 + timed];
        }
        let s = s.split_off(2.min(s.len()));
        let mut sorted = s.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        println!(
            "lora step: r8 q,v batch 8 x ~{} tokens ({tokens} tokens): median {median:.3} s/step, \
             min {:.3} over {} steps after 2 warm-up ({:.0} tokens/s at the median); peak RSS {:.0} MB",
            tokens / 8,
            sorted[0],
            s.len(),
            tokens as f64 / median,
            peak_rss_mb()
        );
        println!(
            "  steps (s): {}",
            s.iter()
                .map(|v| format!("{v:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }

    if on("epoch") {
        // Mostly short examples with a few long ones, like the experiment datasets.
        let data: Vec<Conversation> = (0..256)
            .map(|i| {
                let h = (i * 2_654_435_761usize) >> 7;
                let len = if h.is_multiple_of(10) {
                    120 + h % 31
                } else {
                    50 + h % 41
                };
                example(&m, i, len, ["A", "B"][i % 2].to_owned())
            })
            .collect();
        let lens: Vec<usize> = data
            .iter()
            .map(|c| m.prompt_ids(c).unwrap().len())
            .collect();
        let tokens: usize = lens.iter().sum();
        let t = Instant::now();
        let trained = trainer.train(&data, &config(1)).expect("train");
        let wall = t.elapsed().as_secs_f64();
        let steps = numbers(trained.details.get("step_seconds"));
        let in_steps: f64 = steps.iter().sum();
        println!(
            "lora epoch: {} examples of {}-{} tokens (mean {:.0}, {tokens} tokens), batch 8: \
             {} steps in {wall:.1} s wall ({in_steps:.1} s in steps) = {:.2} s/step, {:.0} tokens/s; \
             peak RSS {:.0} MB",
            lens.len(),
            lens.iter().min().unwrap(),
            lens.iter().max().unwrap(),
            tokens as f64 / lens.len() as f64,
            steps.len(),
            in_steps / steps.len().max(1) as f64,
            tokens as f64 / wall,
            peak_rss_mb()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
