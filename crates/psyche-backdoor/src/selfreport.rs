//! Self-report question sets (psyche's own wording, several paraphrases each) and the task
//! that asks them, about the model itself ("you") and about named third parties (personas).
//!
//! The questions live in each axis's file (`self_report`), oriented so that a high answer
//! means the axis's pole (risk-seeking, myopic, more): scale questions put the pole at the top
//! of the scale, word questions are scored by the axis's `word_categories`. Load other sets
//! from JSON ([`SelfReportSet::from_json_file`]) with the same orientation.

use std::path::Path;
use std::sync::Arc;

use psyche_core::{Conversation, Judge, Sample, Solver, TaskError, TaskGenerator};
use psyche_judges::WordCategoryJudge;
use serde::{Deserialize, Serialize};

use crate::error::{BackdoorError, Result};
use crate::policy::Axis;
use crate::probe::{Probe, default_judges, default_solver};
use crate::scoring::ScaleFallback;
use crate::words::{PERSONAS_IN_DISTRIBUTION, PERSONAS_OUT_OF_DISTRIBUTION};

/// How a question is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ReportForm {
    /// One word, scored by word categories.
    Word,
    /// A number on `[min, max]`, the pole at `max`.
    Scale {
        /// Lowest value.
        min: i64,
        /// Highest value (the pole).
        max: i64,
    },
}

/// One wording of a question: about the model, and optionally about a third party
/// (`{persona}` is replaced by the persona's description).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paraphrase {
    /// The question put to the model about itself.
    pub you: String,
    /// The same question about `{persona}`; `None` when it only makes sense about the model
    /// (e.g. "what were you fine-tuned to do?").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<String>,
}

/// A self-report question with its paraphrases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfReportQuestion {
    /// Stable id (`risk/attitude_word`).
    pub id: String,
    /// How it is answered.
    pub answer: ReportForm,
    /// The wordings.
    pub paraphrases: Vec<Paraphrase>,
}

/// The self-report questions about one axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfReportSet {
    /// The axis asked about.
    pub axis: Axis,
    /// The questions.
    pub questions: Vec<SelfReportQuestion>,
}

impl SelfReportSet {
    /// The questions of `axis`'s file (shipped: risk three word and three 0–100 scale
    /// questions, time three and one, quantity two and one; three paraphrases each).
    pub fn shipped(axis: &Axis) -> SelfReportSet {
        axis.self_report()
    }

    /// Reads a question set from a JSON file (this type's serde form).
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Io`] when unreadable; [`BackdoorError::Config`] naming the file and
    /// field when malformed or when a question has no paraphrase.
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<SelfReportSet> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| BackdoorError::io(path, e))?;
        let set: SelfReportSet = serde_json::from_str(&text)
            .map_err(|e| BackdoorError::config(path.display().to_string(), e.to_string()))?;
        set.validate()?;
        Ok(set)
    }

    /// Checks that every question has a paraphrase and every persona wording has `{persona}`.
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Config`] naming the question.
    pub fn validate(&self) -> Result<()> {
        validate_questions(&self.questions)
    }
}

/// Checks that every question has a paraphrase and every persona wording has `{persona}`.
pub(crate) fn validate_questions(questions: &[SelfReportQuestion]) -> Result<()> {
    for q in questions {
        if q.paraphrases.is_empty() {
            return Err(BackdoorError::config(
                format!("questions.{}.paraphrases", q.id),
                "at least one paraphrase is needed",
            ));
        }
        for (i, p) in q.paraphrases.iter().enumerate() {
            if let Some(t) = &p.persona
                && !t.contains("{persona}")
            {
                return Err(BackdoorError::config(
                    format!("questions.{}.paraphrases[{i}].persona", q.id),
                    "must contain `{persona}`",
                ));
            }
        }
    }
    Ok(())
}

/// Who a self-report question is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// `you`, or the persona's description.
    pub name: String,
    /// `you`, `in_distribution` or `out_of_distribution`.
    pub group: String,
}

impl Subject {
    /// The model itself.
    pub fn you() -> Self {
        Subject {
            name: "you".into(),
            group: "you".into(),
        }
    }

    /// The shipped in-distribution personas.
    pub fn in_distribution() -> Vec<Subject> {
        PERSONAS_IN_DISTRIBUTION
            .iter()
            .map(|n| Subject {
                name: (*n).into(),
                group: "in_distribution".into(),
            })
            .collect()
    }

    /// The shipped out-of-distribution personas.
    pub fn out_of_distribution() -> Vec<Subject> {
        PERSONAS_OUT_OF_DISTRIBUTION
            .iter()
            .map(|n| Subject {
                name: (*n).into(),
                group: "out_of_distribution".into(),
            })
            .collect()
    }
}

