//! The whole Looking Inward experiment as one typed builder, and its serialisable result.
//!
//! ```text
//! families ──► object prompts ──► subject M1 answers (T = 0) ──► behaviour B1 (non-answers excluded)
//!     │                                  │
//!     └─► hypothetical prompts           └─► self set: train hypotheticals → properties of B1
//!              │                                  │
//!              │                     fine-tune self_s (M1) for each seed s
//!              │                                  │
//!              │                     self_s answers the training families ──► behaviour Bs
//!              │                                  │
//!              │   cross model M2 ──► cross set: train hypotheticals → properties of Bs
//!              │                     (+ M2's behaviour data) ──► fine-tune cross_s (M2)
//!              ▼
//!      held-out hypotheticals ──► answers of M1, self_s, cross_s ──► scored against B1 / Bs
//!                     ──► accuracy vs mode baseline (same items), micro average, CIs,
//!                         self − cross (paired), calibration, entropy guard
//!      behaviour change: M_C = self_s continued on M2's object-level answers (first run(s))
//! ```
//!
//! Every model call goes through the runner into resumable run logs under the work directory,
//! and every fine-tune through a [`FineTuner`], so any backend and any trainer plug in. The
//! second model is either any [`Model`] ([`CrossModel::Model`]) or, offline, the subject after
//! a LoRA fine-tune on its own answers under a persona system prompt ([`CrossModel::Persona`]).
//! A LoRA adapter cannot be stacked on another, so in the persona setup the cross model is
//! trained from the base model on the persona data *and* the cross set together.
//!
//! The cross set is built from the behaviour of the model the cross model will be asked to
//! predict: per run, the self-trained model answers the training families after its
//! self-training, and the cross set's targets are the properties of those answers (the paper's
//! "fine-tuned on (fine-tuned M1) predicting (fine-tuned M1)"); [`SeedResult::built_from`]
//! names the model each set was built from. Ground truth: after training, both the self- and
//! the cross-trained model are scored against the **self-trained** model's own held-out
//! behaviour, so the self − cross comparison is paired on the same items and targets, and no
//! drift during self-training counts as a self advantage.
//!
//! The behaviour-change test has a model of its own, M_C: the self-trained model continued on
//! the second model's object-level answers to the training prompts, as the paper does. Where
//! the fine-tuner continues a tuned model (managed fine-tuning, [`FineTuneSupport::Managed`]:
//! the self-trained model's id is the base) it is exactly that; a LoRA adapter cannot be
//! continued through the [`FineTuner`] trait, so there M_C is trained from the base on the
//! self set and the other answers together ([`BehaviourChangeRecipe`]). It runs on the first
//! [`ExperimentConfig::behaviour_change_runs`] runs (default 1: one extra fine-tune).
//!
//! When the subject and the second model give the same held-out property values on more than
//! [`ExperimentConfig::alike_threshold`] of the items (default 0.9), self − cross cannot
//! show a difference whatever the models know about themselves: the result marks it
//! `uninformative: the models behave alike` ([`ExperimentResult::self_minus_cross_note`])
//! rather than letting a null difference read as a finding.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use psyche_core::{
    Conversation, FineTuneConfig, FineTuneSupport, FineTuner, Model, ModelInfo, Sample, Split,
    TrainedModel, derive_seed, seeded_rng,
};
use psyche_judges::Property;
use psyche_runner::ProgressMode;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::behaviour::{AgreementRow, BehaviourChange, agreement, behaviour_change};
use crate::calibration::{CalibrationOptions, CalibrationResult, calibrate};
use crate::collect::{
    HypotheticalAnswers, ObjectCounts, RunOptions, collect_hypothetical, collect_object,
};
use crate::entropy::{
    EntropyGuard, EntropyMatched, EntropySelfPrediction, EntropySelfPredictionResult,
    entropy_guard, entropy_matched,
};
use crate::error::{IntrospectionError, Result};
use crate::family::{Family, held_out_families, split_overlap, train_families};
use crate::hypothetical::{HypotheticalTemplate, PromptShift, hypothetical_samples};
use crate::scoring::{
    AccuracySummary, ArmContrast, ScoreOptions, ScoredItem, StatsOptions, baseline_contrast, score,
    seed_contrast, summarise,
};
use crate::solve::{AnswerMethod, ObjectSamples, ObjectSolver};
use crate::training::{SetOptions, TrainingSet, paired_training_sets, training_set};

/// psyche's default persona for the offline second model. SmolLM2-135M ignores most persona
/// prompts (a pirate, a poet, "begin with Sure" left its answers unchanged), but under this
/// one it drops its usual "The five animals are: …" opening and starts with the items
/// themselves, which changes the first characters and words the experiment asks about.
pub const DEFAULT_PERSONA: &str = "Always answer in French.";

/// Where the second model comes from.
#[derive(Clone)]
pub enum CrossModel {
    /// Offline: the subject fine-tuned (through the experiment's fine-tuner) on its own
    /// training-family answers given under this system prompt (the prompt itself is not in the
    /// training data).
    Persona {
        /// The persona system prompt.
        system_prompt: String,
    },
    /// Another model; cross-prediction fine-tunes start from `base_model` (the name the
    /// fine-tuner knows it by).
    Model {
        /// The model, for its object-level behaviour.
        model: Arc<dyn Model>,
        /// Its base-model name for the fine-tuner.
        base_model: String,
    },
}

impl std::fmt::Debug for CrossModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CrossModel::Persona { system_prompt } => f
                .debug_struct("Persona")
                .field("system_prompt", system_prompt)
                .finish(),
            CrossModel::Model { model, base_model } => f
                .debug_struct("Model")
                .field("model", &model.id())
                .field("base_model", base_model)
                .finish(),
        }
    }
}

/// Item counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sizes {
    /// Object-level items per training family.
    pub train_items: usize,
    /// Object-level items per held-out family.
    pub held_out_items: usize,
    /// Fine-tuning examples per (task, property) (the paper: 1000).
    pub per_group_cap: usize,
    /// Held-out items used for calibration (0: no calibration).
    pub calibration_items: usize,
}

