//! Drawing a [`Figure`] as SVG with plotters: bars with CI whiskers, calibration curves,
//! scatter plots, line series and heatmaps.

use plotters::prelude::*;

use super::figure::{Bar, CalibrationPoint, Figure, FigureData, Point, Series};
use crate::error::RunnerError;

impl Figure {
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
