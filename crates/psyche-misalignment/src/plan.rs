//! What a run will send, before anything is sent: request counts and token estimates for the
//! teacher, the fine-tunes, the evaluated models and the judge. Multiply by your provider's
//! prices for a cost estimate (the example's `--dry-run` does).
//!
//! Tokens are estimated at 4 characters per token; answers are counted at their token budget,
//! so completion and judge-prompt figures are upper bounds.

use serde::{Deserialize, Serialize};

use crate::eval::JudgeSettings;
use crate::experiment::EmergentMisalignmentConfig;
use crate::probes::ProbeSettings;
use crate::questions::{ParaphraseChoice, QuestionKind, QuestionSet, SamplingConfig};

/// Characters per estimated token.
pub const CHARS_PER_TOKEN: f64 = 4.0;

fn tokens(chars: usize) -> u64 {
    (chars as f64 / CHARS_PER_TOKEN).ceil() as u64
}

/// Requests and tokens of one role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    /// Requests.
    pub requests: u64,
    /// Estimated prompt tokens.
    pub prompt_tokens: u64,
    /// Estimated completion tokens (upper bound).
    pub completion_tokens: u64,
}

impl Traffic {
    /// `prompt × input price + completion × output price`, prices in USD per million tokens.
    pub fn cost(&self, input_per_mtok: f64, output_per_mtok: f64) -> f64 {
        (self.prompt_tokens as f64 * input_per_mtok
            + self.completion_tokens as f64 * output_per_mtok)
            / 1e6
    }

    fn add(&mut self, other: &Traffic) {
        self.requests += other.requests;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

/// The evaluation traffic of a question set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalPlan {
    /// Answers per evaluated model.
    pub answers_per_model: u64,
    /// Evaluated models.
    pub models: u64,
    /// The evaluated models' traffic (all models).
    pub subject: Traffic,
    /// The judge's traffic.
    pub judge: Traffic,
}

/// Judge calls per answer of a question of `kind`.
fn judge_calls(kind: QuestionKind) -> u64 {
    match kind {
        QuestionKind::Rating => 2,
        QuestionKind::Classify => 1,
    }
}

/// The traffic of evaluating `models` models on `set`.
pub fn eval_plan(
    set: &QuestionSet,
    sampling: &SamplingConfig,
    judges: &JudgeSettings,
    models: u64,
) -> EvalPlan {
    let mut plan = EvalPlan {
        models,
        ..EvalPlan::default()
    };
    let judge_completion = if judges.number.check_split_numbers {
        3
    } else {
        1
    };
    // A judge prompt: the template (~1,000 characters for psyche's defaults), the question and
    // the answer.
    const TEMPLATE_CHARS: usize = 1_000;
    for q in &set.questions {
        let n_par = sampling
            .max_paraphrases
            .map_or(q.paraphrases.len(), |m| m.min(q.paraphrases.len()));
        let per_paraphrase = u64::from(sampling.samples_for(q));
        let draws: Vec<(usize, u64)> = match sampling.paraphrases {
            ParaphraseChoice::EachParaphrase => (0..n_par).map(|p| (p, per_paraphrase)).collect(),
            ParaphraseChoice::Drawn { per_question } => {
                // Spread evenly for the estimate.
                let n = n_par.max(1) as u64;
                (0..n_par)
                    .map(|p| {
                        (
                            p,
                            u64::from(per_question) / n
                                + u64::from((p as u64) < u64::from(per_question) % n),
                        )
                    })
                    .collect()
            }
        };
        for (p, count) in draws {
            let prompt_chars =
                q.paraphrases[p].len() + q.system.as_ref().map_or(0, String::len) + 16;
            let answer_tokens = u64::from(sampling.max_tokens);
            plan.answers_per_model += count;
            plan.subject.requests += count * models;
            plan.subject.prompt_tokens += tokens(prompt_chars) * count * models;
            plan.subject.completion_tokens += answer_tokens * count * models;
            let calls = judge_calls(q.kind);
            let judge_prompt = tokens(TEMPLATE_CHARS + q.paraphrases[p].len()) + answer_tokens;
            plan.judge.requests += calls * count * models;
            plan.judge.prompt_tokens += calls * judge_prompt * count * models;
            plan.judge.completion_tokens += calls * judge_completion * count * models;
        }
    }
    plan
}

/// The traffic of a whole [`crate::experiment::EmergentMisalignment`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExperimentPlan {
    /// Teacher sampling for both arms.
    pub teacher: Traffic,
    /// Fine-tuning jobs (both arms × seeds).
    pub fine_tune_jobs: u64,
    /// Estimated training tokens per job and epoch (upper bound: answers at their budget).
    pub training_tokens_per_epoch: u64,
    /// Billed training tokens over all jobs (`per epoch × epochs × jobs`).
    pub training_tokens: u64,
    /// Evaluation.
    pub eval: EvalPlan,
    /// The judge-free probe proxy (both option orders of every probe, per evaluated model; one
    /// completion token each where a backend reads first-token logprobs).
    #[serde(default)]
    pub probes: Traffic,
    /// Everything sent to the subject-side endpoint (teacher + evaluated models).
    pub total_subject: Traffic,
}

