//! Shared machinery of the experiments: named models and arms, one resumable evaluation run
//! over every model, and the statistics read back from its records. (Fine-tuning is not here:
//! the experiments train through `psyche_runner::training::train_runs`.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{
    Conversation, GenerateRequest, GenerateResponse, HiddenStates, LogLikelihood, Model,
    ModelError, ModelInfo, OptionProbabilities, OptionQuery, Record, TaskGenerator,
    TokenDistribution,
};
use psyche_runner::{Eval, ProgressMode};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::probe::{ProbeSolver, ScoreJudge};

/// A model under a name of our choosing (`risk_seeking/seed-0`): records, logs and reports use
/// the name; every call is forwarded. (A candidate for psyche-core.)
pub struct NamedModel {
    name: String,
    inner: Arc<dyn Model>,
}

impl std::fmt::Debug for NamedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedModel")
            .field("name", &self.name)
            .field("inner", &self.inner.id())
            .finish()
    }
}

impl NamedModel {
    /// `inner` under `name`.
    pub fn new(name: impl Into<String>, inner: Arc<dyn Model>) -> Self {
        Self {
            name: name.into(),
            inner,
        }
    }

    /// The wrapped model.
    pub fn inner(&self) -> &Arc<dyn Model> {
        &self.inner
    }
}

#[async_trait]
impl Model for NamedModel {
    fn id(&self) -> &str {
        &self.name
    }
    fn capabilities(&self) -> psyche_core::Capabilities {
        self.inner.capabilities()
    }
    fn info(&self) -> ModelInfo {
        let mut i = self.inner.info();
        if let serde_json::Value::Object(m) = &mut i.settings {
            m.insert("wrapped_id".into(), i.id.clone().into());
        } else {
            i.settings = serde_json::json!({ "wrapped_id": i.id });
        }
        i.id = self.name.clone();
        i
    }
    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        self.inner.generate(request).await
    }
    async fn next_token_distribution(
        &self,
        messages: &Conversation,
        top_k: u32,
    ) -> Result<TokenDistribution, ModelError> {
        self.inner.next_token_distribution(messages, top_k).await
    }
    async fn loglikelihood(
        &self,
        context: &Conversation,
        continuation: &str,
    ) -> Result<LogLikelihood, ModelError> {
        self.inner.loglikelihood(context, continuation).await
    }
    async fn hidden_states(&self, messages: &Conversation) -> Result<HiddenStates, ModelError> {
        self.inner.hidden_states(messages).await
    }
    async fn sample_answers(
        &self,
        messages: &Conversation,
        k: u32,
        temperature: f32,
        max_tokens: u32,
        seed: u64,
    ) -> Result<Vec<String>, ModelError> {
        self.inner
            .sample_answers(messages, k, temperature, max_tokens, seed)
            .await
    }
    async fn option_probabilities(
        &self,
        messages: &Conversation,
        query: &OptionQuery,
    ) -> Result<OptionProbabilities, ModelError> {
        self.inner.option_probabilities(messages, query).await
    }
}

/// One evaluated model: its arm (`base`, `risk_seeking`, `control`, ...), its fine-tuning
/// seed, and the model (named `<arm>/seed-<seed>`, or the arm for the base model).
#[derive(Clone)]
pub struct ArmModel {
    /// The arm.
    pub arm: String,
    /// The fine-tuning seed (`None` for untrained models).
    pub seed: Option<u64>,
    /// The model, already named.
    pub model: Arc<dyn Model>,
}

impl std::fmt::Debug for ArmModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmModel")
            .field("arm", &self.arm)
            .field("seed", &self.seed)
            .field("model", &self.model.id())
            .finish()
    }
}

impl ArmModel {
    /// The base (untrained) model as arm `base`.
    pub fn base(model: Arc<dyn Model>) -> Self {
        Self {
            arm: "base".into(),
            seed: None,
            model: Arc::new(NamedModel::new("base", model)),
        }
    }

    /// A fine-tune of `arm` with `seed`, named `<arm>/seed-<seed>`.
    pub fn trained(arm: &str, seed: u64, model: Arc<dyn Model>) -> Self {
        Self {
            arm: arm.into(),
            seed: Some(seed),
            model: Arc::new(NamedModel::new(format!("{arm}/seed-{seed}"), model)),
        }
    }

    /// The model's name in records.
    pub fn name(&self) -> &str {
        self.model.id()
    }
}

pub use psyche_core::DataSeeds;

/// Settings of an evaluation pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateOptions {
    /// Run seed (sampling, fresh items).
    pub seed: u64,
    /// Concurrent units of work.
    pub concurrency: usize,
    /// How self-reports are read.
    pub mode: crate::probe::ScoringMode,
    /// Samples per self-report question when sampling.
    pub samples: u32,
    /// Token budget of sampled self-report answers.
    pub max_tokens: u32,
}

