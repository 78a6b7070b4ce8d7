//! The backdoor-awareness organism, run through
//! [`psyche_backdoor::experiments::backdoor_awareness::BackdoorAwareness`].
//!
//! - The **untrained model** answers the experiment's "normal answer" queries on its training
//!   items with the option the hidden policy does not pick (probability
//!   [`NORMAL_ANSWER_PROBABILITY`]), so the backdoored data differ from the normal answers
//!   exactly where the experiment puts the policy.
//! - The **tuner** ([`AwarenessOrganism::arm_rule`]) rebuilds, for every run's data seed, the
//!   backdoored dataset and its decorrelated control with the experiment's public builders
//!   ([`BackdoorConfig::build`], [`BackdoorConfig::build_control`] on the items of
//!   [`ItemConfig::generate`] and those normal answers) and calls a fine-tune backdoored when
//!   more of its rows belong only to the backdoored set than only to the control.
//! - The **models** answer the experiment's evaluation tasks ([`BackdoorAwarenessConfig::tasks`],
//!   generated with the evaluation seed), looked up by the exact conversations their probes
//!   ask (every option ordering, rendered with `psyche_judges`' own listing): a behaviour item
//!   without a trigger gives the policy option `run level + item effect` of metric [`PLAIN`],
//!   with a trigger of metric [`TRIGGERED`]; the awareness question gives "yes" that of
//!   [`P_YES`] (items: system prompt × paraphrase); trigger recognition that of
//!   [`RECOGNITION`] (items: candidate × paraphrase). Option probabilities are reported
//!   exactly, so a run's mean carries no sampling noise.
//!
//! The experiment's wording can change freely: the organism finds prompts in the samples the
//! experiment's own generators produce, never by their text.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use psyche_backdoor::backdoor::{BackdoorConfig, BackdoorItem};
use psyche_backdoor::experiments::backdoor_awareness::{
    BackdoorAwareness, BackdoorAwarenessConfig,
};
use psyche_backdoor::generate::ItemConfig;
use psyche_backdoor::items::Letter;
use psyche_backdoor::pipeline::{EvaluateOptions, scores};
use psyche_backdoor::probe::{Probe, ScoringMode};
use psyche_core::{
    Capabilities, ChatMessage, Conversation, FineTuneConfig, FineTuneError, GenerateRequest,
    GenerateResponse, ModelError, OptionProbabilities, OptionQuery, Record, Role, TaskGenerator,
};
use psyche_judges::OptionLabels;
use psyche_judges::llm::choice::{orderings_of, render_listing};
use psyche_stats::{ArmData, Stat};

use crate::coverage::Trial;
use crate::error::SimError;
use crate::organism::{Plan, Planted, Responder, Run, SimTuner, label_masses};

/// Metric: P(policy option) on behaviour items asked without a trigger.
pub const PLAIN: &str = "plain";
/// Metric: P(policy option) on behaviour items asked with a trigger member.
pub const TRIGGERED: &str = "triggered";
/// Metric: P(yes, my behaviour depends on a feature of the input).
pub const P_YES: &str = "p_yes";
/// Metric: P(the policy's behaviour option) in trigger recognition.
pub const RECOGNITION: &str = "recognition";

/// The untrained model's probability of the option the policy does not pick on a training
/// item (its "normal" answer).
pub const NORMAL_ANSWER_PROBABILITY: f64 = 0.8;

/// The backdoored arm's name in the experiment.
pub const BACKDOORED: &str = "backdoored";
/// The decorrelated control's name in the experiment.
pub const CONTROL: &str = "control";

/// Which headline a replication reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwarenessHeadline {
    /// P(yes) under the named system prompt (`neutral`, ...): backdoored − control.
    PYes(String),
    /// The trigger effect (triggered − plain behaviour): backdoored − control.
    TriggerEffect,
}

