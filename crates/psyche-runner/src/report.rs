//! Reports from a run log alone: a markdown summary and an HTML page with SVG plots.
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
//! accuracy of always answering the most common target.
//!
//! Records whose metadata has a numeric `"confidence"` in [0, 1] feed a calibration plot of
//! confidence against the 0/1 score (10 equal-frequency bins, [`psyche_stats::calibration_curve`]).
//!
//! [`rescore`] re-runs judges over an existing log without regenerating anything.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use plotters::prelude::*;
use psyche_core::{Conversation, Judge, Record, Sample, Score};
use psyche_stats::Estimate;
use serde::{Deserialize, Serialize};

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
    /// Mean score with its interval; `None` when fewer than two scores (see `mean`).
    pub estimate: Option<Estimate>,
    /// The plain mean (also set when there are too few scores for an interval).
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
            if let Some(t) = rec.meta_str("target") {
                acc.targets.push(clean(t));
            }
            match rec.scores.get(judge).map(|v| &v.score) {
                Some(Score::None { .. }) => acc.declined += 1,
                Some(score) => {
                    if let Some(x) = score.as_f64().filter(|x| x.is_finite()) {
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
    let estimate = if n < 2 {
        None
    } else if clusters < n && clusters >= 2 {
        psyche_stats::clustered_mean_ci(&acc.values, &acc.clusters, level).ok()
    } else if binary {
        let successes = acc.values.iter().filter(|&&x| x == 1.0).count() as u64;
        psyche_stats::wilson(successes, n as u64, level).ok()
    } else {
        psyche_stats::mean_ci(&acc.values, level).ok()
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
        mean,
        mode_baseline,
        clusters,
    }
}

fn fmt_est(row: &GroupRow) -> (String, String) {
    match (&row.estimate, row.mean) {
        (Some(e), _) => (
            format!("{:.3}", e.estimate),
            format!("[{:.3}, {:.3}] {}", e.ci_low, e.ci_high, e.method.label()),
        ),
        (None, Some(m)) => (format!("{m:.3}"), "n < 2".into()),
        (None, None) => ("–".into(), "–".into()),
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

impl Summary {
    /// The markdown summary: run facts (models with backends, judges, seeds) and one table
    /// per judge.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let title = self.title();
        let _ = writeln!(md, "# {}\n", md_escape(&title));
        self.facts(&mut md, true);
        let level = (self.config.level * 100.0).round();
        for judge in self.judges() {
            let _ = writeln!(md, "\n## Judge `{judge}`\n");
            let _ = write!(md, "| model |");
            for k in &self.config.group_by {
                let _ = write!(md, " {} |", md_escape(k));
            }
            let _ = writeln!(
                md,
                " mean | {level}% CI | mode baseline | n | declined | errors |"
            );
            let _ = write!(md, "|---|");
            for _ in &self.config.group_by {
                md.push_str("---|");
            }
            md.push_str("---:|---|---|---:|---:|---:|\n");
            for r in self.rows.iter().filter(|r| r.judge == judge) {
                let (m, ci) = fmt_est(r);
                let base = r
                    .mode_baseline
                    .as_ref()
                    .map_or("–".to_owned(), |(mode, acc)| {
                        format!("{acc:.3} (`{}`)", md_escape(mode))
                    });
                let _ = write!(md, "| {} |", md_escape(&r.model));
                for g in &r.group {
                    let _ = write!(md, " {} |", md_escape(g));
                }
                let _ = writeln!(
                    md,
                    " {m} | {ci} | {base} | {} | {} | {} |",
                    r.n, r.declined, r.errors
                );
            }
        }
        md
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

    fn facts(&self, out: &mut String, markdown: bool) {
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
        for l in lines {
            if markdown {
                let _ = writeln!(out, "- {}", md_escape(&l));
            } else {
                let _ = writeln!(out, "<li>{}</li>", html_escape(&l));
            }
        }
    }

    /// A self-contained HTML page: the facts, a table and a bar chart with CI whiskers per
    /// judge, and a calibration plot per judge with confidences.
    ///
    /// # Errors
    ///
    /// [`RunnerError::Report`] when a plot cannot be drawn.
    pub fn to_html(&self) -> Result<String, RunnerError> {
        let mut h = String::new();
        let title = html_escape(&self.title());
        let _ = write!(
            h,
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title><style>\
             body{{font-family:sans-serif;margin:2em;max-width:1100px}}\
             table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px}}\
             td.n{{text-align:right}}</style></head><body><h1>{title}</h1><ul>"
        );
        self.facts(&mut h, false);
        h.push_str("</ul>");
        let level = (self.config.level * 100.0).round();
        for judge in self.judges() {
            let rows: Vec<&GroupRow> = self.rows.iter().filter(|r| r.judge == judge).collect();
            let _ = write!(h, "<h2>Judge <code>{}</code></h2>", html_escape(&judge));
            h.push_str(&bar_chart_svg(&rows, &judge, level)?);
            let _ = write!(
                h,
                "<table><tr><th>group</th><th>mean</th><th>{level}% CI</th><th>mode baseline</th>\
                 <th>n</th><th>declined</th><th>errors</th></tr>"
            );
            for r in rows {
                let (m, ci) = fmt_est(r);
                let base = r
                    .mode_baseline
                    .as_ref()
                    .map_or("–".to_owned(), |(mode, acc)| format!("{acc:.3} ({mode})"));
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td class=n>{m}</td><td>{}</td><td>{}</td><td class=n>{}</td>\
                     <td class=n>{}</td><td class=n>{}</td></tr>",
                    html_escape(&r.label(&self.config.group_by)),
                    html_escape(&ci),
                    html_escape(&base),
                    r.n,
                    r.declined,
                    r.errors
                );
            }
            h.push_str("</table>");
            if let Some(pairs) = self.calibration.get(&judge).filter(|p| p.len() >= 10) {
                let _ = write!(h, "<h3>Calibration ({} answers)</h3>", pairs.len());
                h.push_str(&calibration_svg(pairs, &judge)?);
            }
        }
        h.push_str("</body></html>\n");
        Ok(h)
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn plot_err<E: std::fmt::Display>(e: E) -> RunnerError {
    RunnerError::Report(format!("cannot draw plot: {e}"))
}

fn bar_chart_svg(rows: &[&GroupRow], judge: &str, level: f64) -> Result<String, RunnerError> {
    let mut svg = String::new();
    let n = rows.len().max(1);
    let width = (160 + 190 * n).clamp(480, 1600) as u32;
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for r in rows {
        if let Some(e) = &r.estimate {
            lo = lo.min(e.ci_low);
            hi = hi.max(e.ci_high);
        } else if let Some(m) = r.mean {
            lo = lo.min(m);
            hi = hi.max(m);
        }
    }
    // Short tick labels: the group values, prefixed by the model only when several models.
    let several_models = rows.iter().any(|r| r.model != rows[0].model);
    let labels: Vec<String> = rows
        .iter()
        .map(|r| {
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
        })
        .collect();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{judge}: mean with {level}% CI (red: mode baseline)"),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(60)
            .y_label_area_size(50)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), lo..hi * 1.05)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("score")
            .draw()
            .map_err(plot_err)?;
        let blue = RGBColor(70, 110, 180);
        for (i, r) in rows.iter().enumerate() {
            let x = i as f64;
            let Some(mean) = r.estimate.as_ref().map(|e| e.estimate).or(r.mean) else {
                continue;
            };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.35, lo.min(0.0)), (x + 0.35, mean)],
                    blue.mix(0.8).filled(),
                )))
                .map_err(plot_err)?;
            if let Some(e) = &r.estimate {
                let whisker = [
                    vec![(x, e.ci_low), (x, e.ci_high)],
                    vec![(x - 0.1, e.ci_low), (x + 0.1, e.ci_low)],
                    vec![(x - 0.1, e.ci_high), (x + 0.1, e.ci_high)],
                ];
                chart
                    .draw_series(
                        whisker
                            .into_iter()
                            .map(|p| PathElement::new(p, BLACK.stroke_width(2))),
                    )
                    .map_err(plot_err)?;
            }
            if let Some((_, base)) = &r.mode_baseline {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x - 0.42, *base), (x + 0.42, *base)],
                        RED.stroke_width(3),
                    )))
                    .map_err(plot_err)?;
            }
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

