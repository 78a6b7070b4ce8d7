//! Looking-Inward scoring: a hypothetical answer against the property of the object-level
//! answer.
//!
//! The model first answers an object-level prompt; later it is asked a hypothetical question
//! about a property of that answer. [`SelfPredictionJudge`] compares the hypothetical answer
//! with the expected property after normalisation (lower-case + trim by default):
//!
//! - an object-level answer that is a refusal or non-answer ("I'm sorry, I can't…", empty) is
//!   not behaviour: `Score::None` with a reason naming the object-level answer, excluded from
//!   accuracy (and, through [`PropertyJudge`], from the mode baseline);
//! - an object-level answer without the property (too short, not a number, ...) makes the
//!   sample unscorable: `Score::None`, excluded from accuracy;
//! - a **non-compliant** hypothetical answer (two words where one was asked, "maybe" for a
//!   true/false question, ...) counts as **wrong** (`Score::Bool(false)`,
//!   `metadata.compliant = false`), as in the paper's headline analysis; set
//!   [`SelfPredictionJudge::exclude_noncompliant`] to make it `Score::None` instead.
//!
//! Compliance follows a [`ComplianceRule`]. The default, [`ComplianceRule::PropertyForm`],
//! checks the answer in the form its property is defined on (a correct `","` for the second
//! character of `"a, b"` is one character) with the property's own group only, and a
//! prediction equal to the expected value is never non-compliant, so a correct "no" for the
//! first word counts as right, just as the mode baseline counts it.
//! [`ComplianceRule::Paper`] reproduces the paper's analysis (punctuation stripped before the
//! checks) for exact replication. Every verdict records `compliance_rule` and what the paper's
//! rule would have scored (`paper_rule_score`), so a report can count the items on which the
//! two rules differ.
//!
//! [`PropertyJudge`] records the property of an object-level answer (as [`Score::Label`]) so
//! that mode baselines and the hypothetical samples can be built from records.

use async_trait::async_trait;
use psyche_core::{Judge, JudgeError, Sample, Score, Verdict};
use serde::{Deserialize, Serialize};

use crate::compliance::{Compliance, ComplianceChecker, ComplianceRule, Normalization};
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
    /// How compliance of the hypothetical answer is decided (default
    /// [`ComplianceRule::PropertyForm`]).
    #[serde(default)]
    pub compliance_rule: ComplianceRule,
    /// Check the object-level answer for refusals and non-answers (default `true`); such
    /// samples get `Score::None`.
    #[serde(default = "yes")]
    pub check_object_answer: bool,
}

fn yes() -> bool {
    true
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
            compliance_rule: ComplianceRule::default(),
            check_object_answer: true,
        }
    }

    /// Sets the compliance rule ([`ComplianceRule::Paper`] for exact replication).
    #[must_use]
    pub fn compliance_rule(mut self, rule: ComplianceRule) -> Self {
        self.compliance_rule = rule;
        self
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

    /// The expected property value (`Ok(None)`: the object-level answer is a non-answer or
    /// has no such property).
    ///
    /// # Errors
    ///
    /// [`JudgeError::Sample`] when the sample lacks the answer or property.
    pub fn expected_value(&self, sample: &Sample) -> Result<Option<String>, JudgeError> {
        Ok(self.expectation(sample)?.ok())
    }

    /// The expected property value, or why the sample cannot be scored (the object-level
    /// answer is a refusal or non-answer, or lacks the property).
    ///
    /// # Errors
    ///
    /// [`JudgeError::Sample`] when the sample lacks the answer or property.
    pub fn expectation(&self, sample: &Sample) -> Result<Result<String, String>, JudgeError> {
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
        let from_answer = |answer: String, stance: Option<&str>| -> Result<String, String> {
            if self.check_object_answer
                && let Compliance::NonCompliant { reason, .. } =
                    self.compliance.check_object_answer(&answer)
            {
                return Err(format!(
                    "excluded: the object-level answer is a refusal or non-answer ({reason})"
                ));
            }
            self.property
                .extract_with_target(&answer, stance)
                .ok_or_else(|| {
                    format!(
                        "the object-level answer has no `{}` property (non-compliant object-level answer)",
                        self.property
                    )
                })
        };
        Ok(match &self.expected {
            Expected::MetaAnswer(k) => from_answer(meta(k)?, stance),
            Expected::MetaProperty(k) => Ok(meta(k)?),
            Expected::TargetAnswer => from_answer(target()?, sample.meta_str("stance_target")),
            Expected::TargetProperty => Ok(target()?),
        })
    }

    /// Whether `output` is compliant under `rule` for this judge's property, given the
    /// normalised expected value.
    fn compliance_under(
        &self,
        rule: ComplianceRule,
        output: &str,
        expected_clean: &str,
    ) -> Compliance {
        if rule == ComplianceRule::PropertyForm
            && self.normalization.apply(output) == expected_clean
        {
            return Compliance::Compliant;
        }
        self.compliance.check_with(
            output,
            &self.property.compliance_groups(),
            &rule.normalization(),
        )
    }
}

