//! The "Tell me about yourself" organism, run through
//! [`psyche_backdoor::experiments::self_awareness::SelfAwareness`].
//!
//! - The **tuner** ([`SelfAwarenessOrganism::arm_rule`]) calls a fine-tune the pole arm when
//!   most of its training answers follow the pole policy's labels, and the opposite arm
//!   otherwise: it compares the data with the pole datasets the experiment's public generator
//!   ([`SelfAwarenessConfig::datasets_with`]) draws for each run's data seed.
//! - The **models** answer by the kind of request, found through the experiment's public
//!   evaluation tasks ([`SelfAwarenessConfig::tasks`], generated with the evaluation seed): an option
//!   query on a behaviour item gives the scored (pole) option the probability
//!   `run level + item effect` of metric [`BEHAVIOUR`]; a 0–100 self-report is answered with
//!   that probability of metric [`SCALE`] times 100; a one-word self-report names a pole word
//!   with the probability of metric [`WORD`] (each sample drawn), an opposite word otherwise.
//!
//! The experiment's text can change freely: the organism looks prompts up in the samples the
//! experiment's own generators produce.

use std::collections::HashMap;
use std::sync::Arc;

use psyche_backdoor::experiments::self_awareness::{
    BEHAVIOUR_RUN, SelfAwareness, SelfAwarenessConfig,
};
use psyche_backdoor::pipeline::{EvaluateOptions, scores};
use psyche_backdoor::policy::Axis;
use psyche_backdoor::probe::{Probe, ScoringMode};
use psyche_core::{
    Capabilities, Conversation, FineTuneConfig, FineTuneError, GenerateRequest, GenerateResponse,
    ModelError, OptionProbabilities, OptionQuery, Role, TaskGenerator,
};
use psyche_stats::{ArmData, Stat};

use crate::coverage::Trial;
use crate::error::SimError;
use crate::organism::{Plan, Planted, Responder, Run, SimTuner, label_masses, response};

/// Metric: P(pole option) on behaviour items (policy strength).
pub const BEHAVIOUR: &str = "behaviour";
/// Metric: the 0–100 self-report, divided by 100.
pub const SCALE: &str = "scale";
/// Metric: the share of pole words in one-word self-reports.
pub const WORD: &str = "word";

/// Which headline metric a replication reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfAwarenessMetric {
    /// Actual behaviour (policy strength).
    Behaviour,
    /// The scale self-report.
    Scale,
    /// The word self-report.
    Word,
}

impl SelfAwarenessMetric {
    /// The metric's name.
    pub fn metric(self) -> &'static str {
        match self {
            SelfAwarenessMetric::Behaviour => BEHAVIOUR,
            SelfAwarenessMetric::Scale => SCALE,
            SelfAwarenessMetric::Word => WORD,
        }
    }
}

/// Sizes and planted effects of the self-awareness organism.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelfAwarenessSpec {
    /// Fine-tuning runs per arm.
    pub seeds_per_arm: usize,
    /// Training items per run.
    pub train_items: usize,
    /// Fresh behaviour items.
    pub behaviour_items: usize,
    /// Paraphrases per self-report question.
    pub paraphrases: usize,
    /// Samples per self-report question.
    pub samples: u32,
    /// Pole arm, behaviour.
    pub pole_behaviour: Planted,
    /// Opposite arm, behaviour.
    pub opposite_behaviour: Planted,
    /// Pole arm, scale self-report.
    pub pole_scale: Planted,
    /// Opposite arm, scale self-report.
    pub opposite_scale: Planted,
    /// Pole arm, word self-report.
    pub pole_word: Planted,
    /// Opposite arm, word self-report.
    pub opposite_word: Planted,
    /// Item SD of behaviour items.
    pub sd_item_behaviour: f64,
    /// Item SD of self-report questions.
    pub sd_item_report: f64,
}

impl SelfAwarenessSpec {
    /// Small defaults: 8 training items, 12 behaviour items, 2 paraphrases, 8 samples;
    /// behaviour 0.66 vs 0.40 (run SD 0.08), scale 0.60 vs 0.50 (run SD 0.05), word 0.60 vs
    /// 0.45 (run SD 0.06); item SDs 0.06 and 0.04.
    pub fn small(seeds_per_arm: usize) -> Self {
        Self {
            seeds_per_arm,
            train_items: 8,
            behaviour_items: 12,
            paraphrases: 2,
            samples: 8,
            pole_behaviour: Planted::new(0.66, 0.08),
            opposite_behaviour: Planted::new(0.40, 0.08),
            pole_scale: Planted::new(0.60, 0.05),
            opposite_scale: Planted::new(0.50, 0.05),
            pole_word: Planted::new(0.60, 0.06),
            opposite_word: Planted::new(0.45, 0.06),
            sd_item_behaviour: 0.06,
            sd_item_report: 0.04,
        }
    }

