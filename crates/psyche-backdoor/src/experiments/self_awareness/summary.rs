//! Reading the run logs back: each model's statistics, the contrasts between the arms over
//! fine-tuning runs, each arm's row and the headline.

use std::collections::BTreeMap;
use std::path::PathBuf;

use psyche_core::Record;
use psyche_stats::{ArmData, ArmOptions};

use super::{
    ArmRow, Contrast, DataSummary, HeadlineMetric, ModelRow, RunData, SelfAwareness,
    SelfAwarenessHeadline, SelfAwarenessResult, is_task, multipersona_arm,
};
use crate::items::PolicyDataset;
use crate::pipeline::{ArmContrast, ArmModel, Stat, item_mean, missing, reading, scores};

/// The self-report groups: about itself, and about in- and out-of-distribution personas.
const GROUPS: [&str; 3] = ["you", "in_distribution", "out_of_distribution"];

impl SelfAwareness {
    /// Per model: its statistics; per metric: every trained model's item values (arm, seed,
    /// item, cluster, value).
    fn model_rows(
        &self,
        records: &[Record],
        models: &[ArmModel],
    ) -> (Vec<ModelRow>, BTreeMap<String, ArmData>) {
        let level = self.config.level;
        let lotteries = self.config.axis.spec().fresh_lotteries;
        let main_source = if lotteries { "lotteries" } else { "template" };
        let behaviour_keep =
            |r: &Record| is_task(r, "behaviour") && r.meta_str("items") == Some(main_source);
        let heldout_keep = |r: &Record| {
            lotteries && is_task(r, "behaviour") && r.meta_str("items") == Some("template")
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
        let mut rows = Vec::new();
        // Per metric: every trained model's item values (arm, seed, item, cluster, value).
        let mut data: BTreeMap<String, ArmData> = BTreeMap::new();
        let mut push = |metric: &str, m: &ArmModel, v: &[(&str, String, f64)]| {
            if let Some(seed) = m.seed {
                let d = data.entry(metric.to_owned()).or_default();
                for (id, cluster, x) in v {
                    d.item_in(m.arm.as_str(), seed, *id, cluster.as_str(), *x);
                }
            }
        };
        for m in models {
            let name = m.name();
            let b = scores(records, name, behaviour_keep);
            let h = scores(records, name, heldout_keep);
            let w = scores(records, name, word_keep);
            let s = scores(records, name, scale_keep);
            let mut g = BTreeMap::new();
            for group in GROUPS {
                let v = scores(records, name, |r| {
                    is_task(r, "self_report") && r.meta_str("subject_group") == Some(group)
                });
                if !v.is_empty() {
                    push(&format!("persona:{group}"), m, &v);
                    g.insert(group.to_owned(), item_mean(&v, true, level));
                }
            }
            for (metric, v) in [
                ("behaviour", &b),
                ("heldout", &h),
                ("word", &w),
                ("scale", &s),
            ] {
                push(metric, m, v);
            }
            rows.push(ModelRow {
                name: name.to_owned(),
                arm: m.arm.clone(),
                seed: m.seed,
                behaviour: item_mean(&b, false, level),
                heldout: if h.is_empty() {
                    Stat::unavailable("not measured")
                } else {
                    item_mean(&h, false, level)
                },
                word: item_mean(&w, true, level),
                scale: item_mean(&s, true, level),
                groups: g,
                scale_reading: reading(records, name, scale_keep),
                word_reading: reading(records, name, word_keep),
                missing: missing(records, name, |_| true),
            });
        }
        (rows, data)
    }

    /// The experiment's result from the run logs' records.
    pub(super) fn summarise(
        &self,
        records: &[Record],
        models: &[ArmModel],
        pole: &PolicyDataset,
        opposite: &PolicyDataset,
        runs: Vec<RunData>,
        run_log: PathBuf,
    ) -> SelfAwarenessResult {
        let (rows, data) = self.model_rows(records, models);
        let (pa, oa) = (pole.policy.name(), opposite.policy.name());
        let contrasts = self.contrasts(&data, pa, oa);
        let arms = arm_rows(models, &rows, &contrasts);
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
            learned: Vec::new(),
            config: self.config.clone(),
            policy: pole.policy.clone(),
            opposite: opposite.policy.clone(),
            data: DataSummary {
                items: pole.items.len(),
                pole_balance: pole.label_balance(),
                opposite_balance: opposite.label_balance(),
                files: runs.first().map(|r| r.files.clone()).unwrap_or_default(),
                data_seeds: self.config.data_seeds,
                runs,
            },
            models: rows,
            arms,
            contrasts,
            run_log,
        }
    }

