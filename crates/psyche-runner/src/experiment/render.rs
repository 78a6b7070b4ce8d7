//! How a [`Headline`] reads in a table, a sentence and a figure: the same wording in every
//! experiment's report and in a replication document that only knows the headlines.

use psyche_stats::{ArmSummary, Detectable, IntervalVerdict, Stat, t_test_power};

use super::Headline;
use crate::report::{Bar, Table};

/// `+12.5 pp [3.0, 22.0]`, `+12.5 pp (no interval: …)`, or why there is none; `scale`
/// multiplies the values for display.
pub fn stat_cell(stat: &Stat, scale: f64, unit: &str) -> String {
    let unit = spaced(unit);
    match stat {
        Stat::Estimated(e) => format!(
            "{:+.1}{unit} [{:.1}, {:.1}]",
            e.estimate * scale,
            e.ci_low * scale,
            e.ci_high * scale
        ),
        Stat::Point { value, reason } => {
            format!("{:+.1}{unit} (no interval: {reason})", value * scale)
        }
        Stat::Unavailable { reason } => format!("not computed: {reason}"),
    }
}

fn spaced(unit: &str) -> String {
    if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    }
}

impl Headline {
    fn arm(&self, treatment: bool) -> Option<&ArmSummary> {
        self.contrast
            .comparison
            .as_ref()
            .map(|c| if treatment { &c.treatment } else { &c.control })
    }

    /// The difference with its interval, in display units.
    pub fn difference_cell(&self) -> String {
        stat_cell(&self.contrast.difference, self.scale, &self.unit)
    }

    /// One arm's mean with its interval over runs and each run's value:
    /// `31.2 pp [28.0, 34.4] (runs: 30.1, 32.5, 31.0)`.
    pub fn arm_cell(&self, treatment: bool) -> String {
        match self.arm(treatment) {
            None => format!(
                "no value ({})",
                self.contrast.difference.reason().unwrap_or("not computed")
            ),
            Some(a) => {
                let mean = stat_cell(&a.mean, self.scale, &self.unit);
                let runs: Vec<String> = a
                    .per_seed
                    .iter()
                    .map(|s| format!("{:.1}", s.mean * self.scale))
                    .collect();
                format!(
                    "{} (runs: {})",
                    mean.trim_start_matches('+'),
                    runs.join(", ")
                )
            }
        }
    }

    /// The units of the comparison: `3 vs 3 runs (paired), 24 objects`.
    pub fn units_cell(&self) -> String {
        match &self.contrast.comparison {
            Some(c) => {
                let runs = format!(
                    "{} vs {} run(s){}",
                    c.treatment.n_seeds,
                    c.control.n_seeds,
                    if c.paired { " (paired)" } else { "" },
                );
                // A per-run measure (a calibration MAD) has no item clusters to count.
                match c.treatment.n_clusters.max(c.control.n_clusters) {
                    0 => runs,
                    n => format!("{runs}, {n} {}", self.clusters),
                }
            }
            None => "—".to_owned(),
        }
    }

    /// The verdict in words, naming its unit: which arm is above, or a null with the power the
    /// design had at the paper's effect and the smallest effect it detects, or why there is no
    /// run-level verdict; for a comparison marked [`uninformative`](Headline::uninformative),
    /// that and why, whatever the interval.
    pub fn verdict_text(&self) -> String {
        if let Some(why) = &self.uninformative {
            return format!(
                "uninformative: {why} (the interval reads as neither a null nor an effect; {})",
                self.units_cell()
            );
        }
        let unit = spaced(&self.unit);
        let Some(c) = &self.contrast.comparison else {
            return format!(
                "not computed: {}",
                self.contrast.difference.reason().unwrap_or("no comparison")
            );
        };
        match &c.verdict {
            IntervalVerdict::ExcludesZero => {
                let above = self.contrast.difference.value().is_some_and(|d| d > 0.0);
                format!(
                    "{} {} {} (run-level interval excludes 0; {}{})",
                    self.treatment_name(),
                    if above { "above" } else { "below" },
                    self.control_name(),
                    self.units_cell(),
                    c.p_value.map_or(String::new(), |p| format!(", p = {p:.3}"))
                )
            }
            IntervalVerdict::IncludesZero => {
                let mut parts = Vec::new();
                match &c.minimum_detectable_effect {
                    Detectable::Estimated {
                        effect,
                        se,
                        df,
                        alpha,
                        ..
                    } => {
                        if let Some(delta) = self.paper_effect
                            && let Ok(p) = t_test_power(delta, *se, *df, *alpha)
                        {
                            parts.push(format!(
                                "power {p:.2} to detect the paper's {:.1}{unit}",
                                delta * self.scale
                            ));
                        }
                        parts.push(format!(
                            "smallest effect detectable with 80 % power: {:.1}{unit}",
                            effect * self.scale
                        ));
                    }
                    Detectable::Unavailable { reason } => {
                        parts.push(format!("power not computable: {reason}"));
                    }
                }
                parts.push(format!("{} as units", self.units_cell()));
                format!("null at this size ({})", parts.join("; "))
            }
            IntervalVerdict::NotEstimable { reason } => {
                let items = c.item_level.as_ref().map_or(String::new(), |v| {
                    format!(
                        "; item level, these runs only ({} {}): {}",
                        v.n_clusters,
                        self.clusters,
                        stat_cell(&v.difference, self.scale, &self.unit)
                    )
                });
                format!("no run-level verdict: {reason}{items}")
            }
        }
    }

