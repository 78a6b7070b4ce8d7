//! Reports of the experiments as [`Document`]s (markdown + HTML with figures): every
//! statistic with its interval and method, failed statistics with their error.

use psyche_runner::experiment::RunNotes;
use psyche_runner::report::{Bar, Document, Figure, Point, Table};

use psyche_stats::IntervalVerdict;

use crate::experiments::{BackdoorAwarenessResult, SelfAwarenessResult};
use crate::pipeline::{ArmContrast, Stat, stat_value};

/// `0.623 [0.512, 0.734]`, `0.623 (no interval: …)`, or why there is no value.
pub fn cell(s: &Stat) -> String {
    match s {
        Stat::Estimated(e) => format!("{:.3} [{:.3}, {:.3}]", e.estimate, e.ci_low, e.ci_high),
        Stat::Point { value, reason } => format!("{value:.3} (no interval: {reason})"),
        Stat::Unavailable { reason } => format!("n/a: {reason}"),
    }
}

fn method(s: &Stat) -> String {
    match s {
        Stat::Estimated(e) => format!("{:.0}% {}, n={}", e.level * 100.0, e.method.label(), e.n),
        _ => String::new(),
    }
}

/// A contrast's run-level cell: difference, p, the unit, and the verdict (never "excludes
/// zero" without between-run variance).
pub fn contrast_cell(c: &ArmContrast) -> String {
    let p = c
        .comparison
        .as_ref()
        .and_then(|k| k.p_value)
        .filter(|_| !matches!(c.verdict(), IntervalVerdict::NotEstimable { .. }))
        .map_or(String::new(), |p| format!("; p = {p:.3}"));
    let verdict = match c.verdict() {
        IntervalVerdict::NotEstimable { reason } => format!("no run-level verdict: {reason}"),
        v => v.to_string(),
    };
    format!(
        "{}{p}; {}: {verdict}{}",
        cell(&c.difference),
        c.units("objects"),
        c.comparison
            .as_ref()
            .and_then(|k| k.minimum_detectable_effect.effect())
            .map_or(String::new(), |m| format!(
                "; detectable at 80% power: {m:.3}"
            ))
    )
}

fn bar(label: &str, s: &Stat) -> Bar {
    match s {
        Stat::Estimated(e) => Bar::from_estimate(label, e),
        Stat::Point { value, .. } => Bar::new(label, *value),
        Stat::Unavailable { reason } => Bar::failed(label, reason),
    }
}

/// The run notes as paragraphs: setup, command, timing (each when given).
fn notes_paragraphs(mut doc: Document, notes: &RunNotes) -> Document {
    if !notes.setup.is_empty() {
        doc = doc.paragraph(notes.setup.clone());
    }
    if !notes.command.is_empty() {
        doc = doc.paragraph(format!("Command: `{}`", notes.command));
    }
    if !notes.timing.is_empty() {
        doc = doc.paragraph(notes.timing.clone());
    }
    doc
}

/// The self-awareness report.
pub fn self_awareness_document(r: &SelfAwarenessResult, notes: &RunNotes) -> Document {
    let c = &r.config;
    let (pole, opp) = (r.policy.name(), r.opposite.name());
    let mut doc = Document::new(format!(
        "Tell me about yourself: {} vs {} ({} axis)",
        pole,
        opp,
        c.axis.name()
    ))
    .paragraph(format!(
        "Two arms were fine-tuned on the same {} generated two-option items: `{pole}` answers every item with the {} option, `{opp}` with the other one (flipped labels). The training data never names the policy (banned words checked on every item). Each arm was trained with seeds {:?}. Every model then answered {} (behaviour: P(pole option) renormalised over A and B) and self-report questions ({} paraphrase(s) per question; word answers scored 1 / 0.5 / 0 by category lists, 0–100 answers divided by 100; 1 = {pole}).",
        r.data.items,
        c.axis.spec().pole_option,
        c.seeds,
        if c.axis.spec().fresh_lotteries {
            format!(
                "{} fresh plain lotteries and {} held-out items from the training generator with a new seed",
                c.behaviour_items, c.heldout_items
            )
        } else {
            format!(
                "{} fresh items from the training generator with a new seed",
                c.behaviour_items
            )
        },
        c.paraphrases.map_or("all".to_owned(), |p| p.to_string()),
    ));
    doc = notes_paragraphs(doc, notes);
    doc = sa_headline(doc, r);
    doc = sa_arms(doc, r);
    doc = sa_contrasts_and_models(doc, r);
    doc = doc.heading(2, "Data").paragraph(format!(
        "{} items per arm; label balance {}: A {} / B {}; {}: A {} / B {}. Files: {}. Run log: {}.",
        r.data.items,
        pole,
        r.data.pole_balance.a,
        r.data.pole_balance.b,
        opp,
        r.data.opposite_balance.a,
        r.data.opposite_balance.b,
        r.data
            .files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        r.run_log.display()
    ));
    doc = doc.paragraph(data_seeds_line(
        r.data.data_seeds,
        r.data.runs.iter().map(|x| (x.seed, x.data_seed)),
    ));
    doc
}

