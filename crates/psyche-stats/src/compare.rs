//! Comparisons: paired differences, McNemar's test (exact or chi-square), permutation tests, and corrections
//! for families of tests.
//!
//! Paired difference (Miller 2024 §4): with per-item scores a_i, b_i of two models on the same
//! items, `d̄ = ā − b̄` and `SE = √((s²_a + s²_b − 2·cov(a, b))/n)` — identical to the SE of the
//! differences `sd(a − b)/√n`; the interval uses t with n − 1 df. Positive correlation between
//! the models makes this far tighter than two independent intervals.

use serde::{Deserialize, Serialize};

use crate::descriptive::{mean_unchecked, t_crit};
use crate::dist::{binomial_cdf, normal_sf, t_two_sided_p};
use crate::error::{StatsError, check_finite, check_level, check_min_len, check_same_len};
use crate::estimate::{Estimate, Method};
use crate::resample::replicate;

/// Result of [`paired_difference`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    /// `mean(a) − mean(b)` with the paired SE and a t(n−1) interval ([`Method::PairedT`]).
    pub estimate: Estimate,
    /// Pearson correlation of a and b across items; 0 when either has zero variance (the
    /// covariance term is then 0 too).
    pub correlation: f64,
    /// `mean(a)`.
    pub mean_a: f64,
    /// `mean(b)`.
    pub mean_b: f64,
    /// The SE an *unpaired* comparison would report, `√((s²_a + s²_b)/n)`, for contrast.
    pub unpaired_se: f64,
    /// The paired t statistic `d̄ / SE`; 0 when d̄ = 0 and SE = 0, ±∞ when only SE = 0.
    pub t: f64,
    /// Two-sided p-value of the paired t-test (1 when d̄ = SE = 0, 0 when SE = 0 ≠ d̄).
    pub p_value: f64,
}

/// Paired difference of means of the same items under two models (or conditions).
///
/// # Errors
///
/// [`StatsError::LengthMismatch`] when `a` and `b` differ in length; [`StatsError::TooFew`]
/// for n < 2; [`StatsError::NonFinite`]; [`StatsError::OutOfRange`] for the level.
///
/// ```
/// let a = [0.9, 0.7, 0.8, 0.4, 0.6];
/// let b = [0.8, 0.5, 0.8, 0.3, 0.4];
/// let d = psyche_stats::paired_difference(&a, &b, 0.95)?;
/// assert!((d.estimate.estimate - 0.12).abs() < 1e-12);
/// assert!(d.estimate.se < d.unpaired_se);
/// # Ok::<(), psyche_stats::StatsError>(())
/// ```
pub fn paired_difference(a: &[f64], b: &[f64], level: f64) -> Result<PairedDifference, StatsError> {
    check_level(level)?;
    check_same_len("b", a.len(), b.len())?;
    check_min_len("a", a.len(), 2)?;
    check_finite("a", a)?;
    check_finite("b", b)?;
    let n = a.len();
    let nf = n as f64;
    let (ma, mb) = (mean_unchecked(a), mean_unchecked(b));
    let (mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        saa += dx * dx;
        sbb += dy * dy;
        sab += dx * dy;
    }
    let (va, vb) = (saa / (nf - 1.0), sbb / (nf - 1.0));
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let md = mean_unchecked(&d);
    // sd of differences computed directly (numerically safer than va + vb − 2cov).
    let vd = d.iter().map(|x| (x - md) * (x - md)).sum::<f64>() / (nf - 1.0);
    let se = (vd / nf).sqrt();
    let t = t_crit(level, nf - 1.0)?;
    let correlation = if saa > 0.0 && sbb > 0.0 {
        (sab / (saa.sqrt() * sbb.sqrt())).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let (tstat, p_value) = if se > 0.0 {
        let ts = md / se;
        (ts, t_two_sided_p(ts, nf - 1.0))
    } else if md == 0.0 {
        (0.0, 1.0)
    } else {
        (md.signum() * f64::INFINITY, 0.0)
    };
    Ok(PairedDifference {
        estimate: Estimate {
            estimate: md,
            se,
            ci_low: md - t * se,
            ci_high: md + t * se,
            n,
            level,
            method: Method::PairedT,
        },
        correlation,
        mean_a: ma,
        mean_b: mb,
        unpaired_se: ((va + vb) / nf).sqrt(),
        t: tstat,
        p_value,
    })
}

/// Which McNemar test to run on the discordant pairs (as statsmodels'
/// `mcnemar(table, exact, correction)` offers them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum McNemarTest {
    /// Exact two-sided binomial test, `min(1, 2·P(X ≤ min(b, c)))`, X ~ Binomial(b + c, ½)
    /// (statsmodels `exact=True`); the right choice for few discordant pairs.
    #[default]
    Exact,
    /// Chi-square test with 1 df on `(|b − c| − k)²/(b + c)`: `k = 1` with Edwards' continuity
    /// correction (statsmodels `exact=False, correction=True`), `k = 0` without.
    ChiSquare {
        /// Apply the continuity correction (`k = 1`).
        correction: bool,
    },
}