fn calibration_svg(pairs: &[(f64, f64)], judge: &str) -> Result<String, RunnerError> {
    let mut svg = String::new();
    let cal = psyche_stats::calibration_curve(pairs, 10).map_err(plot_err)?;
    let points: Vec<(f64, f64, usize)> = cal
        .points
        .iter()
        .zip(&cal.counts)
        .map(|(p, &k)| (p.0, p.1, k))
        .collect();
    {
        let root = SVGBackend::with_string(&mut svg, (460, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{judge}: calibration (MAD×100 = {:.1})", cal.mad_x100),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0f64..1.0, 0.0f64..1.0)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("stated confidence")
            .y_desc("observed accuracy")
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, 0.0), (1.0, 1.0)],
                BLACK.mix(0.4).stroke_width(1),
            )))
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.1)),
                RGBColor(70, 110, 180).stroke_width(2),
            ))
            .map_err(plot_err)?;
        chart
            .draw_series(points.iter().map(|p| {
                let r = (3.0 + (p.2 as f64).sqrt()).min(12.0) as i32;
                Circle::new((p.0, p.1), r, RGBColor(70, 110, 180).filled())
            }))
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Paths written by [`write_reports`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPaths {
    /// The markdown summary.
    pub markdown: PathBuf,
    /// The HTML page.
    pub html: PathBuf,
}

/// Summarises the log at `log` and writes `<stem>.md` and `<stem>.html` next to it (or into
/// `out_dir` when given).
///
/// # Errors
///
/// As [`summarize`] and [`Summary::to_html`], plus [`RunnerError::Io`] when writing fails.
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
    std::fs::create_dir_all(&dir).map_err(|e| RunnerError::io(&dir, e))?;
    let stem = log
        .file_stem()
        .map_or_else(|| "report".into(), |s| s.to_string_lossy().into_owned());
    let markdown = dir.join(format!("{stem}.md"));
    let html = dir.join(format!("{stem}.html"));
    std::fs::write(&markdown, summary.to_markdown()).map_err(|e| RunnerError::io(&markdown, e))?;
    std::fs::write(&html, summary.to_html()?).map_err(|e| RunnerError::io(&html, e))?;
    Ok(ReportPaths { markdown, html })
}

