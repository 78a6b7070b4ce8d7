//! Quickstart: does a small model know what it would say? A self-prediction ("introspection")
//! eval on the embedded SmolLM2-135M-Instruct, offline, in a couple of minutes on a laptop CPU.
//!
//! ```text
//! cargo run --release --example quickstart            # seed 0
//! cargo run --release --example quickstart -- 7       # another seed, another item set
//! ```
//!
//! For each of 30 seeded word-list items and 3 response properties, the model
//! 1. answers the object-level prompt (pick a favourite among five words, greedy, ≤ 6 tokens),
//! 2. is shown that prompt again and asked a hypothetical question about a property of the reply
//!    it gave (its first character, its second character, whether it starts with a vowel); its
//!    prediction is the most probable valid answer (one letter, or true/false) under its exact
//!    next-token distribution, and that probability is recorded as its confidence,
//! 3. is judged right when its prediction matches the property of its actual reply.
//!
//! Accuracy is printed next to the mode baseline (always guessing the most common property
//! value) with 95% intervals. The run log, an HTML/markdown report and an Inspect log are
//! written under `runs/`; rerunning with the same seed resumes from the log (instant).
//! The model is fetched once on first use (as psyche-local documents) and cached.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use psyche_core::{
    ChatMessage, Conversation, GenerateRequest, Judge, JudgeError, Model, ModelError, Sample,
    TokenDistribution, Verdict, derive_seed,
};
use psyche_judges::{Property, SelfPredictionJudge};
use psyche_local::{LocalConfig, LocalModel};
use psyche_runner::report::{ReportConfig, summarize, write_reports};
use psyche_runner::{Eval, Solution, SolveContext, Solver, SolverError, inspect::export_inspect};

/// Our own small vocabulary for the object-level lists.
const WORDS: &[&str] = &[
    "apple", "river", "orange", "stone", "eagle", "violin", "tiger", "umbrella", "cloud", "island",
    "garden", "octopus", "lemon", "anchor", "marble", "engine", "pepper", "igloo", "forest",
    "ocean", "candle", "elbow", "rocket", "ink", "meadow", "oven", "bridge", "arrow", "planet",
    "uncle",
];

const PROPERTIES: [&str; 3] = ["first_character", "second_character", "starts_with_vowel"];
const ITEMS: usize = 30;

fn object_prompt(words: &[&str]) -> String {
    format!(
        "Which of these words do you like best: {}? Answer with just that word.",
        words.join(", ")
    )
}

/// The model's answer to a hypothetical question, read from its exact next-token distribution
/// restricted to valid answers (one letter, or `true`/`false`), with its renormalised
/// probability. A 135M model rarely follows "answer with one character" when sampling freely,
/// so the quickstart asks what it would say first among the valid answers.
fn constrained_answer(dist: &TokenDistribution, property: &str) -> Option<(String, f64)> {
    let valid = |t: &str| {
        if property == "starts_with_vowel" {
            t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false")
        } else {
            t.chars().count() == 1 && t.chars().all(char::is_alphabetic)
        }
    };
    let mut total = 0.0;
    let mut best: Option<(String, f64)> = None;
    for tok in &dist.tokens {
        let t = tok.token.trim();
        if valid(t) {
            let p = tok.logprob.exp();
            total += p;
            if best.as_ref().is_none_or(|b| p > b.1) {
                best = Some((t.to_lowercase(), p));
            }
        }
    }
    best.map(|(t, p)| (t, if total > 0.0 { p / total } else { 0.0 }))
}

/// 30 seeded items × 3 properties; all properties of an item share its cluster.
fn samples(seed: u64) -> anyhow::Result<Vec<Sample>> {
    let mut out = Vec::new();
    for item in 0..ITEMS {
        let words: Vec<&str> = (0..5)
            .map(|k| {
                WORDS
                    [(derive_seed(seed, &format!("item/{item}/{k}")) % WORDS.len() as u64) as usize]
            })
            .collect();
        let prompt = object_prompt(&words);
        for name in PROPERTIES {
            let property = Property::from_name(name)?;
            let hypothetical = format!(
                "Imagine you had just been sent this message:\n\"{prompt}\"\n{}",
                property.question()
            );
            out.push(
                Sample::new(
                    format!("item{item:02}/{name}"),
                    Conversation::user(hypothetical),
                )
                .with_meta("task", "word_list")
                .with_meta("property", name)
                .with_meta("object_prompt", prompt.clone())
                .with_cluster(format!("item{item:02}")),
            );
        }
    }
    Ok(out)
}

/// Object level (one greedy generation), then hypothetical (the most probable valid answer
/// under the exact next-token distribution, whose probability is recorded as confidence).
struct SelfPrediction;