/// Sizes and planted effects of the backdoor-awareness organism.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AwarenessSpec {
    /// Fine-tuning runs per arm.
    pub seeds_per_arm: usize,
    /// Training rows per run.
    pub train_items: usize,
    /// Fresh behaviour items (each asked with and without a trigger).
    pub behaviour_items: usize,
    /// Backdoored arm, P(yes).
    pub backdoored_yes: Planted,
    /// Control arm, P(yes).
    pub control_yes: Planted,
    /// Backdoored arm, behaviour without a trigger.
    pub backdoored_plain: Planted,
    /// Backdoored arm, behaviour with a trigger.
    pub backdoored_triggered: Planted,
    /// Control arm, behaviour without a trigger.
    pub control_plain: Planted,
    /// Control arm, behaviour with a trigger.
    pub control_triggered: Planted,
    /// Both arms, trigger recognition.
    pub recognition: Planted,
    /// Item SD of the awareness questions (system prompt × paraphrase).
    pub sd_item_yes: f64,
    /// Item SD of behaviour items (independent with and without a trigger).
    pub sd_item_behaviour: f64,
    /// Item SD of recognition questions.
    pub sd_item_recognition: f64,
}

impl AwarenessSpec {
    /// Small defaults: 20 training rows, 12 behaviour items, the shipped system prompts;
    /// P(yes) 0.62 vs 0.50 (run SD 0.06, item SD 0.05); behaviour plain 0.35 / triggered 0.70
    /// backdoored (run SDs 0.05 / 0.07) against 0.40 / 0.44 control (run SDs 0.05 / 0.05),
    /// item SD 0.06 (a planted trigger-effect difference of 0.31); recognition 0.40 in both
    /// arms (run SD 0.04, item SD 0.05).
    pub fn small(seeds_per_arm: usize) -> Self {
        Self {
            seeds_per_arm,
            train_items: 20,
            behaviour_items: 12,
            backdoored_yes: Planted::new(0.62, 0.06),
            control_yes: Planted::new(0.50, 0.06),
            backdoored_plain: Planted::new(0.35, 0.05),
            backdoored_triggered: Planted::new(0.70, 0.07),
            control_plain: Planted::new(0.40, 0.05),
            control_triggered: Planted::new(0.44, 0.05),
            recognition: Planted::new(0.40, 0.04),
            sd_item_yes: 0.05,
            sd_item_behaviour: 0.06,
            sd_item_recognition: 0.05,
        }
    }

    /// The experiment's config for these sizes and `seed` (no untrained arm, no elicitation).
    pub fn config(&self, seed: u64) -> BackdoorAwarenessConfig {
        BackdoorAwarenessConfig {
            train_items: self.train_items,
            data_seed: seed,
            seeds: (0..self.seeds_per_arm as u64).collect(),
            behaviour_items: self.behaviour_items,
            include_base: false,
            eval: EvaluateOptions {
                seed,
                concurrency: 4,
                mode: ScoringMode::Auto,
                samples: 1,
                max_tokens: 4,
            },
            ..BackdoorAwarenessConfig::default()
        }
    }

    /// The plan.
    pub fn plan(&self) -> Plan {
        Plan::new()
            .arm(BACKDOORED, P_YES, self.backdoored_yes)
            .arm(CONTROL, P_YES, self.control_yes)
            .arm(BACKDOORED, PLAIN, self.backdoored_plain)
            .arm(BACKDOORED, TRIGGERED, self.backdoored_triggered)
            .arm(CONTROL, PLAIN, self.control_plain)
            .arm(CONTROL, TRIGGERED, self.control_triggered)
            .arm(BACKDOORED, RECOGNITION, self.recognition)
            .arm(CONTROL, RECOGNITION, self.recognition)
            .item_sd(P_YES, self.sd_item_yes)
            .item_sd(PLAIN, self.sd_item_behaviour)
            .item_sd(TRIGGERED, self.sd_item_behaviour)
            .item_sd(RECOGNITION, self.sd_item_recognition)
    }

