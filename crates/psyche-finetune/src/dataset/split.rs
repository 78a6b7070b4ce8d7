//! Deduplication, seeded shuffles and train/validation splits, and export.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use psyche_core::{ChatExample, Conversation, derive_seed, seeded_rng};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainingError};

use super::TokenEstimator;
use super::stats::DatasetStats;

/// Removes exact duplicates, keeping first occurrences in order; returns the kept examples and
/// the number removed.
pub fn dedupe(examples: &[Conversation]) -> (Vec<Conversation>, usize) {
    let mut seen = HashMap::new();
    let kept: Vec<Conversation> = examples
        .iter()
        .filter(|c| seen.insert(*c, ()).is_none())
        .cloned()
        .collect();
    let removed = examples.len() - kept.len();
    (kept, removed)
}

/// A seeded permutation of `items` (ChaCha8 seeded from `derive_seed(seed, "psyche-finetune/shuffle")`).
/// Same seed, same order, on every platform.
pub fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut out = items.to_vec();
    let mut rng = seeded_rng(derive_seed(seed, "psyche-finetune/shuffle"));
    out.shuffle(&mut rng);
    out
}

/// A train/validation split.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainValSplit<T> {
    /// Training examples.
    pub train: Vec<T>,
    /// Held-out examples.
    pub validation: Vec<T>,
}

/// Shuffles with `seed` (see [`shuffled`]) and holds out `round(n × validation_fraction)` examples.
///
/// # Errors
///
/// [`TrainingError::Config`] when the fraction is not in `[0, 1)`.
pub fn train_val_split<T: Clone>(
    items: &[T],
    validation_fraction: f64,
    seed: u64,
) -> Result<TrainValSplit<T>> {
    if !(0.0..1.0).contains(&validation_fraction) {
        return Err(TrainingError::config(
            "validation_fraction",
            format!("must be in [0, 1), got {validation_fraction}"),
        ));
    }
    let mut all = shuffled(items, seed);
    let n_val = (items.len() as f64 * validation_fraction).round() as usize;
    let train = all.split_off(n_val);
    Ok(TrainValSplit {
        train,
        validation: all,
    })
}

/// Paths written by [`export`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedFiles {
    /// `train.jsonl`.
    pub train: PathBuf,
    /// `validation.jsonl`, when there are validation examples.
    pub validation: Option<PathBuf>,
    /// `stats.json`: `{"train": DatasetStats, "validation": DatasetStats}`.
    pub stats: PathBuf,
}

/// Writes `train.jsonl`, `validation.jsonl` (when non-empty) and `stats.json` into `dir`.
///
/// # Errors
///
/// [`TrainingError::Dataset`] or [`TrainingError::Io`] when a file cannot be written.
pub fn export(
    dir: impl AsRef<Path>,
    split: &TrainValSplit<Conversation>,
    estimator: &dyn TokenEstimator,
) -> Result<ExportedFiles> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| TrainingError::io(dir, e))?;
    let to_rows = |v: &[Conversation]| -> Vec<ChatExample> {
        v.iter().cloned().map(ChatExample::from).collect()
    };
    let train = dir.join("train.jsonl");
    psyche_core::write_chat_jsonl(&train, &to_rows(&split.train))?;
    let validation = if split.validation.is_empty() {
        None
    } else {
        let p = dir.join("validation.jsonl");
        psyche_core::write_chat_jsonl(&p, &to_rows(&split.validation))?;
        Some(p)
    };
    let stats = dir.join("stats.json");
    let body = serde_json::json!({
        "train": DatasetStats::compute(&split.train, estimator),
        "validation": DatasetStats::compute(&split.validation, estimator),
    });
    crate::fsutil::write_json(&stats, &body)?;
    Ok(ExportedFiles {
        train,
        validation,
        stats,
    })
}

/// Serialises examples as chat JSONL text (one `{"messages": [...]}` per line).
pub fn to_chat_jsonl(examples: &[Conversation]) -> String {
    let mut out = String::new();
    for conv in examples {
        let row = ChatExample::from(conv.clone());
        // Plain strings and enums always serialise.
        out.push_str(&serde_json::to_string(&row).unwrap_or_default());
        out.push('\n');
    }
    out
}
