//! Variance components from a pilot run laid out as an items × samples matrix (ndarray), to
//! plan the full run with [`sample_size`](crate::sample_size).
//!
//! With K samples per item, the within-item variance is estimated by the mean of the per-item
//! sample variances (ddof 1), and the between-item variance of the conditional means by the
//! method of moments: `ω̂² = max(0, Var(item means) − σ̂²/K)`.

use ndarray::{ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{StatsError, check_finite, check_min_len, check_same_len};
use crate::power::ItemDesign;

/// Variance components estimated from an items × samples matrix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VarianceComponents {
    /// Items (rows).
    pub items: usize,
    /// Samples per item (columns), K.
    pub samples: usize,
    /// Grand mean.
    pub mean: f64,
    /// σ̂²: mean within-item variance (ddof 1 per item).
    pub within_var: f64,
    /// ω̂²: between-item variance of the conditional means (moment estimate, ≥ 0).
    pub between_var: f64,
    /// Intra-class correlation ω̂²/(ω̂² + σ̂²) (0 when both are 0).
    pub icc: f64,
}

fn row_stats(m: &ArrayView2<'_, f64>) -> (Vec<f64>, f64) {
    let k = m.ncols() as f64;
    let means: Vec<f64> = m.axis_iter(Axis(0)).map(|r| r.sum() / k).collect();
    let within = m
        .axis_iter(Axis(0))
        .zip(&means)
        .map(|(r, mu)| r.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / (k - 1.0))
        .sum::<f64>()
        / m.nrows() as f64;
    (means, within)
}

fn sample_var(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0)
}

fn check_matrix(field: &'static str, m: &ArrayView2<'_, f64>) -> Result<(), StatsError> {
    check_min_len(field, m.nrows(), 2)?;
    check_min_len("samples per item", m.ncols(), 2)?;
    let flat: Vec<f64> = m.iter().copied().collect();
    check_finite(field, &flat)
}

/// Variance components of one model's pilot scores (`scores[[item, sample]]`).
///
/// # Errors
///
/// [`StatsError::TooFew`] with fewer than 2 items or 2 samples per item;
/// [`StatsError::NonFinite`].
pub fn variance_components(scores: ArrayView2<'_, f64>) -> Result<VarianceComponents, StatsError> {
    check_matrix("scores", &scores)?;
    let (means, within) = row_stats(&scores);
    let k = scores.ncols() as f64;
    let between = (sample_var(&means) - within / k).max(0.0);
    let total = between + within;
    Ok(VarianceComponents {
        items: scores.nrows(),
        samples: scores.ncols(),
        mean: means.iter().sum::<f64>() / means.len() as f64,
        within_var: within,
        between_var: between,
        icc: if total > 0.0 { between / total } else { 0.0 },
    })
}

/// A paired [`ItemDesign`] estimated from two models' pilot scores on the same items (same
/// row order), for `planned_samples` samples per item per model in the full run.
///
/// # Errors
///
/// As [`variance_components`]; [`StatsError::LengthMismatch`] when the matrices have different
/// numbers of items; [`StatsError::OutOfRange`] for `planned_samples = 0`.
pub fn paired_design_from_pilot(
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    planned_samples: u32,
) -> Result<ItemDesign, StatsError> {
    check_matrix("a", &a)?;
    check_matrix("b", &b)?;
    check_same_len("b", a.nrows(), b.nrows())?;
    if planned_samples == 0 {
        return Err(StatsError::OutOfRange {
            field: "planned_samples",
            value: 0.0,
            expected: ">= 1",
        });
    }
    let (ma, wa) = row_stats(&a);
    let (mb, wb) = row_stats(&b);
    let d: Vec<f64> = ma.iter().zip(&mb).map(|(x, y)| x - y).collect();
    let omega2 = (sample_var(&d) - wa / a.ncols() as f64 - wb / b.ncols() as f64).max(0.0);
    Ok(ItemDesign::paired(
        omega2,
        wa,
        planned_samples,
        wb,
        planned_samples,
    ))
}
