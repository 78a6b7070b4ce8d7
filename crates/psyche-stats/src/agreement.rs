//! Agreement between judges: Cohen's κ (two judges, nominal labels) and Krippendorff's α (any
//! number of judges, missing ratings allowed, nominal or interval).
//!
//! - Cohen: `κ = (p_o − p_e)/(1 − p_e)`, p_o the observed agreement, p_e the agreement expected
//!   from the judges' marginal label frequencies.
//! - Krippendorff: `α = 1 − D_o/D_e` from the coincidence matrix. With m_u ratings in unit u
//!   (units with m_u < 2 are not pairable and are ignored) and n pairable ratings in all,
//!   `D_o = (1/n) Σ_u (1/(m_u−1)) Σ_{i≠j∈u} δ²(x_i, x_j)` and
//!   `D_e = (1/(n(n−1))) Σ_{i≠j} δ²(x_i, x_j)` over all pairable ratings; δ² is `[x ≠ y]`
//!   (nominal) or `(x − y)²` (interval).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use crate::error::{StatsError, check_finite, check_min_len, check_same_len};

/// Cohen's κ for two judges' labels of the same items.
///
/// # Errors
///
/// [`StatsError::LengthMismatch`]; [`StatsError::TooFew`] when empty;
/// [`StatsError::Invalid`] when chance agreement is 1 (both judges always give the same single
/// label), where κ is undefined.
///
/// ```
/// let a = ["yes", "yes", "no", "no"];
/// let b = ["yes", "no", "no", "no"];
/// let k = psyche_stats::cohen_kappa(&a, &b)?;
/// assert!((k - 0.5).abs() < 1e-12);
/// # Ok::<(), psyche_stats::StatsError>(())
/// ```
pub fn cohen_kappa<S: AsRef<str>>(a: &[S], b: &[S]) -> Result<f64, StatsError> {
    check_same_len("b", a.len(), b.len())?;
    check_min_len("a", a.len(), 1)?;
    let n = a.len() as f64;
    let mut ca: HashMap<&str, f64> = HashMap::new();
    let mut cb: HashMap<&str, f64> = HashMap::new();
    let mut agree = 0.0;
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x.as_ref(), y.as_ref());
        *ca.entry(x).or_insert(0.0) += 1.0;
        *cb.entry(y).or_insert(0.0) += 1.0;
        if x == y {
            agree += 1.0;
        }
    }
    let po = agree / n;
    let pe: f64 = ca
        .iter()
        .map(|(k, v)| v * cb.get(k).copied().unwrap_or(0.0))
        .sum::<f64>()
        / (n * n);
    if (1.0 - pe).abs() < 1e-15 {
        return Err(StatsError::Invalid {
            field: "labels",
            reason: "chance agreement is 1 (a single label throughout); kappa is undefined".into(),
        });
    }
    Ok((po - pe) / (1.0 - pe))
}

/// Krippendorff's α for nominal labels. `units[u]` holds the labels unit u received (from any
/// judges; leave missing ratings out). Units with fewer than 2 labels are ignored.
///
/// # Errors
///
/// [`StatsError::TooFew`] (field `"pairable ratings"`) with fewer than 2 pairable ratings;
/// [`StatsError::Invalid`] when all pairable labels are identical (expected disagreement 0,
/// α undefined).
pub fn krippendorff_alpha_nominal<T: Hash + Eq + Ord>(units: &[Vec<T>]) -> Result<f64, StatsError> {
    let mut totals: BTreeMap<&T, f64> = BTreeMap::new();
    let mut n = 0.0;
    let mut d_o = 0.0;
    for unit in units.iter().filter(|u| u.len() >= 2) {
        let m = unit.len() as f64;
        let mut counts: BTreeMap<&T, f64> = BTreeMap::new();
        for x in unit {
            *counts.entry(x).or_insert(0.0) += 1.0;
            *totals.entry(x).or_insert(0.0) += 1.0;
        }
        let same: f64 = counts.values().map(|c| c * c).sum();
        d_o += (m * m - same) / (m - 1.0);
        n += m;
    }
    finish_alpha(n, d_o, {
        let same: f64 = totals.values().map(|c| c * c).sum();
        n * n - same
    })
}

/// Krippendorff's α for interval data (e.g. 0–100 judge scores), with δ² = (x − y)².
/// `units[u]` holds the scores unit u received; missing ratings are left out.
///
/// # Errors
///
/// As [`krippendorff_alpha_nominal`]; [`StatsError::NonFinite`] for NaN/∞ scores.
pub fn krippendorff_alpha_interval(units: &[Vec<f64>]) -> Result<f64, StatsError> {
    let mut n = 0.0;
    let mut d_o = 0.0;
    let mut s1 = 0.0;
    for unit in units.iter().filter(|u| u.len() >= 2) {
        check_finite("units", unit)?;
        let m = unit.len() as f64;
        let mean = unit.iter().sum::<f64>() / m;
        let ss: f64 = unit.iter().map(|x| (x - mean) * (x - mean)).sum();
        // Σ_{i≠j} (x_i − x_j)² = 2m·Σ(x − x̄)²
        d_o += 2.0 * m * ss / (m - 1.0);
        n += m;
        s1 += unit.iter().sum::<f64>();
    }
    // Σ_{i≠j} over all pairable values = 2n·Σ(x − x̄)².
    let pairs_total = if n > 0.0 {
        let mean = s1 / n;
        let mut ss = 0.0;
        for unit in units.iter().filter(|u| u.len() >= 2) {
            ss += unit.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>();
        }
        2.0 * n * ss
    } else {
        0.0
    };
    finish_alpha(n, d_o, pairs_total)
}

fn finish_alpha(n: f64, d_o_sum: f64, d_e_sum: f64) -> Result<f64, StatsError> {
    if n < 2.0 {
        return Err(StatsError::TooFew {
            field: "pairable ratings",
            needed: 2,
            got: n as usize,
        });
    }
    let d_o = d_o_sum / n;
    let d_e = d_e_sum / (n * (n - 1.0));
    if d_e <= 0.0 {
        return Err(StatsError::Invalid {
            field: "units",
            reason: "all pairable ratings are identical; expected disagreement is 0 and alpha is \
                     undefined"
                .into(),
        });
    }
    Ok(1.0 - d_o / d_e)
}

/// Cohen's κ from two aligned columns of optional labels, skipping items either judge left
/// unlabelled. Returns the κ and the number of items used.
///
/// # Errors
///
/// As [`cohen_kappa`].
pub fn cohen_kappa_pairwise<S: AsRef<str>>(
    a: &[Option<S>],
    b: &[Option<S>],
) -> Result<(f64, usize), StatsError> {
    check_same_len("b", a.len(), b.len())?;
    let (xa, xb): (Vec<&str>, Vec<&str>) = a
        .iter()
        .zip(b)
        .filter_map(|(x, y)| Some((x.as_ref()?.as_ref(), y.as_ref()?.as_ref())))
        .unzip();
    let k = cohen_kappa(&xa, &xb)?;
    Ok((k, xa.len()))
}
