//! The reusable Emergent-Misalignment pipeline: a narrow misaligned dataset and its aligned
//! control from one teacher, fine-tunes of both over several seeds, the evaluation of every
//! fine-tune (and the base model) on a question set, rates under both conventions, the
//! comparison with the controls, and the misalignment map — one serialisable
//! [`ExperimentResult`].
//!
//! ```text
//! teacher + system prompt ─► misaligned data ─┐                 ┌─► rates per model / arm
//! teacher, no prompt      ─► control data    ─┼─► FineTuner ×S ─┼─► comparison (over runs, Holm)
//!                                             │   (per seed)    └─► map (hidden states)
//!                        base model ──────────┴─────────────────► evaluate (runner, judge role)
//! ```
//!
//! Models and trainers come in as trait objects, so the same pipeline runs on the embedded
//! model with local LoRA or on API models with an API fine-tuner.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use psyche_core::{Conversation, FineTuneConfig, FineTuner, Model};
use serde::{Deserialize, Serialize};

use crate::error::{MisalignmentError, Result};
use crate::eval::{
    AnswerRow, ArmRates, ComparisonRow, EvalSettings, RateSettings, Stat, arm_rates, compare_arms,
    evaluate, model_rates,
};
use crate::map::{MapConfig, MisalignmentMap, misalignment_map};
use crate::probes::{ProbeResult, ProbeSettings, probe_arms};
use crate::questions::QuestionSet;
use crate::training::harm::{self, HarmSettings, filter_harmful, harmfulness};
use crate::training::teacher::{
    AdviceDomain, AdvicePersona, Distilled, TeacherConfig, advice_arm, matched_arms,
};
use crate::training::write_dataset;

/// Settings of an [`Experiment`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentConfig {
    /// Names the run (run log, adapters, report).
    pub name: String,
    /// Where data, adapters, the run log and the report go.
    pub out_dir: PathBuf,
    /// The domains of the narrow dataset.
    pub domains: Vec<AdviceDomain>,
    /// The teacher's system prompt for the misaligned arm (`None`: each domain's own
    /// [`AdviceDomain::misaligned_system_prompt`]).
    pub misaligned_system_prompt: Option<String>,
    /// Teacher sampling (the control uses the same settings and seed, without the prompt). Its
    /// seed is the base of each run's data seed (see `data_seeds`).
    pub teacher: TeacherConfig,
    /// Whether each fine-tuning run gets its own teacher answers (default: the teacher samples
    /// both arms' data again for every run, with a data seed derived from the teacher seed and
    /// the run's fine-tuning seed, so the variance between runs includes the drawn answers')
    /// or all runs train on the answers drawn with the teacher seed.
    #[serde(default)]
    pub data_seeds: DataSeeds,
    /// At most this many training examples per arm: the arms are paired by (prompt, sample),
    /// the pairs both arms kept are shuffled with the data seed, and the first this many are
    /// used, so both arms train on the same prompts.
    pub max_train_examples: Option<usize>,
    /// The fine-tuning config; its seed is replaced by each of `seeds` and its suffix by
    /// `<name>-<arm>-s<seed>`.
    pub finetune: FineTuneConfig,
    /// Fine-tuning seeds per arm.
    pub seeds: Vec<u64>,
    /// Evaluate the base model too.
    pub include_base: bool,
    /// The questions.
    pub questions: QuestionSet,
    /// Sampling and judging.
    pub eval: EvalSettings,
    /// Rate conventions and intervals.
    pub rates: RateSettings,
    /// The map (`None`: no map).
    pub map: Option<MapConfig>,
    /// The harmfulness judgement of the narrow data (by the judge model): both arms' measured
    /// P(harmful), and with a threshold the misaligned arm keeps only answers at or above it
    /// (`None`: not measured).
    #[serde(default)]
    pub harm: Option<HarmSettings>,
    /// The judge-free multiple-choice probe proxy ([`crate::probes`]; `None`: not run). Needs
    /// models with log-probabilities; a failure is recorded in the result, not raised.
    #[serde(default)]
    pub probes: Option<ProbeSettings>,
}

