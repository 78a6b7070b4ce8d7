//! Yes/no and multiple-choice probability judges.
//!
//! The judge model's first answer token gives P(option) for each option, renormalised over the
//! options ([`Model::option_probabilities`]: top-k logprobs, exact distributions, or a sampling
//! fallback). Options may be shown under letters (`A) …`, `B) …`) or be the answer words
//! themselves (`Yes` / `No`). Position bias is removed by averaging over orderings of the
//! options: every ordering is rendered, each option's probability is mapped back to the
//! option, and the per-ordering distributions are averaged.
//!
//! [`option_probabilities_over_orderings`] is the reusable piece: task crates use it to score
//! the *evaluated* model on multiple-choice self-report questions as well.

use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{
    Conversation, Judge, JudgeError, Model, OptionProbabilities, OptionQuery, ProbabilityMethod,
    PromptTemplate, Sample, Score, Verdict,
};
use serde::{Deserialize, Serialize};

use super::{check_template, parse_template, provenance, render_prompt};
use crate::error::JudgeConfigError;

/// Which orderings of the options are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Orderings {
    /// Only the given order.
    Given,
    /// The n rotations of the given order.
    Cyclic,
    /// All n! permutations (at most 8 options).
    All,
}

/// How options are presented and answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionLabels {
    /// Options are listed as `A) text` lines and answered with the letter.
    Letters,
    /// Options are answered with their own text (e.g. `Yes` / `No`); the listing is the
    /// options joined by `" / "`.
    Verbatim,
}

/// The largest option count for [`Orderings::All`].
pub const MAX_PERMUTED_OPTIONS: usize = 8;

/// The orderings (as index permutations of `0..n`) that `orderings` asks for.
///
/// # Errors
///
/// [`JudgeConfigError::Config`] for [`Orderings::All`] with more than
/// [`MAX_PERMUTED_OPTIONS`] options.
pub fn orderings_of(n: usize, orderings: Orderings) -> Result<Vec<Vec<usize>>, JudgeConfigError> {
    let base: Vec<usize> = (0..n).collect();
    Ok(match orderings {
        Orderings::Given => vec![base],
        Orderings::Cyclic => (0..n.max(1))
            .map(|r| (0..n).map(|i| (i + r) % n).collect())
            .collect(),
        Orderings::All => {
            if n > MAX_PERMUTED_OPTIONS {
                return Err(JudgeConfigError::config(
                    "orderings",
                    format!(
                        "all orderings of {n} options is too many (max {MAX_PERMUTED_OPTIONS})"
                    ),
                ));
            }
            let mut out = Vec::new();
            let mut current = base;
            permute(&mut current, 0, &mut out);
            out
        }
    })
}

fn permute(v: &mut Vec<usize>, k: usize, out: &mut Vec<Vec<usize>>) {
    if k >= v.len() {
        out.push(v.clone());
        return;
    }
    for i in k..v.len() {
        v.swap(k, i);
        permute(v, k + 1, out);
        v.swap(k, i);
    }
}

fn letter(i: usize) -> String {
    char::from(b'A' + (i % 26) as u8).to_string()
}

/// The text listing `options` in the order `order`.
pub fn render_listing(options: &[String], order: &[usize], labels: OptionLabels) -> String {
    match labels {
        OptionLabels::Letters => order
            .iter()
            .enumerate()
            .map(|(pos, &i)| format!("{}) {}", letter(pos), options[i]))
            .collect::<Vec<_>>()
            .join("\n"),
        OptionLabels::Verbatim => order
            .iter()
            .map(|&i| options[i].as_str())
            .collect::<Vec<_>>()
            .join(" / "),
    }
}

