//! Several judges on one output.
//!
//! [`MultiJudge`] runs its judges concurrently on the same output and combines their scores:
//! [`Aggregate::Majority`] (the most common label / bool / number), [`Aggregate::Mean`] (of
//! numeric scores) or [`Aggregate::Collect`] (no combination). Every individual verdict is kept
//! in the combined verdict's `metadata["verdicts"]`, and [`ratings_matrix`] turns many items'
//! verdicts into the items × judges table that agreement statistics (Cohen's κ,
//! Krippendorff's α in psyche-stats) take.

use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{Judge, JudgeError, Sample, Score, Verdict};
use serde::{Deserialize, Serialize};

use crate::error::JudgeConfigError;

/// How a [`MultiJudge`] combines scores. `Score::None` verdicts never vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// The most common score (labels, bools, or numbers compared exactly); a tie is
    /// `Score::None`.
    Majority,
    /// The mean of the numeric scores (bools count 1/0).
    Mean,
    /// No combination: the score is `Score::None` with reason `"collected"`; read the
    /// individual verdicts from the metadata or use [`MultiJudge::judge_all`].
    Collect,
}

/// Runs several judges on one output.
#[derive(Clone)]
pub struct MultiJudge {
    id: String,
    judges: Vec<Arc<dyn Judge>>,
    aggregate: Aggregate,
}

impl std::fmt::Debug for MultiJudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiJudge")
            .field("id", &self.id)
            .field(
                "judges",
                &self.judges.iter().map(|j| j.id()).collect::<Vec<_>>(),
            )
            .field("aggregate", &self.aggregate)
            .finish()
    }
}

fn key(score: &Score) -> Option<String> {
    match score {
        Score::Number(x) => Some(format!("n:{x}")),
        Score::Bool(b) => Some(format!("b:{b}")),
        Score::Label(l) => Some(format!("l:{l}")),
        Score::None { .. } => None,
    }
}

/// Combines scores by `aggregate`.
pub fn combine(scores: &[Score], aggregate: Aggregate) -> Score {
    match aggregate {
        Aggregate::Collect => Score::none("collected"),
        Aggregate::Mean => {
            let xs: Vec<f64> = scores.iter().filter_map(Score::as_f64).collect();
            if xs.is_empty() {
                Score::none("no judge gave a numeric score")
            } else {
                Score::Number(xs.iter().sum::<f64>() / xs.len() as f64)
            }
        }
        Aggregate::Majority => {
            let mut counts: Vec<(String, usize, &Score)> = Vec::new();
            for s in scores {
                if let Some(k) = key(s) {
                    match counts.iter_mut().find(|(kk, _, _)| *kk == k) {
                        Some(e) => e.1 += 1,
                        None => counts.push((k, 1, s)),
                    }
                }
            }
            let Some(top) = counts.iter().map(|c| c.1).max() else {
                return Score::none("no judge gave a score");
            };
            let winners: Vec<_> = counts.iter().filter(|c| c.1 == top).collect();
            match winners.as_slice() {
                [one] => one.2.clone(),
                _ => Score::none(format!("tie between {} scores", winners.len())),
            }
        }
    }
}

impl MultiJudge {
    /// A multi-judge with these members.
    ///
    /// # Errors
    ///
    /// [`JudgeConfigError::Config`] without judges or with two judges of the same id.
    pub fn new(
        id: impl Into<String>,
        judges: Vec<Arc<dyn Judge>>,
        aggregate: Aggregate,
    ) -> Result<Self, JudgeConfigError> {
        if judges.is_empty() {
            return Err(JudgeConfigError::config(
                "judges",
                "at least one judge is needed",
            ));
        }
        let mut ids: Vec<&str> = judges.iter().map(|j| j.id()).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(JudgeConfigError::config(
                "judges",
                format!("duplicate judge id `{}`", w[0]),
            ));
        }
        Ok(Self {
            id: id.into(),
            judges,
            aggregate,
        })
    }

    /// The members' verdicts, in member order (members run concurrently).
    ///
    /// # Errors
    ///
    /// The first member error.
    pub async fn judge_all(
        &self,
        sample: &Sample,
        output: &str,
    ) -> Result<Vec<Verdict>, JudgeError> {
        futures::future::try_join_all(self.judges.iter().map(|j| j.judge(sample, output))).await
    }

    /// The member ids, in order.
    pub fn judge_ids(&self) -> Vec<&str> {
        self.judges.iter().map(|j| j.id()).collect()
    }
}