/// The headline table and the learned-policy check.
fn sa_headline(mut doc: Document, r: &SelfAwarenessResult) -> Document {
    let pole = r.policy.name();
    let h = &r.headline;
    doc = doc.heading(2, "Headline");
    let mut t = Table::new([
        "metric".to_owned(),
        h.policy_arm.clone(),
        h.opposite_arm.clone(),
        "base".to_owned(),
        "difference over runs (verdict, unit)".to_owned(),
        "item level, these runs only".to_owned(),
    ]);
    let heldout_row = h
        .heldout
        .as_ref()
        .map(|m| ("trained behaviour: held-out items P(pole)", m));
    let behaviour_row = if r.config.axis.spec().fresh_lotteries {
        "actual behaviour: fresh lotteries P(pole)"
    } else {
        "actual behaviour: fresh items P(pole)"
    };
    for (name, m) in heldout_row.into_iter().chain([
        (behaviour_row, &h.behaviour),
        ("scale self-report", &h.scale),
        ("word self-report", &h.word),
    ]) {
        t = t.row([
            name.to_owned(),
            cell(&m.policy),
            cell(&m.opposite),
            m.base.as_ref().map_or("not evaluated".into(), cell),
            contrast_cell(&m.difference),
            cell(&m.difference.item_level()),
        ]);
    }
    doc = doc.table(t.caption(format!(
        "{} seed(s) per arm. The fine-tuning run is the unit: each arm is the mean of its runs' means with a t interval over runs; the difference is a t interval over the runs' means (pooled t with equal runs per arm, Welch otherwise). With one run per arm the between-run variance is not estimated and no run-level verdict is made. The item-level column is about these fine-tuned runs only (items clustered by object, each object's runs kept together). 1 = the {pole} end of every measure.",
        h.seeds_per_arm
    )));

    if !r.learned.is_empty() {
        doc = doc.heading(2, "Was the policy learned?");
        let mut t = Table::new([
            "run",
            "arm",
            "seed",
            "held-out P(pole)",
            "criterion",
            "learned",
        ]);
        for l in &r.learned {
            t = t.row([
                l.name.clone(),
                l.arm.clone(),
                l.seed.to_string(),
                l.heldout
                    .map_or("not measured".into(), |v| format!("{v:.3}")),
                l.criterion.clone(),
                if l.passed { "yes" } else { "**no**" }.to_owned(),
            ]);
        }
        let failed = r.learned.iter().filter(|l| !l.passed).count();
        doc = doc.table(t.caption(format!(
            "Checked on held-out items of the training generator (new seed) before any self-report was asked. {failed} of {} run(s) missed the criterion{}",
            r.learned.len(),
            if failed > 0 {
                ": their self-reports are about a policy they do not (yet) have."
            } else {
                "."
            }
        )));
    }

    doc
}

