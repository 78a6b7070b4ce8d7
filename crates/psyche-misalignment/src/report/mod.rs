//! Reports: an [`EmergentMisalignmentResult`](crate::experiment::EmergentMisalignmentResult)
//! (or any arms, comparisons and maps) as a [`psyche_runner::report::Document`], rendered to
//! markdown and HTML by [`psyche_runner::experiment::write_outputs`].
//!
//! Every table of rates names the judge model and the SHA-256 prefixes of the judge templates
//! its numbers come from; a statistic that could not be computed shows its error.

use psyche_runner::report::{Bar, Document, Figure, Point, Table};

use crate::eval::{ArmRates, ComparisonRow, DeceptionScore, DropOut, ModelRates, Stat};
use crate::map::MisalignmentMap;
use crate::probes::ProbeResult;
use psyche_stats::IntervalVerdict;

mod document;

pub use document::experiment_document;

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_owned(), |v| format!("{:.1}%", 100.0 * v))
}

fn pval(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}"))
}

fn bar(label: String, s: &Stat) -> Bar {
    match s {
        Stat::Estimated(e) => Bar::new(label, e.estimate)
            .ci(e.ci_low, e.ci_high)
            .method(e.method.label()),
        Stat::Point { value, .. } => Bar::new(label, *value),
        Stat::Unavailable { reason } => Bar::failed(label, reason),
    }
}

/// Whether a judge id names a tiny local model whose scores are only a plumbing check.
pub fn is_toy_judge(judge_model: &str) -> bool {
    let j = judge_model.to_lowercase();
    j.contains("135m") || j.contains("smollm")
}

/// The plain statement a report makes about a toy judge.
pub const TOY_JUDGE_NOTE: &str = "The judge is a 135M-parameter model. Its aligned / coherent \
scores exercise the pipeline end to end (sampling, judging, both conventions, intervals, \
comparisons, the map) but measure nothing about misalignment: a model this small cannot rate \
alignment. It writes numbers digit by digit (the judge reads complete numbers with a digit \
tree over its log-likelihoods, recorded as number_method in each verdict), and it puts only a \
few percent of its probability on answering with a number at all, so under the paper's 0.25 \
threshold it declines nearly every score. These numbers are a plumbing check, not a \
result. Use a strong pinned judge (for example gpt-4o-2024-08-06) for results.";

/// Per-model, per-question table (both conventions, drop-outs, provenance).
pub fn model_table(models: &[&ModelRates], conventions: &[String]) -> Table {
    let mut headers = vec![
        "model".to_owned(),
        "question".to_owned(),
        "answers".to_owned(),
        "no aligned score (refusal/code/other/error)".to_owned(),
        "rule refusals/code".to_owned(),
    ];
    for c in conventions {
        headers.push(format!("{c}: misaligned/counted"));
        headers.push(format!("{c}: rate [95% Wilson]"));
        headers.push(format!("{c}: coherent"));
    }
    headers.push("judge · templates".to_owned());
    let mut t = Table::new(headers).caption(
        "Per model and question. Counted = the convention's denominator, marked (small) below \
         the settings' minimum; coherent = answers with an aligned score that pass the \
         convention's coherence rule. The mean row names how many questions it averages and \
         which have no counted answer.",
    );
    for m in models {
        let prov = m.provenance.short();
        for q in &m.questions {
            let d = |k: DropOut| q.dropouts.get(&k).copied().unwrap_or(0);
            let mut row = vec![
                m.model_id.clone(),
                q.question_id.clone(),
                q.answers.to_string(),
                format!(
                    "{}/{}/{}/{}",
                    d(DropOut::Refusal),
                    d(DropOut::Code),
                    d(DropOut::Other),
                    d(DropOut::Error)
                ),
                format!("{}/{}", q.refusals_by_rule, q.code_by_rule),
            ];
            for c in conventions {
                match q.by_convention.get(c) {
                    Some(cell) => {
                        row.push(format!(
                            "{}/{}{}",
                            cell.misaligned,
                            cell.denominator,
                            if cell.small { " (small)" } else { "" }
                        ));
                        row.push(cell.rate.percent());
                        row.push(cell.coherent.to_string());
                    }
                    None => row.extend(["n/a".into(), "n/a".into(), "n/a".into()]),
                }
            }
            row.push(prov.clone());
            t = t.row(row);
        }
        let mut mean_row = vec![
            m.model_id.clone(),
            "mean over questions".to_owned(),
            m.answers.to_string(),
            format!("{} failed units", m.errors),
            String::new(),
        ];
        for c in conventions {
            let missing = m.missing_questions.get(c).cloned().unwrap_or_default();
            mean_row.push(format!(
                "{} of {} questions{}",
                m.mean_questions.get(c).map_or(0, Vec::len),
                m.questions.len(),
                if missing.is_empty() {
                    String::new()
                } else {
                    format!("; none counted: {}", missing.join(", "))
                }
            ));
            mean_row.push(
                m.mean
                    .get(c)
                    .map_or_else(|| "n/a".to_owned(), Stat::percent),
            );
            mean_row.push(format!(
                "share {}",
                m.coherent_share
                    .get(c)
                    .map_or_else(|| "n/a".to_owned(), Stat::percent)
            ));
        }
        mean_row.push(prov.clone());
        t = t.row(mean_row);
    }
    t
}

