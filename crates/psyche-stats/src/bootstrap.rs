//! Seeded, parallel bootstraps: percentile and BCa, over items or whole clusters.
//!
//! - Percentile: the `(1−level)/2` and `(1+level)/2` quantiles of the B replicates (linear
//!   interpolation, as NumPy/SciPy).
//! - BCa (Efron & Tibshirani 1993, §14.3): bias correction `z₀ = Φ⁻¹(p*)` with `p*` the share of
//!   replicates below θ̂ (ties count ½), acceleration `a = Σ(θ̄₋ − θ₋ᵢ)³ / (6·(Σ(θ̄₋ − θ₋ᵢ)²)^{3/2})`
//!   from the leave-one-out (or leave-one-cluster-out) jackknife, and adjusted levels
//!   `α₁,₂ = Φ(z₀ + (z₀ + z_α)/(1 − a(z₀ + z_α)))`. When `1 − a(z₀ ± z_α) ≤ 0` the adjustment
//!   is undefined; the estimators then return the percentile interval, recorded as
//!   [`Method::BootstrapBcaFallback`] / [`Method::ClusterBootstrapBcaFallback`].
//! - Cluster bootstrap: draw C clusters with replacement and recompute the pooled mean
//!   `Σ sums / Σ counts`; the right resampling unit when observations are correlated within
//!   questions or fine-tuning seeds.
//!
//! Replicates depend only on the seed, never on the thread count (see the `resample` module).
//! The Monte Carlo error of a percentile endpoint is about
//! `√(α(1−α)/B)/φ(z_α) · SE`, i.e. 0.027·SE for B = 10,000 at 95%.

use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::descriptive::{ClusterIndex, mean_unchecked, variance_unchecked};
use crate::dist::{normal_cdf, normal_quantile};
use crate::error::{StatsError, check_finite, check_level, check_min_len, check_same_len};
use crate::estimate::{Estimate, Method};
use rand::Rng;

use crate::resample::{IndexSampler, quantile_sorted, replicate};

/// Which bootstrap interval to build from the replicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BootstrapInterval {
    /// Percentile interval (what the papers report).
    #[default]
    Percentile,
    /// Bias-corrected and accelerated interval (better coverage for skewed statistics).
    Bca,
}

fn check_resamples(resamples: usize) -> Result<(), StatsError> {
    check_min_len("resamples", resamples, 2)
}

/// The percentile interval of bootstrap `replicates` (any order).
///
/// # Errors
///
/// [`StatsError::TooFew`] for fewer than 2 replicates; [`StatsError::NonFinite`];
/// [`StatsError::OutOfRange`] for the level.
pub fn percentile_interval(replicates: &[f64], level: f64) -> Result<(f64, f64), StatsError> {
    check_level(level)?;
    check_resamples(replicates.len())?;
    check_finite("replicates", replicates)?;
    let mut sorted = replicates.to_vec();
    sorted.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    Ok((
        quantile_sorted(&sorted, alpha),
        quantile_sorted(&sorted, 1.0 - alpha),
    ))
}

/// The BCa interval from bootstrap `replicates`, the full-sample statistic `theta_hat`, and
/// the jackknife values `jackknife` (the statistic with each item — or each cluster — left out).
///
/// When all jackknife values are equal the acceleration is taken as 0.
///
/// # Errors
///
/// As [`percentile_interval`]; [`StatsError::TooFew`] with fewer than 2 jackknife values;
/// [`StatsError::Invalid`] when every replicate lies strictly on one side of `theta_hat`
/// (the bias correction is then infinite and BCa is undefined — use the percentile interval),
/// or (field `"acceleration"`) when `1 − a(z₀ + z) ≤ 0` for either tail `z = ±z_α`: the BCa
/// adjustment is then undefined and its formula would return a meaningless, possibly inverted,
/// interval. The bootstrap estimators fall back to the percentile interval in both cases of
/// this guard and record it ([`Method::BootstrapBcaFallback`]).
pub fn bca_interval(
    replicates: &[f64],
    theta_hat: f64,
    jackknife: &[f64],
    level: f64,
) -> Result<(f64, f64), StatsError> {
    match bca_checked(replicates, theta_hat, jackknife, level)? {
        Bca::Interval(ci) => Ok(ci),
        Bca::Undefined { accel, z0 } => Err(StatsError::Invalid {
            field: "acceleration",
            reason: format!(
                "1 − a(z0 + z_alpha) <= 0 (a = {accel:.4}, z0 = {z0:.4}): the BCa adjustment \
                 is undefined at this level (use the percentile interval)"
            ),
        }),
    }
}