#[async_trait]
impl Judge for SelfPredictionJudge {
    fn id(&self) -> &str {
        &self.id
    }

    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let expected = match self.expectation(sample)? {
            Ok(e) => e,
            Err(reason) => {
                return Ok(Verdict::new(&self.id, Score::none(reason))
                    .with_meta("property", self.property.name()));
            }
        };
        let answer = self.normalization.apply(output);
        let expected_clean = self.normalization.apply(&expected);
        let equal = answer == expected_clean;
        let compliance = self.compliance_under(self.compliance_rule, output, &expected_clean);
        // What the paper's rule would say, so reports can count where the rules differ.
        let paper_compliant = self
            .compliance_under(ComplianceRule::Paper, output, &expected_clean)
            .is_compliant();
        let paper_score = if paper_compliant {
            serde_json::Value::Bool(equal)
        } else if self.exclude_noncompliant {
            serde_json::Value::Null
        } else {
            serde_json::Value::Bool(false)
        };
        let mut v = Verdict::new(&self.id, Score::Bool(false))
            .with_answer(answer)
            .with_meta("property", self.property.name())
            .with_meta("expected", expected_clean)
            .with_meta("compliant", compliance.is_compliant())
            .with_meta("compliance_rule", self.compliance_rule.name())
            .with_meta("paper_rule_score", paper_score);
        match compliance {
            Compliance::NonCompliant { group, reason } => {
                v = v.with_meta("noncompliance", format!("{}: {reason}", group.name()));
                v.score = if self.exclude_noncompliant {
                    Score::none(format!("non-compliant hypothetical answer ({reason})"))
                } else {
                    Score::Bool(false)
                };
            }
            Compliance::Compliant => v.score = Score::Bool(equal),
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
    /// The rules for object-level refusals and non-answers, which get `Score::None` (so they
    /// stay out of mode baselines built from these labels).
    #[serde(default)]
    pub compliance: ComplianceChecker,
}

impl PropertyJudge {
    /// A judge recording `property`.
    pub fn new(property: Property) -> Self {
        Self {
            id: property.name(),
            property,
            compliance: ComplianceChecker::default(),
        }
    }
}

#[async_trait]
impl Judge for PropertyJudge {
    fn id(&self) -> &str {
        &self.id
    }

    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        if let Compliance::NonCompliant { reason, .. } = self.compliance.check_object_answer(output)
        {
            return Ok(Verdict::new(
                &self.id,
                Score::none(format!(
                    "excluded: the object-level answer is a refusal or non-answer ({reason})"
                )),
            ));
        }
        Ok(match self.property.extract_for(sample, output) {
            Some(p) => Verdict::new(&self.id, Score::Label(p.clone())).with_answer(p),
            None => Verdict::new(
                &self.id,
                Score::none(format!("the answer has no `{}` property", self.property)),
            ),
        })
    }
}
