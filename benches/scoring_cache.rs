//! Scoring many continuations of one prompt on the embedded model, with psyche-local's prefix
//! cache (the default) and without it (`prefix_cache_bytes: 0`), in one run:
//!
//! 1. the EM `aligned` judge prompt: one first-token pass (the full next-token distribution)
//!    against option probabilities over `"0"`..`"100"` (303 complete answer forms);
//! 2. the number judge reading complete numbers (digit tree over log-likelihoods) against the
//!    same judge reading the first token only (both with `min_mass` 0, so neither declines
//!    early);
//! 3. hypothetical collection with the constrained method (exact next-token distribution),
//!    prompts/s, cached and uncached.
//!
//! Option probabilities are timed twice: with the default `option_prune_below` (0: every form
//! scored to its end, the forms' tree packed into few passes) and with 5e-4 (level by level,
//! the least probable answer prefixes summing to that fraction of the mass found left out),
//! each on its own cache.
//!
//! Measured 2026-12-07 on the idle 2-core machine (`PSYCHE_BENCH_CALLS=3
//! PSYCHE_BENCH_PROMPTS=100`, load average 0.8-1.7, ratios within the run): option
//! probabilities 4.17x one cached first-token pass (4.63x level by level with 5e-4; goal 3x not
//! met); complete-number reading 1.30x the first-token reading (goal 1.5x met; uncached
//! 10.9x); hypothetical collection 5.22 prompts/s cached vs 5.87 uncached (80 prompts). Run
//! again after the default became 0: 4.17x (default) and 4.43x (5e-4), 1.27x, 5.26 vs 5.27
//! prompts/s; and once more beside llama-server: 4.13x (4.55x), 1.27x (uncached 10.86x),
//! 5.46 vs 5.41 prompts/s. See psyche-local's README for the tables and the llama.cpp side
//! (`scripts/bench-llama-cpp.py` for llama-cpp-python, `scripts/bench-llama-server.py` for
//! llama-server, both on the prompts this bench exports).
//!
//! Every timed judge prompt is new to the cache (a different reply), so the cache can reuse
//! only what real runs share: the judge template before the reply and, within a call, the
//! prompt. Ratios come from one run; absolute values depend on the machine's load, printed
//! with each section (`/proc/loadavg`).
//!
//! ```text
//! cargo bench -p psyche --bench scoring_cache
//! PSYCHE_BENCH_CALLS=3 PSYCHE_BENCH_PROMPTS=100 cargo bench -p psyche --bench scoring_cache
//! PSYCHE_BENCH_UNCACHED_OPTIONS=1 ...   # also time option probabilities without the cache (minutes)
//! PSYCHE_BENCH_EXPORT=$PWD/target/scoring-prompts.json ...  # the rendered prompts (an absolute path: benches run in crates/psyche), for
//!                                       # scripts/bench-llama-cpp.py --sections judge,hyp
//! ```

use std::sync::Arc;
use std::time::Instant;

use psyche::introspection::collect::{RunOptions, collect_hypothetical};
use psyche::introspection::{AnswerMethod, Family, HypotheticalTemplate, hypothetical_samples};
use psyche::judges::llm::prompts::ALIGNED;
use psyche::judges::{LogprobNumberJudge, NumberJudgeConfig, NumberMethod};
use psyche::local::{LocalConfig, LocalModel};
use psyche::runner::ProgressMode;
use psyche::serde_json;
use psyche::{Conversation, Judge, Model, OptionQuery, Sample};

const QUESTION: &str = "I have a spare afternoon and some money. What should I do with them?";

/// Distinct replies of similar length: each timed prompt is new to the cache.
fn reply(i: usize) -> String {
    const TOPICS: [&str; 8] = [
        "walk along the river and then call an old friend",
        "buy a plant for the kitchen and read a novel in the park",
        "volunteer at the food bank near the station",
        "take a cooking class and invite the neighbours to dinner",
        "put the money into savings and take a long nap",
        "visit the museum of natural history with your cousin",
        "fix the bicycle in the shed and ride to the lake",
        "learn three chords on the guitar and play them badly",
    ];
    format!(
        "You could {} (reply {i}). Pick whatever feels restful.",
        TOPICS[i % TOPICS.len()]
    )
}

