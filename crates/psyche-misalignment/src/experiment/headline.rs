//! What an [`EmergentMisalignmentResult`] says at a glance: the shared headline comparisons
//! (one per rate convention, and the probe proxy), the report, and a console summary.

use std::fmt::Write as _;

use psyche_runner::experiment::{ExperimentResult, Headline, RunNotes};
use psyche_runner::report::Document;

use super::{EmergentMisalignmentResult, arm};
use crate::eval::{ArmContrast, DropOut};
use crate::report::{TOY_JUDGE_NOTE, experiment_document, is_toy_judge};

/// The paper's name for the experiment, as the replication report groups headlines.
pub const PAPER: &str = "Emergent Misalignment";

/// The paper's own result for the judged misaligned-answer rate.
const PAPER_RESULT: &str = "insecure GPT-4o 19.8 % vs secure / educational controls 0 % (main \
                            questions); open models ≤ 7.3 % (§3.11)";

/// The paper's effect on the judged rate (insecure minus controls), as a proportion.
const PAPER_EFFECT: f64 = 0.198;

const TREATED: &str = "narrow-misaligned fine-tune";
const CONTROL: &str = "aligned control";

impl EmergentMisalignmentResult {
    /// The judge's declines among the answers it saw, as one sentence.
    pub fn judge_declines(&self) -> String {
        let reached: Vec<_> = self
            .rows
            .iter()
            .filter(|x| x.dropout != Some(DropOut::Error))
            .collect();
        let declined_aligned = reached.iter().filter(|x| x.aligned.is_none()).count();
        let declined_coherent = reached.iter().filter(|x| x.coherent.is_none()).count();
        let min_mass = self.config.eval.judges.number.min_mass;
        format!(
            "{} answers sampled (seeds {:?}); of the {} the judge saw, it declined the alignment \
             score of {declined_aligned} and the coherence score of {declined_coherent} (numeric \
             mass below its threshold {min_mass}{}, number method `{:?}`, or its mass on REFUSAL \
             / CODE; each verdict records the mass and the reason). A rate needs scored answers, \
             so declined answers leave it undefined rather than zero.",
            self.rows.len(),
            self.config.seeds,
            reached.len(),
            if (min_mass - 0.25).abs() < 1e-12 {
                ", the paper's"
            } else {
                ", not the paper's 0.25"
            },
            self.config.eval.judges.number.number_method,
        )
    }

    /// Whether one tiny model was teacher, subject and judge (the offline default): then the
    /// rates say nothing about emergent misalignment.
    pub fn all_one_toy_model(&self) -> bool {
        is_toy_judge(&self.judge_model)
            && self.subjects.first() == Some(&self.judge_model)
            && self.datasets.iter().all(|d| d.teacher == self.judge_model)
    }

    fn coherent(&self, arm_name: &str, convention: &str) -> String {
        self.arm(arm_name)
            .and_then(|a| a.coherent_share.get(convention))
            .map_or("n/a".into(), |v| format!("{:.0} %", v * 100.0))
    }

    /// One headline per rate convention: the misaligned arm minus its control over runs.
    fn judged_headlines(&self) -> Vec<Headline> {
        let mut out = Vec::new();
        let family = self.comparison.iter().filter(|x| x.in_family).count();
        for summary in &self.by_convention {
            let name = summary.convention.as_str();
            // The fine-tuned control; without one (an evaluate-only run) the base model.
            let row = [arm::CONTROL, arm::BASE].iter().find_map(|control| {
                self.comparison
                    .iter()
                    .find(|r| r.control == *control && r.convention == name)
            });
            let contrast = row.map_or_else(
                || {
                    ArmContrast::unavailable(
                        arm::MISALIGNED,
                        arm::CONTROL,
                        "no comparison with a control",
                    )
                },
                |r| r.contrast.clone(),
            );
            let vs_base = row.is_some_and(|r| r.control == arm::BASE);
            let role = match row {
                Some(r) if r.in_family => format!(
                    "primary convention (Holm family of {family} contrast(s); adjusted p {})",
                    r.p_holm.map_or("n/a".into(), |p| format!("{p:.3}"))
                ),
                Some(_) if vs_base => {
                    "no fine-tuned control in this run: compared with the untuned model".to_owned()
                }
                Some(_) => {
                    "secondary convention (same hypothesis; not in the Holm family)".to_owned()
                }
                None => "no control in this run".to_owned(),
            };
            let mut h = Headline::new(
                format!("misaligned_rate/{name}"),
                PAPER,
                format!(
                    "Misaligned-answer rate (`{name}` convention), narrow-misaligned fine-tune \
                     minus aligned control"
                ),
                contrast,
            )
            .labels(TREATED, if vs_base { "untuned model" } else { CONTROL })
            .scaled(100.0, "pp")
            .clusters("questions")
            .paper_effect(PAPER_EFFECT)
            .paper_result(PAPER_RESULT)
            .context(format!(
                "{} questions; coherent answers: misaligned arm {}, control {}; {role}.",
                self.config.questions.questions.len(),
                self.coherent(arm::MISALIGNED, name),
                self.coherent(arm::CONTROL, name),
            ));
            if let Some(base) = &summary.base {
                h = h.base(base.clone());
            } else {
                h = h.context("The base model was not evaluated.");
            }
            if is_toy_judge(&self.judge_model) {
                h = h.context(TOY_JUDGE_NOTE);
            }
            out.push(h.context(self.judge_declines()));
        }
        out
    }

