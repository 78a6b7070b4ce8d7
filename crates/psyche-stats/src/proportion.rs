//! Intervals and tests for binomial proportions.
//!
//! With x successes in n trials, p̂ = x/n and z = Φ⁻¹((1+level)/2):
//!
//! - Wilson: `(p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)`. Good coverage down to small
//!   n and never leaves [0, 1]; the default for a single rate.
//! - Clopper–Pearson: `[B(α/2; x, n−x+1), B(1−α/2; x+1, n−x)]` (B = Beta quantile; 0 when
//!   x = 0, 1 when x = n). Guaranteed ≥ nominal coverage, conservative.
//! - Beta posterior: the equal-tailed interval of `Beta(x+a, n−x+b)`; the Jeffreys prior
//!   a = b = ½ gives an interval with near-nominal frequentist coverage (Bowyer et al. 2025).
//! - Two independent proportions: pooled z-test and an unpooled Wald interval for p₁ − p₂.

use serde::{Deserialize, Serialize};

use crate::dist::{beta_quantile, normal_quantile, normal_sf};
use crate::error::{StatsError, check_level};
use crate::estimate::{Estimate, Method};

fn check_counts(successes: u64, n: u64) -> Result<(), StatsError> {
    if n == 0 {
        return Err(StatsError::TooFew {
            field: "n",
            needed: 1,
            got: 0,
        });
    }
    if successes > n {
        return Err(StatsError::Invalid {
            field: "successes",
            reason: format!("{successes} successes out of {n} trials"),
        });
    }
    Ok(())
}

fn wald_se(successes: u64, n: u64) -> f64 {
    let p = successes as f64 / n as f64;
    (p * (1.0 - p) / n as f64).sqrt()
}

/// The Wilson score interval for `successes` out of `n` ([`Method::Wilson`]).
///
/// `estimate` is p̂ = x/n and `se` the Wald SE √(p̂(1−p̂)/n) (0 when p̂ is 0 or 1; the interval
/// is still informative then, e.g. `[0, 0.161]` for 0/20).
///
/// # Errors
///
/// [`StatsError::TooFew`] for n = 0; [`StatsError::Invalid`] when successes > n;
/// [`StatsError::OutOfRange`] for the level.
///
/// ```
/// let e = psyche_stats::wilson(0, 20, 0.95)?;
/// assert_eq!(e.ci_low, 0.0);
/// assert!((e.ci_high - 0.16112515).abs() < 1e-8);
/// # Ok::<(), psyche_stats::StatsError>(())
/// ```
pub fn wilson(successes: u64, n: u64, level: f64) -> Result<Estimate, StatsError> {
    check_level(level)?;
    check_counts(successes, n)?;
    let z = normal_quantile(0.5 + level / 2.0);
    let nf = n as f64;
    let p = successes as f64 / nf;
    let z2 = z * z;
    let denom = 1.0 + z2 / nf;
    let center = (p + z2 / (2.0 * nf)) / denom;
    let half = z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    let (lo, hi) = (
        if successes == 0 {
            0.0
        } else {
            (center - half).max(0.0)
        },
        if successes == n {
            1.0
        } else {
            (center + half).min(1.0)
        },
    );
    Ok(Estimate {
        estimate: p,
        se: wald_se(successes, n),
        ci_low: lo,
        ci_high: hi,
        n: n as usize,
        level,
        method: Method::Wilson,
    })
}

/// The Clopper–Pearson ("exact") interval ([`Method::ClopperPearson`]).
///
/// # Errors
///
/// As [`wilson`].
pub fn clopper_pearson(successes: u64, n: u64, level: f64) -> Result<Estimate, StatsError> {
    check_level(level)?;
    check_counts(successes, n)?;
    let alpha = 1.0 - level;
    let x = successes as f64;
    let nf = n as f64;
    let lo = if successes == 0 {
        0.0
    } else {
        beta_quantile(alpha / 2.0, x, nf - x + 1.0)?
    };
    let hi = if successes == n {
        1.0
    } else {
        beta_quantile(1.0 - alpha / 2.0, x + 1.0, nf - x)?
    };
    Ok(Estimate {
        estimate: x / nf,
        se: wald_se(successes, n),
        ci_low: lo,
        ci_high: hi,
        n: n as usize,
        level,
        method: Method::ClopperPearson,
    })
}