/// Option probabilities averaged over orderings.
///
/// For each ordering, `build` receives the rendered option listing and returns the
/// conversation to ask; the model's probabilities of the answer labels (letters or option
/// texts) are mapped back to the options. The result's `probabilities` are the mean of the
/// per-ordering renormalised distributions, `mass` is the mean raw mass, and `method` is the
/// first ordering's method.
///
/// # Errors
///
/// [`JudgeConfigError`]-derived [`JudgeError::Config`] for bad orderings; the model's errors.
pub async fn option_probabilities_over_orderings<F>(
    model: &dyn Model,
    options: &[String],
    labels: OptionLabels,
    orderings: Orderings,
    query: &OptionQuery,
    build: F,
) -> Result<OptionProbabilities, JudgeError>
where
    F: Fn(&str) -> Result<Conversation, JudgeError> + Send + Sync,
{
    if options.is_empty() {
        return Err(JudgeError::Config("no options to score".into()));
    }
    let orders = orderings_of(options.len(), orderings)?;
    let mut sum = vec![0.0; options.len()];
    let mut mass = 0.0;
    let mut method = None;
    for order in &orders {
        let listing = render_listing(options, order, labels);
        let conv = build(&listing)?;
        let answer_labels: Vec<String> = match labels {
            OptionLabels::Letters => (0..order.len()).map(letter).collect(),
            OptionLabels::Verbatim => order.iter().map(|&i| options[i].clone()).collect(),
        };
        let q = OptionQuery {
            options: answer_labels,
            ..query.clone()
        };
        let probs = model.option_probabilities(&conv, &q).await?;
        for (pos, &i) in order.iter().enumerate() {
            sum[i] += probs.probabilities.get(pos).copied().unwrap_or(0.0);
        }
        mass += probs.mass;
        method.get_or_insert(probs.method);
    }
    let n = orders.len() as f64;
    Ok(OptionProbabilities {
        options: options.to_vec(),
        probabilities: sum.iter().map(|s| s / n).collect(),
        mass: mass / n,
        method: method.unwrap_or(ProbabilityMethod::CompleteAnswer),
    })
}

/// Which number a [`ChoiceProbabilityJudge`] reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChoiceScore {
    /// P(this option), as [`Score::Number`].
    Option(String),
    /// P(the sample's target option).
    Target,
    /// The most likely option, as [`Score::Label`].
    Argmax,
}

/// A judge reporting the judge model's probability of an option.
#[derive(Clone)]
pub struct ChoiceProbabilityJudge {
    id: String,
    model: Arc<dyn Model>,
    template: PromptTemplate,
    options: Vec<String>,
    labels: OptionLabels,
    orderings: Orderings,
    score: ChoiceScore,
    query: OptionQuery,
    min_mass: f64,
}

impl std::fmt::Debug for ChoiceProbabilityJudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChoiceProbabilityJudge")
            .field("id", &self.id)
            .field("model", &self.model.id())
            .field("options", &self.options)
            .field("labels", &self.labels)
            .field("orderings", &self.orderings)
            .field("score", &self.score)
            .finish_non_exhaustive()
    }
}

impl ChoiceProbabilityJudge {
    /// A multiple-choice judge: `source` may use `{question}`, `{answer}` (required) and
    /// `{options}` (the rendered listing); answers are letters; the score is the argmax.
    ///
    /// # Errors
    ///
    /// [`JudgeConfigError::Template`] for template problems; [`JudgeConfigError::Config`] for fewer than
    /// two options.
    pub fn new(
        id: impl Into<String>,
        model: Arc<dyn Model>,
        source: &str,
        options: Vec<String>,
    ) -> Result<Self, JudgeConfigError> {
        let id = id.into();
        let template = parse_template(&id, source, &["options"])?;
        Self::from_template(id, model, template, options)
    }

    /// As [`ChoiceProbabilityJudge::new`] with a parsed template.
    ///
    /// # Errors
    ///
    /// As for [`ChoiceProbabilityJudge::new`].
    pub fn from_template(
        id: impl Into<String>,
        model: Arc<dyn Model>,
        template: PromptTemplate,
        options: Vec<String>,
    ) -> Result<Self, JudgeConfigError> {
        let id = id.into();
        check_template(&id, &template, &["options"])?;
        if options.len() < 2 {
            return Err(JudgeConfigError::config(
                "options",
                "at least two options are needed",
            ));
        }
        let query = OptionQuery::new(options.clone()).case_insensitive(true);
        Ok(Self {
            id,
            model,
            template,
            options,
            labels: OptionLabels::Letters,
            orderings: Orderings::Given,
            score: ChoiceScore::Argmax,
            query,
            min_mass: 0.0,
        })
    }

    /// A yes/no judge scoring P(`Yes`): answers are the words themselves.
    ///
    /// # Errors
    ///
    /// As for [`ChoiceProbabilityJudge::new`].
    pub fn yes_no(
        id: impl Into<String>,
        model: Arc<dyn Model>,
        source: &str,
    ) -> Result<Self, JudgeConfigError> {
        Ok(
            Self::new(id, model, source, vec!["Yes".into(), "No".into()])?
                .labels(OptionLabels::Verbatim)
                .score(ChoiceScore::Option("Yes".into())),
        )
    }

