//! The summary of a run log: per-group estimates rendered through a [`Document`].
//!
//! [`summarize`] streams a log once and groups numeric verdicts by (model, judge, metadata
//! keys such as `task` and `property`). Each group gets an estimate with a confidence interval
//! from psyche-stats:
//! - repeated clusters (epochs, paraphrases: several records share a sample's cluster key, or
//!   its id when it has none) → cluster-robust t interval ([`psyche_stats::clustered_mean_ci`]);
//! - otherwise 0/1 scores → Wilson interval; other numbers → t interval.
//!
//! Where records carry a `"target"` in their metadata (the object-level property in
//! self-prediction, a fixed answer otherwise), the group also gets the mode baseline: the
//! accuracy of always answering the most common target, over the same scored items as the
//! estimate (declined items leave both).
//!
//! Records whose metadata has a numeric `"confidence"` in [0, 1] feed a calibration plot of
//! confidence against the 0/1 score (10 equal-frequency bins, [`psyche_stats::calibration_curve`]).
//!
//! A statistic that cannot be computed (one cluster, a single non-0/1 score) keeps its error
//! ([`GroupRow::estimate_error`]) and the report shows that error where the interval would be.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use psyche_core::Score;
use psyche_stats::Estimate;
use serde::{Deserialize, Serialize};

use super::document::{Document, ReportPaths, Table, error_cell};
use super::figure::{Bar, Figure, num};
use crate::error::RunnerError;
use crate::log::{LogHeader, LogReader};

/// What to group by and at which level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportConfig {
    /// Metadata keys that define groups, in order (default `["task", "property"]`; keys a
    /// record lacks are shown as `-`).
    pub group_by: Vec<String>,
    /// Confidence level (default 0.95).
    pub level: f64,
    /// Page title (default: the run id).
    pub title: Option<String>,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            group_by: vec!["task".into(), "property".into()],
            level: 0.95,
            title: None,
        }
    }
}

/// One row of a summary: a (model, judge, group) with its estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRow {
    /// The evaluated model.
    pub model: String,
    /// The judge whose scores are summarised.
    pub judge: String,
    /// Values of the `group_by` keys, in order.
    pub group: Vec<String>,
    /// Records with a numeric score.
    pub n: usize,
    /// Records where this judge returned `Score::None`.
    pub declined: usize,
    /// Records of this group that failed (no output, or a judge error).
    pub errors: usize,
    /// Mean score with its interval; `None` when there are no scores or the interval could
    /// not be computed (then `estimate_error` says why).
    pub estimate: Option<Estimate>,
    /// Why `estimate` is missing although there are scores: the statistic's error message.
    pub estimate_error: Option<String>,
    /// The plain mean (also set when the interval could not be computed).
    pub mean: Option<f64>,
    /// The most common target and the accuracy of always answering it.
    pub mode_baseline: Option<(String, f64)>,
    /// Distinct clusters behind the scores.
    pub clusters: usize,
}

impl GroupRow {
    /// `model · key=value · ...` for tables and plots.
    pub fn label(&self, keys: &[String]) -> String {
        let mut s = self.model.clone();
        for (k, v) in keys.iter().zip(&self.group) {
            if v != "-" {
                let _ = write!(s, " · {k}={v}");
            }
        }
        s
    }
}

/// A summarised run log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The log's header, when it had one.
    pub header: Option<LogHeader>,
    /// The configuration used.
    pub config: ReportConfig,
    /// One row per (model, judge, group), sorted.
    pub rows: Vec<GroupRow>,
    /// Records read.
    pub records: usize,
    /// Records carrying an error.
    pub errors: usize,
    /// (confidence, 0/1 score) pairs per judge, for calibration plots.
    pub calibration: BTreeMap<String, Vec<(f64, f64)>>,
}

#[derive(Default)]
struct Acc {
    values: Vec<f64>,
    clusters: Vec<String>,
    declined: usize,
    errors: usize,
    targets: Vec<String>,
}

