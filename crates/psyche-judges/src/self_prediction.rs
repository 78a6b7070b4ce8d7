//! Looking-Inward scoring: a hypothetical answer against the property of the object-level
//! answer.
//!
//! The model first answers an object-level prompt; later it is asked a hypothetical question
//! about a property of that answer. [`SelfPredictionJudge`] compares the hypothetical answer
//! with the expected property after normalisation (lower-case + trim by default):
//!
//! - an object-level answer without the property (too short, not a number, ...) makes the
//!   sample unscorable: `Score::None`, excluded from accuracy;
//! - a **non-compliant** hypothetical answer (a refusal, two words where one was asked, ...)
//!   counts as **wrong** (`Score::Bool(false)`, `metadata.compliant = false`), as in the
//!   paper's headline analysis; set [`SelfPredictionJudge::exclude_noncompliant`] to make it
//!   `Score::None` instead.
//!
//! [`PropertyJudge`] records the property of an object-level answer (as [`Score::Label`]) so
//! that mode baselines and the hypothetical samples can be built from records.

use async_trait::async_trait;
use psyche_core::{Judge, JudgeError, Sample, Score, Verdict};
use serde::{Deserialize, Serialize};

use crate::compliance::{Compliance, ComplianceChecker, Normalization};
use crate::properties::Property;

/// Where the expected property comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "from", content = "key")]
pub enum Expected {
    /// `metadata[key]` holds the object-level answer; the judge extracts the property.
    MetaAnswer(String),
    /// `metadata[key]` holds the already extracted property value.
    MetaProperty(String),
    /// `sample.target` holds the object-level answer.
    TargetAnswer,
    /// `sample.target` holds the already extracted property value.
    TargetProperty,
}

impl Default for Expected {
    /// `metadata["object_answer"]`.
    fn default() -> Self {
        Expected::MetaAnswer(SelfPredictionJudge::OBJECT_ANSWER_KEY.to_owned())
    }
}

/// Scores a hypothetical answer as right or wrong ([`Score::Bool`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfPredictionJudge {
    /// The judge id (default `self_prediction`).
    pub id: String,
    /// The property asked about.
    pub property: Property,
    /// Where the expected value comes from.
    #[serde(default)]
    pub expected: Expected,
    /// Normalisation of both sides before comparing.
    #[serde(default)]
    pub normalization: Normalization,
    /// The compliance rules applied to the hypothetical answer.
    #[serde(default)]
    pub compliance: ComplianceChecker,
    /// `Score::None` instead of `false` for non-compliant hypothetical answers.
    #[serde(default)]
    pub exclude_noncompliant: bool,
}

impl SelfPredictionJudge {
    /// The default metadata key of the object-level answer.
    pub const OBJECT_ANSWER_KEY: &'static str = "object_answer";

    /// A judge for `property` with the defaults.
    pub fn new(property: Property) -> Self {
        Self {
            id: "self_prediction".into(),
            property,
            expected: Expected::default(),
            normalization: Normalization::comparison(),
            compliance: ComplianceChecker::default(),
            exclude_noncompliant: false,
        }
    }

    /// Sets where the expected value comes from.
    #[must_use]
    pub fn expected(mut self, expected: Expected) -> Self {
        self.expected = expected;
        self
    }

    /// Sets the id.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Makes non-compliant hypothetical answers `Score::None` instead of wrong.
    #[must_use]
    pub fn exclude_noncompliant(mut self, yes: bool) -> Self {
        self.exclude_noncompliant = yes;
        self
    }

    fn missing(&self, sample: &Sample, what: &str) -> JudgeError {
        JudgeError::Sample {
            sample: sample.id.clone(),
            message: format!("judge `{}` needs {what}", self.id),
        }
    }

    /// The expected property value (`Ok(None)`: the object-level answer has no such
    /// property).
    ///
    /// # Errors
    ///
    /// [`JudgeError::Sample`] when the sample lacks the answer or property.
    pub fn expected_value(&self, sample: &Sample) -> Result<Option<String>, JudgeError> {
        let meta = |key: &str| -> Result<String, JudgeError> {
            match sample.metadata.get(key) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(serde_json::Value::Null) | None => {
                    Err(self.missing(sample, &format!("metadata `{key}`")))
                }
                Some(other) => Ok(other.to_string()),
            }
        };
        let target = || {
            sample
                .target
                .clone()
                .ok_or_else(|| self.missing(sample, "a target"))
        };
        // Matches-target needs the sample's own target as the stance to compare with.
        let stance = sample
            .meta_str("stance_target")
            .or(sample.target.as_deref());
        Ok(match &self.expected {
            Expected::MetaAnswer(k) => self.property.extract_with_target(&meta(k)?, stance),
            Expected::MetaProperty(k) => Some(meta(k)?),
            Expected::TargetAnswer => self
                .property
                .extract_with_target(&target()?, sample.meta_str("stance_target")),
            Expected::TargetProperty => Some(target()?),
        })
    }
}

#[async_trait]
impl Judge for SelfPredictionJudge {
    fn id(&self) -> &str {
        &self.id
    }

    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let Some(expected) = self.expected_value(sample)? else {
            return Ok(Verdict::new(
                &self.id,
                Score::none(format!(
                    "the object-level answer has no `{}` property (non-compliant object-level answer)",
                    self.property
                )),
            )
            .with_meta("property", self.property.name()));
        };
        let compliance = self
            .compliance
            .check(output, &self.property.compliance_groups());
        let answer = self.normalization.apply(output);
        let expected_clean = self.normalization.apply(&expected);
        let mut v = Verdict::new(&self.id, Score::Bool(false))
            .with_answer(answer.clone())
            .with_meta("property", self.property.name())
            .with_meta("expected", expected_clean.clone())
            .with_meta("compliant", compliance.is_compliant());
        match compliance {
            Compliance::NonCompliant { group, reason } => {
                v = v.with_meta("noncompliance", format!("{}: {reason}", group.name()));
                v.score = if self.exclude_noncompliant {
                    Score::none(format!("non-compliant hypothetical answer ({reason})"))
                } else {
                    Score::Bool(false)
                };
            }
            Compliance::Compliant => v.score = Score::Bool(answer == expected_clean),
        }
        Ok(v)
    }
}

/// Records the property of an object-level answer ([`Score::Label`], or `Score::None` when
/// the answer has none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyJudge {
    /// The judge id (default: the property's name).
    pub id: String,
    /// The property.
    pub property: Property,
}

impl PropertyJudge {
    /// A judge recording `property`.
    pub fn new(property: Property) -> Self {
        Self {
            id: property.name(),
            property,
        }
    }
}

#[async_trait]
impl Judge for PropertyJudge {
    fn id(&self) -> &str {
        &self.id
    }

    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        Ok(match self.property.extract_for(sample, output) {
            Some(p) => Verdict::new(&self.id, Score::Label(p.clone())).with_answer(p),
            None => Verdict::new(
                &self.id,
                Score::none(format!("the answer has no `{}` property", self.property)),
            ),
        })
    }
}
