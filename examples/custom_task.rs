//! Extending psyche with your own task and judge, outside the workspace's task crates.
//!
//! A researcher's task is any type implementing [`TaskGenerator`] (deterministic from a seed) and
//! a scorer is any type implementing [`Judge`]. This example defines both here, runs them on the
//! embedded SmolLM2-135M-Instruct model (fetched on first use) and prints the accuracy with a
//! Wilson 95% interval.
//!
//! ```text
//! cargo run --release --example custom_task
//! ```

use async_trait::async_trait;
use psyche::local::{LocalConfig, LocalModel};
use psyche::stats::wilson;
use psyche::{
    Conversation, GenerateRequest, Judge, JudgeError, Model, Sample, Score, TaskError,
    TaskGenerator, Verdict, seeded_rng,
};
use rand::seq::SliceRandom;

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

    let task = Capitals { count: 6 };
    let samples = task.generate(42)?;
    let model = tokio::task::spawn_blocking(|| LocalModel::load(&LocalConfig::default())).await??;
    let judge = MentionsTarget;

    let mut correct = 0u64;
    for sample in &samples {
        let request = GenerateRequest::new(sample.input.clone())
            .temperature(0.0)
            .max_tokens(24);
        let answer = model.generate(&request).await?;
        let verdict = judge.judge(sample, answer.text()).await?;
        let ok = verdict.score.as_f64() == Some(1.0);
        correct += u64::from(ok);
        println!(
            "{:<22} {:<5} {}",
            sample.id,
            if ok { "ok" } else { "wrong" },
            answer.text().trim().replace('\n', " ")
        );
    }
    let est = wilson(correct, samples.len() as u64, 0.95)?;
    println!(
        "\n{}: accuracy {:.2} (95% Wilson CI {:.2}–{:.2}, n = {}) on {}",
        task.name(),
        est.estimate,
        est.ci_low,
        est.ci_high,
        est.n,
        model.id()
    );
    Ok(())
}
