//! Scoring hypothetical answers against a model's object-level behaviour, and the statistics
//! Looking Inward reports: accuracy per (task, property), per property and pooled (the micro
//! average), each beside its mode baseline computed on the **same** items, with item-bootstrap
//! intervals and accuracy − baseline by Newcombe's paired score interval; and comparisons of
//! fine-tuned predictors over their fine-tuning runs ([`seed_contrast`]: self minus cross,
//! paired by seed, through psyche-stats' [`ArmComparison`](psyche_stats::ArmComparison)).
//!
//! Scoring uses [`SelfPredictionJudge`](psyche_judges::SelfPredictionJudge) (through
//! [`SelfPredictionByProperty`]); an item is *excluded* (not scored, counted by reason) when
//! the target model's object-level answer is missing, failed, a refusal or non-answer, or
//! lacks the property, or when the hypothetical call failed. Non-compliant hypothetical
//! answers count as wrong by default (the paper's headline rule).

use std::collections::BTreeMap;

use psyche_core::{Judge, Sample, Score};
use psyche_judges::{ComplianceRule, Property};
use psyche_stats::{ArmData, ArmOptions, BootstrapInterval, Stat};
use serde::{Deserialize, Serialize};

use crate::collect::{HypotheticalAnswers, ObjectBehaviour};
use crate::error::Result;
use crate::hypothetical::OBJECT_ID_KEY;
use crate::solve::{OBJECT_ANSWER_KEY, SelfPredictionByProperty};

/// One hypothetical item scored against one model's behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredItem {
    /// The hypothetical sample's id.
    pub id: String,
    /// The object-level sample's id (the cluster of the item).
    pub object_id: String,
    /// The family.
    pub task: String,
    /// The property's name.
    pub property: String,
    /// The expected (object-level) property value, lower-cased and trimmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// The hypothetical answer.
    pub answer: String,
    /// Right or wrong; `None` when excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct: Option<bool>,
    /// Why the item was excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded: Option<String>,
    /// Whether the hypothetical answer was compliant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliant: Option<bool>,
    /// The score under the paper's compliance rule (`None` where it would exclude the item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_rule_correct: Option<bool>,
}

/// How items are scored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreOptions {
    /// The compliance rule for hypothetical answers.
    pub rule: ComplianceRule,
    /// Exclude non-compliant hypothetical answers instead of counting them wrong.
    pub exclude_noncompliant: bool,
}

/// Scores `answers` to the hypothetical `samples` against `behaviour` (the object-level answers
/// of the model being predicted).
///
/// # Errors
///
/// [`IntrospectionError::Judge`](crate::IntrospectionError::Judge) for a sample without a
/// `property`; [`IntrospectionError::JudgeConfig`](crate::IntrospectionError::JudgeConfig)
/// for an unknown property name.
pub async fn score(
    samples: &[Sample],
    answers: &HypotheticalAnswers,
    behaviour: &ObjectBehaviour,
    options: &ScoreOptions,
) -> Result<Vec<ScoredItem>> {
    let judges = SelfPredictionByProperty {
        rule: options.rule,
        exclude_noncompliant: options.exclude_noncompliant,
    };
    let mut out = Vec::with_capacity(samples.len());
    for s in samples {
        let property_name = s.meta_str("property").unwrap_or_default().to_owned();
        let property = Property::from_name(&property_name)?;
        let object_id = s.meta_str(OBJECT_ID_KEY).unwrap_or_default().to_owned();
        let mut item = ScoredItem {
            id: s.id.clone(),
            object_id: object_id.clone(),
            task: s.meta_str("task").unwrap_or_default().to_owned(),
            property: property_name,
            expected: None,
            answer: String::new(),
            correct: None,
            excluded: None,
            compliant: None,
            paper_rule_correct: None,
        };
        match behaviour.property(&object_id, &property) {
            Err(m) => item.excluded = Some(m.name().to_owned()),
            Ok(expected) => {
                item.expected = Some(expected);
                match answers.answers.get(&s.id) {
                    None => item.excluded = Some("hypothetical_not_collected".into()),
                    Some(a) if a.error.is_some() => {
                        item.excluded = Some("hypothetical_failed".into());
                    }
                    Some(a) => {
                        item.answer = a.answer.clone();
                        let object = &behaviour.answers[&object_id];
                        let mut judged = s.clone();
                        judged
                            .metadata
                            .insert(OBJECT_ANSWER_KEY.into(), object.answer.clone().into());
                        if let Some(t) = &object.stance_target {
                            judged
                                .metadata
                                .insert("stance_target".into(), t.clone().into());
                        }
                        let v = judges.judge(&judged, &a.answer).await?;
                        item.compliant = v.metadata.get("compliant").and_then(|c| c.as_bool());
                        item.paper_rule_correct = v
                            .metadata
                            .get("paper_rule_score")
                            .and_then(serde_json::Value::as_bool);
                        match v.score {
                            Score::Bool(b) => item.correct = Some(b),
                            Score::None { .. } => {
                                item.excluded = Some("hypothetical_noncompliant".into());
                            }
                            other => {
                                item.excluded = Some(format!("unexpected score {other:?}"));
                            }
                        }
                    }
                }
            }
        }
        out.push(item);
    }
    Ok(out)
}

