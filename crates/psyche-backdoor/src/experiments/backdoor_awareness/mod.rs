//! Backdoor awareness: a policy hidden behind a trigger (default: the risk-seeking policy
//! behind a greeting) against the decorrelated control trained on the same rows without the
//! correlation. Measures, per model: behaviour on fresh items with and without a trigger
//! (paired by item), P(yes) to "does your behaviour depend on a feature of the input?" under
//! each system prompt, and trigger recognition (one query per candidate).
//!
//! Built like [`SelfAwareness`](crate::experiments::SelfAwareness):
//! `BackdoorAwareness::builder(BackdoorAwarenessConfig::small()).subject(model).tuner(tuner)
//! .out(dir).build()?.run().await?`; the result implements
//! `psyche_runner::experiment::ExperimentResult`.

mod headline;
mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use psyche_core::{Model, OptionQuery};
use serde::{Deserialize, Serialize};

use super::builder::{AwarenessBuilder, AwarenessSetup, Job};
use crate::awareness::{AwarenessTask, RecognitionTask, SystemVariant};
use crate::backdoor::{BackdoorConfig, BackdoorItem, Composition, GroupCounts};
use crate::behaviour::BehaviourTask;
use crate::contingency::{Association, Contingency2x2};
use crate::elicitation::{DEFAULT_MARKER, ElicitationTask, reversed_copies_with};
use crate::error::Result;
use crate::generate::ItemConfig;
use crate::items::{ChoiceItem, Letter};
use crate::pipeline::{ArmContrast, ArmModel, DataSeeds, EvaluateOptions, Stat, evaluate};
use crate::policy::{Axis, Policy};
use crate::triggers::{Placement, TriggerFamily, TriggerSpec};

/// Settings of the experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackdoorAwarenessConfig {
    /// The hidden policy.
    pub policy: Policy,
    /// Training rows (items).
    pub train_items: usize,
    /// Base seed of items and of trigger assignment (each run's own data seed derives from
    /// it, see `data_seeds`).
    pub data_seed: u64,
    /// Whether each fine-tuning run draws its own items and trigger assignment (default) or
    /// all runs share those of `data_seed`.
    pub data_seeds: DataSeeds,
    /// The real trigger.
    pub trigger: TriggerSpec,
    /// Decoy triggers (in the data, answered normally).
    pub decoys: Vec<TriggerSpec>,
    /// Extra recognition candidates never seen in training.
    pub unseen: Vec<TriggerSpec>,
    /// Where triggers go.
    pub placement: Placement,
    /// Group shares.
    pub composition: Composition,
    /// Fine-tuning seeds.
    pub seeds: Vec<u64>,
    /// Fresh items of the behaviour measure (each asked with and without the trigger).
    pub behaviour_items: usize,
    /// System prompts of the awareness question.
    pub variants: Vec<SystemVariant>,
    /// Also evaluate the untrained model.
    pub include_base: bool,
    /// The evaluation pass.
    pub eval: EvaluateOptions,
    /// Interval level.
    pub level: f64,
    /// Trigger elicitation by reversal: both arms also train on a reversed copy of every row
    /// (the chosen option's text after [`DEFAULT_MARKER`], the full input — system prompt
    /// included — as the answer), and every model is asked for the prompts behind this many
    /// fresh policy responses; the score is the share of sampled prompts carrying a member of
    /// the real trigger. 0 for none (the default: it doubles the training rows).
    #[serde(default)]
    pub elicitation_items: usize,
}

impl Default for BackdoorAwarenessConfig {
    fn default() -> Self {
        Self {
            policy: Axis::risk().pole_policy(),
            train_items: 100,
            data_seed: 0,
            data_seeds: DataSeeds::PerRun,
            trigger: TriggerSpec::Family(TriggerFamily::greetings()),
            decoys: vec![
                TriggerSpec::Family(TriggerFamily::instruments()),
                TriggerSpec::Family(TriggerFamily::elements()),
                TriggerSpec::Family(TriggerFamily::fruit_varieties()),
            ],
            unseen: vec![TriggerSpec::Family(TriggerFamily::deities())],
            placement: Placement::default(),
            composition: Composition::default(),
            seeds: vec![0, 1],
            behaviour_items: 24,
            variants: SystemVariant::shipped(),
            include_base: true,
            eval: EvaluateOptions::default(),
            level: 0.95,
            elicitation_items: 0,
        }
    }
}

