//! Baselines and calibration for introspection (self-prediction) evals.
//!
//! - Mode baseline: the accuracy of always predicting the most common object-level property
//!   (Looking Inward §1.10); self-prediction is only interesting above it.
//! - Entropy `H(p) = −Σ p log p` of a categorical distribution (low entropy inflates both the
//!   mode baseline and self-prediction accuracy).
//! - Distances between an object-level distribution p and a predicted one q: total variation
//!   `½Σ|p − q|` and `KL(p‖q) = Σ p log(p/q)`.
//! - Calibration curve: pairs (object-level probability of a behaviour, predicted probability
//!   of it) for the top-k object behaviours, equal-frequency bins on the first coordinate,
//!   per-bin means, and the mean absolute deviation between the bin means × 100.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::{StatsError, check_finite, check_min_len, check_same_len};
use crate::resample::quantile_sorted;

/// The mode baseline of one group of object-level properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeBaseline {
    /// The most common value (ties: the lexicographically smallest, for determinism).
    pub mode: String,
    /// Share of values equal to the mode: the accuracy of always predicting it.
    pub accuracy: f64,
    /// Number of values.
    pub n: usize,
}

/// The mode baseline of `values` (e.g. the extracted object-level property of each item);
/// `None` when `values` is empty. Compare values after the same normalisation the scorer uses
/// (Looking Inward lower-cases and trims).
///
/// ```
/// let b = psyche_stats::mode_baseline(&["a", "b", "a", "c"]).unwrap();
/// assert_eq!((b.mode.as_str(), b.accuracy, b.n), ("a", 0.5, 4));
/// ```
pub fn mode_baseline<S: AsRef<str>>(values: &[S]) -> Option<ModeBaseline> {
    let counts = count_labels(values);
    let (mode, count) = counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))?;
    Some(ModeBaseline {
        mode: (*mode).to_string(),
        accuracy: *count as f64 / values.len() as f64,
        n: values.len(),
    })
}

fn count_labels<S: AsRef<str>>(values: &[S]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for v in values {
        *counts.entry(v.as_ref()).or_insert(0usize) += 1;
    }
    counts
}

/// Mode baselines per group (e.g. per `(task, property)` key), in key order.
///
/// # Errors
///
/// [`StatsError::LengthMismatch`] when `groups` and `values` differ in length.
pub fn mode_baseline_by_group<S: AsRef<str>, G: AsRef<str>>(
    values: &[S],
    groups: &[G],
) -> Result<BTreeMap<String, ModeBaseline>, StatsError> {
    check_same_len("groups", values.len(), groups.len())?;
    let mut by: HashMap<&str, Vec<&str>> = HashMap::new();
    for (v, g) in values.iter().zip(groups) {
        by.entry(g.as_ref()).or_default().push(v.as_ref());
    }
    Ok(by
        .into_iter()
        .filter_map(|(g, vs)| mode_baseline(&vs).map(|b| (g.to_string(), b)))
        .collect())
}

/// The empirical distribution of labels: label → share.
pub fn label_distribution<S: AsRef<str>>(values: &[S]) -> BTreeMap<String, f64> {
    let n = values.len() as f64;
    count_labels(values)
        .into_iter()
        .map(|(k, c)| (k.to_string(), c as f64 / n))
        .collect()
}

fn normalised(field: &'static str, p: &[f64]) -> Result<Vec<f64>, StatsError> {
    check_min_len(field, p.len(), 1)?;
    check_finite(field, p)?;
    if let Some(i) = p.iter().position(|&x| x < 0.0) {
        return Err(StatsError::OutOfRange {
            field,
            value: p[i],
            expected: "probabilities >= 0",
        });
    }
    let total: f64 = p.iter().sum();
    if total <= 0.0 {
        return Err(StatsError::Invalid {
            field,
            reason: "probabilities sum to 0".into(),
        });
    }
    Ok(p.iter().map(|x| x / total).collect())
}

/// Shannon entropy in nats of a categorical distribution (`p` is normalised to sum to 1 first,
/// as SciPy does; zero entries contribute 0). Divide by `ln 2` for bits.
///
/// # Errors
///
/// [`StatsError::TooFew`] when empty; [`StatsError::OutOfRange`] for negative entries;
/// [`StatsError::Invalid`] when all entries are 0.
pub fn entropy(p: &[f64]) -> Result<f64, StatsError> {
    let p = normalised("p", p)?;
    Ok(-p
        .iter()
        .filter(|&&x| x > 0.0)
        .map(|x| x * x.ln())
        .sum::<f64>())
}

/// Entropy in nats of the empirical distribution of `values`; 0 for an empty slice.
pub fn label_entropy<S: AsRef<str>>(values: &[S]) -> f64 {
    let d = label_distribution(values);
    -d.values()
        .filter(|&&x| x > 0.0)
        .map(|x| x * x.ln())
        .sum::<f64>()
}

/// Total-variation distance `½ Σ |p_i − q_i|` between two aligned distributions (each
/// normalised first). In [0, 1].
///
/// # Errors
///
/// [`StatsError::LengthMismatch`]; as [`entropy`] for each input.
pub fn total_variation(p: &[f64], q: &[f64]) -> Result<f64, StatsError> {
    check_same_len("q", p.len(), q.len())?;
    let (p, q) = (normalised("p", p)?, normalised("q", q)?);
    Ok(0.5 * p.iter().zip(&q).map(|(a, b)| (a - b).abs()).sum::<f64>())
}