/// The equal-tailed credible interval of the posterior `Beta(x + prior_a, n − x + prior_b)`
/// ([`Method::BetaPosterior`]).
///
/// `estimate` is the posterior mean `(x + a)/(n + a + b)` and `se` the posterior standard
/// deviation. `n = 0` is allowed here (the interval is then the prior's).
///
/// # Errors
///
/// [`StatsError::OutOfRange`] for non-positive prior parameters or the level;
/// [`StatsError::Invalid`] when successes > n.
pub fn beta_posterior(
    successes: u64,
    n: u64,
    prior_a: f64,
    prior_b: f64,
    level: f64,
) -> Result<Estimate, StatsError> {
    check_level(level)?;
    if successes > n {
        return Err(StatsError::Invalid {
            field: "successes",
            reason: format!("{successes} successes out of {n} trials"),
        });
    }
    for (field, v) in [("prior_a", prior_a), ("prior_b", prior_b)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(StatsError::OutOfRange {
                field,
                value: v,
                expected: "a finite value > 0",
            });
        }
    }
    let a = successes as f64 + prior_a;
    let b = (n - successes) as f64 + prior_b;
    let alpha = 1.0 - level;
    let mean = a / (a + b);
    let sd = (a * b / ((a + b) * (a + b) * (a + b + 1.0))).sqrt();
    Ok(Estimate {
        estimate: mean,
        se: sd,
        ci_low: beta_quantile(alpha / 2.0, a, b)?,
        ci_high: beta_quantile(1.0 - alpha / 2.0, a, b)?,
        n: n as usize,
        level,
        method: Method::BetaPosterior,
    })
}

/// The Jeffreys interval: the equal-tailed interval of [`beta_posterior`] with the Beta(½, ½)
/// prior, with Brown, Cai & DasGupta's (2001) boundary rule — the lower end is 0 when x = 0
/// and the upper end 1 when x = n, so that p̂ always lies inside. `estimate` is p̂ = x/n (with
/// `se` the Wald SE) so that it is comparable to [`wilson`].
///
/// # Errors
///
/// As [`wilson`].
pub fn jeffreys(successes: u64, n: u64, level: f64) -> Result<Estimate, StatsError> {
    check_counts(successes, n)?;
    let post = beta_posterior(successes, n, 0.5, 0.5, level)?;
    Ok(Estimate {
        ci_low: if successes == 0 { 0.0 } else { post.ci_low },
        ci_high: if successes == n { 1.0 } else { post.ci_high },
        estimate: successes as f64 / n as f64,
        se: wald_se(successes, n),
        ..post
    })
}

/// Result of [`two_proportion_test`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TwoProportionTest {
    /// p̂₁ − p̂₂ with the unpooled Wald SE `√(p̂₁(1−p̂₁)/n₁ + p̂₂(1−p̂₂)/n₂)` and normal interval
    /// ([`Method::Normal`]); `n` is n₁ + n₂.
    pub difference: Estimate,
    /// The pooled z statistic `(p̂₁ − p̂₂)/√(p̄(1−p̄)(1/n₁ + 1/n₂))`; 0 when p̄ is 0 or 1.
    pub z: f64,
    /// Two-sided p-value of `z`; 1 when p̄ is 0 or 1.
    pub p_value: f64,
}

/// Two-sample test of equal proportions for *independent* samples (different items), e.g. the
/// misalignment rate of insecure vs control fine-tunes. For the same items under two models use
/// [`mcnemar`](crate::mcnemar) or [`paired_difference`](crate::paired_difference) instead.
///
/// # Errors
///
/// [`StatsError::TooFew`] when n₁ or n₂ is 0; [`StatsError::Invalid`] when successes > n.
pub fn two_proportion_test(
    successes1: u64,
    n1: u64,
    successes2: u64,
    n2: u64,
    level: f64,
) -> Result<TwoProportionTest, StatsError> {
    check_level(level)?;
    check_counts(successes1, n1)?;
    check_counts(successes2, n2)?;
    let (x1, x2, m1, m2) = (successes1 as f64, successes2 as f64, n1 as f64, n2 as f64);
    let (p1, p2) = (x1 / m1, x2 / m2);
    let diff = p1 - p2;
    let pooled = (x1 + x2) / (m1 + m2);
    let pooled_se = (pooled * (1.0 - pooled) * (1.0 / m1 + 1.0 / m2)).sqrt();
    let (z, p_value) = if pooled_se > 0.0 {
        let z = diff / pooled_se;
        (z, (2.0 * normal_sf(z.abs())).min(1.0))
    } else {
        (0.0, 1.0)
    };
    let se = (p1 * (1.0 - p1) / m1 + p2 * (1.0 - p2) / m2).sqrt();
    let zc = normal_quantile(0.5 + level / 2.0);
    Ok(TwoProportionTest {
        difference: Estimate {
            estimate: diff,
            se,
            ci_low: diff - zc * se,
            ci_high: diff + zc * se,
            n: (n1 + n2) as usize,
            level,
            method: Method::Normal,
        },
        z,
        p_value,
    })
}

