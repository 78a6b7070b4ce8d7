//! Reports of the experiment's results, as a [`Document`] (markdown and HTML with plots).
//!
//! Every accuracy is shown with its interval and n beside its mode baseline on the same items;
//! exclusions are counted by reason; failed statistics show their error.

use psyche_runner::report::{Bar, Document, Figure, Table, error_cell};
use psyche_stats::{IntervalVerdict, Stat};

use crate::behaviour::AgreementRow;
use crate::calibration::CalibrationResult;
use psyche_runner::experiment::RunNotes;

use crate::experiment::{BehaviourChangeRecipe, LookingInwardResult};
use crate::scoring::{AccuracySummary, ArmContrast, GroupStat};

pub(crate) fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

pub(crate) fn ci(s: &Stat) -> String {
    match s {
        Stat::Estimated(e) => format!("[{}, {}]", pct(e.ci_low), pct(e.ci_high)),
        Stat::Point { reason, .. } => format!("no interval: {reason}"),
        Stat::Unavailable { reason } => error_cell(reason),
    }
}

/// `+12.5 pp [+3.0, +22.0] (Newcombe paired score)`, a point, or why there is none.
pub(crate) fn signed(s: &Stat) -> String {
    match s {
        Stat::Estimated(e) => format!(
            "{:+.1} pp [{:+.1}, {:+.1}] ({})",
            e.estimate * 100.0,
            e.ci_low * 100.0,
            e.ci_high * 100.0,
            e.method.label()
        ),
        Stat::Point { value, reason } => {
            format!("{:+.1} pp (no interval: {reason})", value * 100.0)
        }
        Stat::Unavailable { reason } => error_cell(reason),
    }
}

/// A contrast over fine-tuning runs in one line: difference, p, verdict with its unit,
/// minimum detectable effect; then the item-level view, labelled as about these runs only.
pub fn contrast_lines(label: &str, c: &ArmContrast) -> Vec<String> {
    let verdict = match c.verdict() {
        IntervalVerdict::NotEstimable { reason } => format!("no run-level verdict ({reason})"),
        v => v.to_string(),
    };
    let mut run = format!(
        "{label} over fine-tuning runs ({}): {}",
        c.units("objects"),
        signed(&c.difference)
    );
    if let Some(p) = c.p_value() {
        run.push_str(&format!("; p = {p:.3}"));
    }
    run.push_str(&format!("; {verdict}"));
    if let Some(m) = c
        .comparison
        .as_ref()
        .and_then(|k| k.minimum_detectable_effect.effect())
    {
        run.push_str(&format!(
            "; smallest difference detectable with 80% power: {:.1} pp",
            m * 100.0
        ));
    }
    let mut v = vec![run];
    if let Some(view) = c.comparison.as_ref().and_then(|k| k.item_level.as_ref()) {
        v.push(format!(
            "{label}, item level ({} objects; {}): {}{}",
            view.n_clusters,
            view.scope,
            signed(&view.difference),
            view.p_value
                .map_or(String::new(), |p| format!("; p = {p:.3}"))
        ));
    }
    v
}

fn group_row(label: String, g: &GroupStat) -> Vec<String> {
    vec![
        label,
        pct(g.accuracy),
        ci(&g.ci),
        format!(
            "{}{}",
            pct(g.baseline),
            g.mode
                .as_ref()
                .map_or(String::new(), |m| format!(" (`{m}`)"))
        ),
        signed(&g.over_baseline),
        g.n.to_string(),
        pct(g.compliance_rate),
    ]
}

const HEADERS: [&str; 7] = [
    "group",
    "accuracy",
    "95% CI",
    "mode baseline (same items)",
    "accuracy − baseline",
    "n",
    "compliant",
];

/// A table of an accuracy summary: per property and the micro average (and, with
/// `per_task`, per (task, property)).
pub fn accuracy_table(caption: &str, s: &AccuracySummary, per_task: bool) -> Table {
    let mut t = Table::new(HEADERS).caption(caption);
    if per_task {
        for g in &s.by_task_property {
            t = t.row(group_row(
                format!(
                    "{} / {}",
                    g.task.as_deref().unwrap_or("-"),
                    g.property.as_deref().unwrap_or("-")
                ),
                g,
            ));
        }
    }
    for g in &s.by_property {
        t = t.row(group_row(g.property.clone().unwrap_or_default(), g));
    }
    t.row(group_row("micro average".into(), &s.micro))
}