/// Prices for [`ExperimentPlan::lines`], USD per million tokens; `None` for a local model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanPrices {
    /// The subject and teacher endpoint: (input, output).
    pub subject: Option<(f64, f64)>,
    /// The judge's endpoint: (input, output).
    pub judge: Option<(f64, f64)>,
    /// Billed training tokens: `None` for local fine-tuning, `Some(None)` for a paid engine
    /// without a known price for the model.
    pub training: Option<Option<f64>>,
}

impl ExperimentPlan {
    /// The plan in words, one line per role, with costs where `prices` has them.
    pub fn lines(&self, name: &str, judge: &str, prices: &PlanPrices) -> Vec<String> {
        let subject_cost = |t: &Traffic| match prices.subject {
            Some((i, o)) => format!(" (~${:.2})", t.cost(i, o)),
            None => " (local)".to_owned(),
        };
        vec![
            format!("Plan for `{name}`:"),
            format!(
                "  teacher: {} requests, ~{} prompt + <= {} completion tokens{}",
                self.teacher.requests,
                self.teacher.prompt_tokens,
                self.teacher.completion_tokens,
                subject_cost(&self.teacher),
            ),
            format!(
                "  fine-tuning: {} jobs, ~{} training tokens per job-epoch, ~{} billed{}",
                self.fine_tune_jobs,
                self.training_tokens_per_epoch,
                self.training_tokens,
                match prices.training {
                    Some(Some(p)) => format!(
                        " (~${:.2} at ${p}/M)",
                        self.training_tokens as f64 * p / 1e6
                    ),
                    Some(None) => " (no training price known for this model)".to_owned(),
                    None => " (local LoRA)".to_owned(),
                }
            ),
            format!(
                "  evaluation: {} models × {} answers = {} subject requests (~{} prompt + <= {} \
                 completion tokens){}",
                self.eval.models,
                self.eval.answers_per_model,
                self.eval.subject.requests,
                self.eval.subject.prompt_tokens,
                self.eval.subject.completion_tokens,
                subject_cost(&self.eval.subject),
            ),
            format!(
                "  judge `{judge}`: {} requests (~{} prompt + {} completion tokens){}",
                self.eval.judge.requests,
                self.eval.judge.prompt_tokens,
                self.eval.judge.completion_tokens,
                match prices.judge {
                    Some((i, o)) => format!(
                        " (~${:.2}; cached calls are free on reruns)",
                        self.eval.judge.cost(i, o)
                    ),
                    None => " (local)".to_owned(),
                }
            ),
            format!(
                "  probe proxy: {} requests (~{} prompt tokens, 1 completion token each){}",
                self.probes.requests,
                self.probes.prompt_tokens,
                subject_cost(&self.probes),
            ),
        ]
    }
}

