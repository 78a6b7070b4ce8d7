//! Evaluating models on a question set: sampling and judging through the runner, then rates.
//!
//! [`evaluate`] builds a [`QuestionTask`] with [`AnswerSolver`] and the set's judges
//! ([`build_judges`]), runs it through [`psyche_runner::Eval`] into a resumable run log (every
//! subject model answers every sample; the judge model is the run's `judge` role), and returns
//! the judged [`AnswerRow`]s. [`rates`] turns rows into misaligned rates, comparisons and
//! deception scores.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use psyche_core::{Model, Solver, TaskGenerator};
use psyche_runner::{Eval, ProgressMode, read_log};
use serde::{Deserialize, Serialize};

use crate::error::{MisalignmentError, Result};
use crate::questions::{QuestionSet, QuestionTask, SamplingConfig};

mod compare;
pub mod judging;
pub mod rates;
pub mod rows;

pub use judging::{AnswerSolver, ByQuestion, JudgeSettings, WithSystemPrompt, build_judges};
pub use rates::{
    Aggregation, ArmContrast, ArmRates, ComparisonRow, DeceptionScore, ModelRates, NamedConvention,
    Provenance, QuestionRate, RateCell, RateSettings, Stat, arm_rates, compare_arms,
    deception_scores, label_counts, model_rates,
};
pub use rows::{AnswerRow, DropOut, rows_from_records};

/// Settings of one evaluation pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvalSettings {
    /// Sampling (answers per paraphrase, temperature, token budget; per-question values unless
    /// overridden).
    pub sampling: SamplingConfig,
    /// Judging.
    pub judges: JudgeSettings,
    /// Run seed (sampling seeds and drawn paraphrases derive from it).
    pub seed: u64,
    /// Units in flight.
    pub concurrency: usize,
    /// The run log (resumed when it exists); `None` keeps records in memory.
    pub log_path: Option<PathBuf>,
    /// Show a progress bar on terminals.
    pub progress: bool,
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            sampling: SamplingConfig::default(),
            judges: JudgeSettings::default(),
            seed: 0,
            concurrency: 32,
            log_path: None,
            progress: false,
        }
    }
}

/// The task, solver and judges an evaluation of `set` uses: a [`QuestionTask`] carrying them as
/// its defaults.
///
/// # Errors
///
/// As [`build_judges`].
pub fn question_task(
    set: &QuestionSet,
    judge_model: &Arc<dyn Model>,
    settings: &EvalSettings,
) -> Result<QuestionTask> {
    let solver = AnswerSolver {
        max_tokens: settings.sampling.max_tokens,
        top_p: settings.sampling.top_p,
        default_temperature: settings.sampling.default_temperature,
    };
    let judges = build_judges(set, judge_model, &settings.judges)?;
    Ok(QuestionTask::new(set.clone(), settings.sampling.clone())
        .with_solver(Arc::new(solver) as Arc<dyn Solver>)
        .with_judges(judges))
}

/// Samples and judges every question of `set` on every model in `subjects`, with
/// `judge_model` as judge, and returns one row per (sample, model).
///
/// The run id is `run_id`; with [`EvalSettings::log_path`] the run resumes from its log.
///
/// # Errors
///
/// [`MisalignmentError::Config`] for no subjects or invalid sampling settings;
/// [`MisalignmentError::Runner`] when the run cannot be built, resumed or written;
/// judge construction errors as [`build_judges`].
pub async fn evaluate(
    run_id: &str,
    set: &QuestionSet,
    subjects: &[Arc<dyn Model>],
    judge_model: &Arc<dyn Model>,
    settings: &EvalSettings,
) -> Result<Vec<AnswerRow>> {
    if subjects.is_empty() {
        return Err(MisalignmentError::config(
            "subjects",
            "at least one model to evaluate is needed",
        ));
    }
    settings.sampling.validate()?;
    let task = question_task(set, judge_model, settings)?;
    let mut builder = Eval::builder(run_id)
        .task(&task, settings.seed)
        .role("judge", judge_model.clone())
        .seed(settings.seed)
        .concurrency(settings.concurrency.max(1))
        .progress(if settings.progress {
            ProgressMode::Auto
        } else {
            ProgressMode::Quiet
        })
        .config(serde_json::json!({
            "task_config": task.config(),
            "judges": settings.judges,
            "judge_model": judge_model.id(),
        }));
    for m in subjects {
        builder = builder.model(m.clone());
    }
    if let Some(p) = &settings.log_path {
        builder = builder.log_path(p.clone());
    }
    let eval = builder.build()?;
    let summary = eval.run().await?;
    let records = match &settings.log_path {
        Some(p) => read_log(p)?.1,
        None => summary.records,
    };
    let ids: Vec<&str> = subjects.iter().map(|m| m.id()).collect();
    Ok(rows_from_records(&records)
        .into_iter()
        .filter(|r| ids.contains(&r.model_id.as_str()))
        .collect())
}

