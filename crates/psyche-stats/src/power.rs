//! Power and sample-size planning for item-level evals (Miller 2024, §power).
//!
//! Each item i has a conditional mean x_i (its true score) and each of its K samples adds noise
//! with variance σ²_i. Averaging K samples per item, the variance of one item's contribution is
//!
//! ```text
//! V = ω² + σ²_A/K_A + σ²_B/K_B
//! ```
//!
//! where, for a paired comparison of models A and B on the same items, ω² = Var(x_A,i − x_B,i)
//! is the between-item variance of the *difference* in conditional means and σ²_A, σ²_B the
//! mean within-item variances (for a single model against a fixed value, drop the B terms and
//! ω² = Var(x_i)). A two-sided z-test at level α on n items has power
//!
//! ```text
//! power(n) = Φ(δ√n/√V − z_{1−α/2}) + Φ(−δ√n/√V − z_{1−α/2})
//! ```
//!
//! and the n that reaches a target power solves that equation (≈ (z_{1−α/2} + z_{power})²·V/δ²).
//! These are the normal-approximation formulas of Miller 2024 and `statsmodels`' `NormalIndPower`;
//! a t-test on few items (n < 30) has slightly less power than planned.

use serde::{Deserialize, Serialize};

use crate::dist::{normal_cdf, normal_quantile};
use crate::error::{StatsError, check_probability};

/// The variance components of an item-level design.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ItemDesign {
    /// ω²: between-item variance of the conditional means (of the difference, when paired).
    pub between_var: f64,
    /// σ²_A: mean within-item (sampling) variance of model A's scores.
    pub within_var_a: f64,
    /// K_A: samples per item for model A.
    pub samples_a: u32,
    /// σ²_B: mean within-item variance of model B's scores (0 for a one-model design).
    pub within_var_b: f64,
    /// K_B: samples per item for model B.
    pub samples_b: u32,
}

impl ItemDesign {
    /// One model against a fixed value: ω² = Var(x_i), σ² within, K samples per item.
    pub fn single(between_var: f64, within_var: f64, samples: u32) -> Self {
        Self {
            between_var,
            within_var_a: within_var,
            samples_a: samples,
            within_var_b: 0.0,
            samples_b: 1,
        }
    }

    /// Two models on the same items: ω² = Var(x_A,i − x_B,i).
    pub fn paired(
        omega2: f64,
        within_var_a: f64,
        samples_a: u32,
        within_var_b: f64,
        samples_b: u32,
    ) -> Self {
        Self {
            between_var: omega2,
            within_var_a,
            samples_a,
            within_var_b,
            samples_b,
        }
    }

    /// Two models scored 0/1 on the same items, with mean accuracies `p_a`, `p_b`, item-level
    /// accuracies varying with standard deviation `between_sd` for both models and correlation
    /// `correlation` between the models' item accuracies, K samples per item per model. Then
    /// ω² = 2τ²(1 − ρ) and σ² = p(1 − p) − τ² (since E[x(1−x)] = p(1−p) − Var(x)).
    ///
    /// This is the design simulated by [`simulate_coverage`](crate::simulate_coverage).
    pub fn paired_proportions(
        p_a: f64,
        p_b: f64,
        between_sd: f64,
        correlation: f64,
        samples: u32,
    ) -> Self {
        let t2 = between_sd * between_sd;
        Self {
            between_var: 2.0 * t2 * (1.0 - correlation),
            within_var_a: p_a * (1.0 - p_a) - t2,
            samples_a: samples,
            within_var_b: p_b * (1.0 - p_b) - t2,
            samples_b: samples,
        }
    }

    /// V = ω² + σ²_A/K_A + σ²_B/K_B, the variance contributed by one item.
    pub fn item_variance(&self) -> f64 {
        self.between_var
            + self.within_var_a / f64::from(self.samples_a.max(1))
            + self.within_var_b / f64::from(self.samples_b.max(1))
    }

    fn check(&self) -> Result<f64, StatsError> {
        for (field, v) in [
            ("between_var", self.between_var),
            ("within_var_a", self.within_var_a),
            ("within_var_b", self.within_var_b),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(StatsError::OutOfRange {
                    field,
                    value: v,
                    expected: "a finite variance >= 0",
                });
            }
        }
        if self.samples_a == 0 {
            return Err(StatsError::OutOfRange {
                field: "samples_a",
                value: 0.0,
                expected: ">= 1",
            });
        }
        let v = self.item_variance();
        if v <= 0.0 {
            return Err(StatsError::Invalid {
                field: "design",
                reason: "item variance is 0: every item would give the same score".into(),
            });
        }
        Ok(v)
    }

    /// The design effect of averaging K correlated samples per item relative to K·n
    /// independent samples: `1 + (K − 1)·ICC`, with ICC = ω²/(ω² + σ²) (one-model designs).
    pub fn design_effect(&self) -> f64 {
        let total = self.between_var + self.within_var_a;
        if total <= 0.0 {
            return 1.0;
        }
        1.0 + (f64::from(self.samples_a) - 1.0) * self.between_var / total
    }
}

