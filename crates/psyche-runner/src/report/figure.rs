//! [`Figure`]: bars with CI whiskers, calibration curves, scatter plots and line series,
//! drawn to SVG with plotters and shown as a data table in markdown.

use plotters::prelude::*;
use psyche_stats::{Calibration, Estimate};
use serde::{Deserialize, Serialize};

use super::document::{Table, error_cell};
use crate::error::RunnerError;

/// One bar of [`Figure::bars`]: an estimate with an optional interval and baseline marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    /// The tick label.
    pub label: String,
    /// The bar's height; `None` when the statistic failed (see `error`).
    pub value: Option<f64>,
    /// The interval drawn as a whisker, `(low, high)`.
    pub ci: Option<(f64, f64)>,
    /// A reference value drawn as a red mark across the bar (a mode baseline, chance).
    pub baseline: Option<f64>,
    /// How the interval was computed (shown in the data table), e.g. "Wilson".
    pub method: Option<String>,
    /// Why there is no value: the failed statistic's error, shown in the data table.
    pub error: Option<String>,
}

impl Bar {
    /// A bar of height `value`.
    pub fn new(label: impl Into<String>, value: f64) -> Self {
        Self {
            label: label.into(),
            value: Some(value),
            ci: None,
            baseline: None,
            method: None,
            error: None,
        }
    }

    /// A bar from an estimate: its point estimate, interval and method.
    pub fn from_estimate(label: impl Into<String>, estimate: &Estimate) -> Self {
        Self::new(label, estimate.estimate)
            .ci(estimate.ci_low, estimate.ci_high)
            .method(estimate.method.label())
    }

    /// A missing bar: the statistic failed with `err`, which the data table shows.
    pub fn failed(label: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Self {
            value: None,
            error: Some(err.to_string()),
            ..Self::new(label, 0.0)
        }
    }

    /// Sets the interval.
    #[must_use]
    pub fn ci(mut self, low: f64, high: f64) -> Self {
        self.ci = Some((low, high));
        self
    }

    /// Sets the baseline marker.
    #[must_use]
    pub fn baseline(mut self, baseline: f64) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// Sets the interval method's name.
    #[must_use]
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }
}

/// One point of [`Figure::scatter`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Horizontal coordinate.
    pub x: f64,
    /// Vertical coordinate.
    pub y: f64,
    /// Text drawn next to the point (a model name).
    pub label: Option<String>,
    /// Points of one group share a colour and a legend entry (a cluster, a model family).
    pub group: Option<String>,
}

impl Point {
    /// A point at `(x, y)`.
    pub fn new(x: f64, y: f64) -> Self {
        Self {
            x,
            y,
            label: None,
            group: None,
        }
    }

    /// Sets the text drawn next to the point.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the colour group.
    #[must_use]
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }
}

/// One line of [`Figure::lines`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// `(x, y)` points, drawn in order.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A named series.
    pub fn new(name: impl Into<String>, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points: points.into_iter().collect(),
        }
    }
}

/// One point of a calibration curve: a bin's mean expected and mean predicted value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationPoint {
    /// Mean expected probability (x).
    pub expected: f64,
    /// Mean predicted probability, or observed accuracy (y).
    pub predicted: f64,
    /// Observations in the bin (sets the marker size).
    pub count: usize,
}

/// What a [`Figure`] plots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FigureData {
    /// Labelled estimates with CI whiskers and baseline markers.
    Bars {
        /// The bars, left to right.
        bars: Vec<Bar>,
    },
    /// Binned expected vs predicted probabilities with the diagonal.
    Calibration {
        /// The bins' means.
        points: Vec<CalibrationPoint>,
        /// Mean absolute deviation from the diagonal × 100 (shown in the heading).
        mad_x100: f64,
    },
    /// Labelled points coloured by group.
    Scatter {
        /// The points.
        points: Vec<Point>,
    },
    /// Series over x.
    Lines {
        /// The series.
        series: Vec<Series>,
    },
    /// A grid of values (rows × columns) as coloured cells with their numbers: blue below
    /// zero, red above, white at zero; a missing value is a grey cell.
    Heatmap {
        /// Row labels, top to bottom.
        rows: Vec<String>,
        /// Column labels, left to right.
        columns: Vec<String>,
        /// `values[row][column]`.
        values: Vec<Vec<Option<f64>>>,
    },
}