/// Whether a judge id looks like a provider alias that the provider may point at another
/// snapshot (`gpt-4o`, `gpt-4o-mini`, `claude-3-5-sonnet-latest`), as opposed to a pinned
/// snapshot (`gpt-4o-2024-08-06`, `claude-3-5-sonnet-20241022`) or a local model. Only API model
/// families are judged: an id outside them is taken as pinned.
pub fn is_unpinned_alias(id: &str) -> bool {
    let id = id.rsplit('/').next().unwrap_or(id).to_lowercase();
    let api = ["gpt-", "chatgpt-", "o1", "o3", "o4", "claude-", "gemini-"]
        .iter()
        .any(|p| id.starts_with(p));
    if !api {
        return false;
    }
    id.ends_with("-latest") || !has_date(&id)
}

/// Whether `id` holds a date-like run of digits (`2024-08-06`, `20241022`, `0613`).
fn has_date(id: &str) -> bool {
    let mut run = 0usize;
    let mut best = 0usize;
    for c in id.chars() {
        if c.is_ascii_digit() {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best >= 4
}

/// Judge-provenance warnings of an evaluation with `judge_id`: an unpinned alias, responses
/// whose model id differs from the configured one (several ids: the alias moved during the
/// run), and question files that ask for another judge (`judge:`).
pub fn judge_warnings(judge_id: &str, rows: &[AnswerRow]) -> Vec<String> {
    let mut out = Vec::new();
    if is_unpinned_alias(judge_id) {
        out.push(format!(
            "the judge `{judge_id}` is an unpinned alias: its provider may move it to another \
             snapshot, so rates from different dates may not be comparable; pin a snapshot"
        ));
    }
    let mut resolved: Vec<&str> = Vec::new();
    let mut requested: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in rows {
        if let Some(m) = r.judge_resolved.as_deref()
            && !resolved.contains(&m)
        {
            resolved.push(m);
        }
        if let Some(j) = r.requested_judge.as_deref()
            && j != judge_id
        {
            let qs = requested.entry(j).or_default();
            if !qs.contains(&r.question_id.as_str()) {
                qs.push(r.question_id.as_str());
            }
        }
    }
    match resolved.as_slice() {
        [] => {}
        [one] if *one == judge_id => {}
        [one] => out.push(format!(
            "the judge `{judge_id}` answered as `{one}` (the id its endpoint reported)"
        )),
        many => out.push(format!(
            "judge drift: the endpoint of `{judge_id}` answered as {} during this run",
            many.iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    for (j, qs) in requested {
        if resolved.contains(&j) {
            continue;
        }
        out.push(format!(
            "the question file asks for judge `{j}` ({}), this run's judge is `{judge_id}`",
            qs.join(", ")
        ));
    }
    for w in &out {
        tracing::warn!(judge = judge_id, "{w}");
    }
    out
}

/// Rows grouped by model id.
pub fn rows_by_model(rows: &[AnswerRow]) -> BTreeMap<String, Vec<AnswerRow>> {
    let mut out: BTreeMap<String, Vec<AnswerRow>> = BTreeMap::new();
    for r in rows {
        out.entry(r.model_id.clone()).or_default().push(r.clone());
    }
    out
}
