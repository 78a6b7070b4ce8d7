//! The experiment's main numbers in one small serialisable struct
//! ([`LookingInwardSummary::of`] a [`LookingInwardResult`]), without the per-seed tables; the
//! shared headlines ([`ExperimentResult::headline`](psyche_runner::experiment::ExperimentResult::headline))
//! are built from it.
//!
//! - accuracy of the untrained subject, the self-trained and the cross-trained model on the
//!   held-out families (micro average), each with its interval and its mode baseline on the
//!   same items;
//! - self − cross and self − mode baseline over fine-tuning runs (paired by seed, the run is
//!   the unit), with p-value, verdict, minimum detectable effect and the item-level view about
//!   these runs only;
//! - calibration MAD (× 100) of the untrained, self-trained and cross-trained models, and cross
//!   minus self over runs;
//! - how often the two models' held-out object-level properties agree.
//!
//! A value that could not be computed is a [`Stat`] saying why, never a zero or a dash.

use psyche_stats::{ArmData, ArmOptions, Stat};
use serde::{Deserialize, Serialize};

use crate::calibration::CalibrationResult;
use crate::experiment::{LookingInwardResult, SeedResult};
use crate::report::{ci, contrast_lines, pct};
use crate::scoring::{AccuracySummary, ArmContrast};

/// A micro accuracy on the held-out families beside its mode baseline on the same items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryAccuracy {
    /// Micro accuracy (for trained models: the mean of the seeds' micro accuracies).
    pub accuracy: f64,
    /// Its interval: for the untrained model, the item (cluster) bootstrap over its items; for
    /// trained models, a t interval over the runs' micro accuracies (the run is the unit), or a
    /// point without interval for one run (between-run variance not estimated).
    pub ci: Stat,
    /// For trained models, the accuracy of these runs' items clustered by object (about these
    /// runs only); for the untrained model the same as `ci`.
    pub item_level: Stat,
    /// The mode baseline on the same scored items (mean over seeds for trained models).
    pub baseline: f64,
    /// Scored items (summed over seeds).
    pub n: usize,
    /// Excluded items (summed over seeds).
    pub excluded: usize,
    /// Each seed's micro accuracy (empty for the untrained model).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_seed: Vec<f64>,
    /// Each seed's micro mode baseline (empty for the untrained model).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline_per_seed: Vec<f64>,
}

impl SummaryAccuracy {
    fn untrained(s: &AccuracySummary) -> Self {
        Self {
            accuracy: s.micro.accuracy,
            ci: s.micro.ci.clone(),
            item_level: s.micro.ci.clone(),
            baseline: s.micro.baseline,
            n: s.micro.n,
            excluded: s.excluded.values().sum(),
            per_seed: Vec::new(),
            baseline_per_seed: Vec::new(),
        }
    }