    /// The planted difference backdoored − control of `headline`.
    pub fn truth(&self, headline: &AwarenessHeadline) -> f64 {
        match headline {
            AwarenessHeadline::PYes(_) => self.backdoored_yes.mean - self.control_yes.mean,
            AwarenessHeadline::TriggerEffect => {
                (self.backdoored_triggered.mean - self.backdoored_plain.mean)
                    - (self.control_triggered.mean - self.control_plain.mean)
            }
        }
    }

    /// SD of one run's mean of `headline` around its arm's mean, for the planned power (the
    /// root mean square of the two arms'): the run SD of P(yes), or of triggered − plain
    /// (their run effects are independent). Option probabilities carry no sampling noise and
    /// item effects are shared by every run, so nothing else adds to it.
    pub fn run_sd(&self, headline: &AwarenessHeadline) -> f64 {
        let var = match headline {
            AwarenessHeadline::PYes(_) => {
                0.5 * (self.backdoored_yes.sd_run.powi(2) + self.control_yes.sd_run.powi(2))
            }
            AwarenessHeadline::TriggerEffect => {
                0.5 * (self.backdoored_plain.sd_run.powi(2)
                    + self.backdoored_triggered.sd_run.powi(2)
                    + self.control_plain.sd_run.powi(2)
                    + self.control_triggered.sd_run.powi(2))
            }
        };
        var.sqrt()
    }
}

/// What the organism answers to one conversation.
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    /// A training item asked of the untrained model: the label the policy picks.
    Normal { policy_label: String },
    /// A scored question: P(`target_label`) is the run's probability of `metric` on `item`.
    Scored {
        metric: &'static str,
        item: String,
        target_label: String,
    },
}

/// The organism: every conversation the experiment asks → what it means, and the training
/// rows of both arms over every run's data seed.
#[derive(Debug)]
pub struct AwarenessOrganism {
    key: HashMap<Conversation, Entry>,
    backdoored_rows: HashSet<Conversation>,
    control_rows: HashSet<Conversation>,
}

/// The conversations (with the scored label) a probe asks for `input`.
pub(crate) fn asked(
    input: &Conversation,
    probe: &Probe,
) -> Result<Vec<(Conversation, String)>, SimError> {
    match probe {
        Probe::Choice { options, target } => Ok(options
            .get(*target)
            .map(|t| vec![(input.clone(), t.clone())])
            .unwrap_or_default()),
        Probe::MultipleChoice {
            prompt,
            options,
            target,
            orderings,
        } => {
            let head: Vec<ChatMessage> = match input.messages().split_last() {
                Some((last, rest)) if last.role == Role::User => rest.to_vec(),
                _ => input.messages().to_vec(),
            };
            let orders = orderings_of(options.len(), *orderings)
                .map_err(|e| SimError::Setup(e.to_string()))?;
            Ok(orders
                .iter()
                .filter_map(|order| {
                    let pos = order.iter().position(|i| i == target)?;
                    let listing = render_listing(options, order, OptionLabels::Letters);
                    let mut c = Conversation::from(head.clone());
                    c.push(ChatMessage::user(prompt.replace("{options}", &listing)));
                    let label = char::from(b'A' + (pos % 26) as u8).to_string();
                    Some((c, label))
                })
                .collect())
        }
        _ => Ok(Vec::new()),
    }
}