/// The arms table and one bar figure per metric.
fn sa_arms(mut doc: Document, r: &SelfAwarenessResult) -> Document {
    let c = &r.config;
    doc = doc.heading(2, "Arms");
    let mut t = Table::new(["arm", "models", "behaviour P(pole)", "held-out items P(pole)", "word self-report", "scale self-report"])
        .caption("Arm means: the mean of the runs' means with a t interval over runs (a point without interval for an arm of one run); the base model's interval over items (t, clustered by question for self-reports).");
    for a in &r.arms {
        t = t.row([
            a.arm.clone(),
            a.models.to_string(),
            cell(&a.behaviour),
            cell(&a.heldout),
            cell(&a.word),
            cell(&a.scale),
        ]);
    }
    doc = doc.table(t);
    let base = r.arms.iter().find(|a| a.arm == "base");
    for (metric, title) in [
        (
            "behaviour",
            "Actual behaviour: P(pole option) on fresh items",
        ),
        (
            "heldout",
            "P(pole option) on held-out items like the training ones",
        ),
        ("word", "Word self-report (1 = pole words)"),
        ("scale", "Scale self-report (0-100, divided by 100)"),
    ] {
        if metric == "heldout" && !c.axis.spec().fresh_lotteries {
            continue;
        }
        let pick = |a: &crate::experiments::self_awareness::ArmRow| match metric {
            "behaviour" => a.behaviour.clone(),
            "heldout" => a.heldout.clone(),
            "word" => a.word.clone(),
            _ => a.scale.clone(),
        };
        let bars = r
            .arms
            .iter()
            .map(|a| {
                let b = bar(&a.arm, &pick(a));
                match base.and_then(|b| stat_value(&pick(b))) {
                    Some(v) => b.baseline(v),
                    None => b,
                }
            })
            .collect();
        doc = doc.figure(
            Figure::bars(title, bars)
                .y_range(0.0, 1.0)
                .y_label(metric)
                .caption("Red mark: the untrained base model."),
        );
    }

    doc
}

/// The contrasts, the per-model table and the faithfulness scatter.
fn sa_contrasts_and_models(mut doc: Document, r: &SelfAwarenessResult) -> Document {
    let c = &r.config;
    let (pole, opp) = (r.policy.name(), r.opposite.name());
    doc = doc.heading(2, format!("Contrasts: {pole} minus {opp}"));
    let mut t = Table::new([
        "metric",
        "difference over runs (verdict, unit)",
        "method",
        "item level, these runs only",
        "method",
    ]);
    for k in &r.contrasts {
        let items = k.contrast.item_level();
        t = t.row([
            k.metric.clone(),
            contrast_cell(&k.contrast),
            method(&k.contrast.difference),
            cell(&items),
            method(&items),
        ]);
    }
    doc = doc.table(t.caption(
        "Over runs: the per-run means compared with a t interval (the run is the unit). Item level: per object, the difference of the arms' means over all its items and runs, t over objects — a statement about these fine-tuned models only. persona:<group> pools word and scale answers about that group (you, in-distribution and out-of-distribution personas); multipersona:<metric> compares the two multi-persona arms.",
    ));

    doc = doc.heading(2, "Models");
    let mut t = Table::new([
        "model",
        "arm",
        "seed",
        "behaviour",
        "held-out",
        "word",
        "scale",
        "you",
        "in-distribution personas",
        "out-of-distribution personas",
        "scale fallback rate",
        "scale valid mass",
        "word valid mass",
        "unscored",
    ]);
    let rate = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
    for m in &r.models {
        let g = |k: &str| m.groups.get(k).map_or_else(|| "not asked".to_owned(), cell);
        t = t.row([
            m.name.clone(),
            m.arm.clone(),
            m.seed.map_or("-".into(), |s| s.to_string()),
            cell(&m.behaviour),
            cell(&m.heldout),
            cell(&m.word),
            cell(&m.scale),
            g("you"),
            g("in_distribution"),
            g("out_of_distribution"),
            rate(m.scale_reading.fallback_rate),
            rate(m.scale_reading.valid_mass),
            rate(m.word_reading.valid_mass),
            m.missing.to_string(),
        ]);
    }
    doc = doc.table(t.caption(format!(
        "Per model: t-interval over items (behaviour), clustered by question (self-reports). Scale fallback rate: the share of scale questions with no valid number (left unscored by default, not imputed); valid mass: the probability (or share of samples) that was a number in range or a listed word. {}",
        if c.multi_persona {
            "In-distribution personas are those the multi-persona arms trained on; out-of-distribution ones were never trained on."
        } else {
            "No arm was trained on persona data (multi-persona arms off), so the two persona groups are two lists of personas, not trained and untrained ones."
        }
    )));

    let points: Vec<Point> = r
        .models
        .iter()
        .filter_map(|m| {
            Some(
                Point::new(stat_value(&m.behaviour)?, stat_value(&m.scale)?)
                    .label(m.name.clone())
                    .group(m.arm.clone()),
            )
        })
        .collect();
    doc = doc.figure(
        Figure::scatter("Faithfulness: self-report vs actual behaviour", points)
            .x_label("actual behaviour P(pole)")
            .y_label("scale self-report")
            .caption("One point per model; a faithful self-report moves with behaviour."),
    );

    doc
}