    /// Two bars (treatment, control) with their intervals over runs, labelled `prefix — arm`.
    pub fn bars(&self, prefix: &str) -> Vec<Bar> {
        [true, false]
            .into_iter()
            .map(|treatment| {
                let name = if treatment {
                    self.treatment_name()
                } else {
                    self.control_name()
                };
                let label = format!("{prefix} — {name}");
                match self.arm(treatment).map(|a| &a.mean) {
                    Some(Stat::Estimated(e)) => Bar::new(label, e.estimate * self.scale)
                        .ci(e.ci_low * self.scale, e.ci_high * self.scale)
                        .method(e.method.label()),
                    Some(Stat::Point { value, .. }) => Bar::new(label, value * self.scale),
                    Some(Stat::Unavailable { reason }) => Bar::failed(label, reason),
                    None => Bar::failed(label, "no finished run"),
                }
            })
            .collect()
    }
}

/// The full table of `headlines`: comparison, both arms, difference, units, untrained model,
/// the paper's result, context and verdict — one row each.
pub fn headline_table(headlines: &[Headline]) -> Table {
    let mut table = Table::new([
        "comparison",
        "arm A",
        "arm B",
        "A − B [95 % CI]",
        "units",
        "untrained model",
        "paper",
        "context",
        "verdict",
    ]);
    for h in headlines {
        table = table.row([
            h.comparison.clone(),
            format!("{}: {}", h.treatment_name(), h.arm_cell(true)),
            format!("{}: {}", h.control_name(), h.arm_cell(false)),
            h.difference_cell(),
            h.units_cell(),
            h.base.as_ref().map_or_else(
                || "—".to_owned(),
                |b| {
                    stat_cell(b, h.scale, &h.unit)
                        .trim_start_matches('+')
                        .to_owned()
                },
            ),
            h.paper_result.clone().unwrap_or_else(|| "—".to_owned()),
            if h.context.is_empty() {
                "—".to_owned()
            } else {
                h.context.join(" ")
            },
            h.verdict_text(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use psyche_stats::{ArmContrast, ArmData, ArmOptions};

    fn headline(shift: f64, seeds: u64) -> Headline {
        let mut data = ArmData::new();
        // Runs differ from each other by a run effect of either sign; items share their noise.
        let run_effect = [0.02, -0.015, 0.0];
        for seed in 0..seeds {
            for item in 0..6u64 {
                let noise = 0.01 * (item % 5) as f64;
                let a = 0.4 + shift + run_effect[seed as usize] + noise;
                data.item("a", seed, format!("i{item}"), a);
                data.item("b", seed, format!("i{item}"), 0.4 + noise);
            }
        }
        let contrast = ArmContrast::of(&data, "a", "b", &ArmOptions::new());
        Headline::new("k", "Toy", "a minus b", contrast)
            .scaled(100.0, "pp")
            .labels("arm a", "arm b")
            .paper_effect(0.1)
    }

    #[test]
    fn a_clear_difference_names_the_arm_above_and_its_units() {
        let text = headline(0.2, 3).verdict_text();
        assert!(text.starts_with("arm a above arm b"), "{text}");
        assert!(text.contains("3 vs 3 run(s)"), "{text}");
        assert!(text.contains("items"), "{text}");
    }

    #[test]
    fn a_null_states_the_power_at_the_papers_effect() {
        let text = headline(0.0, 3).verdict_text();
        assert!(text.starts_with("null at this size"), "{text}");
        assert!(text.contains("to detect the paper's 10.0 pp"), "{text}");
    }

    #[test]
    fn one_run_per_arm_gives_no_run_level_verdict() {
        let text = headline(0.2, 1).verdict_text();
        assert!(text.starts_with("no run-level verdict"), "{text}");
        assert!(text.contains("these runs only"), "{text}");
    }

    /// A measure with one value per run (a calibration MAD) has no item clusters: the units
    /// cell names the runs only. Before, it read "3 vs 3 run(s) (paired), 0 runs".
    #[test]
    fn a_per_run_measure_names_no_clusters() {
        let mut data = ArmData::new();
        for seed in 0..3u64 {
            data.seed_value("a", seed, 0.3 + 0.01 * seed as f64);
            data.seed_value("b", seed, 0.2 + 0.02 * seed as f64);
        }
        let contrast = ArmContrast::of(&data, "a", "b", &ArmOptions::new());
        let h = Headline::new("k", "Toy", "a minus b", contrast).clusters("runs");
        assert_eq!(h.units_cell(), "3 vs 3 run(s)");
        assert!(!h.verdict_text().contains("0 runs"), "{}", h.verdict_text());
    }

    #[test]
    fn cells_scale_values_for_display() {
        let h = headline(0.2, 3);
        assert!(
            h.difference_cell().starts_with("+20.2 pp ["),
            "{}",
            h.difference_cell()
        );
        let table = headline_table(&[h]);
        assert_eq!(table.rows.len(), 1);
        assert!(
            table.rows[0][1].starts_with("arm a: "),
            "{:?}",
            table.rows[0]
        );
    }
}