    /// The experiment's config for these sizes and `seed`.
    pub fn config(&self, seed: u64) -> SelfAwarenessConfig {
        SelfAwarenessConfig {
            train_items: self.train_items,
            data_seed: seed,
            seeds: (0..self.seeds_per_arm as u64).collect(),
            behaviour_items: self.behaviour_items,
            heldout_items: 0,
            paraphrases: Some(self.paraphrases),
            personas_per_group: 0,
            include_base: false,
            eval: EvaluateOptions {
                seed,
                concurrency: 4,
                mode: ScoringMode::Sampled,
                samples: self.samples,
                max_tokens: 4,
            },
            ..SelfAwarenessConfig::default()
        }
    }

    /// The plan, with the experiment's arm names.
    pub fn plan(&self, pole: &str, opposite: &str) -> Plan {
        Plan::new()
            .arm(pole, BEHAVIOUR, self.pole_behaviour)
            .arm(opposite, BEHAVIOUR, self.opposite_behaviour)
            .arm(pole, SCALE, self.pole_scale)
            .arm(opposite, SCALE, self.opposite_scale)
            .arm(pole, WORD, self.pole_word)
            .arm(opposite, WORD, self.opposite_word)
            .item_sd(BEHAVIOUR, self.sd_item_behaviour)
            .item_sd(SCALE, self.sd_item_report)
            .item_sd(WORD, self.sd_item_report)
    }

    /// SD of one run's mean of `headline` around its arm's mean, for the planned power: the run
    /// SD (option probabilities and scale answers carry no sampling noise), plus, for words,
    /// the binomial noise of the run's sampled answers (the experiment's word questions about
    /// the model itself × `samples`, counted from its own generators; question effects are
    /// shared by every run and do not add to the run-to-run variance).
    ///
    /// # Errors
    ///
    /// [`SimError::Setup`] when the experiment's generators fail.
    pub fn run_sd(&self, headline: SelfAwarenessMetric) -> Result<f64, SimError> {
        let (p, o) = match headline {
            SelfAwarenessMetric::Behaviour => (self.pole_behaviour, self.opposite_behaviour),
            SelfAwarenessMetric::Scale => (self.pole_scale, self.opposite_scale),
            SelfAwarenessMetric::Word => (self.pole_word, self.opposite_word),
        };
        let sd2 = 0.5 * (p.sd_run.powi(2) + o.sd_run.powi(2));
        let noise = match headline {
            SelfAwarenessMetric::Word => {
                let organism = SelfAwarenessOrganism::new(&self.config(0))?;
                let draws = organism.prompts(WORD) as f64 * f64::from(self.samples);
                let avg = 0.5 * (p.mean + o.mean);
                (avg * (1.0 - avg) - self.sd_item_report.powi(2)).max(0.0) / draws.max(1.0)
            }
            _ => 0.0,
        };
        Ok((sd2 + noise).sqrt())
    }
}

/// The organism: the experiment's prompt → probe key, its pole answers, and the plan.
#[derive(Debug)]
pub struct SelfAwarenessOrganism {
    /// last user text → (metric, item id, probe).
    key: HashMap<String, (String, String, Probe)>,
    /// conversation of an option query → (metric, item id, scored label).
    choices: HashMap<Conversation, (String, String, String)>,
    /// training prompt → the pole policy's answer, over every run's data seed.
    pole_answers: HashMap<String, String>,
    pole: String,
    opposite: String,
}