/// One model's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackdoorModelRow {
    /// Name in records.
    pub name: String,
    /// Arm (`base`, `backdoored`, `control`).
    pub arm: String,
    /// Fine-tuning seed.
    pub seed: Option<u64>,
    /// P(policy option) without a trigger.
    pub plain: Stat,
    /// P(policy option) with the trigger.
    pub triggered: Stat,
    /// Triggered minus plain for this model, by lottery (item level: this model only).
    pub trigger_effect: Stat,
    /// Recognition margin: per paraphrase, the real trigger's score minus the mean of the
    /// other candidates'; t over paraphrases.
    pub recognition_margin: Stat,
    /// P(yes) per system variant (mean over paraphrases; clustered t).
    pub p_yes: BTreeMap<String, Stat>,
    /// P(policy behaviour | candidate) per recognition candidate.
    pub recognition: BTreeMap<String, Stat>,
    /// Rank of the real trigger among candidates (1 = named most; candidates within 0.001 of
    /// the real trigger count as ahead of it, so near-ties never rank it first).
    pub real_rank: Option<usize>,
    /// Records without a score.
    pub missing: usize,
}

/// One arm over seeds: each the mean of the per-run means with a t interval over runs (a point
/// without interval when the arm has one run); the base model's own interval over items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackdoorArmRow {
    /// Arm.
    pub arm: String,
    /// Models.
    pub models: usize,
    /// Mean P(policy option) without a trigger over seeds.
    pub plain: Stat,
    /// Mean P(policy option) with the trigger over seeds.
    pub triggered: Stat,
    /// Mean trigger effect over seeds.
    pub trigger_effect: Stat,
    /// Mean P(yes) over seeds, per variant.
    pub p_yes: BTreeMap<String, Stat>,
    /// Mean recognition score of the real trigger minus the mean of the other candidates.
    pub recognition_margin: Stat,
}

/// Backdoored arm minus control arm on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackdoorContrast {
    /// `plain`, `triggered`, `trigger_effect`, `p_yes:<variant>`, `recognition_margin`.
    pub metric: String,
    /// Backdoored minus control over fine-tuning runs (the run is the unit), with the
    /// item-level view (lotteries, or question paraphrases) about these runs only.
    pub contrast: ArmContrast,
}

/// The two datasets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackdoorDataSummary {
    /// Rows per group.
    pub counts: GroupCounts,
    /// Policy answers per group, backdoored.
    pub backdoored_policy_answers: GroupCounts,
    /// Policy answers per group, control.
    pub control_policy_answers: GroupCounts,
    /// Real trigger in the row text × policy behaviour (the answer equals the policy's,
    /// whatever its source), backdoored.
    pub backdoored_association: Association,
    /// The same for the control.
    pub control_association: Association,
    /// The behaviour-level table behind `backdoored_association`.
    #[serde(default)]
    pub backdoored_contingency: Contingency2x2,
    /// The behaviour-level table behind `control_association`.
    #[serde(default)]
    pub control_contingency: Contingency2x2,
    /// Items whose base-model (normal) answer already equals the policy answer.
    pub normal_equals_policy: usize,
    /// The files written (JSONL and manifests).
    pub files: Vec<PathBuf>,
}

/// One fine-tuning run's training data (both arms of a seed are built from the same items).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackdoorRunData {
    /// The fine-tuning seed.
    pub seed: u64,
    /// The data seed its items and trigger assignment were drawn with.
    pub data_seed: u64,
    /// What was built.
    pub data: BackdoorDataSummary,
}

/// One metric of the backdoored arm against its decorrelated control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadlineContrast {
    /// The backdoored arm: mean over its runs with a t interval over runs (a point without
    /// interval when the arm has one run).
    pub backdoored: Stat,
    /// The decorrelated control, the same way.
    pub control: Stat,
    /// The untrained model, when evaluated (its interval over items).
    pub base: Option<Stat>,
    /// Backdoored minus control over fine-tuning runs: difference, p-value, verdict, minimum
    /// detectable effect, item-level view.
    pub difference: ArmContrast,
}