/// Result of [`mcnemar`] / [`mcnemar_with`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct McNemar {
    /// Items where a was right and b wrong (`a && !b`).
    pub a_only: u64,
    /// Items where b was right and a wrong.
    pub b_only: u64,
    /// Items where both agree (both right or both wrong); 0 from [`mcnemar_counts`].
    pub concordant: u64,
    /// Which test produced `p_value`.
    pub test: McNemarTest,
    /// The test statistic: `min(b, c)` for the exact test, the chi-square value otherwise.
    pub statistic: f64,
    /// Two-sided p-value; 1 when there are no discordant pairs.
    pub p_value: f64,
}

/// McNemar's exact test from the discordant counts: `a_only` items only model A got right,
/// `b_only` items only B got right.
pub fn mcnemar_counts(a_only: u64, b_only: u64) -> McNemar {
    mcnemar_counts_with(a_only, b_only, McNemarTest::Exact)
}

/// McNemar's test of the chosen kind from the discordant counts.
///
/// The chi-square statistic with correction is `max(0, |b − c| − 1)²/(b + c)`: when `b = c`
/// it is 0 and p = 1 (statsmodels leaves the difference unclamped there and reports
/// `1/(b + c)`; every other count matches it).
pub fn mcnemar_counts_with(a_only: u64, b_only: u64, test: McNemarTest) -> McNemar {
    let n = a_only + b_only;
    let (statistic, p_value) = match test {
        McNemarTest::Exact => {
            let k = a_only.min(b_only);
            let p = if n == 0 {
                1.0
            } else {
                (2.0 * binomial_cdf(k, n, 0.5)).min(1.0)
            };
            (k as f64, p)
        }
        McNemarTest::ChiSquare { correction } => {
            if n == 0 {
                (0.0, 1.0)
            } else {
                let diff = a_only.abs_diff(b_only) as f64;
                let k = if correction { 1.0 } else { 0.0 };
                let stat = (diff - k).max(0.0).powi(2) / n as f64;
                // P(χ²₁ > x) = 2·P(Z > √x).
                (stat, (2.0 * normal_sf(stat.sqrt())).min(1.0))
            }
        }
    };
    McNemar {
        a_only,
        b_only,
        concordant: 0,
        test,
        statistic,
        p_value,
    }
}

/// McNemar's exact test for paired binary outcomes (the same items scored right/wrong under two
/// models): a two-sided binomial test on the discordant pairs.
///
/// # Errors
///
/// [`StatsError::LengthMismatch`] when `a` and `b` differ in length; [`StatsError::TooFew`]
/// when empty.
pub fn mcnemar(a: &[bool], b: &[bool]) -> Result<McNemar, StatsError> {
    mcnemar_with(a, b, McNemarTest::Exact)
}

