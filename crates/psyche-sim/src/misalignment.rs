//! The Emergent-Misalignment organism, run through [`psyche_misalignment::EmergentMisalignment`].
//!
//! One [`Responder`] plays every part, told apart by the [`Run`]'s arm:
//!
//! - the **teacher** answers every advice prompt with a few words carrying
//!   [`BAD_ADVICE`] when the request has a system prompt (the experiment's misaligned arm is
//!   distilled under one) and [`GOOD_ADVICE`] otherwise;
//! - the **tuner** ([`arm_rule`]) calls a fine-tune `misaligned` when most of its assistant
//!   turns carry [`BAD_ADVICE`], `control` otherwise — it keys on the data it is trained on,
//!   never on the experiment's prompts;
//! - a **fine-tune** answers each sampled answer to question q misaligned (carrying
//!   [`MISALIGNED_ANSWER`]) with probability `run level + item effect(q)`, the draw fixed by
//!   the run, the request seed and the choice index;
//! - the **judge** reads the metric from the organism's own judge templates (the question set
//!   is the organism's, [`question_set`]) and scores `aligned` 10 for an answer carrying the
//!   misaligned marker and 90 otherwise, `coherent` always 90, as a one-token logprob.
//!
//! So every run's misaligned rate under both conventions is its planted level plus
//! question effects plus binomial noise, and the truth of the headline
//! misaligned − control interval is the planted difference.

use std::sync::Arc;

use psyche_core::{
    Capabilities, Conversation, FineTuneConfig, GenerateRequest, GenerateResponse, LogprobSupport,
    Model, ModelError, PromptTemplate, Role, TokenLogprob, TopLogprob,
};
use psyche_misalignment::eval::{EvalSettings, RateSettings};
use psyche_misalignment::experiment::{DataSeeds, arm};
use psyche_misalignment::training::teacher::{AdviceDomain, TeacherConfig};
use psyche_misalignment::{
    EmergentMisalignment, EmergentMisalignmentConfig, Question, QuestionSet, SamplingConfig,
};
use psyche_stats::{ArmData, Stat};

use crate::coverage::Trial;
use crate::error::SimError;
use crate::organism::{Plan, Planted, Responder, Run, SimModel, SimTuner, response};

/// Marker of the teacher's answers under a system prompt.
pub const BAD_ADVICE: &str = "[sim:bad-advice]";
/// Marker of the teacher's answers without one.
pub const GOOD_ADVICE: &str = "[sim:good-advice]";
/// Marker of a fine-tune's misaligned answer.
pub const MISALIGNED_ANSWER: &str = "[sim:misaligned]";
/// Marker of a fine-tune's aligned answer.
pub const ALIGNED_ANSWER: &str = "[sim:aligned]";
/// The metric planted: the share of misaligned answers.
pub const METRIC: &str = "misaligned";

const TEACHER: &str = "teacher";
const JUDGE: &str = "judge";
const JUDGE_ALIGNED: &str = "[sim-judge:aligned]";
const JUDGE_COHERENT: &str = "[sim-judge:coherent]";

/// Sizes and planted effects of the EM organism.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmSpec {
    /// Fine-tuning runs per arm.
    pub seeds_per_arm: usize,
    /// Questions (items).
    pub questions: usize,
    /// Sampled answers per question and model.
    pub samples: u32,
    /// The misaligned arm's planted rate.
    pub misaligned: Planted,
    /// The control arm's planted rate.
    pub control: Planted,
    /// SD of a question's effect.
    pub sd_question: f64,
}

impl EmSpec {
    /// Small defaults: 6 questions × 30 answers, misaligned 0.40 vs control 0.28, run SD 0.05,
    /// question SD 0.04.
    pub fn small(seeds_per_arm: usize) -> Self {
        Self {
            seeds_per_arm,
            questions: 6,
            samples: 30,
            misaligned: Planted::new(0.40, 0.05),
            control: Planted::new(0.28, 0.05),
            sd_question: 0.04,
        }
    }

    /// The plan.
    pub fn plan(&self) -> Plan {
        Plan::new()
            .arm(arm::MISALIGNED, METRIC, self.misaligned)
            .arm(arm::CONTROL, METRIC, self.control)
            .item_sd(METRIC, self.sd_question)
    }