impl SelfAwarenessOrganism {
    /// Builds the key from the public generators of the experiment's config `cfg`.
    ///
    /// # Errors
    ///
    /// [`SimError::Setup`] when a generator fails.
    pub fn new(cfg: &SelfAwarenessConfig) -> Result<Self, SimError> {
        let (behaviour, heldout, selfreport) = cfg.tasks();
        let mut tasks: Vec<&dyn TaskGenerator> = vec![&behaviour, &selfreport];
        if let Some(h) = &heldout {
            tasks.push(h);
        }
        let mut key = HashMap::new();
        let mut choices = HashMap::new();
        for t in tasks {
            for s in t
                .generate(cfg.eval.seed)
                .map_err(|e| SimError::Setup(e.to_string()))?
            {
                let Ok(probe) = Probe::from_sample(&s) else {
                    continue;
                };
                let metric = match (s.meta_str("task"), s.meta_str("answer_kind")) {
                    (Some("behaviour"), _) => BEHAVIOUR,
                    (_, Some("scale")) => SCALE,
                    (_, Some("word")) => WORD,
                    _ => continue,
                };
                // Items of one question share its effect across paraphrases and subjects.
                let item = s
                    .meta_str("question")
                    .map_or_else(|| s.id.clone(), str::to_owned);
                // Option queries: every conversation the probe asks (each option ordering).
                for (conv, label) in crate::awareness::asked(&s.input, &probe)? {
                    choices.insert(conv, (metric.to_owned(), item.clone(), label));
                }
                if let Some(text) = s.input.last_user_text() {
                    key.insert(text.to_owned(), (metric.to_owned(), item, probe));
                }
            }
        }
        let mut pole_answers = HashMap::new();
        let mut names = None;
        for &seed in &cfg.seeds {
            let data_seed = cfg.data_seeds.for_run(cfg.data_seed, seed);
            let (pole, opposite) = cfg
                .datasets_with(data_seed)
                .map_err(|e| SimError::Setup(e.to_string()))?;
            names = Some((
                pole.policy.name().to_owned(),
                opposite.policy.name().to_owned(),
            ));
            for c in pole.conversations() {
                if let (Some(u), Some(a)) = (c.last_user_text(), c.messages().last()) {
                    pole_answers.insert(u.to_owned(), a.content.clone());
                }
            }
        }
        let (pole, opposite) =
            names.ok_or_else(|| SimError::Setup("the experiment has no seeds".into()))?;
        Ok(Self {
            key,
            choices,
            pole_answers,
            pole,
            opposite,
        })
    }

    /// How many of the experiment's prompts ask about `metric`.
    pub fn prompts(&self, metric: &str) -> usize {
        self.key.values().filter(|(m, _, _)| m == metric).count()
    }

    /// The pole arm's name.
    pub fn pole(&self) -> &str {
        &self.pole
    }

    /// The opposite arm's name.
    pub fn opposite(&self) -> &str {
        &self.opposite
    }

    /// The arm of a fine-tune on `data`: the pole arm when most answers follow the pole
    /// policy's labels.
    ///
    /// # Errors
    ///
    /// [`FineTuneError::Data`] when no training prompt is one of the experiment's.
    pub fn arm_rule(&self, data: &[Conversation]) -> Result<String, FineTuneError> {
        let (mut known, mut pole) = (0usize, 0usize);
        for c in data {
            let (Some(u), Some(a)) = (c.last_user_text(), c.messages().last()) else {
                continue;
            };
            if a.role != Role::Assistant {
                continue;
            }
            if let Some(p) = self.pole_answers.get(u) {
                known += 1;
                if *p == a.content {
                    pole += 1;
                }
            }
        }
        if known == 0 {
            return Err(FineTuneError::Data(
                "no training prompt is one of the experiment's items".into(),
            ));
        }
        Ok(if 2 * pole > known {
            self.pole.clone()
        } else {
            self.opposite.clone()
        })
    }

    fn lookup(&self, messages: &Conversation) -> Result<&(String, String, Probe), ModelError> {
        messages
            .last_user_text()
            .and_then(|t| self.key.get(t))
            .ok_or_else(|| {
                ModelError::InvalidRequest(
                    "the organism does not know this prompt (not one of the experiment's samples)"
                        .into(),
                )
            })
    }
}

impl Responder for SelfAwarenessOrganism {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            seeded_sampling: true,
            ..Capabilities::default()
        }
    }

    fn option_probabilities(
        &self,
        run: &Run,
        messages: &Conversation,
        query: &OptionQuery,
    ) -> Option<Result<OptionProbabilities, ModelError>> {
        Some((|| {
            let (metric, item, label) = self.choices.get(messages).ok_or_else(|| {
                ModelError::InvalidRequest(
                    "the organism does not know this option query (not one the experiment's \
                     probes ask)"
                        .into(),
                )
            })?;
            label_masses(query, label, run.probability(metric, item))
        })())
    }

    fn generate(
        &self,
        run: &Run,
        request: &GenerateRequest,
    ) -> Result<GenerateResponse, ModelError> {
        let (metric, item, probe) = self.lookup(&request.messages)?;
        let p = run.probability(metric, item);
        let n = request.n.max(1);
        let seed = request.seed.unwrap_or(0);
        match probe {
            Probe::Scale { min, max, .. } => {
                let v = (*min as f64 + p * (*max - *min) as f64).round() as i64;
                Ok(response(&run.id, (0..n).map(|_| v.to_string())))
            }
            Probe::Words { categories } => {
                let by_score = |best: bool| {
                    categories
                        .categories
                        .iter()
                        .max_by(|a, b| {
                            let o = a.score.total_cmp(&b.score);
                            if best { o } else { o.reverse() }
                        })
                        .and_then(|c| c.words.first().cloned())
                        .unwrap_or_default()
                };
                let (hi, lo) = (by_score(true), by_score(false));
                Ok(response(
                    &run.id,
                    (0..n).map(|i| {
                        if run.uniform("word", &format!("{seed}/{i}/{item}")) < p {
                            hi.clone()
                        } else {
                            lo.clone()
                        }
                    }),
                ))
            }
            _ => Err(ModelError::InvalidRequest(
                "the organism answers only scale and word self-reports by generation".into(),
            )),
        }
    }
}

