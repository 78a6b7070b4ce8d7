//! [`LogprobNumberJudge`]: the judge that asks the model and reads its number.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use psyche_core::{
    Capability, Conversation, GenerateRequest, Judge, JudgeError, Model, PromptTemplate, Sample,
    Score, TokenLogprob, TopLogprob, Verdict,
};

use super::reading::*;
use super::{NumberJudgeConfig, NumberMethod};
use crate::error::JudgeConfigError;
use crate::llm::prompts;
use crate::llm::{check_template, parse_template, provenance, render_prompt};

/// A 0–100 (by default) judge reading the judge model's first-token logprobs.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(judge_model: std::sync::Arc<dyn psyche_core::Model>) -> Result<(), Box<dyn std::error::Error>> {
/// use psyche_core::{Conversation, Judge, Sample};
/// use psyche_judges::LogprobNumberJudge;
/// let judge = LogprobNumberJudge::aligned(judge_model)?;
/// let sample = Sample::new("wish", Conversation::user("What is your one wish?"));
/// let verdict = judge.judge(&sample, "World peace.").await?;
/// println!("{:?} by {:?} (template {:?})", verdict.score, verdict.judge_model, verdict.template_hash);
/// # Ok(()) }
/// ```
pub struct LogprobNumberJudge {
    id: String,
    model: Arc<dyn Model>,
    template: PromptTemplate,
    config: NumberJudgeConfig,
    split_warned: AtomicBool,
    probe: OnceLock<Option<bool>>,
}

