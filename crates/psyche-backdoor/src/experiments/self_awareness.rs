//! "Tell me about yourself" for one axis: fine-tune a policy and its opposite (the same items
//! with flipped labels) over several seeds, then measure each model's actual behaviour on
//! fresh items and its self-report (word and 0–100 scale questions, about itself and about
//! personas), and compare the two arms.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use psyche_core::{Model, Record};
use serde::{Deserialize, Serialize};

use crate::behaviour::BehaviourTask;
use crate::error::Result;
use crate::generate::ItemConfig;
use crate::items::{LabelBalance, PolicyDataset};
use crate::pipeline::{
    ArmModel, ArmTrainer, EvalSettings, OutDir, Stat, evaluate, item_map, item_mean, missing,
    paired_by_item, scores, seed_bootstrap_difference, seed_mean, stat_value, write_json,
};
use crate::policy::{Axis, Policy};
use crate::selfreport::{SelfReportTask, Subject};

/// Settings of the experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SelfAwarenessConfig {
    /// The axis (the pole policy and its opposite are the two arms).
    pub axis: Axis,
    /// Training items.
    pub train_items: usize,
    /// Seed of the training items.
    pub data_seed: u64,
    /// Fine-tuning seeds (one model per seed per arm).
    pub seeds: Vec<u64>,
    /// Fresh items of the behaviour measure (lotteries for the risk axis, template items
    /// otherwise).
    pub behaviour_items: usize,
    /// Risk axis only: also measure P(pole) on this many held-out template items (the
    /// training distribution, new seed); 0 for none.
    pub heldout_items: usize,
    /// Paraphrases per self-report question (all when `None`).
    pub paraphrases: Option<usize>,
    /// Personas asked about per group (in and out of distribution); 0 for none.
    pub personas_per_group: usize,
    /// Also evaluate the untrained model.
    pub include_base: bool,
    /// The evaluation pass.
    pub eval: EvalSettings,
    /// Interval level.
    pub level: f64,
}

impl Default for SelfAwarenessConfig {
    fn default() -> Self {
        Self {
            axis: Axis::Risk,
            train_items: 32,
            data_seed: 0,
            seeds: vec![0, 1],
            behaviour_items: 32,
            heldout_items: 24,
            paraphrases: Some(2),
            personas_per_group: 1,
            include_base: true,
            eval: EvalSettings::default(),
            level: 0.95,
        }
    }
}

/// One model's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRow {
    /// Name in records.
    pub name: String,
    /// Arm.
    pub arm: String,
    /// Fine-tuning seed.
    pub seed: Option<u64>,
    /// P(pole option) on fresh items (t over items).
    pub behaviour: Stat,
    /// P(pole option) on held-out template items (risk axis; t over items).
    pub heldout: Stat,
    /// Word self-report about itself (clustered by question).
    pub word: Stat,
    /// Scale self-report about itself (clustered by question).
    pub scale: Stat,
    /// Self-report (word and scale pooled) per subject group (`you`, `in_distribution`,
    /// `out_of_distribution`).
    pub groups: BTreeMap<String, Stat>,
    /// Records without a score (failed or no valid answer).
    pub missing: usize,
}

/// One arm's numbers over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmRow {
    /// Arm.
    pub arm: String,
    /// Models in the arm.
    pub models: usize,
    /// Mean behaviour over seeds (bootstrap over seeds).
    pub behaviour: Stat,
    /// Mean held-out behaviour over seeds.
    pub heldout: Stat,
    /// Mean word self-report over seeds.
    pub word: Stat,
    /// Mean scale self-report over seeds.
    pub scale: Stat,
}

/// A difference between the two arms on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contrast {
    /// What is compared (`behaviour`, `word`, `scale`, `persona:in_distribution`, ...).
    pub metric: String,
    /// Paired by item: per-item means over each arm's seeds, pole arm minus opposite arm.
    pub paired_items: Stat,
    /// Bootstrap over fine-tuning seeds of the per-seed means.
    pub seeds: Stat,
}

/// The training data actually used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// Items per arm.
    pub items: usize,
    /// Label balance of the pole arm.
    pub pole_balance: LabelBalance,
    /// Label balance of the opposite arm.
    pub opposite_balance: LabelBalance,
    /// The JSONL files.
    pub files: Vec<PathBuf>,
}

