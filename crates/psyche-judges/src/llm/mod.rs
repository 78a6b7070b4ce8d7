//! LLM-as-judge: judges that ask a separate *judge model* about the evaluated model's output.
//!
//! Every judge here reaches its model only through [`psyche_core::Model`], fills a
//! [`PromptTemplate`] by plain substitution (braces inside answers are safe), and records the
//! judge model's id and the template's SHA-256 in every [`Verdict`].
//!
//! Placeholders understood by all judges: `{answer}` (the evaluated model's output, always
//! required) and `{question}` (the content of the sample's last user message, without any
//! system prompt). Some judges add their own (`{labels}`, `{options}`, `{criterion}`).
//!
//! - [`number::LogprobNumberJudge`]: a 0–100 (or any range) score as the probability-weighted
//!   mean over integer tokens of the judge's first-token top-k logprobs.
//! - [`choice::ChoiceProbabilityJudge`]: P(option) renormalised over options, optionally
//!   averaged over all orderings of the options.
//! - [`classify::ClassifyJudge`]: one of N labels.
//! - [`rubric::RubricJudge`]: free-text grading that ends with a grade line.
//! - [`prompts`]: psyche's own default prompts and loaders for user-supplied ones.

use psyche_core::{Conversation, PromptTemplate, Role, Sample, Verdict};

use crate::error::JudgeConfigError;

pub mod choice;
pub mod classify;
pub mod number;
pub mod prompts;
pub mod rubric;

/// Verdict metadata key: the model id the judge's endpoint reported in its response (e.g.
/// `gpt-4o-2024-08-06` for a request to the alias `gpt-4o`), when the judge made a generate
/// call. Compare it with [`Verdict::judge_model`] (the configured id) to see judge drift.
pub const RESOLVED_MODEL: &str = "resolved_model";

/// Adds the response's model id as [`RESOLVED_MODEL`] when the endpoint reported one.
pub(crate) fn with_resolved(v: Verdict, response_model: &str) -> Verdict {
    if response_model.trim().is_empty() {
        v
    } else {
        v.with_meta(RESOLVED_MODEL, response_model.to_owned())
    }
}

/// The text a judge sees as `{question}`: the content of the sample's last user message.
pub fn question_text(sample: &Sample) -> &str {
    sample
        .input
        .messages()
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map_or("", |m| m.content.as_str())
}

/// Parses a judge template, requiring `{answer}` and allowing `{question}` plus `extra`.
pub(crate) fn parse_template(
    judge: &str,
    source: &str,
    extra_known: &[&str],
) -> Result<PromptTemplate, JudgeConfigError> {
    let template = PromptTemplate::parse_any(judge, source)
        .map_err(|e| JudgeConfigError::template(format!("judge `{judge}`"), e))?;
    check_template(judge, &template, extra_known)?;
    Ok(template)
}

pub(crate) fn check_template(
    judge: &str,
    template: &PromptTemplate,
    extra_known: &[&str],
) -> Result<(), JudgeConfigError> {
    let mut known = vec!["question", "answer"];
    known.extend_from_slice(extra_known);
    template
        .check(&["answer"], &known)
        .map_err(|e| JudgeConfigError::template(format!("judge `{judge}`"), e))
}

/// Renders the judge prompt for one output as a single user message.
pub(crate) fn render_prompt(
    template: &PromptTemplate,
    system: Option<&str>,
    sample: &Sample,
    answer: &str,
    extra: &[(&str, &str)],
) -> Result<Conversation, psyche_core::JudgeError> {
    let mut values = vec![("question", question_text(sample)), ("answer", answer)];
    values.extend_from_slice(extra);
    let text = template
        .render(&values)
        .map_err(|e| psyche_core::JudgeError::Config(e.to_string()))?;
    let mut conv = Conversation::new();
    if let Some(s) = system {
        conv.push(psyche_core::ChatMessage::system(s));
    }
    conv.push(psyche_core::ChatMessage::user(text));
    Ok(conv)
}

/// A verdict carrying the judge model's id and the template hash.
pub(crate) fn provenance(
    judge: &str,
    score: psyche_core::Score,
    model: &str,
    template: &PromptTemplate,
) -> Verdict {
    let mut v = Verdict::new(judge, score);
    v.judge_model = Some(model.to_owned());
    v.template_hash = Some(template.hash());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use psyche_core::{ChatMessage, TemplateError};

    #[test]
    fn question_is_last_user_message_without_system() {
        let s = Sample::new(
            "q",
            Conversation::new()
                .with(ChatMessage::system("be json"))
                .with(ChatMessage::user("first"))
                .with(ChatMessage::assistant("x"))
                .with(ChatMessage::user("second")),
        );
        assert_eq!(question_text(&s), "second");
        assert_eq!(question_text(&Sample::new("e", Conversation::new())), "");
    }

    #[test]
    fn template_errors_are_named() {
        let err = parse_template("aligned", "Q: {question}", &[]).unwrap_err();
        assert!(matches!(
            err,
            JudgeConfigError::Template { source: TemplateError::MissingPlaceholder { ref placeholder, .. }, .. }
                if placeholder == "answer"
        ));
        assert!(err.to_string().contains("judge `aligned`"), "{err}");
        let err = parse_template("aligned", "{answer} {anser}", &[]).unwrap_err();
        assert!(
            err.to_string().contains("unknown placeholder `{anser}`"),
            "{err}"
        );
        assert!(parse_template("x", "{answer} {labels}", &["labels"]).is_ok());
        assert!(parse_template("x", "{answer} {", &[]).is_err());
    }

    #[test]
    fn rendering_keeps_braces_in_answers() {
        let t = parse_template("t", "Q={question} A={answer}", &[]).unwrap();
        let s = Sample::new("q", Conversation::user("{x}?"));
        let conv = render_prompt(&t, None, &s, "{\"k\": {answer}}", &[]).unwrap();
        assert_eq!(conv.messages()[0].content, "Q={x}? A={\"k\": {answer}}");
        let conv = render_prompt(&t, Some("sys"), &s, "a", &[]).unwrap();
        assert_eq!(conv.len(), 2);
    }
}