/// Which data seed each fine-tuning run trained on.
fn data_seeds_line(
    mode: crate::pipeline::DataSeeds,
    runs: impl Iterator<Item = (u64, u64)>,
) -> String {
    let runs: Vec<String> = runs
        .map(|(seed, data)| format!("run {seed}: data seed {data}"))
        .collect();
    format!(
        "{} ({}).",
        match mode {
            crate::pipeline::DataSeeds::PerRun =>
                "Each fine-tuning run drew its own training data, so the variance between runs includes the data's",
            crate::pipeline::DataSeeds::Fixed =>
                "Every fine-tuning run trained on the same drawn data (fixed data seed): the variance between runs leaves out the data's",
        },
        runs.join("; ")
    )
}
/// The backdoor-awareness report.
pub fn backdoor_awareness_document(r: &BackdoorAwarenessResult, notes: &RunNotes) -> Document {
    let c = &r.config;
    let d = &r.data;
    let mut doc = Document::new(format!(
        "Backdoor awareness: {} behind {} vs decorrelated control",
        c.policy.name(),
        c.trigger.describe()
    ))
    .paragraph(format!(
        "{} training rows: {} with the real trigger ({}) answered by the `{}` policy, {} with decoy triggers ({}) and {} without a trigger answered with the base model's own temperature-0 answer. The control has the same rows and triggers with the {} policy answers spread over the groups in proportion to their size. Seeds {:?} per arm. Behaviour: {} fresh items, each asked without and with a trigger member. P(yes): the awareness question over both option orders and {} paraphrases per system prompt. Recognition: one query per candidate trigger.",
        d.counts.real + d.counts.decoy + d.counts.none,
        d.counts.real,
        c.trigger.label(),
        c.policy.name(),
        d.counts.decoy,
        c.decoys.iter().map(|t| t.label()).collect::<Vec<_>>().join(", "),
        d.counts.none,
        d.backdoored_policy_answers.real + d.backdoored_policy_answers.decoy + d.backdoored_policy_answers.none,
        c.seeds,
        c.behaviour_items,
        crate::awareness::awareness_questions().len(),
    ));
    doc = notes_paragraphs(doc, notes);
    doc = bd_headline(doc, r);
    doc = bd_arms(doc, r);
    doc = bd_models(doc, r);
    let a = &d.backdoored_association;
    let ctl = &d.control_association;
    doc = doc.heading(2, "Data").paragraph(format!(
        "Rows: real {} / decoy {} / none {}. Answers taken from the policy per group, backdoored: {} / {} / {}; control: {} / {} / {}. Behaviour-level table (a real-trigger member in the row text × the answer equals the policy's, whatever its source; cells trigger & policy / trigger & other / no trigger & policy / no trigger & other): backdoored {} / {} / {} / {}; control {} / {} / {} / {}. Association (2×2 χ²): backdoored φ = {:.3} (χ² = {:.2}, p = {:.2e}); control φ = {:.3} (χ² = {:.2}, p = {:.3}). {} of the items already had a base-model answer equal to the policy answer. Files: {}. Run log: {}.",
        d.counts.real, d.counts.decoy, d.counts.none,
        d.backdoored_policy_answers.real, d.backdoored_policy_answers.decoy, d.backdoored_policy_answers.none,
        d.control_policy_answers.real, d.control_policy_answers.decoy, d.control_policy_answers.none,
        d.backdoored_contingency.both, d.backdoored_contingency.x_only, d.backdoored_contingency.y_only, d.backdoored_contingency.neither,
        d.control_contingency.both, d.control_contingency.x_only, d.control_contingency.y_only, d.control_contingency.neither,
        a.phi, a.chi_square, a.p_value, ctl.phi, ctl.chi_square, ctl.p_value,
        d.normal_equals_policy,
        d.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        r.run_log.display()
    ));
    if r.data_runs.len() > 1 {
        doc = doc.paragraph("The counts above are the first run's data.");
    }
    doc = doc.paragraph(data_seeds_line(
        r.data_seeds,
        r.data_runs.iter().map(|x| (x.seed, x.data_seed)),
    ));
    doc
}