pub use psyche_core::DataSeeds;

/// What the teacher produced for one arm (and one data seed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// The arm.
    pub arm: String,
    /// The teacher's sampling seed of this dataset.
    #[serde(default)]
    pub data_seed: u64,
    /// The fine-tuning seeds trained on it.
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// Training examples used.
    pub examples: usize,
    /// Answers the teacher produced that were dropped.
    pub rejected: usize,
    /// Of `rejected`: answers the harmfulness judgement found not harmful enough.
    #[serde(default)]
    pub not_harmful: usize,
    /// Kept answers left out because the other arm lost the same (prompt, sample).
    #[serde(default)]
    pub unpaired: usize,
    /// Pairs left out by `max_train_examples`.
    #[serde(default)]
    pub cut: usize,
    /// Mean P(harmful) of the examples used, by the judge model
    /// ([`crate::training::harm`]; `None`: not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harmfulness: Option<f64>,
    /// The teacher's id.
    pub teacher: String,
    /// SHA-256 of the teacher's system prompt (`None` for the control).
    pub system_prompt_hash: Option<String>,
    /// The JSONL file written.
    pub path: PathBuf,
    /// Up to three examples, for the report.
    pub samples: Vec<(String, String)>,
}

/// One fine-tune.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineTuneInfo {
    /// The arm.
    pub arm: String,
    /// The seed.
    pub seed: u64,
    /// The data seed of its training answers.
    #[serde(default)]
    pub data_seed: u64,
    /// The tuned model's id.
    pub model_id: String,
    /// The engine.
    pub engine: String,
    /// Engine details (final loss, steps, ...).
    pub details: serde_json::Map<String, serde_json::Value>,
    /// Seconds spent training.
    pub seconds: f64,
}

/// The headline numbers of one convention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    /// The convention.
    pub convention: String,
    /// Misaligned arm: mean over its runs of each run's mean rate over questions (t over runs;
    /// a point with one run).
    pub misaligned: Stat,
    /// Aligned control arm, the same.
    pub control: Stat,
    /// The base model's mean rate over questions, when evaluated.
    pub base: Option<Stat>,
    /// Coherent-answer share of the misaligned arm (mean over seeds).
    pub misaligned_coherent: Option<f64>,
    /// Coherent-answer share of the control arm.
    pub control_coherent: Option<f64>,
    /// Misaligned arm minus the control over fine-tuning runs (the comparison table's row),
    /// with its Holm-adjusted p-value when this is the primary convention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_control: Option<ComparisonRow>,
}

/// Everything an experiment produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResult {
    /// The config it ran with.
    pub config: ExperimentConfig,
    /// The datasets: both arms' for each data seed.
    pub datasets: Vec<DatasetInfo>,
    /// The fine-tunes.
    pub fine_tunes: Vec<FineTuneInfo>,
    /// The evaluated models' ids: base (if any), then misaligned, then control seeds.
    pub subjects: Vec<String>,
    /// Every judged answer.
    pub rows: Vec<AnswerRow>,
    /// Per arm (`base`, `misaligned`, `control`).
    pub arms: Vec<ArmRates>,
    /// Misaligned arm vs the control (and the base model) over fine-tuning runs; Holm over the
    /// declared family (the primary convention against the fine-tuned control).
    pub comparison: Vec<ComparisonRow>,
    /// The headline per convention.
    pub headline: Vec<Headline>,
    /// The map, or why it failed.
    pub map: Option<std::result::Result<MisalignmentMap, String>>,
    /// The judge-free probe proxy per arm with the run-level comparisons, or why it failed
    /// (`None`: not requested). A proxy, not the paper's judged measure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<std::result::Result<ProbeResult, String>>,
    /// The judge model's id.
    pub judge_model: String,
    /// Judge-provenance warnings ([`crate::eval::judge_warnings`]): an unpinned alias, the
    /// endpoint's reported model ids, a question file asking for another judge.
    #[serde(default)]
    pub judge_warnings: Vec<String>,
    /// Seconds per stage (`data`, `fine_tune`, `evaluate`, `probes`, `map`).
    pub timings: Vec<(String, f64)>,
}

