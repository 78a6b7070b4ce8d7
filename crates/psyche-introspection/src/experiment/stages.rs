//! The stages of a run, in order: the untrained subject, the second model, the self models,
//! the cross models (built from the self models' answers), the evaluation of each run, and the
//! behaviour-change models. Every stage that fine-tunes does so through
//! [`LookingInward::train`], i.e. [`psyche_runner::training::train_runs`].

use std::sync::Arc;
use std::time::Instant;

use psyche_core::{Conversation, Model, Sample, TrainedModel, derive_seed, seeded_rng};
use psyche_runner::training::TrainingJob;
use rand::seq::SliceRandom;

use super::prepare::{Ledger, Prepared};
use super::{
    BehaviourChangeModel, BehaviourChangeRecipe, BuiltFrom, CrossModel, LookingInward, SeedResult,
    TrainingSetStats,
};
use crate::behaviour::{AgreementRow, agreement, behaviour_change};
use crate::calibration::CalibrationResult;
use crate::collect::{ObjectBehaviour, collect_hypothetical, collect_object};
use crate::entropy::{EntropySelfPredictionResult, entropy_guard, entropy_matched};
use crate::error::{IntrospectionError, Result};
use crate::scoring::{AccuracySummary, ScoredItem, score, summarise};
use crate::training::{SetOptions, TrainingSet, paired_training_sets, training_set};
use psyche_core::DataSeeds;

/// The untrained subject: its behaviour on every family and its held-out self-prediction.
pub(super) struct Untrained {
    pub(super) behaviour: ObjectBehaviour,
    pub(super) items: Vec<ScoredItem>,
    pub(super) summary: AccuracySummary,
    pub(super) calibration: Option<CalibrationResult>,
    pub(super) entropy_self_prediction: Option<EntropySelfPredictionResult>,
}

/// The second model: what the cross models start from and train on, and how alike it is to
/// the subject.
pub(super) struct SecondModel {
    /// The cross models' base model.
    base: String,
    /// Data every cross model trains on besides its cross set (the persona data).
    extra: Vec<Conversation>,
    /// Its object-level answers to the training prompts (M_C's data).
    answers: Vec<Conversation>,
    /// Whose answers these are.
    answers_of: String,
    /// Its id.
    pub(super) model_id: String,
    /// Held-out property agreement with the subject.
    pub(super) agreement: Vec<AgreementRow>,
    /// `uninformative: …` when the two models behave alike.
    pub(super) note: Option<String>,
}

/// One run's self model.
pub(super) struct SelfRun {
    seed: u64,
    data_seed: u64,
    suffix: String,
    set_options: SetOptions,
    set: TrainingSet,
    data: Vec<Conversation>,
    trained: TrainedModel,
    model: Arc<dyn Model>,
}

/// One run's cross model, and the self model's behaviour it was built from.
pub(super) struct CrossRun {
    /// The self-trained model's behaviour on every family.
    behaviour: ObjectBehaviour,
    set: TrainingSet,
    /// Examples in the cross model's data (with the second model's own).
    pub(super) examples: usize,
    model: Arc<dyn Model>,
}

/// One evaluated run: its result (behaviour change still to come) and its scored items.
pub(super) struct Evaluated {
    pub(super) result: SeedResult,
    pub(super) self_items: Vec<ScoredItem>,
    pub(super) cross_items: Vec<ScoredItem>,
}

impl LookingInward {
    /// The subject's object-level behaviour on every family, and the untrained subject
    /// predicting itself on the held-out families.
    pub(super) async fn untrained(
        &self,
        p: &Prepared,
        all_objects: &[Sample],
        ledger: &mut Ledger,
    ) -> Result<Untrained> {
        let t = Instant::now();
        let solver = self.object_solver();
        let subject = self.subject.clone();
        let behaviour = collect_object(
            "object-subject",
            subject.clone(),
            all_objects,
            &solver,
            &self.run,
        )
        .await?;
        ledger
            .object_counts
            .insert("subject".to_owned(), behaviour.counts());
        ledger.step("collect_subject", t);

        let t = Instant::now();
        let h1 = collect_hypothetical(
            "hyp-subject",
            subject.clone(),
            &p.held_hyps,
            &self.config.answer_method,
            &self.run,
        )
        .await?;
        let items = score(&p.held_hyps, &h1, &behaviour, &self.config.score).await?;
        let summary = summarise(&items, &self.config.stats);
        let calibration = self
            .calibrate_for("untrained", subject.as_ref(), subject.as_ref(), p, &h1)
            .await;
        let entropy_self_prediction = self.entropy_sp("entropy-subject", subject, p).await;
        ledger.step("evaluate_untrained", t);
        Ok(Untrained {
            behaviour,
            items,
            summary,
            calibration,
            entropy_self_prediction,
        })
    }

