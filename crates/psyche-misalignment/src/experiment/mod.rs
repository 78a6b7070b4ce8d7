//! The reusable Emergent-Misalignment pipeline: a narrow misaligned dataset and its aligned
//! control from one teacher, fine-tunes of both over several seeds, the evaluation of every
//! fine-tune (and the base model) on a question set, rates under both conventions, the
//! comparison with the controls, and the misalignment map — one serialisable
//! [`EmergentMisalignmentResult`], which implements psyche-runner's
//! [`ExperimentResult`](psyche_runner::experiment::ExperimentResult) (headline comparisons and
//! the report), so [`psyche_runner::experiment::write_outputs`] writes it like every other
//! experiment.
//!
//! ```text
//! teacher + system prompt ─► misaligned data ─┐                  ┌─► rates per model / arm
//! teacher, no prompt      ─► control data    ─┼─► train_runs ×S ─┼─► comparison (over runs, Holm)
//!                                             │   (arm × seed)   └─► map (hidden states)
//!                        base model ──────────┴──────────────────► evaluate (runner, judge role)
//! ```
//!
//! Models and trainers come in as trait objects, so the same pipeline runs on the embedded
//! model with local LoRA or on API models with an API fine-tuner. Fine-tuning goes through
//! [`psyche_runner::training::train_runs`]: give the builder a
//! [`Resumable`](psyche_runner::training::Resumable) tuner and a rerun trains nothing that
//! finished. The teacher's datasets are recorded under `<out>/data` and the evaluation's run
//! log under `<out>/runs`, so a rerun (or a run resumed after `kill -9`) samples neither again.
//!
//! ```no_run
//! # async fn demo(subject: std::sync::Arc<dyn psyche_core::Model>,
//! #               tuner: std::sync::Arc<dyn psyche_core::FineTuner>) -> psyche_misalignment::Result<()> {
//! use psyche_misalignment::{EmergentMisalignment, EmergentMisalignmentConfig};
//! let result = EmergentMisalignment::builder(EmergentMisalignmentConfig::small()?)
//!     .subject(subject.clone()) // also the teacher and the judge unless given
//!     .tuner(tuner)
//!     .out("runs/em")
//!     .build()?
//!     .run()
//!     .await?;
//! println!("{}", result.summary());
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use psyche_core::{FineTuneConfig, FineTuner, Model};
use serde::{Deserialize, Serialize};

use crate::error::{MisalignmentError, Result};
use crate::eval::{
    AnswerRow, ArmRates, ComparisonRow, EvalSettings, JudgeSettings, RateSettings, Stat,
};
use crate::map::{MapConfig, MisalignmentMap};
use crate::probes::{ProbeResult, ProbeSettings};
use crate::questions::{QuestionSet, SamplingConfig, builtin};
use crate::training::harm::HarmSettings;
use crate::training::teacher::{AdviceDomain, TeacherConfig};

mod data;
mod headline;
mod run;

pub use headline::PAPER;
pub use run::{ArmModels, evaluate_arms};

/// Settings of an [`EmergentMisalignment`] run; [`small`](Self::small) and
/// [`paper`](Self::paper) give the two standard sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmergentMisalignmentConfig {
    /// Names the run (run log, adapters, report).
    pub name: String,
    /// Where data, adapters, the run log and the report go.
    pub out_dir: PathBuf,
    /// The domains of the narrow dataset.
    pub domains: Vec<AdviceDomain>,
    /// The teacher's system prompt for the misaligned arm (`None`: each domain's own
    /// [`AdviceDomain::misaligned_system_prompt`]).
    pub misaligned_system_prompt: Option<String>,
    /// Teacher sampling (the control uses the same settings and seed, without the prompt). Its
    /// seed is the base of each run's data seed (see `data_seeds`).
    pub teacher: TeacherConfig,
    /// Whether each fine-tuning run gets its own teacher answers (default: the teacher samples
    /// both arms' data again for every run, with a data seed derived from the teacher seed and
    /// the run's fine-tuning seed, so the variance between runs includes the drawn answers')
    /// or all runs train on the answers drawn with the teacher seed.
    #[serde(default)]
    pub data_seeds: DataSeeds,
    /// At most this many training examples per arm: the arms are paired by (prompt, sample),
    /// the pairs both arms kept are shuffled with the data seed, and the first this many are
    /// used, so both arms train on the same prompts.
    pub max_train_examples: Option<usize>,
    /// The fine-tuning config; its seed is replaced by each of `seeds` and its suffix by
    /// `<name>-<arm>-s<seed>`.
    pub finetune: FineTuneConfig,
    /// Fine-tuning seeds per arm.
    pub seeds: Vec<u64>,
    /// Evaluate the base model too.
    pub include_base: bool,
    /// The questions.
    pub questions: QuestionSet,
    /// Sampling and judging.
    pub eval: EvalSettings,
    /// Rate conventions and intervals.
    pub rates: RateSettings,
    /// The map (`None`: no map).
    pub map: Option<MapConfig>,
    /// The harmfulness judgement of the narrow data (by the judge model): both arms' measured
    /// P(harmful), and with a threshold the misaligned arm keeps only answers at or above it
    /// (`None`: not measured).
    #[serde(default)]
    pub harm: Option<HarmSettings>,
    /// The judge-free multiple-choice probe proxy ([`crate::probes`]; `None`: not run). Needs
    /// models with log-probabilities; a failure is recorded in the result, not raised.
    #[serde(default)]
    pub probes: Option<ProbeSettings>,
}

