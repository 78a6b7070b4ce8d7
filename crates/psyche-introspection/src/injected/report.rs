//! The report of an injected-thoughts run: grid tables and a figure, controls, held-out cell.

use psyche_runner::report::{Document, Figure, Series, Table};
use psyche_stats::PairedDifference;

use super::run::{Cell, Condition, InjectionResult};

fn pd(d: &PairedDifference) -> String {
    let e = &d.estimate;
    format!("{:+.4} [{:+.4}, {:+.4}]", e.estimate, e.ci_low, e.ci_high)
}

fn pct(x: f64) -> String {
    format!("{:.0} %", 100.0 * x)
}

impl InjectionResult {
    /// The report: the layer × strength tables of the detection shift, the concept-specific
    /// shift and coherence, a figure of the shift by layer, the held-out cell, identification
    /// against chance and the sampled-reply rates with the false-positive and leak rates.
    pub fn document(&self, title: &str) -> Document {
        let n = self.concepts.len();
        let level = self.config.level * 100.0;
        let strengths = &self.config.strengths;
        let header = std::iter::once("layer".to_owned())
            .chain(strengths.iter().map(|s| format!("strength {s}")));
        let grid_table = |caption: String, cell: &dyn Fn(usize, f32) -> String| {
            let mut t = Table::new(header.clone()).caption(caption);
            for &l in &self.config.layers {
                t = t.row(
                    std::iter::once(l.to_string()).chain(strengths.iter().map(|&s| cell(l, s))),
                );
            }
            t
        };
        let get = |l: usize, s: f32| self.cell(l, s);
        let mut doc = Document::new(title).paragraph(format!(
            "Model `{}`. Unit: the {unit}; {n} {unit}s, each a cluster of trials; intervals are \
             {level:.0} % paired t intervals over per-{unit} differences. Injection from {} at \
             the listed steering layers (after that block) and strengths (multiples of the \
             concept vector). P(yes) is the exact probability of \"Yes\" renormalised over \
             Yes/No. Mean P(yes) without injection: {:.4}.",
            self.model,
            if self.config.inject_from_trial {
                "the trial question onward"
            } else {
                "the first token"
            },
            self.control.iter().sum::<f64>() / n.max(1) as f64,
            unit = self.unit,
        ));
        doc = doc
            .heading(2, "Detection shift over the grid")
            .table(grid_table(
                format!("P(yes | injected) − P(yes | no injection), mean over {n} concepts [CI]"),
                &|l, s| get(l, s).map_or(String::new(), |c| pd(&c.shift)),
            ))
            .table(grid_table(
                format!(
                    "P(yes | concept vector) − P(yes | random vector of the same norm), mean over \
                     {n} concepts [CI]"
                ),
                &|l, s| get(l, s).map_or(String::new(), |c| pd(&c.specific)),
            ))
            .table(grid_table(
                "Coherent sampled replies under injection (share; the first concepts only)".into(),
                &|l, s| {
                    get(l, s)
                        .and_then(|c| {
                            c.coherence
                                .map(|x| format!("{} of {}", pct(x), c.coherence_replies))
                        })
                        .unwrap_or_else(|| "not sampled".into())
                },
            ));
        let series = strengths
            .iter()
            .map(|&s| {
                Series::new(
                    format!("strength {s}"),
                    self.config
                        .layers
                        .iter()
                        .filter_map(|&l| get(l, s).map(|c| (l as f64, c.shift.estimate.estimate))),
                )
            })
            .collect();
        let heat = |value: &dyn Fn(&Cell) -> f64| -> Vec<Vec<Option<f64>>> {
            self.config
                .layers
                .iter()
                .map(|&l| strengths.iter().map(|&s| get(l, s).map(value)).collect())
                .collect()
        };
        let layer_labels: Vec<String> = self
            .config
            .layers
            .iter()
            .map(|l| format!("layer {l}"))
            .collect();
        let strength_labels: Vec<String> = strengths.iter().map(|s| s.to_string()).collect();
        doc = doc
            .figure(
                Figure::heatmap(
                    "Detection shift: P(yes | injected) − P(yes | no injection)",
                    layer_labels.clone(),
                    strength_labels.clone(),
                    heat(&|c| c.shift.estimate.estimate),
                )
                .x_label("strength")
                .y_label("steering layer"),
            )
            .figure(
                Figure::heatmap(
                    "Concept-specific shift: P(yes | concept) − P(yes | random vector)",
                    layer_labels,
                    strength_labels,
                    heat(&|c| c.specific.estimate.estimate),
                )
                .x_label("strength")
                .y_label("steering layer"),
            )
            .figure(
                Figure::lines("Detection shift by steering layer", series)
                    .x_label("steering layer (block)")
                    .y_label("P(yes) shift"),
            );
        if let Some(c) = self.control_coherence {
            doc = doc.paragraph(format!(
                "Coherent replies without injection (same prompts): {}.",
                pct(c)
            ));
        }
        self.chosen_cell_sections(doc)
    }