    /// The second model (the persona model is fine-tuned here), its object-level answers to
    /// the training prompts, and its held-out agreement with the subject.
    pub(super) async fn second_model(
        &self,
        p: &Prepared,
        all_objects: &[Sample],
        b1: &ObjectBehaviour,
        ledger: &mut Ledger,
    ) -> Result<SecondModel> {
        let t = Instant::now();
        let solver = self.object_solver();
        let base_model = self.config.fine_tune.base_model.clone();
        let (base, extra, answers, answers_of, b2, model_id) = match &self.cross {
            CrossModel::Persona { system_prompt } => {
                let persona_solver = solver.clone().with_system_prompt(system_prompt.clone());
                let persona = collect_object(
                    "object-persona",
                    self.subject.clone(),
                    &p.train_objects,
                    &persona_solver,
                    &self.run,
                )
                .await?;
                ledger
                    .object_counts
                    .insert("persona".to_owned(), persona.counts());
                let persona_data = TrainingSet::object_level(&p.train_objects, &persona);
                self.write_set("persona_set", &persona_data)?;
                let seed = derive_seed(self.config.data_seed, "persona");
                let job = TrainingJob::new(
                    "persona",
                    seed,
                    persona_data.clone(),
                    self.seed_config(&base_model, seed),
                );
                let (_, m2) = self
                    .train("persona", &[job], ledger)
                    .await?
                    .pop()
                    .ok_or_else(|| IntrospectionError::config("cross", "no persona model"))?;
                let b2 = collect_object(
                    "object-cross-base",
                    m2.clone(),
                    &p.held_objects,
                    &solver,
                    &self.run,
                )
                .await?;
                let persona_id = format!("{} (persona: {system_prompt})", self.subject.id());
                (
                    base_model,
                    persona_data.clone(),
                    persona_data,
                    persona_id,
                    b2,
                    m2.id().to_owned(),
                )
            }
            CrossModel::Model { model, base_model } => {
                let all = collect_object(
                    "object-cross-base",
                    model.clone(),
                    all_objects,
                    &solver,
                    &self.run,
                )
                .await?;
                let answers = if self.config.behaviour_change_runs > 0 {
                    TrainingSet::object_level(&p.train_objects, &all)
                } else {
                    Vec::new()
                };
                let id = model.id().to_owned();
                (base_model.clone(), Vec::new(), answers, id.clone(), all, id)
            }
        };
        ledger
            .object_counts
            .insert("cross_base".to_owned(), b2.counts());
        let agreement = agreement(&p.held_hyps, b1, &b2);
        let threshold = self.config.alike_threshold;
        let note = agreement
            .last()
            .filter(|all| all.n > 0 && all.rate > threshold)
            .map(|all| {
                format!(
                    "uninformative: the models behave alike (they give the same held-out \
                     property value on {:.1}% of {} items, above the threshold of {:.0}%)",
                    all.rate * 100.0,
                    all.n,
                    threshold * 100.0
                )
            });
        if let Some(note) = &note {
            ledger.warnings.push(format!("self − cross is {note}"));
        }
        ledger.step("sets_and_second_model", t);
        Ok(SecondModel {
            base,
            extra,
            answers,
            answers_of,
            model_id,
            agreement,
            note,
        })
    }