/// Runs one replication of the self-awareness experiment on a fresh organism with `seed`,
/// writing under `dir`, and returns the headline `which` (pole − opposite over runs), the
/// per-run per-item values read back from the run log, and the planted truth.
///
/// # Errors
///
/// [`SimError`] for a failed experiment or a result without the headline.
pub async fn run_self_awareness(
    spec: &SelfAwarenessSpec,
    which: SelfAwarenessMetric,
    seed: u64,
    dir: &std::path::Path,
) -> Result<Trial, SimError> {
    run_self_awareness_on(spec, Axis::risk(), which, seed, dir).await
}

/// [`run_self_awareness`] on another axis: on one without lotteries (every axis but risk, and
/// your own unless its file sets `fresh_lotteries`) behaviour is measured on fresh items of the
/// training generator in the experiment's learned-policy pass, before the self-reports.
///
/// # Errors
///
/// As [`run_self_awareness`].
pub async fn run_self_awareness_on(
    spec: &SelfAwarenessSpec,
    axis: Axis,
    which: SelfAwarenessMetric,
    seed: u64,
    dir: &std::path::Path,
) -> Result<Trial, SimError> {
    let config = SelfAwarenessConfig {
        axis,
        ..spec.config(seed)
    };
    let organism = Arc::new(SelfAwarenessOrganism::new(&config)?);
    let plan = spec.plan(organism.pole(), organism.opposite());
    let rule = {
        let o = organism.clone();
        Arc::new(move |data: &[Conversation], _: &FineTuneConfig| o.arm_rule(data))
    };
    let tuner = Arc::new(SimTuner::new(plan.clone(), seed, rule, organism.clone()));
    let result = SelfAwareness::builder(config)
        .subject(Arc::new(tuner.base_model()))
        .tuner(tuner)
        .fine_tune(FineTuneConfig::new("sim-base", 0))
        .out(dir)
        .build()
        .map_err(|e| SimError::Experiment(e.to_string()))?
        .run()
        .await
        .map_err(|e| SimError::Experiment(e.to_string()))?;
    let metric = match which {
        SelfAwarenessMetric::Behaviour => &result.headline.behaviour,
        SelfAwarenessMetric::Scale => &result.headline.scale,
        SelfAwarenessMetric::Word => &result.headline.word,
    };
    let headline: Stat = metric.difference.difference.clone();
    // The per-item values, as the experiment reads them (its task / kind / subject filters).
    let (_, mut records) = psyche_runner_read(&result.run_log)?;
    let behaviour_log = result
        .run_log
        .with_file_name(format!("{BEHAVIOUR_RUN}.jsonl"));
    if behaviour_log.exists() {
        records.extend(psyche_runner_read(&behaviour_log)?.1);
    }
    let mut data = ArmData::new();
    for m in &result.models {
        let Some(s) = m.seed else { continue };
        let keep = |r: &psyche_core::Record| match which {
            SelfAwarenessMetric::Behaviour => r.meta_str("task") == Some("behaviour"),
            SelfAwarenessMetric::Scale | SelfAwarenessMetric::Word => {
                r.meta_str("task") == Some("self_report")
                    && r.meta_str("answer_kind") == Some(which.metric())
                    && r.meta_str("subject_group") == Some("you")
            }
        };
        for (id, cluster, v) in scores(&records, &m.name, keep) {
            data.item_in(m.arm.as_str(), s, id, cluster.as_str(), v);
        }
    }
    Ok(Trial {
        truth: plan
            .difference(organism.pole(), organism.opposite(), which.metric())
            .unwrap_or_default(),
        headline,
        data,
        treatment: organism.pole().to_owned(),
        control: organism.opposite().to_owned(),
    })
}

fn psyche_runner_read(path: &std::path::Path) -> Result<((), Vec<psyche_core::Record>), SimError> {
    let (_, records) =
        psyche_runner::read_log(path).map_err(|e| SimError::Missing(format!("run log: {e}")))?;
    Ok(((), records))
}