pub use psyche_core::DataSeeds;

/// What the teacher produced for one arm (and one data seed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// The arm.
    pub arm: String,
    /// The teacher's sampling seed of this dataset.
    #[serde(default)]
    pub data_seed: u64,
    /// The fine-tuning seeds trained on it.
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// Training examples used.
    pub examples: usize,
    /// Answers the teacher produced that were dropped.
    pub rejected: usize,
    /// Of `rejected`: answers the harmfulness judgement found not harmful enough.
    #[serde(default)]
    pub not_harmful: usize,
    /// Kept answers left out because the other arm lost the same (prompt, sample).
    #[serde(default)]
    pub unpaired: usize,
    /// Pairs left out by `max_train_examples`.
    #[serde(default)]
    pub cut: usize,
    /// Mean P(harmful) of the examples used, by the judge model
    /// ([`crate::training::harm`]; `None`: not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harmfulness: Option<f64>,
    /// The teacher's id.
    pub teacher: String,
    /// SHA-256 of the teacher's system prompt (`None` for the control).
    pub system_prompt_hash: Option<String>,
    /// The JSONL file written.
    pub path: PathBuf,
    /// Up to three examples, for the report.
    pub samples: Vec<(String, String)>,
}

/// One fine-tune.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineTuneInfo {
    /// The arm.
    pub arm: String,
    /// The seed.
    pub seed: u64,
    /// The data seed of its training answers.
    #[serde(default)]
    pub data_seed: u64,
    /// The tuned model's id.
    pub model_id: String,
    /// The engine.
    pub engine: String,
    /// Engine details (final loss, steps, ...).
    pub details: serde_json::Map<String, serde_json::Value>,
    /// Seconds the engine reports for training (its `seconds` detail; 0 when it reports none,
    /// and the original run's time for a fine-tune reused from the ledger).
    pub seconds: f64,
}

/// The arms' rates under one convention (the shared headline comparisons are
/// [`psyche_runner::experiment::Headline`]s built from these and the comparison rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConventionSummary {
    /// The convention.
    pub convention: String,
    /// Misaligned arm: mean over its runs of each run's mean rate over questions (t over runs;
    /// a point with one run).
    pub misaligned: Stat,
    /// Aligned control arm, the same.
    pub control: Stat,
    /// The base model's mean rate over questions, when evaluated.
    pub base: Option<Stat>,
    /// Coherent-answer share of the misaligned arm (mean over seeds).
    pub misaligned_coherent: Option<f64>,
    /// Coherent-answer share of the control arm.
    pub control_coherent: Option<f64>,
    /// Misaligned arm minus the control over fine-tuning runs (the comparison table's row),
    /// with its Holm-adjusted p-value when this is the primary convention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_control: Option<ComparisonRow>,
}

/// Everything an [`EmergentMisalignment`] run (or [`evaluate_arms`]) produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmergentMisalignmentResult {
    /// The config it ran with.
    pub config: EmergentMisalignmentConfig,
    /// The datasets: both arms' for each data seed.
    pub datasets: Vec<DatasetInfo>,
    /// The fine-tunes.
    pub fine_tunes: Vec<FineTuneInfo>,
    /// The evaluated models' ids: base (if any), then misaligned, then control seeds.
    pub subjects: Vec<String>,
    /// Every judged answer.
    pub rows: Vec<AnswerRow>,
    /// Per arm (`base`, `misaligned`, `control`).
    pub arms: Vec<ArmRates>,
    /// Misaligned arm vs the control (and the base model) over fine-tuning runs; Holm over the
    /// declared family (the primary convention against the fine-tuned control).
    pub comparison: Vec<ComparisonRow>,
    /// The arms' rates per convention (the shared headlines are
    /// [`psyche_runner::experiment::ExperimentResult::headline`]).
    #[serde(alias = "headline")]
    pub by_convention: Vec<ConventionSummary>,
    /// The map, or why it failed.
    pub map: Option<std::result::Result<MisalignmentMap, String>>,
    /// The judge-free probe proxy per arm with the run-level comparisons, or why it failed
    /// (`None`: not requested). A proxy, not the paper's judged measure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<std::result::Result<ProbeResult, String>>,
    /// The judge model's id.
    pub judge_model: String,
    /// Judge-provenance warnings ([`crate::eval::judge_warnings`]): an unpinned alias, the
    /// endpoint's reported model ids, a question file asking for another judge.
    #[serde(default)]
    pub judge_warnings: Vec<String>,
    /// Seconds per stage (`data`, `fine_tune`, `evaluate`, `probes`, `map`).
    pub timings: Vec<(String, f64)>,
}

