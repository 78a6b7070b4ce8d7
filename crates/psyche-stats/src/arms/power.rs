//! Power and minimum detectable effects of the t test over seeds ([`SeedDesign`]).

use serde::{Deserialize, Serialize};

use crate::dist::{noncentral_t_cdf, t_quantile};
use crate::error::StatsError;

/// Power of the two-sided t test at level `alpha` with standard error `se` and `df` degrees
/// of freedom to detect a true difference `delta`: with λ = δ/SE,
/// `P(T′ > t_crit) + P(T′ < −t_crit)` for T′ noncentral t(df, λ).
///
/// # Errors
///
/// [`StatsError::OutOfRange`] for a non-positive or non-finite `se` or `df`, or `alpha`
/// outside (0, 1).
pub fn t_test_power(delta: f64, se: f64, df: f64, alpha: f64) -> Result<f64, StatsError> {
    check_t_design(se, df, alpha)?;
    let lambda = delta.abs() / se;
    if df > 1e6 {
        // The t is the normal here (to ~1e-6); the noncentral series is slow at such df.
        let z = crate::dist::normal_quantile(1.0 - alpha / 2.0);
        return Ok(
            (crate::dist::normal_cdf(lambda - z) + crate::dist::normal_cdf(-lambda - z))
                .clamp(0.0, 1.0),
        );
    }
    let tc = t_quantile(1.0 - alpha / 2.0, df)?;
    Ok(
        (1.0 - noncentral_t_cdf(tc, df, lambda) + noncentral_t_cdf(-tc, df, lambda))
            .clamp(0.0, 1.0),
    )
}

/// The smallest true difference the two-sided t test (standard error `se`, `df` degrees of
/// freedom, level `alpha`) detects with probability `power` (inverts [`t_test_power`]).
///
/// # Errors
///
/// As [`t_test_power`]; [`StatsError::OutOfRange`] when `power` is not in (alpha, 1).
pub fn t_test_mde(se: f64, df: f64, alpha: f64, power: f64) -> Result<f64, StatsError> {
    check_t_design(se, df, alpha)?;
    if !(power > alpha && power < 1.0) {
        return Err(StatsError::OutOfRange {
            field: "power",
            value: power,
            expected: "alpha < power < 1",
        });
    }
    let (mut lo, mut hi) = (0.0_f64, se);
    while t_test_power(hi, se, df, alpha)? < power {
        hi *= 2.0;
        if hi > se * 1e9 {
            break;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_test_power(mid, se, df, alpha)? < power {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-12 * hi {
            break;
        }
    }
    Ok(0.5 * (lo + hi))
}

fn check_t_design(se: f64, df: f64, alpha: f64) -> Result<(), StatsError> {
    if !(se.is_finite() && se > 0.0) {
        return Err(StatsError::OutOfRange {
            field: "se",
            value: se,
            expected: "a finite standard error > 0",
        });
    }
    if !(df.is_finite() && df > 0.0) {
        return Err(StatsError::OutOfRange {
            field: "df",
            value: df,
            expected: "df > 0",
        });
    }
    if !(alpha.is_finite() && alpha > 0.0 && alpha < 1.0) {
        return Err(StatsError::OutOfRange {
            field: "alpha",
            value: alpha,
            expected: "0 < alpha < 1",
        });
    }
    Ok(())
}

/// A planned seed-level design: how many runs per arm, how much runs vary, paired or not.
///
/// `seed_sd` is the standard deviation of one run's value (its per-seed mean, item noise
/// included) around its arm's mean; for a paired design, of one run's *difference*. The test
/// is the one [`ArmComparison`](super::ArmComparison) runs: pooled t (df k_T + k_C − 2) unpaired, paired t
/// (df k − 1) paired.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeedDesign {
    /// Runs in the treatment arm.
    pub seeds_treatment: usize,
    /// Runs in the control arm (ignored when paired).
    pub seeds_control: usize,
    /// SD of a run's value (paired: of a run's difference).
    pub seed_sd: f64,
    /// Seeds paired across arms.
    pub paired: bool,
}

impl SeedDesign {
    /// k seeds per arm, unpaired.
    pub fn unpaired(seeds_per_arm: usize, seed_sd: f64) -> Self {
        Self {
            seeds_treatment: seeds_per_arm,
            seeds_control: seeds_per_arm,
            seed_sd,
            paired: false,
        }
    }

    /// k paired seeds, `diff_sd` the SD of one run's difference.
    pub fn paired(seeds: usize, diff_sd: f64) -> Self {
        Self {
            seeds_treatment: seeds,
            seeds_control: seeds,
            seed_sd: diff_sd,
            paired: true,
        }
    }

    /// The standard error and df of the difference.
    ///
    /// # Errors
    ///
    /// [`StatsError::TooFew`] (field `"seeds"`) when the design has no df (fewer than 2 seeds
    /// paired, fewer than 3 in all unpaired).
    pub fn se_df(&self) -> Result<(f64, f64), StatsError> {
        let (kt, kc) = (self.seeds_treatment as f64, self.seeds_control as f64);
        if self.paired {
            crate::error::check_min_len("seeds", self.seeds_treatment, 2)?;
            Ok((self.seed_sd / kt.sqrt(), kt - 1.0))
        } else {
            crate::error::check_min_len("seeds", self.seeds_treatment.min(self.seeds_control), 1)?;
            crate::error::check_min_len("seeds", self.seeds_treatment + self.seeds_control, 3)?;
            Ok((self.seed_sd * (1.0 / kt + 1.0 / kc).sqrt(), kt + kc - 2.0))
        }
    }

    /// Power to detect `delta` at level `alpha`.
    ///
    /// # Errors
    ///
    /// As [`SeedDesign::se_df`] and [`t_test_power`].
    pub fn power(&self, delta: f64, alpha: f64) -> Result<f64, StatsError> {
        let (se, df) = self.se_df()?;
        t_test_power(delta, se, df, alpha)
    }

    /// The minimum detectable effect at `power`.
    ///
    /// # Errors
    ///
    /// As [`SeedDesign::se_df`] and [`t_test_mde`].
    pub fn mde(&self, alpha: f64, power: f64) -> Result<f64, StatsError> {
        let (se, df) = self.se_df()?;
        t_test_mde(se, df, alpha, power)
    }
}
