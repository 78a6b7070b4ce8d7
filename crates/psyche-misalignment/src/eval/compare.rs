//! Treated against control arms over fine-tuning runs: the common question set, each run's
//! mean rate as one value, psyche-stats' [`ArmComparison`](psyche_stats::ArmComparison), and
//! Holm's correction over the declared family only (see [`super::rates`]).

use std::collections::BTreeMap;

use psyche_stats::{ArmData, ArmOptions, HolmFamily};
use serde::{Deserialize, Serialize};

use super::rates::{Aggregation, ArmRates, ModelRates, NamedConvention, RateCell, RateSettings};

pub use psyche_stats::ArmContrast;

/// One row of the treated-vs-control table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    /// The treated arm.
    pub treated: String,
    /// The control arm.
    pub control: String,
    /// The convention.
    pub convention: String,
    /// Questions in the common set the arms are compared on.
    pub questions: usize,
    /// The common question set: questions with a rate in every run (that has any rate) of both
    /// arms, so both arms are averaged over the same questions.
    #[serde(default)]
    pub common_questions: Vec<String>,
    /// Questions left out because some run of either arm has no rate for them.
    #[serde(default)]
    pub left_out_questions: Vec<String>,
    /// Runs of either arm without any rate (`<arm> s<seed>`): they contribute no value to the
    /// contrast and are listed here.
    #[serde(default)]
    pub collapsed_runs: Vec<String>,
    /// The treated arm's mean over its runs.
    pub treated_mean: Option<f64>,
    /// The same for the control.
    pub control_mean: Option<f64>,
    /// Treated − control over fine-tuning runs (each run's mean over questions is one value),
    /// with the item-level view by question about these runs only.
    pub contrast: ArmContrast,
    /// Whether the row is in the declared Holm family (the primary convention against a
    /// fine-tuned control).
    pub in_family: bool,
    /// Holm-adjusted run-level p-value within the family (`None` outside it, or when the row
    /// has no run-level verdict).
    pub p_holm: Option<f64>,
}

/// The questions of `m` with a rate under `conv` (leaving out those its aggregation
/// excludes), with their cells.
fn rate_of<'a>(m: &'a ModelRates, conv: &NamedConvention) -> BTreeMap<&'a str, &'a RateCell> {
    m.questions
        .iter()
        .filter(|q| !conv.aggregation.excludes(&q.question_id))
        .filter_map(|q| {
            q.by_convention
                .get(&conv.name)
                .filter(|c| c.rate.value().is_some())
                .map(|c| (q.question_id.as_str(), c))
        })
        .collect()
}

/// The common question set of two arms under `convention`: `(common, left out, collapsed
/// runs)`. Runs with no rate at all are collapsed (listed, not used to cut the set); the common
/// set holds the questions rated in every other run of both arms.
fn common_questions(
    arms: [&ArmRates; 2],
    convention: &NamedConvention,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut all: Vec<String> = Vec::new();
    let mut live: Vec<BTreeMap<&str, &RateCell>> = Vec::new();
    let mut collapsed = Vec::new();
    for a in arms {
        for (seed, m) in a.seeds.iter().zip(&a.models) {
            for q in &m.questions {
                if !all.contains(&q.question_id) && !convention.aggregation.excludes(&q.question_id)
                {
                    all.push(q.question_id.clone());
                }
            }
            let rated = rate_of(m, convention);
            if rated.is_empty() {
                collapsed.push(format!(
                    "{} {}",
                    a.arm,
                    seed.map_or_else(|| "untuned".to_owned(), |s| format!("s{s}"))
                ));
            } else {
                live.push(rated);
            }
        }
    }
    let (common, left): (Vec<String>, Vec<String>) = all
        .into_iter()
        .partition(|q| !live.is_empty() && live.iter().all(|r| r.contains_key(q.as_str())));
    (common, left, collapsed)
}

/// Each run's results on the `common` questions under `convention` as observations of arm
/// `arm`: per question, its rate (item and cluster: the question), so a run's mean is its mean
/// over the common questions; for a pooled convention, every counted answer as 0/1 (items in
/// the question's cluster), so a run's mean is its pooled rate.
fn push_arm(data: &mut ArmData, arm: &ArmRates, convention: &NamedConvention, common: &[String]) {
    for (seed, m) in arm.seeds.iter().zip(&arm.models) {
        let run = seed.map_or_else(|| "untuned".to_owned(), |s| s.to_string());
        let rated = rate_of(m, convention);
        for q in common {
            let Some(cell) = rated.get(q.as_str()) else {
                continue;
            };
            match convention.aggregation {
                Aggregation::PerQuestion => {
                    if let Some(v) = cell.rate.value() {
                        data.item(arm.arm.as_str(), &run, q.as_str(), v);
                    }
                }
                Aggregation::PooledRows { .. } => {
                    for k in 0..cell.denominator {
                        let v = if k < cell.misaligned { 1.0 } else { 0.0 };
                        data.item_in(arm.arm.as_str(), &run, format!("{q}/{k}"), q.as_str(), v);
                    }
                }
            }
        }
    }
}

/// The treated arm against each control over fine-tuning runs, per convention. Holm's
/// correction runs over the declared family only: the primary convention
/// ([`RateSettings::primary_name`]) against each control named in `family`.
pub fn compare_arms(
    treated: &ArmRates,
    controls: &[&ArmRates],
    family: &[&str],
    settings: &RateSettings,
) -> Vec<ComparisonRow> {
    let options = ArmOptions::new().level(settings.level).proportion();
    let primary = settings.primary_name();
    let mut rows = Vec::new();
    for control in controls {
        for conv in &settings.conventions {
            let (common, left_out, collapsed_runs) = common_questions([treated, control], conv);
            let mut data = ArmData::new();
            push_arm(&mut data, treated, conv, &common);
            push_arm(&mut data, control, conv, &common);
            let contrast = ArmContrast::of(&data, &treated.arm, &control.arm, &options);
            let mean = |arm: &str| {
                contrast.comparison.as_ref().and_then(|c| {
                    [&c.treatment, &c.control]
                        .into_iter()
                        .find(|s| s.arm == arm)
                        .and_then(|s| s.mean.value())
                })
            };
            rows.push(ComparisonRow {
                treated: treated.arm.clone(),
                control: control.arm.clone(),
                convention: conv.name.clone(),
                questions: common.len(),
                common_questions: common,
                left_out_questions: left_out,
                collapsed_runs,
                treated_mean: mean(&treated.arm),
                control_mean: mean(&control.arm),
                in_family: Some(conv.name.as_str()) == primary
                    && family.contains(&control.arm.as_str()),
                contrast,
                p_holm: None,
            });
        }
    }
    let members: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].in_family).collect();
    let mut holm = HolmFamily::new();
    for &i in &members {
        let r = &rows[i];
        holm.push(
            format!("{} vs {} ({})", r.treated, r.control, r.convention),
            r.contrast.p_value(),
        );
    }
    for (k, adj) in holm.adjust().into_iter().enumerate() {
        rows[members[k]].p_holm = adj.adjusted;
    }
    rows
}