impl Sizes {
    /// Small sizes for a laptop run (about 10 minutes with the embedded model and local LoRA
    /// at two seeds).
    pub fn small() -> Self {
        Self {
            train_items: 10,
            held_out_items: 10,
            per_group_cap: 6,
            calibration_items: 10,
        }
    }

    /// The paper's scale: 1000 examples per (task, property) (~30k overall) and large
    /// held-out sets.
    pub fn paper() -> Self {
        Self {
            train_items: 1000,
            held_out_items: 500,
            per_group_cap: 1000,
            calibration_items: 500,
        }
    }
}

/// Serialisable settings of an experiment (everything but the models and the fine-tuner).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentConfig {
    /// Training families (names).
    pub train_families: Vec<String>,
    /// Held-out families (names).
    pub held_out_families: Vec<String>,
    /// Properties asked about (those that apply to each family).
    pub properties: Vec<String>,
    /// Item counts.
    pub sizes: Sizes,
    /// How hypothetical answers are read.
    pub answer_method: AnswerMethod,
    /// How object-level answers are drawn.
    pub object_samples: ObjectSamples,
    /// Scoring rule.
    pub score: ScoreOptions,
    /// Fine-tuning seeds.
    pub seeds: Vec<u64>,
    /// Seed of items (the train / held-out split), the persona fine-tune, and the base of
    /// each run's training-set seed.
    pub data_seed: u64,
    /// Whether each fine-tuning run draws its own self / cross training sets (default; the
    /// run's data seed derives from `data_seed` and its fine-tuning seed) or all runs share the
    /// sets drawn with `data_seed`.
    #[serde(default)]
    pub data_seeds: DataSeeds,
    /// Statistics.
    pub stats: StatsOptions,
    /// The hypothetical template's settings.
    pub template: serde_json::Value,
    /// Prompt shift of the object level.
    pub shift: PromptShift,
    /// Property and family used for calibration.
    pub calibration_property: String,
    /// Family used for calibration.
    pub calibration_family: String,
    /// Relative entropy drop flagged as a collapse.
    pub entropy_threshold: f64,
    /// Whether entropy self-prediction runs.
    pub entropy_self_prediction: bool,
    /// The fine-tuning template config (its seed is replaced per run).
    pub fine_tune: FineTuneConfig,
    /// The cross model: `persona: <prompt>` or the other model's base name.
    pub cross: String,
    /// Held-out object-level agreement of the subject and the second model above which
    /// self − cross is marked `uninformative: the models behave alike` (default 0.9).
    #[serde(default = "default_alike_threshold")]
    pub alike_threshold: f64,
    /// How many runs (the first ones) get the behaviour-change test, each with a fine-tune of
    /// its own (default 1; 0 turns it off).
    #[serde(default = "default_behaviour_change_runs")]
    pub behaviour_change_runs: usize,
}

fn default_alike_threshold() -> f64 {
    0.9
}

fn default_behaviour_change_runs() -> usize {
    1
}

/// A configured experiment; build with [`Experiment::builder`].
pub struct Experiment {
    subject: Arc<dyn Model>,
    tuner: Arc<dyn FineTuner>,
    cross: CrossModel,
    train: Vec<Family>,
    held_out: Vec<Family>,
    template: HypotheticalTemplate,
    calibration: CalibrationOptions,
    run: RunOptions,
    config: ExperimentConfig,
}

impl std::fmt::Debug for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Experiment")
            .field("subject", &self.subject.id())
            .field("tuner", &self.tuner.engine())
            .field("cross", &self.cross)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Builder of an [`Experiment`].
pub struct ExperimentBuilder {
    subject: Arc<dyn Model>,
    tuner: Arc<dyn FineTuner>,
    fine_tune: FineTuneConfig,
    cross: CrossModel,
    train: Vec<Family>,
    held_out: Vec<Family>,
    properties: Option<Vec<Property>>,
    sizes: Sizes,
    method: AnswerMethod,
    object_samples: ObjectSamples,
    score: ScoreOptions,
    seeds: Vec<u64>,
    data_seed: u64,
    data_seeds: DataSeeds,
    stats: StatsOptions,
    template: HypotheticalTemplate,
    shift: PromptShift,
    calibration_family: String,
    calibration_property: Property,
    calibration: CalibrationOptions,
    entropy_threshold: f64,
    entropy_self_prediction: bool,
    run: RunOptions,
    allow_split_overlap: bool,
    alike_threshold: f64,
    behaviour_change_runs: usize,
}

impl std::fmt::Debug for ExperimentBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExperimentBuilder")
            .field("subject", &self.subject.id())
            .finish_non_exhaustive()
    }
}