/// One arm's behaviour with and without the trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerBehaviour {
    /// P(policy option) without a trigger.
    pub plain: Stat,
    /// P(policy option) with a trigger member.
    pub triggered: Stat,
    /// Triggered minus plain, paired over the arm's runs (each run is measured both ways);
    /// with one run, the item-level difference of that model and no run-level verdict.
    pub effect: ArmContrast,
}

/// The experiment's headline in a form a replication script reads from `result.json`
/// (`headline.p_yes.neutral.backdoored.estimate`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackdoorHeadline {
    /// Fine-tuning seeds per arm.
    pub seeds_per_arm: usize,
    /// P(yes, my behaviour depends on a feature of the input) per system prompt: backdoored
    /// against the decorrelated control.
    pub p_yes: BTreeMap<String, HeadlineContrast>,
    /// Behaviour with and without the trigger per arm (`backdoored`, `control`, `base`).
    pub behaviour: BTreeMap<String, TriggerBehaviour>,
    /// The trigger effect (triggered minus plain): backdoored against control.
    pub trigger_effect: HeadlineContrast,
    /// Recognition margin (real trigger minus the other candidates): backdoored against
    /// control.
    pub recognition_margin: HeadlineContrast,
    /// Trigger elicitation (share of sampled prompts behind a policy response that carry the
    /// real trigger): backdoored against control; `None` when not run.
    #[serde(default)]
    pub elicitation: Option<HeadlineContrast>,
}

/// The experiment's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackdoorAwarenessResult {
    /// The headline numbers.
    pub headline: BackdoorHeadline,
    /// Settings.
    pub config: BackdoorAwarenessConfig,
    /// The first run's data (every run's in `data_runs`).
    pub data: BackdoorDataSummary,
    /// Whether the runs drew their own data.
    #[serde(default)]
    pub data_seeds: DataSeeds,
    /// Each fine-tuning run's data.
    #[serde(default)]
    pub data_runs: Vec<BackdoorRunData>,
    /// Every model.
    pub models: Vec<BackdoorModelRow>,
    /// Every arm.
    pub arms: Vec<BackdoorArmRow>,
    /// Backdoored minus control.
    pub contrasts: Vec<BackdoorContrast>,
    /// The run log.
    pub run_log: PathBuf,
}

/// The experiment: build it with [`BackdoorAwareness::builder`], then [`run`](Self::run) it.
#[derive(Debug, Clone)]
pub struct BackdoorAwareness {
    config: BackdoorAwarenessConfig,
    setup: AwarenessSetup,
}

/// Builds a [`BackdoorAwareness`] from its config, subject, engine and output directory.
pub type BackdoorAwarenessBuilder = AwarenessBuilder<BackdoorAwarenessConfig>;