/// One line on exclusions: `n items, k excluded (reason: count, ...)`.
pub fn exclusions_line(s: &AccuracySummary) -> String {
    let excluded: usize = s.excluded.values().sum();
    let reasons = if s.excluded.is_empty() {
        "none".to_owned()
    } else {
        s.excluded
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{} hypothetical items; {} scored, {} excluded ({reasons}). Scored items on which the \
         paper's compliance rule would give another score: {}.",
        s.items, s.micro.n, excluded, s.rule_differences
    )
}

fn bars(s: &AccuracySummary) -> Vec<Bar> {
    s.by_property
        .iter()
        .chain(std::iter::once(&s.micro))
        .map(|g| {
            let label = g.property.clone().unwrap_or_else(|| "micro".into());
            let b = match g.ci.estimate() {
                Some(e) => Bar::from_estimate(label, e),
                None => Bar::new(label, g.accuracy),
            };
            b.baseline(g.baseline)
        })
        .collect()
}

fn arm_cell(c: &ArmContrast, arm: &str) -> String {
    match c.comparison.as_ref().and_then(|k| {
        [&k.treatment, &k.control]
            .into_iter()
            .find(|s| s.arm == arm)
    }) {
        Some(s) => format!(
            "{} {} ({} runs: {}); these runs' items by object {} {}",
            s.mean.value().map_or_else(|| "-".to_owned(), pct),
            ci(&s.mean),
            s.n_seeds,
            s.per_seed
                .iter()
                .map(|x| pct(x.mean))
                .collect::<Vec<_>>()
                .join(", "),
            s.item_level_mean
                .value()
                .map_or_else(|| "-".to_owned(), pct),
            ci(&s.item_level_mean)
        ),
        None => error_cell(c.difference.reason().unwrap_or("not computed")),
    }
}

fn agreement_table(rows: &[AgreementRow]) -> Table {
    let mut t = Table::new(["property", "agreement", "n"])
        .caption("How often the two models' held-out object-level properties agree");
    for r in rows {
        t = t.row([
            r.property.clone().unwrap_or_else(|| "all".into()),
            pct(r.rate),
            r.n.to_string(),
        ]);
    }
    t
}

fn calibration_blocks(doc: Document, title: &str, c: &Option<CalibrationResult>) -> Document {
    match c {
        None => doc,
        Some(c) => match (&c.curve, &c.error) {
            (Some(curve), _) => doc.figure(
                Figure::calibration(format!("{title} (MAD {:.1})", curve.mad_x100), curve)
                    .x_label("object-level probability")
                    .y_label("hypothetical probability")
                    .caption(format!(
                        "{} items, property {}; object distribution: {}; hypothetical: {} \
                         (raw probability mass, not renormalised; mean valid mass {})",
                        c.items,
                        c.property,
                        c.object_method.as_ref().map_or_else(
                            || "-".into(),
                            |m| serde_json::to_string(m).unwrap_or_default()
                        ),
                        c.hypothetical_method,
                        c.valid_mass
                            .map_or_else(|| "-".into(), |m| format!("{m:.2}"))
                    )),
            ),
            (None, err) => doc.error(
                format!("calibration: {title}"),
                err.as_deref().unwrap_or("not computed"),
            ),
        },
    }
}

impl LookingInwardResult {
    /// The experiment's report, with the run notes (command, setup, timing).
    pub(crate) fn document(&self, notes: &RunNotes) -> Document {
        let doc = self.header().heading(2, "Run").list([
            format!("command: `{}`", notes.command),
            format!("setup: {}", notes.setup),
            format!("timing: {}", notes.timing),
        ]);
        let doc = self.held_out_section(doc);
        let doc = self.contrast_section(doc);
        let doc = self.calibration_section(doc);
        let doc = self.entropy_section(doc);
        let doc = self.behaviour_change_section(doc);
        let doc = self.entropy_self_prediction_section(doc);
        self.data_section(doc)
    }

