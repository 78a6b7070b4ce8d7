//! The stages of [`run_injection`](super::run_injection): the no-injection control, the grid
//! of layers × strengths, the held-out choice of a cell, and identification and judged replies
//! at that cell on the report half of the concepts.

use futures::StreamExt;
use psyche_core::{Conversation, Model, OptionQuery, Sample, Steering, derive_seed, seeded_rng};
use psyche_stats::{mean_ci, paired_difference};
use rand::seq::SliceRandom;

use super::concepts::{ConceptSet, ConceptVectors, norm};
use super::judge::{coherent, concept_mention, detection_claim};
use super::run::{
    Cell, ConceptCell, Condition, HeldOut, Identification, InjectionConfig, InjectionJudges, Reply,
    coherent_share, p_yes, random_vector, trial, vector_of,
};
use crate::{IntrospectionError, Result};

/// One injected-thoughts run: the model, the concepts, the settings and the concept vectors.
pub(super) struct Trials<'a> {
    pub(super) model: &'a dyn Model,
    pub(super) set: &'a ConceptSet,
    pub(super) cfg: &'a InjectionConfig,
    pub(super) vectors: &'a ConceptVectors,
}

impl Trials<'_> {
    fn detect_conv(&self, i: usize) -> Conversation {
        let p = &self.cfg.prompts;
        p.conversation(trial(&p.detect, i))
    }

    fn describe_conv(&self, i: usize) -> Conversation {
        let p = &self.cfg.prompts;
        p.conversation(trial(&p.describe, i))
    }

    /// A random vector of `v`'s norm, seeded per concept and layer.
    fn random_of(&self, concept: &str, layer: usize, v: &[f32]) -> Vec<f32> {
        random_vector(
            v.len(),
            norm(v),
            derive_seed(self.cfg.seed, &format!("random/{concept}/{layer}")),
        )
    }

    fn steer(&self, layer: usize, v: Vec<f32>, strength: f32) -> Steering {
        Steering::new(layer, v, strength).from(self.cfg.from())
    }

    /// P(yes) of every concept's detection trial without injection.
    pub(super) async fn control(&self) -> Result<Vec<f64>> {
        futures::future::try_join_all(
            (0..self.set.concepts.len())
                .map(|i| async move { p_yes(self.model, &self.detect_conv(i)).await }),
        )
        .await
    }

    /// Every (layer, strength) cell: P(yes) under each concept's vector and under a random
    /// vector of the same norm, and coherence samples on the first concepts.
    pub(super) async fn grid(&self, control: &[f64]) -> Result<Vec<Cell>> {
        let (set, cfg) = (self.set, self.cfg);
        let n = set.concepts.len();
        let mut grid = Vec::new();
        for &layer in &cfg.layers {
            for &strength in &cfg.strengths {
                let vectors = self.vectors;
                let results: Vec<Result<(ConceptCell, (usize, usize))>> =
                    futures::stream::iter(set.concepts.iter().enumerate())
                        .map(|(i, concept)| async move {
                            let v = vector_of(vectors, concept, layer)?;
                            let r = self.random_of(concept, layer, &v);
                            let inj = self.model.steered(&self.steer(layer, v, strength))?;
                            let rnd = self.model.steered(&self.steer(layer, r, strength))?;
                            let conv = self.detect_conv(i);
                            let (injected, random) =
                                futures::try_join!(p_yes(&*inj, &conv), p_yes(&*rnd, &conv))?;
                            let coh = if i < cfg.coherence_concepts {
                                let seed = derive_seed(cfg.seed, &format!("coherence/{concept}"));
                                coherent_share(&*inj, &self.describe_conv(i), cfg, seed).await?
                            } else {
                                (0, 0)
                            };
                            Ok::<_, IntrospectionError>((
                                ConceptCell {
                                    concept: concept.clone(),
                                    injected,
                                    random,
                                },
                                coh,
                            ))
                        })
                        .buffered(cfg.concurrency)
                        .collect()
                        .await;
                let mut concepts = Vec::with_capacity(n);
                let (mut ok, mut total) = (0, 0);
                for r in results {
                    let (c, (o, t)) = r?;
                    concepts.push(c);
                    ok += o;
                    total += t;
                }
                let inj: Vec<f64> = concepts.iter().map(|c| c.injected).collect();
                let rnd: Vec<f64> = concepts.iter().map(|c| c.random).collect();
                let cell = Cell {
                    layer,
                    strength,
                    shift: paired_difference(&inj, control, cfg.level)?,
                    specific: paired_difference(&inj, &rnd, cfg.level)?,
                    concepts,
                    coherence: (total > 0).then(|| ok as f64 / total as f64),
                    coherence_replies: total,
                };
                tracing::info!(
                    layer,
                    strength,
                    shift = cell.shift.estimate.estimate,
                    specific = cell.specific.estimate.estimate,
                    coherence = ?cell.coherence,
                    "injected-thoughts cell"
                );
                grid.push(cell);
            }
        }
        Ok(grid)
    }

    /// The cell with the largest mean shift on one half of the concepts (the selection half),
    /// reported on the other half.
    pub(super) fn choose_cell(
        &self,
        grid: &[Cell],
        control: &[f64],
    ) -> Result<(HeldOut, Vec<usize>)> {
        let (set, cfg) = (self.set, self.cfg);
        let n = set.concepts.len();
        // Held-out choice of the cell.
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut seeded_rng(derive_seed(cfg.seed, "split")));
        let (sel, rep) = order.split_at(n / 2);
        let (mut sel, mut rep) = (sel.to_vec(), rep.to_vec());
        sel.sort_unstable();
        rep.sort_unstable();
        let mean_shift = |cell: &Cell, idx: &[usize]| {
            idx.iter()
                .map(|&i| cell.concepts[i].injected - control[i])
                .sum::<f64>()
                / idx.len() as f64
        };
        let best = grid
            .iter()
            .enumerate()
            .max_by(|a, b| {
                mean_shift(a.1, &sel)
                    .total_cmp(&mean_shift(b.1, &sel))
                    .then(b.0.cmp(&a.0))
            })
            .map(|(i, _)| i)
            .ok_or_else(|| IntrospectionError::config("layers", "empty grid"))?;
        let chosen = &grid[best];
        let pick = |f: &dyn Fn(usize) -> f64| rep.iter().map(|&i| f(i)).collect::<Vec<f64>>();
        let held_out = HeldOut {
            selection: sel.iter().map(|&i| set.concepts[i].clone()).collect(),
            report: rep.iter().map(|&i| set.concepts[i].clone()).collect(),
            layer: chosen.layer,
            strength: chosen.strength,
            selection_shift: mean_shift(chosen, &sel),
            shift: paired_difference(
                &pick(&|i| chosen.concepts[i].injected),
                &pick(&|i| control[i]),
                cfg.level,
            )?,
            specific: paired_difference(
                &pick(&|i| chosen.concepts[i].injected),
                &pick(&|i| chosen.concepts[i].random),
                cfg.level,
            )?,
        };
        Ok((held_out, rep))
    }

    /// Identification among K (rotated order) and judged sampled replies at the chosen cell,
    /// on the report half of the concepts.
    pub(super) async fn report_half(
        &self,
        held_out: &HeldOut,
        rep: &[usize],
        judges: &InjectionJudges,
    ) -> Result<(Identification, Vec<Reply>)> {
        let (set, cfg, model) = (self.set, self.cfg, self.model);
        let (layer, strength) = (held_out.layer, held_out.strength);
        // Identification and sampled replies at the chosen cell, on the report half.
        let k = cfg.candidates;
        let letters: Vec<String> = (0..k)
            .map(|j| char::from(b'A' + j as u8).to_string())
            .collect();
        let mut ident: [Vec<f64>; 3] = Default::default();
        let mut replies = Vec::new();
        for &i in rep {
            let concept = &set.concepts[i];
            let v = vector_of(self.vectors, concept, layer)?;
            let r = self.random_of(concept, layer, &v);
            let inj = self.model.steered(&self.steer(layer, v, strength))?;
            let rnd = self.model.steered(&self.steer(layer, r, strength))?;
            let views: [&dyn Model; 3] = [&*inj, model, &*rnd];
            let mut others: Vec<&String> = set.concepts.iter().filter(|c| *c != concept).collect();
            others.shuffle(&mut seeded_rng(derive_seed(
                cfg.seed,
                &format!("distractors/{concept}"),
            )));
            let mut cands: Vec<&String> = vec![concept];
            cands.extend(others.into_iter().take(k - 1));
            let query = OptionQuery::new(letters.clone());
            for (slot, view) in ident.iter_mut().zip(&views) {
                let calls = (0..k).map(|rot| {
                    let query = &query;
                    let mut order = cands.clone();
                    order.rotate_left(rot);
                    let correct = order.iter().position(|c| *c == concept).unwrap_or(0);
                    let options: Vec<String> = order
                        .iter()
                        .zip(&letters)
                        .map(|(c, l)| format!("{l}) {c}"))
                        .collect();
                    let q = trial(&self.cfg.prompts.identify, i)
                        .replace("{options}", &options.join("\n"));
                    let conv = self.cfg.prompts.conversation(q);
                    async move {
                        let probs = view.option_probabilities(&conv, query).await?;
                        Ok::<f64, IntrospectionError>(probs.probabilities[correct])
                    }
                });
                let ps = futures::future::try_join_all(calls).await?;
                slot.push(ps.iter().sum::<f64>() / k as f64);
            }
            let conv = self.describe_conv(i);
            let seed = derive_seed(cfg.seed, &format!("samples/{concept}"));
            for (condition, view) in [Condition::Injected, Condition::Control, Condition::Random]
                .into_iter()
                .zip(&views)
            {
                let texts = view
                    .sample_answers(&conv, cfg.samples, cfg.temperature, cfg.max_tokens, seed)
                    .await?;
                for (j, text) in texts.into_iter().enumerate() {
                    let sample = Sample::new(format!("{concept}/{condition:?}/{j}"), conv.clone())
                        .with_target(concept.clone())
                        .with_cluster(concept.clone());
                    let yes = |s: psyche_core::Verdict| s.score.as_f64().is_some_and(|x| x >= 0.5);
                    let detects = yes(judges.detects.judge(&sample, &text).await?);
                    let names = yes(judges.names.judge(&sample, &text).await?);
                    let immediate = match (detection_claim(&text), concept_mention(&text, concept))
                    {
                        (Some(a), Some(b)) => a <= b,
                        _ => true,
                    };
                    replies.push(Reply {
                        concept: concept.clone(),
                        condition,
                        coherent: coherent(&text),
                        text,
                        detects,
                        names,
                        immediate,
                    });
                }
            }
        }
        let [inj_id, ctl_id, rnd_id] = ident;
        let identification = Identification {
            candidates: k,
            chance: 1.0 / k as f64,
            concepts: held_out.report.clone(),
            injected_mean: mean_ci(&inj_id, cfg.level)?,
            vs_control: paired_difference(&inj_id, &ctl_id, cfg.level)?,
            injected: inj_id,
            control: ctl_id,
            random: rnd_id,
        };
        Ok((identification, replies))
    }

    /// The share of coherent replies without injection, on the first concepts.
    pub(super) async fn control_coherence(&self) -> Result<Option<f64>> {
        let (set, cfg, model) = (self.set, self.cfg, self.model);
        let control_coherence = if cfg.coherence_samples > 0 && cfg.coherence_concepts > 0 {
            let mut ok = 0;
            let mut total = 0;
            for (i, concept) in set.concepts.iter().enumerate().take(cfg.coherence_concepts) {
                let seed = derive_seed(cfg.seed, &format!("coherence/{concept}"));
                let (o, t) = coherent_share(model, &self.describe_conv(i), cfg, seed).await?;
                ok += o;
                total += t;
            }
            (total > 0).then(|| ok as f64 / total as f64)
        } else {
            None
        };
        Ok(control_coherence)
    }
}