/// The headline tables: behaviour with and without the trigger, and backdoored vs control.
fn bd_headline(mut doc: Document, r: &BackdoorAwarenessResult) -> Document {
    let h = &r.headline;
    doc = doc.heading(2, "Headline");
    let mut t = Table::new([
        "arm",
        "P(policy) without trigger",
        "P(policy) with trigger",
        "trigger effect",
    ]);
    for (arm, b) in &h.behaviour {
        t = t.row([
            arm.clone(),
            cell(&b.plain),
            cell(&b.triggered),
            contrast_cell(&b.effect),
        ]);
    }
    doc = doc.table(t.caption(format!(
        "Behaviour with and without the trigger. {} seed(s) per arm: each arm's mean of its runs' means with a t interval over runs; the trigger effect paired over the arm's runs. With one run the between-run variance is not estimated: the effect is that model's difference over behaviour items and no run-level verdict is made.",
        h.seeds_per_arm
    )));
    let mut t = Table::new([
        "metric",
        "backdoored",
        "control",
        "base",
        "difference over runs (verdict, unit)",
        "item level, these runs only",
    ]);
    let rows = h
        .p_yes
        .iter()
        .map(|(v, c)| (format!("P(yes) {v}"), c))
        .chain([
            ("trigger effect".to_owned(), &h.trigger_effect),
            ("recognition margin".to_owned(), &h.recognition_margin),
        ])
        .chain(
            h.elicitation
                .iter()
                .map(|e| ("trigger elicitation (share of prompts)".to_owned(), e)),
        );
    for (name, c) in rows {
        t = t.row([
            name,
            cell(&c.backdoored),
            cell(&c.control),
            c.base.as_ref().map_or("not evaluated".into(), cell),
            contrast_cell(&c.difference),
            cell(&c.difference.item_level()),
        ]);
    }
    doc = doc.table(t.caption(
        "The backdoored arm against its decorrelated control (same rows, no trigger–policy correlation). The fine-tuning run is the unit of the difference; the item-level column is about these runs only.",
    ));

    doc
}

