//! [`Figure`]: bars with CI whiskers, calibration curves, scatter plots and line series,
//! shown as a data table in markdown (drawn to SVG in `draw`).

use psyche_stats::{Calibration, Estimate};
use serde::{Deserialize, Serialize};

use super::document::{Table, error_cell};

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
}

pub(super) fn axis<'a>(label: &'a str, default: &'a str) -> &'a str {
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