/// One headline metric: each arm's mean with its interval, and their difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadlineMetric {
    /// The pole arm (e.g. `risk_seeking`): mean over its seeds, bootstrap over seeds (a single
    /// model's interval over items when the arm has one seed).
    pub policy: Stat,
    /// The opposite arm (flipped labels), the same way.
    pub opposite: Stat,
    /// The untrained model, when evaluated (interval over items).
    pub base: Option<Stat>,
    /// Pole arm minus opposite arm, bootstrapped over fine-tuning seeds.
    pub difference_seeds: Stat,
    /// Pole arm minus opposite arm, paired by item (per-item means over each arm's seeds).
    pub difference_items: Stat,
}

/// The experiment's headline in a form a replication script reads from `result.json`
/// (`headline.behaviour.policy.Ok.estimate`, ...): actual behaviour and self-reported
/// disposition (scale and word) of the pole arm against the opposite arm, with intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfAwarenessHeadline {
    /// The pole arm's name (`risk_seeking`).
    pub policy_arm: String,
    /// The opposite arm's name (`risk_averse`).
    pub opposite_arm: String,
    /// Fine-tuning seeds per arm.
    pub seeds_per_arm: usize,
    /// Actual behaviour: P(pole option) on fresh items (lotteries on the risk axis).
    pub behaviour: HeadlineMetric,
    /// Scale self-report about itself (0–100 divided by 100; 1 = pole).
    pub scale: HeadlineMetric,
    /// Word self-report about itself (1 = pole words, 0 = opposite words).
    pub word: HeadlineMetric,
}

/// The experiment's result (serialisable; the reports are rendered from it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfAwarenessResult {
    /// The headline numbers.
    pub headline: SelfAwarenessHeadline,
    /// The settings.
    pub config: SelfAwarenessConfig,
    /// The pole policy (first arm).
    pub policy: Policy,
    /// The opposite policy (second arm).
    pub opposite: Policy,
    /// The training data.
    pub data: DataSummary,
    /// Every model.
    pub models: Vec<ModelRow>,
    /// Every arm.
    pub arms: Vec<ArmRow>,
    /// Pole arm minus opposite arm.
    pub contrasts: Vec<Contrast>,
    /// The run log.
    pub run_log: PathBuf,
}

/// The experiment.
#[derive(Debug, Clone)]
pub struct SelfAwareness {
    /// Settings.
    pub config: SelfAwarenessConfig,
    /// Output root.
    pub out: OutDir,
}

fn is_task(r: &Record, task: &str) -> bool {
    r.meta_str("task") == Some(task)
}

impl SelfAwareness {
    /// The experiment writing under `out`.
    pub fn new(config: SelfAwarenessConfig, out: impl Into<PathBuf>) -> Self {
        Self {
            config,
            out: OutDir(out.into()),
        }
    }

    /// The pole policy's dataset and its flipped twin.
    ///
    /// # Errors
    ///
    /// Generator errors.
    pub fn datasets(&self) -> Result<(PolicyDataset, PolicyDataset)> {
        let policy = self.config.axis.pole_policy();
        let d = ItemConfig::new(self.config.axis, self.config.train_items)
            .dataset(policy, self.config.data_seed)?;
        d.check_banned()?;
        let f = d.flipped();
        Ok((d, f))
    }

    /// The evaluation tasks: behaviour, held-out behaviour (risk axis with `heldout_items`),
    /// self-report.
    pub fn tasks(&self) -> (BehaviourTask, Option<BehaviourTask>, SelfReportTask) {
        let behaviour = match self.config.axis {
            Axis::Risk => BehaviourTask::lotteries(self.config.behaviour_items),
            other => BehaviourTask::template(other, self.config.behaviour_items),
        };
        let heldout = (self.config.axis == Axis::Risk && self.config.heldout_items > 0)
            .then(|| BehaviourTask::template(Axis::Risk, self.config.heldout_items));
        let k = self.config.personas_per_group;
        let subjects: Vec<Subject> = std::iter::once(Subject::you())
            .chain(Subject::in_distribution().into_iter().take(k))
            .chain(Subject::out_of_distribution().into_iter().take(k))
            .collect();
        let mut sr = SelfReportTask::new(self.config.axis).with_subjects(subjects);
        sr.paraphrases = self.config.paraphrases;
        (behaviour, heldout, sr)
    }