/// Rebuilds the sample a record was judged on: its id, prompt (the transcript without the
/// final assistant turn), target (metadata `"target"`), metadata, cluster and split.
pub fn sample_from_record(record: &Record) -> Sample {
    let input = match &record.transcript {
        Some(t) => match t.split_last_assistant() {
            Some((prompt, _)) => prompt,
            None => t.clone(),
        },
        None => Conversation::new(),
    };
    let mut s = Sample::new(record.sample_id.clone(), input);
    s.target = record.meta_str("target").map(str::to_owned);
    s.metadata = record.metadata.clone();
    s.cluster = record.cluster.clone();
    s.split = record.split.clone();
    s
}

/// Re-scores every record of the log at `input` with `judges` (replacing verdicts of the same
/// judge ids, keeping the others) and writes the result to `output` with the header's judge
/// list updated. Nothing is regenerated; records without output are copied unchanged.
///
/// # Errors
///
/// As [`LogReader`], plus [`RunnerError::Io`] when writing fails. Judge failures are recorded
/// in the record's `error` like during a run.
pub async fn rescore(
    input: impl AsRef<Path>,
    output: impl AsRef<Path>,
    judges: &[Arc<dyn Judge>],
) -> Result<usize, RunnerError> {
    use std::io::Write;
    let input = input.as_ref();
    let output = output.as_ref();
    if input == output {
        return Err(RunnerError::config(
            "output",
            "re-scoring writes a new log; give a different output path",
        ));
    }
    let reader = LogReader::open(input)?;
    let file = std::fs::File::create(output).map_err(|e| RunnerError::io(output, e))?;
    let mut w = std::io::BufWriter::new(file);
    let ser = |e: serde_json::Error| RunnerError::Writer {
        path: output.to_owned(),
        message: e.to_string(),
    };
    if let Some(h) = reader.header() {
        let mut h = h.clone();
        for j in judges {
            if !h.judges.iter().any(|x| x == j.id()) {
                h.judges.push(j.id().to_owned());
            }
        }
        serde_json::to_writer(&mut w, &h).map_err(ser)?;
        w.write_all(b"\n").map_err(|e| RunnerError::io(output, e))?;
    }
    let mut n = 0;
    for rec in reader {
        let mut rec = rec?;
        if let Some(out) = rec.output.clone() {
            let sample = sample_from_record(&rec);
            let mut errors = Vec::new();
            for j in judges {
                match j.judge(&sample, &out).await {
                    Ok(v) => {
                        rec.scores.insert(j.id().to_owned(), v);
                    }
                    Err(e) => errors.push(format!("judge `{}`: {e}", j.id())),
                }
            }
            if !errors.is_empty() {
                rec.error = Some(errors.join("; "));
            }
        }
        serde_json::to_writer(&mut w, &rec).map_err(ser)?;
        w.write_all(b"\n").map_err(|e| RunnerError::io(output, e))?;
        n += 1;
    }
    w.flush().map_err(|e| RunnerError::io(output, e))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use psyche_core::{ChatMessage, Role};

    #[test]
    fn sample_from_record_strips_the_final_answer() {
        let s = Sample::new("q", Conversation::user("hi")).with_meta("task", "t");
        let mut r = Record::for_sample("run", &s, "m", 0);
        r.transcript = Some(Conversation::user("hi").with(ChatMessage::assistant("yo")));
        r.metadata.insert("target".into(), "yo".into());
        let back = sample_from_record(&r);
        assert_eq!(back.input, Conversation::user("hi"));
        assert_eq!(back.target.as_deref(), Some("yo"));
        assert_eq!(back.input.messages()[0].role, Role::User);
    }
}