    /// Sets how options are presented.
    #[must_use]
    pub fn labels(mut self, labels: OptionLabels) -> Self {
        self.labels = labels;
        self
    }

    /// Sets which orderings are averaged.
    #[must_use]
    pub fn orderings(mut self, orderings: Orderings) -> Self {
        self.orderings = orderings;
        self
    }

    /// Sets what is reported.
    #[must_use]
    pub fn score(mut self, score: ChoiceScore) -> Self {
        self.score = score;
        self
    }

    /// Declines (`Score::None`) when the raw probability mass on the options is below this.
    #[must_use]
    pub fn min_mass(mut self, min_mass: f64) -> Self {
        self.min_mass = min_mass;
        self
    }

    /// Sets the top-k and the sampling fallback's sample count and seed.
    #[must_use]
    pub fn query(mut self, top_k: u32, samples: u32, seed: u64) -> Self {
        self.query.top_k = top_k;
        self.query = self.query.sampling(samples, seed);
        self
    }

    /// The template.
    pub fn template(&self) -> &PromptTemplate {
        &self.template
    }
}

#[async_trait]
impl Judge for ChoiceProbabilityJudge {
    fn id(&self) -> &str {
        &self.id
    }

    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let wanted = match &self.score {
            ChoiceScore::Option(o) => Some(o.clone()),
            ChoiceScore::Target => {
                Some(sample.target.clone().ok_or_else(|| JudgeError::Sample {
                    sample: sample.id.clone(),
                    message: format!(
                        "judge `{}` scores the target option but the sample has no target",
                        self.id
                    ),
                })?)
            }
            ChoiceScore::Argmax => None,
        };
        if let Some(w) = &wanted
            && !self.options.iter().any(|o| o.eq_ignore_ascii_case(w))
        {
            return Err(JudgeError::Sample {
                sample: sample.id.clone(),
                message: format!("`{w}` is not one of the options {:?}", self.options),
            });
        }
        let probs = option_probabilities_over_orderings(
            self.model.as_ref(),
            &self.options,
            self.labels,
            self.orderings,
            &self.query,
            |listing| {
                render_prompt(
                    &self.template,
                    None,
                    sample,
                    output,
                    &[("options", listing)],
                )
            },
        )
        .await?;
        let score = if probs.mass <= 0.0 || probs.mass < self.min_mass {
            Score::none(format!(
                "probability mass on the options is {:.3} (minimum {})",
                probs.mass, self.min_mass
            ))
        } else {
            match &wanted {
                Some(w) => {
                    let i = self
                        .options
                        .iter()
                        .position(|o| o.eq_ignore_ascii_case(w))
                        .unwrap_or(0);
                    Score::Number(probs.probabilities[i])
                }
                None => probs
                    .probabilities
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or_else(
                        || Score::none("no options"),
                        |(i, _)| Score::Label(self.options[i].clone()),
                    ),
            }
        };
        let map: serde_json::Map<String, serde_json::Value> = probs
            .options
            .iter()
            .zip(&probs.probabilities)
            .map(|(o, p)| (o.clone(), (*p).into()))
            .collect();
        Ok(provenance(&self.id, score, self.model.id(), &self.template)
            .with_meta("probabilities", serde_json::Value::Object(map))
            .with_meta("mass", probs.mass)
            .with_meta(
                "method",
                serde_json::to_value(&probs.method).unwrap_or(serde_json::Value::Null),
            ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orderings_counts() {
        assert_eq!(
            orderings_of(3, Orderings::Given).unwrap(),
            vec![vec![0, 1, 2]]
        );
        assert_eq!(
            orderings_of(3, Orderings::Cyclic).unwrap(),
            vec![vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1]]
        );
        let all = orderings_of(4, Orderings::All).unwrap();
        assert_eq!(all.len(), 24);
        let mut dedup = all.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 24);
        assert!(orderings_of(9, Orderings::All).is_err());
    }

    #[test]
    fn listings() {
        let opts = vec!["cats".to_owned(), "dogs".to_owned()];
        assert_eq!(
            render_listing(&opts, &[1, 0], OptionLabels::Letters),
            "A) dogs\nB) cats"
        );
        assert_eq!(
            render_listing(&opts, &[0, 1], OptionLabels::Verbatim),
            "cats / dogs"
        );
    }
}
