//! Means, standard errors and t-intervals, plain and clustered.
//!
//! Formulas (n observations x_i, mean x̄):
//!
//! - `SE = sd/√n` with `sd² = Σ(x_i − x̄)²/(n − 1)`; interval `x̄ ± t_{n−1, (1+level)/2}·SE`.
//! - Clustered (Miller 2024, Appendix A, with the finite-cluster factor C/(C−1) that Inspect and
//!   Stata also apply): `SE_C = √(C/(C−1) · Σ_c (Σ_{i∈c} (x_i − x̄))²) / n`; interval
//!   `x̄ ± t_{C−1}·SE_C`. With equal cluster sizes this equals the t-interval over cluster means.

use std::collections::HashMap;
use std::hash::Hash;

use crate::dist::t_quantile;
use crate::error::{StatsError, check_finite, check_level, check_min_len, check_same_len};
use crate::estimate::{Estimate, Method};

/// The arithmetic mean.
///
/// # Errors
///
/// [`StatsError::TooFew`] for an empty slice, [`StatsError::NonFinite`] for NaN/∞ values.
pub fn mean(values: &[f64]) -> Result<f64, StatsError> {
    check_min_len("values", values.len(), 1)?;
    check_finite("values", values)?;
    Ok(mean_unchecked(values))
}

pub(crate) fn mean_unchecked(values: &[f64]) -> f64 {
    // Two-pass (mean, then mean of residuals) for accuracy on large offsets.
    let n = values.len() as f64;
    let m = values.iter().sum::<f64>() / n;
    m + values.iter().map(|x| x - m).sum::<f64>() / n
}

/// The variance with `ddof` delta degrees of freedom (`ddof = 1`: the sample variance).
///
/// # Errors
///
/// [`StatsError::TooFew`] when `values.len() <= ddof`; [`StatsError::NonFinite`].
pub fn variance(values: &[f64], ddof: usize) -> Result<f64, StatsError> {
    check_min_len("values", values.len(), ddof + 1)?;
    check_finite("values", values)?;
    Ok(variance_unchecked(values, ddof))
}

pub(crate) fn variance_unchecked(values: &[f64], ddof: usize) -> f64 {
    let m = mean_unchecked(values);
    let ss: f64 = values.iter().map(|x| (x - m) * (x - m)).sum();
    ss / (values.len() - ddof) as f64
}

/// The standard error of the mean, `sd(ddof 1)/√n`.
///
/// # Errors
///
/// [`StatsError::TooFew`] when n < 2; [`StatsError::NonFinite`].
pub fn std_error(values: &[f64]) -> Result<f64, StatsError> {
    Ok((variance(values, 1)? / values.len() as f64).sqrt())
}

/// Two-sided t critical value for `level` with `df` degrees of freedom.
pub(crate) fn t_crit(level: f64, df: f64) -> Result<f64, StatsError> {
    t_quantile(0.5 + level / 2.0, df)
}

/// The mean with a t-interval: `x̄ ± t_{n−1}·sd/√n` ([`Method::TInterval`]).
///
/// All-equal values give `se = 0` and the zero-width interval `[x̄, x̄]` (documented, not an
/// error): with binary data and few items prefer [`wilson`](crate::wilson).
///
/// # Errors
///
/// [`StatsError::TooFew`] when n < 2 (no SE can be estimated from one value);
/// [`StatsError::NonFinite`]; [`StatsError::OutOfRange`] for a level outside (0, 1).
///
/// ```
/// let e = psyche_stats::mean_ci(&[1.0, 2.0, 3.0, 4.0], 0.95)?;
/// assert_eq!(e.estimate, 2.5);
/// assert!((e.ci_low - 0.4457397432).abs() < 1e-9);
/// # Ok::<(), psyche_stats::StatsError>(())
/// ```
pub fn mean_ci(values: &[f64], level: f64) -> Result<Estimate, StatsError> {
    check_level(level)?;
    check_min_len("values", values.len(), 2)?;
    check_finite("values", values)?;
    let n = values.len();
    let m = mean_unchecked(values);
    let se = (variance_unchecked(values, 1) / n as f64).sqrt();
    let t = t_crit(level, (n - 1) as f64)?;
    Ok(Estimate {
        estimate: m,
        se,
        ci_low: m - t * se,
        ci_high: m + t * se,
        n,
        level,
        method: Method::TInterval,
    })
}

/// Dense cluster ids `0..C` in order of first appearance.
#[derive(Debug, Clone)]
pub(crate) struct ClusterIndex {
    pub(crate) ids: Vec<usize>,
    pub(crate) count: usize,
}