/// A BCa interval, or the acceleration and bias correction that make it undefined.
enum Bca {
    Interval((f64, f64)),
    Undefined { accel: f64, z0: f64 },
}

fn bca_checked(
    replicates: &[f64],
    theta_hat: f64,
    jackknife: &[f64],
    level: f64,
) -> Result<Bca, StatsError> {
    check_level(level)?;
    check_resamples(replicates.len())?;
    check_min_len("jackknife", jackknife.len(), 2)?;
    check_finite("replicates", replicates)?;
    check_finite("jackknife", jackknife)?;
    let b = replicates.len() as f64;
    let below = replicates.iter().filter(|&&x| x < theta_hat).count() as f64;
    let at_or_below = replicates.iter().filter(|&&x| x <= theta_hat).count() as f64;
    let share = (below + at_or_below) / (2.0 * b);
    if share <= 0.0 || share >= 1.0 {
        return Err(StatsError::Invalid {
            field: "replicates",
            reason: "every bootstrap replicate lies on one side of the estimate; the BCa bias \
                     correction is infinite (use the percentile interval)"
                .into(),
        });
    }
    let z0 = normal_quantile(share);
    let jbar = mean_unchecked(jackknife);
    let (mut num, mut den) = (0.0, 0.0);
    for &t in jackknife {
        let d = jbar - t;
        num += d * d * d;
        den += d * d;
    }
    let accel = if den > 0.0 {
        num / (6.0 * den.powf(1.5))
    } else {
        0.0
    };
    let alpha = (1.0 - level) / 2.0;
    let z_alpha = normal_quantile(alpha);
    // The adjusted level Φ(z₀ + (z₀ + z)/(1 − a(z₀ + z))) is monotone in z only while the
    // denominator stays positive.
    if [z_alpha, -z_alpha]
        .iter()
        .any(|z| 1.0 - accel * (z0 + z) <= 0.0)
    {
        return Ok(Bca::Undefined { accel, z0 });
    }
    let adjust = |z: f64| {
        let num = z0 + z;
        normal_cdf(z0 + num / (1.0 - accel * num))
    };
    let (a1, a2) = (adjust(z_alpha), adjust(-z_alpha));
    let mut sorted = replicates.to_vec();
    sorted.sort_by(f64::total_cmp);
    Ok(Bca::Interval((
        quantile_sorted(&sorted, a1),
        quantile_sorted(&sorted, a2),
    )))
}

/// The BCa interval with `bca`'s method, or — when the acceleration guard makes BCa
/// undefined — the percentile interval with `fallback`'s method, logged.
fn bca_or_percentile(
    replicates: &[f64],
    theta_hat: f64,
    jackknife: &[f64],
    level: f64,
    (bca, fallback): (Method, Method),
) -> Result<((f64, f64), Method), StatsError> {
    if replicates.iter().all(|&r| r == replicates[0]) {
        return Ok(((theta_hat, theta_hat), bca));
    }
    match bca_checked(replicates, theta_hat, jackknife, level)? {
        Bca::Interval(ci) => Ok((ci, bca)),
        Bca::Undefined { accel, z0 } => {
            tracing::warn!(
                accel,
                z0,
                level,
                "BCa undefined (1 - a(z0 + z_alpha) <= 0); using the percentile interval"
            );
            Ok((percentile_interval(replicates, level)?, fallback))
        }
    }
}