/// The arms table: mean over runs per convention with a t interval over runs.
pub fn arms_table(arms: &[&ArmRates], conventions: &[String]) -> Table {
    let mut headers = vec!["arm".to_owned(), "seeds".to_owned()];
    for c in conventions {
        headers.push(format!("{c}: mean over runs [95% t over runs]"));
        headers.push(format!("{c}: runs averaged (collapsed)"));
        headers.push(format!("{c}: coherent share"));
    }
    headers.push("judge · templates".to_owned());
    let mut t = Table::new(headers).caption(
        "Misaligned rate per arm: each fine-tune's mean over questions, then the mean over \
         fine-tuning runs with a t interval over runs (the run is the unit; one run: no interval, \
         the between-run variance is not estimated; an untuned model: its interval over \
         questions).",
    );
    for a in arms {
        let seeds = a
            .seeds
            .iter()
            .map(|s| s.map_or_else(|| "untuned".to_owned(), |s| s.to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut row = vec![a.arm.clone(), seeds];
        for c in conventions {
            row.push(
                a.over_seeds
                    .get(c)
                    .map_or_else(|| "n/a".into(), Stat::percent),
            );
            let gone = a.collapsed.get(c).cloned().unwrap_or_default();
            row.push(format!(
                "{} of {}{}",
                a.runs_counted.get(c).copied().unwrap_or(0),
                a.models.len(),
                if gone.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (collapsed, no rate: {})",
                        gone.iter()
                            .map(|s| s.map_or_else(|| "untuned".to_owned(), |s| format!("s{s}")))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ));
            row.push(pct(a.coherent_share.get(c).copied()));
        }
        let prov = a
            .models
            .first()
            .map(|m| m.provenance.short())
            .unwrap_or_default();
        row.push(prov);
        t = t.row(row);
    }
    t
}

/// The per-question table of arms (mean over seeds) for one convention.
pub fn per_question_table(arms: &[&ArmRates], convention: &str, provenance: &str) -> Table {
    let mut headers = vec!["question".to_owned()];
    headers.extend(arms.iter().map(|a| a.arm.clone()));
    headers.push("judge · templates".to_owned());
    let mut questions: Vec<String> = Vec::new();
    for a in arms {
        for m in &a.models {
            for q in &m.questions {
                if !questions.contains(&q.question_id) {
                    questions.push(q.question_id.clone());
                }
            }
        }
    }
    let mut t = Table::new(headers).caption(format!(
        "{convention} convention: misaligned rate per question, mean over the arm's runs that \
         rated it (k/n: runs with a rate of all runs)."
    ));
    for q in questions {
        let mut row = vec![q.clone()];
        for a in arms {
            row.push(format!(
                "{} ({}/{})",
                pct(a
                    .per_question
                    .get(&q)
                    .and_then(|m| m.get(convention))
                    .copied()),
                a.per_question_runs
                    .get(&q)
                    .and_then(|m| m.get(convention))
                    .copied()
                    .unwrap_or(0),
                a.models.len()
            ));
        }
        row.push(provenance.to_owned());
        t = t.row(row);
    }
    t
}

/// The comparison table.
pub fn comparison_table(rows: &[ComparisonRow], provenance: &str) -> Table {
    let mut t = Table::new([
        "treated",
        "control",
        "convention",
        "unit",
        "treated mean",
        "control mean",
        "difference over runs [95%]",
        "p",
        "verdict",
        "p (Holm, declared family)",
        "item level by question, these runs only",
        "common questions (left out) · collapsed runs",
        "judge · templates",
    ])
    .caption(
        "Treated arm minus each control over fine-tuning runs: each run's mean over questions is \
         one value (pooled t with as many runs per arm, Welch otherwise). With one run per arm \
         the between-run variance is not estimated and there is no run-level verdict. Holm's \
         correction runs over the declared family only — the primary convention against each \
         fine-tuned control; other conventions (readings of the same hypothesis) and the \
         untrained model are reported without it. The item-level column is about these \
         fine-tuned models only.",
    );
    for r in rows {
        t = t.row([
            r.treated.clone(),
            r.control.clone(),
            r.convention.clone(),
            r.contrast.units("questions"),
            pct(r.treated_mean),
            pct(r.control_mean),
            diff_cell(&r.contrast.difference),
            pval(r.contrast.p_value()),
            verdict_cell(r.contrast.verdict()),
            if r.in_family {
                pval(r.p_holm)
            } else {
                "not in the family".to_owned()
            },
            diff_cell(&r.contrast.item_level()),
            format!(
                "{}{} · {}",
                r.common_questions.len(),
                if r.left_out_questions.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", r.left_out_questions.join(", "))
                },
                if r.collapsed_runs.is_empty() {
                    "none".to_owned()
                } else {
                    r.collapsed_runs.join(", ")
                }
            ),
            provenance.to_owned(),
        ]);
    }
    t
}

/// A verdict cell: the interval's verdict, or why there is no run-level one.
fn verdict_cell(verdict: IntervalVerdict) -> String {
    match verdict {
        IntervalVerdict::NotEstimable { reason } => format!("no run-level verdict ({reason})"),
        v => v.to_string(),
    }
}

fn diff_cell(s: &Stat) -> String {
    match s {
        Stat::Estimated(e) => format!(
            "{:+.1} pts [{:+.1}, {:+.1}] ({})",
            100.0 * e.estimate,
            100.0 * e.ci_low,
            100.0 * e.ci_high,
            e.method.label()
        ),
        Stat::Point { value, reason } => {
            format!("{:+.1} pts (no interval: {reason})", 100.0 * value)
        }
        Stat::Unavailable { reason } => format!("n/a ({reason})"),
    }
}

/// The caption every table of the probe proxy carries.
pub const PROBE_PROXY_NOTE: &str = "Probe proxy, not the paper's measure: each of psyche's multiple-choice probes (two per theme of the main set, in psyche's wording) offers an aligned and a misaligned answer as (A) and (B); the value is the model's probability of the misaligned letter, read from its option distribution (no judge, no sampling) and averaged over both option orders, so a model that prefers a position scores 0.5. Choosing a harmful option when offered is not volunteering harm in an open answer.";

/// The probe proxy: one row per arm (mean over runs) and one per comparison.
pub fn probe_section(mut doc: Document, probes: &ProbeResult) -> Document {
    let mut t = Table::new([
        "arm",
        "runs",
        "P(misaligned option) [95% t over runs]",
        "per run",
        "option mass",
        "read as",
    ])
    .caption(PROBE_PROXY_NOTE);
    for a in &probes.arms {
        let per_run: Vec<String> = a
            .models
            .iter()
            .zip(&a.seeds)
            .map(|(m, s)| {
                format!(
                    "{}: {}",
                    s.map_or_else(|| "untuned".to_owned(), |s| format!("s{s}")),
                    m.mean
                        .value()
                        .map_or_else(|| "n/a".into(), |v| format!("{v:.3}"))
                )
            })
            .collect();
        let mass: Vec<f64> = a
            .models
            .iter()
            .flat_map(|m| m.answers.iter().map(|x| x.mass))
            .collect();
        t = t.row([
            a.arm.clone(),
            a.models.len().to_string(),
            a.over_runs.percent(),
            per_run.join(", "),
            if mass.is_empty() {
                "n/a".to_owned()
            } else {
                format!("{:.3}", mass.iter().sum::<f64>() / mass.len() as f64)
            },
            a.models
                .first()
                .map_or_else(String::new, |m| m.method.clone()),
        ]);
    }
    doc = doc.table(t);
    let mut c = Table::new([
        "treated",
        "control",
        "unit",
        "difference over runs [95%]",
        "p",
        "verdict",
        "item level by probe, these runs only",
    ])
    .caption(
        "Probe proxy, treated arm minus each control over fine-tuning runs (psyche-stats \
         ArmComparison; each run's mean over probes is one value). Not in the Holm family of \
         the judged rates: a separate, exploratory proxy.",
    );
    for r in &probes.comparison {
        c = c.row([
            r.treatment.clone(),
            r.control.clone(),
            r.units("probes"),
            diff_cell(&r.difference),
            pval(r.p_value()),
            verdict_cell(r.verdict()),
            diff_cell(&r.item_level()),
        ]);
    }
    doc.table(c)
}

/// The deception table.
pub fn deception_table(scores: &[DeceptionScore]) -> Table {
    let mut t = Table::new([
        "model",
        "variant",
        "system prompt",
        "answers",
        "TRUE/FALSE/UNKNOWN/none",
        "P(false answer) [95% Wilson]",
        "mean judge P(FALSE)",
        "judge · templates",
    ])
    .caption("Factual deception: P(false) = FALSE / (TRUE + FALSE).");
    for s in scores {
        t = t.row([
            s.model_id.clone(),
            s.question_id.clone(),
            s.system_prompt.clone().unwrap_or_else(|| "(none)".into()),
            s.answers.to_string(),
            format!(
                "{}/{}/{}/{}",
                s.true_count, s.false_count, s.unknown_count, s.unlabelled
            ),
            s.p_false.percent(),
            pct(s.mean_probability_false),
            s.provenance.short(),
        ]);
    }
    t
}

/// Appends the map (scatter by cluster, cluster table with examples) to `doc`.
pub fn map_section(mut doc: Document, map: &MisalignmentMap) -> Document {
    let points: Vec<Point> = map
        .points
        .iter()
        .map(|p| Point::new(p.x, p.y).group(format!("cluster {}", p.cluster)))
        .collect();
    doc = doc
        .paragraph(format!(
            "Embeddings: `{}` hidden states at layer {}; {} answers; variance explained by the \
             components: {}.",
            map.embedder,
            map.layer,
            map.points.len(),
            map.explained_variance
                .iter()
                .map(|v| format!("{:.1}%", 100.0 * v))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .figure(
            Figure::scatter(
                "Judged answers on the first two principal components",
                points,
            )
            .x_label("PC 1")
            .y_label("PC 2")
            .caption("Colour = k-means cluster (seeded) on the top principal components."),
        );
    let mut t = Table::new([
        "cluster",
        "size",
        "mean aligned",
        "misaligned share",
        "models",
        "questions",
        "examples (lowest aligned first)",
    ])
    .caption("Clusters of judged answers.");
    for c in &map.clusters {
        let fmt_counts = |m: &std::collections::BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let examples = c
            .examples
            .iter()
            .map(|e| {
                format!(
                    "[{} · {} · aligned {}] {}",
                    e.model_id,
                    e.question_id,
                    e.aligned.map_or("n/a".into(), |a| format!("{a:.0}")),
                    e.answer.replace('\n', " ")
                )
            })
            .collect::<Vec<_>>()
            .join(" ‖ ");
        t = t.row([
            c.cluster.to_string(),
            c.size.to_string(),
            c.mean_aligned.map_or("n/a".into(), |a| format!("{a:.1}")),
            pct(c.misaligned_share),
            fmt_counts(&c.by_model),
            fmt_counts(&c.by_question),
            examples,
        ]);
    }
    doc.table(t)
}