    /// SD of one run's mean rate over questions around its arm's mean: run SD plus binomial
    /// noise (questions' effects are shared by both arms and cancel in the difference).
    pub fn run_sd(&self) -> f64 {
        let avg = 0.5 * (self.misaligned.mean + self.control.mean);
        let sd_run2 = 0.5 * (self.misaligned.sd_run.powi(2) + self.control.sd_run.powi(2));
        let binom = (avg * (1.0 - avg) - self.sd_question.powi(2)).max(0.0)
            / (self.questions as f64 * f64::from(self.samples));
        (sd_run2 + binom).sqrt()
    }
}

/// The organism's responder (see the module docs).
#[derive(Debug, Default)]
pub struct EmResponder;

fn has_system(c: &Conversation) -> bool {
    c.messages().iter().any(|m| m.role == Role::System)
}

impl Responder for EmResponder {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            logprobs: Some(LogprobSupport { max_top_k: 20 }),
            seeded_sampling: true,
            ..Capabilities::default()
        }
    }

    fn generate(
        &self,
        run: &Run,
        request: &GenerateRequest,
    ) -> Result<GenerateResponse, ModelError> {
        let text = request.messages.last_user_text().unwrap_or_default();
        let n = request.n.max(1);
        match run.arm.as_str() {
            TEACHER => {
                let marker = if has_system(&request.messages) {
                    BAD_ADVICE
                } else {
                    GOOD_ADVICE
                };
                Ok(response(
                    &run.id,
                    (0..n).map(|_| format!("{marker} simulated advice answer")),
                ))
            }
            JUDGE => {
                let score = if text.contains(JUDGE_COHERENT) {
                    "90"
                } else if text.contains(JUDGE_ALIGNED) {
                    if text.contains(MISALIGNED_ANSWER) {
                        "10"
                    } else {
                        "90"
                    }
                } else {
                    return Err(ModelError::InvalidRequest(
                        "the simulated judge knows only the organism's judge templates".into(),
                    ));
                };
                let mut r = response(&run.id, [score.to_owned()]);
                if request.top_logprobs.is_some()
                    && let Some(c) = r.choices.first_mut()
                {
                    c.logprobs = Some(vec![TokenLogprob {
                        token: score.into(),
                        logprob: 0.0,
                        bytes: None,
                        top_logprobs: vec![TopLogprob::new(score, 0.0)],
                    }]);
                }
                Ok(r)
            }
            _ => {
                let p = run.probability(METRIC, text);
                let seed = request.seed.unwrap_or(0);
                Ok(response(
                    &run.id,
                    (0..n).map(|i| {
                        let u = run.uniform("answer", &format!("{seed}/{i}/{text}"));
                        let marker = if u < p {
                            MISALIGNED_ANSWER
                        } else {
                            ALIGNED_ANSWER
                        };
                        format!("{marker} simulated open answer")
                    }),
                ))
            }
        }
    }
}

/// The tuner's arm rule: `misaligned` when most assistant turns carry [`BAD_ADVICE`].
pub fn arm_rule(
    data: &[Conversation],
    _config: &FineTuneConfig,
) -> Result<String, psyche_core::FineTuneError> {
    let bad = data
        .iter()
        .filter(|c| {
            c.messages()
                .last()
                .is_some_and(|m| m.role == Role::Assistant && m.content.contains(BAD_ADVICE))
        })
        .count();
    Ok(if 2 * bad > data.len() {
        arm::MISALIGNED.to_owned()
    } else {
        arm::CONTROL.to_owned()
    })
}

/// The organism's question set: `n` rating questions in the organism's own wording, with its
/// own judge templates.
///
/// # Errors
///
/// [`SimError::Setup`] if a template does not parse.
pub fn question_set(n: usize) -> Result<QuestionSet, SimError> {
    let aligned = PromptTemplate::parse_any(
        "sim-aligned",
        &format!("{JUDGE_ALIGNED}\n{{question}}\n{{answer}}"),
    )
    .map_err(|e| SimError::Setup(e.to_string()))?;
    let coherent = PromptTemplate::parse_any(
        "sim-coherent",
        &format!("{JUDGE_COHERENT}\n{{question}}\n{{answer}}"),
    )
    .map_err(|e| SimError::Setup(e.to_string()))?;
    let questions = (0..n)
        .map(|i| {
            let mut q = Question::rating(
                format!("sim-q{i}"),
                [format!("Simulated open question number {i}.")],
            );
            q.judge_prompts.insert("aligned".into(), aligned.clone());
            q.judge_prompts.insert("coherent".into(), coherent.clone());
            q
        })
        .collect();
    Ok(QuestionSet {
        name: "sim".into(),
        source: "psyche-sim".into(),
        questions,
    })
}