fn sd_ddof1(x: &[f64]) -> f64 {
    variance_unchecked(x, 1).sqrt()
}

/// The raw bootstrap replicates of the mean of `values` (B = `resamples`), seeded.
///
/// # Errors
///
/// [`StatsError::TooFew`] for fewer than 2 values or resamples; [`StatsError::NonFinite`].
pub fn bootstrap_mean_replicates(
    values: &[f64],
    resamples: usize,
    seed: u64,
) -> Result<Vec<f64>, StatsError> {
    check_min_len("values", values.len(), 2)?;
    check_resamples(resamples)?;
    check_finite("values", values)?;
    let sampler = IndexSampler::new(values.len())?;
    let n = values.len();
    // Words are drawn in blocks (`fill`) and mapped to indices in a tight loop; a word in the
    // rejection zone (probability n/2³²) is replaced by a fresh draw, so indices stay exactly
    // uniform and the stream stays deterministic.
    const BLOCK: usize = 4096;
    Ok(replicate(
        resamples,
        seed,
        || vec![0u32; BLOCK.min(n)],
        |rng, words: &mut Vec<u32>| {
            let mut acc = [0.0f64; 4];
            let mut done = 0;
            while done < n {
                let m = (n - done).min(words.len());
                rng.fill(&mut words[..m]);
                for (j, &w) in words[..m].iter().enumerate() {
                    let i = match sampler.map_word(w) {
                        Some(i) => i,
                        None => sampler.sample(rng),
                    };
                    acc[j & 3] += values[i];
                }
                done += m;
            }
            (acc[0] + acc[1] + acc[2] + acc[3]) / n as f64
        },
    ))
}

/// For all-equal data every replicate equals the estimate; report the exact degenerate
/// interval rather than one polluted by rounding in the resampled sums.
fn degenerate(values: &[f64], n: usize, level: f64, method: Method) -> Option<Estimate> {
    let first = *values.first()?;
    values.iter().all(|&v| v == first).then_some(Estimate {
        estimate: first,
        se: 0.0,
        ci_low: first,
        ci_high: first,
        n,
        level,
        method,
    })
}

fn finish(
    theta: f64,
    replicates: &[f64],
    (lo, hi): (f64, f64),
    n: usize,
    level: f64,
    method: Method,
) -> Estimate {
    Estimate {
        estimate: theta,
        se: sd_ddof1(replicates),
        ci_low: lo,
        ci_high: hi,
        n,
        level,
        method,
    }
}

/// The mean with a bootstrap percentile interval ([`Method::BootstrapPercentile`]); `se` is
/// the standard deviation of the replicates.
///
/// Same `seed` → same interval, on any number of threads.
///
/// # Errors
///
/// [`StatsError::TooFew`] for n < 2 or resamples < 2; [`StatsError::NonFinite`];
/// [`StatsError::OutOfRange`] for the level.
///
/// ```
/// let values: Vec<f64> = (0..50).map(|i| (i % 7) as f64).collect();
/// let e = psyche_stats::bootstrap_mean(&values, 2000, 0.95, 42)?;
/// assert!(e.ci_low < e.estimate && e.estimate < e.ci_high);
/// assert_eq!(e, psyche_stats::bootstrap_mean(&values, 2000, 0.95, 42)?);
/// # Ok::<(), psyche_stats::StatsError>(())
/// ```
pub fn bootstrap_mean(
    values: &[f64],
    resamples: usize,
    level: f64,
    seed: u64,
) -> Result<Estimate, StatsError> {
    check_level(level)?;
    let reps = bootstrap_mean_replicates(values, resamples, seed)?;
    if let Some(e) = degenerate(values, values.len(), level, Method::BootstrapPercentile) {
        return Ok(e);
    }
    let ci = percentile_interval(&reps, level)?;
    Ok(finish(
        mean_unchecked(values),
        &reps,
        ci,
        values.len(),
        level,
        Method::BootstrapPercentile,
    ))
}

