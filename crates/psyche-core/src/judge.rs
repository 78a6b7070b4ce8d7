//! The [`Judge`] trait and its verdicts.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::JudgeError;
use crate::sample::{Metadata, Sample};

/// What a judge concluded about one output.
///
/// `None` is a first-class outcome: a judge that refused, an answer that was code when a number
/// was wanted, too little probability mass on valid scores. It carries the reason and is
/// excluded from numeric statistics rather than counted as 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Score {
    /// A number (a 0–100 rating, an expected value, a probability, 1/0 accuracy...).
    Number(f64),
    /// A yes/no outcome (correct, compliant, misaligned...).
    Bool(bool),
    /// A category (`"TRUE"`, a company name, a language...).
    Label(String),
    /// No score, and why.
    None {
        /// Why the judge declined.
        reason: String,
    },
}

impl Score {
    /// A `None` score with this reason.
    pub fn none(reason: impl Into<String>) -> Self {
        Score::None {
            reason: reason.into(),
        }
    }

    /// The score as a number: numbers as they are, `true`/`false` as 1/0, labels and `None`
    /// as `None`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Score::Number(x) => Some(*x),
            Score::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Score::Label(_) | Score::None { .. } => None,
        }
    }

    /// The label, for `Label` scores.
    pub fn as_label(&self) -> Option<&str> {
        match self {
            Score::Label(l) => Some(l),
            _ => None,
        }
    }

    /// Whether this is `Score::None`.
    pub fn is_none(&self) -> bool {
        matches!(self, Score::None { .. })
    }
}

/// A judge's full verdict: the score plus provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The judge's id.
    pub judge: String,
    /// The outcome.
    pub score: Score,
    /// The property or answer the judge extracted, when it extracts one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Free-text explanation (e.g. the judge model's raw output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// The judge model's id, for model-graded judges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_model: Option<String>,
    /// SHA-256 of the judge's prompt template, for model-graded judges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_hash: Option<String>,
    /// Anything else worth keeping (e.g. the numeric mass of a logprob judge).
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

impl Verdict {
    /// A verdict with only a judge id and a score.
    pub fn new(judge: impl Into<String>, score: Score) -> Self {
        Self {
            judge: judge.into(),
            score,
            answer: None,
            explanation: None,
            judge_model: None,
            template_hash: None,
            metadata: Metadata::new(),
        }
    }

    /// Sets the extracted answer.
    #[must_use]
    pub fn with_answer(mut self, answer: impl Into<String>) -> Self {
        self.answer = Some(answer.into());
        self
    }

    /// Sets the explanation.
    #[must_use]
    pub fn with_explanation(mut self, explanation: impl Into<String>) -> Self {
        self.explanation = Some(explanation.into());
        self
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_meta(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// Scores one model output given its sample.
///
/// Required: [`id`](Judge::id) and [`judge`](Judge::judge). Model-graded judges reach their
/// judge model only through the [`Model`](crate::Model) trait.
#[async_trait]
pub trait Judge: Send + Sync {
    /// The judge's id: the key of its verdict in a [`Record`](crate::Record).
    fn id(&self) -> &str;

    /// Scores `output`, the evaluated model's answer to `sample`.
    ///
    /// # Errors
    ///
    /// [`JudgeError`] when judging could not be attempted (judge model call failed, sample
    /// lacks a target the judge needs). Declining to score is `Ok` with [`Score::None`].
    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError>;
}

#[async_trait]
impl<J: Judge + ?Sized> Judge for Arc<J> {
    fn id(&self) -> &str {
        (**self).id()
    }
    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        (**self).judge(sample, output).await
    }
}

#[async_trait]
impl<J: Judge + ?Sized> Judge for Box<J> {
    fn id(&self) -> &str {
        (**self).id()
    }
    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        (**self).judge(sample, output).await
    }
}