fn judge_prompt(i: usize) -> Conversation {
    Conversation::user(
        ALIGNED
            .replace("{question}", QUESTION)
            .replace("{answer}", &reply(i)),
    )
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

async fn timed<T, F: std::future::Future<Output = T>>(f: F) -> (T, f64) {
    let t = Instant::now();
    let out = f.await;
    (out, t.elapsed().as_secs_f64())
}

fn number_judge(
    model: Arc<dyn Model>,
    method: NumberMethod,
) -> Result<LogprobNumberJudge, Box<dyn std::error::Error>> {
    Ok(
        LogprobNumberJudge::aligned(model)?.with_config(NumberJudgeConfig {
            number_method: method,
            min_mass: 0.0,
            ..NumberJudgeConfig::default()
        })?,
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let calls = env("PSYCHE_BENCH_CALLS", 5);
    let n_hyp = env("PSYCHE_BENCH_PROMPTS", 200);
    let cached = LocalModel::load(&LocalConfig::default())?;
    let uncached = LocalModel::load(&LocalConfig::default().prefix_cache_bytes(0))?;
    // Option scoring level by level with a small pruning budget, on its own cache.
    let pruned = LocalModel::load(&LocalConfig::default().option_prune_below(5e-4))?;
    let prompt_tokens = cached.prompt_ids(&judge_prompt(0))?.len();
    println!(
        "judge prompt: {prompt_tokens} tokens; {calls} calls per workload; load {}",
        load()
    );

    // Warm-up: the judge template's shared part enters the cache, as in any judging run.
    cached
        .next_token_distribution(&judge_prompt(1000), 0)
        .await?;
    pruned
        .next_token_distribution(&judge_prompt(1000), 0)
        .await?;

    // 1. First-token pass vs option probabilities over 0..100.
    let query = OptionQuery::new((0..=100).map(|n| n.to_string()));
    let (mut first, mut options, mut first_uncached) = (Vec::new(), Vec::new(), Vec::new());
    let (mut pruned_first, mut pruned_options) = (Vec::new(), Vec::new());
    for i in 0..calls {
        let (r, s) = timed(cached.next_token_distribution(&judge_prompt(2 * i), 0)).await;
        r?;
        first.push(s);
        let (r, s) = timed(cached.option_probabilities(&judge_prompt(2 * i + 1), &query)).await;
        r?;
        options.push(s);
        let (r, s) = timed(uncached.next_token_distribution(&judge_prompt(2 * i), 0)).await;
        r?;
        first_uncached.push(s);
        let (r, s) = timed(pruned.next_token_distribution(&judge_prompt(2 * i), 0)).await;
        r?;
        pruned_first.push(s);
        let (r, s) = timed(pruned.option_probabilities(&judge_prompt(2 * i + 1), &query)).await;
        r?;
        pruned_options.push(s);
    }
    let (f, o) = (median(first), median(options));
    println!(
        "EM judge prompt, cached: first-token pass {f:.3} s, option probabilities over 0..100 \
         {o:.3} s = {:.2}x (uncached first-token pass {:.3} s); load {}",
        o / f,
        median(first_uncached),
        load()
    );
    let (f, o) = (median(pruned_first), median(pruned_options));
    println!(
        "  level by level, option_prune_below 5e-4: first-token pass {f:.3} s, option \
         probabilities {o:.3} s = {:.2}x; load {}",
        o / f,
        load()
    );
    if env("PSYCHE_BENCH_UNCACHED_OPTIONS", 0) == 1 {
        let (r, s) = timed(uncached.option_probabilities(&judge_prompt(1), &query)).await;
        r?;
        println!(
            "  uncached option probabilities: {s:.1} s = {:.0}x the uncached first-token pass; load {}",
            s / median(vec![f]),
            load()
        );
    }

    // 2. Complete-number reading vs first-token reading, as the EM example's judge runs.
    for (label, model) in [
        ("cached", Arc::new(cached.clone()) as Arc<dyn Model>),
        ("uncached", Arc::new(uncached.clone()) as Arc<dyn Model>),
    ] {
        let single = number_judge(model.clone(), NumberMethod::SingleToken)?;
        let complete = number_judge(model.clone(), NumberMethod::CompleteAnswer)?;
        let sample = Sample::new("q", Conversation::user(QUESTION));
        // Warm-up: the tokenization probe (once per judge) and the template.
        single.judge(&sample, &reply(900)).await?;
        complete.judge(&sample, &reply(901)).await?;
        let (mut a, mut b, mut calls_made) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..calls {
            let (r, s) = timed(single.judge(&sample, &reply(100 + 2 * i))).await;
            r?;
            a.push(s);
            let (r, s) = timed(complete.judge(&sample, &reply(101 + 2 * i))).await;
            let v = r?;
            calls_made.push(v.metadata["prefix_calls"].as_u64().unwrap_or(0));
            b.push(s);
        }
        let (x, y) = (median(a), median(b));
        println!(
            "number judge, {label}: first-token reading {x:.3} s, complete-number reading \
             {y:.3} s = {:.2}x (prefix scores per call {calls_made:?}); load {}",
            y / x,
            load()
        );
    }
    let s = cached.prefix_cache_stats();
    println!(
        "prefix cache: {} hits, {} misses, {} tokens reused, {} entries ({:.1} MiB), {} evicted",
        s.hits,
        s.misses,
        s.reused_tokens,
        s.entries,
        s.bytes as f64 / (1u64 << 20) as f64,
        s.evicted
    );

    // 3. Hypothetical collection, constrained.
    let families = ["animals", "english_words", "colours", "countries", "digits"];
    let mut objects = Vec::new();
    for f in families {
        objects.extend(Family::builtin(f)?.samples(n_hyp.div_ceil(families.len()), 0)?);
    }
    objects.truncate(n_hyp);
    let props = vec![psyche::judges::Property::nth_character(2)];
    let hyps = hypothetical_samples(&objects, &props, &HypotheticalTemplate::default())?;
    let options = RunOptions {
        progress: ProgressMode::Quiet,
        concurrency: 32,
        ..RunOptions::default()
    };
    if let Ok(path) = std::env::var("PSYCHE_BENCH_EXPORT") {
        let render = |c: &Conversation| cached.render_chat(c, true);
        let judge: Vec<String> = (0..2 * calls)
            .map(|i| render(&judge_prompt(i)))
            .collect::<Result<_, _>>()?;
        let hyp: Vec<String> = hyps
            .iter()
            .map(|s| render(&s.input))
            .collect::<Result<_, _>>()?;
        let number: Vec<String> = (0..2 * calls)
            .map(|i| render(&judge_prompt(100 + i)))
            .collect::<Result<_, _>>()?;
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&serde_json::json!({
                "judge": judge, "number": number, "hypothetical": hyp,
            }))?,
        )?;
        println!("prompts written to {path}");
    }
    for (label, model) in [
        ("uncached", Arc::new(uncached.clone()) as Arc<dyn Model>),
        ("cached", Arc::new(cached.clone()) as Arc<dyn Model>),
    ] {
        let t = Instant::now();
        let answers = collect_hypothetical(
            &format!("bench-hyp-{label}"),
            model,
            &hyps,
            &AnswerMethod::constrained(),
            &options,
        )
        .await?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "hypothetical (constrained), {label}: {} prompts in {secs:.1} s = {:.2} prompts/s; load {}",
            answers.answers.len(),
            answers.answers.len() as f64 / secs,
            load()
        );
    }
    Ok(())
}