impl ClusterIndex {
    pub(crate) fn new<K: Hash + Eq>(keys: &[K]) -> Self {
        let mut map: HashMap<&K, usize> = HashMap::with_capacity(keys.len().min(1 << 16));
        let ids = keys
            .iter()
            .map(|k| {
                let next = map.len();
                *map.entry(k).or_insert(next)
            })
            .collect();
        Self {
            ids,
            count: map.len(),
        }
    }

    /// Per-cluster (sum, count) of `values`.
    pub(crate) fn sums(&self, values: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let mut sums = vec![0.0; self.count];
        let mut counts = vec![0.0; self.count];
        for (&c, &x) in self.ids.iter().zip(values) {
            sums[c] += x;
            counts[c] += 1.0;
        }
        (sums, counts)
    }
}

/// The cluster-robust standard error of a mean, with what it was computed from.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClusteredSe {
    /// The mean over all observations.
    pub mean: f64,
    /// `√(C/(C−1) · Σ_c (Σ_{i∈c} (x_i − x̄))²) / n`.
    pub se: f64,
    /// Number of observations n.
    pub n: usize,
    /// Number of clusters C.
    pub clusters: usize,
    /// The naive (unclustered) SE, sd/√n, for comparison; `se / naive_se` is the square root of
    /// the design effect.
    pub naive_se: f64,
}

/// The clustered standard error of the mean (Miller 2024, Appendix A, with the C/(C−1)
/// finite-cluster correction).
///
/// `clusters[i]` is the cluster key of `values[i]` (a question id, a paraphrase family, a
/// fine-tuning seed...); any `Hash + Eq` type works (`&str`, `String`, integers).
///
/// # Errors
///
/// [`StatsError::LengthMismatch`]; [`StatsError::TooFew`] with fewer than 2 observations or
/// fewer than 2 clusters (`field = "clusters"`); [`StatsError::NonFinite`].
pub fn clustered_se<K: Hash + Eq>(
    values: &[f64],
    clusters: &[K],
) -> Result<ClusteredSe, StatsError> {
    check_same_len("clusters", values.len(), clusters.len())?;
    check_min_len("values", values.len(), 2)?;
    check_finite("values", values)?;
    let index = ClusterIndex::new(clusters);
    check_min_len("clusters", index.count, 2)?;
    let n = values.len();
    let m = mean_unchecked(values);
    let mut resid = vec![0.0; index.count];
    for (&c, &x) in index.ids.iter().zip(values) {
        resid[c] += x - m;
    }
    let c = index.count as f64;
    let ss: f64 = resid.iter().map(|r| r * r).sum();
    let se = (ss * c / (c - 1.0)).sqrt() / n as f64;
    let naive_se = (variance_unchecked(values, 1) / n as f64).sqrt();
    Ok(ClusteredSe {
        mean: m,
        se,
        n,
        clusters: index.count,
        naive_se,
    })
}

/// The mean with a clustered t-interval `x̄ ± t_{C−1}·SE_C` ([`Method::ClusteredT`]).
///
/// Use whenever observations come in correlated groups: K samples of one prompt, paraphrases
/// of one question, answers from one fine-tuning seed. `n` in the result counts observations;
/// the number of clusters is available from [`clustered_se`].
///
/// # Errors
///
/// As [`clustered_se`], plus [`StatsError::OutOfRange`] for the level. One cluster is an error
/// (`TooFew { field: "clusters", .. }`): there is no between-cluster variation to estimate.
///
/// ```
/// let values = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0];
/// let questions = ["q1", "q1", "q2", "q2", "q3", "q3"];
/// let e = psyche_stats::clustered_mean_ci(&values, &questions, 0.95)?;
/// assert!((e.estimate - 0.5).abs() < 1e-12);
/// # Ok::<(), psyche_stats::StatsError>(())
/// ```
pub fn clustered_mean_ci<K: Hash + Eq>(
    values: &[f64],
    clusters: &[K],
    level: f64,
) -> Result<Estimate, StatsError> {
    check_level(level)?;
    let c = clustered_se(values, clusters)?;
    let t = t_crit(level, (c.clusters - 1) as f64)?;
    Ok(Estimate {
        estimate: c.mean,
        se: c.se,
        ci_low: c.mean - t * c.se,
        ci_high: c.mean + t * c.se,
        n: c.n,
        level,
        method: Method::ClusteredT,
    })
}
