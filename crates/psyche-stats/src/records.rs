//! Helpers that pull numbers out of [`psyche_core::Record`]s for the statistics in this crate.
//!
//! A judge's score on a record becomes one observation; `Score::None` verdicts and failed
//! records are counted and excluded (never treated as 0). Each observation carries a cluster
//! key: the record's `cluster` (set from the sample, e.g. the question a paraphrase belongs to)
//! or, when absent, its `sample_id`, so the epochs of one sample cluster together.

use std::collections::BTreeMap;

use psyche_core::Record;
use serde::{Deserialize, Serialize};

use crate::compare::{PairedDifference, paired_difference};
use crate::descriptive::{clustered_mean_ci, mean_ci};
use crate::error::StatsError;
use crate::estimate::Estimate;

/// One judge's numeric scores over a set of records, with the keys statistics need.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreColumn {
    /// The judge whose scores these are.
    pub judge: String,
    /// Numeric scores (`Bool` as 1/0).
    pub values: Vec<f64>,
    /// Cluster key of each value (`record.cluster`, else `sample_id`).
    pub clusters: Vec<String>,
    /// Sample id of each value.
    pub sample_ids: Vec<String>,
    /// Model id of each value.
    pub model_ids: Vec<String>,
    /// Epoch of each value.
    pub epochs: Vec<u32>,
    /// Records whose verdict for this judge was absent, `Score::None` or a label.
    pub missing: usize,
    /// Records that failed (`record.error` set); excluded.
    pub failed: usize,
}

impl ScoreColumn {
    /// Extracts `judge`'s numeric score from every record.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a Record>, judge: &str) -> Self {
        let mut col = ScoreColumn {
            judge: judge.to_string(),
            ..Default::default()
        };
        for r in records {
            if r.error.is_some() {
                col.failed += 1;
                continue;
            }
            match r.score(judge) {
                Some(v) if v.is_finite() => {
                    col.values.push(v);
                    col.clusters
                        .push(r.cluster.clone().unwrap_or_else(|| r.sample_id.clone()));
                    col.sample_ids.push(r.sample_id.clone());
                    col.model_ids.push(r.model_id.clone());
                    col.epochs.push(r.epoch);
                }
                _ => col.missing += 1,
            }
        }
        col
    }

    /// The subset belonging to `model_id`.
    pub fn for_model(&self, model_id: &str) -> ScoreColumn {
        let mut col = ScoreColumn {
            judge: self.judge.clone(),
            ..Default::default()
        };
        for i in (0..self.values.len()).filter(|&i| self.model_ids[i] == model_id) {
            col.values.push(self.values[i]);
            col.clusters.push(self.clusters[i].clone());
            col.sample_ids.push(self.sample_ids[i].clone());
            col.model_ids.push(self.model_ids[i].clone());
            col.epochs.push(self.epochs[i]);
        }
        col
    }

    /// Number of scored observations.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no scored observations.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Mean with a plain t-interval over all observations (ignores clustering; see
    /// [`clustered_mean_ci`](Self::clustered_mean_ci)).
    ///
    /// # Errors
    ///
    /// As [`mean_ci`].
    pub fn mean_ci(&self, level: f64) -> Result<Estimate, StatsError> {
        mean_ci(&self.values, level)
    }

    /// Mean with the clustered t-interval, clustered by [`clusters`](Self::clusters).
    ///
    /// # Errors
    ///
    /// As [`clustered_mean_ci`].
    pub fn clustered_mean_ci(&self, level: f64) -> Result<Estimate, StatsError> {
        clustered_mean_ci(&self.values, &self.clusters, level)
    }

    /// Epoch-reduced scores: the mean per `(model, sample)`, ordered by model then sample id.
    pub fn per_sample_means(&self) -> Vec<SampleMean> {
        let mut acc: BTreeMap<(&str, &str), (f64, usize, &str)> = BTreeMap::new();
        for i in 0..self.values.len() {
            let e = acc
                .entry((self.model_ids[i].as_str(), self.sample_ids[i].as_str()))
                .or_insert((0.0, 0, self.clusters[i].as_str()));
            e.0 += self.values[i];
            e.1 += 1;
        }
        acc.into_iter()
            .map(|((m, s), (sum, n, c))| SampleMean {
                model_id: m.to_string(),
                sample_id: s.to_string(),
                cluster: c.to_string(),
                mean: sum / n as f64,
                epochs: n,
            })
            .collect()
    }
}