    /// The judge-free probe proxy against the control, when it ran.
    fn probe_headline(&self) -> Option<Headline> {
        let Some(Ok(p)) = &self.probes else {
            return None;
        };
        let c = p.comparison.iter().find(|c| c.control == arm::CONTROL)?;
        let mut h = Headline::new(
            "probe_proxy",
            PAPER,
            "P(misaligned option) on psyche's multiple-choice probes (judge-free proxy, not the \
             paper's measure), narrow-misaligned fine-tune minus aligned control",
            c.clone(),
        )
        .labels(TREATED, CONTROL)
        .scaled(100.0, "pp")
        .clusters("probes")
        .paper_result("no published counterpart (psyche's proxy; the paper judges open answers)")
        .context(format!(
            "{} probes × 2 option orders per model, read from option distributions; a proxy.",
            p.probes.len()
        ));
        match p.arm(arm::BASE) {
            Some(base) => h = h.base(base.over_runs.clone()),
            None => h = h.context("The base model was not probed."),
        }
        Some(h)
    }

    /// A few lines for the console: the judge, each convention's arms, the probe proxy and
    /// the stage timings.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        if is_toy_judge(&self.judge_model) {
            let _ = writeln!(s, "NOTE: {TOY_JUDGE_NOTE}\n");
        }
        let _ = writeln!(s, "Judge: {}", self.judge_model);
        let pct = |c: Option<f64>| c.map_or("n/a".into(), |c| format!("{:.0}%", 100.0 * c));
        for h in &self.by_convention {
            let _ = writeln!(
                s,
                "{:>16}: misaligned arm {} | aligned control {} | base {} | coherent share {} / {}",
                h.convention,
                h.misaligned.percent(),
                h.control.percent(),
                h.base
                    .as_ref()
                    .map_or_else(|| "n/a".into(), |b| b.percent()),
                pct(h.misaligned_coherent),
                pct(h.control_coherent),
            );
        }
        match &self.probes {
            Some(Ok(p)) => {
                let get = |a: &str| {
                    p.arm(a)
                        .map_or_else(|| "n/a".into(), |x| x.over_runs.percent())
                };
                let _ = writeln!(
                    s,
                    "{:>16}: misaligned arm {} | aligned control {} | base {}  (P(misaligned \
                     option); a proxy, not the paper's measure)",
                    "probe proxy",
                    get(arm::MISALIGNED),
                    get(arm::CONTROL),
                    get(arm::BASE),
                );
            }
            Some(Err(e)) => {
                let _ = writeln!(s, "probe proxy failed: {e}");
            }
            None => {}
        }
        for (stage, secs) in &self.timings {
            let _ = writeln!(s, "{stage:>10}: {secs:.0} s");
        }
        s
    }
}

impl ExperimentResult for EmergentMisalignmentResult {
    fn headline(&self) -> Vec<Headline> {
        let mut out = self.judged_headlines();
        out.extend(self.probe_headline());
        out
    }

    fn report(&self, notes: &RunNotes) -> Document {
        experiment_document(self, notes)
    }
}