fn clean(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Streams the log at `path` and summarises it.
///
/// # Errors
///
/// [`RunnerError::Io`] / [`RunnerError::Log`] when the log cannot be read.
pub fn summarize(path: impl AsRef<Path>, config: &ReportConfig) -> Result<Summary, RunnerError> {
    let reader = LogReader::open(path)?;
    let header = reader.header().cloned();
    let mut judges: Vec<String> = header
        .as_ref()
        .map(|h| h.judges.clone())
        .unwrap_or_default();
    let mut groups: BTreeMap<(String, String, Vec<String>), Acc> = BTreeMap::new();
    let mut calibration: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut records = 0usize;
    let mut errors = 0usize;
    for rec in reader {
        let rec = rec?;
        records += 1;
        if rec.error.is_some() {
            errors += 1;
        }
        for j in rec.scores.keys() {
            if !judges.contains(j) {
                judges.push(j.clone());
            }
        }
        let group: Vec<String> = config
            .group_by
            .iter()
            .map(|k| match rec.metadata.get(k) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => "-".to_owned(),
            })
            .collect();
        let cluster = rec.cluster.clone().unwrap_or_else(|| rec.sample_id.clone());
        let confidence = rec
            .metadata
            .get("confidence")
            .and_then(serde_json::Value::as_f64)
            .filter(|c| (0.0..=1.0).contains(c));
        for judge in &judges {
            let acc = groups
                .entry((rec.model_id.clone(), judge.clone(), group.clone()))
                .or_default();
            if rec.output.is_none() || (rec.error.is_some() && !rec.scores.contains_key(judge)) {
                acc.errors += 1;
                continue;
            }
            match rec.scores.get(judge).map(|v| &v.score) {
                Some(Score::None { .. }) => acc.declined += 1,
                Some(score) => {
                    if let Some(x) = score.as_f64().filter(|x| x.is_finite()) {
                        // The baseline counts exactly the items the estimate counts.
                        if let Some(t) = rec.meta_str("target") {
                            acc.targets.push(clean(t));
                        }
                        acc.values.push(x);
                        acc.clusters.push(cluster.clone());
                        if let (Some(c), true) = (confidence, x == 0.0 || x == 1.0) {
                            calibration.entry(judge.clone()).or_default().push((c, x));
                        }
                    } else {
                        acc.declined += 1;
                    }
                }
                None => {}
            }
        }
    }
    let rows = groups
        .into_iter()
        .filter(|(_, a)| !a.values.is_empty() || a.declined > 0 || a.errors > 0)
        .map(|((model, judge, group), acc)| row(model, judge, group, acc, config.level))
        .collect();
    Ok(Summary {
        header,
        config: config.clone(),
        rows,
        records,
        errors,
        calibration,
    })
}

fn row(model: String, judge: String, group: Vec<String>, acc: Acc, level: f64) -> GroupRow {
    let n = acc.values.len();
    let mean = (n > 0).then(|| acc.values.iter().sum::<f64>() / n as f64);
    let mut distinct: HashMap<&str, usize> = HashMap::new();
    for c in &acc.clusters {
        *distinct.entry(c.as_str()).or_default() += 1;
    }
    let clusters = distinct.len();
    let binary = acc.values.iter().all(|&x| x == 0.0 || x == 1.0);
    let result = if n == 0 {
        None
    } else if clusters < n {
        // Repeated clusters: only the cluster-robust interval is honest, and with a single
        // cluster it cannot be computed: say so rather than fall back to a naive one.
        Some(psyche_stats::clustered_mean_ci(
            &acc.values,
            &acc.clusters,
            level,
        ))
    } else if binary {
        let successes = acc.values.iter().filter(|&&x| x == 1.0).count() as u64;
        Some(psyche_stats::wilson(successes, n as u64, level))
    } else {
        Some(psyche_stats::mean_ci(&acc.values, level))
    };
    let (estimate, estimate_error) = match result {
        None => (None, None),
        Some(Ok(e)) => (Some(e), None),
        Some(Err(e)) => (None, Some(e.to_string())),
    };
    let mode_baseline = psyche_stats::mode_baseline(&acc.targets).map(|m| (m.mode, m.accuracy));
    GroupRow {
        model,
        judge,
        group,
        n,
        declined: acc.declined,
        errors: acc.errors,
        estimate,
        estimate_error,
        mean,
        mode_baseline,
        clusters,
    }
}

/// The mean and interval cells of a row: a failed statistic shows its error.
fn estimate_cells(row: &GroupRow) -> (String, String) {
    match (&row.estimate, row.mean, &row.estimate_error) {
        (Some(e), _, _) => (
            num(e.estimate),
            format!(
                "[{}, {}] {}",
                num(e.ci_low),
                num(e.ci_high),
                e.method.label()
            ),
        ),
        (None, m, Some(err)) => (m.map(num).unwrap_or_default(), error_cell(err)),
        (None, Some(m), None) => (num(m), String::new()),
        (None, None, None) => (String::new(), "no numeric scores".into()),
    }
}

