//! Collection passes: object-level answers and hypothetical answers of one model, run through
//! the runner ([`psyche_runner::Eval`]) into resumable run logs.
//!
//! Each pass writes `<dir>/<label>-<hash>.jsonl`, where the hash covers the model, the solver
//! configuration and the samples, so a rerun with the same settings resumes (skipping every
//! answered sample) and a run with other settings starts a new log. Without a directory the
//! records stay in memory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use psyche_core::{Model, Record, Sample, Solver};
use psyche_judges::Property;
use psyche_judges::compliance::{Compliance, ComplianceChecker};
use psyche_runner::{Eval, ProgressMode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::solve::{
    ANSWER_DISTRIBUTION_KEY, ANSWER_MASS_KEY, ANSWER_METHOD_KEY, AnswerMethod, HypotheticalSolver,
    ObjectSolver, VALID_MASS_KEY, object_judges,
};

/// Where and how collection passes run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Directory of the run logs (`None`: in memory, no resume).
    pub dir: Option<PathBuf>,
    /// Units of work in flight.
    pub concurrency: usize,
    /// Progress display.
    pub progress: ProgressMode,
    /// Run seed (each sample's seed derives from it).
    pub seed: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            dir: None,
            concurrency: 16,
            progress: ProgressMode::Auto,
            seed: 0,
        }
    }
}

impl RunOptions {
    /// Logs under `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Some(dir.into()),
            ..Self::default()
        }
    }
}

fn run_hash(model: &dyn Model, solver: &dyn Solver, samples: &[Sample]) -> String {
    let mut h = Sha256::new();
    h.update(model.id().as_bytes());
    h.update([0]);
    h.update(solver.id().as_bytes());
    h.update(solver.config().to_string().as_bytes());
    for s in samples {
        h.update(s.id.as_bytes());
        h.update([0]);
        h.update(serde_json::to_vec(&s.input).unwrap_or_default());
    }
    hex::encode(h.finalize())[..10].to_owned()
}

fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Runs `samples` on `model` with `solver` (and `judges`) as one resumable pass; returns this
/// model's records, one per sample, in no particular order.
///
/// # Errors
///
/// [`IntrospectionError::Runner`](crate::IntrospectionError::Runner) when the run or its log
/// fails.
pub async fn run_pass(
    label: &str,
    model: Arc<dyn Model>,
    samples: &[Sample],
    solver: Arc<dyn Solver>,
    judges: Vec<Arc<dyn psyche_core::Judge>>,
    options: &RunOptions,
) -> Result<Vec<Record>> {
    let run_id = format!(
        "{}-{}",
        sanitize(label),
        run_hash(model.as_ref(), solver.as_ref(), samples)
    );
    let mut b = Eval::builder(&run_id)
        .task_name(label)
        .samples(samples.to_vec())
        .model(model.clone())
        .solver(solver)
        .seed(options.seed)
        .concurrency(options.concurrency.max(1))
        .progress(options.progress);
    for j in judges {
        b = b.judge(j);
    }
    let log = options
        .dir
        .as_ref()
        .map(|d| d.join(format!("{run_id}.jsonl")));
    if let Some(path) = &log {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| crate::IntrospectionError::io(parent, e))?;
        }
        b = b.log_path(path);
    }
    let summary = b.build()?.run().await?;
    tracing::info!(
        run_id,
        completed = summary.completed,
        resumed = summary.skipped,
        errors = summary.errors,
        "collection pass finished"
    );
    let records = match log {
        Some(path) => psyche_runner::read_log(&path)?.1,
        None => summary.records,
    };
    let wanted: std::collections::HashSet<&str> = samples.iter().map(|s| s.id.as_str()).collect();
    Ok(records
        .into_iter()
        .filter(|r| r.model_id == model.id() && wanted.contains(r.sample_id.as_str()))
        .collect())
}