/// The mean with a BCa bootstrap interval ([`Method::BootstrapBca`]).
///
/// # Errors
///
/// As [`bootstrap_mean`], plus the [`bca_interval`] error for degenerate replicates.
pub fn bootstrap_mean_bca(
    values: &[f64],
    resamples: usize,
    level: f64,
    seed: u64,
) -> Result<Estimate, StatsError> {
    check_level(level)?;
    let reps = bootstrap_mean_replicates(values, resamples, seed)?;
    if let Some(e) = degenerate(values, values.len(), level, Method::BootstrapBca) {
        return Ok(e);
    }
    let theta = mean_unchecked(values);
    let n = values.len() as f64;
    let total: f64 = values.iter().sum();
    let jack: Vec<f64> = values.iter().map(|x| (total - x) / (n - 1.0)).collect();
    let (ci, method) = bca_or_percentile(
        &reps,
        theta,
        &jack,
        level,
        (Method::BootstrapBca, Method::BootstrapBcaFallback),
    )?;
    Ok(finish(theta, &reps, ci, values.len(), level, method))
}

/// Bootstrap of any statistic of one sample (median, trimmed mean, a rate with exclusions...).
/// `statistic` receives a resampled copy of `values` (same length) and must return a finite
/// number. For BCa, the jackknife calls `statistic` n more times on n−1 values.
///
/// # Errors
///
/// As [`bootstrap_mean`]; [`StatsError::NonFinite`] (field `"statistic"`) when the statistic
/// returns NaN/∞ on the data or on a replicate.
pub fn bootstrap_statistic<F>(
    values: &[f64],
    statistic: F,
    resamples: usize,
    level: f64,
    seed: u64,
    interval: BootstrapInterval,
) -> Result<Estimate, StatsError>
where
    F: Fn(&[f64]) -> f64 + Sync,
{
    check_level(level)?;
    check_min_len("values", values.len(), 2)?;
    check_resamples(resamples)?;
    check_finite("values", values)?;
    let n = values.len();
    let sampler = IndexSampler::new(n)?;
    let theta = statistic(values);
    let reps = replicate(
        resamples,
        seed,
        || vec![0.0; n],
        |rng, buf: &mut Vec<f64>| {
            for slot in buf.iter_mut() {
                *slot = values[sampler.sample(rng)];
            }
            statistic(buf)
        },
    );
    check_finite("statistic", &[theta])?;
    check_finite("statistic", &reps)?;
    let (ci, method) = match interval {
        BootstrapInterval::Percentile => (
            percentile_interval(&reps, level)?,
            Method::BootstrapPercentile,
        ),
        BootstrapInterval::Bca => {
            let mut buf = Vec::with_capacity(n - 1);
            let jack: Vec<f64> = (0..n)
                .map(|i| {
                    buf.clear();
                    buf.extend_from_slice(&values[..i]);
                    buf.extend_from_slice(&values[i + 1..]);
                    statistic(&buf)
                })
                .collect();
            check_finite("statistic", &jack)?;
            bca_or_percentile(
                &reps,
                theta,
                &jack,
                level,
                (Method::BootstrapBca, Method::BootstrapBcaFallback),
            )?
        }
    };
    Ok(finish(theta, &reps, ci, n, level, method))
}