/// Scored items from run-log records judged by a self-prediction judge (`judge` is its id,
/// e.g. `self_prediction` for [`SelfPredictionByProperty`]): what a one-run self-prediction
/// eval (object prompt and hypothetical in one unit, as [`SelfPredictionSolver`] does) gives.
/// Declined verdicts become exclusions with the reason's kind (`object_non_answer`,
/// `object_lacks_property`, `hypothetical_noncompliant`); failed units `failed`.
///
/// [`SelfPredictionSolver`]: crate::solve::SelfPredictionSolver
pub fn items_from_records(records: &[psyche_core::Record], judge: &str) -> Vec<ScoredItem> {
    records
        .iter()
        .map(|r| {
            let v = r.scores.get(judge);
            let meta = |k: &str| v.and_then(|v| v.metadata.get(k));
            let mut item = ScoredItem {
                id: r.sample_id.clone(),
                object_id: r.meta_str(OBJECT_ID_KEY).map_or_else(
                    || r.cluster.clone().unwrap_or_else(|| r.sample_id.clone()),
                    str::to_owned,
                ),
                task: r.meta_str("task").unwrap_or_default().to_owned(),
                property: r.meta_str("property").unwrap_or_default().to_owned(),
                expected: meta("expected").and_then(|e| e.as_str()).map(str::to_owned),
                answer: r.output.clone().unwrap_or_default(),
                correct: None,
                excluded: None,
                compliant: meta("compliant").and_then(serde_json::Value::as_bool),
                paper_rule_correct: meta("paper_rule_score").and_then(serde_json::Value::as_bool),
            };
            match (v.map(|v| &v.score), &r.error) {
                (Some(Score::Bool(b)), _) => item.correct = Some(*b),
                (Some(Score::None { reason }), _) => {
                    item.excluded = Some(
                        if reason.contains("refusal or non-answer") {
                            "object_non_answer"
                        } else if reason.contains("has no") {
                            "object_lacks_property"
                        } else if reason.contains("non-compliant hypothetical") {
                            "hypothetical_noncompliant"
                        } else {
                            "declined"
                        }
                        .to_owned(),
                    );
                }
                (_, Some(_)) | (None, None) => item.excluded = Some("failed".into()),
                (Some(_), None) => item.excluded = Some("unexpected_score".into()),
            }
            item
        })
        .collect()
}

/// Accuracy of one group of items with its baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStat {
    /// The family, or `None` for groups over several families.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The property, or `None` for the micro average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// Scored items.
    pub n: usize,
    /// Correct items.
    pub correct: usize,
    /// `correct / n`.
    pub accuracy: f64,
    /// Item-bootstrap interval of the accuracy (cluster bootstrap over object items for
    /// groups that hold several properties of one item): a statement about this model on these
    /// items; or why there is none.
    pub ci: Stat,
    /// The mode baseline on the same items: always predicting the most common value of each
    /// (task, property) (pooled over the groups this one spans).
    pub baseline: f64,
    /// The mode, for single (task, property) groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Accuracy minus baseline on the same items: Newcombe's paired score interval for two
    /// proportions on the same items (it stays within ±1 at any n).
    pub over_baseline: Stat,
    /// Share of compliant hypothetical answers among the scored items.
    pub compliance_rate: f64,
}

/// The accuracy report of one (predictor, target) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracySummary {
    /// Per (task, property), sorted.
    pub by_task_property: Vec<GroupStat>,
    /// Per property, pooled over families, sorted.
    pub by_property: Vec<GroupStat>,
    /// All scored items pooled (Looking Inward's micro average).
    pub micro: GroupStat,
    /// Items not scored, by reason.
    pub excluded: BTreeMap<String, usize>,
    /// Items in total (scored + excluded).
    pub items: usize,
    /// Scored items on which the paper's compliance rule gives another score.
    pub rule_differences: usize,
}