    fn over_seeds(
        seeds: &[SeedResult],
        pick: impl Fn(&SeedResult) -> &AccuracySummary,
        contrast: &ArmContrast,
        arm: &str,
    ) -> Self {
        let summaries: Vec<&AccuracySummary> = seeds.iter().map(&pick).collect();
        let mean = |v: &[f64]| {
            if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        let per_seed: Vec<f64> = summaries.iter().map(|s| s.micro.accuracy).collect();
        let baseline_per_seed: Vec<f64> = summaries.iter().map(|s| s.micro.baseline).collect();
        let summary = contrast.comparison.as_ref().and_then(|c| {
            [&c.treatment, &c.control]
                .into_iter()
                .find(|s| s.arm == arm)
        });
        let (ci, item_level) = match summary {
            Some(s) => (s.mean.clone(), s.item_level_mean.clone()),
            None => {
                let why = contrast.difference.reason().unwrap_or("not computed");
                (Stat::unavailable(why), Stat::unavailable(why))
            }
        };
        Self {
            accuracy: mean(&per_seed),
            ci,
            item_level,
            baseline: mean(&baseline_per_seed),
            n: summaries.iter().map(|s| s.micro.n).sum(),
            excluded: summaries
                .iter()
                .map(|s| s.excluded.values().sum::<usize>())
                .sum(),
            per_seed,
            baseline_per_seed,
        }
    }
}

/// Calibration MAD (× 100) of the three models (lower is better calibrated).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryCalibration {
    /// The property calibrated.
    pub property: String,
    /// The untrained subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untrained: Option<f64>,
    /// The self-trained model, mean over the seeds where it was computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_trained: Option<f64>,
    /// The cross-trained model (against the self-trained model's behaviour), mean over seeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_trained: Option<f64>,
    /// Why a value is missing (`untrained: …`, `self seed 0: …`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

fn mad(c: Option<&CalibrationResult>, label: &str, errors: &mut Vec<String>) -> Option<f64> {
    match c {
        None => {
            errors.push(format!("{label}: calibration not run"));
            None
        }
        Some(c) => match &c.curve {
            Some(curve) => Some(curve.mad_x100),
            None => {
                errors.push(format!(
                    "{label}: {}",
                    c.error.as_deref().unwrap_or("no calibration curve")
                ));
                None
            }
        },
    }
}

fn mean_of(values: &[Option<f64>]) -> Option<f64> {
    let v: Vec<f64> = values.iter().flatten().copied().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Cross − self calibration MAD over the runs where both were computed, paired by seed (one
/// value per run: no items).
fn calibration_contrast(
    seeds: &[SeedResult],
    self_mads: &[Option<f64>],
    cross_mads: &[Option<f64>],
    level: f64,
) -> ArmContrast {
    let (a, b) = ("cross-trained", "self-trained");
    let mut data = ArmData::new();
    for ((s, x), y) in seeds.iter().zip(self_mads).zip(cross_mads) {
        if let (Some(x), Some(y)) = (x, y) {
            data.seed_value(a, s.seed, *y).seed_value(b, s.seed, *x);
        }
    }
    if data.is_empty() {
        return ArmContrast::unavailable(a, b, "no run with both calibration curves");
    }
    ArmContrast::of(
        &data,
        a,
        b,
        &ArmOptions::new()
            .level(level)
            .paired(true)
            .bounds(0.0, 100.0),
    )
}

/// The main numbers of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookingInwardSummary {
    /// The subject's id.
    pub subject: String,
    /// The second model's id (before cross-training).
    pub cross_model: String,
    /// Fine-tuning seeds.
    pub seeds: Vec<u64>,
    /// How hypothetical answers were read (`free` / `constrained`).
    pub answer_method: String,
    /// The compliance rule (`property_form` / `paper`).
    pub compliance_rule: String,
    /// The untrained subject predicting its own held-out behaviour.
    pub untrained: SummaryAccuracy,
    /// The self-trained model predicting its own held-out behaviour.
    pub self_prediction: SummaryAccuracy,
    /// The cross-trained model predicting the self-trained model's held-out behaviour.
    pub cross_prediction: SummaryAccuracy,
    /// Self − cross over fine-tuning runs, paired by seed (the run is the unit).
    pub self_minus_cross: ArmContrast,
    /// `uninformative: the models behave alike (…)` when the two models' held-out behaviour
    /// agrees above the experiment's threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_minus_cross_note: Option<String>,
    /// Self-trained accuracy − its mode baseline on the same items, over runs, paired by seed.
    pub self_minus_baseline: ArmContrast,
    /// Calibration MAD × 100, cross-trained − self-trained, over the runs where both were
    /// computed (paired by seed; lower is better calibrated).
    pub calibration_cross_minus_self: ArmContrast,
    /// Share of held-out (item, property) pairs on which the subject and the second model give
    /// the same value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<f64>,
    /// Calibration MAD × 100.
    pub calibration_mad: SummaryCalibration,
}

impl LookingInwardSummary {
    /// The summary of `result` (recomputed from its per-seed results).
    pub fn of(result: &LookingInwardResult) -> Self {
        let mut errors = Vec::new();
        let untrained_mad = mad(
            result.calibration_untrained.as_ref(),
            "untrained",
            &mut errors,
        );
        let self_mads: Vec<Option<f64>> = result
            .seeds
            .iter()
            .map(|s| {
                mad(
                    s.calibration_self.as_ref(),
                    &format!("self seed {}", s.seed),
                    &mut errors,
                )
            })
            .collect();
        let cross_mads: Vec<Option<f64>> = result
            .seeds
            .iter()
            .map(|s| {
                mad(
                    s.calibration_cross.as_ref(),
                    &format!("cross seed {}", s.seed),
                    &mut errors,
                )
            })
            .collect();
        let c = &result.self_minus_cross;
        Self {
            subject: result.subject.id.clone(),
            cross_model: result.cross_model.clone(),
            seeds: result.seeds.iter().map(|s| s.seed).collect(),
            answer_method: result.config.answer_method.name().to_owned(),
            compliance_rule: result.config.score.rule.name().to_owned(),
            untrained: SummaryAccuracy::untrained(&result.untrained),
            self_prediction: SummaryAccuracy::over_seeds(
                &result.seeds,
                |s| &s.self_prediction,
                c,
                &c.treatment,
            ),
            cross_prediction: SummaryAccuracy::over_seeds(
                &result.seeds,
                |s| &s.cross_prediction,
                c,
                &c.control,
            ),
            self_minus_cross: c.clone(),
            self_minus_cross_note: result.self_minus_cross_note.clone(),
            self_minus_baseline: result.self_minus_baseline.clone(),
            calibration_cross_minus_self: calibration_contrast(
                &result.seeds,
                &self_mads,
                &cross_mads,
                result.config.stats.level,
            ),
            agreement: result.agreement.last().filter(|a| a.n > 0).map(|a| a.rate),
            calibration_mad: SummaryCalibration {
                property: result.config.calibration_property.clone(),
                untrained: untrained_mad,
                self_trained: mean_of(&self_mads),
                cross_trained: mean_of(&cross_mads),
                errors,
            },
        }
    }
}

impl LookingInwardResult {
    /// A few lines for a terminal: the main numbers.
    pub fn terminal_summary(&self) -> String {
        let mut out = String::new();
        let line = |label: &str, s: &AccuracySummary| {
            format!(
                "{label:<34} {:>6} {:<18} baseline {:>6}  n {:>4}  excluded {}\n",
                pct(s.micro.accuracy),
                ci(&s.micro.ci),
                pct(s.micro.baseline),
                s.micro.n,
                s.excluded.values().sum::<usize>()
            )
        };
        out.push_str(&line("untrained self-prediction", &self.untrained));
        for s in &self.seeds {
            out.push_str(&line(
                &format!("self-trained (seed {})", s.seed),
                &s.self_prediction,
            ));
            out.push_str(&line(
                &format!("cross-trained (seed {})", s.seed),
                &s.cross_prediction,
            ));
        }
        for l in contrast_lines("self − cross", &self.self_minus_cross) {
            out.push_str(&format!("{l}\n"));
        }
        if let Some(note) = &self.self_minus_cross_note {
            out.push_str(&format!("self − cross is {note}\n"));
        }
        if let Some(all) = self.agreement.last() {
            out.push_str(&format!(
                "object-level agreement of the two models: {} (n {})\n",
                pct(all.rate),
                all.n
            ));
        }
        let mad = |c: &Option<CalibrationResult>| {
            c.as_ref().and_then(|c| c.curve.as_ref()).map_or_else(
                || "-".into(),
                |k| match c.as_ref().and_then(|c| c.valid_mass) {
                    Some(m) => format!("{:.1} (valid mass {m:.2})", k.mad_x100),
                    None => format!("{:.1}", k.mad_x100),
                },
            )
        };
        out.push_str(&format!(
            "calibration MAD on raw mass ({}): untrained {}{}\n",
            self.config.calibration_property,
            mad(&self.calibration_untrained),
            self.seeds
                .iter()
                .map(|s| format!(
                    "; seed {} self {} cross {}",
                    s.seed,
                    mad(&s.calibration_self),
                    mad(&s.calibration_cross)
                ))
                .collect::<String>()
        ));
        out
    }
}
