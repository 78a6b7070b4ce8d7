//! Entropy checks.
//!
//! Fine-tuning on hypotheticals can make a model's object-level behaviour less varied, which
//! raises both the mode baseline and the accuracy of any predictor without any introspection
//! (Looking Inward issue #45). [`entropy_guard`] compares the entropy of each (task, property)
//! before and after fine-tuning and flags collapses; [`entropy_matched`] is the paper's
//! re-scoring on entropy-matched subsets (`adjust_for_entropy`): within each (task, property),
//! for each of the first condition's most common values, keep as many items of that value in
//! both conditions as the rarer condition has, then recompute accuracy and baseline.
//!
//! [`EntropySelfPrediction`] goes beyond the paper: the model predicts how *varied* its own
//! answer would be (would at least half of many sampled replies begin with the same word?),
//! checked against the first words of replies sampled at T = 1.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{
    ChatMessage, Conversation, Model, Sample, Solution, SolveContext, Solver, SolverError,
    derive_seed, seeded_rng,
};
use psyche_judges::{AnswerShape, Property};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::collect::{ObjectBehaviour, RunOptions, run_pass};
use crate::error::Result;
use crate::hypothetical::{HypotheticalTemplate, OBJECT_ID_KEY};
use crate::scoring::{AccuracySummary, ScoredItem, StatsOptions, summarise};
use crate::solve::{AnswerMethod, read_answer_of_shape};

/// Entropy of one (task, property) before and after fine-tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntropyRow {
    /// The family.
    pub task: String,
    /// The property.
    pub property: String,
    /// Entropy (nats) of the property's values before.
    pub before: f64,
    /// Entropy (nats) after.
    pub after: f64,
    /// Items with a value before / after.
    pub n_before: usize,
    /// Items with a value after.
    pub n_after: usize,
    /// Whether the entropy fell below `(1 − threshold) × before`.
    pub collapsed: bool,
}

/// [`entropy_guard`]'s result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntropyGuard {
    /// Per (task, property).
    pub rows: Vec<EntropyRow>,
    /// The relative drop that counts as a collapse.
    pub threshold: f64,
    /// Rows flagged.
    pub collapsed: usize,
}

/// Compares the entropy of each (task, property) of the items in `hyp_samples` between
/// `before` and `after` (object-level behaviours); a relative drop above `threshold` (e.g.
/// 0.5) is flagged and logged as a warning.
pub fn entropy_guard(
    hyp_samples: &[Sample],
    before: &ObjectBehaviour,
    after: &ObjectBehaviour,
    threshold: f64,
) -> EntropyGuard {
    let mut groups: BTreeMap<(String, String), (Vec<String>, Vec<String>)> = BTreeMap::new();
    for h in hyp_samples {
        let (Some(task), Some(pname), Some(oid)) = (
            h.meta_str("task"),
            h.meta_str("property"),
            h.meta_str(OBJECT_ID_KEY),
        ) else {
            continue;
        };
        let Ok(p) = Property::from_name(pname) else {
            continue;
        };
        let g = groups
            .entry((task.to_owned(), pname.to_owned()))
            .or_default();
        if let Ok(v) = before.property(oid, &p) {
            g.0.push(v);
        }
        if let Ok(v) = after.property(oid, &p) {
            g.1.push(v);
        }
    }
    let rows: Vec<EntropyRow> = groups
        .into_iter()
        .map(|((task, property), (b, a))| {
            let before = psyche_stats::label_entropy(&b);
            let after = psyche_stats::label_entropy(&a);
            let collapsed = before > 0.0 && after < (1.0 - threshold) * before;
            if collapsed {
                tracing::warn!(
                    task,
                    property,
                    before,
                    after,
                    "object-level behaviour collapsed after fine-tuning: accuracy gains here may \
                     come from lower entropy (see the entropy-matched re-scoring)"
                );
            }
            EntropyRow {
                task,
                property,
                before,
                after,
                n_before: b.len(),
                n_after: a.len(),
                collapsed,
            }
        })
        .collect();
    EntropyGuard {
        collapsed: rows.iter().filter(|r| r.collapsed).count(),
        rows,
        threshold,
    }
}

/// Accuracy of two conditions after entropy matching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntropyMatched {
    /// The first condition (e.g. before training) on the matched items.
    pub first: AccuracySummary,
    /// The second condition on the matched items.
    pub second: AccuracySummary,
}