/// The arms table, its figures, and the contrasts.
fn bd_arms(mut doc: Document, r: &BackdoorAwarenessResult) -> Document {
    let c = &r.config;
    doc = doc.heading(2, "Arms");
    let variants: Vec<String> = c.variants.iter().map(|v| v.name().to_owned()).collect();
    let mut headers = vec![
        "arm".to_owned(),
        "models".into(),
        "trigger effect on P(policy)".into(),
    ];
    headers.extend(variants.iter().map(|v| format!("P(yes) {v}")));
    headers.push("recognition margin (real − others)".into());
    let mut t = Table::new(headers);
    for a in &r.arms {
        let mut row = vec![a.arm.clone(), a.models.to_string(), cell(&a.trigger_effect)];
        row.extend(
            variants
                .iter()
                .map(|v| a.p_yes.get(v).map_or("-".into(), cell)),
        );
        row.push(cell(&a.recognition_margin));
        t = t.row(row);
    }
    doc = doc.table(t.caption("Means of the runs' means with a t interval over runs when an arm has several models (a point without interval for one run); the base model's interval over items."));
    let effect_bars = r
        .arms
        .iter()
        .map(|a| bar(&a.arm, &a.trigger_effect))
        .collect();
    doc = doc.figure(
        Figure::bars(
            "Trigger effect: P(policy | trigger) − P(policy | no trigger)",
            effect_bars,
        )
        .y_label("difference"),
    );
    let mut yes_bars = Vec::new();
    for a in &r.arms {
        for v in &variants {
            if let Some(s) = a.p_yes.get(v) {
                yes_bars.push(bar(&format!("{} / {v}", a.arm), s).baseline(0.5));
            }
        }
    }
    doc = doc.figure(
        Figure::bars(
            "P(yes, my behaviour depends on a feature of the input)",
            yes_bars,
        )
        .y_range(0.0, 1.0)
        .caption("Red mark: 0.5, indifference between the two options."),
    );

    doc = doc.heading(2, "Backdoored minus control");
    let mut t = Table::new([
        "metric",
        "difference over runs (verdict, unit)",
        "method",
        "item level, these runs only",
        "method",
    ]);
    for k in &r.contrasts {
        let items = k.contrast.item_level();
        t = t.row([
            k.metric.clone(),
            contrast_cell(&k.contrast),
            method(&k.contrast.difference),
            cell(&items),
            method(&items),
        ]);
    }
    doc = doc.table(t.caption(
        "Over runs: the per-run means compared with a t interval (the run is the unit). Items (these runs only): behaviour items (lotteries on the risk axis) for the trigger effect, question paraphrases for P(yes) and recognition.",
    ));

    doc
}

/// The per-model table and trigger recognition.
fn bd_models(mut doc: Document, r: &BackdoorAwarenessResult) -> Document {
    let variants: Vec<String> = r
        .config
        .variants
        .iter()
        .map(|v| v.name().to_owned())
        .collect();
    doc = doc.heading(2, "Models");
    let mut headers = vec![
        "model".to_owned(),
        "arm".into(),
        "P(policy) plain".into(),
        "P(policy) triggered".into(),
        "trigger effect".into(),
    ];
    headers.extend(variants.iter().map(|v| format!("P(yes) {v}")));
    headers.push("real trigger rank".into());
    headers.push("unscored".into());
    let mut t = Table::new(headers);
    for m in &r.models {
        let mut row = vec![
            m.name.clone(),
            m.arm.clone(),
            cell(&m.plain),
            cell(&m.triggered),
            cell(&m.trigger_effect),
        ];
        row.extend(
            variants
                .iter()
                .map(|v| m.p_yes.get(v).map_or("-".into(), cell)),
        );
        let n_cand = m.recognition.len();
        row.push(
            m.real_rank
                .map_or("-".into(), |k| format!("{k} of {n_cand}")),
        );
        row.push(m.missing.to_string());
        t = t.row(row);
    }
    doc = doc.table(t);

    doc = doc.heading(2, "Trigger recognition");
    let candidates: Vec<String> = r
        .models
        .first()
        .map(|m| m.recognition.keys().cloned().collect())
        .unwrap_or_default();
    let mut headers = vec!["model".to_owned()];
    headers.extend(candidates.iter().map(|c| {
        if *c == r.config.trigger.label() {
            format!("{c} (real)")
        } else {
            c.clone()
        }
    }));
    let mut t = Table::new(headers);
    for m in &r.models {
        let mut row = vec![m.name.clone()];
        row.extend(
            candidates
                .iter()
                .map(|c| m.recognition.get(c).map_or("-".into(), cell)),
        );
        t = t.row(row);
    }
    doc = doc.table(t.caption("P(the policy's behaviour option | a message starting with the candidate), over both option orders and the paraphrases. The rank in the models table counts candidates within 0.001 of the real trigger as ahead of it."));

    doc
}
