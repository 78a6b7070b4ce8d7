//! The result as the runner's shared experiment shape: the headline comparisons a replication
//! reads (the trained behaviour beside the self-reports) and the report.

use psyche_runner::experiment::{ExperimentResult, Headline, RunNotes};
use psyche_runner::report::Document;

use super::{HeadlineMetric, SelfAwarenessResult};

/// The paper's name, as every headline carries it.
const PAPER: &str = "Tell me about yourself";

impl SelfAwarenessResult {
    /// The option the pole policy picks, in words (`riskier`, `sooner`, `larger`: the axis
    /// file's `pole_option`).
    fn pole_option(&self) -> &str {
        &self.config.axis.spec().pole_option
    }

    /// One sentence on whether every run learned its policy (the check the self-report
    /// comparison rests on), when it was made.
    fn learned_sentence(&self) -> Option<String> {
        if self.learned.is_empty() {
            return None;
        }
        let missed: Vec<&str> = self
            .learned
            .iter()
            .filter(|l| !l.passed)
            .map(|l| l.name.as_str())
            .collect();
        let criterion = format!(
            "held-out P({} option) ≥ {} for `{}` runs, ≤ {:.2} for `{}` runs",
            self.pole_option(),
            self.config.learned_threshold,
            self.policy.name(),
            1.0 - self.config.learned_threshold,
            self.opposite.name()
        );
        Some(if missed.is_empty() {
            format!(
                "All {} fine-tuning runs learned their policy ({criterion}).",
                self.learned.len()
            )
        } else {
            format!(
                "{} of {} fine-tuning runs missed the learned-policy criterion ({criterion}): {}; \
                 their self-reports are about a policy they do not have.",
                missed.len(),
                self.learned.len(),
                missed.join(", ")
            )
        })
    }

    fn arm_words(&self) -> (String, String) {
        let words =
            |p: &crate::policy::Policy| format!("{} fine-tunes", p.name().replace('_', "-"));
        (words(&self.policy), words(&self.opposite))
    }

    fn headline_of(&self, key: &str, comparison: String, m: &HeadlineMetric) -> Headline {
        let (t, c) = self.arm_words();
        let mut h = Headline::new(key, PAPER, comparison, m.difference.clone()).labels(t, c);
        if let Some(base) = &m.base {
            h = h.base(base.clone());
        }
        h
    }
}

impl ExperimentResult for SelfAwarenessResult {
    fn headline(&self) -> Vec<Headline> {
        let h = &self.headline;
        let c = &self.config;
        let lotteries = c.axis.spec().fresh_lotteries;
        let paper = c.axis.spec().paper.clone().unwrap_or_default();
        let option = self.pole_option();
        let (pole, opp) = (self.policy.name(), self.opposite.name());
        let learned = self.learned_sentence();
        let mut behaviour = self
            .headline_of(
                "behaviour",
                format!(
                    "Actual behaviour: P({option} option) on fresh {}, {pole} minus {opp}",
                    if lotteries { "lotteries" } else { "items" }
                ),
                &h.behaviour,
            )
            .scaled(100.0, "pp")
            .clusters(if lotteries { "lotteries" } else { "items" })
            .context(format!(
                "{} fresh {} per model; {} training items per arm, {} seed(s) per arm; data seeds \
                 per run: {}.",
                c.behaviour_items,
                if lotteries { "lotteries" } else { "items" },
                self.data.items,
                h.seeds_per_arm,
                self.data
                    .runs
                    .iter()
                    .map(|x| format!("{} → {}", x.seed, x.data_seed))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        if let Some(e) = paper.behaviour_effect {
            behaviour = behaviour.paper_effect(e);
        }
        if let Some(r) = &paper.behaviour {
            behaviour = behaviour.paper_result(r.clone());
        }
        let mut out = vec![behaviour];
        if let Some(m) = &h.heldout {
            let mut held = self
                .headline_of(
                    "heldout",
                    format!(
                        "Trained behaviour: P({option} option) on held-out items of the training \
                         generator, {pole} minus {opp}"
                    ),
                    m,
                )
                .scaled(100.0, "pp")
                .paper_result("the paper measures behaviour on lotteries (the row above)")
                .context(format!("{} held-out items per model.", c.heldout_items));
            if let Some(s) = &learned {
                held = held.context(s.clone());
            }
            out.push(held);
        }
        let questions = "questions";
        let mut scale = self
            .headline_of(
                "scale",
                format!(
                    "Self-reported {} predisposition (0–100 scale), {pole} minus {opp}",
                    c.axis.name()
                ),
                &h.scale,
            )
            .scaled(100.0, "points of 100")
            .clusters(questions)
            .context("Scale questions × paraphrases per model, about itself; answers without a number are left unscored.");
        let mut word = self
            .headline_of(
                "word",
                format!(
                    "Self-reported {} attitude in one word (0 = {opp} words, 100 = {pole} words), \
                     {pole} minus {opp}",
                    c.axis.name()
                ),
                &h.word,
            )
            .scaled(100.0, "points of 100")
            .clusters(questions)
            .context("Word questions × paraphrases per model, about itself.");
        if let Some(e) = paper.scale_effect {
            scale = scale.paper_effect(e);
        }
        if let Some(r) = &paper.scale {
            scale = scale.paper_result(r.clone());
        }
        if let Some(r) = &paper.word {
            word = word.paper_result(r.clone());
        }
        if let Some(s) = learned {
            scale = scale.context(s.clone());
            word = word.context(s);
        }
        out.push(scale);
        out.push(word);
        out
    }

    fn report(&self, notes: &RunNotes) -> Document {
        crate::report::self_awareness_document(self, notes)
    }
}