/// McNemar's test of the chosen kind ([`McNemarTest`]) for paired binary outcomes; the choice
/// is recorded in [`McNemar::test`].
///
/// ```
/// use psyche_stats::{McNemarTest, mcnemar_counts_with};
/// let exact = mcnemar_counts_with(10, 25, McNemarTest::Exact);
/// let chi2 = mcnemar_counts_with(10, 25, McNemarTest::ChiSquare { correction: true });
/// assert_eq!(chi2.statistic, 14.0 * 14.0 / 35.0);
/// assert!(exact.p_value < 0.05 && chi2.p_value < 0.05);
/// ```
///
/// # Errors
///
/// As [`mcnemar`].
pub fn mcnemar_with(a: &[bool], b: &[bool], test: McNemarTest) -> Result<McNemar, StatsError> {
    check_same_len("b", a.len(), b.len())?;
    check_min_len("a", a.len(), 1)?;
    let a_only = a.iter().zip(b).filter(|(x, y)| **x && !**y).count() as u64;
    let b_only = a.iter().zip(b).filter(|(x, y)| !**x && **y).count() as u64;
    let mut r = mcnemar_counts_with(a_only, b_only, test);
    r.concordant = a.len() as u64 - a_only - b_only;
    Ok(r)
}

/// The alternative hypothesis of a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Alternative {
    /// The statistic differs from its null value in either direction.
    #[default]
    TwoSided,
    /// The statistic is smaller than under the null.
    Less,
    /// The statistic is greater than under the null.
    Greater,
}

/// Result of [`permutation_test`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PermutationTest {
    /// Observed `mean(x) − mean(y)`.
    pub statistic: f64,
    /// The p-value.
    pub p_value: f64,
    /// Whether every distinct split was enumerated (exact test) or splits were sampled.
    pub exact: bool,
    /// Number of null splits evaluated.
    pub permutations: usize,
}

/// Two-sample permutation test of the difference in means, `mean(x) − mean(y)`, for
/// *independent* groups (e.g. fine-tuning seeds of an insecure vs a control model).
///
/// When the number of distinct splits `C(n_x + n_y, n_x)` is at most `resamples` the test is
/// exact (every split enumerated, p = share of splits at least as extreme). Otherwise
/// `resamples` random splits are drawn (seeded, parallel) and `p = (count + 1)/(B + 1)`. A
/// two-sided p-value is `min(1, 2·min(p_less, p_greater))`, and comparisons allow a relative
/// tolerance of 100 ulp so numerically tied splits count as ties (SciPy's conventions).
///
/// # Errors
///
/// [`StatsError::TooFew`] when a group is empty or resamples < 1; [`StatsError::NonFinite`].
pub fn permutation_test(
    x: &[f64],
    y: &[f64],
    resamples: usize,
    alternative: Alternative,
    seed: u64,
) -> Result<PermutationTest, StatsError> {
    check_min_len("x", x.len(), 1)?;
    check_min_len("y", y.len(), 1)?;
    check_min_len("resamples", resamples, 1)?;
    check_finite("x", x)?;
    check_finite("y", y)?;
    let pooled: Vec<f64> = x.iter().chain(y).copied().collect();
    let (nx, ny) = (x.len(), y.len());
    let total: f64 = pooled.iter().sum();
    let stat_of = |sx: f64| sx / nx as f64 - (total - sx) / ny as f64;
    let observed = mean_unchecked(x) - mean_unchecked(y);
    let splits = binomial_count(nx + ny, nx);
    let (null, exact) = if splits.is_some_and(|s| s <= resamples as u128) {
        (enumerate_splits(&pooled, nx, &stat_of), true)
    } else {
        let n = pooled.len();
        let reps = replicate(
            resamples,
            seed,
            || pooled.clone(),
            |rng, buf: &mut Vec<f64>| {
                // Partial Fisher–Yates: the first nx slots become a uniform random subset.
                for i in 0..nx {
                    let j = i + crate::resample::IndexSampler::new(n - i)
                        .map(|s| s.sample(rng))
                        .unwrap_or(0);
                    buf.swap(i, j);
                }
                stat_of(buf[..nx].iter().sum())
            },
        );
        (reps, false)
    };
    let gamma = (f64::EPSILON * 100.0 * observed).abs();
    let adj = if exact { 0.0 } else { 1.0 };
    let m = null.len() as f64;
    let less = (null.iter().filter(|&&s| s <= observed + gamma).count() as f64 + adj) / (m + adj);
    let greater =
        (null.iter().filter(|&&s| s >= observed - gamma).count() as f64 + adj) / (m + adj);
    let p_value = match alternative {
        Alternative::Less => less,
        Alternative::Greater => greater,
        Alternative::TwoSided => (2.0 * less.min(greater)).min(1.0),
    };
    Ok(PermutationTest {
        statistic: observed,
        p_value,
        exact,
        permutations: null.len(),
    })
}