/// One object-level answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectAnswer {
    /// The family (task).
    pub task: String,
    /// The trimmed answer (empty when the unit failed).
    pub answer: String,
    /// `false` for refusals and non-answers.
    pub compliant: bool,
    /// Why it is not an answer, or the unit's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The stance target of stance items (the letter of the option showing the stance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stance_target: Option<String>,
    /// Whether the unit failed (model error).
    #[serde(default)]
    pub failed: bool,
}

/// Why an item has no property value to predict.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// No object-level answer was collected for the item.
    NotCollected,
    /// The object-level call failed.
    Failed,
    /// The object-level answer is a refusal or non-answer.
    NonAnswer,
    /// The answer lacks the property (too short, not a number, ...).
    NoProperty,
}

impl Missing {
    /// The snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Missing::NotCollected => "not_collected",
            Missing::Failed => "object_failed",
            Missing::NonAnswer => "object_non_answer",
            Missing::NoProperty => "object_lacks_property",
        }
    }
}

/// One model's object-level behaviour: object sample id → answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectBehaviour {
    /// The model's id.
    pub model: String,
    /// Answers by object sample id.
    pub answers: BTreeMap<String, ObjectAnswer>,
}

impl ObjectBehaviour {
    /// Builds the table from object-level records (of [`ObjectSolver`] or any solver whose
    /// output is the answer), checking every answer for refusals with `compliance`.
    pub fn from_records(model: &str, records: &[Record], compliance: &ComplianceChecker) -> Self {
        let mut answers = BTreeMap::new();
        for r in records.iter().filter(|r| r.model_id == model) {
            let task = r.meta_str("task").unwrap_or_default().to_owned();
            let stance_target = r.meta_str("stance_target").map(str::to_owned);
            let a = match (&r.output, &r.error) {
                (Some(out), None) => {
                    let answer = out.trim().to_owned();
                    let c = compliance.check_object_answer(&answer);
                    ObjectAnswer {
                        task,
                        compliant: c.is_compliant(),
                        reason: c.reason().map(str::to_owned),
                        answer,
                        stance_target,
                        failed: false,
                    }
                }
                (_, err) => ObjectAnswer {
                    task,
                    answer: String::new(),
                    compliant: false,
                    reason: Some(err.clone().unwrap_or_else(|| "no output".into())),
                    stance_target,
                    failed: true,
                },
            };
            answers.insert(r.sample_id.clone(), a);
        }
        Self {
            model: model.to_owned(),
            answers,
        }
    }

    /// The property value of an item's answer in its canonical form
    /// ([`Property::canonical`], the form it is compared in), or why there is none.
    pub fn property(&self, object_id: &str, property: &Property) -> Result<String, Missing> {
        let a = self.answers.get(object_id).ok_or(Missing::NotCollected)?;
        if a.failed {
            return Err(Missing::Failed);
        }
        if !a.compliant {
            return Err(Missing::NonAnswer);
        }
        property
            .extract_canonical(&a.answer, a.stance_target.as_deref())
            .ok_or(Missing::NoProperty)
    }

    /// Counts of answered items, non-answers and failures.
    pub fn counts(&self) -> ObjectCounts {
        let mut c = ObjectCounts::default();
        for a in self.answers.values() {
            c.total += 1;
            if a.failed {
                c.failed += 1;
            } else if !a.compliant {
                c.non_answers += 1;
            }
        }
        c
    }
}

/// Counts over one model's object-level answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectCounts {
    /// Items collected.
    pub total: usize,
    /// Refusals and non-answers (excluded from scoring and baselines).
    pub non_answers: usize,
    /// Failed calls.
    pub failed: usize,
}