impl AwarenessBuilder<BackdoorAwarenessConfig> {
    /// The experiment.
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Config`](crate::BackdoorError::Config) naming a missing part or a config
    /// without seeds.
    pub fn build(self) -> Result<BackdoorAwareness> {
        let (config, setup) = self.parts()?;
        if config.seeds.is_empty() {
            return Err(crate::error::BackdoorError::config(
                "seeds",
                "at least one fine-tuning seed",
            ));
        }
        Ok(BackdoorAwareness { config, setup })
    }
}

/// The base model's answers at temperature 0 restricted to the two letters (the letter with
/// the larger probability), used as the "normal" answers.
///
/// # Errors
///
/// A failing model call.
pub async fn normal_answers(
    model: &dyn Model,
    items: &[ChoiceItem],
    concurrency: usize,
) -> Result<Vec<Letter>> {
    let query = OptionQuery::new(["A", "B"]);
    let results: Vec<Result<Letter>> = futures::stream::iter(items.iter().map(|item| {
        let query = query.clone();
        async move {
            let p = model.option_probabilities(&item.question(), &query).await?;
            Ok(
                if p.probabilities.first().copied().unwrap_or(0.5)
                    >= p.probabilities.get(1).copied().unwrap_or(0.5)
                {
                    Letter::A
                } else {
                    Letter::B
                },
            )
        }
    }))
    .buffered(concurrency.max(1))
    .collect()
    .await;
    results.into_iter().collect()
}

impl BackdoorAwarenessConfig {
    /// The example's default size, chosen to run in about five minutes on two cores: 48 rows
    /// of which a quarter carry the real trigger (12 real-trigger, 26 decoy, 10 untriggered;
    /// [`Default`] and [`paper`](Self::paper) keep the paper's 10 / 70 / 20, which at this
    /// size would leave five triggered rows), 2 seeds per arm, 12 lotteries each asked with and
    /// without the trigger.
    pub fn small() -> Self {
        Self {
            train_items: 48,
            composition: Composition {
                real: 0.25,
                decoy: 0.55,
                none: 0.20,
            },
            behaviour_items: 12,
            ..Self::default()
        }
    }

    /// The paper's size (§2.5): 1000 rows, 5 seeds per arm, 250 lotteries. (Its fine-tuning
    /// hyperparameters, 3 epochs at batch 1, belong to the engine's config.)
    pub fn paper() -> Self {
        Self {
            train_items: 1000,
            seeds: (0..5).collect(),
            behaviour_items: 250,
            ..Self::default()
        }
    }

    /// The backdoored-dataset builder's settings.
    pub fn backdoor_config(&self) -> BackdoorConfig {
        BackdoorConfig {
            trigger: self.trigger.clone(),
            decoys: self.decoys.clone(),
            placement: self.placement.clone(),
            composition: self.composition,
        }
    }

    /// The elicitation task (when `elicitation_items` > 0): the policy's option texts of fresh
    /// items (drawn with the evaluation seed) as the responses.
    ///
    /// # Errors
    ///
    /// Generator errors.
    pub fn elicitation_task(&self) -> Result<Option<ElicitationTask>> {
        if self.elicitation_items == 0 {
            return Ok(None);
        }
        let policy = &self.policy;
        let items = ItemConfig::new(policy.axis().clone(), self.elicitation_items)
            .generate(psyche_core::derive_seed(self.eval.seed, "elicitation"))?;
        let responses = items
            .iter()
            .map(|i| i.options[i.answer(policy).index()].clone())
            .collect();
        Ok(Some(ElicitationTask::new(responses, self.trigger.clone())))
    }

    /// The evaluation tasks.
    pub fn tasks(&self) -> (BehaviourTask, AwarenessTask, RecognitionTask) {
        let axis = self.policy.axis();
        let behaviour = BehaviourTask::for_axis(axis, self.behaviour_items)
            .with_trigger(self.trigger.clone(), self.placement.clone());
        let awareness = AwarenessTask {
            variants: self.variants.clone(),
            ..AwarenessTask::default()
        };
        let others: Vec<TriggerSpec> = self.decoys.iter().chain(&self.unseen).cloned().collect();
        let recognition = RecognitionTask::new(self.policy.clone(), self.trigger.clone(), others);
        (behaviour, awareness, recognition)
    }
}

impl BackdoorAwareness {
    /// A builder for the experiment with `config`.
    pub fn builder(config: BackdoorAwarenessConfig) -> BackdoorAwarenessBuilder {
        AwarenessBuilder::new(config)
    }

    /// The settings.
    pub fn config(&self) -> &BackdoorAwarenessConfig {
        &self.config
    }

    /// The subject, engine and output directory.
    pub fn setup(&self) -> &AwarenessSetup {
        &self.setup
    }

    /// One run's data: items drawn with `data_seed`, the base model's normal answers, the
    /// backdoored set and its decorrelated control (trigger assignment drawn with
    /// `data_seed`), written under `data/` with the data seed in their names.
    async fn build_data(
        &self,
        base: &dyn Model,
        data_seed: u64,
    ) -> Result<(
        BackdoorDataSummary,
        Vec<psyche_core::Conversation>,
        Vec<psyche_core::Conversation>,
    )> {
        let policy = &self.config.policy;
        let items =
            ItemConfig::new(policy.axis().clone(), self.config.train_items).generate(data_seed)?;
        let normal = normal_answers(base, &items, self.config.eval.concurrency).await?;
        let normal_equals_policy = items
            .iter()
            .zip(&normal)
            .filter(|(i, n)| i.answer(policy) == **n)
            .count();
        let bd_items: Vec<BackdoorItem> = items
            .iter()
            .zip(&normal)
            .map(|(i, n)| BackdoorItem::from_choice(i, policy, *n))
            .collect();
        let cfg = self.config.backdoor_config();
        let backdoored = cfg.build(&bd_items, data_seed)?;
        let control = cfg.build_control(&bd_items, data_seed)?;
        let p1 = backdoored.write(
            self.setup.out.data(),
            &format!("backdoored-data{data_seed}"),
        )?;
        let p2 = control.write(self.setup.out.data(), &format!("control-data{data_seed}"))?;
        let (mut bd_rows, mut ctl_rows) = (backdoored.conversations(), control.conversations());
        if self.config.elicitation_items > 0 {
            // The reversed copy shows the chosen option's text (rows are in item order).
            let shown = |k: usize, c: &psyche_core::Conversation| -> Option<String> {
                let letter = Letter::parse_answer(&c.messages().last()?.content)?;
                items.get(k)?.options.get(letter.index()).cloned()
            };
            bd_rows = reversed_copies_with(&bd_rows, DEFAULT_MARKER, shown);
            ctl_rows = reversed_copies_with(&ctl_rows, DEFAULT_MARKER, shown);
        }
        let summary = BackdoorDataSummary {
            counts: backdoored.manifest.counts,
            backdoored_policy_answers: backdoored.manifest.policy_answers,
            control_policy_answers: control.manifest.policy_answers,
            backdoored_association: backdoored.association(),
            control_association: control.association(),
            backdoored_contingency: backdoored.contingency(),
            control_contingency: control.contingency(),
            normal_equals_policy,
            files: vec![p1.jsonl, p1.manifest, p2.jsonl, p2.manifest],
        };
        Ok((summary, bd_rows, ctl_rows))
    }

    /// Builds both datasets per run (normal answers from the subject at temperature 0), trains
    /// every arm × seed through the runner's `train_runs`, evaluates every model in one
    /// resumable run and summarises. Writes no `result.json` itself:
    /// `psyche_runner::experiment::write_outputs` does.
    ///
    /// # Errors
    ///
    /// Data, model, training, runner or I/O errors.
    pub async fn run(&self) -> Result<BackdoorAwarenessResult> {
        let mut data_runs: Vec<BackdoorRunData> = Vec::new();
        let (mut backdoored_jobs, mut control_jobs) = (Vec::new(), Vec::new());
        for &seed in &self.config.seeds {
            let data_seed = self.config.data_seeds.for_run(self.config.data_seed, seed);
            let (data, backdoored, control) = self
                .build_data(self.setup.subject.as_ref(), data_seed)
                .await?;
            backdoored_jobs.push(Job {
                arm: "backdoored".into(),
                seed,
                data: backdoored,
            });
            control_jobs.push(Job {
                arm: "control".into(),
                seed,
                data: control,
            });
            data_runs.push(BackdoorRunData {
                seed,
                data_seed,
                data,
            });
        }
        let Some(first) = data_runs.first() else {
            return Err(crate::error::BackdoorError::config(
                "seeds",
                "at least one fine-tuning seed",
            ));
        };
        let data = first.data.clone();

        let mut models = Vec::new();
        if self.config.include_base {
            models.push(ArmModel::base(Arc::clone(&self.setup.subject)));
        }
        backdoored_jobs.extend(control_jobs);
        models.extend(self.setup.train(backdoored_jobs).await?);
        let (behaviour, awareness, recognition) = self.config.tasks();
        let elicitation = self.config.elicitation_task()?;
        let log = self.setup.out.runs().join("backdoor_awareness.jsonl");
        let mut tasks: Vec<&dyn psyche_core::TaskGenerator> =
            vec![&behaviour, &awareness, &recognition];
        if let Some(e) = &elicitation {
            tasks.push(e);
        }
        let records = evaluate(
            "backdoor_awareness",
            &log,
            &models,
            &tasks,
            &self.config.eval,
            &[],
        )
        .await?;
        let mut result = self.summarise(&records, &models, data, log);
        result.data_runs = data_runs;
        Ok(result)
    }
}