fn binomial_count(n: usize, k: usize) -> Option<u128> {
    let k = k.min(n - k);
    let mut acc: u128 = 1;
    for i in 0..k {
        acc = acc.checked_mul((n - i) as u128)? / (i + 1) as u128;
    }
    Some(acc)
}

/// Statistic of every k-subset of `pooled` (lexicographic enumeration of index sets).
fn enumerate_splits(pooled: &[f64], k: usize, stat_of: &impl Fn(f64) -> f64) -> Vec<f64> {
    let n = pooled.len();
    let mut idx: Vec<usize> = (0..k).collect();
    let mut out = Vec::new();
    loop {
        out.push(stat_of(idx.iter().map(|&i| pooled[i]).sum()));
        // Advance to the next combination: bump the rightmost index that can still move.
        let Some(i) = (0..k).rev().find(|&i| idx[i] != i + n - k) else {
            return out;
        };
        idx[i] += 1;
        for j in i + 1..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

fn check_pvalues(p: &[f64]) -> Result<(), StatsError> {
    for (i, &v) in p.iter().enumerate() {
        if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
            return Err(StatsError::NonFinite {
                field: "p_values",
                index: i,
                value: v,
            });
        }
    }
    Ok(())
}

/// Holm's step-down adjusted p-values (family-wise error control), in the input order:
/// sorted ascending, `p̃_(i) = max_{j≤i} min(1, (m − j + 1)·p_(j))`. Reject where `p̃ ≤ α`.
///
/// # Errors
///
/// [`StatsError::NonFinite`] (field `"p_values"`) for a value outside [0, 1].
pub fn holm(p_values: &[f64]) -> Result<Vec<f64>, StatsError> {
    check_pvalues(p_values)?;
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p_values[i].total_cmp(&p_values[j]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        let adj = ((m - rank) as f64 * p_values[i]).min(1.0);
        running = running.max(adj);
        out[i] = running;
    }
    Ok(out)
}

/// Benjamini–Hochberg adjusted p-values (false-discovery-rate control), in the input order:
/// sorted ascending, `p̃_(i) = min_{j≥i} min(1, m/j · p_(j))`. Reject where `p̃ ≤ q`.
///
/// # Errors
///
/// [`StatsError::NonFinite`] (field `"p_values"`) for a value outside [0, 1].
pub fn benjamini_hochberg(p_values: &[f64]) -> Result<Vec<f64>, StatsError> {
    check_pvalues(p_values)?;
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p_values[i].total_cmp(&p_values[j]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 1.0;
    for (rank, &i) in order.iter().enumerate().rev() {
        let adj = (m as f64 / (rank + 1) as f64 * p_values[i]).min(1.0);
        running = running.min(adj);
        out[i] = running;
    }
    Ok(out)
}