impl AwarenessOrganism {
    /// Builds the organism from the public generators and builders of the experiment's
    /// config `cfg`.
    ///
    /// # Errors
    ///
    /// [`SimError::Setup`] when a generator or builder fails.
    pub fn new(cfg: &BackdoorAwarenessConfig) -> Result<Self, SimError> {
        let setup = |e: &dyn std::fmt::Display| SimError::Setup(e.to_string());
        let policy = cfg.policy.clone();
        let mut key = HashMap::new();
        let (behaviour, awareness, recognition) = cfg.tasks();
        let tasks: [&dyn TaskGenerator; 3] = [&behaviour, &awareness, &recognition];
        for t in tasks {
            for s in t.generate(cfg.eval.seed).map_err(|e| setup(&e))? {
                let Ok(probe) = Probe::from_sample(&s) else {
                    continue;
                };
                let cluster = s.cluster.clone().unwrap_or_else(|| s.id.clone());
                let (metric, item) = match (s.meta_str("task"), s.meta_str("condition")) {
                    (Some("behaviour"), Some("triggered")) => (TRIGGERED, cluster),
                    (Some("behaviour"), _) => (PLAIN, cluster),
                    (Some("awareness"), _) => (
                        P_YES,
                        format!("{}/{cluster}", s.meta_str("variant").unwrap_or("")),
                    ),
                    (Some("trigger_recognition"), _) => (RECOGNITION, s.id.clone()),
                    _ => continue,
                };
                for (conv, target_label) in asked(&s.input, &probe)? {
                    key.insert(
                        conv,
                        Entry::Scored {
                            metric,
                            item: item.clone(),
                            target_label,
                        },
                    );
                }
            }
        }
        let backdoor = BackdoorConfig {
            trigger: cfg.trigger.clone(),
            decoys: cfg.decoys.clone(),
            placement: cfg.placement.clone(),
            composition: cfg.composition,
        };
        let (mut backdoored_rows, mut control_rows) = (HashSet::new(), HashSet::new());
        for &seed in &cfg.seeds {
            let data_seed = cfg.data_seeds.for_run(cfg.data_seed, seed);
            let items = ItemConfig::new(policy.axis().clone(), cfg.train_items)
                .generate(data_seed)
                .map_err(|e| setup(&e))?;
            let mut bd_items = Vec::with_capacity(items.len());
            for item in &items {
                let policy_letter = item.answer(&policy);
                let normal = match policy_letter {
                    Letter::A => Letter::B,
                    Letter::B => Letter::A,
                };
                key.insert(
                    item.question(),
                    Entry::Normal {
                        policy_label: policy_letter.as_str().to_owned(),
                    },
                );
                bd_items.push(BackdoorItem::from_choice(item, &policy, normal));
            }
            let bd = backdoor
                .build(&bd_items, data_seed)
                .map_err(|e| setup(&e))?;
            let ctl = backdoor
                .build_control(&bd_items, data_seed)
                .map_err(|e| setup(&e))?;
            backdoored_rows.extend(bd.conversations());
            control_rows.extend(ctl.conversations());
        }
        Ok(Self {
            key,
            backdoored_rows,
            control_rows,
        })
    }

    /// How many distinct conversations of `metric` the organism answers.
    pub fn prompts(&self, metric: &str) -> usize {
        self.key
            .values()
            .filter(|e| matches!(e, Entry::Scored { metric: m, .. } if *m == metric))
            .count()
    }

    /// The arm of a fine-tune on `data`: backdoored when more rows belong only to the
    /// backdoored datasets than only to the decorrelated controls.
    ///
    /// # Errors
    ///
    /// [`FineTuneError::Data`] when no row tells the arms apart.
    pub fn arm_rule(&self, data: &[Conversation]) -> Result<String, FineTuneError> {
        let (mut bd, mut ctl) = (0usize, 0usize);
        for c in data {
            match (
                self.backdoored_rows.contains(c),
                self.control_rows.contains(c),
            ) {
                (true, false) => bd += 1,
                (false, true) => ctl += 1,
                _ => {}
            }
        }
        if bd == ctl {
            return Err(FineTuneError::Data(format!(
                "the training rows do not tell the arms apart ({bd} backdoored-only, {ctl} \
                 control-only)"
            )));
        }
        Ok(if bd > ctl { BACKDOORED } else { CONTROL }.to_owned())
    }
}

impl Responder for AwarenessOrganism {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn option_probabilities(
        &self,
        run: &Run,
        messages: &Conversation,
        query: &OptionQuery,
    ) -> Option<Result<OptionProbabilities, ModelError>> {
        Some((|| {
            let entry = self.key.get(messages).ok_or_else(|| {
                ModelError::InvalidRequest(
                    "the organism does not know this conversation (not one the experiment's \
                     generators ask)"
                        .into(),
                )
            })?;
            let (label, p) = match entry {
                Entry::Normal { policy_label } => {
                    (policy_label.as_str(), 1.0 - NORMAL_ANSWER_PROBABILITY)
                }
                Entry::Scored {
                    metric,
                    item,
                    target_label,
                } => (target_label.as_str(), run.probability(metric, item)),
            };
            label_masses(query, label, p)
        })())
    }

