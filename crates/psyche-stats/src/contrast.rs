//! [`ArmContrast`]: an [`ArmComparison`] as the task crates report it, or why there is none.

use serde::{Deserialize, Serialize};

use crate::arms::{ArmComparison, ArmData, ArmOptions, IntervalVerdict};
use crate::stat::Stat;

/// One arm against another, from [`ArmComparison`]: the run-level difference (or why there is
/// none) and the whole comparison (each arm's mean over its runs, p-value, method, verdict,
/// minimum detectable effect, and the item-level view about these runs only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmContrast {
    /// The treatment arm.
    pub treatment: String,
    /// The control arm.
    pub control: String,
    /// Treatment − control over fine-tuning runs (the comparison's `difference`), or why it
    /// could not be computed.
    pub difference: Stat,
    /// The comparison; `None` when it could not run (`difference` says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<ArmComparison>,
}

impl ArmContrast {
    /// Compares `treatment` with `control` in `data`.
    pub fn of(data: &ArmData, treatment: &str, control: &str, options: &ArmOptions) -> Self {
        match ArmComparison::compare(data, treatment, control, options) {
            Ok(c) => Self {
                treatment: treatment.to_owned(),
                control: control.to_owned(),
                difference: c.difference.clone(),
                comparison: Some(c),
            },
            Err(e) => Self::unavailable(treatment, control, e.to_string()),
        }
    }

    /// A contrast that could not be computed.
    pub fn unavailable(treatment: &str, control: &str, reason: impl Into<String>) -> Self {
        Self {
            treatment: treatment.to_owned(),
            control: control.to_owned(),
            difference: Stat::unavailable(reason),
            comparison: None,
        }
    }

    /// The run-level verdict (not estimable when the comparison could not run).
    pub fn verdict(&self) -> IntervalVerdict {
        match &self.comparison {
            Some(c) => c.verdict.clone(),
            None => IntervalVerdict::NotEstimable {
                reason: self
                    .difference
                    .reason()
                    .unwrap_or("not computed")
                    .to_owned(),
            },
        }
    }

    /// The run-level p-value, when there is a run-level verdict.
    pub fn p_value(&self) -> Option<f64> {
        match self.verdict() {
            IntervalVerdict::NotEstimable { .. } => None,
            _ => self.comparison.as_ref().and_then(|c| c.p_value),
        }
    }

    /// The item-level difference (these runs only), or why there is none.
    pub fn item_level(&self) -> Stat {
        self.comparison
            .as_ref()
            .and_then(|c| c.item_level.as_ref())
            .map_or_else(
                || Stat::unavailable("no item-level observations"),
                |v| v.difference.clone(),
            )
    }

    /// The unit of the verdict in words, with `clusters` naming what the items cluster in:
    /// `units("objects")` gives `3 vs 3 runs (paired), 24 objects`.
    pub fn units(&self, clusters: &str) -> String {
        match &self.comparison {
            Some(c) => format!(
                "{} vs {} runs{}, {} {clusters}",
                c.treatment.n_seeds,
                c.control.n_seeds,
                if c.paired { " (paired)" } else { "" },
                c.treatment.n_clusters.max(c.control.n_clusters)
            ),
            None => "no runs".to_owned(),
        }
    }
}