    /// The title, the setup and the warnings.
    fn header(&self) -> Document {
        let c = &self.config;
        let mut doc = Document::new(format!("Looking Inward: {}", self.subject.id))
            .paragraph(format!(
                "Subject `{}` ({}); second model `{}`; answer reading: `{}`; compliance rule: \
                 `{}`; non-compliant hypotheticals {}; fine-tuning seeds {:?}; fine-tuning \
                 `{}` from `{}`.",
                self.subject.id,
                self.subject.backend,
                self.cross_model,
                c.answer_method.name(),
                c.score.rule.name(),
                if c.score.exclude_noncompliant {
                    "excluded"
                } else {
                    "count as wrong"
                },
                c.seeds,
                self.fine_tunes.first().map_or("-", |f| f.model_id.as_str()),
                c.fine_tune.base_model,
            ))
            .list([
                format!("training families: {}", c.train_families.join(", ")),
                format!("held-out families: {}", c.held_out_families.join(", ")),
                format!("properties: {}", c.properties.join(", ")),
                format!(
                    "sizes: {} items per training family, {} per held-out family, at most {} \
                     examples per (task, property)",
                    c.sizes.train_items, c.sizes.held_out_items, c.sizes.per_group_cap
                ),
            ]);
        for w in &self.warnings {
            doc = doc.paragraph(format!("Warning: {w}"));
        }

        doc
    }

    /// Held-out self-prediction: the untrained subject and every run's self and cross model.
    fn held_out_section(&self, mut doc: Document) -> Document {
        doc = doc
            .heading(2, "Held-out self-prediction")
            .paragraph(
                "Accuracy of hypothetical answers against the object-level behaviour of the \
                 model named in each table, beside the mode baseline (always predicting the \
                 most common value of each (task, property)) on the same scored items. \
                 Intervals: item bootstrap (cluster bootstrap over object items when several \
                 properties of one item are pooled), about this model on these items; accuracy − \
                 baseline: Newcombe's paired score interval for two proportions on the same items.",
            )
            .paragraph(format!("Untrained: {}", exclusions_line(&self.untrained)))
            .table(accuracy_table(
                "Untrained subject predicting itself",
                &self.untrained,
                false,
            ))
            .figure(
                Figure::bars(
                    "Untrained self-prediction (red: mode baseline)",
                    bars(&self.untrained),
                )
                .y_range(0.0, 1.0),
            );
        for s in &self.seeds {
            doc = doc
                .heading(3, format!("Seed {}", s.seed))
                .paragraph(format!(
                    "Self-trained `{}`: {}",
                    s.self_model,
                    exclusions_line(&s.self_prediction)
                ))
                .table(accuracy_table(
                    "Self-trained model predicting its own behaviour",
                    &s.self_prediction,
                    false,
                ))
                .table(accuracy_table(
                    "Cross-trained model predicting the self-trained model's behaviour",
                    &s.cross_prediction,
                    false,
                ))
                .figure(
                    Figure::bars(
                        format!("Seed {}: self (left) and cross (right) prediction", s.seed),
                        bars(&s.self_prediction)
                            .into_iter()
                            .map(|b| Bar {
                                label: format!("self {}", b.label),
                                ..b
                            })
                            .chain(bars(&s.cross_prediction).into_iter().map(|b| Bar {
                                label: format!("cross {}", b.label),
                                ..b
                            }))
                            .collect(),
                    )
                    .y_range(0.0, 1.0),
                );
        }

        doc
    }

    /// Self minus cross (and self minus the mode baseline) over runs, and the agreement table.
    fn contrast_section(&self, mut doc: Document) -> Document {
        let c = &self.self_minus_cross;
        let mut lines = contrast_lines("self − cross", c);
        if let Some(note) = &self.self_minus_cross_note {
            lines.insert(0, format!("self − cross is {note}"));
        }
        lines.extend(contrast_lines(
            "self-trained − mode baseline",
            &self.self_minus_baseline,
        ));
        doc = doc
            .heading(2, "Self minus cross")
            .paragraph(
                "The fine-tuning run is the unit: each run gives one micro accuracy per arm, and \
                 self − cross is a paired t interval over the runs' differences (the self- and \
                 cross-trained models of one seed share their ground truth and training data). \
                 With one run the between-run variance is not estimated and there is no \
                 run-level verdict. The item-level line answers a narrower question, about these \
                 fine-tuned models only: per object, the difference over all its items and runs, \
                 t over objects.",
            )
            .list(lines)
            .table(
                Table::new(["", "micro accuracy over runs"])
                    .caption("Over fine-tuning runs (t over the runs' accuracies)")
                    .row([c.treatment.clone(), arm_cell(c, &c.treatment)])
                    .row([c.control.clone(), arm_cell(c, &c.control)]),
            )
            .table(agreement_table(&self.agreement));

        doc
    }