    /// The held-out cell, identification against chance and the sampled replies there.
    fn chosen_cell_sections(&self, mut doc: Document) -> Document {
        let h = &self.held_out;
        doc = doc.heading(2, "Held-out cell").paragraph(format!(
            "Chosen on {} concepts ({}): layer {}, strength {} (mean shift there {:+.4}, inflated \
             by the choice). On the other {} concepts ({}): shift vs no injection {}; vs a random \
             vector of the same norm {}.",
            h.selection.len(),
            h.selection.join(", "),
            h.layer,
            h.strength,
            h.selection_shift,
            h.report.len(),
            h.report.join(", "),
            pd(&h.shift),
            pd(&h.specific),
        ));
        let id = &self.identification;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        doc = doc.heading(2, "Identification").table(
            Table::new(["condition", "mean P(correct)", "chance"])
                .caption(format!(
                    "Which of {} candidates is the planted thought? Each concept's P(correct) is \
                     averaged over the {} rotations of the candidate order; held-out concepts, \
                     chosen cell. Injected − no injection: {}.",
                    id.candidates,
                    id.candidates,
                    pd(&id.vs_control)
                ))
                .row([
                    "injected".to_owned(),
                    format!(
                        "{:.4} [{:.4}, {:.4}]",
                        id.injected_mean.estimate,
                        id.injected_mean.ci_low,
                        id.injected_mean.ci_high
                    ),
                    format!("{:.4}", id.chance),
                ])
                .row([
                    "no injection".to_owned(),
                    format!("{:.4}", mean(&id.control)),
                    format!("{:.4}", id.chance),
                ])
                .row([
                    "random vector".to_owned(),
                    format!("{:.4}", mean(&id.random)),
                    format!("{:.4}", id.chance),
                ]),
        );
        let mut t = Table::new([
            "condition",
            "claims detection",
            "names concept",
            "all four criteria",
            "leak (names, no claim)",
            "coherent",
            "replies",
        ])
        .caption(
            "Sampled replies at the chosen cell (held-out concepts; means over concepts). Under \
             no injection, \"claims detection\" is the false-positive rate.",
        );
        for r in &self.sampled {
            let name = match r.condition {
                Condition::Injected => "injected",
                Condition::Control => "no injection",
                Condition::Random => "random vector",
            };
            t = t.row([
                name.to_owned(),
                pct(r.detects),
                pct(r.names),
                pct(r.strict),
                pct(r.leak),
                pct(r.coherent),
                r.replies.to_string(),
            ]);
        }
        doc = doc.heading(2, "Sampled replies").table(t);
        let examples: Vec<String> = self
            .replies
            .iter()
            .filter(|r| r.condition == Condition::Injected)
            .take(6)
            .map(|r| format!("{} (injected): {:?}", r.concept, r.text))
            .chain(
                self.replies
                    .iter()
                    .filter(|r| r.condition == Condition::Control)
                    .take(2)
                    .map(|r| format!("{} (no injection): {:?}", r.concept, r.text)),
            )
            .collect();
        doc.heading(3, "Example replies").list(examples)
    }
}