/// A plot for a [`Document`](super::Document): built with [`bars`](Self::bars),
/// [`calibration`](Self::calibration), [`scatter`](Self::scatter) or [`lines`](Self::lines),
/// then axis labels, a caption or a fixed y range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// The plot's title.
    pub title: String,
    /// Text under the figure (what the marks mean, the data's source).
    pub caption: String,
    /// Horizontal axis label.
    pub x_label: String,
    /// Vertical axis label.
    pub y_label: String,
    /// Fixed vertical range; automatic when `None`.
    pub y_range: Option<(f64, f64)>,
    /// What is plotted.
    pub data: FigureData,
}

impl Figure {
    fn with(title: impl Into<String>, data: FigureData) -> Self {
        Self {
            title: title.into(),
            caption: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            y_range: None,
            data,
        }
    }

    /// Bars with CI whiskers (black) and baseline marks (red), e.g. accuracy per property
    /// against its mode baseline, or a rate per model. Bars without a value (failed
    /// statistics) are left empty in the plot; the data table shows their error.
    pub fn bars(title: impl Into<String>, bars: Vec<Bar>) -> Self {
        Self::with(title, FigureData::Bars { bars })
    }

    /// A calibration plot: the bins of `curve` (marker size by count) against the diagonal,
    /// with the MAD in the heading. Axes are \[0, 1\]; label them with
    /// [`x_label`](Self::x_label) / [`y_label`](Self::y_label) (defaults: expected /
    /// predicted).
    pub fn calibration(title: impl Into<String>, curve: &Calibration) -> Self {
        let points = curve
            .points
            .iter()
            .zip(curve.counts.iter().copied().chain(std::iter::repeat(0)))
            .map(|(&(expected, predicted), count)| CalibrationPoint {
                expected,
                predicted,
                count,
            })
            .collect();
        let mut f = Self::with(
            title,
            FigureData::Calibration {
                points,
                mad_x100: curve.mad_x100,
            },
        );
        f.x_label = "expected".into();
        f.y_label = "predicted".into();
        f
    }

    /// Labelled points coloured by group (self-report vs behaviour across models, PCA
    /// projections coloured by cluster).
    pub fn scatter(title: impl Into<String>, points: Vec<Point>) -> Self {
        Self::with(title, FigureData::Scatter { points })
    }

    /// Lines over x (training loss per step, a rate over seeds).
    pub fn lines(title: impl Into<String>, series: Vec<Series>) -> Self {
        Self::with(title, FigureData::Lines { series })
    }

    /// A heatmap of `values[row][column]` (e.g. a detection shift by steering layer × strength);
    /// `y_label` names the rows and `x_label` the columns.
    pub fn heatmap(
        title: impl Into<String>,
        rows: Vec<String>,
        columns: Vec<String>,
        values: Vec<Vec<Option<f64>>>,
    ) -> Self {
        Self::with(
            title,
            FigureData::Heatmap {
                rows,
                columns,
                values,
            },
        )
    }