impl Summary {
    /// The report as a [`Document`]: run facts (models with backends, judges, seeds), then per
    /// judge a bar chart (mean with interval, mode baseline in red), a table (mean, interval
    /// and method or the statistic's error, mode baseline, n, declined, errors) and, where
    /// records carry confidences, a calibration plot.
    pub fn to_document(&self) -> Document {
        let mut doc = Document::new(self.title()).list(self.facts());
        let level = (self.config.level * 100.0).round();
        for judge in self.judges() {
            let rows: Vec<&GroupRow> = self.rows.iter().filter(|r| r.judge == judge).collect();
            doc = doc.heading(2, format!("Judge `{judge}`"));
            let several_models = rows.iter().any(|r| r.model != rows[0].model);
            let bars = rows
                .iter()
                .map(|r| {
                    let label = self.short_label(r, several_models);
                    let bar = match (&r.estimate, r.mean, &r.estimate_error) {
                        (Some(e), _, _) => Bar::from_estimate(label, e),
                        (None, _, Some(err)) => Bar::failed(label, err),
                        (None, Some(m), None) => Bar::new(label, m),
                        (None, None, None) => Bar::failed(label, "no numeric scores"),
                    };
                    match &r.mode_baseline {
                        Some((_, b)) => bar.baseline(*b),
                        None => bar,
                    }
                })
                .collect();
            doc = doc.figure(
                Figure::bars(format!("{judge}: mean with {level}% CI"), bars)
                    .y_label("score")
                    .caption(
                        "Red marks: the mode baseline (always answering the most common target).",
                    ),
            );
            let mut headers = vec!["model".to_owned()];
            headers.extend(self.config.group_by.iter().cloned());
            headers.extend(
                [
                    "mean",
                    &format!("{level}% CI"),
                    "mode baseline",
                    "n",
                    "declined",
                    "errors",
                ]
                .map(str::to_owned),
            );
            let mut table = Table {
                headers,
                ..Table::default()
            };
            for r in &rows {
                let (mean, ci) = estimate_cells(r);
                let base = r
                    .mode_baseline
                    .as_ref()
                    .map_or_else(String::new, |(mode, acc)| {
                        format!("{} (`{mode}`)", num(*acc))
                    });
                let mut cells = vec![r.model.clone()];
                cells.extend(r.group.iter().cloned());
                cells.extend([
                    mean,
                    ci,
                    base,
                    r.n.to_string(),
                    r.declined.to_string(),
                    r.errors.to_string(),
                ]);
                table.rows.push(cells);
            }
            doc = doc.table(table);
            if let Some(pairs) = self.calibration.get(&judge) {
                doc = match psyche_stats::calibration_curve(pairs, 10) {
                    Ok(curve) => doc.figure(
                        Figure::calibration(format!("{judge}: calibration"), &curve)
                            .x_label("stated confidence")
                            .y_label("observed accuracy"),
                    ),
                    Err(e) => doc.error(format!("calibration curve of judge `{judge}`"), e),
                };
            }
        }
        doc
    }

    /// The markdown report (see [`to_document`](Self::to_document)).
    pub fn to_markdown(&self) -> String {
        self.to_document().to_markdown()
    }

    /// The self-contained HTML report with SVG plots (see [`to_document`](Self::to_document)).
    ///
    /// # Errors
    ///
    /// As [`Document::to_html`].
    pub fn to_html(&self) -> Result<String, RunnerError> {
        self.to_document().to_html()
    }

    fn title(&self) -> String {
        self.config.title.clone().unwrap_or_else(|| {
            self.header
                .as_ref()
                .map_or("psyche run".to_owned(), |h| format!("Run `{}`", h.run_id))
        })
    }

    fn judges(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for r in &self.rows {
            if !v.contains(&r.judge) {
                v.push(r.judge.clone());
            }
        }
        v
    }

    /// Tick label: the group values, prefixed by the model only when several models.
    fn short_label(&self, r: &GroupRow, several_models: bool) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if several_models {
            parts.push(&r.model);
        }
        parts.extend(r.group.iter().map(String::as_str).filter(|g| *g != "-"));
        if parts.is_empty() {
            r.model.clone()
        } else {
            parts.join(" · ")
        }
    }

    fn facts(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(h) = &self.header {
            if let Some(t) = &h.task {
                lines.push(format!("task: {t}"));
            }
            for m in &h.models {
                let mut s = format!(
                    "{} model: {} (backend {}",
                    m.role, m.info.id, m.info.backend
                );
                if let Some(w) = &m.info.weights {
                    let _ = write!(s, ", weights {w}");
                }
                s.push(')');
                lines.push(s);
            }
            lines.push(format!("solver: {} {}", h.solver, h.solver_config));
            lines.push(format!("judges: {}", h.judges.join(", ")));
            lines.push(format!(
                "seed: {} (per unit: derive_seed(seed, \"<sample>/<epoch>\")), epochs: {}",
                h.seed, h.epochs
            ));
            if let Some(g) = &h.git_revision {
                lines.push(format!("git revision: {g}"));
            }
        }
        lines.push(format!(
            "records: {} ({} with errors)",
            self.records, self.errors
        ));
        lines
    }
}

/// Summarises the log at `log` and writes `<stem>.md`, `<stem>.html` and the figures' SVGs
/// next to it (or into `out_dir` when given), where `<stem>` is the log's file stem.
///
/// # Errors
///
/// As [`summarize`] and [`Document::write`].
pub fn write_reports(
    log: impl AsRef<Path>,
    out_dir: Option<&Path>,
    config: &ReportConfig,
) -> Result<ReportPaths, RunnerError> {
    let log = log.as_ref();
    let summary = summarize(log, config)?;
    let dir = out_dir
        .map(Path::to_path_buf)
        .or_else(|| log.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let stem = log
        .file_stem()
        .map_or_else(|| "report".into(), |s| s.to_string_lossy().into_owned());
    summary.to_document().write(&dir, &stem)
}