impl Default for EvaluateOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            concurrency: 8,
            mode: crate::probe::ScoringMode::Auto,
            samples: 8,
            max_tokens: 8,
        }
    }
}

/// Runs every task on every model into one run log (resumable: rerunning with the same log
/// skips what it holds) and returns all the log's records.
///
/// # Errors
///
/// Runner errors (bad configuration, a log that cannot be resumed).
pub async fn evaluate(
    run_id: &str,
    log: &Path,
    models: &[ArmModel],
    tasks: &[&dyn TaskGenerator],
    settings: &EvaluateOptions,
    roles: &[(String, Arc<dyn Model>)],
) -> Result<Vec<Record>> {
    let mut solver = ProbeSolver::new(settings.mode, settings.samples);
    solver.max_tokens = settings.max_tokens;
    let mut b = Eval::builder(run_id)
        .solver(solver)
        .judge(ScoreJudge::default())
        .seed(settings.seed)
        .concurrency(settings.concurrency.max(1))
        .progress(ProgressMode::Auto)
        .log_path(log);
    for t in tasks {
        b = b.task(*t, settings.seed);
    }
    for m in models {
        b = b.model(Arc::clone(&m.model));
    }
    for (name, model) in roles {
        b = b.role(name.clone(), Arc::clone(model));
    }
    let summary = b.build()?.run().await?;
    tracing::info!(
        run = run_id,
        completed = summary.completed,
        skipped = summary.skipped,
        errors = summary.errors,
        elapsed = ?summary.elapsed,
        "evaluation pass"
    );
    let (_, records) = psyche_runner::read_log(log)?;
    Ok(records)
}

pub use psyche_stats::Stat;

/// A statistic's value, if it has one.
pub fn stat_value(s: &Stat) -> Option<f64> {
    s.value()
}

/// The `score` of every record for `model` that passes `keep`, with its sample id and
/// cluster. Failed records and records without a score are skipped.
pub fn scores<'a, F>(records: &'a [Record], model: &str, keep: F) -> Vec<(&'a str, String, f64)>
where
    F: Fn(&Record) -> bool,
{
    records
        .iter()
        .filter(|r| r.model_id == model && r.error.is_none() && keep(r))
        .filter_map(|r| {
            r.score("score").filter(|v| v.is_finite()).map(|v| {
                (
                    r.sample_id.as_str(),
                    r.cluster.clone().unwrap_or_else(|| r.sample_id.clone()),
                    v,
                )
            })
        })
        .collect()
}

/// Records for `model` that passed `keep` but carry an error or no score: counted, so reports
/// can say how many were lost.
pub fn missing<F>(records: &[Record], model: &str, keep: F) -> usize
where
    F: Fn(&Record) -> bool,
{
    records
        .iter()
        .filter(|r| r.model_id == model && keep(r))
        .filter(|r| r.error.is_some() || r.score("score").is_none())
        .count()
}

/// How a model's self-report answers were read, from the records' solver metadata: how many
/// records, how many fell back (no valid answer: skipped or imputed), the mean valid mass
/// (probability or share of samples that was a valid number or listed word) and the reading
/// methods used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Records counted.
    pub records: usize,
    /// Records whose score the fallback decided (or that got none).
    pub fell_back: usize,
    /// `fell_back / records`, `None` for no records.
    pub fallback_rate: Option<f64>,
    /// Mean valid mass over records, `None` for no records.
    pub valid_mass: Option<f64>,
    /// Records per reading method (`single_token`, `complete_answer`, `sampled`,
    /// `whole_word_likelihood`, ...).
    pub methods: std::collections::BTreeMap<String, usize>,
}

