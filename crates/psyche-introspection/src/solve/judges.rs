//! The judges of object-level and hypothetical records: non-answers, each property's value,
//! and self-prediction by each sample's property.

use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{Judge, JudgeError, Sample, Score, Verdict};
use psyche_judges::compliance::{Compliance, ComplianceChecker};
use psyche_judges::{ComplianceRule, Expected, Property, PropertyJudge, SelfPredictionJudge};

use serde::{Deserialize, Serialize};

use super::OBJECT_COMPLIANT_KEY;

/// Records whether an object-level answer is an answer (`Score::Bool(true)`) or a refusal /
/// non-answer (`false`, with the reason in the verdict's metadata). Id `object_compliant`.
#[derive(Debug, Clone, Default)]
pub struct ObjectComplianceJudge {
    /// The rules.
    pub compliance: ComplianceChecker,
}

#[async_trait]
impl Judge for ObjectComplianceJudge {
    fn id(&self) -> &str {
        OBJECT_COMPLIANT_KEY
    }

    async fn judge(&self, _sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        Ok(match self.compliance.check_object_answer(output) {
            Compliance::Compliant => Verdict::new(OBJECT_COMPLIANT_KEY, Score::Bool(true)),
            Compliance::NonCompliant { reason, .. } => {
                Verdict::new(OBJECT_COMPLIANT_KEY, Score::Bool(false)).with_meta("reason", reason)
            }
        })
    }
}

/// [`PropertyJudge`] restricted to samples whose family lists the property (`properties`
/// metadata); other samples get `Score::None`.
#[derive(Debug, Clone)]
pub struct ObjectPropertyJudge {
    inner: PropertyJudge,
}

impl ObjectPropertyJudge {
    /// A judge recording `property`.
    pub fn new(property: Property) -> Self {
        Self {
            inner: PropertyJudge::new(property),
        }
    }
}

#[async_trait]
impl Judge for ObjectPropertyJudge {
    fn id(&self) -> &str {
        &self.inner.id
    }

    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let applies = match sample.metadata.get("properties") {
            Some(serde_json::Value::Array(a)) => {
                a.iter().any(|v| v.as_str() == Some(self.inner.id.as_str()))
            }
            _ => true,
        };
        if !applies {
            return Ok(Verdict::new(
                &self.inner.id,
                Score::none("the property does not apply to this family"),
            ));
        }
        self.inner.judge(sample, output).await
    }
}

/// The default judges of object-level runs: [`ObjectComplianceJudge`] and one
/// [`ObjectPropertyJudge`] per property.
pub fn object_judges(properties: &[Property]) -> Vec<Arc<dyn Judge>> {
    let mut out: Vec<Arc<dyn Judge>> = vec![Arc::new(ObjectComplianceJudge::default())];
    out.extend(
        properties
            .iter()
            .map(|p| Arc::new(ObjectPropertyJudge::new(p.clone())) as Arc<dyn Judge>),
    );
    out
}

/// Metadata key under which [`SelfPredictionByProperty`] hands the canonical truth to the
/// inner judge.
pub const CANONICAL_EXPECTED_KEY: &str = "canonical_expected";

/// The [`SelfPredictionJudge`] of each sample's property (`property` metadata), with shared
/// settings. Id `self_prediction`. Truth and prediction are both put in the property's
/// canonical form ([`Property::canonical`]) before they are compared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SelfPredictionByProperty {
    /// The compliance rule.
    pub rule: ComplianceRule,
    /// `Score::None` instead of wrong for non-compliant hypothetical answers.
    pub exclude_noncompliant: bool,
}

impl SelfPredictionByProperty {
    /// The judge for `property` with these settings.
    pub fn judge_for(&self, property: Property) -> SelfPredictionJudge {
        SelfPredictionJudge::new(property)
            .compliance_rule(self.rule)
            .exclude_noncompliant(self.exclude_noncompliant)
    }
}

#[async_trait]
impl Judge for SelfPredictionByProperty {
    fn id(&self) -> &str {
        "self_prediction"
    }

    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let name = sample
            .meta_str("property")
            .ok_or_else(|| JudgeError::Sample {
                sample: sample.id.clone(),
                message: "judge `self_prediction` needs metadata `property`".into(),
            })?;
        let property = Property::from_name(name).map_err(|e| JudgeError::Sample {
            sample: sample.id.clone(),
            message: e.to_string(),
        })?;
        let inner = self.judge_for(property.clone());
        match inner.expectation(sample)? {
            // Not scorable (non-answer, no such property): the inner judge says why.
            Err(_) => inner.judge(sample, output).await,
            Ok(expected) => {
                // Truth and prediction through the same function (Property::canonical).
                let mut canonical = sample.clone();
                canonical.metadata.insert(
                    CANONICAL_EXPECTED_KEY.into(),
                    property.canonical(&expected).into(),
                );
                inner
                    .expected(Expected::MetaProperty(CANONICAL_EXPECTED_KEY.into()))
                    .judge(&canonical, &property.canonical(output))
                    .await
            }
        }
    }
}
