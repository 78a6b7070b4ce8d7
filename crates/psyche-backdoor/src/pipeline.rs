//! Shared machinery of the experiments: named models, training arms over any
//! [`FineTuner`], one resumable evaluation run over every model, and the statistics read back
//! from its records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{
    Conversation, FineTuneConfig, FineTuner, GenerateRequest, GenerateResponse, HiddenStates,
    LogLikelihood, Model, ModelError, ModelInfo, OptionProbabilities, OptionQuery, Record,
    TaskGenerator, TokenDistribution, derive_seed, seeded_rng,
};
use psyche_runner::{Eval, ProgressMode};
use psyche_stats::{Estimate, Method};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{BackdoorError, Result};
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

/// Trains one arm's data once per seed and returns the models in seed order.
///
/// [`DirectTrainer`] calls a [`FineTuner`] directly; the examples wrap psyche-finetune's
/// multi-seed orchestration instead, so finished fine-tunes are skipped on rerun.
#[async_trait]
pub trait ArmTrainer: Send + Sync {
    /// Trains `data` as arm `arm` with each seed.
    ///
    /// # Errors
    ///
    /// The engine's failure.
    async fn train(
        &self,
        arm: &str,
        data: &[Conversation],
        seeds: &[u64],
    ) -> Result<Vec<Arc<dyn Model>>>;
}

/// Fine-tunes through a [`FineTuner`] with a config template (`seed` and `suffix` set per
/// call), then loads each result.
pub struct DirectTrainer {
    /// The engine.
    pub tuner: Arc<dyn FineTuner>,
    /// The template.
    pub config: FineTuneConfig,
}

impl std::fmt::Debug for DirectTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectTrainer")
            .field("engine", &self.tuner.engine())
            .field("config", &self.config)
            .finish()
    }
}

#[async_trait]
impl ArmTrainer for DirectTrainer {
    async fn train(
        &self,
        arm: &str,
        data: &[Conversation],
        seeds: &[u64],
    ) -> Result<Vec<Arc<dyn Model>>> {
        let mut out = Vec::with_capacity(seeds.len());
        for &seed in seeds {
            let mut cfg = self.config.clone();
            cfg.seed = seed;
            cfg.suffix = Some(arm.replace(['/', ' '], "-"));
            tracing::info!(arm, seed, examples = data.len(), "fine-tuning");
            let trained = self.tuner.fine_tune(data, &cfg).await?;
            out.push(self.tuner.load(&trained).await?);
        }
        Ok(out)
    }
}

/// Settings of an evaluation pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSettings {
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

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            seed: 0,
            concurrency: 8,
            mode: crate::probe::ScoringMode::Auto,
            samples: 8,
            max_tokens: 4,
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
    settings: &EvalSettings,
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

/// A statistic or why it could not be computed (reports show the error, never a dash).
pub type Stat = std::result::Result<Estimate, String>;