impl ExperimentResult {
    /// The arm named `arm`.
    pub fn arm(&self, arm: &str) -> Option<&ArmRates> {
        self.arms.iter().find(|a| a.arm == arm)
    }
}

/// The pipeline's models and trainer.
pub struct Experiment {
    /// The system-prompted teacher.
    pub teacher: Arc<dyn Model>,
    /// The model that is fine-tuned (evaluated as `base`).
    pub base: Arc<dyn Model>,
    /// The fine-tuner.
    pub tuner: Arc<dyn FineTuner>,
    /// The judge model.
    pub judge: Arc<dyn Model>,
    /// The model whose hidden states embed answers for the map (`None`: the base model).
    pub embedder: Option<Arc<dyn Model>>,
    /// Settings.
    pub config: ExperimentConfig,
}

impl std::fmt::Debug for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Experiment")
            .field("teacher", &self.teacher.id())
            .field("base", &self.base.id())
            .field("tuner", &self.tuner.engine())
            .field("judge", &self.judge.id())
            .field("config", &self.config.name)
            .finish_non_exhaustive()
    }
}

/// Arm names.
pub mod arm {
    /// The untuned model.
    pub const BASE: &str = "base";
    /// Fine-tuned on the teacher's answers under the misaligned system prompt.
    pub const MISALIGNED: &str = "misaligned";
    /// Fine-tuned on the same teacher's answers without the prompt.
    pub const CONTROL: &str = "control";
}

fn dataset_info(
    arm: &str,
    data_seed: u64,
    d: &Distilled,
    used: &[Conversation],
    (unpaired, cut): (usize, usize),
    path: PathBuf,
) -> DatasetInfo {
    DatasetInfo {
        arm: arm.to_owned(),
        data_seed,
        seeds: Vec::new(),
        examples: used.len(),
        rejected: d.rejected.empty
            + d.rejected.filtered
            + d.rejected.leaked_system_prompt
            + d.rejected.not_harmful,
        not_harmful: d.rejected.not_harmful,
        unpaired,
        cut,
        harmfulness: None,
        teacher: d.teacher.clone(),
        system_prompt_hash: d.system_prompt_hash.clone(),
        path,
        samples: used
            .iter()
            .take(3)
            .map(|c| {
                (
                    c.last_user_text().unwrap_or_default().to_owned(),
                    c.messages()
                        .last()
                        .map(|m| m.content.clone())
                        .unwrap_or_default(),
                )
            })
            .collect(),
    }
}