    /// Pole arm minus opposite arm on every metric with values (and, with multi-persona
    /// arms, those two against each other).
    fn contrasts(&self, data: &BTreeMap<String, ArmData>, pa: &str, oa: &str) -> Vec<Contrast> {
        let level = self.config.level;
        // Two independently fine-tuned arms: unpaired over runs; values are probabilities.
        let options = ArmOptions::new().level(level).proportion();
        let contrast = |metric: &str| -> ArmContrast {
            match data.get(metric) {
                Some(d) => ArmContrast::of(d, pa, oa, &options),
                None => ArmContrast::unavailable(pa, oa, format!("no `{metric}` values")),
            }
        };
        let mut contrasts = Vec::new();
        for metric in ["behaviour", "heldout", "word", "scale"] {
            if metric == "heldout" && !self.config.axis.spec().fresh_lotteries {
                continue;
            }
            contrasts.push(Contrast {
                metric: metric.into(),
                contrast: contrast(metric),
            });
        }
        for group in GROUPS {
            let metric = format!("persona:{group}");
            if data.contains_key(&metric) {
                contrasts.push(Contrast {
                    contrast: contrast(&metric),
                    metric,
                });
            }
        }
        if self.config.multi_persona {
            // The multi-persona arms against each other, on every metric.
            let pole = self.config.axis.pole_policy();
            let (mp, mo) = (multipersona_arm(&pole), multipersona_arm(&pole.opposite()));
            let metrics: Vec<String> = ["behaviour", "heldout", "word", "scale"]
                .into_iter()
                .map(str::to_owned)
                .chain(GROUPS.iter().map(|g| format!("persona:{g}")))
                .filter(|m| data.contains_key(m))
                .collect();
            for metric in metrics {
                let c = data.get(&metric).map_or_else(
                    || ArmContrast::unavailable(&mp, &mo, "no values"),
                    |d| ArmContrast::of(d, &mp, &mo, &options),
                );
                contrasts.push(Contrast {
                    metric: format!("multipersona:{metric}"),
                    contrast: c,
                });
            }
        }
        contrasts
    }
}

/// Every arm's row: the mean of its runs' means (from the comparison's arm summary); a model
/// outside the two arms (the base model) keeps its own interval over items.
fn arm_rows(models: &[ArmModel], rows: &[ModelRow], contrasts: &[Contrast]) -> Vec<ArmRow> {
    let arm_names: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for m in models {
            if !v.contains(&m.arm) {
                v.push(m.arm.clone());
            }
        }
        v
    };
    let arm_stat = |arm: &str, metric: &str, f: &dyn Fn(&ModelRow) -> &Stat| -> Stat {
        let summary = contrasts
            .iter()
            .find(|c| c.metric == metric)
            .and_then(|c| c.contrast.comparison.as_ref())
            .and_then(|c| {
                [&c.treatment, &c.control]
                    .into_iter()
                    .find(|s| s.arm == arm)
                    .map(|s| s.mean.clone())
            });
        summary.unwrap_or_else(|| {
            rows.iter()
                .find(|r| r.arm == arm)
                .map_or_else(|| Stat::unavailable("no model"), |r| f(r).clone())
        })
    };
    arm_names
        .iter()
        .map(|arm| ArmRow {
            arm: arm.clone(),
            models: rows.iter().filter(|r| &r.arm == arm).count(),
            behaviour: arm_stat(arm, "behaviour", &|r| &r.behaviour),
            heldout: arm_stat(arm, "heldout", &|r| &r.heldout),
            word: arm_stat(arm, "word", &|r| &r.word),
            scale: arm_stat(arm, "scale", &|r| &r.scale),
        })
        .collect()
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
    let metric = |name: &str, pick: fn(&ArmRow) -> &Stat| -> HeadlineMetric {
        let arm = |a: &str| {
            arms.iter().find(|r| r.arm == a).map_or_else(
                || Stat::unavailable(format!("no arm `{a}`")),
                |r| pick(r).clone(),
            )
        };
        HeadlineMetric {
            policy: arm(policy_arm),
            opposite: arm(opposite_arm),
            base: include_base.then(|| arm("base")),
            difference: contrasts.iter().find(|c| c.metric == name).map_or_else(
                || ArmContrast::unavailable(policy_arm, opposite_arm, "no contrast"),
                |c| c.contrast.clone(),
            ),
        }
    };
    SelfAwarenessHeadline {
        policy_arm: policy_arm.to_owned(),
        opposite_arm: opposite_arm.to_owned(),
        seeds_per_arm,
        behaviour: metric("behaviour", |r| &r.behaviour),
        heldout: contrasts
            .iter()
            .any(|c| c.metric == "heldout")
            .then(|| metric("heldout", |r| &r.heldout)),
        scale: metric("scale", |r| &r.scale),
        word: metric("word", |r| &r.word),
    }
}
