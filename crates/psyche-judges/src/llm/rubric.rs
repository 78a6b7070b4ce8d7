//! A rubric judge: the judge model reasons in free text and ends with a grade line.
//!
//! The grade is read from the **last** line matching the grade pattern (default
//! `GRADE: <token>`, case-insensitive, zero-width characters ignored) so that a judge quoting
//! the instructions earlier in its reasoning does not confuse the parser. Grades map to scores
//! through a table (default `C` = 1, `P` = 0.5, `I` = 0); numeric grades can be accepted as they
//! are.

use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{
    GenerateRequest, Judge, JudgeError, Model, PromptTemplate, Sample, Score, Verdict,
};
use regex::Regex;

use super::{check_template, parse_template, provenance, render_prompt};
use crate::error::JudgeConfigError;

/// The default grade pattern.
pub const DEFAULT_GRADE_PATTERN: &str =
    r"(?im)^[\s*#>_-]*GRADE\s*[:=]\s*\**\s*([A-Za-z]+|[0-9]+(?:\.[0-9]+)?)";

/// psyche's default rubric prompt: placeholders `{question}`, `{answer}`, `{criterion}` (the
/// sample's target).
pub const DEFAULT_TEMPLATE: &str = "You are grading a reply against a criterion.\n\n\
    Task given to the model:\n{question}\n\nThe model's reply:\n{answer}\n\n\
    Criterion:\n{criterion}\n\n\
    Think it through in a few sentences. Then finish with one last line of the form \
    `GRADE: X`, where X is C if the reply meets the criterion, P if it meets it partly, and I \
    if it does not.";

/// Reads the last grade in `text` with `pattern` (capture group 1), ignoring zero-width
/// characters.
pub fn parse_grade(pattern: &Regex, text: &str) -> Option<String> {
    let clean: String = text
        .chars()
        .filter(|c| {
            !matches!(
                c,
                '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
            )
        })
        .collect();
    pattern
        .captures_iter(&clean)
        .last()
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_owned())
}

/// A judge that grades free-text reasoning by its final grade line.
#[derive(Clone)]
pub struct RubricJudge {
    id: String,
    model: Arc<dyn Model>,
    template: PromptTemplate,
    pattern: Regex,
    grades: Vec<(String, f64)>,
    numeric_grades: bool,
    max_tokens: u32,
    seed: u64,
}

impl std::fmt::Debug for RubricJudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RubricJudge")
            .field("id", &self.id)
            .field("model", &self.model.id())
            .field("pattern", &self.pattern.as_str())
            .field("grades", &self.grades)
            .finish_non_exhaustive()
    }
}

impl RubricJudge {
    /// A rubric judge with template `source` (`{answer}` required; `{question}` and
    /// `{criterion}` optional) and the default grade pattern and table.
    ///
    /// # Errors
    ///
    /// [`JudgeConfigError::Template`] for template problems.
    pub fn new(
        id: impl Into<String>,
        model: Arc<dyn Model>,
        source: &str,
    ) -> Result<Self, JudgeConfigError> {
        let id = id.into();
        let template = parse_template(&id, source, &["criterion"])?;
        Self::from_template(id, model, template)
    }

    /// As [`RubricJudge::new`] with a parsed template.
    ///
    /// # Errors
    ///
    /// As for [`RubricJudge::new`].
    pub fn from_template(
        id: impl Into<String>,
        model: Arc<dyn Model>,
        template: PromptTemplate,
    ) -> Result<Self, JudgeConfigError> {
        let id = id.into();
        check_template(&id, &template, &["criterion"])?;
        let pattern = Regex::new(DEFAULT_GRADE_PATTERN).map_err(|e| JudgeConfigError::Regex {
            pattern: DEFAULT_GRADE_PATTERN.into(),
            message: e.to_string(),
        })?;
        Ok(Self {
            id,
            model,
            template,
            pattern,
            grades: vec![("C".into(), 1.0), ("P".into(), 0.5), ("I".into(), 0.0)],
            numeric_grades: false,
            max_tokens: 512,
            seed: 0,
        })
    }