/// Difference of two proportions measured on the **same** items (paired binary outcomes, e.g.
/// a model's accuracy and the mode baseline's accuracy on the same questions), with
/// Newcombe's (1998, *Stat. Med.* 17:2635) hybrid score interval, his method 10
/// ([`Method::NewcombePaired`]).
///
/// With the 2×2 counts `both` (a and b right), `a_only`, `b_only`, `neither`, n their sum,
/// p_a = (both + a_only)/n, p_b = (both + b_only)/n, D = p_a − p_b, Wilson intervals
/// (l_a, u_a), (l_b, u_b) at `level`, and the phi correlation with Newcombe's adjustment
/// (A = both·neither − a_only·b_only; φ = (A − n/2)/√(product of the margins) when A > n/2,
/// 0 when 0 ≤ A ≤ n/2, A/√(…) when A < 0; 0 when a margin is 0):
///
/// ```text
/// L = D − √((p_a − l_a)² − 2φ(p_a − l_a)(u_b − p_b) + (u_b − p_b)²)
/// U = D + √((u_a − p_a)² − 2φ(u_a − p_a)(p_b − l_b) + (p_b − l_b)²)
/// ```
///
/// The interval stays within [−1, 1] and is well behaved at tiny n, where a paired t on the
/// 0/±1 differences leaves ±100 pp (n = 4: −75 pp [−155, +5]). `se` is the Wald SE of the
/// paired difference, √((a_only + b_only)/n − D²)/√n.
///
/// # Errors
///
/// [`StatsError::TooFew`] when all counts are 0; [`StatsError::OutOfRange`] for the level.
///
/// ```
/// // Fagerland, Lydersen & Laake (2017), ch. 8: 59 / 6 / 16 / 80 → −0.0621 [−0.1186, −0.0046].
/// let d = psyche_stats::paired_proportion_difference(59, 6, 16, 80, 0.95)?;
/// assert!((d.ci_low + 0.1186).abs() < 5e-5 && (d.ci_high + 0.0046).abs() < 5e-5);
/// # Ok::<(), psyche_stats::StatsError>(())
/// ```
pub fn paired_proportion_difference(
    both: u64,
    a_only: u64,
    b_only: u64,
    neither: u64,
    level: f64,
) -> Result<Estimate, StatsError> {
    check_level(level)?;
    let n = both + a_only + b_only + neither;
    if n == 0 {
        return Err(StatsError::TooFew {
            field: "n",
            needed: 1,
            got: 0,
        });
    }
    let nf = n as f64;
    let (xa, xb) = (both + a_only, both + b_only);
    let (pa, pb) = (xa as f64 / nf, xb as f64 / nf);
    let d = pa - pb;
    let wa = wilson(xa, n, level)?;
    let wb = wilson(xb, n, level)?;
    let (la, ua, lb, ub) = (wa.ci_low, wa.ci_high, wb.ci_low, wb.ci_high);
    let margins = [
        both + a_only,
        b_only + neither,
        both + b_only,
        a_only + neither,
    ];
    let phi = if margins.contains(&0) {
        0.0
    } else {
        let denom = margins.iter().map(|&m| m as f64).product::<f64>().sqrt();
        let a = both as f64 * neither as f64 - a_only as f64 * b_only as f64;
        let adj = if a > nf / 2.0 {
            a - nf / 2.0
        } else if a < 0.0 {
            a
        } else {
            0.0
        };
        adj / denom
    };
    let dl = ((pa - la).powi(2) - 2.0 * phi * (pa - la) * (ub - pb) + (ub - pb).powi(2))
        .max(0.0)
        .sqrt();
    let du = ((ua - pa).powi(2) - 2.0 * phi * (ua - pa) * (pb - lb) + (pb - lb).powi(2))
        .max(0.0)
        .sqrt();
    let discordant = (a_only + b_only) as f64 / nf;
    let se = ((discordant - d * d).max(0.0) / nf).sqrt();
    Ok(Estimate {
        estimate: d,
        se,
        ci_low: (d - dl).max(-1.0),
        ci_high: (d + du).min(1.0),
        n: n as usize,
        level,
        method: Method::NewcombePaired,
    })
}

/// [`paired_proportion_difference`] from per-item outcomes: `a[i]` and `b[i]` are the two
/// binary results on item i (e.g. "the model was right", "the mode baseline was right").
///
/// # Errors
///
/// [`StatsError::LengthMismatch`] when the slices differ in length; [`StatsError::TooFew`] when
/// empty; [`StatsError::OutOfRange`] for the level.
pub fn paired_proportion_difference_of(
    a: &[bool],
    b: &[bool],
    level: f64,
) -> Result<Estimate, StatsError> {
    crate::error::check_same_len("b", a.len(), b.len())?;
    let mut counts = [0u64; 4];
    for (&x, &y) in a.iter().zip(b) {
        counts[match (x, y) {
            (true, true) => 0,
            (true, false) => 1,
            (false, true) => 2,
            (false, false) => 3,
        }] += 1;
    }
    paired_proportion_difference(counts[0], counts[1], counts[2], counts[3], level)
}
