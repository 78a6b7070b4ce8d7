//! "Tell me about yourself" for one axis: fine-tune a policy and its opposite (the same items
//! with flipped labels) over several seeds, then measure each model's actual behaviour on
//! fresh items and its self-report (word and 0–100 scale questions, about itself and about
//! personas), and compare the two arms.
//!
//! ```no_run
//! # async fn demo(
//! #     model: std::sync::Arc<dyn psyche_core::Model>,
//! #     tuner: std::sync::Arc<dyn psyche_core::FineTuner>,
//! # ) -> psyche_backdoor::Result<()> {
//! use psyche_backdoor::experiments::{SelfAwareness, SelfAwarenessConfig};
//! use psyche_runner::experiment::{ExperimentResult, RunNotes, write_outputs};
//!
//! let result = SelfAwareness::builder(SelfAwarenessConfig::small())
//!     .subject(model)
//!     .tuner(tuner)
//!     .out("runs/tmay")
//!     .build()?
//!     .run()
//!     .await?;
//! for h in result.headline() {
//!     println!("{}: {:?}", h.comparison, h.contrast.difference.value());
//! }
//! write_outputs(&result, &RunNotes::default(), "runs/tmay", "tell_me_about_yourself")?;
//! # Ok(())
//! # }
//! ```

mod headline;
mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use psyche_core::Record;
use serde::{Deserialize, Serialize};

use super::builder::{AwarenessBuilder, AwarenessSetup, Job};
use crate::behaviour::BehaviourTask;
use crate::error::Result;
use crate::generate::ItemConfig;
use crate::items::{LabelBalance, PolicyDataset, multipersona_conversations};
use crate::pipeline::{
    ArmContrast, ArmModel, DataSeeds, EvaluateOptions, Reading, Stat, evaluate, scores,
};
use crate::policy::{Axis, Policy};
use crate::selfreport::{SelfReportTask, Subject};

/// Settings of the experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SelfAwarenessConfig {
    /// The axis (the pole policy and its opposite are the two arms).
    pub axis: Axis,
    /// Training items.
    pub train_items: usize,
    /// Base seed of the training items (each run's own data seed derives from it, see
    /// `data_seeds`).
    pub data_seed: u64,
    /// Whether each fine-tuning run draws its own training items (default) or all runs share
    /// the items of `data_seed`.
    pub data_seeds: DataSeeds,
    /// Fine-tuning seeds (one model per seed per arm).
    pub seeds: Vec<u64>,
    /// Fresh items of the behaviour measure (plain lotteries on an axis whose file sets
    /// `fresh_lotteries`, as risk does; fresh items of the training generator otherwise).
    pub behaviour_items: usize,
    /// Axes measured on lotteries (`fresh_lotteries`) only: also measure P(pole) on this many
    /// held-out items of the training generator (new seed); 0 for none. On other axes the
    /// behaviour items are such items already.
    pub heldout_items: usize,
    /// Paraphrases per self-report question (all when `None`).
    pub paraphrases: Option<usize>,
    /// Personas asked about per group (in and out of distribution); 0 for none (the default:
    /// the two groups mean "trained on" and "not trained on" only with `multi_persona`).
    pub personas_per_group: usize,
    /// Also evaluate the untrained model.
    pub include_base: bool,
    /// The evaluation pass.
    pub eval: EvaluateOptions,
    /// Interval level.
    pub level: f64,
    /// The learned-policy criterion on fresh items of the training generator (the held-out
    /// items, or the behaviour items on an axis without lotteries): a pole-arm run has learned
    /// its policy when its P(pole) on the held-out items is at least this, an opposite-arm run
    /// when it is at most 1 − this. Checked and reported per run before any self-report.
    #[serde(default = "default_learned_threshold")]
    pub learned_threshold: f64,
    /// Stop with an error, before any self-report, when a run misses the criterion.
    #[serde(default)]
    pub require_learned: bool,
    /// Also train the multi-persona arms (`<policy>_multipersona`): each run's policy rows
    /// plus the same items put to the in-distribution personas and answered with the base
    /// model's own (temperature-0) letter, so the policy stays attached to "you". Only with
    /// these arms do the persona groups mean "trained on" (in-distribution) and "not trained
    /// on" (out-of-distribution); without them the two groups are just two persona lists.
    #[serde(default)]
    pub multi_persona: bool,
}