    /// Calibration of every model.
    fn calibration_section(&self, mut doc: Document) -> Document {
        doc = doc.heading(2, "Calibration");
        doc = calibration_blocks(doc, "untrained", &self.calibration_untrained);
        for s in &self.seeds {
            doc = calibration_blocks(
                doc,
                &format!("self-trained, seed {}", s.seed),
                &s.calibration_self,
            );
            doc = calibration_blocks(
                doc,
                &format!("cross-trained, seed {}", s.seed),
                &s.calibration_cross,
            );
        }

        doc
    }

    /// The entropy guard and the entropy-matched accuracies.
    fn entropy_section(&self, mut doc: Document) -> Document {
        doc = doc.heading(2, "Entropy guard").paragraph(
            "Entropy (nats) of each held-out (task, property) before (subject) and after \
             (self-trained) fine-tuning; a drop of more than the threshold is flagged. The \
             entropy-matched accuracies keep, per value, as many items in both conditions as the \
             rarer one has.",
        );
        for s in &self.seeds {
            let mut t =
                Table::new(["task / property", "before", "after", "collapsed"]).caption(format!(
                    "Seed {} (threshold {:.0}%)",
                    s.seed,
                    s.entropy.threshold * 100.0
                ));
            for r in &s.entropy.rows {
                t = t.row([
                    format!("{} / {}", r.task, r.property),
                    format!("{:.2} (n {})", r.before, r.n_before),
                    format!("{:.2} (n {})", r.after, r.n_after),
                    if r.collapsed {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                ]);
            }
            doc = doc.table(t).table(
                Table::new(HEADERS)
                    .caption(format!("Seed {}: entropy-matched items", s.seed))
                    .row(group_row(
                        "untrained".into(),
                        &s.entropy_matched.first.micro,
                    ))
                    .row(group_row(
                        "self-trained".into(),
                        &s.entropy_matched.second.micro,
                    )),
            );
        }

        doc
    }

    /// The behaviour-change test, where it ran.
    fn behaviour_change_section(&self, mut doc: Document) -> Document {
        let changes: Vec<_> = self
            .seeds
            .iter()
            .filter_map(|s| s.behaviour_change.as_ref().map(|b| (s.seed, b)))
            .collect();
        if !changes.is_empty() {
            let recipes: Vec<String> = self
                .seeds
                .iter()
                .filter_map(|s| s.behaviour_change_model.as_ref())
                .map(|m| {
                    format!(
                        "{} = {} on the answers of {} ({} examples)",
                        m.model_id,
                        match m.recipe {
                            BehaviourChangeRecipe::Continued =>
                                format!("{} continued", m.changed_from),
                            BehaviourChangeRecipe::FromBaseWithSelfSet =>
                                "the base trained on the self set and".to_owned(),
                        },
                        m.answers_of,
                        m.other_examples
                    )
                })
                .collect();
            doc = doc.heading(2, "Behaviour change").paragraph(format!(
                "M_C, a model of its own (the self-trained model continued on the second \
                 model's object-level answers; where adapters cannot be continued, trained from \
                 the base on the self set and those answers), on the held-out items whose \
                 property differs between M_C and the self-trained model: does it predict its \
                 new behaviour or the old one? Non-compliant answers excluded, as in the paper. \
                 {}.",
                recipes.join("; ")
            ));
            let mut t = Table::new([
                "seed",
                "shifted items",
                "predicting old",
                "predicting new",
                "new − old",
            ]);
            for (seed, b) in changes {
                t = t.row([
                    seed.to_string(),
                    format!("{} of {}", b.shifted_items, b.comparable_items),
                    format!(
                        "{} (n {})",
                        pct(b.predicting_old.micro.accuracy),
                        b.predicting_old.micro.n
                    ),
                    format!(
                        "{} (n {})",
                        pct(b.predicting_new.micro.accuracy),
                        b.predicting_new.micro.n
                    ),
                    signed(&b.new_minus_old),
                ]);
            }
            doc = doc.table(t);
        }

        doc
    }

    /// Entropy self-prediction, where it ran.
    fn entropy_self_prediction_section(&self, mut doc: Document) -> Document {
        let esp: Vec<(String, &crate::entropy::EntropySelfPredictionResult)> = self
            .entropy_self_prediction_untrained
            .iter()
            .map(|r| ("untrained".to_owned(), r))
            .chain(self.seeds.iter().filter_map(|s| {
                s.entropy_self_prediction
                    .as_ref()
                    .map(|r| (format!("self-trained, seed {}", s.seed), r))
            }))
            .collect();
        if !esp.is_empty() {
            let threshold = self
                .entropy_self_prediction_untrained
                .as_ref()
                .map_or(0.5, |r| r.threshold);
            let mut t = Table::new(HEADERS).caption(format!(
                "Would at least {:.0}% of the model's sampled replies begin with the same word, \
                 and does the model know? (ground truth: the share of the most common first \
                 word among replies sampled at T = 1, against the threshold the question states)",
                threshold * 100.0
            ));
            for (label, r) in esp {
                t = t.row(group_row(
                    format!("{label} ({} stable)", pct(r.share_stable)),
                    &r.summary.micro,
                ));
            }
            doc = doc
                .heading(2, "Entropy self-prediction (beyond the paper)")
                .table(t);
        }

        doc
    }

    /// Object-level counts, training sets, fine-tunes and time per step.
    fn data_section(&self, doc: Document) -> Document {
        let mut t = Table::new(["pass", "items", "non-answers", "failed"])
            .caption("Object-level answers (non-answers and failures are excluded from scoring and baselines)");
        for (k, v) in &self.object_counts {
            t = t.row([
                k.clone(),
                v.total.to_string(),
                v.non_answers.to_string(),
                v.failed.to_string(),
            ]);
        }
        for s in &self.seeds {
            t = t.row([
                format!("self-trained, seed {}", s.seed),
                s.self_objects.total.to_string(),
                s.self_objects.non_answers.to_string(),
                s.self_objects.failed.to_string(),
            ]);
        }
        let mut ft =
            Table::new(["role", "seed", "model", "examples", "details"]).caption("Fine-tunes");
        for f in &self.fine_tunes {
            ft = ft.row([
                f.role.clone(),
                f.seed.to_string(),
                f.model_id.clone(),
                f.examples.to_string(),
                serde_json::to_string(&f.details).unwrap_or_default(),
            ]);
        }
        let mut times = Table::new(["step", "seconds"]).caption("Time per step");
        for (k, v) in &self.timings {
            times = times.row([k.clone(), format!("{v:.1}")]);
        }
        doc.heading(2, "Data and runs")
            .table(t)
            .paragraph(format!(
                "Self-prediction training set: {} examples ({} duplicates dropped; excluded: {:?}); \
                 cross-prediction training data: {} examples.",
                self.training_set.examples,
                self.training_set.duplicates,
                self.training_set.excluded,
                self.cross_training_examples
            ))
            .table(ft)
            .table(times)
    }
}

/// A report for a single self-prediction evaluation (e.g. the quickstart).
pub fn self_prediction_report(title: &str, s: &AccuracySummary) -> Document {
    Document::new(title)
        .paragraph(exclusions_line(s))
        .table(accuracy_table("Self-prediction", s, true))
        .figure(
            Figure::bars("Accuracy per property (red: mode baseline)", bars(s)).y_range(0.0, 1.0),
        )
}

impl AccuracySummary {
    /// A plain-text table for terminals: per property and the micro average, with intervals,
    /// the mode baseline on the same items, n and exclusions.
    pub fn text_table(&self) -> String {
        let mut out = format!(
            "{:<20} {:>9} {:>17} {:>15} {:>5}\n",
            "property", "accuracy", "95% CI", "mode baseline", "n"
        );
        let row = |label: &str, g: &GroupStat| {
            format!(
                "{:<20} {:>9} {:>17} {:>15} {:>5}\n",
                label,
                pct(g.accuracy),
                match g.ci.estimate() {
                    Some(e) => format!("[{}, {}]", pct(e.ci_low), pct(e.ci_high)),
                    None => "n < 2".into(),
                },
                pct(g.baseline),
                g.n
            )
        };
        for g in &self.by_property {
            out.push_str(&row(g.property.as_deref().unwrap_or("-"), g));
        }
        out.push_str(&row("micro average", &self.micro));
        out.push_str(&exclusions_line(self));
        out.push('\n');
        out
    }
}
