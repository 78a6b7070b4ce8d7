//! [`Record`]: one row of results, the unit every log, statistic and report consumes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::generation::Usage;
use crate::judge::Verdict;
use crate::message::Conversation;
use crate::sample::{Metadata, Sample, Split};

/// Identifies one unit of work: a sample, answered by a model, in one epoch. A run log holds at
/// most one record per key; resuming skips keys already present.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordKey {
    /// The sample's id.
    pub sample_id: String,
    /// The evaluated model's id.
    pub model_id: String,
    /// The epoch (0-based repeat index).
    pub epoch: u32,
}

/// Wall-clock timing of one unit of work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Start, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// Duration of all model and judge calls for this record, in milliseconds.
    pub elapsed_ms: f64,
}

/// One row of results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The run this record belongs to.
    pub run_id: String,
    /// The sample's id.
    pub sample_id: String,
    /// The evaluated model's id.
    pub model_id: String,
    /// The epoch (0-based repeat index).
    pub epoch: u32,
    /// The sampling seed used for this (sample, epoch), when the run is seeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The final model output; `None` when the work failed (see `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The full exchange for multi-turn solvers (prompts and every generation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Conversation>,
    /// Verdicts by judge id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scores: BTreeMap<String, Verdict>,
    /// The sample's metadata plus anything the solver added.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    /// The sample's cluster key, copied for clustered statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The sample's split.
    #[serde(default)]
    pub split: Split,
    /// Timing.
    #[serde(default)]
    pub timing: Timing,
    /// Tokens used by the evaluated model.
    #[serde(default)]
    pub usage: Usage,
    /// Why this unit of work failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Record {
    /// An empty record for `sample` answered by `model_id` in `epoch`, copying the sample's
    /// metadata, cluster and split.
    pub fn for_sample(
        run_id: impl Into<String>,
        sample: &Sample,
        model_id: impl Into<String>,
        epoch: u32,
    ) -> Self {
        Self {
            run_id: run_id.into(),
            sample_id: sample.id.clone(),
            model_id: model_id.into(),
            epoch,
            seed: None,
            output: None,
            transcript: None,
            scores: BTreeMap::new(),
            metadata: sample.metadata.clone(),
            cluster: sample.cluster.clone(),
            split: sample.split.clone(),
            timing: Timing::default(),
            usage: Usage::default(),
            error: None,
        }
    }

    /// The record's key.
    pub fn key(&self) -> RecordKey {
        RecordKey {
            sample_id: self.sample_id.clone(),
            model_id: self.model_id.clone(),
            epoch: self.epoch,
        }
    }

    /// The numeric value of judge `judge`'s score, if present and numeric.
    pub fn score(&self, judge: &str) -> Option<f64> {
        self.scores.get(judge).and_then(|v| v.score.as_f64())
    }

    /// A metadata value as a string.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(|v| v.as_str())
    }
}
