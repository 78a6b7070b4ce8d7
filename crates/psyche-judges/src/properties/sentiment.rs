//! A property read by a judge model rather than computed: the sentiment bucket of an answer.

use std::sync::Arc;

use psyche_core::{JudgeError, Model, Sample};

use crate::error::JudgeConfigError;
use crate::llm::classify::{ClassifyJudge, ClassifyMode};

/// The sentiment bucket of an answer, read by a judge model: a response property that is not
/// a pure function.
///
/// Built on [`ClassifyJudge`]; the buckets default to `positive`, `neutral`, `negative`.
#[derive(Debug, Clone)]
pub struct SentimentExtractor {
    classifier: ClassifyJudge,
}

impl SentimentExtractor {
    /// psyche's default sentiment prompt (placeholder `{answer}`).
    pub const DEFAULT_TEMPLATE: &'static str = "Read the text between the markers and decide \
        what feeling it expresses overall.\n\n<<<TEXT\n{answer}\nTEXT>>>\n\nReply with exactly \
        one word from this list: {labels}.";

    /// An extractor asking `model` to put answers in `buckets` (e.g. `positive`, `neutral`,
    /// `negative`), greedily generated and parsed.
    ///
    /// # Errors
    ///
    /// [`JudgeConfigError::Config`] for fewer than two buckets.
    pub fn new<S: Into<String>>(
        model: Arc<dyn Model>,
        buckets: impl IntoIterator<Item = S>,
    ) -> Result<Self, JudgeConfigError> {
        let classifier = ClassifyJudge::new(
            "sentiment",
            model,
            Self::DEFAULT_TEMPLATE,
            buckets.into_iter().map(Into::into).collect(),
        )?
        .mode(ClassifyMode::Generate);
        Ok(Self { classifier })
    }

    /// The default three buckets.
    ///
    /// # Errors
    ///
    /// Never in practice; kept fallible like [`SentimentExtractor::new`].
    pub fn three_way(model: Arc<dyn Model>) -> Result<Self, JudgeConfigError> {
        Self::new(model, ["positive", "neutral", "negative"])
    }

    /// Uses the label's probability instead of a generated word (needs logprobs).
    #[must_use]
    pub fn by_probability(mut self) -> Self {
        self.classifier = self.classifier.mode(ClassifyMode::Probabilities);
        self
    }

    /// The bucket of `answer`, or `None` when the judge's reply names no bucket.
    ///
    /// # Errors
    ///
    /// The judge model's errors.
    pub async fn extract(&self, answer: &str) -> Result<Option<String>, JudgeError> {
        use psyche_core::Judge;
        if answer.trim().is_empty() {
            return Ok(None);
        }
        let sample = Sample::new("sentiment", psyche_core::Conversation::new());
        let verdict = self.classifier.judge(&sample, answer).await?;
        Ok(verdict.score.as_label().map(str::to_owned))
    }
}