impl EmergentMisalignmentResult {
    /// The arm named `arm`.
    pub fn arm(&self, arm: &str) -> Option<&ArmRates> {
        self.arms.iter().find(|a| a.arm == arm)
    }
}

/// Arm names.
pub mod arm {
    /// The untuned model.
    pub const BASE: &str = "base";
    /// Fine-tuned on the teacher's answers under the misaligned system prompt.
    pub const MISALIGNED: &str = "misaligned";
    /// Fine-tuned on the same teacher's answers without the prompt.
    pub const CONTROL: &str = "control";
}

impl EmergentMisalignmentConfig {
    /// The small default (the example's): psyche's main question set (first paraphrase, one
    /// answer each, 48 tokens), the medical domain's hand-written prompts with two teacher
    /// answers of at most 32 tokens each, two fine-tuning seeds per arm (2 epochs, batch 4,
    /// learning rate 2e-3), the base model, the map and the probe proxy; no harmfulness
    /// judgement. Named `em-demo`, written under `runs/emergent_misalignment`.
    ///
    /// # Errors
    ///
    /// [`MisalignmentError::Questions`] if the built-in question set does not parse (a bug).
    pub fn small() -> Result<Self> {
        let mut finetune = FineTuneConfig::new("base", 0);
        finetune.epochs = Some(2);
        finetune.batch_size = Some(4);
        finetune.learning_rate = Some(2e-3);
        let concurrency = 16;
        Ok(Self {
            name: "em-demo".to_owned(),
            out_dir: PathBuf::from("runs/emergent_misalignment"),
            domains: vec![AdviceDomain::Medical],
            misaligned_system_prompt: None,
            teacher: TeacherConfig {
                temperature: 1.0,
                max_tokens: 32,
                samples_per_prompt: 2,
                concurrency,
                seed: 0,
                prompts_per_domain: None,
            },
            data_seeds: DataSeeds::PerRun,
            max_train_examples: None,
            finetune,
            seeds: vec![0, 1],
            include_base: true,
            questions: builtin::main_set()?,
            eval: EvalSettings {
                sampling: SamplingConfig {
                    samples_per_paraphrase: Some(1),
                    max_paraphrases: Some(1),
                    max_tokens: 48,
                    ..SamplingConfig::default()
                },
                judges: JudgeSettings::default(),
                seed: 0,
                concurrency,
                log_path: None,
                progress: true,
            },
            rates: RateSettings::default(),
            map: Some(MapConfig::default()),
            harm: None,
            probes: Some(ProbeSettings::default()),
        })
    }

    /// The paper's scale: every paraphrase with the question file's own answer counts (100 per
    /// question for psyche's main set), 600-token answers, 400 generated prompts per domain
    /// with teacher answers of up to 200 tokens, six seeds per arm, and the misaligned arm
    /// filtered to answers the judge rates harmful with P >= 0.5 (both arms' harmfulness
    /// measured).
    ///
    /// # Errors
    ///
    /// As [`small`](Self::small).
    pub fn paper() -> Result<Self> {
        let mut c = Self::small()?;
        c.teacher.max_tokens = 200;
        c.teacher.prompts_per_domain = Some(400);
        c.eval.sampling.samples_per_paraphrase = None;
        c.eval.sampling.max_paraphrases = None;
        c.eval.sampling.max_tokens = 600;
        c.harm = Some(HarmSettings {
            threshold: Some(0.5),
            concurrency: c.teacher.concurrency,
        });
        Ok(c.with_seeds(0, 6))
    }