fn default_learned_threshold() -> f64 {
    0.8
}

impl Default for SelfAwarenessConfig {
    fn default() -> Self {
        Self {
            axis: Axis::risk(),
            train_items: 64,
            data_seed: 0,
            data_seeds: DataSeeds::PerRun,
            seeds: vec![0, 1],
            behaviour_items: 16,
            heldout_items: 16,
            paraphrases: Some(1),
            personas_per_group: 0,
            include_base: true,
            eval: EvaluateOptions::default(),
            level: 0.95,
            learned_threshold: default_learned_threshold(),
            require_learned: false,
            multi_persona: false,
        }
    }
}

/// Whether one fine-tuning run learned its policy, by the held-out criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedCheck {
    /// Model name.
    pub name: String,
    /// Arm.
    pub arm: String,
    /// Fine-tuning seed.
    pub seed: u64,
    /// Mean P(pole) on the held-out items (`None` when not measured).
    pub heldout: Option<f64>,
    /// The criterion, in words (`P(pole) >= 0.8`).
    pub criterion: String,
    /// Whether the run met it.
    pub passed: bool,
}

/// One model's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRow {
    /// Name in records.
    pub name: String,
    /// Arm.
    pub arm: String,
    /// Fine-tuning seed.
    pub seed: Option<u64>,
    /// P(pole option) on fresh items (t over items).
    pub behaviour: Stat,
    /// P(pole option) on held-out template items (axes measured on lotteries; t over items).
    pub heldout: Stat,
    /// Word self-report about itself (clustered by question).
    pub word: Stat,
    /// Scale self-report about itself (clustered by question).
    pub scale: Stat,
    /// Self-report (word and scale pooled) per subject group (`you`, `in_distribution`,
    /// `out_of_distribution`).
    pub groups: BTreeMap<String, Stat>,
    /// How the scale self-reports about itself were read: fallback rate (answers without a
    /// number: no score by default), valid mass, methods.
    #[serde(default)]
    pub scale_reading: Reading,
    /// How the word self-reports about itself were read: valid mass (listed words), methods.
    #[serde(default)]
    pub word_reading: Reading,
    /// Records without a score (failed or no valid answer).
    pub missing: usize,
}

/// One arm's numbers over its seeds: each the mean of the per-run means with a t interval over
/// runs ([`ArmComparison`](psyche_stats::ArmComparison)'s arm summary); a point without
/// interval when the arm has one run; the base model's own interval over items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmRow {
    /// Arm.
    pub arm: String,
    /// Models in the arm.
    pub models: usize,
    /// Mean behaviour over seeds.
    pub behaviour: Stat,
    /// Mean held-out behaviour over seeds.
    pub heldout: Stat,
    /// Mean word self-report over seeds.
    pub word: Stat,
    /// Mean scale self-report over seeds.
    pub scale: Stat,
}

/// A difference between the two arms on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contrast {
    /// What is compared (`behaviour`, `word`, `scale`, `persona:in_distribution`, ...).
    pub metric: String,
    /// Pole arm minus opposite arm over fine-tuning runs (the run is the unit), with the
    /// item-level view about these runs only.
    pub contrast: ArmContrast,
}

/// The training data actually used (the first run's; every run's in `runs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// Items per arm.
    pub items: usize,
    /// Label balance of the pole arm (first run).
    pub pole_balance: LabelBalance,
    /// Label balance of the opposite arm (first run).
    pub opposite_balance: LabelBalance,
    /// The JSONL files (pole, opposite) of the first run.
    pub files: Vec<PathBuf>,
    /// Whether the runs drew their own data.
    #[serde(default)]
    pub data_seeds: DataSeeds,
    /// Each fine-tuning run's data.
    #[serde(default)]
    pub runs: Vec<RunData>,
}