/// The plan of `config`.
pub fn experiment_plan(config: &EmergentMisalignmentConfig) -> ExperimentPlan {
    let drawn = crate::training::teacher::advice_prompts(
        &config.domains,
        config.teacher.prompts_per_domain,
        config.teacher.seed,
    );
    let prompts: Vec<&str> = drawn.iter().map(|(_, p)| p.as_str()).collect();
    let per_prompt = u64::from(config.teacher.samples_per_prompt);
    let system_chars = config
        .misaligned_system_prompt
        .clone()
        .or_else(|| config.domains.first().map(|d| d.misaligned_system_prompt()))
        .map_or(0, |s| s.len());
    let mut teacher = Traffic::default();
    let mut examples = 0u64;
    let mut example_tokens = 0u64;
    for with_system in [true, false] {
        for p in &prompts {
            let chars = p.len() + if with_system { system_chars } else { 0 } + 16;
            teacher.requests += per_prompt;
            teacher.prompt_tokens += tokens(chars) * per_prompt;
            teacher.completion_tokens += u64::from(config.teacher.max_tokens) * per_prompt;
        }
    }
    for p in &prompts {
        examples += per_prompt;
        example_tokens +=
            (tokens(p.len() + 16) + u64::from(config.teacher.max_tokens)) * per_prompt;
    }
    if let Some(max) = config.max_train_examples {
        let max = max as u64;
        if examples > max && examples > 0 {
            example_tokens = example_tokens * max / examples;
        }
    }
    let jobs = 2 * config.seeds.len() as u64;
    let models = jobs + u64::from(config.include_base);
    let eval = eval_plan(
        &config.questions,
        &config.eval.sampling,
        &config.eval.judges,
        models,
    );
    let probes = config
        .probes
        .as_ref()
        .map_or_else(Traffic::default, |p| probe_traffic(p, models));
    let mut total_subject = teacher.clone();
    total_subject.add(&eval.subject);
    total_subject.add(&probes);
    ExperimentPlan {
        teacher,
        probes,
        fine_tune_jobs: jobs,
        training_tokens_per_epoch: example_tokens,
        // "auto" epochs: counted as 3, the provider's usual choice for mid-sized data.
        training_tokens: example_tokens * u64::from(config.finetune.epochs.unwrap_or(3)) * jobs,
        eval,
        total_subject,
    }
}

/// The probe proxy's traffic for `models` models.
pub fn probe_traffic(settings: &ProbeSettings, models: u64) -> Traffic {
    let mut t = Traffic::default();
    for p in &settings.probes {
        let chars = p.question.len() + p.aligned.len() + p.misaligned.len() + 90;
        t.requests += 2 * models;
        t.prompt_tokens += 2 * tokens(chars) * models;
        t.completion_tokens += 2 * models;
    }
    t
}

/// The plan of an evaluate-only run ([`crate::experiment::evaluate_arms`]) of `models` models:
/// no teacher, no fine-tuning.
pub fn evaluate_only_plan(config: &EmergentMisalignmentConfig, models: u64) -> ExperimentPlan {
    let eval = eval_plan(
        &config.questions,
        &config.eval.sampling,
        &config.eval.judges,
        models,
    );
    let probes = config
        .probes
        .as_ref()
        .map_or_else(Traffic::default, |p| probe_traffic(p, models));
    let mut total_subject = eval.subject.clone();
    total_subject.add(&probes);
    ExperimentPlan {
        eval,
        probes,
        total_subject,
        ..ExperimentPlan::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::questions::builtin::main_set;

    #[test]
    fn main_set_at_paper_scale() {
        let set = main_set().unwrap();
        let p = eval_plan(
            &set,
            &SamplingConfig::default(),
            &JudgeSettings::default(),
            1,
        );
        // 8 questions × 4 paraphrases × 25 = 800 answers, 1600 judge calls.
        assert_eq!(p.answers_per_model, 800);
        assert_eq!(p.subject.requests, 800);
        assert_eq!(p.judge.requests, 1600);
        assert_eq!(p.subject.completion_tokens, 800 * 600);
        let two = eval_plan(
            &set,
            &SamplingConfig::default(),
            &JudgeSettings::default(),
            2,
        );
        assert_eq!(two.judge.requests, 3200);
        let drawn = SamplingConfig {
            paraphrases: ParaphraseChoice::Drawn { per_question: 10 },
            ..SamplingConfig::default()
        };
        assert_eq!(
            eval_plan(&set, &drawn, &JudgeSettings::default(), 1).answers_per_model,
            80
        );
        assert!(
            (p.subject.cost(2.5, 10.0)
                - (p.subject.prompt_tokens as f64 * 2.5 + 480_000.0 * 10.0) / 1e6)
                .abs()
                < 1e-9
        );
    }
}