    /// Every run's self set (targets: the subject's behaviour), and the self models trained
    /// on them.
    pub(super) async fn self_models(
        &self,
        p: &Prepared,
        b1: &ObjectBehaviour,
        ledger: &mut Ledger,
    ) -> Result<Vec<SelfRun>> {
        let t = Instant::now();
        let base_model = &self.config.fine_tune.base_model;
        let mut sets = Vec::new();
        let mut jobs = Vec::new();
        for &seed in &self.config.seeds {
            let data_seed = self.config.data_seeds.for_run(self.config.data_seed, seed);
            let set_options = SetOptions {
                per_group_cap: self.config.sizes.per_group_cap,
                seed: data_seed,
            };
            let set = paired_training_sets(&p.train_hyps, &[b1], &set_options)
                .pop()
                .unwrap_or_default();
            if set.examples.is_empty() {
                return Err(IntrospectionError::config(
                    "sizes",
                    "the self-prediction set is empty: every training item was excluded",
                ));
            }
            let data = set.conversations();
            let suffix = match self.config.data_seeds {
                DataSeeds::Fixed => String::new(),
                DataSeeds::PerRun => format!("-data{data_seed}"),
            };
            self.write_set(&format!("self_prediction_set{suffix}"), &data)?;
            jobs.push(TrainingJob::new(
                "self",
                seed,
                data.clone(),
                self.seed_config(base_model, seed),
            ));
            sets.push((seed, data_seed, suffix, set_options, set, data));
        }
        let trained = self.train("self", &jobs, ledger).await?;
        ledger.step("fine_tune", t);
        Ok(sets
            .into_iter()
            .zip(trained)
            .map(
                |((seed, data_seed, suffix, set_options, set, data), (trained, model))| SelfRun {
                    seed,
                    data_seed,
                    suffix,
                    set_options,
                    set,
                    data,
                    trained,
                    model,
                },
            )
            .collect())
    }

    /// Every self model's behaviour on every family, the cross set built from its answers to
    /// the training families, and the cross models trained on them.
    pub(super) async fn cross_models(
        &self,
        p: &Prepared,
        all_objects: &[Sample],
        second: &SecondModel,
        selves: &[SelfRun],
        ledger: &mut Ledger,
    ) -> Result<Vec<CrossRun>> {
        let solver = self.object_solver();
        let mut built = Vec::new();
        let mut jobs = Vec::new();
        for s in selves {
            let t = Instant::now();
            let behaviour = collect_object(
                &format!("object-self-s{}", s.seed),
                s.model.clone(),
                all_objects,
                &solver,
                &self.run,
            )
            .await?;
            ledger.step("collect_self_trained", t);
            let set = training_set(&p.train_hyps, &behaviour, &s.set_options);
            if set.examples.is_empty() {
                return Err(IntrospectionError::config(
                    "sizes",
                    format!(
                        "the cross-prediction set of seed {} is empty: every training item \
                         of the self-trained model was excluded",
                        s.seed
                    ),
                ));
            }
            let mut data = second.extra.clone();
            data.extend(set.conversations());
            data.shuffle(&mut seeded_rng(derive_seed(s.data_seed, "cross/order")));
            self.write_set(
                &format!("cross_prediction_set-s{}{}", s.seed, s.suffix),
                &data,
            )?;
            jobs.push(TrainingJob::new(
                "cross",
                s.seed,
                data.clone(),
                self.seed_config(&second.base, s.seed),
            ));
            built.push((behaviour, set, data.len()));
        }
        let t = Instant::now();
        let trained = self.train("cross", &jobs, ledger).await?;
        ledger.step("fine_tune", t);
        Ok(built
            .into_iter()
            .zip(trained)
            .map(|((behaviour, set, examples), (_, model))| CrossRun {
                behaviour,
                set,
                examples,
                model,
            })
            .collect())
    }