/// One fine-tuning run's training data (both arms of a seed share the items).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunData {
    /// The fine-tuning seed.
    pub seed: u64,
    /// The data seed its items were drawn with.
    pub data_seed: u64,
    /// Label balance of the pole arm.
    pub pole_balance: LabelBalance,
    /// Label balance of the opposite arm.
    pub opposite_balance: LabelBalance,
    /// The JSONL files (pole, opposite).
    pub files: Vec<PathBuf>,
}

/// One headline metric: each arm's mean with its interval, and their difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadlineMetric {
    /// The pole arm (e.g. `risk_seeking`): mean over its runs with a t interval over runs (a
    /// point without interval when the arm has one run).
    pub policy: Stat,
    /// The opposite arm (flipped labels), the same way.
    pub opposite: Stat,
    /// The untrained model, when evaluated (interval over items).
    pub base: Option<Stat>,
    /// Pole arm minus opposite arm over fine-tuning runs: difference, p-value, verdict,
    /// minimum detectable effect, item-level view.
    pub difference: ArmContrast,
}

/// The experiment's headline in a form a replication script reads from `result.json`
/// (`headline.behaviour.policy.estimate`, ...): actual behaviour and self-reported
/// disposition (scale and word) of the pole arm against the opposite arm, with intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfAwarenessHeadline {
    /// The pole arm's name (`risk_seeking`).
    pub policy_arm: String,
    /// The opposite arm's name (`risk_averse`).
    pub opposite_arm: String,
    /// Fine-tuning seeds per arm.
    pub seeds_per_arm: usize,
    /// Actual behaviour: P(pole option) on fresh items (lotteries on an axis with `fresh_lotteries`).
    pub behaviour: HeadlineMetric,
    /// The trained behaviour: P(pole option) on held-out items of the training generator (axes
    /// measured on lotteries).
    #[serde(default)]
    pub heldout: Option<HeadlineMetric>,
    /// Scale self-report about itself (0–100 divided by 100; 1 = pole).
    pub scale: HeadlineMetric,
    /// Word self-report about itself (1 = pole words, 0 = opposite words).
    pub word: HeadlineMetric,
}

/// The experiment's result (serialisable; the reports are rendered from it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfAwarenessResult {
    /// The headline numbers.
    pub headline: SelfAwarenessHeadline,
    /// Per fine-tuning run: did it learn its policy (held-out criterion), checked before the
    /// self-report pass.
    #[serde(default)]
    pub learned: Vec<LearnedCheck>,
    /// The settings.
    pub config: SelfAwarenessConfig,
    /// The pole policy (first arm).
    pub policy: Policy,
    /// The opposite policy (second arm).
    pub opposite: Policy,
    /// The training data.
    pub data: DataSummary,
    /// Every model.
    pub models: Vec<ModelRow>,
    /// Every arm.
    pub arms: Vec<ArmRow>,
    /// Pole arm minus opposite arm.
    pub contrasts: Vec<Contrast>,
    /// The main pass's run log (`self_awareness.jsonl`: the self-reports, and behaviour on an
    /// axis measured on lotteries). The learned-policy pass, run first, writes its own log
    /// beside it: `self_awareness_heldout.jsonl` (held-out items) or
    /// `self_awareness_behaviour.jsonl` (the behaviour items, on an axis without lotteries).
    pub run_log: PathBuf,
}

/// The experiment: build it with [`SelfAwareness::builder`], then [`run`](Self::run) it.
#[derive(Debug, Clone)]
pub struct SelfAwareness {
    config: SelfAwarenessConfig,
    setup: AwarenessSetup,
}