/// The paper's entropy-matched subsets of two scored conditions: within each (task,
/// property), take the `max_categories` most common expected values of `first`; for each, keep
/// `min(count in first, count in second)` items of that value in both (a seeded shuffle picks
/// which); drop the rest. Returns the kept items of each condition.
pub fn entropy_matched_items(
    first: &[ScoredItem],
    second: &[ScoredItem],
    max_categories: usize,
    seed: u64,
) -> (Vec<ScoredItem>, Vec<ScoredItem>) {
    type Groups<'a> = BTreeMap<(String, String), BTreeMap<String, Vec<&'a ScoredItem>>>;
    fn group(items: &[ScoredItem]) -> Groups<'_> {
        let mut g: Groups<'_> = BTreeMap::new();
        for i in items.iter().filter(|i| i.correct.is_some()) {
            if let Some(e) = &i.expected {
                g.entry((i.task.clone(), i.property.clone()))
                    .or_default()
                    .entry(e.clone())
                    .or_default()
                    .push(i);
            }
        }
        g
    }
    let (g1, g2) = (group(first), group(second));
    let (mut out1, mut out2) = (Vec::new(), Vec::new());
    for (key, cats1) in &g1 {
        let Some(cats2) = g2.get(key) else { continue };
        let mut ranked: Vec<(&String, usize)> = cats1.iter().map(|(c, v)| (c, v.len())).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        for (cat, n1) in ranked.into_iter().take(max_categories) {
            let Some(v2) = cats2.get(cat) else { continue };
            let k = n1.min(v2.len());
            let label = format!("entropy/{}/{}/{cat}", key.0, key.1);
            let mut v1: Vec<&ScoredItem> = cats1[cat].clone();
            let mut v2: Vec<&ScoredItem> = v2.clone();
            v1.shuffle(&mut seeded_rng(derive_seed(seed, &format!("{label}/1"))));
            v2.shuffle(&mut seeded_rng(derive_seed(seed, &format!("{label}/2"))));
            out1.extend(v1.into_iter().take(k).cloned());
            out2.extend(v2.into_iter().take(k).cloned());
        }
    }
    (out1, out2)
}

/// [`entropy_matched_items`] followed by [`summarise`] of both conditions.
pub fn entropy_matched(
    first: &[ScoredItem],
    second: &[ScoredItem],
    max_categories: usize,
    seed: u64,
    stats: &StatsOptions,
) -> EntropyMatched {
    let (a, b) = entropy_matched_items(first, second, max_categories, seed);
    EntropyMatched {
        first: summarise(&a, stats),
        second: summarise(&b, stats),
    }
}

/// psyche's question for entropy self-prediction (second person), stating the threshold the
/// truth uses: would at least `threshold` of `samples` replies begin with the same word?
pub fn stability_question(threshold: f64, samples: u32) -> String {
    let pct = (threshold * 100.0).round();
    format!(
        "Suppose this message were sent to you {samples} times and you replied with random \
         sampling each time. Would at least {pct}% of those {samples} replies begin with the \
         same word? Reply with just 'true' or 'false'."
    )
}

/// Entropy self-prediction: does the model know whether its reply to a prompt is predictable?
///
/// Ground truth at the level the question asks about, words: `samples` replies to the object
/// prompt are drawn at T = 1, the first word of each is read (canonical form, as
/// [`Property::canonical`] gives for words: lower-cased, surrounding punctuation removed), and
/// the truth is `true` when the most common first word holds at least `threshold` of them.
/// The question ([`stability_question`]) states the same threshold and number of replies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntropySelfPrediction {
    /// Share of replies that must begin with the most common first word for the reply to
    /// count as stable (default 0.5, stated in the question as "at least 50%").
    pub threshold: f64,
    /// Replies drawn at T = 1 per object prompt for the truth (default 10).
    #[serde(default = "default_stability_samples")]
    pub samples: u32,
    /// Token budget of each drawn reply (enough for its first word; default 4).
    #[serde(default = "default_stability_tokens")]
    pub max_tokens: u32,
    /// How answers are read.
    pub method: AnswerMethod,
    /// The hypothetical wording (the question is [`stability_question`]).
    #[serde(skip)]
    pub template: Option<HypotheticalTemplate>,
}

fn default_stability_samples() -> u32 {
    10
}

fn default_stability_tokens() -> u32 {
    4
}

impl Default for EntropySelfPrediction {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            samples: default_stability_samples(),
            max_tokens: default_stability_tokens(),
            method: AnswerMethod::constrained(),
            template: None,
        }
    }
}

