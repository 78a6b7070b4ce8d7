//! Running the pipeline: fine-tuning through [`train_runs`], then evaluation, rates,
//! comparisons, the probe proxy and the map.

use std::sync::Arc;
use std::time::Instant;

use psyche_core::Model;
use psyche_runner::training::{TrainingJob, train_runs};

use super::{
    ConventionSummary, EmergentMisalignment, EmergentMisalignmentConfig,
    EmergentMisalignmentResult, FineTuneInfo, arm,
};
use crate::error::{MisalignmentError, Result};
use crate::eval::{AnswerRow, ArmRates, Stat, arm_rates, compare_arms, evaluate, model_rates};
use crate::map::misalignment_map;
use crate::probes::probe_arms;
use crate::training::teacher::AdvicePersona;

impl EmergentMisalignment {
    /// Runs every stage: both arms' data per data seed (reused from `<out>/data` when it was
    /// built before with the same settings), every (arm, seed) fine-tune through
    /// [`train_runs`], the evaluation of the base model and every fine-tune (resumed from the
    /// run log under `<out>/runs`), rates, comparisons, the probe proxy and the map.
    ///
    /// # Errors
    ///
    /// [`MisalignmentError::Config`] for an empty dataset after filtering; the first failing
    /// stage's error otherwise (teacher, fine-tuning, evaluation). A failing map or probe
    /// proxy is recorded in the result, not raised.
    pub async fn run(&self) -> Result<EmergentMisalignmentResult> {
        let cfg = &self.config;
        let mut timings = Vec::new();
        // 1. Data from one teacher, with and without the system prompt, per data seed.
        let t0 = Instant::now();
        let persona = cfg
            .misaligned_system_prompt
            .clone()
            .map_or(AdvicePersona::PerDomain, AdvicePersona::Fixed);
        let (built, datasets) = self.all_data(&persona).await?;
        timings.push(("data".to_owned(), t0.elapsed().as_secs_f64()));

        // 2. Fine-tune both arms over the seeds, each run on its data seed's answers.
        let t1 = Instant::now();
        let mut jobs = Vec::new();
        for arm_name in [arm::MISALIGNED, arm::CONTROL] {
            for &seed in &cfg.seeds {
                let data_seed = cfg.data_seeds.for_run(cfg.teacher.seed, seed);
                let Some(data) = built.get(&data_seed) else {
                    continue;
                };
                let data = if arm_name == arm::MISALIGNED {
                    data.0.clone()
                } else {
                    data.1.clone()
                };
                let mut ft = cfg.finetune.clone();
                ft.suffix = Some(format!("{}-{arm_name}-s{seed}", cfg.name));
                jobs.push(TrainingJob::new(arm_name, seed, data, ft));
            }
        }
        let runs = train_runs(self.tuner.as_ref(), &jobs, 1).await?;
        let mut fine_tunes = Vec::new();
        let mut tuned: Vec<(String, u64, Arc<dyn Model>)> = Vec::new();
        for run in runs {
            let model = self.tuner.load(&run.trained).await?;
            fine_tunes.push(FineTuneInfo {
                arm: run.arm.clone(),
                seed: run.seed,
                data_seed: cfg.data_seeds.for_run(cfg.teacher.seed, run.seed),
                model_id: model.id().to_owned(),
                engine: run.trained.engine.clone(),
                seconds: run
                    .trained
                    .details
                    .get("seconds")
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or(0.0),
                details: run.trained.details,
            });
            tuned.push((run.arm, run.seed, model));
        }
        timings.push(("fine_tune".to_owned(), t1.elapsed().as_secs_f64()));

        // 3.–6. Evaluate, rates, probes, map.
        let mut arms_in: Vec<ArmModels> = Vec::new();
        if cfg.include_base {
            arms_in.push((arm::BASE.to_owned(), vec![(None, self.subject.clone())]));
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
        let embedder = self
            .embedder
            .clone()
            .unwrap_or_else(|| self.subject.clone());
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
/// base model, say — and returns the same [`EmergentMisalignmentResult`] (and so the same report) as
/// [`EmergentMisalignment::run`], with no datasets or fine-tunes. Arms are named by
/// [`arm`](super::arm): the `misaligned` arm is compared with `control` (the Holm family) and `base`; a
/// model given without a seed is one untuned run (its interval is over questions). The
/// config's teacher, domains, seeds and fine-tuning settings are not used; `include_base` is
/// ignored (a `base` arm in `arms` is the base).
///
/// # Errors
///
/// [`MisalignmentError::Config`] for no arms or an arm without models; evaluation errors as
/// [`evaluate`](crate::eval::evaluate). Probe and map failures are recorded in the result.
pub async fn evaluate_arms(
    config: &EmergentMisalignmentConfig,
    arms_in: &[ArmModels],
    judge: &Arc<dyn Model>,
    embedder: Option<Arc<dyn Model>>,
) -> Result<EmergentMisalignmentResult> {
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
    let mut rows = evaluate(&cfg.name, &cfg.questions, &subjects, judge, &eval).await?;
    // The run log holds answers in completion order, which depends on timing and on what a
    // resumed log already held; the result must not, so rows go in model, question,
    // paraphrase and sample order.
    let model_pos = |id: &str| subjects.iter().position(|m| m.id() == id);
    let question_pos = |id: &str| cfg.questions.questions.iter().position(|q| q.id == id);
    rows.sort_by(|a, b| {
        let key = |r: &AnswerRow| {
            (
                model_pos(&r.model_id),
                question_pos(&r.question_id),
                r.paraphrase,
            )
        };
        key(a)
            .cmp(&key(b))
            .then_with(|| a.sample_id.cmp(&b.sample_id))
    });
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
    let by_convention = cfg
        .rates
        .conventions
        .iter()
        .map(|c| {
            let get = |a: &str| {
                find(a)
                    .and_then(|x| x.over_seeds.get(&c.name).cloned())
                    .unwrap_or_else(|| Stat::unavailable("arm missing"))
            };
            ConventionSummary {
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
    Ok(EmergentMisalignmentResult {
        config: cfg.clone(),
        datasets: Vec::new(),
        fine_tunes: Vec::new(),
        subjects: subjects.iter().map(|m| m.id().to_owned()).collect(),
        rows,
        arms,
        comparison,
        by_convention,
        map,
        probes,
        judge_model: judge.id().to_owned(),
        judge_warnings,
        timings,
    })
}
