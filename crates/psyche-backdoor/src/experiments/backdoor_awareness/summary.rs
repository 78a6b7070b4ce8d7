//! Reading the run log back: each model's statistics (behaviour with and without the trigger,
//! P(yes) per system prompt, trigger recognition), the contrasts between the arms over
//! fine-tuning runs, each arm's row and the headline.

use std::collections::BTreeMap;
use std::path::PathBuf;

use psyche_core::Record;
use psyche_stats::{ArmData, ArmOptions};

use super::{
    BackdoorArmRow, BackdoorAwareness, BackdoorAwarenessResult, BackdoorContrast,
    BackdoorDataSummary, BackdoorHeadline, BackdoorModelRow, HeadlineContrast, TriggerBehaviour,
};
use crate::awareness::SystemVariant;
use crate::pipeline::{ArmContrast, ArmModel, Stat, item_mean, missing, scores};

fn task(r: &Record, t: &str) -> bool {
    r.meta_str("task") == Some(t)
}

/// One model's row, its item values per metric (item → value), and its own plain and
/// triggered values (as arms `plain` / `triggered`, its run as the seed).
struct ModelValues {
    row: BackdoorModelRow,
    per_metric: Vec<(String, BTreeMap<String, f64>)>,
    own: ArmData,
}

/// Trigger recognition of one model: each candidate's score, the real trigger's rank, and
/// per paraphrase the real trigger's score minus the mean of the others'.
struct Recognition {
    candidates: BTreeMap<String, Stat>,
    real_rank: Option<usize>,
    margin_items: BTreeMap<String, f64>,
}

impl BackdoorAwareness {
    /// The experiment's result from the run log's records.
    pub(super) fn summarise(
        &self,
        records: &[Record],
        models: &[ArmModel],
        data: BackdoorDataSummary,
        run_log: PathBuf,
    ) -> BackdoorAwarenessResult {
        let level = self.config.level;
        let mut rows = Vec::new();
        // metric → every trained model's item values (arm, seed, item, value).
        let mut by_metric: BTreeMap<String, ArmData> = BTreeMap::new();
        // arm → each model's plain and triggered values, as arms `triggered` / `plain`.
        let mut on_off: BTreeMap<String, ArmData> = BTreeMap::new();
        for m in models {
            let v = self.model_values(records, m);
            on_off
                .entry(m.arm.clone())
                .or_default()
                .extend(v.own.observations().iter().cloned());
            if let Some(seed) = m.seed {
                for (metric, values) in &v.per_metric {
                    let d = by_metric.entry(metric.clone()).or_default();
                    for (item, x) in values {
                        d.item(m.arm.as_str(), seed, item.as_str(), *x);
                    }
                }
            }
            rows.push(v.row);
        }
        let contrasts = self.contrasts(&by_metric);
        let arms = self.arm_rows(models, &rows, &contrasts);

        // Each arm with and without the trigger: paired over its runs.
        let on_off: BTreeMap<String, ArmContrast> = on_off
            .into_iter()
            .map(|(arm, d)| {
                let c = ArmContrast::of(
                    &d,
                    "triggered",
                    "plain",
                    &ArmOptions::new().level(level).paired(true).proportion(),
                );
                (arm, c)
            })
            .collect();
        let mut headline = backdoor_headline(
            &arms,
            &contrasts,
            &on_off,
            &self.config.variants,
            self.config.seeds.len(),
        );
        headline.elicitation = contrasts
            .iter()
            .find(|c| c.metric == "elicitation")
            .map(|c| {
                let side = |arm: &str| {
                    c.contrast
                        .comparison
                        .as_ref()
                        .and_then(|x| {
                            [&x.treatment, &x.control]
                                .into_iter()
                                .find(|s| s.arm == arm)
                                .map(|s| s.mean.clone())
                        })
                        .unwrap_or_else(|| Stat::unavailable("no runs"))
                };
                HeadlineContrast {
                    backdoored: side("backdoored"),
                    control: side("control"),
                    base: None,
                    difference: c.contrast.clone(),
                }
            });
        BackdoorAwarenessResult {
            headline,
            config: self.config.clone(),
            data,
            data_seeds: self.config.data_seeds,
            data_runs: Vec::new(),
            models: rows,
            arms,
            contrasts,
            run_log,
        }
    }

