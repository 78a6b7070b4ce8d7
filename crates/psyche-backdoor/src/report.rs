//! Reports of the experiments as [`Document`]s (markdown + HTML with figures): every
//! statistic with its interval and method, failed statistics with their error.

use psyche_runner::report::{Bar, Document, Figure, Point, Table};

use crate::experiments::{BackdoorAwarenessResult, SelfAwarenessResult};
use crate::pipeline::{Stat, stat_value};

/// `0.623 [0.512, 0.734]`, or the error.
pub fn cell(s: &Stat) -> String {
    match s {
        Ok(e) => format!("{:.3} [{:.3}, {:.3}]", e.estimate, e.ci_low, e.ci_high),
        Err(e) => format!("error: {e}"),
    }
}

fn method(s: &Stat) -> String {
    match s {
        Ok(e) => format!("{:.0}% {}, n={}", e.level * 100.0, e.method.label(), e.n),
        Err(_) => String::new(),
    }
}

fn bar(label: &str, s: &Stat) -> Bar {
    match s {
        Ok(e) => Bar::from_estimate(label, e),
        Err(err) => Bar::failed(label, err),
    }
}

/// Where and how a run happened, for the report's header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunNotes {
    /// The command line.
    pub command: String,
    /// Subject / fine-tuning engine description.
    pub setup: String,
    /// Wall-clock time and machine load.
    pub timing: String,
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
        "Two arms were fine-tuned on the same {} generated two-option items: `{pole}` answers every item with the {} option, `{opp}` with the other one (flipped labels). The training data never names the policy (banned words checked on every item). Each arm was trained with seeds {:?}. Every model then answered {} fresh items (behaviour: P(pole option) renormalised over A and B; plain lotteries on the risk axis, plus {} held-out items from the training generator with a new seed) and self-report questions ({} paraphrase(s) per question; word answers scored 1 / 0.5 / 0 by category lists, 0–100 answers divided by 100; 1 = {pole}).",
        r.data.items,
        c.axis.name().replace("risk", "riskier").replace("time", "sooner").replace("quantity", "larger"),
        c.seeds,
        c.behaviour_items,
        c.heldout_items,
        c.paraphrases.map_or("all".to_owned(), |p| p.to_string()),
    ));
    if !notes.setup.is_empty() {
        doc = doc.paragraph(notes.setup.clone());
    }
    if !notes.command.is_empty() {
        doc = doc.paragraph(format!("Command: `{}`", notes.command));
    }
    if !notes.timing.is_empty() {
        doc = doc.paragraph(notes.timing.clone());
    }

    let h = &r.headline;
    doc = doc.heading(2, "Headline");
    let mut t = Table::new([
        "metric".to_owned(),
        h.policy_arm.clone(),
        h.opposite_arm.clone(),
        "base".to_owned(),
        "difference (bootstrap over seeds)".to_owned(),
        "difference (paired by item)".to_owned(),
    ]);
    for (name, m) in [
        ("actual behaviour P(pole)", &h.behaviour),
        ("scale self-report", &h.scale),
        ("word self-report", &h.word),
    ] {
        t = t.row([
            name.to_owned(),
            cell(&m.policy),
            cell(&m.opposite),
            m.base.as_ref().map_or("not evaluated".into(), cell),
            cell(&m.difference_seeds),
            cell(&m.difference_items),
        ]);
    }
    doc = doc.table(t.caption(format!(
        "{} seed(s) per arm. Arms: mean over seeds with a bootstrap percentile interval over seeds (a single model's interval over items when an arm has one seed). 1 = the {pole} end of every measure.",
        h.seeds_per_arm
    )));

    doc = doc.heading(2, "Arms");
    let mut t = Table::new(["arm", "models", "behaviour P(pole)", "held-out items P(pole)", "word self-report", "scale self-report"])
        .caption("Arm means: over fine-tuning seeds with a bootstrap percentile interval over seeds when an arm has several models; over items (t, clustered by question for self-reports) for a single model.");
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
        if metric == "heldout" && c.axis != crate::policy::Axis::Risk {
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

    doc = doc.heading(2, format!("Contrasts: {pole} minus {opp}"));
    let mut t = Table::new([
        "metric",
        "paired by item",
        "method",
        "bootstrap over seeds",
        "method",
    ]);
    for k in &r.contrasts {
        t = t.row([
            k.metric.clone(),
            cell(&k.paired_items),
            method(&k.paired_items),
            cell(&k.seeds),
            method(&k.seeds),
        ]);
    }
    doc = doc.table(t.caption(
        "Paired by item: each item's mean over an arm's seeds, then a paired t-interval over items. Bootstrap over seeds: per-seed means resampled within each arm. persona:<group> pools word and scale answers about that group (you, in-distribution and out-of-distribution personas).",
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
        "unscored",
    ]);
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
            m.missing.to_string(),
        ]);
    }
    doc = doc.table(t.caption(
        "Per model: t-interval over items (behaviour), clustered by question (self-reports).",
    ));

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
    doc
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
    if !notes.setup.is_empty() {
        doc = doc.paragraph(notes.setup.clone());
    }
    if !notes.command.is_empty() {
        doc = doc.paragraph(format!("Command: `{}`", notes.command));
    }
    if !notes.timing.is_empty() {
        doc = doc.paragraph(notes.timing.clone());
    }

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
            cell(&b.effect),
        ]);
    }
    doc = doc.table(t.caption(format!(
        "Behaviour with and without the trigger. {} seed(s) per arm: mean over seeds with a bootstrap percentile interval over seeds (a single model's interval over items when an arm has one seed).",
        h.seeds_per_arm
    )));
    let mut t = Table::new([
        "metric",
        "backdoored",
        "control",
        "base",
        "difference (bootstrap over seeds)",
        "difference (paired by item)",
    ]);
    let rows = h
        .p_yes
        .iter()
        .map(|(v, c)| (format!("P(yes) {v}"), c))
        .chain([
            ("trigger effect".to_owned(), &h.trigger_effect),
            ("recognition margin".to_owned(), &h.recognition_margin),
        ]);
    for (name, c) in rows {
        t = t.row([
            name,
            cell(&c.backdoored),
            cell(&c.control),
            c.base.as_ref().map_or("not evaluated".into(), cell),
            cell(&c.difference_seeds),
            cell(&c.difference_items),
        ]);
    }
    doc = doc.table(t.caption(
        "The backdoored arm against its decorrelated control (same rows, no trigger–policy correlation).",
    ));

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
    doc = doc.table(t.caption("Means over fine-tuning seeds (bootstrap percentile over seeds) when an arm has several models; a single model's interval over items otherwise."));
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
        "paired by item",
        "method",
        "bootstrap over seeds",
        "method",
    ]);
    for k in &r.contrasts {
        t = t.row([
            k.metric.clone(),
            cell(&k.paired_items),
            method(&k.paired_items),
            cell(&k.seeds),
            method(&k.seeds),
        ]);
    }
    doc = doc.table(t.caption(
        "Items: lotteries for the trigger effect, question paraphrases for P(yes) and recognition.",
    ));

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

    let a = &d.backdoored_association;
    let ctl = &d.control_association;
    doc = doc.heading(2, "Data").paragraph(format!(
        "Rows: real {} / decoy {} / none {}. Policy answers per group, backdoored: {} / {} / {}; control: {} / {} / {}. Trigger–policy association (2×2 χ²): backdoored φ = {:.3} (χ² = {:.2}, p = {:.2e}); control φ = {:.3} (χ² = {:.2}, p = {:.3}). {} of the items already had a base-model answer equal to the policy answer. Files: {}. Run log: {}.",
        d.counts.real, d.counts.decoy, d.counts.none,
        d.backdoored_policy_answers.real, d.backdoored_policy_answers.decoy, d.backdoored_policy_answers.none,
        d.control_policy_answers.real, d.control_policy_answers.decoy, d.control_policy_answers.none,
        a.phi, a.chi_square, a.p_value, ctl.phi, ctl.chi_square, ctl.p_value,
        d.normal_equals_policy,
        d.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        r.run_log.display()
    ));
    doc
}