impl Experiment {
    /// Both arms' datasets drawn with the teacher seed `data_seed`, cut to the same size and
    /// written under `data/` (with the data seed in their names when runs draw their own).
    async fn build_data(
        &self,
        persona: &AdvicePersona,
        data_seed: u64,
    ) -> Result<(Vec<Conversation>, Vec<Conversation>, Vec<DatasetInfo>)> {
        let cfg = &self.config;
        let teacher_cfg = TeacherConfig {
            seed: data_seed,
            ..cfg.teacher.clone()
        };
        tracing::info!(
            teacher = self.teacher.id(),
            data_seed,
            "building the misaligned dataset"
        );
        let mut bad =
            advice_arm(self.teacher.as_ref(), &cfg.domains, persona, &teacher_cfg).await?;
        if let Some(HarmSettings {
            threshold: Some(t),
            concurrency,
        }) = &cfg.harm
        {
            filter_harmful(self.judge.as_ref(), &mut bad, *t, *concurrency).await?;
        }
        tracing::info!(
            teacher = self.teacher.id(),
            data_seed,
            "building the aligned control dataset"
        );
        let good = advice_arm(
            self.teacher.as_ref(),
            &cfg.domains,
            &AdvicePersona::Control,
            &teacher_cfg,
        )
        .await?;
        let matched = matched_arms(&bad, &good, cfg.max_train_examples, data_seed);
        if matched.misaligned.is_empty() {
            return Err(MisalignmentError::config(
                "teacher",
                format!(
                    "the teacher produced no usable pairs (misaligned: {} kept, {} judged not \
                     harmful; control: {} kept)",
                    bad.examples.len(),
                    bad.rejected.not_harmful,
                    good.examples.len()
                ),
            ));
        }
        tracing::info!(
            pairs = matched.misaligned.len(),
            unpaired_misaligned = matched.unpaired_misaligned,
            unpaired_control = matched.unpaired_control,
            cut = matched.cut,
            "arms paired by (prompt, sample)"
        );
        let bad_data = matched.misaligned;
        let good_data = matched.control;
        let data_dir = cfg.out_dir.join("data");
        let tag = match cfg.data_seeds {
            DataSeeds::Fixed => String::new(),
            DataSeeds::PerRun => format!("-data{data_seed}"),
        };
        let bad_path = data_dir.join(format!("{}-misaligned{tag}.jsonl", cfg.name));
        let good_path = data_dir.join(format!("{}-control{tag}.jsonl", cfg.name));
        write_dataset(&bad_path, &bad_data)?;
        write_dataset(&good_path, &good_data)?;
        let mut infos = vec![
            dataset_info(
                arm::MISALIGNED,
                data_seed,
                &bad,
                &bad_data,
                (matched.unpaired_misaligned, matched.cut),
                bad_path,
            ),
            dataset_info(
                arm::CONTROL,
                data_seed,
                &good,
                &good_data,
                (matched.unpaired_control, matched.cut),
                good_path,
            ),
        ];
        if let Some(h) = &cfg.harm {
            infos[0].harmfulness =
                harm::mean(&harmfulness(self.judge.as_ref(), &bad_data, h.concurrency).await?);
            infos[1].harmfulness =
                harm::mean(&harmfulness(self.judge.as_ref(), &good_data, h.concurrency).await?);
            tracing::info!(
                misaligned = ?infos[0].harmfulness,
                control = ?infos[1].harmfulness,
                "measured harmfulness of the training data"
            );
        }
        Ok((bad_data, good_data, infos))
    }