/// Collects `model`'s object-level answers to `samples` (one resumable pass) and checks each
/// for refusals and non-answers.
///
/// # Errors
///
/// As [`run_pass`].
pub async fn collect_object(
    label: &str,
    model: Arc<dyn Model>,
    samples: &[Sample],
    solver: &ObjectSolver,
    options: &RunOptions,
) -> Result<ObjectBehaviour> {
    let props: Vec<Property> = samples
        .iter()
        .filter_map(|s| s.metadata.get("properties"))
        .filter_map(|v| v.as_array())
        .flatten()
        .filter_map(|v| v.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter_map(|n| Property::from_name(n).ok())
        .collect();
    let records = run_pass(
        label,
        model.clone(),
        samples,
        Arc::new(solver.clone()),
        object_judges(&props),
        options,
    )
    .await?;
    Ok(ObjectBehaviour::from_records(
        model.id(),
        &records,
        &solver.compliance,
    ))
}

/// One hypothetical answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HypotheticalRecord {
    /// The answer as read (empty when the unit failed).
    pub answer: String,
    /// How it was read.
    pub method: String,
    /// The distribution over valid answers (constrained reading), renormalised over them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<BTreeMap<String, f64>>,
    /// The raw probability mass of each valid answer (constrained reading), not renormalised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mass: Option<BTreeMap<String, f64>>,
    /// The total probability mass on valid answers (constrained reading).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_mass: Option<f64>,
    /// The unit's error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One model's hypothetical answers: hypothetical sample id → answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HypotheticalAnswers {
    /// The model's id.
    pub model: String,
    /// The answer method.
    pub method: String,
    /// Answers by hypothetical sample id.
    pub answers: BTreeMap<String, HypotheticalRecord>,
}

impl HypotheticalRecord {
    /// The raw probability mass of each valid answer: the recorded mass, else the
    /// renormalised distribution scaled back by the valid mass (logs written before the mass
    /// was recorded); `None` without a constrained distribution.
    pub fn raw_mass(&self) -> Option<BTreeMap<String, f64>> {
        if let Some(m) = &self.mass {
            return Some(m.clone());
        }
        let d = self.distribution.as_ref()?;
        let total = self.valid_mass?;
        Some(d.iter().map(|(k, p)| (k.clone(), p * total)).collect())
    }
}

impl HypotheticalAnswers {
    /// Builds the table from hypothetical records.
    pub fn from_records(model: &str, method: &str, records: &[Record]) -> Self {
        let answers = records
            .iter()
            .filter(|r| r.model_id == model)
            .map(|r| {
                let map = |key: &str| -> Option<BTreeMap<String, f64>> {
                    r.metadata
                        .get(key)
                        .and_then(|v| serde_json::from_value(v.clone()).ok())
                };
                let distribution = map(ANSWER_DISTRIBUTION_KEY);
                let mass = map(ANSWER_MASS_KEY);
                let valid_mass = r
                    .metadata
                    .get(VALID_MASS_KEY)
                    .and_then(serde_json::Value::as_f64);
                (
                    r.sample_id.clone(),
                    HypotheticalRecord {
                        answer: r.output.clone().unwrap_or_default(),
                        method: r.meta_str(ANSWER_METHOD_KEY).unwrap_or(method).to_owned(),
                        distribution,
                        mass,
                        valid_mass,
                        error: r.error.clone(),
                    },
                )
            })
            .collect();
        Self {
            model: model.to_owned(),
            method: method.to_owned(),
            answers,
        }
    }
}

/// Collects `model`'s answers to hypothetical `samples` (one resumable pass).
///
/// # Errors
///
/// As [`run_pass`].
pub async fn collect_hypothetical(
    label: &str,
    model: Arc<dyn Model>,
    samples: &[Sample],
    method: &AnswerMethod,
    options: &RunOptions,
) -> Result<HypotheticalAnswers> {
    let records = run_pass(
        label,
        model.clone(),
        samples,
        Arc::new(HypotheticalSolver::new(method.clone())),
        Vec::new(),
        options,
    )
    .await?;
    Ok(HypotheticalAnswers::from_records(
        model.id(),
        method.name(),
        &records,
    ))
}

/// Whether an object-level answer passes the object-level compliance check (shorthand).
pub fn is_answer(compliance: &ComplianceChecker, answer: &str) -> bool {
    matches!(
        compliance.check_object_answer(answer),
        Compliance::Compliant
    )
}