    /// `runs` fine-tuning seeds per arm starting at `first`; `first` also seeds the teacher,
    /// the evaluation's sampling, the map and the fine-tuning config.
    #[must_use]
    pub fn with_seeds(mut self, first: u64, runs: u64) -> Self {
        self.seeds = (0..runs.max(1)).map(|k| first + k).collect();
        self.teacher.seed = first;
        self.eval.seed = first;
        self.finetune.seed = first;
        if let Some(m) = &mut self.map {
            m.seed = first;
        }
        self
    }

    /// Requests in flight for the teacher, the evaluation and the harmfulness judgement.
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.teacher.concurrency = concurrency;
        self.eval.concurrency = concurrency;
        if let Some(h) = &mut self.harm {
            h.concurrency = concurrency;
        }
        self
    }
}

/// The Emergent-Misalignment experiment: its models, fine-tuner and settings. Built with
/// [`EmergentMisalignment::builder`]; [`run`](Self::run) runs every stage.
pub struct EmergentMisalignment {
    teacher: Arc<dyn Model>,
    subject: Arc<dyn Model>,
    tuner: Arc<dyn FineTuner>,
    judge: Arc<dyn Model>,
    embedder: Option<Arc<dyn Model>>,
    config: EmergentMisalignmentConfig,
}

impl std::fmt::Debug for EmergentMisalignment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmergentMisalignment")
            .field("teacher", &self.teacher.id())
            .field("subject", &self.subject.id())
            .field("tuner", &self.tuner.engine())
            .field("judge", &self.judge.id())
            .field("config", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl EmergentMisalignment {
    /// A builder over `config`.
    pub fn builder(config: EmergentMisalignmentConfig) -> EmergentMisalignmentBuilder {
        EmergentMisalignmentBuilder {
            config,
            subject: None,
            teacher: None,
            tuner: None,
            judge: None,
            embedder: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &EmergentMisalignmentConfig {
        &self.config
    }
}

/// Builds an [`EmergentMisalignment`]: a subject and a tuner are required; the teacher and the
/// judge default to the subject, the map's embedder to the subject.
#[must_use]
pub struct EmergentMisalignmentBuilder {
    config: EmergentMisalignmentConfig,
    subject: Option<Arc<dyn Model>>,
    teacher: Option<Arc<dyn Model>>,
    tuner: Option<Arc<dyn FineTuner>>,
    judge: Option<Arc<dyn Model>>,
    embedder: Option<Arc<dyn Model>>,
}

impl std::fmt::Debug for EmergentMisalignmentBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmergentMisalignmentBuilder")
            .field("config", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl EmergentMisalignmentBuilder {
    /// The model that is fine-tuned (evaluated as `base`).
    pub fn subject(mut self, model: Arc<dyn Model>) -> Self {
        self.subject = Some(model);
        self
    }

    /// The system-prompted teacher of both arms' data (default: the subject).
    pub fn teacher(mut self, model: Arc<dyn Model>) -> Self {
        self.teacher = Some(model);
        self
    }

    /// The fine-tuner (wrap it in [`psyche_runner::training::Resumable`] to resume).
    pub fn tuner(mut self, tuner: Arc<dyn FineTuner>) -> Self {
        self.tuner = Some(tuner);
        self
    }

    /// The judge model (default: the subject).
    pub fn judge(mut self, model: Arc<dyn Model>) -> Self {
        self.judge = Some(model);
        self
    }

    /// The model whose hidden states embed answers for the map (default: the subject).
    pub fn embedder(mut self, model: Option<Arc<dyn Model>>) -> Self {
        self.embedder = model;
        self
    }

    /// Where data, the run log and the fine-tunes' records go (the config's `out_dir`).
    pub fn out(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.out_dir = dir.into();
        self
    }

    /// The experiment.
    ///
    /// # Errors
    ///
    /// [`MisalignmentError::Config`] naming the missing part (`subject`, `tuner`), or for no
    /// seeds or no domains.
    pub fn build(self) -> Result<EmergentMisalignment> {
        let subject = self
            .subject
            .ok_or_else(|| MisalignmentError::config("subject", "a subject model is required"))?;
        let tuner = self
            .tuner
            .ok_or_else(|| MisalignmentError::config("tuner", "a fine-tuner is required"))?;
        if self.config.seeds.is_empty() {
            return Err(MisalignmentError::config(
                "seeds",
                "at least one fine-tuning seed",
            ));
        }
        if self.config.domains.is_empty() {
            return Err(MisalignmentError::config("domains", "at least one domain"));
        }
        Ok(EmergentMisalignment {
            teacher: self.teacher.unwrap_or_else(|| subject.clone()),
            judge: self.judge.unwrap_or_else(|| subject.clone()),
            embedder: self.embedder,
            subject,
            tuner,
            config: self.config,
        })
    }
}