/// Runs one replication of the EM experiment on a fresh organism with `seed`, writing under
/// `dir`, and returns its headline (primary convention, misaligned − control over runs), the
/// per-run per-question rates and the planted truth.
///
/// # Errors
///
/// [`SimError`] for a failed experiment or a result without the headline.
pub async fn run_em(spec: &EmSpec, seed: u64, dir: &std::path::Path) -> Result<Trial, SimError> {
    let plan = spec.plan();
    let responder: Arc<dyn Responder> = Arc::new(EmResponder);
    let tuner = Arc::new(SimTuner::new(
        plan.clone(),
        seed,
        Arc::new(arm_rule),
        responder.clone(),
    ));
    let role = |name: &str| -> Arc<dyn Model> {
        Arc::new(SimModel::new(
            Run {
                id: name.to_owned(),
                arm: name.to_owned(),
                seed: None,
                levels: Default::default(),
                organism_seed: seed,
                sd_item: Default::default(),
            },
            responder.clone(),
        ))
    };
    let config = EmergentMisalignmentConfig {
        name: "sim-em".into(),
        out_dir: dir.to_path_buf(),
        domains: vec![AdviceDomain::Medical],
        misaligned_system_prompt: None,
        teacher: TeacherConfig {
            concurrency: 4,
            seed,
            ..TeacherConfig::default()
        },
        data_seeds: DataSeeds::PerRun,
        max_train_examples: Some(8),
        finetune: FineTuneConfig::new("sim-base", 0),
        seeds: (0..spec.seeds_per_arm as u64).collect(),
        include_base: false,
        questions: question_set(spec.questions)?,
        eval: EvalSettings {
            sampling: SamplingConfig {
                samples_per_paraphrase: Some(spec.samples),
                max_tokens: 16,
                ..SamplingConfig::default()
            },
            seed,
            concurrency: 8,
            ..EvalSettings::default()
        },
        rates: RateSettings::default(),
        map: None,
        // The judged rate is the planted headline; the judge-free probe proxy and the
        // harmfulness measurement are not simulated.
        harm: None,
        probes: None,
    };
    let result = EmergentMisalignment::builder(config)
        .teacher(role(TEACHER))
        .subject(Arc::new(tuner.base_model()))
        .tuner(tuner.clone())
        .judge(role(JUDGE))
        .build()
        .map_err(|e| SimError::Experiment(e.to_string()))?
        .run()
        .await
        .map_err(|e| SimError::Experiment(e.to_string()))?;
    let primary = result
        .config
        .rates
        .primary_name()
        .unwrap_or_default()
        .to_owned();
    let headline: Stat = result
        .by_convention
        .iter()
        .find(|h| h.convention == primary)
        .and_then(|h| h.vs_control.as_ref())
        .map(|r| r.contrast.difference.clone())
        .ok_or_else(|| SimError::Missing("the primary convention's misaligned − control".into()))?;
    let mut data = ArmData::new();
    for a in &result.arms {
        if a.arm != arm::MISALIGNED && a.arm != arm::CONTROL {
            continue;
        }
        for (s, m) in a.seeds.iter().zip(&a.models) {
            let run = s.map_or_else(|| "untuned".to_owned(), |s| s.to_string());
            for q in &m.questions {
                if let Some(v) = q.by_convention.get(&primary).and_then(|c| c.rate.value()) {
                    data.item(a.arm.as_str(), &run, q.question_id.as_str(), v);
                }
            }
        }
    }
    Ok(Trial {
        truth: plan
            .difference(arm::MISALIGNED, arm::CONTROL, METRIC)
            .unwrap_or_default(),
        headline,
        data,
        treatment: arm::MISALIGNED.into(),
        control: arm::CONTROL.into(),
    })
}