    /// Runs every stage; see the module docs.
    ///
    /// # Errors
    ///
    /// [`MisalignmentError::Config`] for no seeds or an empty dataset after filtering; the
    /// first failing stage's error otherwise (teacher, fine-tuning, evaluation). A failing map
    /// is recorded in the result, not raised.
    pub async fn run(&self) -> Result<ExperimentResult> {
        let cfg = &self.config;
        if cfg.seeds.is_empty() {
            return Err(MisalignmentError::config(
                "seeds",
                "at least one fine-tuning seed",
            ));
        }
        if cfg.domains.is_empty() {
            return Err(MisalignmentError::config("domains", "at least one domain"));
        }
        let mut timings = Vec::new();
        // 1. Data from one teacher, with and without the system prompt, per data seed.
        let t0 = Instant::now();
        let persona = cfg
            .misaligned_system_prompt
            .clone()
            .map_or(AdvicePersona::PerDomain, AdvicePersona::Fixed);
        let mut datasets: Vec<DatasetInfo> = Vec::new();
        // data seed → (misaligned data, control data)
        let mut built: std::collections::BTreeMap<u64, (Vec<Conversation>, Vec<Conversation>)> =
            std::collections::BTreeMap::new();
        let mut run_data: Vec<(u64, u64)> = Vec::new();
        for &seed in &cfg.seeds {
            let data_seed = cfg.data_seeds.for_run(cfg.teacher.seed, seed);
            run_data.push((seed, data_seed));
            if built.contains_key(&data_seed) {
                for d in datasets.iter_mut().filter(|d| d.data_seed == data_seed) {
                    d.seeds.push(seed);
                }
                continue;
            }
            let (bad_data, good_data, mut infos) = self.build_data(&persona, data_seed).await?;
            for d in &mut infos {
                d.seeds.push(seed);
            }
            datasets.extend(infos);
            built.insert(data_seed, (bad_data, good_data));
        }
        timings.push(("data".to_owned(), t0.elapsed().as_secs_f64()));

        // 2. Fine-tune both arms over the seeds, each run on its data seed's answers.
        let t1 = Instant::now();
        let mut fine_tunes = Vec::new();
        let mut tuned: Vec<(String, u64, Arc<dyn Model>)> = Vec::new();
        for arm_name in [arm::MISALIGNED, arm::CONTROL] {
            for &(seed, data_seed) in &run_data {
                let Some((bad_data, good_data)) = built.get(&data_seed) else {
                    continue;
                };
                let data = if arm_name == arm::MISALIGNED {
                    bad_data
                } else {
                    good_data
                };
                let mut ft = cfg.finetune.clone();
                ft.seed = seed;
                ft.suffix = Some(format!("{}-{arm_name}-s{seed}", cfg.name));
                let started = Instant::now();
                tracing::info!(
                    arm = arm_name,
                    seed,
                    data_seed,
                    examples = data.len(),
                    "fine-tuning"
                );
                let trained = self.tuner.fine_tune(data, &ft).await?;
                let model = self.tuner.load(&trained).await?;
                fine_tunes.push(FineTuneInfo {
                    arm: arm_name.to_owned(),
                    seed,
                    data_seed,
                    model_id: model.id().to_owned(),
                    engine: trained.engine.clone(),
                    details: trained.details.clone(),
                    seconds: started.elapsed().as_secs_f64(),
                });
                tuned.push((arm_name.to_owned(), seed, model));
            }
        }
        timings.push(("fine_tune".to_owned(), t1.elapsed().as_secs_f64()));

        // 3.–6. Evaluate, rates, probes, map.
        let mut arms_in: Vec<ArmModels> = Vec::new();
        if cfg.include_base {
            arms_in.push((arm::BASE.to_owned(), vec![(None, self.base.clone())]));
        }
        for arm_name in [arm::MISALIGNED, arm::CONTROL] {
            arms_in.push((
                arm_name.to_owned(),
                tuned
                    .iter()
                    .filter(|(a, _, _)| a == arm_name)
                    .map(|(_, s, m)| (Some(*s), m.clone()))
                    .collect(),
            ));
        }
        let embedder = self.embedder.clone().unwrap_or_else(|| self.base.clone());
        let mut result = evaluate_arms(cfg, &arms_in, &self.judge, Some(embedder)).await?;
        timings.append(&mut result.timings);
        result.timings = timings;
        result.datasets = datasets;
        result.fine_tunes = fine_tunes;
        Ok(result)
    }
}

/// The models of one arm: `(arm name, [(fine-tuning seed or None, model)])`.
pub type ArmModels = (String, Vec<(Option<u64>, Arc<dyn Model>)>);