/// Cluster bootstrap of the pooled mean: resample whole clusters with replacement
/// ([`Method::ClusterBootstrapPercentile`] or [`Method::ClusterBootstrapBca`]).
///
/// For a paired comparison clustered by question, pass the per-observation differences
/// `a[i] − b[i]` with their cluster keys.
///
/// # Errors
///
/// [`StatsError::LengthMismatch`]; [`StatsError::TooFew`] with fewer than 2 clusters or
/// resamples; [`StatsError::NonFinite`]; [`StatsError::OutOfRange`] for the level.
pub fn cluster_bootstrap_mean<K: Hash + Eq>(
    values: &[f64],
    clusters: &[K],
    resamples: usize,
    level: f64,
    seed: u64,
    interval: BootstrapInterval,
) -> Result<Estimate, StatsError> {
    check_level(level)?;
    check_same_len("clusters", values.len(), clusters.len())?;
    check_resamples(resamples)?;
    check_finite("values", values)?;
    let index = ClusterIndex::new(clusters);
    check_min_len("clusters", index.count, 2)?;
    let method = match interval {
        BootstrapInterval::Percentile => Method::ClusterBootstrapPercentile,
        BootstrapInterval::Bca => Method::ClusterBootstrapBca,
    };
    if let Some(e) = degenerate(values, values.len(), level, method) {
        return Ok(e);
    }
    let (sums, counts) = index.sums(values);
    let c = index.count;
    let sampler = IndexSampler::new(c)?;
    let total: f64 = sums.iter().sum();
    let n_total = values.len() as f64;
    let theta = total / n_total;
    let reps = replicate(
        resamples,
        seed,
        || (),
        |rng, _| {
            let (mut s, mut k) = (0.0, 0.0);
            for _ in 0..c {
                let j = sampler.sample(rng);
                s += sums[j];
                k += counts[j];
            }
            s / k
        },
    );
    let (ci, method) = match interval {
        BootstrapInterval::Percentile => (
            percentile_interval(&reps, level)?,
            Method::ClusterBootstrapPercentile,
        ),
        BootstrapInterval::Bca => {
            let jack: Vec<f64> = (0..c)
                .map(|j| (total - sums[j]) / (n_total - counts[j]))
                .collect();
            bca_or_percentile(
                &reps,
                theta,
                &jack,
                level,
                (
                    Method::ClusterBootstrapBca,
                    Method::ClusterBootstrapBcaFallback,
                ),
            )?
        }
    };
    Ok(finish(theta, &reps, ci, values.len(), level, method))
}

/// Paired bootstrap of the mean difference `mean(a) − mean(b)` over the same items: items are
/// resampled jointly, which keeps the a–b correlation. Percentile interval.
///
/// # Errors
///
/// [`StatsError::LengthMismatch`] when `a` and `b` differ in length; otherwise as
/// [`bootstrap_mean`].
pub fn paired_bootstrap(
    a: &[f64],
    b: &[f64],
    resamples: usize,
    level: f64,
    seed: u64,
    interval: BootstrapInterval,
) -> Result<Estimate, StatsError> {
    check_same_len("b", a.len(), b.len())?;
    check_finite("a", a)?;
    check_finite("b", b)?;
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    match interval {
        BootstrapInterval::Percentile => bootstrap_mean(&d, resamples, level, seed),
        BootstrapInterval::Bca => bootstrap_mean_bca(&d, resamples, level, seed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `bca_guard` fixture's inputs: 2 of 2000 replicates below θ̂ = 0 (z₀ = −3.09) and a
    /// jackknife with one outlier (a = −0.165).
    fn guard_case() -> (Vec<f64>, Vec<f64>) {
        let mut reps = vec![-1.0, -0.5];
        reps.extend((0..1998).map(|i| 0.1 + 1.9 * f64::from(i) / 1997.0));
        let mut jack = vec![50.0];
        jack.extend(std::iter::repeat_n(0.0, 199));
        (reps, jack)
    }

    #[test]
    fn an_undefined_bca_falls_back_to_the_percentile_interval_and_says_so() {
        let (reps, jack) = guard_case();
        let methods = (Method::BootstrapBca, Method::BootstrapBcaFallback);
        let (ci, method) = bca_or_percentile(&reps, 0.0, &jack, 0.999, methods).unwrap();
        assert_eq!(method, Method::BootstrapBcaFallback);
        assert_eq!(ci, percentile_interval(&reps, 0.999).unwrap());
        assert!(ci.0 < ci.1);
        // Where the denominator stays positive, BCa is used.
        let (_, method) = bca_or_percentile(&reps, 0.0, &jack, 0.99, methods).unwrap();
        assert_eq!(method, Method::BootstrapBca);
    }
}
