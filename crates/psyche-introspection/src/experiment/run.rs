//! [`LookingInward::run`]: the stages in order, and the contrasts over runs.

use psyche_core::Sample;

use super::prepare::Ledger;
use super::{LookingInward, LookingInwardResult};
use crate::error::Result;
use crate::scoring::{baseline_contrast, seed_contrast};

impl LookingInward {
    /// Runs every stage and returns the result. A rerun with the same output directory
    /// resumes every collection pass from its run log (a finished pass is read back, not
    /// redone); fine-tunes are reused where the fine-tuner records them
    /// ([`Resumable`](psyche_runner::training::Resumable)).
    ///
    /// The fine-tunes run in stages through
    /// [`train_runs`](psyche_runner::training::train_runs): the persona model (persona
    /// setup), every run's self model, every run's cross model, the behaviour-change models.
    ///
    /// # Errors
    ///
    /// The first failing step's error (runner, model, fine-tuner, template), or
    /// [`IntrospectionError::Config`](crate::IntrospectionError::Config) when a training set
    /// comes out empty.
    pub async fn run(&self) -> Result<LookingInwardResult> {
        let mut ledger = Ledger::default();
        let p = self.prepare()?;
        let all_objects: Vec<Sample> = p
            .train_objects
            .iter()
            .chain(&p.held_objects)
            .cloned()
            .collect();

        let untrained = self.untrained(&p, &all_objects, &mut ledger).await?;
        let second = self
            .second_model(&p, &all_objects, &untrained.behaviour, &mut ledger)
            .await?;
        let selves = self
            .self_models(&p, &untrained.behaviour, &mut ledger)
            .await?;
        let crosses = self
            .cross_models(&p, &all_objects, &second, &selves, &mut ledger)
            .await?;

        let mut seeds = Vec::new();
        let mut pairs = Vec::new();
        for (s, c) in selves.iter().zip(&crosses) {
            let e = self.evaluate(&p, &untrained, s, c, &mut ledger).await?;
            pairs.push((e.result.seed, e.self_items, e.cross_items));
            seeds.push(e.result);
        }
        let runs: Vec<_> = selves.iter().zip(&crosses).collect();
        self.behaviour_changes(&p, &second, &runs, &mut seeds, &mut ledger)
            .await?;

        let stats = &self.config.stats;
        let self_minus_baseline = baseline_contrast(
            &pairs
                .iter()
                .map(|(seed, items, _)| (*seed, items.as_slice()))
                .collect::<Vec<_>>(),
            "self-trained",
            "mode baseline",
            stats,
        );
        let self_minus_cross = seed_contrast(&pairs, "self-trained", "cross-trained", stats);
        Ok(LookingInwardResult {
            subject: self.subject.info(),
            cross_model: second.model_id,
            object_counts: ledger.object_counts,
            training_set: seeds
                .first()
                .map(|s| s.training_set.clone())
                .unwrap_or_default(),
            cross_training_examples: crosses.first().map_or(0, |c| c.examples),
            agreement: second.agreement,
            untrained: untrained.summary,
            calibration_untrained: untrained.calibration,
            entropy_self_prediction_untrained: untrained.entropy_self_prediction,
            self_minus_cross,
            self_minus_cross_note: second.note,
            self_minus_baseline,
            seeds,
            fine_tunes: ledger.fine_tunes,
            timings: ledger.timings,
            warnings: ledger.warnings,
            config: self.config.clone(),
        })
    }
}