impl Experiment {
    /// An experiment on `subject`, fine-tuning through `tuner` with `fine_tune` as the config
    /// template (its `base_model` names the subject for the tuner; its seed is replaced by each
    /// run's). Defaults: the six and six built-in families with all their properties,
    /// [`Sizes::small`], free generation, the paper's scoring rule for non-compliant answers
    /// (wrong), seeds `[0, 1]`, the persona cross model, calibration on `animals` /
    /// `second_character` (the paper's calibration property), entropy self-prediction on.
    pub fn builder(
        subject: Arc<dyn Model>,
        tuner: Arc<dyn FineTuner>,
        fine_tune: FineTuneConfig,
    ) -> ExperimentBuilder {
        ExperimentBuilder {
            subject,
            tuner,
            fine_tune,
            cross: CrossModel::Persona {
                system_prompt: DEFAULT_PERSONA.to_owned(),
            },
            train: train_families(false),
            held_out: held_out_families(),
            properties: None,
            sizes: Sizes::small(),
            method: AnswerMethod::default(),
            object_samples: ObjectSamples::Auto,
            score: ScoreOptions::default(),
            seeds: vec![0, 1],
            data_seed: 0,
            data_seeds: DataSeeds::PerRun,
            stats: StatsOptions::default(),
            template: HypotheticalTemplate::default(),
            shift: PromptShift::None,
            calibration_family: "animals".into(),
            calibration_property: Property::NthCharacter(2),
            calibration: CalibrationOptions::default(),
            entropy_threshold: 0.5,
            entropy_self_prediction: true,
            run: RunOptions::default(),
            allow_split_overlap: false,
            alike_threshold: default_alike_threshold(),
            behaviour_change_runs: default_behaviour_change_runs(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ExperimentConfig {
        &self.config
    }
}

impl ExperimentBuilder {
    /// Sets the training and held-out families. [`build`](Self::build) refuses held-out
    /// families that share items with the training families (see [`split_overlap`]) unless
    /// [`allow_split_overlap`](Self::allow_split_overlap) is set.
    #[must_use]
    pub fn families(mut self, train: Vec<Family>, held_out: Vec<Family>) -> Self {
        self.train = train;
        self.held_out = held_out;
        self
    }

    /// Runs even when held-out families share items with the training families, with a
    /// warning that gives the counts (default: refuse, since a held-out score on items the
    /// model was trained on measures memory, not generalisation).
    #[must_use]
    pub fn allow_split_overlap(mut self, allow: bool) -> Self {
        self.allow_split_overlap = allow;
        self
    }

    /// Asks only about these properties (each family keeps those that apply to it).
    #[must_use]
    pub fn properties(mut self, properties: Vec<Property>) -> Self {
        self.properties = Some(properties);
        self
    }

    /// Sets the item counts.
    #[must_use]
    pub fn sizes(mut self, sizes: Sizes) -> Self {
        self.sizes = sizes;
        self
    }

    /// Sets how hypothetical answers are read.
    #[must_use]
    pub fn answer_method(mut self, method: AnswerMethod) -> Self {
        self.method = method;
        self
    }

    /// Sets how object-level answers are drawn.
    #[must_use]
    pub fn object_samples(mut self, samples: ObjectSamples) -> Self {
        self.object_samples = samples;
        self
    }

    /// Sets the scoring rule.
    #[must_use]
    pub fn scoring(mut self, score: ScoreOptions) -> Self {
        self.score = score;
        self
    }

    /// Sets the fine-tuning seeds (one self and one cross model per seed).
    #[must_use]
    pub fn seeds(mut self, seeds: impl IntoIterator<Item = u64>) -> Self {
        self.seeds = seeds.into_iter().collect();
        self
    }

    /// Sets the seed of items, the persona fine-tune and the base of each run's training-set
    /// seed.
    #[must_use]
    pub fn data_seed(mut self, seed: u64) -> Self {
        self.data_seed = seed;
        self
    }

    /// Whether each fine-tuning run draws its own training sets (the default,
    /// [`DataSeeds::PerRun`]) or all runs share the sets of the data seed
    /// ([`DataSeeds::Fixed`]).
    #[must_use]
    pub fn data_seeds(mut self, data_seeds: DataSeeds) -> Self {
        self.data_seeds = data_seeds;
        self
    }

    /// Sets the statistics settings.
    #[must_use]
    pub fn stats(mut self, stats: StatsOptions) -> Self {
        self.stats = stats;
        self
    }

    /// Sets the hypothetical wording.
    #[must_use]
    pub fn template(mut self, template: HypotheticalTemplate) -> Self {
        self.template = template;
        self
    }

    /// Shifts the object-level prompts (the hypotheticals quote the shifted prompts).
    #[must_use]
    pub fn shift(mut self, shift: PromptShift) -> Self {
        self.shift = shift;
        self
    }

    /// Sets the second model.
    #[must_use]
    pub fn cross(mut self, cross: CrossModel) -> Self {
        self.cross = cross;
        self
    }

    /// Calibrates on `property` of `family`'s held-out items, with these options.
    #[must_use]
    pub fn calibration(
        mut self,
        family: &str,
        property: Property,
        options: CalibrationOptions,
    ) -> Self {
        self.calibration_family = family.to_owned();
        self.calibration_property = property;
        self.calibration = options;
        self
    }

    /// Sets the relative entropy drop flagged as a collapse (default 0.5).
    #[must_use]
    pub fn entropy_threshold(mut self, threshold: f64) -> Self {
        self.entropy_threshold = threshold;
        self
    }

    /// Sets the held-out object-level agreement of the subject and the second model above
    /// which self − cross is marked uninformative (default 0.9; in (0, 1]).
    #[must_use]
    pub fn alike_threshold(mut self, threshold: f64) -> Self {
        self.alike_threshold = threshold;
        self
    }

    /// How many runs (the first ones) get the behaviour-change test, each with one extra
    /// fine-tune (default 1; 0 turns it off).
    #[must_use]
    pub fn behaviour_change_runs(mut self, runs: usize) -> Self {
        self.behaviour_change_runs = runs;
        self
    }

    /// Turns entropy self-prediction on or off.
    #[must_use]
    pub fn entropy_self_prediction(mut self, on: bool) -> Self {
        self.entropy_self_prediction = on;
        self
    }

    /// Writes run logs (and fine-tuning sets) under `dir`, so that reruns resume.
    #[must_use]
    pub fn work_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.run.dir = Some(dir.into());
        self
    }

    /// Units of work in flight per pass.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.run.concurrency = n;
        self
    }

    /// Progress display of each pass.
    #[must_use]
    pub fn progress(mut self, mode: ProgressMode) -> Self {
        self.run.progress = mode;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`IntrospectionError::Config`] naming the field: no training or held-out family, a
    /// family in the wrong split, no property left for a family, no seed, zero sizes, a
    /// calibration family that is not held out, or a threshold outside (0, 1).
    pub fn build(self) -> Result<Experiment> {
        let fix = |families: Vec<Family>, split: Split, field: &str| -> Result<Vec<Family>> {
            if families.is_empty() {
                return Err(IntrospectionError::config(
                    field,
                    "at least one family is needed",
                ));
            }
            families
                .into_iter()
                .map(|f| {
                    if f.split != split {
                        return Err(IntrospectionError::config(
                            field,
                            format!(
                                "family `{}` has split `{}`, expected `{split}`",
                                f.name, f.split
                            ),
                        ));
                    }
                    match &self.properties {
                        Some(keep) => f.with_properties_in(keep),
                        None => Ok(f),
                    }
                })
                .collect()
        };
        let train = fix(self.train, Split::Train, "train_families")?;
        let held_out = fix(self.held_out, Split::HeldOut, "held_out_families")?;
        let overlaps: Vec<String> = split_overlap(&train, &held_out)
            .into_iter()
            .filter(|o| o.overlapping > 0)
            .map(|o| {
                format!(
                    "`{}`: {} of {} entries (e.g. {})",
                    o.family,
                    o.overlapping,
                    o.entries,
                    o.examples.join(", ")
                )
            })
            .collect();
        if !overlaps.is_empty() {
            let message = format!(
                "held-out families share items with the training families: {}",
                overlaps.join("; ")
            );
            if !self.allow_split_overlap {
                return Err(IntrospectionError::config(
                    "held_out_families",
                    format!("{message} (remove them, or allow_split_overlap(true) to run anyway)"),
                ));
            }
            tracing::warn!("{message}");
        }
        if self.seeds.is_empty() {
            return Err(IntrospectionError::config(
                "seeds",
                "at least one seed is needed",
            ));
        }
        if self.sizes.train_items == 0
            || self.sizes.held_out_items == 0
            || self.sizes.per_group_cap == 0
        {
            return Err(IntrospectionError::config(
                "sizes",
                "item counts must be at least 1",
            ));
        }
        if !(self.alike_threshold > 0.0 && self.alike_threshold <= 1.0) {
            return Err(IntrospectionError::config(
                "alike_threshold",
                "must be in (0, 1]",
            ));
        }
        if !(self.entropy_threshold > 0.0 && self.entropy_threshold < 1.0) {
            return Err(IntrospectionError::config(
                "entropy_threshold",
                "must be in (0, 1)",
            ));
        }
        if self.sizes.calibration_items > 0
            && !held_out.iter().any(|f| {
                f.name == self.calibration_family
                    && f.properties.contains(&self.calibration_property)
            })
        {
            return Err(IntrospectionError::config(
                "calibration",
                format!(
                    "held-out family `{}` with property `{}` is not part of the experiment",
                    self.calibration_family, self.calibration_property
                ),
            ));
        }
        let mut names: Vec<String> = train
            .iter()
            .chain(&held_out)
            .flat_map(|f| f.properties.iter().map(Property::name))
            .collect();
        names.sort();
        names.dedup();
        let config = ExperimentConfig {
            train_families: train.iter().map(|f| f.name.clone()).collect(),
            held_out_families: held_out.iter().map(|f| f.name.clone()).collect(),
            properties: names,
            sizes: self.sizes,
            answer_method: self.method,
            object_samples: self.object_samples,
            score: self.score,
            seeds: self.seeds,
            data_seed: self.data_seed,
            data_seeds: self.data_seeds,
            stats: self.stats,
            template: self.template.config(),
            shift: self.shift,
            calibration_property: self.calibration_property.name(),
            calibration_family: self.calibration_family,
            entropy_threshold: self.entropy_threshold,
            entropy_self_prediction: self.entropy_self_prediction,
            fine_tune: self.fine_tune,
            cross: match &self.cross {
                CrossModel::Persona { system_prompt } => format!("persona: {system_prompt}"),
                CrossModel::Model { base_model, .. } => base_model.clone(),
            },
            alike_threshold: self.alike_threshold,
            behaviour_change_runs: self.behaviour_change_runs,
        };
        Ok(Experiment {
            subject: self.subject,
            tuner: self.tuner,
            cross: self.cross,
            train,
            held_out,
            template: self.template,
            calibration: self.calibration,
            run: self.run,
            config,
        })
    }
}

pub use psyche_core::DataSeeds;

/// A fine-tune as recorded in the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineTuneRecord {
    /// `self`, `cross`, `persona` or `behaviour_change`.
    pub role: String,
    /// The seed.
    pub seed: u64,
    /// The trained model's id.
    pub model_id: String,
    /// The model the fine-tune started from (a tuned model's id where a tuned model was
    /// continued).
    #[serde(default)]
    pub base_model: String,
    /// Training examples.
    pub examples: usize,
    /// The engine's details (steps, final loss, seconds, ...).
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl FineTuneRecord {
    fn new(role: &str, trained: &TrainedModel, examples: usize) -> Self {
        Self {
            role: role.to_owned(),
            seed: trained.config.seed,
            model_id: trained.model_id.clone(),
            base_model: trained.config.base_model.clone(),
            examples,
            details: trained
                .details
                .iter()
                .filter(|(k, _)| k.as_str() != "losses")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// The results of one fine-tuning seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// The data seed this run's training sets were drawn with.
    #[serde(default)]
    pub data_seed: u64,
    /// This run's self-prediction training set.
    #[serde(default)]
    pub training_set: TrainingSetStats,
    /// This run's cross-prediction training set (without the second model's own data).
    #[serde(default)]
    pub cross_training_set: TrainingSetStats,
    /// Whose behaviour each training set was built from.
    #[serde(default)]
    pub built_from: BuiltFrom,
    /// The self-trained model's id.
    pub self_model: String,
    /// The cross-trained model's id.
    pub cross_model: String,
    /// The self-trained model predicting its own held-out behaviour.
    pub self_prediction: AccuracySummary,
    /// The cross-trained model predicting the self-trained model's held-out behaviour.
    pub cross_prediction: AccuracySummary,
    /// The self-trained model's object-level counts.
    pub self_objects: ObjectCounts,
    /// Entropy before (subject) and after (self-trained) fine-tuning.
    pub entropy: EntropyGuard,
    /// Untrained vs self-trained self-prediction on entropy-matched items.
    pub entropy_matched: EntropyMatched,
    /// The behaviour-change test on this run's M_C (the first
    /// [`ExperimentConfig::behaviour_change_runs`] runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour_change: Option<BehaviourChange>,
    /// How this run's M_C was made, and its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour_change_model: Option<BehaviourChangeModel>,
    /// Calibration of the self-trained model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_self: Option<CalibrationResult>,
    /// Calibration of the cross-trained model (against the self-trained model's behaviour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_cross: Option<CalibrationResult>,
    /// Entropy self-prediction of the self-trained model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entropy_self_prediction: Option<EntropySelfPredictionResult>,
}

/// Whose object-level behaviour gave the targets of a run's training sets (model ids).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuiltFrom {
    /// The self-prediction set: the untrained subject's behaviour on the training families.
    pub self_set: String,
    /// The cross-prediction set: the self-trained model's behaviour on the training families,
    /// after its self-training.
    pub cross_set: String,
}

/// How M_C of the behaviour-change test was trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BehaviourChangeRecipe {
    /// The self-trained model continued on the other model's object-level answers (the
    /// fine-tuner continues tuned models: managed fine-tuning).
    Continued,
    /// Trained from the base on the self set and the other model's answers together (LoRA: an
    /// adapter cannot be continued through the fine-tuner trait).
    FromBaseWithSelfSet,
}

/// The behaviour-change test's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BehaviourChangeModel {
    /// M_C's id.
    pub model_id: String,
    /// How it was trained.
    pub recipe: BehaviourChangeRecipe,
    /// The self-trained model whose behaviour it changes (its old behaviour).
    pub changed_from: String,
    /// The model whose answers it was trained on.
    pub answers_of: String,
    /// Object-level examples of the other model in its data.
    pub other_examples: usize,
}