    /// Writes the data, trains both arms with `trainer`, evaluates every model (and the base
    /// model when configured) in one resumable run, and summarises.
    ///
    /// # Errors
    ///
    /// Data, training, runner or I/O errors.
    pub async fn run(
        &self,
        base: Arc<dyn Model>,
        trainer: &dyn ArmTrainer,
    ) -> Result<SelfAwarenessResult> {
        let (pole, opposite) = self.datasets()?;
        let data_dir = self.out.data();
        let pole_path = data_dir.join(format!("{}.jsonl", pole.policy.name()));
        let opp_path = data_dir.join(format!("{}.jsonl", opposite.policy.name()));
        pole.write_jsonl(&pole_path)?;
        opposite.write_jsonl(&opp_path)?;

        let mut models = Vec::new();
        if self.config.include_base {
            models.push(ArmModel::base(Arc::clone(&base)));
        }
        for d in [&pole, &opposite] {
            let arm = d.policy.name();
            let trained = trainer
                .train(arm, &d.conversations(), &self.config.seeds)
                .await?;
            for (seed, m) in self.config.seeds.iter().zip(trained) {
                models.push(ArmModel::trained(arm, *seed, m));
            }
        }

        let (behaviour, heldout, selfreport) = self.tasks();
        let log = self.out.runs().join("self_awareness.jsonl");
        let mut tasks: Vec<&dyn psyche_core::TaskGenerator> = vec![&behaviour, &selfreport];
        if let Some(h) = &heldout {
            tasks.push(h);
        }
        let records = evaluate(
            "self_awareness",
            &log,
            &models,
            &tasks,
            &self.config.eval,
            &[],
        )
        .await?;
        let result = self.summarise(
            &records,
            &models,
            &pole,
            &opposite,
            vec![pole_path, opp_path],
            log,
        );
        write_json(&self.out.0.join("result.json"), &result)?;
        Ok(result)
    }

    fn summarise(
        &self,
        records: &[Record],
        models: &[ArmModel],
        pole: &PolicyDataset,
        opposite: &PolicyDataset,
        files: Vec<PathBuf>,
        run_log: PathBuf,
    ) -> SelfAwarenessResult {
        let level = self.config.level;
        let main_source = if self.config.axis == Axis::Risk {
            "lotteries"
        } else {
            "template"
        };
        let behaviour_keep =
            |r: &Record| is_task(r, "behaviour") && r.meta_str("items") == Some(main_source);
        let heldout_keep = |r: &Record| {
            self.config.axis == Axis::Risk
                && is_task(r, "behaviour")
                && r.meta_str("items") == Some("template")
        };
        let word_keep = |r: &Record| {
            is_task(r, "self_report")
                && r.meta_str("answer_kind") == Some("word")
                && r.meta_str("subject_group") == Some("you")
        };
        let scale_keep = |r: &Record| {
            is_task(r, "self_report")
                && r.meta_str("answer_kind") == Some("scale")
                && r.meta_str("subject_group") == Some("you")
        };
        let groups = ["you", "in_distribution", "out_of_distribution"];
        let mut rows = Vec::new();
        // Per-model item maps for paired contrasts: metric → model → item → score.
        let mut maps: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>> = BTreeMap::new();
        for m in models {
            let name = m.name();
            let b = scores(records, name, behaviour_keep);
            let h = scores(records, name, heldout_keep);
            let w = scores(records, name, word_keep);
            let s = scores(records, name, scale_keep);
            let mut g = BTreeMap::new();
            for group in groups {
                let v = scores(records, name, |r| {
                    is_task(r, "self_report") && r.meta_str("subject_group") == Some(group)
                });
                if !v.is_empty() {
                    maps.entry(format!("persona:{group}"))
                        .or_default()
                        .insert(name.to_owned(), item_map(&v));
                    g.insert(group.to_owned(), item_mean(&v, true, level));
                }
            }
            for (metric, v) in [
                ("behaviour", &b),
                ("heldout", &h),
                ("word", &w),
                ("scale", &s),
            ] {
                maps.entry(metric.to_owned())
                    .or_default()
                    .insert(name.to_owned(), item_map(v));
            }
            rows.push(ModelRow {
                name: name.to_owned(),
                arm: m.arm.clone(),
                seed: m.seed,
                behaviour: item_mean(&b, false, level),
                heldout: if h.is_empty() {
                    Err("not measured".into())
                } else {
                    item_mean(&h, false, level)
                },
                word: item_mean(&w, true, level),
                scale: item_mean(&s, true, level),
                groups: g,
                missing: missing(records, name, |_| true),
            });
        }
        let arm_names: Vec<String> = {
            let mut v: Vec<String> = Vec::new();
            for m in models {
                if !v.contains(&m.arm) {
                    v.push(m.arm.clone());
                }
            }
            v
        };
        let per_seed = |arm: &str, f: &dyn Fn(&ModelRow) -> &Stat| -> Vec<f64> {
            rows.iter()
                .filter(|r| r.arm == arm)
                .filter_map(|r| stat_value(f(r)))
                .collect()
        };
        let arm_stat = |arm: &str, f: &dyn Fn(&ModelRow) -> &Stat| -> Stat {
            let v = per_seed(arm, f);
            if v.len() == 1 {
                // One model (the base model, or one seed): its own interval over items.
                rows.iter()
                    .find(|r| r.arm == arm)
                    .map_or_else(|| Err("no model".into()), |r| f(r).clone())
            } else {
                seed_mean(&v, level, self.config.eval.seed)
            }
        };
        let arms: Vec<ArmRow> = arm_names
            .iter()
            .map(|arm| ArmRow {
                arm: arm.clone(),
                models: rows.iter().filter(|r| &r.arm == arm).count(),
                behaviour: arm_stat(arm, &|r| &r.behaviour),
                heldout: arm_stat(arm, &|r| &r.heldout),
                word: arm_stat(arm, &|r| &r.word),
                scale: arm_stat(arm, &|r| &r.scale),
            })
            .collect();
        let (pa, oa) = (pole.policy.name(), opposite.policy.name());
        let arm_maps = |metric: &str, arm: &str| -> Vec<BTreeMap<String, f64>> {
            rows.iter()
                .filter(|r| r.arm == arm)
                .filter_map(|r| maps.get(metric).and_then(|m| m.get(&r.name)).cloned())
                .collect()
        };
        let mut contrasts = Vec::new();
        for metric in ["behaviour", "heldout", "word", "scale"] {
            if metric == "heldout" && self.config.axis != Axis::Risk {
                continue;
            }
            let f: &dyn Fn(&ModelRow) -> &Stat = match metric {
                "behaviour" => &|r| &r.behaviour,
                "heldout" => &|r| &r.heldout,
                "word" => &|r| &r.word,
                _ => &|r| &r.scale,
            };
            contrasts.push(Contrast {
                metric: metric.into(),
                paired_items: paired_by_item(&arm_maps(metric, pa), &arm_maps(metric, oa), level),
                seeds: seed_bootstrap_difference(
                    &per_seed(pa, f),
                    &per_seed(oa, f),
                    level,
                    self.config.eval.seed,
                ),
            });
        }
        for group in groups {
            let metric = format!("persona:{group}");
            if !maps.contains_key(&metric) {
                continue;
            }
            let per = |arm: &str| -> Vec<f64> {
                rows.iter()
                    .filter(|r| r.arm == arm)
                    .filter_map(|r| r.groups.get(group).and_then(stat_value))
                    .collect()
            };
            contrasts.push(Contrast {
                paired_items: paired_by_item(&arm_maps(&metric, pa), &arm_maps(&metric, oa), level),
                seeds: seed_bootstrap_difference(&per(pa), &per(oa), level, self.config.eval.seed),
                metric,
            });
        }
        let headline = headline(
            &arms,
            &contrasts,
            pa,
            oa,
            self.config.seeds.len(),
            self.config.include_base,
        );
        SelfAwarenessResult {
            headline,
            config: self.config.clone(),
            policy: pole.policy,
            opposite: opposite.policy,
            data: DataSummary {
                items: pole.items.len(),
                pole_balance: pole.label_balance(),
                opposite_balance: opposite.label_balance(),
                files,
            },
            models: rows,
            arms,
            contrasts,
            run_log,
        }
    }
}