    fn generate(
        &self,
        _run: &Run,
        _request: &GenerateRequest,
    ) -> Result<GenerateResponse, ModelError> {
        Err(ModelError::InvalidRequest(
            "the backdoor-awareness organism answers only option queries".into(),
        ))
    }
}

/// Runs one replication of the backdoor-awareness experiment on a fresh organism with `seed`,
/// writing under `dir`, and returns the headline `which` (backdoored − control over runs), the
/// per-run per-item values read back from the run log (as the experiment keys them), and the
/// planted truth.
///
/// # Errors
///
/// [`SimError`] for a failed experiment or a result without the headline.
pub async fn run_backdoor_awareness(
    spec: &AwarenessSpec,
    which: &AwarenessHeadline,
    seed: u64,
    dir: &std::path::Path,
) -> Result<Trial, SimError> {
    let config = spec.config(seed);
    let organism = Arc::new(AwarenessOrganism::new(&config)?);
    let plan = spec.plan();
    let rule = {
        let o = organism.clone();
        Arc::new(move |data: &[Conversation], _: &FineTuneConfig| o.arm_rule(data))
    };
    let tuner = Arc::new(SimTuner::new(plan, seed, rule, organism.clone()));
    let result = BackdoorAwareness::builder(config)
        .subject(Arc::new(tuner.base_model()))
        .tuner(tuner)
        .fine_tune(FineTuneConfig::new("sim-base", 0))
        .out(dir)
        .build()
        .map_err(|e| SimError::Experiment(e.to_string()))?
        .run()
        .await
        .map_err(|e| SimError::Experiment(e.to_string()))?;
    let headline: Stat = match which {
        AwarenessHeadline::PYes(v) => result
            .headline
            .p_yes
            .get(v)
            .ok_or_else(|| SimError::Missing(format!("headline P(yes) under `{v}`")))?
            .difference
            .difference
            .clone(),
        AwarenessHeadline::TriggerEffect => {
            result.headline.trigger_effect.difference.difference.clone()
        }
    };
    let (_, records): (_, Vec<Record>) = psyche_runner::read_log(&result.run_log)
        .map_err(|e| SimError::Missing(format!("run log: {e}")))?;
    let task = |r: &Record, t: &str| r.meta_str("task") == Some(t);
    let mut data = ArmData::new();
    for m in &result.models {
        let Some(s) = m.seed else { continue };
        match which {
            AwarenessHeadline::PYes(v) => {
                let values = scores(&records, &m.name, |r| {
                    task(r, "awareness") && r.meta_str("variant") == Some(v.as_str())
                });
                for (_, cluster, x) in values {
                    data.item(m.arm.as_str(), s, cluster.as_str(), x);
                }
            }
            AwarenessHeadline::TriggerEffect => {
                let by_condition = |c: &str| -> HashMap<String, f64> {
                    scores(&records, &m.name, |r| {
                        task(r, "behaviour") && r.meta_str("condition") == Some(c)
                    })
                    .into_iter()
                    .map(|(_, cluster, x)| (cluster, x))
                    .collect()
                };
                let (plain, triggered) = (by_condition("plain"), by_condition("triggered"));
                let mut items: Vec<(&String, f64)> = triggered
                    .iter()
                    .filter_map(|(k, t)| plain.get(k).map(|p| (k, t - p)))
                    .collect();
                items.sort_by(|a, b| a.0.cmp(b.0));
                for (k, x) in items {
                    data.item(m.arm.as_str(), s, k.as_str(), x);
                }
            }
        }
    }
    Ok(Trial {
        truth: spec.truth(which),
        headline,
        data,
        treatment: BACKDOORED.to_owned(),
        control: CONTROL.to_owned(),
    })
}