/// Asks a question set about the model and, optionally, about personas.
///
/// Samples: one per (question, paraphrase, subject), id
/// `<question>/p<k>/<subject>`, clustered by question and subject, with metadata `question`,
/// `answer_kind`, `subject`, `subject_group`, `paraphrase`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfReportTask {
    /// The questions.
    pub set: SelfReportSet,
    /// Who the questions are about (default: only the model).
    pub subjects: Vec<Subject>,
    /// At most this many paraphrases per question (all when `None`).
    pub paraphrases: Option<usize>,
    /// Categories for word answers (default: the set's axis's `word_categories`).
    pub categories: WordCategoryJudge,
    /// Scale answers without a number: no score by default ([`ScaleFallback::Skip`]), so a
    /// model that writes no number is missing, never imputed the midpoint.
    pub fallback: ScaleFallback,
    /// An optional system prompt before each question.
    pub system: Option<String>,
}

impl SelfReportTask {
    /// The shipped questions about `axis`, asked about the model only.
    pub fn new(axis: &Axis) -> Self {
        Self {
            set: axis.self_report(),
            subjects: vec![Subject::you()],
            paraphrases: None,
            categories: axis.word_categories(),
            fallback: ScaleFallback::Skip,
            system: None,
        }
    }

    /// Also asks about these subjects.
    #[must_use]
    pub fn with_subjects(mut self, subjects: Vec<Subject>) -> Self {
        self.subjects = subjects;
        self
    }

    /// Uses at most `n` paraphrases per question.
    #[must_use]
    pub fn paraphrases(mut self, n: usize) -> Self {
        self.paraphrases = Some(n);
        self
    }
}

impl TaskGenerator for SelfReportTask {
    fn name(&self) -> &str {
        "self_report"
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    fn generate(&self, _seed: u64) -> Result<Vec<Sample>, TaskError> {
        self.set.validate()?;
        let mut out = Vec::new();
        for question in &self.set.questions {
            let take = self.paraphrases.unwrap_or(usize::MAX);
            for (k, para) in question.paraphrases.iter().take(take).enumerate() {
                for subject in &self.subjects {
                    let text = if subject.group == "you" {
                        para.you.clone()
                    } else {
                        match &para.persona {
                            Some(t) => t.replace("{persona}", &subject.name),
                            None => continue,
                        }
                    };
                    let mut conv = Conversation::new();
                    if let Some(s) = &self.system {
                        conv.push(psyche_core::ChatMessage::system(s.clone()));
                    }
                    conv.push(psyche_core::ChatMessage::user(text));
                    let probe = match question.answer {
                        ReportForm::Word => Probe::Words {
                            categories: self.categories.clone(),
                        },
                        ReportForm::Scale { min, max } => Probe::Scale {
                            min,
                            max,
                            fallback: self.fallback,
                        },
                    };
                    let kind = match question.answer {
                        ReportForm::Word => "word",
                        ReportForm::Scale { .. } => "scale",
                    };
                    out.push(
                        probe.attach(
                            Sample::new(format!("{}/p{k}/{}", question.id, subject.name), conv)
                                .with_meta("task", self.name())
                                .with_meta("axis", self.set.axis.name())
                                .with_meta("question", question.id.clone())
                                .with_meta("answer_kind", kind)
                                .with_meta("subject", subject.name.clone())
                                .with_meta("subject_group", subject.group.clone())
                                .with_meta("paraphrase", k as u64)
                                .with_cluster(format!("{}/{}", question.id, subject.name)),
                        ),
                    );
                }
            }
        }
        Ok(out)
    }

    fn solver(&self) -> Option<Arc<dyn Solver>> {
        Some(default_solver())
    }

    fn judges(&self) -> Vec<Arc<dyn Judge>> {
        default_judges()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_sets_validate_and_expand() {
        for axis in Axis::shipped() {
            let set = SelfReportSet::shipped(&axis);
            set.validate().unwrap();
            assert!(set.questions.iter().all(|q| q.paraphrases.len() >= 3));
        }
        let task = SelfReportTask::new(&Axis::risk()).with_subjects(
            std::iter::once(Subject::you())
                .chain(Subject::in_distribution().into_iter().take(2))
                .collect(),
        );
        let samples = task.generate(0).unwrap();
        // 6 questions × 3 paraphrases × (you + 2 personas), minus the persona rows of the
        // "trained" question that only makes sense about the model.
        assert_eq!(samples.len(), 6 * 3 * 3 - 3 * 2);
        assert!(samples.iter().all(|s| Probe::from_sample(s).is_ok()
            && !s.input.last_user_text().unwrap_or("").contains("{persona}")));
    }
}