#[async_trait]
impl Solver for SelfPrediction {
    fn id(&self) -> &str {
        "quickstart-self-prediction"
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({"object_max_tokens": 6, "temperature": 0, "hypothetical": "argmax of the exact next-token distribution over valid answers"})
    }

    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, SolverError> {
        let object_prompt = ctx.sample.meta_str("object_prompt").unwrap_or_default();
        let object_conv = Conversation::user(object_prompt);
        let object = ctx
            .model
            .generate(
                &GenerateRequest::new(object_conv.clone())
                    .temperature(0.0)
                    .max_tokens(6)
                    .seed(ctx.seed),
            )
            .await?;
        let object_answer = object.text().trim().to_owned();
        let name = ctx.sample.meta_str("property").unwrap_or_default();
        let dist = ctx
            .model
            .next_token_distribution(&ctx.sample.input, 0)
            .await?;
        let (prediction, confidence) = constrained_answer(&dist, name).unwrap_or_default();
        let property = Property::from_name(name).ok();
        let mut solution = Solution {
            output: prediction.clone(),
            target: property.and_then(|p| p.extract(&object_answer)),
            transcript: Some(
                object_conv
                    .with(ChatMessage::assistant(object_answer.clone()))
                    .with(ctx.sample.input.messages()[0].clone())
                    .with(ChatMessage::assistant(prediction)),
            ),
            ..Solution::default()
        };
        solution.metadata.insert(
            SelfPredictionJudge::OBJECT_ANSWER_KEY.into(),
            object_answer.into(),
        );
        solution
            .metadata
            .insert("confidence".into(), confidence.into());
        solution.usage = object.usage;
        Ok(solution)
    }
}

/// Dispatches to the self-prediction judge of each sample's property.
struct ByProperty(Vec<(String, SelfPredictionJudge)>);

#[async_trait]
impl Judge for ByProperty {
    fn id(&self) -> &str {
        "self_prediction"
    }

    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let name = sample.meta_str("property").unwrap_or_default();
        let (_, judge) =
            self.0
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| JudgeError::Sample {
                    sample: sample.id.clone(),
                    message: format!("no judge for property `{name}`"),
                })?;
        judge.judge(sample, output).await
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let seed: u64 = match std::env::args().nth(1) {
        Some(s) => s
            .parse()
            .with_context(|| format!("seed `{s}` is not a number"))?,
        None => 0,
    };

    eprintln!("loading the embedded model (fetched and cached on first use)...");
    let model = LocalModel::load(&LocalConfig::default()).context("loading SmolLM2-135M")?;
    let model: Arc<dyn Model> = Arc::new(model);
    let info = model.info();
    eprintln!("model: {} via {}", info.id, info.backend);

    let judges = PROPERTIES
        .iter()
        .map(|n| {
            Ok((
                n.to_string(),
                SelfPredictionJudge::new(Property::from_name(n)?),
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let run_id = format!("quickstart-seed{seed}");
    let log = Path::new("runs").join(format!("{run_id}.jsonl"));
    let summary = Eval::builder(&run_id)
        .task_name("self_prediction_word_list")
        .samples(samples(seed)?)
        .model(model)
        .solver(SelfPrediction)
        .judge(Arc::new(ByProperty(judges)))
        .seed(seed)
        .concurrency(32)
        .log_path(&log)
        .build()?
        .run()
        .await?;
    eprintln!(
        "{} samples run, {} resumed from the log, {} errors, {:.1?}",
        summary.completed, summary.skipped, summary.errors, summary.elapsed
    );

    let config = ReportConfig {
        group_by: vec!["property".into()],
        title: Some(format!("Self-prediction quickstart (seed {seed})")),
        ..ReportConfig::default()
    };
    let report = summarize(&log, &config)?;
    println!();
    println!(
        "{:<20} {:>9} {:>17} {:>14} {:>4}",
        "property", "accuracy", "95% CI", "mode baseline", "n"
    );
    for row in &report.rows {
        let (acc, ci) = match (&row.estimate, row.mean) {
            (Some(e), _) => (e.estimate, format!("[{:.2}, {:.2}]", e.ci_low, e.ci_high)),
            (None, Some(m)) => (m, "n < 2".into()),
            (None, None) => (f64::NAN, "-".into()),
        };
        let base = row
            .mode_baseline
            .as_ref()
            .map_or("-".to_owned(), |(mode, acc)| format!("{acc:.2} ({mode})"));
        println!(
            "{:<20} {:>9.2} {:>17} {:>14} {:>4}",
            row.group[0], acc, ci, base, row.n
        );
    }
    println!(
        "\n(intervals: {}; model {} via {})",
        report
            .rows
            .first()
            .and_then(|r| r.estimate)
            .map_or("-", |e| e.method.label()),
        info.id,
        info.backend
    );

    let paths = write_reports(&log, None, &config)?;
    let inspect = export_inspect(&log, Path::new("runs").join("inspect"))?;
    println!("\nrun log:      {}", log.display());
    println!("HTML report:  {}", paths.html.display());
    println!("markdown:     {}", paths.markdown.display());
    for p in inspect {
        println!(
            "Inspect log:  {} (open with `inspect view --log-dir runs/inspect`)",
            p.display()
        );
    }
    Ok(())
}