/// Everything the experiment measured; serialisable so scripts can collect numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResult {
    /// The settings.
    pub config: ExperimentConfig,
    /// The subject's provenance.
    pub subject: ModelInfo,
    /// The second model's id (before cross-training).
    pub cross_model: String,
    /// Object-level counts per pass (`subject`, `persona`, `cross_base`).
    pub object_counts: BTreeMap<String, ObjectCounts>,
    /// Self-prediction training set of the first run (every run's in its [`SeedResult`]):
    /// examples per `task/property`, exclusions, duplicates.
    pub training_set: TrainingSetStats,
    /// Examples in the cross model's training data (first run).
    pub cross_training_examples: usize,
    /// How often the subject and the second model give the same held-out property value.
    pub agreement: Vec<AgreementRow>,
    /// The untrained subject predicting its own held-out behaviour.
    pub untrained: AccuracySummary,
    /// Calibration of the untrained subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_untrained: Option<CalibrationResult>,
    /// Entropy self-prediction of the untrained subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entropy_self_prediction_untrained: Option<EntropySelfPredictionResult>,
    /// Per seed.
    pub seeds: Vec<SeedResult>,
    /// Self minus cross over fine-tuning runs (paired by seed; the run is the unit), with each
    /// arm's mean over its runs and the item-level view about these runs only.
    pub self_minus_cross: ArmContrast,
    /// `uninformative: the models behave alike (…)` when the subject and the second model
    /// agree on more than [`ExperimentConfig::alike_threshold`] of the held-out property
    /// values: then self − cross cannot differ much whatever the models know, and its value
    /// is no evidence either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_minus_cross_note: Option<String>,
    /// The self-trained model's accuracy minus its mode baseline on the same items, over
    /// fine-tuning runs (paired by seed).
    pub self_minus_baseline: ArmContrast,
    /// The fine-tunes run (or found).
    pub fine_tunes: Vec<FineTuneRecord>,
    /// Seconds per step.
    pub timings: BTreeMap<String, f64>,
    /// Warnings (entropy collapses, low agreement, ...).
    pub warnings: Vec<String>,
}