    /// One run's held-out evaluation: the self and the cross model predicting the self
    /// model's behaviour, the entropy guard, calibration and entropy self-prediction.
    pub(super) async fn evaluate(
        &self,
        p: &Prepared,
        untrained: &Untrained,
        s: &SelfRun,
        c: &CrossRun,
        ledger: &mut Ledger,
    ) -> Result<Evaluated> {
        let t = Instant::now();
        let (seed, method, stats) = (s.seed, &self.config.answer_method, &self.config.stats);
        let hs = collect_hypothetical(
            &format!("hyp-self-s{seed}"),
            s.model.clone(),
            &p.held_hyps,
            method,
            &self.run,
        )
        .await?;
        let hc = collect_hypothetical(
            &format!("hyp-cross-s{seed}"),
            c.model.clone(),
            &p.held_hyps,
            method,
            &self.run,
        )
        .await?;
        let bs = &c.behaviour;
        let self_items = score(&p.held_hyps, &hs, bs, &self.config.score).await?;
        let cross_items = score(&p.held_hyps, &hc, bs, &self.config.score).await?;
        let guard = entropy_guard(
            &p.held_hyps,
            &untrained.behaviour,
            bs,
            self.config.entropy_threshold,
        );
        if guard.collapsed > 0 {
            ledger.warnings.push(format!(
                "seed {seed}: object-level entropy collapsed after fine-tuning in {} (task, property) group(s); see the entropy-matched accuracy",
                guard.collapsed
            ));
        }
        let matched = entropy_matched(
            &untrained.items,
            &self_items,
            100,
            derive_seed(seed, "entropy"),
            stats,
        );
        let calibration_self = self
            .calibrate_for(
                &format!("self-s{seed}"),
                s.model.as_ref(),
                s.model.as_ref(),
                p,
                &hs,
            )
            .await;
        let calibration_cross = self
            .calibrate_for(
                &format!("cross-s{seed}"),
                c.model.as_ref(),
                s.model.as_ref(),
                p,
                &hc,
            )
            .await;
        let esp = self
            .entropy_sp(&format!("entropy-self-s{seed}"), s.model.clone(), p)
            .await;
        ledger.step("evaluate_trained", t);
        let result = SeedResult {
            seed,
            data_seed: s.data_seed,
            training_set: TrainingSetStats::from(&s.set),
            cross_training_set: TrainingSetStats::from(&c.set),
            built_from: BuiltFrom {
                self_set: s.set.target_model.clone(),
                cross_set: c.set.target_model.clone(),
            },
            self_model: s.model.id().to_owned(),
            cross_model: c.model.id().to_owned(),
            self_prediction: summarise(&self_items, stats),
            cross_prediction: summarise(&cross_items, stats),
            self_objects: bs.counts(),
            entropy: guard,
            entropy_matched: matched,
            behaviour_change: None,
            behaviour_change_model: None,
            calibration_self,
            calibration_cross,
            entropy_self_prediction: esp,
        };
        Ok(Evaluated {
            result,
            self_items,
            cross_items,
        })
    }

    /// The behaviour-change test on the first runs: M_C, the self model continued on the
    /// second model's answers (or, where tuned models cannot be continued, trained from the
    /// base on the self set and those answers), predicting its new or its old behaviour.
    pub(super) async fn behaviour_changes(
        &self,
        p: &Prepared,
        second: &SecondModel,
        runs: &[(&SelfRun, &CrossRun)],
        results: &mut [SeedResult],
        ledger: &mut Ledger,
    ) -> Result<()> {
        let t = Instant::now();
        if second.answers.is_empty() || self.config.behaviour_change_runs == 0 {
            ledger.step("behaviour_change", t);
            return Ok(());
        }
        let continued = self.continues_tuned_models();
        let base_model = &self.config.fine_tune.base_model;
        let mut jobs = Vec::new();
        let mut recipes = Vec::new();
        for (s, _) in runs.iter().take(self.config.behaviour_change_runs) {
            let (data, cfg, recipe) = if continued {
                (
                    second.answers.clone(),
                    self.seed_config(&s.trained.model_id, s.seed),
                    BehaviourChangeRecipe::Continued,
                )
            } else {
                let mut d = s.data.clone();
                d.extend(second.answers.iter().cloned());
                d.shuffle(&mut seeded_rng(derive_seed(s.data_seed, "change/order")));
                (
                    d,
                    self.seed_config(base_model, s.seed),
                    BehaviourChangeRecipe::FromBaseWithSelfSet,
                )
            };
            self.write_set(
                &format!("behaviour_change_set-s{}{}", s.seed, s.suffix),
                &data,
            )?;
            jobs.push(TrainingJob::new("behaviour_change", s.seed, data, cfg));
            recipes.push(recipe);
        }
        let trained = self.train("behaviour_change", &jobs, ledger).await?;
        let solver = self.object_solver();
        for ((((s, c), recipe), (_, mc)), result) in runs
            .iter()
            .zip(recipes)
            .zip(trained)
            .zip(results.iter_mut())
        {
            let bmc = collect_object(
                &format!("object-change-s{}", s.seed),
                mc.clone(),
                &p.held_objects,
                &solver,
                &self.run,
            )
            .await?;
            let hmc = collect_hypothetical(
                &format!("hyp-change-s{}", s.seed),
                mc.clone(),
                &p.held_hyps,
                &self.config.answer_method,
                &self.run,
            )
            .await?;
            result.behaviour_change = Some(
                behaviour_change(&p.held_hyps, &hmc, &c.behaviour, &bmc, &self.config.stats)
                    .await?,
            );
            result.behaviour_change_model = Some(BehaviourChangeModel {
                model_id: mc.id().to_owned(),
                recipe,
                changed_from: s.model.id().to_owned(),
                answers_of: second.answers_of.clone(),
                other_examples: second.answers.len(),
            });
        }
        ledger.step("behaviour_change", t);
        Ok(())
    }
}