/// A statistic's value, if it has one.
pub fn stat_value(s: &Stat) -> Option<f64> {
    s.as_ref().ok().map(|e| e.estimate)
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

/// Mean with a t-interval over items (`clustered` = cluster-robust by record cluster).
pub fn item_mean(values: &[(&str, String, f64)], clustered: bool, level: f64) -> Stat {
    let v: Vec<f64> = values.iter().map(|x| x.2).collect();
    let r = if clustered {
        let c: Vec<&str> = values.iter().map(|x| x.1.as_str()).collect();
        psyche_stats::clustered_mean_ci(&v, &c, level)
    } else {
        psyche_stats::mean_ci(&v, level)
    };
    r.map_err(|e| e.to_string())
}

/// Mean over seeds with a bootstrap percentile interval over seeds (the papers' interval).
pub fn seed_mean(per_seed: &[f64], level: f64, seed: u64) -> Stat {
    psyche_stats::bootstrap_mean(per_seed, 2000, level, seed).map_err(|e| e.to_string())
}

/// `mean(a) − mean(b)` of two independent groups of per-seed values, with a percentile
/// interval from resampling seeds within each group (a candidate for psyche-stats).
///
/// # Errors
///
/// A message when a group has fewer than 2 seeds or a value is not finite.
pub fn seed_bootstrap_difference(a: &[f64], b: &[f64], level: f64, seed: u64) -> Stat {
    if a.len() < 2 || b.len() < 2 {
        return Err(format!(
            "a bootstrap over fine-tuning seeds needs at least 2 seeds per arm (have {} and {})",
            a.len(),
            b.len()
        ));
    }
    if a.iter().chain(b).any(|x| !x.is_finite()) {
        return Err("non-finite per-seed value".into());
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let observed = mean(a) - mean(b);
    let mut rng = seeded_rng(derive_seed(seed, "seed-bootstrap"));
    let reps: Vec<f64> = (0..4000)
        .map(|_| {
            let ra: f64 = (0..a.len())
                .map(|_| a[rng.random_range(0..a.len())])
                .sum::<f64>()
                / a.len() as f64;
            let rb: f64 = (0..b.len())
                .map(|_| b[rng.random_range(0..b.len())])
                .sum::<f64>()
                / b.len() as f64;
            ra - rb
        })
        .collect();
    let (lo, hi) = psyche_stats::percentile_interval(&reps, level).map_err(|e| e.to_string())?;
    let m = mean(&reps);
    let se = (reps.iter().map(|r| (r - m).powi(2)).sum::<f64>() / (reps.len() - 1) as f64).sqrt();
    Ok(Estimate {
        estimate: observed,
        se,
        ci_low: lo,
        ci_high: hi,
        n: a.len() + b.len(),
        level,
        method: Method::BootstrapPercentile,
    })
}

/// Paired difference by item: for each item present in both, the mean over `a`'s models minus
/// the mean over `b`'s models (t-interval over items).
pub fn paired_by_item(
    a: &[BTreeMap<String, f64>],
    b: &[BTreeMap<String, f64>],
    level: f64,
) -> Stat {
    let avg = |maps: &[BTreeMap<String, f64>]| -> BTreeMap<String, f64> {
        let mut sum: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        for m in maps {
            for (k, v) in m {
                let e = sum.entry(k.clone()).or_insert((0.0, 0));
                e.0 += v;
                e.1 += 1;
            }
        }
        sum.into_iter()
            .filter(|(_, (_, n))| *n == maps.len())
            .map(|(k, (s, n))| (k, s / n as f64))
            .collect()
    };
    let (ma, mb) = (avg(a), avg(b));
    let keys: Vec<&String> = ma.keys().filter(|k| mb.contains_key(*k)).collect();
    let xa: Vec<f64> = keys.iter().map(|k| ma[*k]).collect();
    let xb: Vec<f64> = keys.iter().map(|k| mb[*k]).collect();
    psyche_stats::paired_difference(&xa, &xb, level)
        .map(|d| d.estimate)
        .map_err(|e| e.to_string())
}

/// Per-item scores of one model as a map (sample id → score), for [`paired_by_item`].
pub fn item_map(values: &[(&str, String, f64)]) -> BTreeMap<String, f64> {
    values
        .iter()
        .map(|(id, _, v)| ((*id).to_owned(), *v))
        .collect()
}

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

/// Writes a serialisable value as pretty JSON, atomically.
///
/// # Errors
///
/// [`BackdoorError::Io`] naming the file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| BackdoorError::io(path, e))?;
    crate::items::write_file(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_bootstrap_difference_brackets_the_observed_gap() {
        let a = [0.9, 0.8, 0.85, 0.95];
        let b = [0.2, 0.3, 0.25];
        let d = seed_bootstrap_difference(&a, &b, 0.95, 1).unwrap();
        assert!((d.estimate - 0.625).abs() < 1e-12);
        assert!(d.ci_low > 0.45 && d.ci_high < 0.8, "{d:?}");
        assert!(seed_bootstrap_difference(&a, &[0.1], 0.95, 1).is_err());
    }

    #[test]
    fn paired_by_item_averages_models_then_pairs_items() {
        let m = |v: &[(&str, f64)]| -> BTreeMap<String, f64> {
            v.iter().map(|(k, x)| ((*k).to_owned(), *x)).collect()
        };
        let a = vec![
            m(&[("i1", 1.0), ("i2", 0.8), ("i3", 0.6)]),
            m(&[("i1", 0.8), ("i2", 0.6), ("i3", 0.4)]),
        ];
        let b = vec![m(&[("i1", 0.5), ("i2", 0.5), ("i3", 0.2)])];
        let d = paired_by_item(&a, &b, 0.95).unwrap();
        // item means a: 0.9, 0.7, 0.5; b: 0.5, 0.5, 0.2 → differences 0.4, 0.2, 0.3.
        assert!((d.estimate - 0.3).abs() < 1e-12, "{d:?}");
    }
}