fn check_alpha(alpha: f64) -> Result<(), StatsError> {
    if alpha.is_finite() && alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(StatsError::OutOfRange {
            field: "alpha",
            value: alpha,
            expected: "0 < alpha < 1",
        })
    }
}

fn power_raw(effect: f64, n: f64, z: f64) -> f64 {
    let s = effect * n.sqrt();
    normal_cdf(s - z) + normal_cdf(-s - z)
}

/// Power of a two-sided test at level `alpha` to detect a true difference `delta` with
/// `n_items` items under `design`.
///
/// # Errors
///
/// [`StatsError::OutOfRange`] for a negative or non-finite variance, `alpha` outside (0, 1),
/// K = 0, or `n_items = 0`; [`StatsError::Invalid`] for a zero item variance.
pub fn power(
    design: &ItemDesign,
    delta: f64,
    n_items: usize,
    alpha: f64,
) -> Result<f64, StatsError> {
    check_alpha(alpha)?;
    let v = design.check()?;
    if n_items == 0 {
        return Err(StatsError::OutOfRange {
            field: "n_items",
            value: 0.0,
            expected: ">= 1",
        });
    }
    let z = normal_quantile(1.0 - alpha / 2.0);
    Ok(power_raw(delta.abs() / v.sqrt(), n_items as f64, z))
}

/// Result of [`sample_size`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleSize {
    /// Items needed (the exact solution rounded up).
    pub n_items: usize,
    /// The exact (fractional) solution of `power(n) = target`.
    pub n_exact: f64,
    /// Model calls this costs: `n_items·(K_A + K_B)` (K_B = 0 for one-model designs).
    pub samples: u64,
    /// V, the per-item variance used.
    pub item_variance: f64,
    /// The power actually reached with `n_items`.
    pub achieved_power: f64,
    /// The design has no between-item variance (ω² = 0): the plan assumes the items are
    /// interchangeable, so only the total number of samples `n·K` matters and `n_items` is
    /// raised to 2, the fewest any interval across items needs. A pilot's ω̂² of 0 is a clamp
    /// at zero, not evidence that items do not differ: plan with an upper bound of ω² instead.
    #[serde(default)]
    pub between_var_zero: bool,
}

