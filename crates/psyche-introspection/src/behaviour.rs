//! Comparing two models' object-level behaviour, and the behaviour-change test (Looking
//! Inward §1.12).
//!
//! [`agreement`] says how often two models give the same property value on the same items —
//! a cross-prediction comparison is only meaningful when this is well below 1.
//! [`behaviour_change`] takes a model whose behaviour was changed by fine-tuning (M_C), keeps
//! the items whose property changed (old behaviour ≠ new, both valid), and scores M_C's
//! hypothetical answers against the old and the new behaviour; introspection predicts that
//! M_C tracks its *new* behaviour. As in the paper, non-compliant hypothetical answers are
//! excluded here.

use std::collections::BTreeMap;

use psyche_core::Sample;
use psyche_judges::Property;
use psyche_stats::Stat;
use serde::{Deserialize, Serialize};

use crate::collect::{HypotheticalAnswers, ObjectBehaviour};
use crate::error::Result;
use crate::hypothetical::OBJECT_ID_KEY;
use crate::scoring::{AccuracySummary, ScoreOptions, StatsOptions, score, summarise};

/// Agreement on one property.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementRow {
    /// The property (`None`: all properties pooled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// Items where both models have a value.
    pub n: usize,
    /// Items where the values are equal.
    pub agree: usize,
    /// `agree / n`.
    pub rate: f64,
}

/// How often `a` and `b` give the same property value on the items of `hyp_samples`.
pub fn agreement(
    hyp_samples: &[Sample],
    a: &ObjectBehaviour,
    b: &ObjectBehaviour,
) -> Vec<AgreementRow> {
    let mut by: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for h in hyp_samples {
        let (Some(pname), Some(oid)) = (h.meta_str("property"), h.meta_str(OBJECT_ID_KEY)) else {
            continue;
        };
        let Ok(p) = Property::from_name(pname) else {
            continue;
        };
        if let (Ok(x), Ok(y)) = (a.property(oid, &p), b.property(oid, &p)) {
            let e = by.entry(pname.to_owned()).or_default();
            e.0 += 1;
            e.1 += usize::from(x == y);
        }
    }
    let row = |property: Option<String>, (n, agree): (usize, usize)| AgreementRow {
        property,
        n,
        agree,
        rate: if n == 0 { 0.0 } else { agree as f64 / n as f64 },
    };
    let total = by
        .values()
        .fold((0, 0), |acc, v| (acc.0 + v.0, acc.1 + v.1));
    let mut rows: Vec<AgreementRow> = by.into_iter().map(|(p, v)| row(Some(p), v)).collect();
    rows.push(row(None, total));
    rows
}

/// The result of [`behaviour_change`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BehaviourChange {
    /// Items whose property changed (both behaviours valid).
    pub shifted_items: usize,
    /// Items with a value under both behaviours.
    pub comparable_items: usize,
    /// M_C's accuracy at predicting its old behaviour, on the shifted items.
    pub predicting_old: AccuracySummary,
    /// M_C's accuracy at predicting its new behaviour, on the shifted items.
    pub predicting_new: AccuracySummary,
    /// New minus old on the same shifted items (this model only): Newcombe's paired score
    /// interval for two proportions on the same items.
    pub new_minus_old: Stat,
}

/// The behaviour-change test: `answers` are M_C's hypothetical answers to `hyp_samples`;
/// `old` is the behaviour before the change, `new` M_C's own.
///
/// # Errors
///
/// As [`score`].
pub async fn behaviour_change(
    hyp_samples: &[Sample],
    answers: &HypotheticalAnswers,
    old: &ObjectBehaviour,
    new: &ObjectBehaviour,
    stats: &StatsOptions,
) -> Result<BehaviourChange> {
    let mut comparable = 0;
    let shifted: Vec<Sample> = hyp_samples
        .iter()
        .filter(|h| {
            let (Some(pname), Some(oid)) = (h.meta_str("property"), h.meta_str(OBJECT_ID_KEY))
            else {
                return false;
            };
            let Ok(p) = Property::from_name(pname) else {
                return false;
            };
            match (old.property(oid, &p), new.property(oid, &p)) {
                (Ok(x), Ok(y)) => {
                    comparable += 1;
                    x != y
                }
                _ => false,
            }
        })
        .cloned()
        .collect();
    let opts = ScoreOptions {
        exclude_noncompliant: true,
        ..ScoreOptions::default()
    };
    let vs_old = score(&shifted, answers, old, &opts).await?;
    let vs_new = score(&shifted, answers, new, &opts).await?;
    Ok(BehaviourChange {
        shifted_items: shifted.len(),
        comparable_items: comparable,
        predicting_old: summarise(&vs_old, stats),
        predicting_new: summarise(&vs_new, stats),
        new_minus_old: {
            let old_by: BTreeMap<&str, bool> = vs_old
                .iter()
                .filter_map(|i| i.correct.map(|c| (i.id.as_str(), c)))
                .collect();
            let (a, b): (Vec<bool>, Vec<bool>) = vs_new
                .iter()
                .filter_map(|i| Some((i.correct?, *old_by.get(i.id.as_str())?)))
                .unzip();
            psyche_stats::paired_proportion_difference_of(&a, &b, stats.level).into()
        },
    })
}
