//! The serialisable result of a Looking Inward run.

use std::collections::BTreeMap;

use psyche_core::{ModelInfo, TrainedModel};
use serde::{Deserialize, Serialize};

use super::LookingInwardConfig;
use crate::behaviour::{AgreementRow, BehaviourChange};
use crate::calibration::CalibrationResult;
use crate::collect::ObjectCounts;
use crate::entropy::{EntropyGuard, EntropyMatched, EntropySelfPredictionResult};
use crate::scoring::{AccuracySummary, ArmContrast};
use crate::training::TrainingSet;

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
    pub(super) fn new(role: &str, trained: &TrainedModel, examples: usize) -> Self {
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
    /// [`LookingInwardConfig::behaviour_change_runs`] runs).
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
pub struct LookingInwardResult {
    /// The settings.
    pub config: LookingInwardConfig,
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
    /// agree on more than [`LookingInwardConfig::alike_threshold`] of the held-out property
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