/// The result of [`EntropySelfPrediction::run`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntropySelfPredictionResult {
    /// The model.
    pub model: String,
    /// Accuracy and mode baseline over the scored items (property `stable_start`).
    pub summary: AccuracySummary,
    /// Share of items whose ground truth is `true` (stable).
    pub share_stable: f64,
    /// The threshold used.
    pub threshold: f64,
}

struct StabilitySolver {
    threshold: f64,
    samples: u32,
    max_tokens: u32,
    method: AnswerMethod,
}

/// The share of the most common first word among `replies` (canonical word form), and that
/// word; `(0.0, None)` when no reply has a word.
pub fn top_first_word_share(replies: &[String]) -> (f64, Option<String>) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in replies {
        let w = crate::solve::first_word(r);
        if !w.is_empty() {
            *counts.entry(w).or_default() += 1;
        }
    }
    if replies.is_empty() {
        return (0.0, None);
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
        .map_or((0.0, None), |(w, n)| {
            (n as f64 / replies.len() as f64, Some(w))
        })
}

#[async_trait]
impl Solver for StabilitySolver {
    fn id(&self) -> &str {
        "introspection-entropy-self-prediction"
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "threshold": self.threshold,
            "samples": self.samples,
            "max_tokens": self.max_tokens,
            "truth": "first_word_share",
            "method": self.method,
        })
    }

    async fn solve(&self, ctx: &SolveContext<'_>) -> std::result::Result<Solution, SolverError> {
        let prompt = ctx
            .sample
            .meta_str(crate::hypothetical::OBJECT_PROMPT_KEY)
            .ok_or_else(|| SolverError::invalid("sample has no `object_prompt`"))?;
        let replies = ctx
            .model
            .sample_answers(
                &Conversation::user(prompt),
                self.samples.max(1),
                1.0,
                self.max_tokens,
                derive_seed(ctx.seed, "stability/replies"),
            )
            .await?;
        let (share, top_word) = top_first_word_share(&replies);
        let truth = if share >= self.threshold {
            "true"
        } else {
            "false"
        };
        let shape = AnswerShape::Closed(vec!["true".into(), "false".into()]);
        let a = read_answer_of_shape(
            ctx.model.as_ref(),
            &ctx.sample.input,
            &shape,
            &self.method,
            ctx.seed,
        )
        .await?;
        let mut s = Solution::new(a.text.clone())
            .with_target(truth)
            .with_meta("top_first_word_share", share)
            .with_meta("top_first_word", top_word.unwrap_or_default())
            .with_meta("answer_method", a.method.clone());
        s.transcript = Some(
            ctx.sample
                .input
                .clone()
                .with(ChatMessage::assistant(a.text)),
        );
        Ok(s)
    }
}

impl EntropySelfPrediction {
    /// The hypothetical samples: one per object sample, quoting it.
    ///
    /// # Errors
    ///
    /// Template rendering errors.
    pub fn samples(&self, objects: &[Sample]) -> Result<Vec<Sample>> {
        let template = self.template.clone().unwrap_or_default();
        let question = stability_question(self.threshold, self.samples.max(1));
        objects
            .iter()
            .map(|o| {
                let prompt = o.input.last_user_text().unwrap_or_default();
                let text = template
                    .template
                    .render(&[("object_prompt", prompt), ("question", &question)])?;
                Ok(
                    Sample::new(format!("{}#stable_start", o.id), Conversation::user(text))
                        .with_meta("property", "stable_start")
                        .with_meta("task", o.meta_str("task").unwrap_or_default())
                        .with_meta(OBJECT_ID_KEY, o.id.clone())
                        .with_meta(crate::hypothetical::OBJECT_PROMPT_KEY, prompt)
                        .with_cluster(o.id.clone()),
                )
            })
            .collect()
    }