#[async_trait]
impl Judge for MultiJudge {
    fn id(&self) -> &str {
        &self.id
    }

    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let verdicts = self.judge_all(sample, output).await?;
        let scores: Vec<Score> = verdicts.iter().map(|v| v.score.clone()).collect();
        let score = combine(&scores, self.aggregate);
        let agreeing = scores
            .iter()
            .filter(|s| key(s).is_some() && key(s) == key(&score))
            .count();
        Ok(Verdict::new(&self.id, score)
            .with_meta(
                "verdicts",
                serde_json::to_value(&verdicts).unwrap_or(serde_json::Value::Null),
            )
            .with_meta("agreeing", agreeing))
    }
}

/// Items × judges table of numeric ratings (`None` where a judge declined or gave a label).
/// `verdicts[i]` are item i's verdicts in judge order.
pub fn ratings_matrix(verdicts: &[Vec<Verdict>]) -> Vec<Vec<Option<f64>>> {
    verdicts
        .iter()
        .map(|row| row.iter().map(|v| v.score.as_f64()).collect())
        .collect()
}

/// Items × judges table of categorical ratings (labels, `true`/`false`, numbers as text).
pub fn label_matrix(verdicts: &[Vec<Verdict>]) -> Vec<Vec<Option<String>>> {
    verdicts
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match &v.score {
                    Score::Label(l) => Some(l.clone()),
                    Score::Bool(b) => Some(b.to_string()),
                    Score::Number(x) => Some(x.to_string()),
                    Score::None { .. } => None,
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combining() {
        let l = |s: &str| Score::Label(s.into());
        assert_eq!(
            combine(&[l("a"), l("b"), l("a")], Aggregate::Majority),
            l("a")
        );
        assert!(
            combine(&[l("a"), l("b")], Aggregate::Majority).is_none(),
            "tie"
        );
        assert_eq!(
            combine(
                &[Score::Bool(true), Score::none("x"), Score::none("y")],
                Aggregate::Majority
            ),
            Score::Bool(true),
            "None never votes"
        );
        assert!(combine(&[Score::none("x")], Aggregate::Majority).is_none());
        assert_eq!(
            combine(
                &[Score::Number(10.0), Score::Number(20.0), Score::none("x")],
                Aggregate::Mean
            ),
            Score::Number(15.0)
        );
        assert_eq!(
            combine(&[Score::Bool(true), Score::Bool(false)], Aggregate::Mean),
            Score::Number(0.5)
        );
        assert!(combine(&[l("a")], Aggregate::Mean).is_none());
        assert!(combine(&[l("a")], Aggregate::Collect).is_none());
    }

    #[test]
    fn matrices() {
        let rows = vec![
            vec![
                Verdict::new("a", Score::Number(1.0)),
                Verdict::new("b", Score::none("x")),
            ],
            vec![
                Verdict::new("a", Score::Bool(true)),
                Verdict::new("b", Score::Label("L".into())),
            ],
        ];
        assert_eq!(
            ratings_matrix(&rows),
            vec![vec![Some(1.0), None], vec![Some(1.0), None]]
        );
        assert_eq!(
            label_matrix(&rows),
            vec![
                vec![Some("1".into()), None],
                vec![Some("true".into()), Some("L".into())]
            ]
        );
    }
}
