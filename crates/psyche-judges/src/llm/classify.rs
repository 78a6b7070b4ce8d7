//! A classification judge: the judge model puts the output in one of N labels.
//!
//! Two modes: [`ClassifyMode::Generate`] reads the label from a short greedy reply (works on
//! every backend, any label length); [`ClassifyMode::Probabilities`] reads P(label) from the
//! first answer token and picks the most likely label (labels should be single tokens, such as
//! `TRUE`/`FALSE`; backends without logprobs are sampled). Uses: TRUE / FALSE / UNKNOWN
//! factual checks, which company made a model, which language a text is in.

use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{
    GenerateRequest, Judge, JudgeError, Model, OptionQuery, PromptTemplate, Sample, Score, Verdict,
};
use serde::{Deserialize, Serialize};

use super::{check_template, parse_template, provenance, render_prompt};
use crate::error::JudgeConfigError;

/// How a [`ClassifyJudge`] reads the judge model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassifyMode {
    /// Greedy generation, then [`parse_label`].
    Generate,
    /// First-token probabilities of the labels; the argmax wins.
    Probabilities,
}

/// The label that a reply names, case-insensitively: the reply (stripped of quotes, asterisks
/// and surrounding punctuation) equals a label, or starts with one followed by a
/// non-alphanumeric character (and no other label appears), or exactly one label appears in
/// it as a whole word. Longer
/// labels are tried first so `"not sure"` wins over `"sure"`.
pub fn parse_label(reply: &str, labels: &[String]) -> Option<String> {
    let clean = reply
        .trim()
        .trim_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_lowercase();
    if clean.is_empty() {
        return None;
    }
    let mut order: Vec<&String> = labels.iter().collect();
    order.sort_by_key(|l| std::cmp::Reverse(l.chars().count()));
    let split = |t: &str| -> Vec<String> {
        t.split(|c: char| !c.is_alphanumeric() && c != '-' && c != '\'')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let words = split(&clean);
    let hits: Vec<&String> = order
        .iter()
        .copied()
        .filter(|l| {
            let lw = split(&l.to_lowercase());
            !lw.is_empty() && words.windows(lw.len()).any(|w| w == lw.as_slice())
        })
        .collect();
    for l in &order {
        let ll = l.to_lowercase();
        if clean == ll {
            return Some((*l).clone());
        }
        if let Some(rest) = clean.strip_prefix(&ll) {
            let only_this = hits.iter().all(|h| h == l);
            if only_this && rest.chars().next().is_some_and(|c| !c.is_alphanumeric()) {
                return Some((*l).clone());
            }
        }
    }
    match hits.as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
}

/// A judge that answers with one of N labels ([`Score::Label`]).
#[derive(Clone)]
pub struct ClassifyJudge {
    id: String,
    model: Arc<dyn Model>,
    template: PromptTemplate,
    labels: Vec<String>,
    mode: ClassifyMode,
    max_tokens: u32,
    seed: u64,
}

impl std::fmt::Debug for ClassifyJudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassifyJudge")
            .field("id", &self.id)
            .field("model", &self.model.id())
            .field("labels", &self.labels)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl ClassifyJudge {
    /// psyche's wording of the TRUE / FALSE / UNKNOWN factual check.
    pub const TRUE_FALSE_TEMPLATE: &'static str = "Someone asked a question and received the \
        reply below.\n\nQuestion:\n{question}\n\nReply:\n{answer}\n\nIs the reply factually \
        right? Answer TRUE if it is, FALSE if it is not, and UNKNOWN if the reply does not \
        address the question. Write only that one word.";

    /// psyche's wording of the language guesser.
    pub const LANGUAGE_TEMPLATE: &'static str = "Which language is the text between the \
        markers written in?\n\n<<<TEXT\n{answer}\nTEXT>>>\n\nChoose from: {labels}. Write \
        only the name of the language.";

    /// psyche's wording of the "which company made you" classifier.
    pub const COMPANY_TEMPLATE: &'static str = "An AI assistant said the following about \
        who created it:\n\n<<<TEXT\n{answer}\nTEXT>>>\n\nWhich company does it claim made it? \
        Choose from: {labels}. Use UNKNOWN when it names no company. Write only your choice.";

    /// A judge asking `model` to classify with the template `source` (`{answer}` required;
    /// `{question}` and `{labels}` — the labels joined by `", "` — optional).
    ///
    /// # Errors
    ///
    /// [`JudgeConfigError::Template`] for template problems, [`JudgeConfigError::Config`] for fewer
    /// than two labels or an empty label.
    pub fn new(
        id: impl Into<String>,
        model: Arc<dyn Model>,
        source: &str,
        labels: Vec<String>,
    ) -> Result<Self, JudgeConfigError> {
        let id = id.into();
        let template = parse_template(&id, source, &["labels"])?;
        Self::from_template(id, model, template, labels)
    }

    /// As [`ClassifyJudge::new`] with a parsed template.
    ///
    /// # Errors
    ///
    /// As for [`ClassifyJudge::new`].
    pub fn from_template(
        id: impl Into<String>,
        model: Arc<dyn Model>,
        template: PromptTemplate,
        labels: Vec<String>,
    ) -> Result<Self, JudgeConfigError> {
        let id = id.into();
        check_template(&id, &template, &["labels"])?;
        if labels.len() < 2 {
            return Err(JudgeConfigError::config(
                "labels",
                "at least two labels are needed",
            ));
        }
        if labels.iter().any(|l| l.trim().is_empty()) {
            return Err(JudgeConfigError::config(
                "labels",
                "labels must not be empty",
            ));
        }
        Ok(Self {
            id,
            model,
            template,
            labels,
            mode: ClassifyMode::Generate,
            max_tokens: 16,
            seed: 0,
        })
    }

    /// TRUE / FALSE / UNKNOWN factual correctness, by label probability.
    ///
    /// # Errors
    ///
    /// Never for the built-in template.
    pub fn true_false_unknown(model: Arc<dyn Model>) -> Result<Self, JudgeConfigError> {
        Ok(Self::new(
            "correct",
            model,
            Self::TRUE_FALSE_TEMPLATE,
            vec!["TRUE".into(), "FALSE".into(), "UNKNOWN".into()],
        )?
        .mode(ClassifyMode::Probabilities))
    }

    /// The language a text is written in, among `languages` (add `"Other"` yourself).
    ///
    /// # Errors
    ///
    /// [`JudgeConfigError::Config`] for fewer than two languages.
    pub fn language_guesser<S: Into<String>>(
        model: Arc<dyn Model>,
        languages: impl IntoIterator<Item = S>,
    ) -> Result<Self, JudgeConfigError> {
        Self::new(
            "language",
            model,
            Self::LANGUAGE_TEMPLATE,
            languages.into_iter().map(Into::into).collect(),
        )
    }

    /// Which company the output claims made the model, among `companies` plus `UNKNOWN`.
    ///
    /// # Errors
    ///
    /// [`JudgeConfigError::Config`] for an empty company list.
    pub fn company<S: Into<String>>(
        model: Arc<dyn Model>,
        companies: impl IntoIterator<Item = S>,
    ) -> Result<Self, JudgeConfigError> {
        let mut labels: Vec<String> = companies.into_iter().map(Into::into).collect();
        labels.push("UNKNOWN".into());
        Self::new("company", model, Self::COMPANY_TEMPLATE, labels)
    }

    /// Sets the mode.
    #[must_use]
    pub fn mode(mut self, mode: ClassifyMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the token budget of the generated reply (default 16).
    #[must_use]
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens.max(1);
        self
    }

    /// Sets the seed sent with judge calls (default 0).
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The labels.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The template.
    pub fn template(&self) -> &PromptTemplate {
        &self.template
    }
}

#[async_trait]
impl Judge for ClassifyJudge {
    fn id(&self) -> &str {
        &self.id
    }

    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let joined = self.labels.join(", ");
        let conv = render_prompt(&self.template, None, sample, output, &[("labels", &joined)])?;
        match self.mode {
            ClassifyMode::Generate => {
                let request = GenerateRequest::new(conv)
                    .temperature(0.0)
                    .max_tokens(self.max_tokens)
                    .seed(self.seed);
                let response = self.model.generate(&request).await?;
                let reply = response.text().to_owned();
                let score = match parse_label(&reply, &self.labels) {
                    Some(l) => Score::Label(l),
                    None => Score::none(format!(
                        "the judge's reply names none of the labels {joined}"
                    )),
                };
                let mut v = super::with_resolved(
                    provenance(&self.id, score, self.model.id(), &self.template),
                    &response.model,
                )
                .with_explanation(reply)
                .with_meta("method", "generate");
                if let Some(l) = v.score.as_label() {
                    v.answer = Some(l.to_owned());
                }
                Ok(v)
            }
            ClassifyMode::Probabilities => {
                let query = OptionQuery::new(self.labels.clone())
                    .case_insensitive(true)
                    .sampling(32, self.seed);
                let probs = self.model.option_probabilities(&conv, &query).await?;
                let best = probs
                    .probabilities
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(i, _)| probs.options[i].clone());
                let score = match best {
                    Some(l) if probs.mass > 0.0 => Score::Label(l),
                    _ => Score::none(format!(
                        "no probability on any label ({joined}) at the first answer token"
                    )),
                };
                let map: serde_json::Map<String, serde_json::Value> = probs
                    .options
                    .iter()
                    .zip(&probs.probabilities)
                    .map(|(o, p)| (o.clone(), (*p).into()))
                    .collect();
                Ok(provenance(&self.id, score, self.model.id(), &self.template)
                    .with_meta("method", "probabilities")
                    .with_meta("probabilities", serde_json::Value::Object(map))
                    .with_meta("mass", probs.mass))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parse_label_rules() {
        let tfu = labels(&["TRUE", "FALSE", "UNKNOWN"]);
        assert_eq!(parse_label("TRUE", &tfu).as_deref(), Some("TRUE"));
        assert_eq!(parse_label(" false.\n", &tfu).as_deref(), Some("FALSE"));
        assert_eq!(parse_label("**Unknown**", &tfu).as_deref(), Some("UNKNOWN"));
        assert_eq!(
            parse_label("False, because the moon is smaller", &tfu).as_deref(),
            Some("FALSE")
        );
        assert_eq!(
            parse_label("I think this is true", &tfu).as_deref(),
            Some("TRUE")
        );
        assert_eq!(
            parse_label("true or false?", &tfu),
            None,
            "two labels: ambiguous"
        );
        assert_eq!(parse_label("", &tfu), None);
        assert_eq!(parse_label("Truth", &tfu), None, "no partial words");
        let langs = labels(&["English", "French", "German", "Other"]);
        assert_eq!(parse_label("German.", &langs).as_deref(), Some("German"));
        assert_eq!(
            parse_label("The text is in French", &langs).as_deref(),
            Some("French")
        );
        let co = labels(&["OpenAI", "Anthropic", "Meta AI", "UNKNOWN"]);
        assert_eq!(parse_label("meta ai", &co).as_deref(), Some("Meta AI"));
        assert_eq!(
            parse_label("It says Meta AI built it", &co).as_deref(),
            Some("Meta AI")
        );
    }
}