/// One sample's epoch-averaged score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleMean {
    /// The model.
    pub model_id: String,
    /// The sample.
    pub sample_id: String,
    /// Its cluster key.
    pub cluster: String,
    /// Mean score over its epochs.
    pub mean: f64,
    /// Number of scored epochs.
    pub epochs: usize,
}

/// Extracts `judge`'s numeric scores from `records` (see [`ScoreColumn::from_records`]).
pub fn judge_scores<'a>(records: impl IntoIterator<Item = &'a Record>, judge: &str) -> ScoreColumn {
    ScoreColumn::from_records(records, judge)
}

/// Two models' epoch-averaged scores on the samples both have, aligned by sample id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairedScores {
    /// Sample ids, sorted.
    pub sample_ids: Vec<String>,
    /// Cluster key of each sample.
    pub clusters: Vec<String>,
    /// Model A's mean score per sample.
    pub a: Vec<f64>,
    /// Model B's mean score per sample.
    pub b: Vec<f64>,
    /// Samples scored for only one of the two models (dropped).
    pub unmatched: usize,
}

impl PairedScores {
    /// The paired difference A − B over the matched samples.
    ///
    /// # Errors
    ///
    /// As [`paired_difference`].
    pub fn difference(&self, level: f64) -> Result<PairedDifference, StatsError> {
        paired_difference(&self.a, &self.b, level)
    }

    /// The clustered interval of the per-sample differences A − B (use when samples are
    /// paraphrases of fewer underlying questions).
    ///
    /// # Errors
    ///
    /// As [`clustered_mean_ci`].
    pub fn clustered_difference(&self, level: f64) -> Result<Estimate, StatsError> {
        let d: Vec<f64> = self.a.iter().zip(&self.b).map(|(x, y)| x - y).collect();
        clustered_mean_ci(&d, &self.clusters, level)
    }
}

/// Pairs `judge`'s scores of `model_a` and `model_b` on the same samples (epochs averaged
/// first), for [`paired_difference`] or [`paired_bootstrap`](crate::paired_bootstrap).
pub fn paired_scores<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    judge: &str,
    model_a: &str,
    model_b: &str,
) -> PairedScores {
    let col = ScoreColumn::from_records(records, judge);
    let means = col.per_sample_means();
    let mut a: BTreeMap<&str, (f64, &str)> = BTreeMap::new();
    let mut b: BTreeMap<&str, f64> = BTreeMap::new();
    for m in &means {
        if m.model_id == model_a {
            a.insert(&m.sample_id, (m.mean, &m.cluster));
        } else if m.model_id == model_b {
            b.insert(&m.sample_id, m.mean);
        }
    }
    let mut out = PairedScores::default();
    for (s, (va, c)) in &a {
        if let Some(vb) = b.get(s) {
            out.sample_ids.push(s.to_string());
            out.clusters.push(c.to_string());
            out.a.push(*va);
            out.b.push(*vb);
        } else {
            out.unmatched += 1;
        }
    }
    out.unmatched += b.keys().filter(|s| !a.contains_key(*s)).count();
    out
}

/// `judge`'s label (a `Score::Label`, else the verdict's extracted `answer`) per record, as
/// `(sample_id, label)` pairs; records without one are skipped. Feed the labels to
/// [`mode_baseline`](crate::mode_baseline) or [`cohen_kappa`](crate::cohen_kappa).
pub fn judge_labels<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    judge: &str,
) -> Vec<(String, String)> {
    records
        .into_iter()
        .filter(|r| r.error.is_none())
        .filter_map(|r| {
            let v = r.scores.get(judge)?;
            let label = v
                .score
                .as_label()
                .map(str::to_string)
                .or_else(|| v.answer.clone())?;
            Some((r.sample_id.clone(), label))
        })
        .collect()
}