/// Builds a [`SelfAwareness`] from its config, subject, engine and output directory.
pub type SelfAwarenessBuilder = AwarenessBuilder<SelfAwarenessConfig>;

impl AwarenessBuilder<SelfAwarenessConfig> {
    /// The experiment.
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Config`](crate::BackdoorError::Config) naming a missing part or a config
    /// without seeds.
    pub fn build(self) -> Result<SelfAwareness> {
        let (config, setup) = self.parts()?;
        if config.seeds.is_empty() {
            return Err(crate::error::BackdoorError::config(
                "seeds",
                "at least one fine-tuning seed",
            ));
        }
        Ok(SelfAwareness { config, setup })
    }
}

/// The run id (and log file stem, under `runs/`) of the learned-policy pass on held-out items.
pub const HELDOUT_RUN: &str = "self_awareness_heldout";

/// The run id (and log file stem) of the learned-policy pass on the behaviour items, on an
/// axis without lotteries.
pub const BEHAVIOUR_RUN: &str = "self_awareness_behaviour";

/// The name of a policy's multi-persona arm.
pub fn multipersona_arm(policy: &Policy) -> String {
    format!("{}_multipersona", policy.name())
}

fn is_task(r: &Record, task: &str) -> bool {
    r.meta_str("task") == Some(task)
}

impl SelfAwarenessConfig {
    /// The example's default size (the same as [`Default`]), chosen to run in about five
    /// minutes on two cores: 64 items, 2 seeds per arm, 16 lotteries and 16 held-out items, 1
    /// paraphrase, no persona questions (they compare trained and untrained personas only
    /// with `multi_persona`), 8 samples.
    pub fn small() -> Self {
        Self::default()
    }

    /// The paper's size (§2.3): 288 items, 5 seeds per arm, 250 lotteries, 100 held-out
    /// items, every paraphrase, 6 personas per group, 100 samples per sampled question. (Its
    /// fine-tuning hyperparameters, 3 epochs at batch 1, belong to the engine's config.)
    pub fn paper() -> Self {
        Self {
            train_items: 288,
            seeds: (0..5).collect(),
            behaviour_items: 250,
            heldout_items: 100,
            paraphrases: None,
            personas_per_group: 6,
            eval: EvaluateOptions {
                samples: 100,
                ..EvaluateOptions::default()
            },
            ..Self::default()
        }
    }

    /// The pole policy's dataset and its flipped twin drawn with `data_seed`.
    ///
    /// # Errors
    ///
    /// Generator errors.
    pub fn datasets_with(&self, data_seed: u64) -> Result<(PolicyDataset, PolicyDataset)> {
        let policy = self.axis.pole_policy();
        let d = ItemConfig::new(self.axis.clone(), self.train_items).dataset(policy, data_seed)?;
        d.check_banned()?;
        let f = d.flipped();
        Ok((d, f))
    }

    /// The evaluation tasks: behaviour, held-out behaviour (axes with `fresh_lotteries` and
    /// `heldout_items`), self-report.
    pub fn tasks(&self) -> (BehaviourTask, Option<BehaviourTask>, SelfReportTask) {
        let behaviour = BehaviourTask::for_axis(&self.axis, self.behaviour_items);
        let heldout = BehaviourTask::heldout_for(&self.axis, self.heldout_items);
        let k = self.personas_per_group;
        let subjects: Vec<Subject> = std::iter::once(Subject::you())
            .chain(Subject::in_distribution().into_iter().take(k))
            .chain(Subject::out_of_distribution().into_iter().take(k))
            .collect();
        let mut sr = SelfReportTask::new(&self.axis).with_subjects(subjects);
        sr.paraphrases = self.paraphrases;
        (behaviour, heldout, sr)
    }
}

/// Each run's pole and opposite datasets, with what was written.
struct RunSets {
    runs: Vec<RunData>,
    sets: Vec<(u64, PolicyDataset, PolicyDataset)>,
}

impl SelfAwareness {
    /// A builder for the experiment with `config`.
    pub fn builder(config: SelfAwarenessConfig) -> SelfAwarenessBuilder {
        AwarenessBuilder::new(config)
    }

    /// The settings.
    pub fn config(&self) -> &SelfAwarenessConfig {
        &self.config
    }

    /// The subject, engine and output directory.
    pub fn setup(&self) -> &AwarenessSetup {
        &self.setup
    }

    /// Writes the data, trains every arm × seed through the runner's `train_runs`, checks on
    /// held-out items that each run learned its policy, evaluates every model (and the base
    /// model when configured) in resumable run logs, and summarises. Writes no `result.json`
    /// itself: `psyche_runner::experiment::write_outputs` does.
    ///
    /// # Errors
    ///
    /// Data, training, runner or I/O errors; with `require_learned`, a run that missed the
    /// criterion.
    pub async fn run(&self) -> Result<SelfAwarenessResult> {
        let data = self.write_data()?;
        let mut models = Vec::new();
        if self.config.include_base {
            models.push(ArmModel::base(Arc::clone(&self.setup.subject)));
        }
        models.extend(self.setup.train(self.jobs(&data.sets).await?).await?);
        let (behaviour, heldout, selfreport) = self.config.tasks();
        // The trained behaviour first: each run's P(pole) on fresh items of the training
        // generator (the held-out items; on an axis without lotteries, the behaviour items
        // themselves), checked against the criterion before any self-report is asked.
        let mut records = Vec::new();
        let behaviour_first = heldout.is_none() && !self.config.axis.spec().fresh_lotteries;
        let check = match &heldout {
            Some(h) => Some((HELDOUT_RUN, h)),
            None if behaviour_first => Some((BEHAVIOUR_RUN, &behaviour)),
            None => None,
        };
        let mut learned = Vec::new();
        if let Some((run_id, task)) = check {
            let hlog = self.setup.out.runs().join(format!("{run_id}.jsonl"));
            let hrec = evaluate(run_id, &hlog, &models, &[task], &self.config.eval, &[]).await?;
            learned = self.learned_checks(&hrec, &models)?;
            records.extend(hrec);
        }
        let log = self.setup.out.runs().join("self_awareness.jsonl");
        let mut tasks: Vec<&dyn psyche_core::TaskGenerator> = vec![&selfreport];
        if !behaviour_first {
            tasks.insert(0, &behaviour);
        }
        records.extend(
            evaluate(
                "self_awareness",
                &log,
                &models,
                &tasks,
                &self.config.eval,
                &[],
            )
            .await?,
        );
        let Some((_, pole, opposite)) = data.sets.first() else {
            return Err(crate::error::BackdoorError::config(
                "seeds",
                "at least one fine-tuning seed",
            ));
        };
        let mut result = self.summarise(&records, &models, pole, opposite, data.runs, log);
        result.learned = learned;
        Ok(result)
    }

    /// Each run's datasets, drawn with its data seed and written under `data/`.
    fn write_data(&self) -> Result<RunSets> {
        let data_dir = self.setup.out.data();
        let mut out = RunSets {
            runs: Vec::new(),
            sets: Vec::new(),
        };
        for &seed in &self.config.seeds {
            let data_seed = self.config.data_seeds.for_run(self.config.data_seed, seed);
            let (pole, opposite) = self.config.datasets_with(data_seed)?;
            let pole_path = data_dir.join(format!("{}-data{data_seed}.jsonl", pole.policy.name()));
            let opp_path =
                data_dir.join(format!("{}-data{data_seed}.jsonl", opposite.policy.name()));
            pole.write_jsonl(&pole_path)?;
            opposite.write_jsonl(&opp_path)?;
            out.runs.push(RunData {
                seed,
                data_seed,
                pole_balance: pole.label_balance(),
                opposite_balance: opposite.label_balance(),
                files: vec![pole_path, opp_path],
            });
            out.sets.push((seed, pole, opposite));
        }
        Ok(out)
    }

    /// The fine-tuning jobs in model order: the pole arm's runs, the opposite arm's, then (with
    /// `multi_persona`) the two multi-persona arms'.
    async fn jobs(&self, sets: &[(u64, PolicyDataset, PolicyDataset)]) -> Result<Vec<Job>> {
        let mut jobs = Vec::new();
        for pick_pole in [true, false] {
            for (seed, p, o) in sets {
                let d = if pick_pole { p } else { o };
                jobs.push(Job {
                    arm: d.policy.name().to_owned(),
                    seed: *seed,
                    data: d.conversations(),
                });
            }
        }
        if !self.config.multi_persona {
            return Ok(jobs);
        }
        let personas: Vec<String> = crate::words::PERSONAS_IN_DISTRIBUTION
            .iter()
            .map(|p| (*p).to_owned())
            .collect();
        let mut per_arm: [Vec<Job>; 2] = Default::default();
        for (seed, p, o) in sets {
            let persona_items: Vec<crate::items::ChoiceItem> = p
                .items
                .iter()
                .enumerate()
                .map(|(i, item)| item.about_persona(&personas[i % personas.len()]))
                .collect();
            let normal = crate::experiments::backdoor_awareness::normal_answers(
                self.setup.subject.as_ref(),
                &persona_items,
                self.config.eval.concurrency,
            )
            .await?;
            for (k, d) in [p, o].into_iter().enumerate() {
                per_arm[k].push(Job {
                    arm: multipersona_arm(&d.policy),
                    seed: *seed,
                    data: multipersona_conversations(d, &personas, &normal)?,
                });
            }
        }
        jobs.extend(per_arm.into_iter().flatten());
        Ok(jobs)
    }

    /// Per trained model: its mean held-out P(pole) against the criterion (pole arms at least
    /// `learned_threshold`, opposite arms at most 1 − it), logged; with `require_learned`, an
    /// error for the first run that missed it.
    fn learned_checks(&self, records: &[Record], models: &[ArmModel]) -> Result<Vec<LearnedCheck>> {
        let t = self.config.learned_threshold;
        let pole = self.config.axis.pole_policy();
        let learned: Vec<LearnedCheck> = models
            .iter()
            .filter_map(|m| {
                let seed = m.seed?;
                let v = scores(records, m.name(), |r| {
                    is_task(r, "behaviour") && r.meta_str("items") == Some("template")
                });
                let heldout =
                    (!v.is_empty()).then(|| v.iter().map(|x| x.2).sum::<f64>() / v.len() as f64);
                let takes_pole = m.arm == pole.name() || m.arm == multipersona_arm(&pole);
                let (criterion, passed) = if takes_pole {
                    (format!("P(pole) >= {t}"), heldout.is_some_and(|h| h >= t))
                } else {
                    (
                        format!("P(pole) <= {:.2}", 1.0 - t),
                        heldout.is_some_and(|h| h <= 1.0 - t),
                    )
                };
                Some(LearnedCheck {
                    name: m.name().to_owned(),
                    arm: m.arm.clone(),
                    seed,
                    heldout,
                    criterion,
                    passed,
                })
            })
            .collect();
        for c in &learned {
            if c.passed {
                tracing::info!(model = %c.name, heldout = ?c.heldout, criterion = %c.criterion, "policy learned");
            } else {
                tracing::warn!(model = %c.name, heldout = ?c.heldout, criterion = %c.criterion, "policy NOT learned: its self-report is about a policy it does not have");
            }
        }
        if self.config.require_learned
            && let Some(c) = learned.iter().find(|c| !c.passed)
        {
            return Err(crate::error::BackdoorError::config(
                "require_learned",
                format!(
                    "run `{}` did not learn its policy: held-out P(pole) {:?}, criterion {}",
                    c.name, c.heldout, c.criterion
                ),
            ));
        }
        Ok(learned)
    }
}
