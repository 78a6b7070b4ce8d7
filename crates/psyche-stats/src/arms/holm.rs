//! Holm's correction over a declared family of contrasts.

use serde::{Deserialize, Serialize};

use super::{ArmComparison, IntervalVerdict};

/// A family of contrasts for Holm's correction, declared by name before looking at results
/// (e.g. the primary convention's contrast against each control), never the variants of one
/// hypothesis.
///
/// A contrast without a p-value (not estimable) stays in the family as p = 1: it still counts
/// in m, so dropping it cannot make the others look stronger.
///
/// ```
/// use psyche_stats::HolmFamily;
/// let family = HolmFamily::new()
///     .add("insecure vs secure", Some(0.01))
///     .add("insecure vs educational", Some(0.04))
///     .add("insecure vs base", None);
/// let adjusted = family.adjust();
/// assert!((adjusted[0].adjusted.unwrap_or(1.0) - 0.03).abs() < 1e-12);
/// assert!(adjusted[0].rejected(0.05) && !adjusted[1].rejected(0.05));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HolmFamily {
    contrasts: Vec<(String, Option<f64>)>,
}

/// One contrast of a [`HolmFamily`] after adjustment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HolmAdjusted {
    /// The contrast's name.
    pub name: String,
    /// Its raw p-value (`None`: not estimable).
    pub p_value: Option<f64>,
    /// Its Holm-adjusted p-value (`None` when the raw one is); compare with α.
    pub adjusted: Option<f64>,
    /// Size m of the family.
    pub family_size: usize,
}

impl HolmAdjusted {
    /// Whether the contrast is rejected at family-wise level `alpha`.
    pub fn rejected(&self, alpha: f64) -> bool {
        self.adjusted.is_some_and(|p| p <= alpha)
    }
}

impl HolmFamily {
    /// An empty family.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named contrast with its p-value (`None` when not estimable).
    pub fn add(mut self, name: impl Into<String>, p_value: Option<f64>) -> Self {
        self.push(name, p_value);
        self
    }

    /// Adds a named contrast in place.
    pub fn push(&mut self, name: impl Into<String>, p_value: Option<f64>) -> &mut Self {
        self.contrasts.push((name.into(), p_value));
        self
    }

    /// Adds a comparison's run-level p-value under `name`. A comparison without a run-level
    /// verdict (one seed per arm) enters as not estimable, even if it has an item-level p.
    pub fn add_comparison(self, name: impl Into<String>, comparison: &ArmComparison) -> Self {
        let p = match comparison.verdict {
            IntervalVerdict::NotEstimable { .. } => None,
            _ => comparison.p_value,
        };
        self.add(name, p)
    }

    /// Number of contrasts.
    pub fn len(&self) -> usize {
        self.contrasts.len()
    }

    /// Whether the family is empty.
    pub fn is_empty(&self) -> bool {
        self.contrasts.is_empty()
    }

    /// Holm's adjusted p-values, in the order added. A p-value outside [0, 1] or NaN is
    /// treated as not estimable (p = 1 in the family, `adjusted: None`).
    pub fn adjust(&self) -> Vec<HolmAdjusted> {
        let clean: Vec<Option<f64>> = self
            .contrasts
            .iter()
            .map(|(_, p)| p.filter(|v| v.is_finite() && (0.0..=1.0).contains(v)))
            .collect();
        let raw: Vec<f64> = clean.iter().map(|p| p.unwrap_or(1.0)).collect();
        let adjusted = crate::compare::holm(&raw).unwrap_or_else(|_| vec![1.0; raw.len()]);
        self.contrasts
            .iter()
            .zip(clean)
            .zip(adjusted)
            .map(|(((name, _), p), adj)| HolmAdjusted {
                name: name.clone(),
                p_value: p,
                adjusted: p.map(|_| adj),
                family_size: raw.len(),
            })
            .collect()
    }
}