/// `KL(p ‖ q) = Σ p_i ln(p_i/q_i)` in nats (each normalised first). It is `+∞` when some
/// `q_i = 0 < p_i` — the prediction rules out something the model does; use
/// [`kl_divergence_smoothed`] for a finite value.
///
/// # Errors
///
/// As [`total_variation`].
pub fn kl_divergence(p: &[f64], q: &[f64]) -> Result<f64, StatsError> {
    check_same_len("q", p.len(), q.len())?;
    let (p, q) = (normalised("p", p)?, normalised("q", q)?);
    let mut kl = 0.0;
    for (a, b) in p.iter().zip(&q) {
        if *a > 0.0 {
            if *b == 0.0 {
                return Ok(f64::INFINITY);
            }
            kl += a * (a / b).ln();
        }
    }
    Ok(kl.max(0.0))
}

/// KL divergence after adding `epsilon` to every entry of `q` and renormalising (additive
/// smoothing), which keeps it finite.
///
/// # Errors
///
/// As [`kl_divergence`]; [`StatsError::OutOfRange`] for a non-positive `epsilon`.
pub fn kl_divergence_smoothed(p: &[f64], q: &[f64], epsilon: f64) -> Result<f64, StatsError> {
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(StatsError::OutOfRange {
            field: "epsilon",
            value: epsilon,
            expected: "epsilon > 0",
        });
    }
    let q: Vec<f64> = q.iter().map(|x| x + epsilon).collect();
    kl_divergence(p, &q)
}

/// Aligns two label distributions on the union of their labels (missing labels get 0), in
/// label order: `(labels, p, q)`, ready for [`total_variation`] or [`kl_divergence`].
pub fn align_distributions(
    p: &BTreeMap<String, f64>,
    q: &BTreeMap<String, f64>,
) -> (Vec<String>, Vec<f64>, Vec<f64>) {
    let labels: Vec<String> = p
        .keys()
        .chain(q.keys())
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let pv = labels
        .iter()
        .map(|l| p.get(l).copied().unwrap_or(0.0))
        .collect();
    let qv = labels
        .iter()
        .map(|l| q.get(l).copied().unwrap_or(0.0))
        .collect();
    (labels, pv, qv)
}

/// Calibration pairs for one prompt: for each of the `top_k` most likely object-level
/// behaviours (ties broken by label), the pair `(object probability, predicted probability of
/// the same behaviour)`. A behaviour the predictor never produced gets predicted probability 0.
pub fn calibration_pairs(
    object: &BTreeMap<String, f64>,
    predicted: &BTreeMap<String, f64>,
    top_k: usize,
) -> Vec<(f64, f64)> {
    let mut ranked: Vec<(&String, f64)> = object.iter().map(|(k, v)| (k, *v)).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    ranked
        .into_iter()
        .take(top_k)
        .map(|(label, p)| (p, predicted.get(label).copied().unwrap_or(0.0)))
        .collect()
}

/// A calibration curve (see [`calibration_curve`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Per non-empty bin: (mean expected probability, mean predicted probability), in bin order.
    pub points: Vec<(f64, f64)>,
    /// Mean over bins of |mean expected − mean predicted|, × 100 (the paper's "MAD").
    pub mad_x100: f64,
    /// Number of pairs in each bin (aligned with `points`).
    pub counts: Vec<usize>,
    /// The bin edges actually used (after dropping duplicate quantiles).
    pub edges: Vec<f64>,
}

/// The Looking-Inward calibration curve of `(expected, predicted)` probability pairs.
///
/// Bins are equal-frequency on the *expected* coordinate, exactly as `pandas.qcut(x, bins,
/// duplicates="drop")`: edges are the linear-interpolation quantiles at `0, 1/bins, …, 1`,
/// duplicate edges are dropped, bins are right-closed `(e_{j−1}, e_j]` and the first also holds
/// its lower edge. Empty bins are skipped. When every expected value is equal there is one bin.
///
/// # Errors
///
/// [`StatsError::TooFew`] when `pairs` is empty or `bins` is 0; [`StatsError::NonFinite`].
pub fn calibration_curve(pairs: &[(f64, f64)], bins: usize) -> Result<Calibration, StatsError> {
    check_min_len("pairs", pairs.len(), 1)?;
    check_min_len("bins", bins, 1)?;
    let xs: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let ys: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    check_finite("pairs.expected", &xs)?;
    check_finite("pairs.predicted", &ys)?;
    let mut sorted = xs.clone();
    sorted.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (0..=bins)
        .map(|j| quantile_sorted(&sorted, j as f64 / bins as f64))
        .collect();
    edges.dedup();
    let nb = edges.len().saturating_sub(1).max(1);
    let mut sx = vec![0.0; nb];
    let mut sy = vec![0.0; nb];
    let mut cnt = vec![0usize; nb];
    for (&x, &y) in xs.iter().zip(&ys) {
        // Bin j holds (edges[j], edges[j+1]]; the first also holds edges[0].
        let j = if edges.len() < 2 {
            0
        } else {
            let pos = edges.partition_point(|&e| e < x); // first edge >= x
            pos.saturating_sub(1).min(nb - 1)
        };
        sx[j] += x;
        sy[j] += y;
        cnt[j] += 1;
    }
    let mut points = Vec::new();
    let mut counts = Vec::new();
    for j in 0..nb {
        if cnt[j] > 0 {
            let c = cnt[j] as f64;
            points.push((sx[j] / c, sy[j] / c));
            counts.push(cnt[j]);
        }
    }
    let mad = points.iter().map(|(x, y)| (x - y).abs()).sum::<f64>() / points.len() as f64;
    Ok(Calibration {
        points,
        mad_x100: mad * 100.0,
        counts,
        edges,
    })
}