/// Statistics settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StatsOptions {
    /// Confidence level.
    pub level: f64,
    /// Bootstrap resamples.
    pub resamples: usize,
    /// Bootstrap seed.
    pub seed: u64,
}

impl Default for StatsOptions {
    fn default() -> Self {
        Self {
            level: 0.95,
            resamples: 1000,
            seed: 42,
        }
    }
}

fn group_stat(
    task: Option<String>,
    property: Option<String>,
    items: &[(&ScoredItem, bool)],
    stats: &StatsOptions,
) -> GroupStat {
    let values: Vec<f64> = items
        .iter()
        .map(|(i, _)| f64::from(u8::from(i.correct == Some(true))))
        .collect();
    let base: Vec<f64> = items.iter().map(|(_, b)| f64::from(u8::from(*b))).collect();
    let clusters: Vec<&str> = items.iter().map(|(i, _)| i.object_id.as_str()).collect();
    let n = values.len();
    let correct = values.iter().filter(|&&v| v == 1.0).count();
    let distinct: std::collections::HashSet<&str> = clusters.iter().copied().collect();
    let ci = if distinct.len() < n {
        psyche_stats::cluster_bootstrap_mean(
            &values,
            &clusters,
            stats.resamples,
            stats.level,
            stats.seed,
            BootstrapInterval::Percentile,
        )
    } else {
        psyche_stats::bootstrap_mean(&values, stats.resamples, stats.level, stats.seed)
    };
    let ci = Stat::from(ci);
    let compliant = items
        .iter()
        .filter(|(i, _)| i.compliant == Some(true))
        .count();
    let frac = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    GroupStat {
        task,
        property,
        n,
        correct,
        accuracy: frac(correct),
        ci,
        baseline: frac(base.iter().filter(|&&b| b == 1.0).count()),
        mode: None,
        over_baseline: {
            let right: Vec<bool> = items.iter().map(|(i, _)| i.correct == Some(true)).collect();
            let hits: Vec<bool> = items.iter().map(|(_, b)| *b).collect();
            psyche_stats::paired_proportion_difference_of(&right, &hits, stats.level).into()
        },
        compliance_rate: frac(compliant),
    }
}

/// Each scored item with whether its expected value equals the mode of its (task, property)
/// (the mode baseline's hit), the mode computed over the group's scored items; excluded items
/// are left out.
pub fn with_mode_baseline(items: &[ScoredItem]) -> Vec<(&ScoredItem, bool)> {
    let mut groups: BTreeMap<(&str, &str), Vec<&ScoredItem>> = BTreeMap::new();
    for i in items {
        if i.excluded.is_none() && i.correct.is_some() {
            groups
                .entry((i.task.as_str(), i.property.as_str()))
                .or_default()
                .push(i);
        }
    }
    let mut out = Vec::new();
    for members in groups.values() {
        let values: Vec<&str> = members
            .iter()
            .map(|i| i.expected.as_deref().unwrap_or_default())
            .collect();
        let mode = psyche_stats::mode_baseline(&values).map(|m| m.mode);
        out.extend(
            members
                .iter()
                .map(|i| (*i, mode.as_deref() == i.expected.as_deref())),
        );
    }
    out
}