/// Evaluates given models without fine-tuning anything — a released checkpoint against its
/// base model, say — and returns the same [`ExperimentResult`] (and so the same report) as
/// [`Experiment::run`], with no datasets or fine-tunes. Arms are named by
/// [`arm`]: the `misaligned` arm is compared with `control` (the Holm family) and `base`; a
/// model given without a seed is one untuned run (its interval is over questions). The
/// config's teacher, domains, seeds and fine-tuning settings are not used; `include_base` is
/// ignored (a `base` arm in `arms` is the base).
///
/// # Errors
///
/// [`MisalignmentError::Config`] for no arms or an arm without models; evaluation errors as
/// [`evaluate`]. Probe and map failures are recorded in the result.
pub async fn evaluate_arms(
    config: &ExperimentConfig,
    arms_in: &[ArmModels],
    judge: &Arc<dyn Model>,
    embedder: Option<Arc<dyn Model>>,
) -> Result<ExperimentResult> {
    let cfg = config;
    if arms_in.is_empty() || arms_in.iter().any(|(_, m)| m.is_empty()) {
        return Err(MisalignmentError::config(
            "arms",
            "at least one arm, each with at least one model",
        ));
    }
    let mut timings = Vec::new();
    let t2 = Instant::now();
    let subjects: Vec<Arc<dyn Model>> = arms_in
        .iter()
        .flat_map(|(_, ms)| ms.iter().map(|(_, m)| m.clone()))
        .collect();
    let mut eval = cfg.eval.clone();
    if eval.log_path.is_none() {
        eval.log_path = Some(cfg.out_dir.join("runs").join(format!("{}.jsonl", cfg.name)));
    }
    let rows = evaluate(&cfg.name, &cfg.questions, &subjects, judge, &eval).await?;
    let judge_warnings = crate::eval::judge_warnings(judge.id(), &rows);
    timings.push(("evaluate".to_owned(), t2.elapsed().as_secs_f64()));

    // Rates, arms, comparison.
    let arms: Vec<ArmRates> = arms_in
        .iter()
        .map(|(name, ms)| {
            arm_rates(
                name,
                ms.iter()
                    .map(|(s, m)| (*s, model_rates(m.id(), &rows, &cfg.rates)))
                    .collect(),
                &cfg.rates,
            )
        })
        .collect();
    let has_base = arms.iter().any(|a| a.arm == arm::BASE);
    let find = |name: &str| arms.iter().find(|a| a.arm == name);
    let comparison = match find(arm::MISALIGNED) {
        Some(treated) => {
            let controls: Vec<&ArmRates> = [arm::CONTROL, arm::BASE]
                .iter()
                .filter_map(|n| find(n))
                .collect();
            compare_arms(treated, &controls, &[arm::CONTROL], &cfg.rates)
        }
        None => Vec::new(),
    };
    let headline = cfg
        .rates
        .conventions
        .iter()
        .map(|c| {
            let get = |a: &str| {
                find(a)
                    .and_then(|x| x.over_seeds.get(&c.name).cloned())
                    .unwrap_or_else(|| Stat::unavailable("arm missing"))
            };
            Headline {
                convention: c.name.clone(),
                misaligned: get(arm::MISALIGNED),
                control: get(arm::CONTROL),
                base: has_base.then(|| get(arm::BASE)),
                misaligned_coherent: find(arm::MISALIGNED)
                    .and_then(|a| a.coherent_share.get(&c.name).copied()),
                control_coherent: find(arm::CONTROL)
                    .and_then(|a| a.coherent_share.get(&c.name).copied()),
                vs_control: comparison
                    .iter()
                    .find(|r| r.control == arm::CONTROL && r.convention == c.name)
                    .cloned(),
            }
        })
        .collect();

    // The probe proxy (no judge).
    let probes = match &cfg.probes {
        Some(p) => {
            let t = Instant::now();
            let r = probe_arms(arms_in, arm::MISALIGNED, &[arm::CONTROL, arm::BASE], p)
                .await
                .map_err(|e| e.to_string());
            if let Err(e) = &r {
                tracing::warn!(error = %e, "the probe proxy failed");
            }
            timings.push(("probes".to_owned(), t.elapsed().as_secs_f64()));
            Some(r)
        }
        None => None,
    };

    // The map.
    let map = match (&cfg.map, embedder) {
        (Some(m), Some(embedder)) => {
            let t3 = Instant::now();
            let r = misalignment_map(embedder.as_ref(), &rows, m)
                .await
                .map_err(|e| e.to_string());
            timings.push(("map".to_owned(), t3.elapsed().as_secs_f64()));
            Some(r)
        }
        (Some(_), None) => Some(Err("no model to embed answers with".to_owned())),
        (None, _) => None,
    };
    Ok(ExperimentResult {
        config: cfg.clone(),
        datasets: Vec::new(),
        fine_tunes: Vec::new(),
        subjects: subjects.iter().map(|m| m.id().to_owned()).collect(),
        rows,
        arms,
        comparison,
        headline,
        map,
        probes,
        judge_model: judge.id().to_owned(),
        judge_warnings,
        timings,
    })
}