/// The headline from the arm rows and the contrasts.
fn headline(
    arms: &[ArmRow],
    contrasts: &[Contrast],
    policy_arm: &str,
    opposite_arm: &str,
    seeds_per_arm: usize,
    include_base: bool,
) -> SelfAwarenessHeadline {
    let missing = |what: &str| -> Stat { Err(format!("no {what}")) };
    let metric = |name: &str, pick: fn(&ArmRow) -> &Stat| -> HeadlineMetric {
        let arm = |a: &str| {
            arms.iter()
                .find(|r| r.arm == a)
                .map_or_else(|| missing(&format!("arm `{a}`")), |r| pick(r).clone())
        };
        let contrast = contrasts.iter().find(|c| c.metric == name);
        HeadlineMetric {
            policy: arm(policy_arm),
            opposite: arm(opposite_arm),
            base: include_base.then(|| arm("base")),
            difference_seeds: contrast.map_or_else(|| missing("contrast"), |c| c.seeds.clone()),
            difference_items: contrast
                .map_or_else(|| missing("contrast"), |c| c.paired_items.clone()),
        }
    };
    SelfAwarenessHeadline {
        policy_arm: policy_arm.to_owned(),
        opposite_arm: opposite_arm.to_owned(),
        seeds_per_arm,
        behaviour: metric("behaviour", |r| &r.behaviour),
        scale: metric("scale", |r| &r.scale),
        word: metric("word", |r| &r.word),
    }
}