/// Items needed to detect a difference `delta` (the minimum detectable effect) with a
/// two-sided test at level `alpha` with probability `power`.
///
/// With zero between-item variance (ω² = 0) the variance of an item mean is σ²/K alone, so
/// more samples per item can stand in for items and the exact solution may be below 2 items
/// (1 item of K samples): a plan no interval across items can use. That case is handled
/// explicitly: `n_items` is at least 2 and [`SampleSize::between_var_zero`] is set; `n_exact`
/// stays the exact solution (`n_exact · K` is the total-sample solution of a one-sample z test).
///
/// # Errors
///
/// As [`power`]; [`StatsError::OutOfRange`] when `delta` is 0 or `power` is not in
/// (alpha, 1).
///
/// ```
/// use psyche_stats::{ItemDesign, sample_size};
/// // Self- vs cross-prediction: 0.45 vs 0.35, items vary (sd 0.1, r = 0.6), 10 samples each.
/// let design = ItemDesign::paired_proportions(0.45, 0.35, 0.1, 0.6, 10);
/// let plan = sample_size(&design, 0.10, 0.05, 0.80)?;
/// assert_eq!(plan.n_items, 42);
/// # Ok::<(), psyche_stats::StatsError>(())
/// ```
pub fn sample_size(
    design: &ItemDesign,
    delta: f64,
    alpha: f64,
    power: f64,
) -> Result<SampleSize, StatsError> {
    check_alpha(alpha)?;
    check_probability("power", power)?;
    if !(power > alpha && power < 1.0) {
        return Err(StatsError::OutOfRange {
            field: "power",
            value: power,
            expected: "alpha < power < 1",
        });
    }
    if !(delta.is_finite() && delta != 0.0) {
        return Err(StatsError::OutOfRange {
            field: "delta",
            value: delta,
            expected: "a finite, non-zero difference",
        });
    }
    let v = design.check()?;
    let effect = delta.abs() / v.sqrt();
    let z = normal_quantile(1.0 - alpha / 2.0);
    let guess = ((z + normal_quantile(power)) / effect).powi(2);
    // Bisection on the exact two-tailed power (monotone in n).
    let (mut lo, mut hi) = (0.0_f64, guess.max(1e-12) * 2.0 + 1.0);
    while power_raw(effect, hi, z) < power {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if power_raw(effect, mid, z) < power {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-13 * hi {
            break;
        }
    }
    let n_exact = 0.5 * (lo + hi);
    let between_var_zero = design.between_var == 0.0;
    let min_items = if between_var_zero { 2.0 } else { 1.0 };
    let n_items = (n_exact - 1e-9).ceil().max(min_items) as usize;
    let per_item = u64::from(design.samples_a)
        + if design.within_var_b > 0.0 {
            u64::from(design.samples_b)
        } else {
            0
        };
    Ok(SampleSize {
        n_items,
        n_exact,
        samples: n_items as u64 * per_item,
        item_variance: v,
        achieved_power: power_raw(effect, n_items as f64, z),
        between_var_zero,
    })
}

/// The smallest true difference detectable with probability `power` by a two-sided test at
/// level `alpha` with `n_items` items.
///
/// # Errors
///
/// As [`power`]; [`StatsError::OutOfRange`] when `power` is not in (alpha, 1).
pub fn minimum_detectable_effect(
    design: &ItemDesign,
    n_items: usize,
    alpha: f64,
    power: f64,
) -> Result<f64, StatsError> {
    check_alpha(alpha)?;
    if !(power > alpha && power < 1.0) {
        return Err(StatsError::OutOfRange {
            field: "power",
            value: power,
            expected: "alpha < power < 1",
        });
    }
    let v = design.check()?;
    if n_items == 0 {
        return Err(StatsError::OutOfRange {
            field: "n_items",
            value: 0.0,
            expected: ">= 1",
        });
    }
    let z = normal_quantile(1.0 - alpha / 2.0);
    let n = n_items as f64;
    let (mut lo, mut hi) = (0.0_f64, (z + normal_quantile(power)) * 4.0 / n.sqrt() + 1.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if power_raw(mid, n, z) < power {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-14 * hi {
            break;
        }
    }
    Ok(0.5 * (lo + hi) * v.sqrt())
}

/// Power of the two-sided *t*-test that [`paired_difference`](crate::paired_difference) and
/// [`mean_ci`](crate::mean_ci) actually run on `n_items` items (df = n − 1): with
/// `λ = δ√n/√V`, `P(T′ > t_crit) + P(T′ < −t_crit)` for T′ noncentral t(n − 1, λ) — the exact
/// power under normal item scores, as `statsmodels`' `TTestPower`. Below [`power`] for small n.
///
pub fn power_t(
    design: &ItemDesign,
    delta: f64,
    n_items: usize,
    alpha: f64,
) -> Result<f64, StatsError> {
    check_alpha(alpha)?;
    let v = design.check()?;
    if n_items < 2 {
        return Err(StatsError::OutOfRange {
            field: "n_items",
            value: n_items as f64,
            expected: ">= 2 for a t-test",
        });
    }
    let df = (n_items - 1) as f64;
    let tc = crate::dist::t_quantile(1.0 - alpha / 2.0, df)?;
    let lambda = delta.abs() / v.sqrt() * (n_items as f64).sqrt();
    let nct = |t: f64| crate::dist::noncentral_t_cdf(t, df, lambda);
    Ok((1.0 - nct(tc) + nct(-tc)).clamp(0.0, 1.0))
}

/// The smallest number of items whose [`power_t`] reaches `power` (the t-test counterpart of
/// [`sample_size`], which it never undercuts).
///
/// # Errors
///
/// As [`sample_size`].
pub fn sample_size_t(
    design: &ItemDesign,
    delta: f64,
    alpha: f64,
    power: f64,
) -> Result<SampleSize, StatsError> {
    let z_plan = sample_size(design, delta, alpha, power)?;
    let mut n = z_plan.n_items.max(2);
    let mut p = power_t(design, delta, n, alpha)?;
    while p < power {
        n += 1;
        p = power_t(design, delta, n, alpha)?;
    }
    Ok(SampleSize {
        n_items: n,
        samples: z_plan.samples / z_plan.n_items.max(1) as u64 * n as u64,
        achieved_power: p,
        ..z_plan
    })
}