/// Summarises scored items: per (task, property), per property and micro, each with its mode
/// baseline on the same items (the mode of each (task, property) is computed over that
/// group's scored items).
pub fn summarise(items: &[ScoredItem], stats: &StatsOptions) -> AccuracySummary {
    let mut excluded: BTreeMap<String, usize> = BTreeMap::new();
    let mut groups: BTreeMap<(String, String), Vec<&ScoredItem>> = BTreeMap::new();
    let mut rule_differences = 0;
    for i in items {
        match (&i.excluded, i.correct) {
            (Some(r), _) => *excluded.entry(r.clone()).or_default() += 1,
            (None, Some(c)) => {
                if i.paper_rule_correct != Some(c) {
                    rule_differences += 1;
                }
                groups
                    .entry((i.task.clone(), i.property.clone()))
                    .or_default()
                    .push(i);
            }
            (None, None) => *excluded.entry("unscored".into()).or_default() += 1,
        }
    }
    // Each item with whether it equals its (task, property) mode.
    let mut with_base: Vec<(&ScoredItem, bool)> = Vec::new();
    let mut by_task_property = Vec::new();
    for ((task, property), members) in &groups {
        let values: Vec<&str> = members
            .iter()
            .map(|i| i.expected.as_deref().unwrap_or_default())
            .collect();
        let mode = psyche_stats::mode_baseline(&values).map(|m| m.mode);
        let tagged: Vec<(&ScoredItem, bool)> = members
            .iter()
            .map(|i| (*i, mode.as_deref() == i.expected.as_deref()))
            .collect();
        let mut g = group_stat(Some(task.clone()), Some(property.clone()), &tagged, stats);
        g.mode = mode;
        by_task_property.push(g);
        with_base.extend(tagged);
    }
    let mut by_prop: BTreeMap<&str, Vec<(&ScoredItem, bool)>> = BTreeMap::new();
    for (i, b) in &with_base {
        by_prop
            .entry(i.property.as_str())
            .or_default()
            .push((*i, *b));
    }
    let by_property = by_prop
        .into_iter()
        .map(|(p, v)| group_stat(None, Some(p.to_owned()), &v, stats))
        .collect();
    let micro = group_stat(None, None, &with_base, stats);
    AccuracySummary {
        by_task_property,
        by_property,
        micro,
        excluded,
        items: items.len(),
        rule_differences,
    }
}

pub use psyche_stats::ArmContrast;

/// Compares predictor `a` with predictor `b` over fine-tuning runs: `pairs[k] = (seed, a's
/// items, b's items)`, both scored against the same ground truth (in Looking Inward, the
/// self-trained model of that seed). Only items scored under both count (matched by id), each
/// clustered by its object (an object's properties are not independent), and the seeds are
/// paired: seed s of `a` and of `b` share their ground truth and training data. With one seed
/// the between-run variance is not estimated and there is no run-level verdict.
pub fn seed_contrast(
    pairs: &[(u64, Vec<ScoredItem>, Vec<ScoredItem>)],
    a: &str,
    b: &str,
    stats: &StatsOptions,
) -> ArmContrast {
    let mut data = ArmData::new();
    for (seed, xa, xb) in pairs {
        let b_by: BTreeMap<&str, &ScoredItem> = xb.iter().map(|i| (i.id.as_str(), i)).collect();
        for i in xa {
            if let (Some(x), Some(y)) = (i.correct, b_by.get(i.id.as_str()).and_then(|j| j.correct))
            {
                data.item_in(
                    a,
                    seed,
                    i.id.as_str(),
                    i.object_id.as_str(),
                    f64::from(u8::from(x)),
                );
                data.item_in(
                    b,
                    seed,
                    i.id.as_str(),
                    i.object_id.as_str(),
                    f64::from(u8::from(y)),
                );
            }
        }
    }
    if data.is_empty() {
        return ArmContrast::unavailable(a, b, "no item scored under both predictors");
    }
    ArmContrast::of(
        &data,
        a,
        b,
        &ArmOptions::new()
            .level(stats.level)
            .paired(true)
            .proportion(),
    )
}