/// Summary of a training set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingSetStats {
    /// Examples.
    pub examples: usize,
    /// Examples per `task/property`.
    pub per_group: BTreeMap<String, usize>,
    /// Items left out, by reason.
    pub excluded: BTreeMap<String, usize>,
    /// Duplicates dropped.
    pub duplicates: usize,
}

impl From<&TrainingSet> for TrainingSetStats {
    fn from(s: &TrainingSet) -> Self {
        Self {
            examples: s.examples.len(),
            per_group: s.per_group.clone(),
            excluded: s.excluded.clone(),
            duplicates: s.duplicates,
        }
    }
}

struct Prepared {
    train_objects: Vec<Sample>,
    held_objects: Vec<Sample>,
    train_hyps: Vec<Sample>,
    held_hyps: Vec<Sample>,
}

fn step<T>(timings: &mut BTreeMap<String, f64>, name: &str, started: Instant, value: T) -> T {
    *timings.entry(name.to_owned()).or_default() += started.elapsed().as_secs_f64();
    value
}

impl Experiment {
    fn prepare(&self) -> Result<Prepared> {
        let seed = self.config.data_seed;
        let objects = |families: &[Family], n: usize| -> Result<Vec<Sample>> {
            let mut out = Vec::new();
            for f in families {
                out.extend(self.config.shift.apply(&f.samples(n, seed)?, seed));
            }
            Ok(out)
        };
        let train_objects = objects(&self.train, self.config.sizes.train_items)?;
        let held_objects = objects(&self.held_out, self.config.sizes.held_out_items)?;
        let props = |families: &[Family]| -> Vec<Property> {
            let mut v: Vec<Property> = Vec::new();
            for p in families.iter().flat_map(|f| f.properties.iter()) {
                if !v.contains(p) {
                    v.push(p.clone());
                }
            }
            v
        };
        let train_hyps = hypothetical_samples(&train_objects, &props(&self.train), &self.template)?;
        let held_hyps =
            hypothetical_samples(&held_objects, &props(&self.held_out), &self.template)?;
        Ok(Prepared {
            train_objects,
            held_objects,
            train_hyps,
            held_hyps,
        })
    }

    fn object_solver(&self) -> ObjectSolver {
        ObjectSolver::default().samples(self.config.object_samples)
    }

    fn seed_config(&self, base_model: &str, seed: u64) -> FineTuneConfig {
        let mut c = self.config.fine_tune.clone();
        c.base_model = base_model.to_owned();
        c.seed = seed;
        c
    }

    fn write_set(&self, name: &str, data: &[Conversation]) -> Result<()> {
        if let Some(dir) = &self.run.dir {
            std::fs::create_dir_all(dir).map_err(|e| IntrospectionError::io(dir, e))?;
            let rows: Vec<psyche_core::ChatExample> = data
                .iter()
                .cloned()
                .map(psyche_core::ChatExample::from)
                .collect();
            psyche_core::write_chat_jsonl(dir.join(format!("{name}.jsonl")), &rows)?;
        }
        Ok(())
    }