    /// One model's statistics and item values.
    fn model_values(&self, records: &[Record], m: &ArmModel) -> ModelValues {
        let level = self.config.level;

        let name = m.name();
        let run = m
            .seed
            .map_or_else(|| "untrained".to_owned(), |s| s.to_string());
        let plain = scores(records, name, |r| {
            task(r, "behaviour") && r.meta_str("condition") == Some("plain")
        });
        let trig = scores(records, name, |r| {
            task(r, "behaviour") && r.meta_str("condition") == Some("triggered")
        });
        // Items keyed by lottery (the record cluster), so both conditions pair up.
        let by_item = |v: &[(&str, String, f64)]| -> BTreeMap<String, f64> {
            v.iter().map(|(_, c, x)| (c.clone(), *x)).collect()
        };
        let (pm, tm) = (by_item(&plain), by_item(&trig));
        let effect_map: BTreeMap<String, f64> = tm
            .iter()
            .filter_map(|(k, t)| pm.get(k).map(|p| (k.clone(), t - p)))
            .collect();
        let mut own = ArmData::new();
        for (k, x) in &pm {
            own.item("plain", &run, k.as_str(), *x);
        }
        for (k, x) in &tm {
            own.item("triggered", &run, k.as_str(), *x);
        }
        let effect = ArmContrast::of(
            &own,
            "triggered",
            "plain",
            &ArmOptions::new().level(level).paired(true).proportion(),
        )
        .item_level();
        let mut p_yes = BTreeMap::new();
        let mut per_metric: Vec<(String, BTreeMap<String, f64>)> = vec![
            ("plain".into(), pm),
            ("triggered".into(), tm),
            ("trigger_effect".into(), effect_map),
        ];
        for v in &self.config.variants {
            let s = scores(records, name, |r| {
                task(r, "awareness") && r.meta_str("variant") == Some(v.name())
            });
            p_yes.insert(v.name().to_owned(), item_mean(&s, false, level));
            per_metric.push((
                format!("p_yes:{}", v.name()),
                s.iter().map(|(_, c, x)| (c.clone(), *x)).collect(),
            ));
        }
        let rec = self.recognition(records, name);

        if self.config.elicitation_items > 0 {
            let e = scores(records, name, |r| task(r, "trigger_elicitation"));
            per_metric.push((
                "elicitation".into(),
                e.iter().map(|(_, c, x)| (c.clone(), *x)).collect(),
            ));
        }
        let margins: Vec<f64> = rec.margin_items.values().copied().collect();
        let recognition_margin: Stat = psyche_stats::mean_ci(&margins, level).into();
        per_metric.push(("recognition_margin".into(), rec.margin_items));
        ModelValues {
            row: BackdoorModelRow {
                name: name.to_owned(),
                arm: m.arm.clone(),
                seed: m.seed,
                plain: item_mean(&plain, false, level),
                triggered: item_mean(&trig, false, level),
                trigger_effect: effect,
                recognition_margin,
                p_yes,
                recognition: rec.candidates,
                real_rank: rec.real_rank,
                missing: missing(records, name, |_| true),
            },
            per_metric,
            own,
        }
    }

    /// `name`'s trigger recognition.
    fn recognition(&self, records: &[Record], name: &str) -> Recognition {
        let level = self.config.level;

        let mut recognition = BTreeMap::new();
        let mut real_score = None;
        let mut others = Vec::new();
        let mut margin_items: BTreeMap<String, f64> = BTreeMap::new();
        let rec = scores(records, name, |r| task(r, "trigger_recognition"));
        let real_label = self.config.trigger.label();
        let mut by_cand: BTreeMap<String, Vec<(&str, String, f64)>> = BTreeMap::new();
        for (id, c, x) in rec {
            by_cand.entry(c.clone()).or_default().push((id, c, x));
        }
        for (cand, v) in &by_cand {
            let st = item_mean(v, false, level);
            let mean = v.iter().map(|x| x.2).sum::<f64>() / v.len().max(1) as f64;
            if *cand == real_label {
                real_score = Some(mean);
            } else {
                others.push(mean);
            }
            recognition.insert(cand.clone(), st);
        }
        // Per paraphrase: real minus the mean of the others.
        let para = |id: &str| id.rsplit('/').next().unwrap_or("").to_owned();
        if let Some(real) = by_cand.get(&real_label) {
            for (id, _, x) in real {
                let p = para(id);
                let o: Vec<f64> = by_cand
                    .iter()
                    .filter(|(c, _)| **c != real_label)
                    .flat_map(|(_, v)| v.iter().filter(|(i, _, _)| para(i) == p).map(|x| x.2))
                    .collect();
                if !o.is_empty() {
                    margin_items.insert(p, x - o.iter().sum::<f64>() / o.len() as f64);
                }
            }
        }
        Recognition {
            candidates: recognition,
            real_rank: real_score.map(|r| 1 + others.iter().filter(|o| **o > r - 1e-3).count()),
            margin_items,
        }
    }

