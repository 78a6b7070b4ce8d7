//! Fine-tuning sets for self- and cross-prediction (Looking Inward §1.9).
//!
//! An example is the hypothetical prompt as the user turn and the property of the **object
//! model's** answer as the assistant turn. Self-prediction trains a model on its own
//! behaviour's set; cross-prediction trains another model on the *same* set (targets from the
//! first model). Sets built from two models' behaviour on the same prompts
//! ([`paired_training_sets`]) share every prompt and differ only in where the targets come
//! from. Items whose object-level answer is a non-answer or lacks the property are left out
//! and counted; duplicates (same prompt and target) are dropped; each (task, property) group is
//! capped; the selection and order are seeded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use psyche_core::{ChatExample, ChatMessage, Conversation, Sample, derive_seed, seeded_rng};
use psyche_judges::Property;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::collect::ObjectBehaviour;
use crate::error::Result;
use crate::hypothetical::OBJECT_ID_KEY;

/// How a set is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetOptions {
    /// At most this many examples per (task, property) (the paper: 1000).
    pub per_group_cap: usize,
    /// Seed of the selection and order.
    pub seed: u64,
}

impl Default for SetOptions {
    fn default() -> Self {
        Self {
            per_group_cap: 1000,
            seed: 0,
        }
    }
}

/// One training example with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingExample {
    /// The hypothetical sample's id.
    pub sample_id: String,
    /// The family.
    pub task: String,
    /// The property.
    pub property: String,
    /// The hypothetical prompt (user turn).
    pub prompt: String,
    /// The object model's property value (assistant turn).
    pub target: String,
}

impl TrainingExample {
    /// The chat conversation `[user prompt, assistant target]`.
    pub fn conversation(&self) -> Conversation {
        Conversation::user(self.prompt.clone()).with(ChatMessage::assistant(self.target.clone()))
    }
}

/// A fine-tuning set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingSet {
    /// The model whose behaviour gave the targets.
    pub target_model: String,
    /// The examples, in training order.
    pub examples: Vec<TrainingExample>,
    /// Examples per `task/property`.
    pub per_group: BTreeMap<String, usize>,
    /// Items left out, by reason (`object_non_answer`, `object_lacks_property`, ...).
    pub excluded: BTreeMap<String, usize>,
    /// Duplicate (prompt, target) pairs dropped.
    pub duplicates: usize,
}

impl TrainingSet {
    /// The conversations to fine-tune on.
    pub fn conversations(&self) -> Vec<Conversation> {
        self.examples
            .iter()
            .map(TrainingExample::conversation)
            .collect()
    }

    /// Writes the set as OpenAI chat JSONL.
    ///
    /// # Errors
    ///
    /// [`IntrospectionError::Dataset`](crate::IntrospectionError::Dataset) naming the file.
    pub fn write_jsonl(&self, path: impl AsRef<Path>) -> Result<()> {
        let rows: Vec<ChatExample> = self
            .conversations()
            .into_iter()
            .map(ChatExample::from)
            .collect();
        psyche_core::write_chat_jsonl(path, &rows)?;
        Ok(())
    }

    /// `[user, assistant]` object-level examples (prompt → answer) of another model, for the
    /// behaviour-change step or to give a model a persona.
    pub fn object_level(objects: &[Sample], behaviour: &ObjectBehaviour) -> Vec<Conversation> {
        objects
            .iter()
            .filter_map(|s| {
                let a = behaviour.answers.get(&s.id)?;
                (a.compliant && !a.failed).then(|| {
                    Conversation::user(s.input.last_user_text().unwrap_or_default())
                        .with(ChatMessage::assistant(a.answer.clone()))
                })
            })
            .collect()
    }
}

struct Candidate<'a> {
    sample: &'a Sample,
    task: String,
    property: String,
}

fn candidates(samples: &[Sample]) -> BTreeMap<(String, String), Vec<Candidate<'_>>> {
    let mut groups: BTreeMap<(String, String), Vec<Candidate<'_>>> = BTreeMap::new();
    for s in samples {
        let task = s.meta_str("task").unwrap_or_default().to_owned();
        let property = s.meta_str("property").unwrap_or_default().to_owned();
        groups
            .entry((task.clone(), property.clone()))
            .or_default()
            .push(Candidate {
                sample: s,
                task,
                property,
            });
    }
    groups
}

