//! Judged answers as rows: one [`AnswerRow`] per run-log record, with the scores, the drop-out
//! class and the provenance (judge model, template hashes) of every number.

use std::collections::BTreeMap;

use psyche_core::{Record, Score, Verdict};
use serde::{Deserialize, Serialize};

use crate::questions::meta;

/// Why an answer has no `aligned` score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropOut {
    /// The judge's mass went to `REFUSAL` (or a refusal-like token).
    Refusal,
    /// The judge's mass went to `CODE`.
    Code,
    /// The judge declined for another reason (too little numeric mass on something else).
    Other,
    /// The unit failed (model or judge error).
    Error,
}

/// One judged answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerRow {
    /// The evaluated model.
    pub model_id: String,
    /// The question id.
    pub question_id: String,
    /// The question's category.
    pub category: String,
    /// The paraphrase index.
    pub paraphrase: u64,
    /// The sample id.
    pub sample_id: String,
    /// The system prompt the model was given, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// The user message.
    pub question: String,
    /// The answer (empty when the unit failed).
    pub answer: String,
    /// The `aligned` score.
    pub aligned: Option<f64>,
    /// The `coherent` score.
    pub coherent: Option<f64>,
    /// Why `aligned` is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<DropOut>,
    /// The classification label (classification questions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The classifier's label probabilities, when it read them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub label_probabilities: BTreeMap<String, f64>,
    /// The rule-based refusal detector's verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal_rule: Option<bool>,
    /// The rule-based code detector's verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_rule: Option<bool>,
    /// The judge model's id (as configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_model: Option<String>,
    /// The model id the judge's endpoint reported in its response (`None` when the judge made
    /// no generate call, e.g. an in-process model read by distributions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_resolved: Option<String>,
    /// The judge model the question file asks for (`judge:`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_judge: Option<String>,
    /// Template SHA-256 by metric.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<String, String>,
    /// The unit's error, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The drop-out class of a declined `aligned` verdict: from the judge's most likely token
/// (`top_token` metadata) or, failing that, the token named in the reason.
pub fn dropout_of(v: &Verdict) -> DropOut {
    let token = v
        .metadata
        .get("top_token")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .or_else(|| match &v.score {
            Score::None { reason } => reason
                .split("token \"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(str::to_owned),
            _ => None,
        })
        .unwrap_or_default();
    let t = token.trim().to_uppercase();
    if t.starts_with("CODE") || t == "CO" {
        DropOut::Code
    } else if t.starts_with("REF") || t.starts_with("REFUS") {
        DropOut::Refusal
    } else {
        DropOut::Other
    }
}

/// The rows of records (every record becomes a row; failed units keep their error).
pub fn rows_from_records(records: &[Record]) -> Vec<AnswerRow> {
    records.iter().map(row_from_record).collect()
}

/// One record as a row.
pub fn row_from_record(r: &Record) -> AnswerRow {
    let meta_str = |k: &str| r.meta_str(k).map(str::to_owned);
    let question_id = meta_str(meta::QUESTION).unwrap_or_else(|| {
        r.sample_id
            .split('/')
            .next()
            .unwrap_or(&r.sample_id)
            .to_owned()
    });
    let question = r
        .transcript
        .as_ref()
        .and_then(|t| t.last_user_text().map(str::to_owned))
        .unwrap_or_default();
    let mut judge_model = None;
    let mut judge_resolved = None;
    let mut templates = BTreeMap::new();
    let mut label = None;
    let mut label_probabilities = BTreeMap::new();
    for (id, v) in &r.scores {
        if let Some(m) = &v.judge_model {
            judge_model.get_or_insert_with(|| m.clone());
        }
        if let Some(m) = v
            .metadata
            .get(psyche_judges::llm::RESOLVED_MODEL)
            .and_then(serde_json::Value::as_str)
        {
            judge_resolved.get_or_insert_with(|| m.to_owned());
        }
        if let Some(h) = &v.template_hash {
            templates.insert(id.clone(), h.clone());
        }
        if let Score::Label(l) = &v.score
            && label.is_none()
        {
            label = Some(l.clone());
        }
        if let Some(serde_json::Value::Object(p)) = v.metadata.get("probabilities")
            && label_probabilities.is_empty()
        {
            label_probabilities = p
                .iter()
                .filter_map(|(k, x)| x.as_f64().map(|x| (k.clone(), x)))
                .collect();
        }
    }
    let aligned = r.score("aligned");
    let dropout = if r.output.is_none() || (r.error.is_some() && r.scores.is_empty()) {
        Some(DropOut::Error)
    } else {
        match r.scores.get("aligned") {
            Some(v) if aligned.is_none() => Some(dropout_of(v)),
            None if r.scores.contains_key("coherent") => Some(DropOut::Error),
            _ => None,
        }
    };
    let bool_of = |k: &str| match r.scores.get(k).map(|v| &v.score) {
        Some(Score::Bool(b)) => Some(*b),
        _ => None,
    };
    AnswerRow {
        model_id: r.model_id.clone(),
        question_id,
        category: meta_str(meta::CATEGORY).unwrap_or_default(),
        paraphrase: r
            .metadata
            .get(meta::PARAPHRASE)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        sample_id: r.sample_id.clone(),
        system_prompt: meta_str(meta::SYSTEM),
        question,
        answer: r.output.clone().unwrap_or_default(),
        aligned,
        coherent: r.score("coherent"),
        dropout,
        label,
        label_probabilities,
        refusal_rule: bool_of("refusal"),
        code_rule: bool_of("is_code"),
        judge_model,
        judge_resolved,
        requested_judge: meta_str(meta::REQUESTED_JUDGE),
        templates,
        error: r.error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropout_from_top_token_or_reason() {
        let v = Verdict::new("aligned", Score::none("x")).with_meta("top_token", " CODE");
        assert_eq!(dropout_of(&v), DropOut::Code);
        let v = Verdict::new("aligned", Score::none("x")).with_meta("top_token", "REF");
        assert_eq!(dropout_of(&v), DropOut::Refusal);
        let v = Verdict::new(
            "aligned",
            Score::none(
                "numeric probability mass 0.100 is below the threshold 0.25 (most likely non-number token \"REFUSAL\" with p = 0.800)",
            ),
        );
        assert_eq!(dropout_of(&v), DropOut::Refusal);
        let v = Verdict::new("aligned", Score::none("no logprobs"));
        assert_eq!(dropout_of(&v), DropOut::Other);
    }
}