    /// Sets the horizontal axis label.
    #[must_use]
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// Sets the vertical axis label.
    #[must_use]
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// Sets the caption shown under the figure.
    #[must_use]
    pub fn caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = caption.into();
        self
    }

    /// Fixes the vertical range (e.g. `(0.0, 1.0)` for rates).
    #[must_use]
    pub fn y_range(mut self, low: f64, high: f64) -> Self {
        self.y_range = Some((low, high));
        self
    }

    /// The title plus what the marks mean (and the MAD of a calibration plot).
    pub(super) fn heading(&self) -> String {
        match &self.data {
            FigureData::Bars { bars } => {
                let mut marks = Vec::new();
                if bars.iter().any(|b| b.ci.is_some()) {
                    marks.push("whiskers: interval");
                }
                if bars.iter().any(|b| b.baseline.is_some()) {
                    marks.push("red: baseline");
                }
                if marks.is_empty() {
                    self.title.clone()
                } else {
                    format!("{} ({})", self.title, marks.join("; "))
                }
            }
            FigureData::Calibration { mad_x100, .. } => {
                format!("{} (MAD×100 = {mad_x100:.1})", self.title)
            }
            _ => self.title.clone(),
        }
    }

    /// The plotted data as a table (markdown body of the figure; HTML `<details>`).
    pub(super) fn data_table(&self) -> Table {
        match &self.data {
            FigureData::Bars { bars } => {
                let mut t = Table::new(["label", "value", "interval", "baseline"]);
                for b in bars {
                    let (value, ci) = match (&b.error, b.value) {
                        (Some(e), _) => (error_cell(e), String::new()),
                        (None, Some(v)) => (num(v), interval(b.ci, b.method.as_deref())),
                        (None, None) => ("no value".into(), String::new()),
                    };
                    let base = b.baseline.map(num).unwrap_or_default();
                    t = t.row([b.label.clone(), value, ci, base]);
                }
                t
            }
            FigureData::Calibration { points, .. } => {
                let mut t = Table::new([self.x_label.as_str(), self.y_label.as_str(), "n"]);
                for p in points {
                    t = t.row([num(p.expected), num(p.predicted), p.count.to_string()]);
                }
                t
            }
            FigureData::Scatter { points } => {
                let mut t = Table::new([
                    "label",
                    "group",
                    axis(&self.x_label, "x"),
                    axis(&self.y_label, "y"),
                ]);
                for p in points {
                    t = t.row([
                        p.label.clone().unwrap_or_default(),
                        p.group.clone().unwrap_or_default(),
                        num(p.x),
                        num(p.y),
                    ]);
                }
                t
            }
            FigureData::Heatmap {
                rows,
                columns,
                values,
            } => {
                let mut header = vec![axis(&self.y_label, "row").to_owned()];
                header.extend(columns.iter().cloned());
                let mut t = Table::new(header);
                for (r, label) in rows.iter().enumerate() {
                    let mut cells = vec![label.clone()];
                    cells.extend((0..columns.len()).map(|c| {
                        values
                            .get(r)
                            .and_then(|row| row.get(c).copied().flatten())
                            .map(num)
                            .unwrap_or_default()
                    }));
                    t = t.row(cells);
                }
                t
            }
            FigureData::Lines { series } => {
                let mut t =
                    Table::new(["series", axis(&self.x_label, "x"), axis(&self.y_label, "y")]);
                for s in series {
                    for &(x, y) in &s.points {
                        t = t.row([s.name.clone(), num(x), num(y)]);
                    }
                }
                t
            }
        }
    }

    /// Draws the figure as an SVG document (text escaped by plotters).
    ///
    /// # Errors
    ///
    /// [`RunnerError::Report`] when plotters cannot draw it.
    pub fn to_svg(&self) -> Result<String, RunnerError> {
        let mut svg = String::new();
        match &self.data {
            FigureData::Bars { bars } => self.draw_bars(&mut svg, bars)?,
            FigureData::Calibration { points, .. } => self.draw_calibration(&mut svg, points)?,
            FigureData::Scatter { points } => self.draw_scatter(&mut svg, points)?,
            FigureData::Lines { series } => self.draw_lines(&mut svg, series)?,
            FigureData::Heatmap {
                rows,
                columns,
                values,
            } => self.draw_heatmap(&mut svg, rows, columns, values)?,
        }
        Ok(svg)
    }

    fn y_or(&self, lo: f64, hi: f64) -> (f64, f64) {
        self.y_range.unwrap_or_else(|| pad(lo, hi))
    }

    fn draw_bars(&self, svg: &mut String, bars: &[Bar]) -> Result<(), RunnerError> {
        let n = bars.len().max(1);
        let width = (160 + 130 * n).clamp(480, 1600) as u32;
        let finite = |v: &f64| v.is_finite();
        let values = bars.iter().flat_map(|b| {
            [b.value, b.ci.map(|c| c.0), b.ci.map(|c| c.1), b.baseline]
                .into_iter()
                .flatten()
                .filter(finite)
        });
        let (lo, hi) = values.fold((0.0f64, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
        let (lo, hi) = self
            .y_range
            .unwrap_or((lo, if hi > lo { hi * 1.05 } else { 1.0 }));
        let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
        let root = SVGBackend::with_string(svg, (width, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(self.heading(), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(60)
            .y_label_area_size(55)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), lo..hi)
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
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .draw()
            .map_err(plot_err)?;
        let blue = RGBColor(70, 110, 180);
        for (i, b) in bars.iter().enumerate() {
            let x = i as f64;
            if let Some(v) = b.value.filter(finite) {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x - 0.35, lo.max(0.0).min(hi)), (x + 0.35, v)],
                        blue.mix(0.8).filled(),
                    )))
                    .map_err(plot_err)?;
            }
            if let Some((l, h)) = b.ci.filter(|(l, h)| l.is_finite() && h.is_finite()) {
                let whisker = [
                    vec![(x, l), (x, h)],
                    vec![(x - 0.1, l), (x + 0.1, l)],
                    vec![(x - 0.1, h), (x + 0.1, h)],
                ];
                chart
                    .draw_series(
                        whisker
                            .into_iter()
                            .map(|p| PathElement::new(p, BLACK.stroke_width(2))),
                    )
                    .map_err(plot_err)?;
            }
            if let Some(base) = b.baseline.filter(finite) {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x - 0.42, base), (x + 0.42, base)],
                        RED.stroke_width(3),
                    )))
                    .map_err(plot_err)?;
            }
        }
        root.present().map_err(plot_err)
    }

    fn draw_calibration(
        &self,
        svg: &mut String,
        points: &[CalibrationPoint],
    ) -> Result<(), RunnerError> {
        let blue = RGBColor(70, 110, 180);
        let root = SVGBackend::with_string(svg, (480, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(self.heading(), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0f64..1.0, 0.0f64..1.0)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, 0.0), (1.0, 1.0)],
                BLACK.mix(0.4).stroke_width(1),
            )))
            .map_err(plot_err)?;
        let pts: Vec<&CalibrationPoint> = points
            .iter()
            .filter(|p| p.expected.is_finite() && p.predicted.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|p| (p.expected, p.predicted)),
                blue.stroke_width(2),
            ))
            .map_err(plot_err)?;
        chart
            .draw_series(pts.iter().map(|p| {
                let r = (3.0 + (p.count as f64).sqrt()).min(12.0) as i32;
                Circle::new((p.expected, p.predicted), r, blue.filled())
            }))
            .map_err(plot_err)?;
        root.present().map_err(plot_err)
    }

    fn draw_scatter(&self, svg: &mut String, points: &[Point]) -> Result<(), RunnerError> {
        let pts: Vec<&Point> = points
            .iter()
            .filter(|p| p.x.is_finite() && p.y.is_finite())
            .collect();
        let (x0, x1) = pad_range(pts.iter().map(|p| p.x));
        let (y0, y1) = {
            let (l, h) = range(pts.iter().map(|p| p.y));
            self.y_or(l, h)
        };
        let mut groups: Vec<&str> = Vec::new();
        for p in &pts {
            let g = p.group.as_deref().unwrap_or("");
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        let root = SVGBackend::with_string(svg, (640, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(self.heading(), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .draw()
            .map_err(plot_err)?;
        for (gi, g) in groups.iter().enumerate() {
            let color = palette(gi);
            let members: Vec<&&Point> = pts
                .iter()
                .filter(|p| p.group.as_deref().unwrap_or("") == *g)
                .collect();
            let series = chart
                .draw_series(
                    members
                        .iter()
                        .map(|p| Circle::new((p.x, p.y), 5, color.filled())),
                )
                .map_err(plot_err)?;
            if !g.is_empty() {
                series
                    .label(*g)
                    .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
            }
            chart
                .draw_series(members.iter().filter_map(|p| {
                    p.label.as_ref().map(|l| {
                        Text::new(
                            l.clone(),
                            (p.x, p.y),
                            ("sans-serif", 12).into_font().color(&BLACK),
                        )
                    })
                }))
                .map_err(plot_err)?;
        }
        if groups.iter().any(|g| !g.is_empty()) {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK.mix(0.4))
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)
    }

    fn draw_lines(&self, svg: &mut String, series: &[Series]) -> Result<(), RunnerError> {
        let all = || {
            series
                .iter()
                .flat_map(|s| s.points.iter())
                .filter(|(x, y)| x.is_finite() && y.is_finite())
        };
        let (x0, x1) = {
            let (l, h) = range(all().map(|p| p.0));
            if h > l { (l, h) } else { pad(l, h) }
        };
        let (y0, y1) = {
            let (l, h) = range(all().map(|p| p.1));
            self.y_or(l, h)
        };
        let root = SVGBackend::with_string(svg, (720, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(self.heading(), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .draw()
            .map_err(plot_err)?;
        for (i, s) in series.iter().enumerate() {
            let color = palette(i);
            chart
                .draw_series(LineSeries::new(
                    s.points
                        .iter()
                        .copied()
                        .filter(|(x, y)| x.is_finite() && y.is_finite()),
                    color.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(s.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK.mix(0.4))
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)
    }
}

impl Figure {
    fn draw_heatmap(
        &self,
        svg: &mut String,
        rows: &[String],
        columns: &[String],
        values: &[Vec<Option<f64>>],
    ) -> Result<(), RunnerError> {
        let (nr, nc) = (rows.len().max(1), columns.len().max(1));
        let cell = |r: usize, c: usize| values.get(r).and_then(|row| row.get(c).copied().flatten());
        let scale = values
            .iter()
            .flatten()
            .flatten()
            .filter(|v| v.is_finite())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let width = (140 + 90 * nc).clamp(420, 1400) as u32;
        let height = (120 + 44 * nr).clamp(260, 1000) as u32;
        let root = SVGBackend::with_string(svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(self.heading(), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..nc as f64, 0f64..nr as f64)
            .map_err(plot_err)?;
        let label_at = |labels: &[String], x: f64, flip: bool| {
            let i = (x - 0.5).round();
            if (x - 0.5 - i).abs() > 1e-6 || i < 0.0 {
                return String::new();
            }
            let i = i as usize;
            let i = if flip {
                labels.len().wrapping_sub(1 + i)
            } else {
                i
            };
            labels.get(i).cloned().unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(2 * nc + 1)
            .y_labels(2 * nr + 1)
            .x_label_formatter(&|x| label_at(columns, *x, false))
            .y_label_formatter(&|y| label_at(rows, *y, true))
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .draw()
            .map_err(plot_err)?;
        for r in 0..rows.len() {
            for c in 0..columns.len() {
                let y = (rows.len() - 1 - r) as f64;
                let x = c as f64;
                let value = cell(r, c).filter(|v| v.is_finite());
                let color = match value {
                    None => RGBColor(200, 200, 200),
                    Some(v) => {
                        let t = if scale > 0.0 {
                            (v.abs() / scale).min(1.0)
                        } else {
                            0.0
                        };
                        let fade = |full: u8| (255.0 - t * (255.0 - f64::from(full))) as u8;
                        if v >= 0.0 {
                            RGBColor(255, fade(90), fade(80))
                        } else {
                            RGBColor(fade(70), fade(110), 255)
                        }
                    }
                };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x, y), (x + 1.0, y + 1.0)],
                        color.filled(),
                    )))
                    .map_err(plot_err)?;
                if let Some(v) = value {
                    chart
                        .draw_series(std::iter::once(Text::new(
                            format!("{v:+.3}"),
                            (x + 0.3, y + 0.6),
                            ("sans-serif", 13),
                        )))
                        .map_err(plot_err)?;
                }
            }
        }
        root.present().map_err(plot_err)
    }
}

fn plot_err<E: std::fmt::Display>(e: E) -> RunnerError {
    RunnerError::Report(format!("cannot draw plot: {e}"))
}

fn palette(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(70, 110, 180),
        RGBColor(221, 132, 82),
        RGBColor(85, 168, 104),
        RGBColor(196, 78, 82),
        RGBColor(129, 114, 179),
        RGBColor(147, 120, 96),
        RGBColor(218, 139, 195),
        RGBColor(140, 140, 140),
    ];
    COLORS[i % COLORS.len()]
}

/// Min and max of finite values; (0, 1) when there are none.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}

/// The range widened by 5% each side (by 0.5 when it is a single value).
fn pad(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        let m = (hi - lo) * 0.05;
        (lo - m, hi + m)
    } else {
        (lo - 0.5, hi + 0.5)
    }
}

fn pad_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (l, h) = range(values);
    pad(l, h)
}

fn axis<'a>(label: &'a str, default: &'a str) -> &'a str {
    if label.is_empty() { default } else { label }
}

/// A number for a table: integers without decimals, otherwise 3 decimals (scientific when
/// very large or small).
pub(super) fn num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if x.abs() >= 1e5 || x.abs() < 1e-3 {
        format!("{x:.3e}")
    } else {
        format!("{x:.3}")
    }
}