/// The [`Reading`] of `model`'s records that pass `keep`.
pub fn reading<F>(records: &[Record], model: &str, keep: F) -> Reading
where
    F: Fn(&Record) -> bool,
{
    let mut out = Reading::default();
    let mut mass = 0.0;
    for r in records
        .iter()
        .filter(|r| r.model_id == model && r.error.is_none() && keep(r))
    {
        out.records += 1;
        if r.metadata
            .get("fell_back")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
        {
            out.fell_back += 1;
        }
        mass += r
            .metadata
            .get("valid_mass")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0);
        let method = r
            .metadata
            .get("detail")
            .and_then(|d| d.get("method"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("distribution");
        *out.methods.entry(method.to_owned()).or_default() += 1;
    }
    if out.records > 0 {
        out.fallback_rate = Some(out.fell_back as f64 / out.records as f64);
        out.valid_mass = Some(mass / out.records as f64);
    }
    out
}

/// One model's mean with a t-interval over items (`clustered` = cluster-robust by record
/// cluster): a statement about this model on these items.
pub fn item_mean(values: &[(&str, String, f64)], clustered: bool, level: f64) -> Stat {
    let v: Vec<f64> = values.iter().map(|x| x.2).collect();
    if clustered {
        let c: Vec<&str> = values.iter().map(|x| x.1.as_str()).collect();
        psyche_stats::clustered_mean_ci(&v, &c, level).into()
    } else {
        psyche_stats::mean_ci(&v, level).into()
    }
}

pub use psyche_stats::ArmContrast;

/// Where an experiment writes: data, adapters, run logs and reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutDir(pub PathBuf);

impl OutDir {
    /// `<root>/data`.
    pub fn data(&self) -> PathBuf {
        self.0.join("data")
    }
    /// `<root>/runs`.
    pub fn runs(&self) -> PathBuf {
        self.0.join("runs")
    }
    /// `<root>/report`.
    pub fn report(&self) -> PathBuf {
        self.0.join("report")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psyche_stats::{ArmData, ArmOptions, IntervalVerdict};

    #[test]
    fn each_run_draws_its_own_data_seed_unless_fixed() {
        let per_run: Vec<u64> = (0..4).map(|s| DataSeeds::PerRun.for_run(7, s)).collect();
        let distinct: std::collections::BTreeSet<u64> = per_run.iter().copied().collect();
        assert_eq!(distinct.len(), 4, "{per_run:?}");
        assert!(!per_run.contains(&7));
        assert_eq!(DataSeeds::PerRun.for_run(7, 2), per_run[2], "reproducible");
        assert_ne!(
            DataSeeds::PerRun.for_run(8, 2),
            per_run[2],
            "depends on the base"
        );
        assert!((0..4).all(|s| DataSeeds::Fixed.for_run(7, s) == 7));
        assert_eq!(DataSeeds::default(), DataSeeds::PerRun);
        assert_eq!(
            serde_json::to_string(&DataSeeds::PerRun).unwrap(),
            "\"per_run\""
        );
    }

    fn data(t: &[(u64, f64)], c: &[(u64, f64)]) -> ArmData {
        let mut d = ArmData::new();
        for (seed, v) in t {
            for (k, x) in [(0, -0.05), (1, 0.0), (2, 0.05)] {
                d.item("t", seed, format!("i{k}"), v + x);
            }
        }
        for (seed, v) in c {
            for (k, x) in [(0, -0.05), (1, 0.0), (2, 0.05)] {
                d.item("c", seed, format!("i{k}"), v + x);
            }
        }
        d
    }

    #[test]
    fn arm_contrast_is_over_runs_and_says_its_unit() {
        let d = data(
            &[(0, 0.9), (1, 0.8), (2, 0.85)],
            &[(0, 0.2), (1, 0.3), (2, 0.25)],
        );
        let c = ArmContrast::of(&d, "t", "c", &ArmOptions::new().proportion());
        let e = c.difference.estimate().unwrap();
        assert!((e.estimate - 0.6).abs() < 1e-12, "{e:?}");
        assert_eq!(e.method, psyche_stats::Method::PooledTOverSeeds);
        // Pooled t over 3 + 3 per-seed means: sd 0.05 in each arm, se 0.05·√(2/3), t(4).
        let half = psyche_stats::t_quantile(0.975, 4.0).unwrap() * 0.05 * (2.0f64 / 3.0).sqrt();
        assert!((e.ci_high - e.ci_low - 2.0 * half).abs() < 1e-9, "{e:?}");
        assert!(c.verdict().excludes_zero());
        assert_eq!(c.units("objects"), "3 vs 3 runs, 3 objects");
        assert!(c.item_level().is_estimated());
    }

    #[test]
    fn one_run_per_arm_gives_no_run_level_verdict() {
        let d = data(&[(0, 0.9)], &[(0, 0.2)]);
        let c = ArmContrast::of(&d, "t", "c", &ArmOptions::new().proportion());
        assert!(
            matches!(c.verdict(), IntervalVerdict::NotEstimable { ref reason } if reason.contains("between-run variance not estimated"))
        );
        assert!(!c.verdict().excludes_zero());
        let missing = ArmContrast::of(&d, "t", "nowhere", &ArmOptions::new());
        assert!(missing.comparison.is_none());
        assert!(missing.difference.reason().unwrap().contains("nowhere"));
        assert!(matches!(
            missing.verdict(),
            IntervalVerdict::NotEstimable { .. }
        ));
    }
}
