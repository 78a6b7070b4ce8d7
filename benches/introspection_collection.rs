//! Object-level collection throughput of psyche-introspection on the embedded model: 1,000
//! object-level prompts (held-out and training sequence families) answered at T = 0 through
//! the runner, reported as prompts/s beside psyche-local's inference figures
//! (`crates/psyche-local/README.md`), then the same number of hypothetical prompts read with
//! the constrained method.
//!
//! ```text
//! cargo bench -p psyche --bench introspection_collection
//! PSYCHE_BENCH_PROMPTS=200 cargo bench -p psyche --bench introspection_collection
//! ```
//!
//! One run, no repetitions (a run takes about a minute); numbers depend on the machine's load.

use std::sync::Arc;
use std::time::Instant;

use psyche::Model;
use psyche::introspection::collect::{RunOptions, collect_hypothetical, collect_object};
use psyche::introspection::solve::ObjectSolver;
use psyche::introspection::{AnswerMethod, Family, HypotheticalTemplate, hypothetical_samples};
use psyche::local::{LocalConfig, LocalModel};
use psyche::runner::ProgressMode;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::var("PSYCHE_BENCH_PROMPTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let model: Arc<dyn Model> = Arc::new(LocalModel::load(&LocalConfig::default())?);
    let families = ["animals", "english_words", "colours", "countries", "digits"];
    let per = n.div_ceil(families.len());
    let mut objects = Vec::new();
    for f in families {
        objects.extend(Family::builtin(f)?.samples(per, 0)?);
    }
    objects.truncate(n);
    let options = RunOptions {
        progress: ProgressMode::Quiet,
        concurrency: 32,
        ..RunOptions::default()
    };

    let t = Instant::now();
    let behaviour = collect_object(
        "bench-object",
        model.clone(),
        &objects,
        &ObjectSolver::default(),
        &options,
    )
    .await?;
    let secs = t.elapsed().as_secs_f64();
    let counts = behaviour.counts();
    let tokens: usize = behaviour
        .answers
        .values()
        .map(|a| a.answer.split_whitespace().count())
        .sum();
    println!(
        "object level: {} prompts in {secs:.1} s = {:.2} prompts/s ({} non-answers, {} failed; ~{} words generated)",
        objects.len(),
        objects.len() as f64 / secs,
        counts.non_answers,
        counts.failed,
        tokens
    );

    let props = vec![psyche::judges::Property::nth_character(2)];
    let hyps = hypothetical_samples(&objects, &props, &HypotheticalTemplate::default())?;
    let t = Instant::now();
    let answers = collect_hypothetical(
        "bench-hyp",
        model,
        &hyps,
        &AnswerMethod::constrained(),
        &options,
    )
    .await?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "hypothetical (constrained, exact next-token distribution): {} prompts in {secs:.1} s = {:.2} prompts/s",
        answers.answers.len(),
        answers.answers.len() as f64 / secs
    );
    Ok(())
}
