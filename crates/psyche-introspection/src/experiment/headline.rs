//! [`LookingInwardResult`] as a shared [`ExperimentResult`]: the comparisons the replication
//! report shows (with the paper's numbers, baselines and caveats), and the report.

use psyche_runner::experiment::{ExperimentResult, Headline, RunNotes};
use psyche_runner::report::Document;
use psyche_stats::{ArmContrast, ArmData, ArmOptions, Stat};

use super::{LookingInwardResult, PAPER};
use crate::report::signed;
use crate::summary::LookingInwardSummary;

impl ExperimentResult for LookingInwardResult {
    /// Self − cross on the held-out families, self vs its mode baseline, calibration (cross −
    /// self MAD) and the behaviour-change test, each with the paper's numbers (§1.14 of the
    /// digest's numbering: the paper's main results).
    fn headline(&self) -> Vec<Headline> {
        let h = LookingInwardSummary::of(self);
        vec![
            self_minus_cross(self, &h),
            self_minus_baseline(self, &h),
            calibration(self, &h),
            behaviour_change(self),
        ]
    }

    fn report(&self, notes: &RunNotes) -> Document {
        self.document(notes)
    }
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

fn self_minus_cross(r: &LookingInwardResult, h: &LookingInwardSummary) -> Headline {
    let c = &h.self_minus_cross;
    let mut headline = Headline::new(
        "self_minus_cross",
        PAPER,
        "Self- minus cross-prediction accuracy, held-out families",
        c.clone(),
    )
    .labels(
        "self-trained predicting itself",
        "cross-trained predicting the self-trained model",
    )
    .scaled(100.0, "pp")
    .clusters("objects")
    .paper_effect(0.128)
    .paper_result(
        "GPT-4o predicting itself 49.4 % vs Llama-70B fine-tuned to predict GPT-4o 36.6 % \
         (+12.8 pp); Llama-70B itself 48.5 % vs cross 31.8 % (§1.14)",
    )
    .base(h.untrained.ci.clone())
    .context(format!(
        "{} / {} scored items (self / cross, all runs); second model: {}.",
        h.self_prediction.n, h.cross_prediction.n, h.cross_model
    ))
    .context(format!(
        "Mode baseline on the same items: self {}, cross {}; the untrained subject scores {} \
         against its baseline {}.",
        pct(h.self_prediction.baseline),
        pct(h.cross_prediction.baseline),
        pct(h.untrained.accuracy),
        pct(h.untrained.baseline)
    ));
    if let Some(note) = &h.self_minus_cross_note {
        headline = headline.context(format!("Self − cross is {note}."));
        let why = note.strip_prefix("uninformative: ").unwrap_or(note);
        headline = headline.uninformative(why);
    }
    if let Some(view) = c.comparison.as_ref().and_then(|x| x.item_level.as_ref()) {
        headline = headline.context(format!(
            "At the item level ({}; {} objects): {}{}.",
            view.scope,
            view.n_clusters,
            signed(&view.difference),
            view.p_value
                .map_or(String::new(), |p| format!(", p = {p:.3}"))
        ));
    }
    if let Some(a) = h.agreement {
        headline = headline.context(format!(
            "The two models' held-out properties agree on {} of items (the lower, the more \
             room for a self advantage).",
            pct(a)
        ));
    }
    headline.context(format!(
        "Hypothetical answers read with the `{}` method, compliance rule `{}`; {}.",
        h.answer_method,
        h.compliance_rule,
        r.seeds
            .iter()
            .map(|s| format!("run {}: data seed {}", s.seed, s.data_seed))
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

fn self_minus_baseline(r: &LookingInwardResult, h: &LookingInwardSummary) -> Headline {
    Headline::new(
        "self_minus_baseline",
        PAPER,
        "Self-prediction accuracy minus its mode baseline",
        h.self_minus_baseline.clone(),
    )
    .labels("self-trained", "mode baseline, same items")
    .scaled(100.0, "pp")
    .clusters("objects")
    .paper_effect(0.494 - 0.283)
    .paper_result("GPT-4o 49.4 % vs mode baseline 28.3 %; Llama-70B 48.5 % vs 36.1 % (§1.14)")
    .base(r.untrained.micro.ci.clone())
    .context(format!(
        "{} scored items (all runs); the mode baseline (always the most common value of each \
         task and property) is the control arm. Untrained subject: {} vs its baseline {} \
         (accuracy − baseline {}).",
        h.self_prediction.n,
        pct(h.untrained.accuracy),
        pct(h.untrained.baseline),
        signed(&r.untrained.micro.over_baseline)
    ))
}

fn calibration(r: &LookingInwardResult, h: &LookingInwardSummary) -> Headline {
    let m = &h.calibration_mad;
    let base = m.untrained.map_or_else(
        || Stat::unavailable("the untrained subject's calibration was not computed"),
        |v| Stat::point(v, "one model on one item set"),
    );
    let mut headline = Headline::new(
        "calibration_cross_minus_self",
        PAPER,
        format!(
            "Calibration MAD × 100 ({}), cross-trained minus self-trained (lower is better \
             calibrated)",
            m.property
        ),
        h.calibration_cross_minus_self.clone(),
    )
    .labels("cross-trained", "self-trained")
    .scaled(1.0, "MAD points")
    .clusters("runs")
    .paper_effect(21.3 - 8.7)
    .paper_result(
        "Llama-70B, animals / second character: untrained 23.0, self-trained 8.7, \
         cross-trained 21.3 (§1.14)",
    )
    .base(base)
    .context(format!(
        "{} calibration items of `{}`; untrained subject: MAD {}.",
        r.config.sizes.calibration_items,
        r.config.calibration_family,
        m.untrained
            .map_or("not computed".to_owned(), |v| format!("{v:.1}"))
    ));
    for e in &m.errors {
        headline = headline.context(format!("Calibration: {e}."));
    }
    headline
}

/// M_C predicting its new behaviour minus its old, over the runs that had the test (paired by
/// run; the run is the unit).
fn behaviour_change(r: &LookingInwardResult) -> Headline {
    let (new, old) = (
        "predicting its new behaviour",
        "predicting its old behaviour",
    );
    let mut data = ArmData::new();
    let mut context = Vec::new();
    for s in &r.seeds {
        if let Some(b) = &s.behaviour_change {
            data.seed_value(new, s.seed, b.predicting_new.micro.accuracy)
                .seed_value(old, s.seed, b.predicting_old.micro.accuracy);
            context.push(format!(
                "Run {}: {} of {} comparable held-out items changed; new {} (n {}) vs old {} \
                 (n {}), item-level new − old {}.",
                s.seed,
                b.shifted_items,
                b.comparable_items,
                pct(b.predicting_new.micro.accuracy),
                b.predicting_new.micro.n,
                pct(b.predicting_old.micro.accuracy),
                b.predicting_old.micro.n,
                signed(&b.new_minus_old)
            ));
        }
    }
    let contrast = if data.is_empty() {
        ArmContrast::unavailable(new, old, "no run had the behaviour-change test")
    } else {
        ArmContrast::of(
            &data,
            new,
            old,
            &ArmOptions::new()
                .level(r.config.stats.level)
                .paired(true)
                .bounds(0.0, 1.0),
        )
    };
    let mut headline = Headline::new(
        "behaviour_change_new_minus_old",
        PAPER,
        "Behaviour change: M_C predicting its new minus its old behaviour, items whose property \
         changed",
        contrast,
    )
    .scaled(100.0, "pp")
    .clusters("runs")
    .paper_effect(0.354 - 0.217)
    .paper_result(
        "GPT-4o fine-tuned on another model's answers predicts its new behaviour 35.4 % vs its \
         old 21.7 % (property average, p < 0.01)",
    );
    for c in context {
        headline = headline.context(c);
    }
    headline
}
