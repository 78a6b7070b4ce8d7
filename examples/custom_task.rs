//! Extending psyche with your own task, solver and judge, outside the workspace's task crates.
//!
//! A researcher's task is any type implementing [`TaskGenerator`] (deterministic from a seed),
//! a scorer any type implementing [`Judge`], and a multi-step procedure any [`Solver`]. The
//! generator declares the judge its samples are meant for, so the run is assembled from the
//! generator alone: the runner writes a resumable log (rerun the example: every unit is skipped),
//! and the report gives the accuracy with its 95% interval. Everything here is imported from
//! the `psyche` facade; a project of your own needs only `psyche` and `tokio` as dependencies.
//!
//! The solver asks the question, then asks the model to double-check its answer, a two-step
//! procedure a plain generation cannot express; the judge scores the final answer.
//!
//! ```text
//! cargo run --release --example custom_task
//! ```

use std::path::Path;
use std::sync::Arc;

use psyche::local::{LocalConfig, LocalModel};
use psyche::rand::seq::SliceRandom;
use psyche::runner::Eval;
use psyche::runner::report::{ReportConfig, summarize, write_reports};
use psyche::{
    ChatMessage, Conversation, GenerateRequest, Judge, JudgeError, Sample, Score, Solution,
    SolveContext, Solver, SolverError, TaskError, TaskGenerator, Verdict, async_trait, seeded_rng,
};

/// Asks for the capital of a country, in a seeded random order.
struct Capitals {
    count: usize,
}

const CAPITALS: &[(&str, &str)] = &[
    ("France", "Paris"),
    ("Germany", "Berlin"),
    ("Italy", "Rome"),
    ("Spain", "Madrid"),
    ("Japan", "Tokyo"),
    ("Egypt", "Cairo"),
    ("Canada", "Ottawa"),
    ("Kenya", "Nairobi"),
    ("Peru", "Lima"),
    ("Norway", "Oslo"),
];

impl TaskGenerator for Capitals {
    fn name(&self) -> &str {
        "capitals"
    }

    fn config(&self) -> psyche::serde_json::Value {
        psyche::serde_json::json!({ "count": self.count })
    }

    fn generate(&self, seed: u64) -> Result<Vec<Sample>, TaskError> {
        if self.count > CAPITALS.len() {
            return Err(TaskError::Config(format!(
                "count {} exceeds the {} countries available",
                self.count,
                CAPITALS.len()
            )));
        }
        let mut items = CAPITALS.to_vec();
        items.shuffle(&mut seeded_rng(seed));
        Ok(items
            .into_iter()
            .take(self.count)
            .map(|(country, capital)| {
                Sample::new(
                    format!("capital-{country}"),
                    Conversation::user(format!("What is the capital of {country}?")),
                )
                .with_target(capital)
                .with_meta("task", "capitals")
            })
            .collect())
    }

    fn solver(&self) -> Option<Arc<dyn Solver>> {
        Some(Arc::new(AnswerThenCheck { max_tokens: 24 }))
    }

    fn judges(&self) -> Vec<Arc<dyn Judge>> {
        vec![Arc::new(MentionsTarget)]
    }
}

/// Answers, then is asked to check that answer and give the final one.
struct AnswerThenCheck {
    max_tokens: u32,
}

#[async_trait]
impl Solver for AnswerThenCheck {
    fn id(&self) -> &str {
        "answer_then_check"
    }

    fn config(&self) -> psyche::serde_json::Value {
        psyche::serde_json::json!({ "max_tokens": self.max_tokens })
    }

    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, SolverError> {
        let ask = |messages: Conversation| {
            GenerateRequest::new(messages)
                .temperature(0.0)
                .max_tokens(self.max_tokens)
                .seed(ctx.seed)
        };
        let first = ctx.model.generate(&ask(ctx.sample.input.clone())).await?;
        let transcript = ctx
            .sample
            .input
            .clone()
            .with(ChatMessage::assistant(first.text()))
            .with(ChatMessage::user(
                "Check your answer. Reply with just the name of the city.",
            ));
        let checked = ctx.model.generate(&ask(transcript.clone())).await?;
        let output = checked.text().trim().to_owned();
        if output.is_empty() {
            return Err(SolverError::invalid("the model gave an empty final answer"));
        }
        Ok(Solution {
            transcript: Some(transcript.with(ChatMessage::assistant(output.clone()))),
            ..Solution::new(output).with_meta("first_answer", first.text().trim())
        })
    }
}

/// Correct when the answer mentions the target city (case-insensitive).
struct MentionsTarget;

#[async_trait]
impl Judge for MentionsTarget {
    fn id(&self) -> &str {
        "mentions_target"
    }

    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let target = sample.target.as_deref().ok_or_else(|| JudgeError::Sample {
            sample: sample.id.clone(),
            message: "no target".into(),
        })?;
        let hit = output.to_lowercase().contains(&target.to_lowercase());
        Ok(Verdict::new(self.id(), Score::Bool(hit)))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let model = tokio::task::spawn_blocking(|| LocalModel::load(&LocalConfig::default())).await??;
    let log = Path::new("runs").join("custom-task.jsonl");
    let summary = Eval::builder("custom-task")
        .task(&Capitals { count: 6 }, 42)
        .model(model)
        .log_path(&log)
        .build()?
        .run()
        .await?;
    println!(
        "{} units run, {} resumed from the log, {} errors",
        summary.completed, summary.skipped, summary.errors
    );

    let config = ReportConfig {
        title: Some("Capitals, answered then checked".into()),
        ..ReportConfig::default()
    };
    for row in &summarize(&log, &config)?.rows {
        match &row.estimate {
            Some(e) => println!(
                "{} / {}: accuracy {:.2} (95% CI {:.2}–{:.2}, {}, n = {})",
                row.model,
                row.judge,
                e.estimate,
                e.ci_low,
                e.ci_high,
                e.method.label(),
                row.n
            ),
            None => println!("{} / {}: n = {} (no interval)", row.model, row.judge, row.n),
        }
    }
    let paths = write_reports(&log, None, &config)?;
    println!("report: {}", paths.html.display());
    Ok(())
}