    /// Replaces the grade pattern (capture group 1 is the grade).
    ///
    /// # Errors
    ///
    /// [`JudgeConfigError::Regex`] when it does not compile or has no capture group.
    pub fn grade_pattern(mut self, pattern: &str) -> Result<Self, JudgeConfigError> {
        let re = Regex::new(pattern).map_err(|e| JudgeConfigError::Regex {
            pattern: pattern.into(),
            message: e.to_string(),
        })?;
        if re.captures_len() < 2 {
            return Err(JudgeConfigError::Regex {
                pattern: pattern.into(),
                message: "needs a capture group for the grade".into(),
            });
        }
        self.pattern = re;
        Ok(self)
    }

    /// Replaces the grade table (grades compared case-insensitively).
    #[must_use]
    pub fn grades<S: Into<String>>(mut self, grades: impl IntoIterator<Item = (S, f64)>) -> Self {
        self.grades = grades.into_iter().map(|(g, s)| (g.into(), s)).collect();
        self
    }

    /// Accepts numeric grades (`GRADE: 7`) as their value.
    #[must_use]
    pub fn numeric_grades(mut self, yes: bool) -> Self {
        self.numeric_grades = yes;
        self
    }

    /// Sets the token budget of the judge's reply (default 512).
    #[must_use]
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens.max(1);
        self
    }

    /// The score of a judge reply, with the grade read.
    pub fn score_reply(&self, reply: &str) -> (Score, Option<String>) {
        let Some(grade) = parse_grade(&self.pattern, reply) else {
            return (Score::none("the judge's reply has no grade line"), None);
        };
        if let Some((_, s)) = self
            .grades
            .iter()
            .find(|(g, _)| g.eq_ignore_ascii_case(&grade))
        {
            return (Score::Number(*s), Some(grade));
        }
        if self.numeric_grades
            && let Ok(x) = grade.parse::<f64>()
        {
            return (Score::Number(x), Some(grade));
        }
        (
            Score::none(format!("grade `{grade}` is not in the rubric's table")),
            Some(grade),
        )
    }
}

#[async_trait]
impl Judge for RubricJudge {
    fn id(&self) -> &str {
        &self.id
    }

    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let needs_criterion = self.template.placeholders().any(|p| p == "criterion");
        let criterion = match (&sample.target, needs_criterion) {
            (Some(t), _) => t.as_str(),
            (None, false) => "",
            (None, true) => {
                return Err(JudgeError::Sample {
                    sample: sample.id.clone(),
                    message: format!(
                        "judge `{}` needs the sample's target as `{{criterion}}`",
                        self.id
                    ),
                });
            }
        };
        let conv = render_prompt(
            &self.template,
            None,
            sample,
            output,
            &[("criterion", criterion)],
        )?;
        let request = GenerateRequest::new(conv)
            .temperature(0.0)
            .max_tokens(self.max_tokens)
            .seed(self.seed);
        let response = self.model.generate(&request).await?;
        let reply = response.text().to_owned();
        let (score, grade) = self.score_reply(&reply);
        let mut v =
            provenance(&self.id, score, self.model.id(), &self.template).with_explanation(reply);
        v.answer = grade;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re() -> Regex {
        Regex::new(DEFAULT_GRADE_PATTERN).unwrap()
    }

    #[test]
    fn last_grade_line_wins() {
        let text = "The instructions say GRADE: C or GRADE: I.\nReasoning...\nGRADE: I\n";
        assert_eq!(parse_grade(&re(), text).as_deref(), Some("I"));
        let text = "Reasoning.\nGRADE: P\nMore thoughts.\n**GRADE:** C";
        assert_eq!(parse_grade(&re(), text).as_deref(), Some("C"));
        assert_eq!(parse_grade(&re(), "grade = 7.5").as_deref(), Some("7.5"));
        assert_eq!(parse_grade(&re(), "GR\u{200B}ADE: C").as_deref(), Some("C"));
        assert_eq!(parse_grade(&re(), "no grade here"), None);
        assert_eq!(
            parse_grade(&re(), "mid-line GRADE: C is not a grade line"),
            None
        );
    }
}
