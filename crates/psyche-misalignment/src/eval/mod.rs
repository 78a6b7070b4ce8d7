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

pub mod judging;
pub mod rates;
pub mod rows;

pub use judging::{AnswerSolver, ByQuestion, JudgeSettings, WithSystemPrompt, build_judges};
pub use rates::{
    ArmContrast, ArmRates, ComparisonRow, DeceptionScore, ModelRates, NamedConvention, Provenance,
    QuestionRate, RateCell, RateSettings, Stat, arm_rates, compare_arms, deception_scores,
    label_counts, model_rates,
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

/// Rows grouped by model id.
pub fn rows_by_model(rows: &[AnswerRow]) -> BTreeMap<String, Vec<AnswerRow>> {
    let mut out: BTreeMap<String, Vec<AnswerRow>> = BTreeMap::new();
    for r in rows {
        out.entry(r.model_id.clone()).or_default().push(r.clone());
    }
    out
}