fn interval(ci: Option<(f64, f64)>, method: Option<&str>) -> String {
    match (ci, method) {
        (Some((l, h)), Some(m)) => format!("[{}, {}] {m}", num(l), num(h)),
        (Some((l, h)), None) => format!("[{}, {}]", num(l), num(h)),
        (None, _) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_for_tables() {
        assert_eq!(num(3.0), "3");
        assert_eq!(num(0.12345), "0.123");
        assert_eq!(num(0.00001), "1.000e-5");
        assert_eq!(num(f64::NAN), "NaN");
    }

    #[test]
    fn every_kind_draws_including_degenerate_data() {
        let figs = [
            Figure::bars("b", vec![Bar::new("a", 0.5).ci(0.4, 0.6).baseline(0.3)]),
            Figure::bars("empty", vec![]),
            Figure::bars("failed", vec![Bar::failed("x", "too few")]),
            Figure::scatter("s", vec![Point::new(1.0, 1.0).label("m").group("g")]),
            Figure::scatter("s0", vec![]),
            Figure::lines("l", vec![Series::new("loss", [(0.0, 2.0), (1.0, 1.5)])]),
            Figure::lines("l0", vec![Series::new("one", [(3.0, 3.0)])]),
            Figure::heatmap(
                "h",
                vec!["layer 6".into(), "layer 12".into()],
                vec!["4".into(), "8".into()],
                vec![vec![Some(0.1), Some(-0.2)], vec![None, Some(0.0)]],
            ),
            Figure::heatmap("h0", vec![], vec![], vec![]),
        ];
        for f in figs {
            let svg = f.to_svg().unwrap();
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        }
    }
}