/// Builds sets from several behaviours over the same hypothetical prompts: an item is used
/// only when it has a value under **every** behaviour, so all sets share their prompts (in the
/// same order) and differ only in their targets.
pub fn paired_training_sets(
    samples: &[Sample],
    behaviours: &[&ObjectBehaviour],
    options: &SetOptions,
) -> Vec<TrainingSet> {
    let mut sets: Vec<TrainingSet> = behaviours
        .iter()
        .map(|b| TrainingSet {
            target_model: b.model.clone(),
            ..TrainingSet::default()
        })
        .collect();
    for ((task, property), mut group) in candidates(samples) {
        let mut rng = seeded_rng(derive_seed(options.seed, &format!("set/{task}/{property}")));
        group.shuffle(&mut rng);
        let Ok(prop) = Property::from_name(&property) else {
            for set in &mut sets {
                *set.excluded.entry("unknown_property".into()).or_default() += group.len();
            }
            continue;
        };
        let mut seen: Vec<BTreeSet<(String, String)>> = vec![BTreeSet::new(); sets.len()];
        let mut taken = 0;
        for c in group {
            if taken >= options.per_group_cap {
                break;
            }
            let object_id = c.sample.meta_str(OBJECT_ID_KEY).unwrap_or_default();
            let values: Vec<_> = behaviours
                .iter()
                .map(|b| b.property(object_id, &prop))
                .collect();
            if let Some(missing) = values.iter().find_map(|v| v.as_ref().err()) {
                for set in &mut sets {
                    *set.excluded.entry(missing.name().to_owned()).or_default() += 1;
                }
                continue;
            }
            let prompt = c
                .sample
                .input
                .last_user_text()
                .unwrap_or_default()
                .to_owned();
            let targets: Vec<String> = values.into_iter().filter_map(|v| v.ok()).collect();
            if targets
                .iter()
                .enumerate()
                .any(|(k, t)| seen[k].contains(&(prompt.clone(), t.clone())))
            {
                for set in &mut sets {
                    set.duplicates += 1;
                }
                continue;
            }
            for (k, t) in targets.into_iter().enumerate() {
                seen[k].insert((prompt.clone(), t.clone()));
                sets[k].examples.push(TrainingExample {
                    sample_id: c.sample.id.clone(),
                    task: c.task.clone(),
                    property: c.property.clone(),
                    prompt: prompt.clone(),
                    target: t,
                });
                *sets[k]
                    .per_group
                    .entry(format!("{}/{}", c.task, c.property))
                    .or_default() += 1;
            }
            taken += 1;
        }
    }
    // One seeded order for all sets, so that they stay aligned.
    let n = sets.first().map_or(0, |s| s.examples.len());
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut seeded_rng(derive_seed(options.seed, "set/order")));
    for set in &mut sets {
        let old = std::mem::take(&mut set.examples);
        set.examples = order.iter().map(|&i| old[i].clone()).collect();
    }
    sets
}

/// The fine-tuning set of one behaviour (see [`paired_training_sets`]).
pub fn training_set(
    samples: &[Sample],
    behaviour: &ObjectBehaviour,
    options: &SetOptions,
) -> TrainingSet {
    paired_training_sets(samples, &[behaviour], options)
        .pop()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::ObjectAnswer;
    use crate::family::Family;
    use crate::hypothetical::{HypotheticalTemplate, hypothetical_samples};

    fn behaviour(
        model: &str,
        objects: &[Sample],
        answer: impl Fn(usize) -> String,
    ) -> ObjectBehaviour {
        ObjectBehaviour {
            model: model.into(),
            answers: objects
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let a = answer(i);
                    (
                        s.id.clone(),
                        ObjectAnswer {
                            task: "animals".into(),
                            compliant: !a.is_empty() && !a.starts_with("Sorry"),
                            answer: a,
                            reason: None,
                            stance_target: None,
                            failed: false,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn self_and_cross_sets_share_prompts_and_differ_only_in_targets() {
        let f = Family::builtin("animals").unwrap();
        let objects = f.samples(12, 0).unwrap();
        let hyps = hypothetical_samples(&objects, &f.properties, &HypotheticalTemplate::default())
            .unwrap();
        let a = behaviour("m1", &objects, |i| {
            if i == 3 {
                "Sorry, I cannot".into()
            } else {
                format!("owl cat{i} dog")
            }
        });
        let b = behaviour("m2", &objects, |i| format!("eel bee{i} ant"));
        let opts = SetOptions {
            per_group_cap: 5,
            seed: 7,
        };
        let sets = paired_training_sets(&hyps, &[&a, &b], &opts);
        let (sa, sb) = (&sets[0], &sets[1]);
        assert_eq!(sa.target_model, "m1");
        assert_eq!(sb.target_model, "m2");
        assert_eq!(sa.examples.len(), sb.examples.len());
        assert_eq!(
            sa.examples.len(),
            5 * f.properties.len(),
            "capped per task x property"
        );
        for (x, y) in sa.examples.iter().zip(&sb.examples) {
            assert_eq!(x.prompt, y.prompt);
            assert_eq!(x.sample_id, y.sample_id);
        }
        assert!(
            sa.examples
                .iter()
                .zip(&sb.examples)
                .any(|(x, y)| x.target != y.target)
        );
        let first = sa
            .examples
            .iter()
            .find(|e| e.property == "first_word")
            .unwrap();
        assert_eq!(first.target, "owl");
        assert!(
            sa.examples
                .iter()
                .all(|e| !e.sample_id.starts_with(&objects[3].id)),
            "non-answer left out"
        );
        // Seeded: same seed, same set; another seed, another order.
        assert_eq!(paired_training_sets(&hyps, &[&a, &b], &opts), sets);
        let other = paired_training_sets(&hyps, &[&a, &b], &SetOptions { seed: 8, ..opts });
        assert_ne!(other[0].examples, sa.examples);
        let conv = sa.conversations();
        assert_eq!(conv[0].messages().len(), 2);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("self.jsonl");
        sa.write_jsonl(&p).unwrap();
        assert_eq!(
            psyche_core::read_chat_jsonl(&p).unwrap().len(),
            sa.examples.len()
        );
    }

    #[test]
    fn duplicates_and_exclusions_are_counted() {
        let f = Family::builtin("animals").unwrap();
        let objects = f.samples(4, 0).unwrap();
        let mut hyps = hypothetical_samples(
            &objects,
            &f.properties[..1],
            &HypotheticalTemplate::default(),
        )
        .unwrap();
        let mut dup = hyps[0].clone();
        dup.id.push_str("-copy");
        hyps.push(dup);
        let a = behaviour("m1", &objects, |i| {
            if i == 1 { String::new() } else { "owl".into() }
        });
        let s = training_set(&hyps, &a, &SetOptions::default());
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.excluded.get("object_non_answer"), Some(&1));
        assert_eq!(s.examples.len(), 3);
    }
}