/// Accuracy against the mode baseline on the same items, over fine-tuning runs: `per_seed[k] =
/// (seed, the items scored in that run)`; arm `a` is the accuracy, arm `b` the mode baseline of
/// each (task, property) in that run, paired by seed, items clustered by object.
pub fn baseline_contrast(
    per_seed: &[(u64, &[ScoredItem])],
    a: &str,
    b: &str,
    stats: &StatsOptions,
) -> ArmContrast {
    let mut data = ArmData::new();
    for (seed, items) in per_seed {
        for (i, hit) in with_mode_baseline(items) {
            let right = i.correct == Some(true);
            data.item_in(
                a,
                seed,
                i.id.as_str(),
                i.object_id.as_str(),
                f64::from(u8::from(right)),
            );
            data.item_in(
                b,
                seed,
                i.id.as_str(),
                i.object_id.as_str(),
                f64::from(u8::from(hit)),
            );
        }
    }
    if data.is_empty() {
        return ArmContrast::unavailable(a, b, "no scored item");
    }
    ArmContrast::of(
        &data,
        a,
        b,
        &ArmOptions::new()
            .level(stats.level)
            .paired(true)
            .proportion(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use psyche_stats::IntervalVerdict;

    pub(crate) fn item(
        id: &str,
        task: &str,
        prop: &str,
        expected: &str,
        correct: bool,
    ) -> ScoredItem {
        ScoredItem {
            id: format!("{task}/{id}#{prop}"),
            object_id: format!("{task}/{id}"),
            task: task.into(),
            property: prop.into(),
            expected: Some(expected.into()),
            answer: String::new(),
            correct: Some(correct),
            excluded: None,
            compliant: Some(true),
            paper_rule_correct: Some(correct),
        }
    }

    #[test]
    fn accuracy_baseline_and_micro_match_hand_computed_values() {
        // animals/first_character: expected a a a b; correct T F T F -> acc 0.5, mode a, base 0.75
        // animals/starts_with_vowel: expected true false false; correct T T T -> acc 1, mode false, base 2/3
        // stories/first_character: expected x y; correct F F -> acc 0, mode x (tie: smallest), base 0.5
        let mut items = vec![
            item("1", "animals", "first_character", "a", true),
            item("2", "animals", "first_character", "a", false),
            item("3", "animals", "first_character", "a", true),
            item("4", "animals", "first_character", "b", false),
            item("1", "animals", "starts_with_vowel", "true", true),
            item("2", "animals", "starts_with_vowel", "false", true),
            item("3", "animals", "starts_with_vowel", "false", true),
            item("1", "stories", "first_character", "x", false),
            item("2", "stories", "first_character", "y", false),
        ];
        let mut excluded = item("5", "animals", "first_character", "z", true);
        excluded.correct = None;
        excluded.excluded = Some("object_non_answer".into());
        items.push(excluded);
        let s = summarise(&items, &StatsOptions::default());
        assert_eq!(s.items, 10);
        assert_eq!(s.excluded["object_non_answer"], 1);
        let g = |t: &str, p: &str| {
            s.by_task_property
                .iter()
                .find(|g| g.task.as_deref() == Some(t) && g.property.as_deref() == Some(p))
                .unwrap()
                .clone()
        };
        let af = g("animals", "first_character");
        assert_eq!((af.n, af.correct), (4, 2));
        assert!((af.accuracy - 0.5).abs() < 1e-12);
        assert!(
            (af.baseline - 0.75).abs() < 1e-12,
            "the excluded `z` is not counted"
        );
        assert_eq!(af.mode.as_deref(), Some("a"));
        let av = g("animals", "starts_with_vowel");
        assert!((av.accuracy - 1.0).abs() < 1e-12);
        assert!((av.baseline - 2.0 / 3.0).abs() < 1e-12);
        let sf = g("stories", "first_character");
        assert!((sf.baseline - 0.5).abs() < 1e-12);
        assert_eq!(sf.mode.as_deref(), Some("x"));
        // Per property: first_character pooled over animals (4) and stories (2).
        let fc = s
            .by_property
            .iter()
            .find(|g| g.property.as_deref() == Some("first_character"))
            .unwrap();
        assert_eq!(fc.n, 6);
        assert!((fc.accuracy - 2.0 / 6.0).abs() < 1e-12);
        assert!((fc.baseline - 4.0 / 6.0).abs() < 1e-12);
        // Micro: 5 correct of 9; baseline hits 3 + 2 + 1 = 6 of 9.
        assert_eq!((s.micro.n, s.micro.correct), (9, 5));
        assert!((s.micro.accuracy - 5.0 / 9.0).abs() < 1e-12);
        assert!((s.micro.baseline - 6.0 / 9.0).abs() < 1e-12);
        let ci = s.micro.ci.estimate().unwrap();
        assert!(ci.ci_low <= s.micro.accuracy && s.micro.accuracy <= ci.ci_high);
        assert_eq!(ci.method, psyche_stats::Method::ClusterBootstrapPercentile);
        let ob = s.micro.over_baseline.estimate().unwrap();
        assert!((ob.estimate - (5.0 - 6.0) / 9.0).abs() < 1e-12);
        assert_eq!(ob.method, psyche_stats::Method::NewcombePaired);
        assert_eq!(s.rule_differences, 0);
    }

    #[test]
    fn accuracy_minus_baseline_stays_within_100_pp_at_tiny_n() {
        // One right of four, the mode baseline right on all four: a paired t on the 0/−1
        // differences gave −75 pp [−154.6, +4.6]; the paired score interval stays in ±100 pp.
        let items = vec![
            item("1", "t", "p", "a", true),
            item("2", "t", "p", "a", false),
            item("3", "t", "p", "a", false),
            item("4", "t", "p", "a", false),
        ];
        let s = summarise(&items, &StatsOptions::default());
        let d = s.micro.over_baseline.estimate().unwrap();
        assert!((d.estimate + 0.75).abs() < 1e-12);
        assert!(d.ci_low >= -1.0 && d.ci_high <= 1.0, "{d:?}");
        assert!(d.ci_high < 0.0, "{d:?}");
        assert_eq!(d.method, psyche_stats::Method::NewcombePaired);
        assert_eq!(d.n, 4);
    }

    fn seed(a: &[bool], b: &[bool]) -> (Vec<ScoredItem>, Vec<ScoredItem>) {
        let mk = |v: &[bool]| -> Vec<ScoredItem> {
            v.iter()
                .enumerate()
                .map(|(k, c)| item(&k.to_string(), "t", "p", "a", *c))
                .collect()
        };
        (mk(a), mk(b))
    }

    #[test]
    fn self_minus_cross_is_paired_over_seeds_not_over_pooled_items() {
        let (a0, b0) = seed(&[true, true, false], &[false, true, false]);
        let (a1, b1) = seed(&[true, false, true], &[false, false, false]);
        let c = seed_contrast(
            &[(0, a0.clone(), b0.clone()), (1, a1, b1)],
            "self",
            "cross",
            &StatsOptions::default(),
        );
        let k = c.comparison.as_ref().unwrap();
        assert_eq!(k.method, psyche_stats::Method::PairedOverSeeds);
        assert!(k.paired);
        assert_eq!((k.treatment.n_seeds, k.control.n_seeds), (2, 2));
        assert!((k.treatment.per_seed[0].mean - 2.0 / 3.0).abs() < 1e-12);
        let d = c.difference.estimate().unwrap();
        // Per-seed differences 1/3 and 2/3: mean 0.5, df 1; the interval is clipped to ±1.
        assert!((d.estimate - 0.5).abs() < 1e-12);
        assert_eq!((d.ci_low, d.ci_high), (-1.0, 1.0));
        assert_eq!(c.units("objects"), "2 vs 2 runs (paired), 3 objects");
        // One seed: no between-run variance, no run-level verdict, an item-level view.
        let one = seed_contrast(&[(0, a0, b0)], "self", "cross", &StatsOptions::default());
        assert!(matches!(
            one.verdict(),
            IntervalVerdict::NotEstimable { .. }
        ));
        assert_eq!(one.p_value(), None);
        assert!(!one.verdict().excludes_zero());
    }

    #[test]
    fn run_to_run_variation_widens_the_interval() {
        // Three runs of 60 items whose self − cross difference varies from run to run
        // (+30, −10, +20 pp): 180 pooled items as if independent would exclude zero; over runs
        // the interval includes it.
        let run = |right_a: usize, right_b: usize| {
            let a: Vec<bool> = (0..60).map(|k| k < right_a).collect();
            let b: Vec<bool> = (0..60).map(|k| k < right_b).collect();
            seed(&a, &b)
        };
        let (a0, b0) = run(48, 30);
        let (a1, b1) = run(30, 36);
        let (a2, b2) = run(42, 30);
        let c = seed_contrast(
            &[(0, a0, b0), (1, a1, b1), (2, a2, b2)],
            "self",
            "cross",
            &StatsOptions::default(),
        );
        let d = c.difference.estimate().unwrap();
        assert!((d.estimate - 0.4 / 3.0).abs() < 1e-12, "{d:?}");
        assert!(d.ci_low < 0.0 && d.ci_high > 0.0, "{d:?}");
        assert_eq!(c.verdict(), IntervalVerdict::IncludesZero);
        // The item-level view (these runs only) clusters by object over the runs.
        assert!(c.item_level().is_estimated());
    }

    #[test]
    fn baseline_contrast_pairs_accuracy_with_its_mode_baseline_per_seed() {
        let s0 = vec![
            item("1", "t", "p", "a", true),
            item("2", "t", "p", "a", true),
            item("3", "t", "p", "b", false),
        ];
        let s1 = vec![
            item("1", "t", "p", "a", false),
            item("2", "t", "p", "b", true),
            item("3", "t", "p", "b", true),
        ];
        let c = baseline_contrast(
            &[(0, &s0), (1, &s1)],
            "accuracy",
            "mode baseline",
            &StatsOptions::default(),
        );
        let k = c.comparison.as_ref().unwrap();
        // Seed 0: accuracy 2/3, baseline (mode a) 2/3; seed 1: 2/3 and (mode b) 2/3.
        assert!((k.control.per_seed[0].mean - 2.0 / 3.0).abs() < 1e-12);
        assert!(c.difference.value().unwrap().abs() < 1e-12);
        assert!(k.paired);
    }
}