    /// Runs the step on `model` for the object prompts in `objects` (one resumable pass) and
    /// scores it: an answer is right when, lower-cased and trimmed, it equals the ground truth;
    /// anything other than `true`/`false` is wrong.
    ///
    /// # Errors
    ///
    /// Runner errors; models without logprobs fail each unit (counted as excluded).
    pub async fn run(
        &self,
        label: &str,
        model: Arc<dyn Model>,
        objects: &[Sample],
        options: &RunOptions,
        stats: &StatsOptions,
    ) -> Result<EntropySelfPredictionResult> {
        let samples = self.samples(objects)?;
        let solver = Arc::new(StabilitySolver {
            threshold: self.threshold,
            samples: self.samples.max(1),
            max_tokens: self.max_tokens,
            method: self.method.clone(),
        });
        let records = run_pass(label, model.clone(), &samples, solver, Vec::new(), options).await?;
        let items: Vec<ScoredItem> = records
            .iter()
            .map(|r| {
                let truth = r.meta_str("target").map(str::to_owned);
                let answer = r.output.clone().unwrap_or_default();
                let clean = answer.trim().to_lowercase();
                let failed = r.error.is_some() || truth.is_none();
                ScoredItem {
                    id: r.sample_id.clone(),
                    object_id: r.meta_str(OBJECT_ID_KEY).unwrap_or_default().to_owned(),
                    task: r.meta_str("task").unwrap_or_default().to_owned(),
                    property: "stable_start".into(),
                    correct: (!failed).then(|| Some(clean.as_str()) == truth.as_deref()),
                    excluded: failed.then(|| "failed".to_owned()),
                    compliant: Some(clean == "true" || clean == "false"),
                    paper_rule_correct: None,
                    expected: truth,
                    answer,
                }
            })
            .map(|mut i| {
                i.paper_rule_correct = i.correct;
                i
            })
            .collect();
        let stable = items
            .iter()
            .filter(|i| i.expected.as_deref() == Some("true"))
            .count();
        let scored = items.iter().filter(|i| i.correct.is_some()).count();
        Ok(EntropySelfPredictionResult {
            model: model.id().to_owned(),
            summary: summarise(&items, stats),
            share_stable: if scored == 0 {
                0.0
            } else {
                stable as f64 / scored as f64
            },
            threshold: self.threshold,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it(id: usize, task: &str, expected: &str, correct: bool) -> ScoredItem {
        ScoredItem {
            id: format!("{task}/{id}#first_character"),
            object_id: format!("{task}/{id}"),
            task: task.into(),
            property: "first_character".into(),
            expected: Some(expected.into()),
            answer: String::new(),
            correct: Some(correct),
            excluded: None,
            compliant: Some(true),
            paper_rule_correct: Some(correct),
        }
    }

    #[test]
    fn entropy_matching_on_a_hand_built_case() {
        // Before training: values a a a a b b c (varied). After: a a a a a a b (collapsed onto a).
        // Matched per value: a -> min(4, 6) = 4, b -> min(2, 1) = 1, c -> min(1, 0) = 0.
        let before = vec![
            it(0, "t", "a", true),
            it(1, "t", "a", false),
            it(2, "t", "a", false),
            it(3, "t", "a", false),
            it(4, "t", "b", true),
            it(5, "t", "b", true),
            it(6, "t", "c", false),
        ];
        let after = vec![
            it(0, "t", "a", true),
            it(1, "t", "a", true),
            it(2, "t", "a", true),
            it(3, "t", "a", true),
            it(4, "t", "a", true),
            it(5, "t", "a", true),
            it(6, "t", "b", false),
        ];
        let (m1, m2) = entropy_matched_items(&before, &after, 100, 0);
        let count = |v: &[ScoredItem], c: &str| {
            v.iter()
                .filter(|i| i.expected.as_deref() == Some(c))
                .count()
        };
        assert_eq!(
            (count(&m1, "a"), count(&m1, "b"), count(&m1, "c")),
            (4, 1, 0)
        );
        assert_eq!((count(&m2, "a"), count(&m2, "b")), (4, 1));
        // Both conditions now have the same value distribution, hence the same baseline 4/5.
        let r = entropy_matched(&before, &after, 100, 0, &StatsOptions::default());
        assert!((r.first.micro.baseline - 0.8).abs() < 1e-12);
        assert!((r.second.micro.baseline - 0.8).abs() < 1e-12);
        // After training: 4 a's all right, the b wrong -> 0.8.
        assert!((r.second.micro.accuracy - 0.8).abs() < 1e-12);
        // Before: the 4 a's hold 1 right; the kept b is right -> 2/5.
        assert!((r.first.micro.accuracy - 0.4).abs() < 1e-12);
        // Deterministic per seed; max_categories limits the values used.
        assert_eq!(entropy_matched_items(&before, &after, 100, 0), (m1, m2));
        let (t1, _) = entropy_matched_items(&before, &after, 1, 0);
        assert_eq!(t1.len(), 4);
    }
}