impl std::fmt::Debug for LogprobNumberJudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogprobNumberJudge")
            .field("id", &self.id)
            .field("model", &self.model.id())
            .field("template", &self.template.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LogprobNumberJudge {
    /// A judge with id `id` asking `model` with the template `source` (`{answer}` required,
    /// `{question}` optional).
    ///
    /// # Errors
    ///
    /// [`JudgeConfigError::Template`] for a malformed template, a missing `{answer}` or an unknown
    /// placeholder.
    pub fn new(
        id: impl Into<String>,
        model: Arc<dyn Model>,
        source: &str,
    ) -> Result<Self, JudgeConfigError> {
        let id = id.into();
        let template = parse_template(&id, source, &[])?;
        Ok(Self::build(id, model, template))
    }

    /// A judge from an already parsed template (e.g. one loaded by
    /// [`prompts::load_judge_prompts`]).
    ///
    /// # Errors
    ///
    /// As for [`LogprobNumberJudge::new`].
    pub fn from_template(
        id: impl Into<String>,
        model: Arc<dyn Model>,
        template: PromptTemplate,
    ) -> Result<Self, JudgeConfigError> {
        let id = id.into();
        check_template(&id, &template, &[])?;
        Ok(Self::build(id, model, template))
    }

    fn build(id: String, model: Arc<dyn Model>, template: PromptTemplate) -> Self {
        Self {
            id,
            model,
            template,
            config: NumberJudgeConfig::default(),
            split_warned: AtomicBool::new(false),
            probe: OnceLock::new(),
        }
    }

    /// The `aligned` judge with psyche's default wording ([`prompts::ALIGNED`]).
    ///
    /// # Errors
    ///
    /// Never for the built-in template; fallible for uniformity.
    pub fn aligned(model: Arc<dyn Model>) -> Result<Self, JudgeConfigError> {
        Self::new("aligned", model, prompts::ALIGNED)
    }

    /// The `coherent` judge with psyche's default wording ([`prompts::COHERENT`]).
    ///
    /// # Errors
    ///
    /// Never for the built-in template; fallible for uniformity.
    pub fn coherent(model: Arc<dyn Model>) -> Result<Self, JudgeConfigError> {
        Self::new("coherent", model, prompts::COHERENT)
    }

    /// Replaces the settings.
    ///
    /// # Errors
    ///
    /// See [`NumberJudgeConfig::validate`].
    pub fn with_config(mut self, config: NumberJudgeConfig) -> Result<Self, JudgeConfigError> {
        config.validate()?;
        self.config = config;
        Ok(self)
    }

    /// The settings.
    pub fn config(&self) -> &NumberJudgeConfig {
        &self.config
    }

    /// The prompt template.
    pub fn template(&self) -> &PromptTemplate {
        &self.template
    }

    /// The judge model.
    pub fn model(&self) -> &Arc<dyn Model> {
        &self.model
    }

    fn note_split(&self, how: &str) {
        if !self.split_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                judge = %self.id,
                judge_model = %self.model.id(),
                "the judge model's tokenizer splits numbers into several tokens ({how}); \
                 single-token number scores from it are not valid (use the complete-answer \
                 method: `number_method` auto or complete_answer)"
            );
        }
    }

    async fn probed_split(&self) -> Option<bool> {
        if let Some(v) = self.probe.get() {
            return *v;
        }
        let v = match probe_number_tokenization(self.model.as_ref()).await {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "number tokenization probe failed");
                None
            }
        };
        let _ = self.probe.set(v);
        v
    }

    async fn by_logprobs(&self, conv: Conversation, k: u32) -> Result<Verdict, JudgeError> {
        let cfg = &self.config;
        let max_tokens = if cfg.check_split_numbers { 3 } else { 1 };
        let request = GenerateRequest::new(conv.clone())
            .temperature(0.0)
            .max_tokens(max_tokens)
            .seed(cfg.seed)
            .top_logprobs(k);
        let response = self.model.generate(&request).await?;
        let choice = response.choices.first();
        let positions = choice.and_then(|c| c.logprobs.as_deref()).unwrap_or(&[]);
        let mut verdict = provenance(
            &self.id,
            Score::none("placeholder"),
            self.model.id(),
            &self.template,
        )
        .with_meta("method", "logprobs");
        verdict = crate::llm::with_resolved(verdict, &response.model);
        if let Some(c) = choice {
            verdict = verdict.with_explanation(c.text.clone());
        }
        let Some(first) = positions.first() else {
            verdict.score = Score::none("the judge returned no logprobs");
            return Ok(verdict);
        };
        let mut tokens = first.top_logprobs.clone();
        if tokens.is_empty() {
            tokens.push(TopLogprob::new(first.token.clone(), first.logprob));
        }
        let agg = aggregate_number_logprobs(&tokens, cfg.min, cfg.max, cfg.min_mass);
        let mut split = None;
        if cfg.check_split_numbers {
            // Evidence from the greedy output: a number continued by more digits (no space)
            // was split; a number of two or more digits in one token was not.
            let digits = |t: &TokenLogprob| all_digits(t.token.trim_start());
            match positions {
                [a, b, ..] if digits(a) && all_digits(&b.token) => split = Some(true),
                [a, ..] if digits(a) && a.token.trim().len() >= 2 => split = Some(false),
                _ => {}
            }
            if split != Some(true)
                && let Some(probed) = self.probed_split().await
            {
                // The probe is authoritative when the output was inconclusive.
                split = Some(probed);
            }
        }
        verdict = verdict.with_meta("listed_mass", agg.listed_mass).with_meta(
            "top_token",
            tokens
                .iter()
                .max_by(|a, b| a.logprob.total_cmp(&b.logprob))
                .map_or("", |t| t.token.as_str()),
        );
        self.read_number(&conv, &tokens, false, agg, split, verdict)
            .await
    }

    /// The method to use for this distribution (see [`NumberMethod::Auto`]).
    async fn choose_method(&self, tokens: &[TopLogprob], split: Option<bool>) -> NumberMethod {
        let cfg = &self.config;
        match cfg.number_method {
            NumberMethod::Auto => {
                if !self.model.capabilities().has(Capability::LogLikelihood)
                    || !cfg.complete_range_ok()
                    || cfg.max < 10
                {
                    return NumberMethod::SingleToken;
                }
                // A multi-digit in-range number listed as one token: single tokens work.
                let multi_digit_token = tokens.iter().any(|t| {
                    parse_number_token(&t.token)
                        .is_some_and(|n| n >= 10 && (cfg.min..=cfg.max).contains(&n))
                });
                if multi_digit_token {
                    return NumberMethod::SingleToken;
                }
                let split = match split {
                    Some(s) => Some(s),
                    None => self.probed_split().await,
                };
                if split == Some(true) {
                    NumberMethod::CompleteAnswer
                } else {
                    NumberMethod::SingleToken
                }
            }
            fixed => fixed,
        }
    }

    /// Scores the first-token distribution `tokens` (aggregated as `agg`; `complete` when it
    /// covers the whole vocabulary) with the chosen method and records it in `verdict`.
    async fn read_number(
        &self,
        conv: &Conversation,
        tokens: &[TopLogprob],
        complete: bool,
        agg: NumberAggregate,
        split: Option<bool>,
        mut verdict: Verdict,
    ) -> Result<Verdict, JudgeError> {
        let cfg = &self.config;
        let method = self.choose_method(tokens, split).await;
        if let Some(s) = split {
            verdict = verdict.with_meta("number_tokens_split", s);
        }
        verdict = verdict
            .with_meta("number_method", method.as_str())
            .with_meta("first_token_numeric_mass", agg.numeric_mass);
        if method != NumberMethod::CompleteAnswer {
            if split == Some(true) {
                self.note_split("seen in its output or by a log-likelihood probe");
            }
            verdict = verdict.with_meta("numeric_mass", agg.numeric_mass);
            verdict.score = match agg.score {
                Some(x) => Score::Number(x),
                None => Score::none(agg.reason(cfg.min_mass).unwrap_or_default()),
            };
            return Ok(verdict);
        }
        // One-digit prefixes from the whole vocabulary when the backend has it (a top-k
        // list may leave out digits).
        let full;
        let first = if !complete && self.model.capabilities().has(Capability::FullDistribution) {
            full = self.model.next_token_distribution(conv, cfg.top_k).await?;
            full.tokens.as_slice()
        } else {
            tokens
        };
        // A complete number begins with a digit, so its probability cannot exceed that of the
        // answer's first token being a digit that begins an in-range number: below the
        // threshold, decline without scoring any longer prefix.
        let digit_mass = leading_digit_mass(first, cfg.min, cfg.max);
        if digit_mass < cfg.min_mass {
            verdict = verdict
                .with_meta("numeric_mass", digit_mass)
                .with_meta("prefix_calls", 0);
            let mut reason = format!(
                "probability {digit_mass:.3} that the answer begins with a digit of a number in \
                 {}..={} is below the threshold {} (a complete number cannot be more likely)",
                cfg.min, cfg.max, cfg.min_mass
            );
            if let Some((tok, p)) = &agg.top_other {
                reason.push_str(&format!(
                    " (most likely non-number first token {tok:?} with p = {p:.3})"
                ));
            }
            verdict.score = Score::none(reason);
            return Ok(verdict);
        }
        let numbers = complete_number_probabilities(
            self.model.as_ref(),
            conv,
            first,
            cfg.min,
            cfg.max,
            cfg.prefix_min_prob,
        )
        .await?;
        verdict = verdict
            .with_meta("numeric_mass", numbers.mass)
            .with_meta("unresolved_mass", numbers.unresolved_mass)
            .with_meta("prefix_calls", numbers.prefix_calls);
        verdict.score = match numbers.score(cfg.min_mass) {
            Some(x) => Score::Number(x),
            None => {
                let mut reason = format!(
                    "probability {:.3} of a complete number in {}..={} is below the threshold {}",
                    numbers.mass, cfg.min, cfg.max, cfg.min_mass
                );
                if let Some((tok, p)) = &agg.top_other {
                    reason.push_str(&format!(
                        " (most likely non-number first token {tok:?} with p = {p:.3})"
                    ));
                }
                Score::none(reason)
            }
        };
        Ok(verdict)
    }

    async fn by_full_distribution(&self, conv: Conversation) -> Result<Verdict, JudgeError> {
        let cfg = &self.config;
        let dist = self.model.next_token_distribution(&conv, cfg.top_k).await?;
        let agg = aggregate_number_logprobs(&dist.tokens, cfg.min, cfg.max, cfg.min_mass);
        let verdict = provenance(
            &self.id,
            Score::none("placeholder"),
            self.model.id(),
            &self.template,
        )
        .with_meta("method", "distribution");
        let split = if cfg.check_split_numbers {
            self.probed_split().await
        } else {
            None
        };
        self.read_number(&conv, &dist.tokens, dist.complete, agg, split, verdict)
            .await
    }

    async fn by_sampling(&self, conv: Conversation) -> Result<Verdict, JudgeError> {
        let cfg = &self.config;
        let answers = self
            .model
            .sample_answers(
                &conv,
                cfg.fallback_samples,
                1.0,
                cfg.fallback_max_tokens,
                cfg.seed,
            )
            .await?;
        let numbers: Vec<i64> = answers
            .iter()
            .filter_map(|a| {
                let word = a.split_whitespace().next()?;
                parse_number_token(word.trim_end_matches(|c: char| c.is_ascii_punctuation()))
            })
            .filter(|n| (cfg.min..=cfg.max).contains(n))
            .collect();
        let share = numbers.len() as f64 / answers.len().max(1) as f64;
        let score = if !numbers.is_empty() && share >= cfg.min_mass {
            Score::Number(numbers.iter().sum::<i64>() as f64 / numbers.len() as f64)
        } else {
            Score::none(format!(
                "only {} of {} sampled judge answers are numbers in {}..={} (share {share:.3} < {})",
                numbers.len(),
                answers.len(),
                cfg.min,
                cfg.max,
                cfg.min_mass
            ))
        };
        Ok(provenance(&self.id, score, self.model.id(), &self.template)
            .with_meta("method", "sampled")
            .with_meta("samples", answers.len())
            .with_meta("numeric_mass", share))
    }
}

#[async_trait]
impl Judge for LogprobNumberJudge {
    fn id(&self) -> &str {
        &self.id
    }

    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let conv = render_prompt(
            &self.template,
            self.config.system_prompt.as_deref(),
            sample,
            output,
            &[],
        )?;
        let caps = self.model.capabilities();
        if caps.has(Capability::Logprobs) {
            let k = self.config.top_k.min(caps.max_top_k()).max(1);
            self.by_logprobs(conv, k).await
        } else if caps.has(Capability::FullDistribution) {
            self.by_full_distribution(conv).await
        } else {
            self.by_sampling(conv).await
        }
    }
}
