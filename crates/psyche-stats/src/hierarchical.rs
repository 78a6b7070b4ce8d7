//! Hierarchical aggregation the way the papers report:
//!
//! - Emergent Misalignment: a rate per question, then the mean over questions
//!   ([`mean_of_group_means`]); and a value per fine-tuning seed, then the mean with a
//!   bootstrap CI over seeds ([`seed_summary`]).
//! - Looking Inward: accuracy per (task, property), then the micro average (pooled over all
//!   items) and the macro average (mean of the per-group accuracies) ([`micro_macro`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::bootstrap::bootstrap_mean;
use crate::descriptive::{mean_ci, t_crit};
use crate::error::{StatsError, check_finite, check_level, check_min_len, check_same_len};
use crate::estimate::{Estimate, Method};

/// One group's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// The group key.
    pub key: String,
    /// Mean of the group's values.
    pub mean: f64,
    /// Number of values in the group.
    pub n: usize,
}

fn group_means<G: AsRef<str>>(
    values: &[f64],
    groups: &[G],
) -> Result<Vec<GroupSummary>, StatsError> {
    check_same_len("groups", values.len(), groups.len())?;
    check_finite("values", values)?;
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut acc: Vec<(&str, f64, usize)> = Vec::new();
    for (v, g) in values.iter().zip(groups) {
        let slot = *index.entry(g.as_ref()).or_insert_with(|| {
            acc.push((g.as_ref(), 0.0, 0));
            acc.len() - 1
        });
        acc[slot].1 += v;
        acc[slot].2 += 1;
    }
    Ok(acc
        .into_iter()
        .map(|(k, s, n)| GroupSummary {
            key: k.to_string(),
            mean: s / n as f64,
            n,
        })
        .collect())
}

/// Result of [`mean_of_group_means`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupedMean {
    /// Per-group means in order of first appearance.
    pub groups: Vec<GroupSummary>,
    /// Mean of the group means with a t-interval over groups (df = G − 1,
    /// [`Method::GroupMeansT`]); `n` is the number of groups.
    pub estimate: Estimate,
}

/// Per-group mean (e.g. misaligned-answer rate per question), then the unweighted mean over
/// groups with a t-interval that treats groups as the units.
///
/// # Errors
///
/// [`StatsError::LengthMismatch`]; [`StatsError::TooFew`] (field `"groups"`) with fewer than 2
/// groups; [`StatsError::NonFinite`]; [`StatsError::OutOfRange`] for the level.
pub fn mean_of_group_means<G: AsRef<str>>(
    values: &[f64],
    groups: &[G],
    level: f64,
) -> Result<GroupedMean, StatsError> {
    check_level(level)?;
    let gs = group_means(values, groups)?;
    check_min_len("groups", gs.len(), 2)?;
    let means: Vec<f64> = gs.iter().map(|g| g.mean).collect();
    let e = mean_ci(&means, level)?;
    Ok(GroupedMean {
        groups: gs,
        estimate: Estimate {
            method: Method::GroupMeansT,
            ..e
        },
    })
}

/// Result of [`seed_summary`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeedSummary {
    /// Mean over seeds with a t-interval (df = seeds − 1).
    pub t: Estimate,
    /// Mean over seeds with a bootstrap percentile interval over seeds (what the papers plot).
    pub bootstrap: Estimate,
}

/// Summary of one value per fine-tuning seed (e.g. each seed's misalignment rate): the mean with
/// both a t-interval and a bootstrap percentile interval over seeds.
///
/// With few seeds (3–10, as in the papers) the percentile bootstrap under-covers noticeably —
/// it cannot see beyond the observed range; the t-interval is the more honest of the two.
///
/// # Errors
///
/// [`StatsError::TooFew`] with fewer than 2 seeds or resamples; [`StatsError::NonFinite`].
pub fn seed_summary(
    per_seed: &[f64],
    resamples: usize,
    level: f64,
    seed: u64,
) -> Result<SeedSummary, StatsError> {
    Ok(SeedSummary {
        t: mean_ci(per_seed, level)?,
        bootstrap: bootstrap_mean(per_seed, resamples, level, seed)?,
    })
}

/// Result of [`micro_macro`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MicroMacro {
    /// Per-group means in order of first appearance.
    pub groups: Vec<GroupSummary>,
    /// Pooled mean over all items with a plain t-interval (df = n − 1), as Looking Inward's
    /// "micro average".
    pub micro: Estimate,
    /// Unweighted mean of the group means with a t-interval over groups (df = G − 1).
    pub macro_avg: Estimate,
}

/// Micro and macro averages of per-item values (e.g. 0/1 self-prediction correctness) grouped
/// by `(task, property)` keys.
///
/// # Errors
///
/// [`StatsError::TooFew`] with fewer than 2 items or fewer than 2 groups; otherwise as
/// [`mean_of_group_means`].
pub fn micro_macro<G: AsRef<str>>(
    values: &[f64],
    groups: &[G],
    level: f64,
) -> Result<MicroMacro, StatsError> {
    let micro = mean_ci(values, level)?;
    let g = mean_of_group_means(values, groups, level)?;
    Ok(MicroMacro {
        groups: g.groups,
        micro,
        macro_avg: g.estimate,
    })
}

/// A weighted mean of group means with weights `w_g` (e.g. n_g for the micro average) and its
/// SE treating the group means as independent with variances `v_g`:
/// `SE = √(Σ w_g² v_g)/Σ w_g`. Useful to combine per-task results with their own SEs.
///
/// # Errors
///
/// [`StatsError::LengthMismatch`]; [`StatsError::TooFew`] when empty;
/// [`StatsError::NonFinite`]; [`StatsError::OutOfRange`] for negative weights or variances, or
/// weights summing to 0.
pub fn combine_independent(
    means: &[f64],
    variances: &[f64],
    weights: &[f64],
    level: f64,
) -> Result<Estimate, StatsError> {
    check_level(level)?;
    check_same_len("variances", means.len(), variances.len())?;
    check_same_len("weights", means.len(), weights.len())?;
    check_min_len("means", means.len(), 1)?;
    check_finite("means", means)?;
    check_finite("variances", variances)?;
    check_finite("weights", weights)?;
    for (field, xs) in [("variances", variances), ("weights", weights)] {
        if let Some(&v) = xs.iter().find(|&&v| v < 0.0) {
            return Err(StatsError::OutOfRange {
                field,
                value: v,
                expected: ">= 0",
            });
        }
    }
    let wsum: f64 = weights.iter().sum();
    if wsum <= 0.0 {
        return Err(StatsError::OutOfRange {
            field: "weights",
            value: wsum,
            expected: "sum > 0",
        });
    }
    let est = means.iter().zip(weights).map(|(m, w)| m * w).sum::<f64>() / wsum;
    let se = variances
        .iter()
        .zip(weights)
        .map(|(v, w)| w * w * v)
        .sum::<f64>()
        .sqrt()
        / wsum;
    let z = t_crit(level, f64::INFINITY)?;
    Ok(Estimate {
        estimate: est,
        se,
        ci_low: est - z * se,
        ci_high: est + z * se,
        n: means.len(),
        level,
        method: Method::Normal,
    })
}