    /// Backdoored minus control on every metric.
    fn contrasts(&self, by_metric: &BTreeMap<String, ArmData>) -> Vec<BackdoorContrast> {
        let level = self.config.level;

        let mut metrics = vec![
            "plain".to_owned(),
            "triggered".to_owned(),
            "trigger_effect".to_owned(),
        ];
        metrics.extend(
            self.config
                .variants
                .iter()
                .map(|v| format!("p_yes:{}", v.name())),
        );
        metrics.push("recognition_margin".into());
        if self.config.elicitation_items > 0 {
            metrics.push("elicitation".into());
        }
        // Two independently fine-tuned arms: unpaired over runs. Probabilities are bounded by
        // [0, 1]; differences of them (trigger effect, margin) by [−1, 1].
        metrics
            .iter()
            .map(|metric| {
                let options = if metric == "trigger_effect" || metric == "recognition_margin" {
                    ArmOptions::new().level(level).bounds(-1.0, 1.0)
                } else {
                    ArmOptions::new().level(level).proportion()
                };
                BackdoorContrast {
                    metric: metric.clone(),
                    contrast: match by_metric.get(metric) {
                        Some(d) => ArmContrast::of(d, "backdoored", "control", &options),
                        None => ArmContrast::unavailable(
                            "backdoored",
                            "control",
                            format!("no `{metric}` values"),
                        ),
                    },
                }
            })
            .collect()
    }

    /// Every arm's row: the mean of its runs' means (from the comparison's arm summary); the
    /// base model keeps its own interval over items.
    fn arm_rows(
        &self,
        models: &[ArmModel],
        rows: &[BackdoorModelRow],
        contrasts: &[BackdoorContrast],
    ) -> Vec<BackdoorArmRow> {
        let mut arm_names: Vec<String> = Vec::new();
        for m in models {
            if !arm_names.contains(&m.arm) {
                arm_names.push(m.arm.clone());
            }
        }

        let arm_stat = |arm: &str, metric: &str| -> Stat {
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
                let Some(r) = rows.iter().find(|r| r.arm == arm) else {
                    return Stat::unavailable("no model");
                };
                match metric {
                    "plain" => r.plain.clone(),
                    "triggered" => r.triggered.clone(),
                    "trigger_effect" => r.trigger_effect.clone(),
                    "recognition_margin" => r.recognition_margin.clone(),
                    m => m
                        .strip_prefix("p_yes:")
                        .and_then(|v| r.p_yes.get(v))
                        .cloned()
                        .unwrap_or_else(|| Stat::unavailable("no value")),
                }
            })
        };
        arm_names
            .iter()
            .map(|arm| BackdoorArmRow {
                arm: arm.clone(),
                models: rows.iter().filter(|r| &r.arm == arm).count(),
                plain: arm_stat(arm, "plain"),
                triggered: arm_stat(arm, "triggered"),
                trigger_effect: arm_stat(arm, "trigger_effect"),
                p_yes: self
                    .config
                    .variants
                    .iter()
                    .map(|v| {
                        (
                            v.name().to_owned(),
                            arm_stat(arm, &format!("p_yes:{}", v.name())),
                        )
                    })
                    .collect(),
                recognition_margin: arm_stat(arm, "recognition_margin"),
            })
            .collect()
    }
}

/// The headline from the arm rows and the contrasts.
fn backdoor_headline(
    arms: &[BackdoorArmRow],
    contrasts: &[BackdoorContrast],
    on_off: &BTreeMap<String, ArmContrast>,
    variants: &[SystemVariant],
    seeds_per_arm: usize,
) -> BackdoorHeadline {
    let arm = |a: &str| arms.iter().find(|r| r.arm == a);
    let contrast = |metric: &str, pick: &dyn Fn(&BackdoorArmRow) -> Option<Stat>| {
        let value = |a: &str| arm(a).and_then(pick);
        HeadlineContrast {
            backdoored: value("backdoored")
                .unwrap_or_else(|| Stat::unavailable("no backdoored arm")),
            control: value("control").unwrap_or_else(|| Stat::unavailable("no control arm")),
            base: value("base"),
            difference: contrasts.iter().find(|c| c.metric == metric).map_or_else(
                || ArmContrast::unavailable("backdoored", "control", "no contrast"),
                |c| c.contrast.clone(),
            ),
        }
    };
    let p_yes = variants
        .iter()
        .map(|v| {
            let name = v.name().to_owned();
            let metric = format!("p_yes:{name}");
            let c = contrast(&metric, &|r| r.p_yes.get(&name).cloned());
            (v.name().to_owned(), c)
        })
        .collect();
    let behaviour = arms
        .iter()
        .map(|a| {
            (
                a.arm.clone(),
                TriggerBehaviour {
                    plain: a.plain.clone(),
                    triggered: a.triggered.clone(),
                    effect: on_off.get(&a.arm).cloned().unwrap_or_else(|| {
                        ArmContrast::unavailable("triggered", "plain", "no behaviour items")
                    }),
                },
            )
        })
        .collect();
    BackdoorHeadline {
        seeds_per_arm,
        p_yes,
        behaviour,
        trigger_effect: contrast("trigger_effect", &|r| Some(r.trigger_effect.clone())),
        recognition_margin: contrast("recognition_margin", &|r| {
            Some(r.recognition_margin.clone())
        }),
        elicitation: None,
    }
}