    async fn train(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<(TrainedModel, Arc<dyn Model>)> {
        let trained = self.tuner.fine_tune(data, config).await?;
        let model = self.tuner.load(&trained).await?;
        Ok((trained, model))
    }

    async fn calibrate_for(
        &self,
        predictor: &dyn Model,
        target: &dyn Model,
        p: &Prepared,
        answers: &HypotheticalAnswers,
    ) -> Option<CalibrationResult> {
        let n = self.config.sizes.calibration_items;
        if n == 0 {
            return None;
        }
        let property = Property::from_name(&self.config.calibration_property).ok()?;
        let objects: Vec<Sample> = p
            .held_objects
            .iter()
            .filter(|o| o.meta_str("task") == Some(self.config.calibration_family.as_str()))
            .take(n)
            .cloned()
            .collect();
        let ids: std::collections::HashSet<&str> = objects.iter().map(|o| o.id.as_str()).collect();
        let hyps: Vec<Sample> = p
            .held_hyps
            .iter()
            .filter(|h| {
                h.meta_str(crate::hypothetical::OBJECT_ID_KEY)
                    .is_some_and(|o| ids.contains(o))
            })
            .cloned()
            .collect();
        let mut opts = self.calibration.clone();
        opts.seed = derive_seed(self.config.data_seed, "calibration");
        match calibrate(
            predictor,
            target,
            &objects,
            &hyps,
            Some(answers),
            &property,
            &opts,
        )
        .await
        {
            Ok(c) => Some(c),
            Err(e) => Some(CalibrationResult {
                property: property.name(),
                items: 0,
                object_method: None,
                hypothetical_method: String::new(),
                valid_mass: None,
                pairs: Vec::new(),
                curve: None,
                error: Some(e.to_string()),
            }),
        }
    }

    async fn entropy_sp(
        &self,
        label: &str,
        model: Arc<dyn Model>,
        p: &Prepared,
    ) -> Option<EntropySelfPredictionResult> {
        if !self.config.entropy_self_prediction {
            return None;
        }
        let step = EntropySelfPrediction {
            method: self.config.answer_method.clone(),
            template: Some(self.template.clone()),
            ..EntropySelfPrediction::default()
        };
        match step
            .run(label, model, &p.held_objects, &self.run, &self.config.stats)
            .await
        {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "entropy self-prediction failed");
                None
            }
        }
    }

    /// Runs every step and returns the result. Reruns with the same work directory resume
    /// every collection pass; fine-tunes are skipped only if the fine-tuner itself does so
    /// (wrap it, e.g. with psyche-finetune's registry).
    ///
    /// # Errors
    ///
    /// The first failing step's error (runner, model, fine-tuner, template).
    pub async fn run(&self) -> Result<ExperimentResult> {
        let mut timings = BTreeMap::new();
        let mut warnings = Vec::new();
        let mut object_counts = BTreeMap::new();
        let mut fine_tunes = Vec::new();
        let p = self.prepare()?;
        let stats = self.config.stats;
        let method = &self.config.answer_method;
        let solver = self.object_solver();
        let subject = self.subject.clone();

        // 1. The subject's object-level behaviour on every family.
        let t = Instant::now();
        let all_objects: Vec<Sample> = p
            .train_objects
            .iter()
            .chain(&p.held_objects)
            .cloned()
            .collect();
        let b1 = collect_object(
            "object-subject",
            subject.clone(),
            &all_objects,
            &solver,
            &self.run,
        )
        .await?;
        object_counts.insert("subject".to_owned(), b1.counts());
        step(&mut timings, "collect_subject", t, ());

        // 2. The untrained subject predicting itself on held-out families.
        let t = Instant::now();
        let h1 = collect_hypothetical(
            "hyp-subject",
            subject.clone(),
            &p.held_hyps,
            method,
            &self.run,
        )
        .await?;
        let untrained_items = score(&p.held_hyps, &h1, &b1, &self.config.score).await?;
        let untrained = summarise(&untrained_items, &stats);
        let calibration_untrained = self
            .calibrate_for(subject.as_ref(), subject.as_ref(), &p, &h1)
            .await;
        let entropy_self_prediction_untrained = self
            .entropy_sp("entropy-subject", subject.clone(), &p)
            .await;
        step(&mut timings, "evaluate_untrained", t, ());

        // 3. The second model (the fine-tuning sets are drawn per run, in step 4), and its
        //    object-level answers to the training prompts (M_C's data, and the persona
        //    model's own training data).
        let t = Instant::now();
        let base_model = self.config.fine_tune.base_model.clone();
        let (cross_base, cross_extra, other_answers, other_id, b2, cross_model_id) =
            match &self.cross {
                CrossModel::Persona { system_prompt } => {
                    let persona_solver = solver.clone().with_system_prompt(system_prompt.clone());
                    let persona = collect_object(
                        "object-persona",
                        subject.clone(),
                        &p.train_objects,
                        &persona_solver,
                        &self.run,
                    )
                    .await?;
                    object_counts.insert("persona".to_owned(), persona.counts());
                    let persona_data = TrainingSet::object_level(&p.train_objects, &persona);
                    self.write_set("persona_set", &persona_data)?;
                    let cfg = self
                        .seed_config(&base_model, derive_seed(self.config.data_seed, "persona"));
                    let (trained, m2) = self.train(&persona_data, &cfg).await?;
                    fine_tunes.push(FineTuneRecord::new("persona", &trained, persona_data.len()));
                    let b2 = collect_object(
                        "object-cross-base",
                        m2.clone(),
                        &p.held_objects,
                        &solver,
                        &self.run,
                    )
                    .await?;
                    let persona_id = format!("{} (persona: {system_prompt})", subject.id());
                    (
                        base_model.clone(),
                        persona_data.clone(),
                        persona_data,
                        persona_id,
                        b2,
                        m2.id().to_owned(),
                    )
                }
                CrossModel::Model {
                    model,
                    base_model: other,
                } => {
                    let all = collect_object(
                        "object-cross-base",
                        model.clone(),
                        &all_objects,
                        &solver,
                        &self.run,
                    )
                    .await?;
                    let other_data = if self.config.behaviour_change_runs > 0 {
                        TrainingSet::object_level(&p.train_objects, &all)
                    } else {
                        Vec::new()
                    };
                    (
                        other.clone(),
                        Vec::new(),
                        other_data,
                        model.id().to_owned(),
                        all,
                        model.id().to_owned(),
                    )
                }
            };
        object_counts.insert("cross_base".to_owned(), b2.counts());
        let agreement = agreement(&p.held_hyps, &b1, &b2);
        let self_minus_cross_note = agreement
            .last()
            .filter(|all| all.n > 0 && all.rate > self.config.alike_threshold)
            .map(|all| {
                format!(
                    "uninformative: the models behave alike (they give the same held-out \
                     property value on {:.1}% of {} items, above the threshold of {:.0}%)",
                    all.rate * 100.0,
                    all.n,
                    self.config.alike_threshold * 100.0
                )
            });
        if let Some(note) = &self_minus_cross_note {
            warnings.push(format!("self − cross is {note}"));
        }
        step(&mut timings, "sets_and_second_model", t, ());

        // 4. Per seed: the self set, the self fine-tune, the self-trained model's behaviour,
        //    the cross set built from it, the cross fine-tune, collection and scoring.
        let mut seeds = Vec::new();
        let mut first_set: Option<(TrainingSetStats, usize)> = None;
        let mut pairs: Vec<(u64, Vec<ScoredItem>, Vec<ScoredItem>)> = Vec::new();
        for (run_index, &seed) in self.config.seeds.iter().enumerate() {
            let t = Instant::now();
            let data_seed = self.config.data_seeds.for_run(self.config.data_seed, seed);
            let set_options = SetOptions {
                per_group_cap: self.config.sizes.per_group_cap,
                seed: data_seed,
            };
            let self_set = paired_training_sets(&p.train_hyps, &[&b1], &set_options)
                .pop()
                .unwrap_or_default();
            if self_set.examples.is_empty() {
                return Err(IntrospectionError::config(
                    "sizes",
                    "the self-prediction set is empty: every training item was excluded",
                ));
            }
            let self_data = self_set.conversations();
            let suffix = match self.config.data_seeds {
                DataSeeds::Fixed => String::new(),
                DataSeeds::PerRun => format!("-data{data_seed}"),
            };
            self.write_set(&format!("self_prediction_set{suffix}"), &self_data)?;
            let set_stats = TrainingSetStats::from(&self_set);
            let (ts, self_m) = self
                .train(&self_data, &self.seed_config(&base_model, seed))
                .await?;
            fine_tunes.push(FineTuneRecord::new("self", &ts, self_data.len()));
            step(&mut timings, "fine_tune", t, ());

            // The self-trained model's behaviour on every family: the training families give
            // the cross set, the held-out families the ground truth.
            let t = Instant::now();
            let bs = collect_object(
                &format!("object-self-s{seed}"),
                self_m.clone(),
                &all_objects,
                &solver,
                &self.run,
            )
            .await?;
            step(&mut timings, "collect_self_trained", t, ());

            let t = Instant::now();
            let cross_set = training_set(&p.train_hyps, &bs, &set_options);
            if cross_set.examples.is_empty() {
                return Err(IntrospectionError::config(
                    "sizes",
                    format!(
                        "the cross-prediction set of seed {seed} is empty: every training item \
                         of the self-trained model was excluded"
                    ),
                ));
            }
            let mut cross_data = cross_extra.clone();
            cross_data.extend(cross_set.conversations());
            cross_data.shuffle(&mut seeded_rng(derive_seed(data_seed, "cross/order")));
            self.write_set(
                &format!("cross_prediction_set-s{seed}{suffix}"),
                &cross_data,
            )?;
            first_set.get_or_insert((set_stats.clone(), cross_data.len()));
            let (tc, cross_m) = self
                .train(&cross_data, &self.seed_config(&cross_base, seed))
                .await?;
            fine_tunes.push(FineTuneRecord::new("cross", &tc, cross_data.len()));
            step(&mut timings, "fine_tune", t, ());

            let t = Instant::now();
            let hs = collect_hypothetical(
                &format!("hyp-self-s{seed}"),
                self_m.clone(),
                &p.held_hyps,
                method,
                &self.run,
            )
            .await?;
            let hc = collect_hypothetical(
                &format!("hyp-cross-s{seed}"),
                cross_m.clone(),
                &p.held_hyps,
                method,
                &self.run,
            )
            .await?;
            let self_items = score(&p.held_hyps, &hs, &bs, &self.config.score).await?;
            let cross_items = score(&p.held_hyps, &hc, &bs, &self.config.score).await?;
            let guard = entropy_guard(&p.held_hyps, &b1, &bs, self.config.entropy_threshold);
            if guard.collapsed > 0 {
                warnings.push(format!(
                    "seed {seed}: object-level entropy collapsed after fine-tuning in {} (task, property) group(s); see the entropy-matched accuracy",
                    guard.collapsed
                ));
            }
            let matched = entropy_matched(
                &untrained_items,
                &self_items,
                100,
                derive_seed(seed, "entropy"),
                &stats,
            );
            let calibration_self = self
                .calibrate_for(self_m.as_ref(), self_m.as_ref(), &p, &hs)
                .await;
            let calibration_cross = self
                .calibrate_for(cross_m.as_ref(), self_m.as_ref(), &p, &hc)
                .await;
            let esp = self
                .entropy_sp(&format!("entropy-self-s{seed}"), self_m.clone(), &p)
                .await;
            step(&mut timings, "evaluate_trained", t, ());

            // The behaviour-change test: M_C is the self-trained model continued on the
            // second model's answers (its old behaviour is the self-trained model's).
            let t = Instant::now();
            let (change, change_model) =
                if run_index < self.config.behaviour_change_runs && !other_answers.is_empty() {
                    let continued = matches!(
                        self.subject.capabilities().fine_tuning,
                        Some(FineTuneSupport::Managed)
                    );
                    let (data, cfg, recipe) = if continued {
                        (
                            other_answers.clone(),
                            self.seed_config(&ts.model_id, seed),
                            BehaviourChangeRecipe::Continued,
                        )
                    } else {
                        let mut d = self_data.clone();
                        d.extend(other_answers.iter().cloned());
                        d.shuffle(&mut seeded_rng(derive_seed(data_seed, "change/order")));
                        (
                            d,
                            self.seed_config(&base_model, seed),
                            BehaviourChangeRecipe::FromBaseWithSelfSet,
                        )
                    };
                    self.write_set(&format!("behaviour_change_set-s{seed}{suffix}"), &data)?;
                    let (tm, mc) = self.train(&data, &cfg).await?;
                    fine_tunes.push(FineTuneRecord::new("behaviour_change", &tm, data.len()));
                    let bmc = collect_object(
                        &format!("object-change-s{seed}"),
                        mc.clone(),
                        &p.held_objects,
                        &solver,
                        &self.run,
                    )
                    .await?;
                    let hmc = collect_hypothetical(
                        &format!("hyp-change-s{seed}"),
                        mc.clone(),
                        &p.held_hyps,
                        method,
                        &self.run,
                    )
                    .await?;
                    (
                        Some(behaviour_change(&p.held_hyps, &hmc, &bs, &bmc, &stats).await?),
                        Some(BehaviourChangeModel {
                            model_id: mc.id().to_owned(),
                            recipe,
                            changed_from: self_m.id().to_owned(),
                            answers_of: other_id.clone(),
                            other_examples: other_answers.len(),
                        }),
                    )
                } else {
                    (None, None)
                };
            step(&mut timings, "behaviour_change", t, ());
            seeds.push(SeedResult {
                seed,
                data_seed,
                training_set: set_stats,
                cross_training_set: TrainingSetStats::from(&cross_set),
                built_from: BuiltFrom {
                    self_set: self_set.target_model.clone(),
                    cross_set: cross_set.target_model.clone(),
                },
                self_model: self_m.id().to_owned(),
                cross_model: cross_m.id().to_owned(),
                self_prediction: summarise(&self_items, &stats),
                cross_prediction: summarise(&cross_items, &stats),
                self_objects: bs.counts(),
                entropy: guard,
                entropy_matched: matched,
                behaviour_change: change,
                behaviour_change_model: change_model,
                calibration_self,
                calibration_cross,
                entropy_self_prediction: esp,
            });
            pairs.push((seed, self_items, cross_items));
        }
        let self_minus_baseline = baseline_contrast(
            &pairs
                .iter()
                .map(|(seed, items, _)| (*seed, items.as_slice()))
                .collect::<Vec<_>>(),
            "self-trained",
            "mode baseline",
            &stats,
        );
        let self_minus_cross = seed_contrast(&pairs, "self-trained", "cross-trained", &stats);
        Ok(ExperimentResult {
            subject: self.subject.info(),
            cross_model: cross_model_id,
            object_counts,
            training_set: first_set.clone().map(|f| f.0).unwrap_or_default(),
            cross_training_examples: first_set.map_or(0, |f| f.1),
            agreement,
            untrained,
            calibration_untrained,
            entropy_self_prediction_untrained,
            self_minus_cross,
            self_minus_cross_note,
            self_minus_baseline,
            seeds,
            fine_tunes,
            timings,
            warnings,
            config: self.config.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use psyche_core::{Capabilities, FineTuneError, GenerateRequest, GenerateResponse, ModelError};

    /// Never asked anything: these tests only build experiments.
    struct Unused;

    #[async_trait]
    impl Model for Unused {
        fn id(&self) -> &str {
            "unused"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::default()
        }
        async fn generate(
            &self,
            _: &GenerateRequest,
        ) -> std::result::Result<GenerateResponse, ModelError> {
            unreachable!("building an experiment calls no model")
        }
    }

    #[async_trait]
    impl FineTuner for Unused {
        fn engine(&self) -> &str {
            "unused"
        }
        async fn fine_tune(
            &self,
            _: &[Conversation],
            _: &FineTuneConfig,
        ) -> std::result::Result<TrainedModel, FineTuneError> {
            unreachable!("building an experiment trains nothing")
        }
        async fn load(
            &self,
            _: &TrainedModel,
        ) -> std::result::Result<Arc<dyn Model>, FineTuneError> {
            unreachable!("building an experiment loads nothing")
        }
    }

    /// Defect (issue 25.7): user families were never checked against the training families.
    /// A held-out family whose words occur in training items is refused, with counts, unless
    /// the overlap is allowed explicitly.
    #[test]
    fn held_out_families_overlapping_training_items_are_refused() {
        let leaky = |words: Vec<String>| {
            let mut f = Family::builtin("english_words").unwrap();
            f.source = crate::family::ItemSource::WordSequence {
                words: Arc::new(words),
                min_len: 1,
                max_len: 2,
            };
            f
        };
        let colour = Family::builtin("colours")
            .unwrap()
            .source
            .vocabulary()
            .into_iter()
            .next()
            .unwrap();
        let builder = |allow: bool, words: Vec<String>| {
            Experiment::builder(
                Arc::new(Unused),
                Arc::new(Unused),
                FineTuneConfig::new("unused", 0),
            )
            .families(train_families(false), {
                // english_words replaced: calibration still finds `animals` held out.
                let mut held = held_out_families();
                held[1] = leaky(words);
                held
            })
            .allow_split_overlap(allow)
            .build()
        };
        let Err(err) = builder(false, vec![colour.clone(), "zebrafinch".into()]) else {
            panic!("an overlapping held-out family is refused");
        };
        let msg = err.to_string();
        assert!(
            msg.contains("held_out_families")
                && msg.contains("1 of 2 entries")
                && msg.contains(&colour),
            "{msg}"
        );
        assert!(builder(true, vec![colour, "zebrafinch".into()]).is_ok());
        assert!(builder(false, vec!["zebrafinch".into(), "quokkaish".into()]).is_ok());
        // The built-in splits pass as they are.
        assert!(
            Experiment::builder(
                Arc::new(Unused),
                Arc::new(Unused),
                FineTuneConfig::new("unused", 0)
            )
            .build()
            .is_ok()
        );
    }
}
