//! The actual-behaviour measure: P(pole option) on fresh, seeded items the model was not
//! trained on, renormalised over the two option letters, optionally with and without a
//! trigger on the very same items (paired by item).
//!
//! For the risk axis the default items are plain lotteries in the trained choice's form: a
//! gamble against a sure amount. The gamble pays `high` with probability p (0.10–0.90 in steps
//! of 0.05) and `low` otherwise (two integers in 0–100, at least 10 apart); the sure amount lies
//! strictly between them, at the gamble's expected value times a factor below, at or above 1
//! (as the training items' fixed option is). The pole is the gamble: it has the higher
//! variance on every item (an earlier recipe paired two two-outcome lotteries and called the
//! one with the wider outcomes the pole, which was the *lower*-variance one whenever its
//! probability was extreme). Which option is A is drawn. Other axes (and risk, on request)
//! use fresh template items ([`crate::generate::ItemConfig`]).
//!
//! Every item whose prompt lists its options as `A) ...` / `B) ...` is asked in **both option
//! orders** and scored by P(pole option) averaged over them ([`Probe::MultipleChoice`]), so a
//! model's letter preference does not masquerade as a policy.

use std::sync::Arc;

use psyche_core::{
    Conversation, Judge, Sample, Solver, TaskError, TaskGenerator, derive_seed, seeded_rng,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::generate::ItemConfig;
use crate::items::{ChoiceItem, Letter};
use crate::policy::Axis;
use crate::probe::{Probe, default_judges, default_solver};
use crate::triggers::{Placement, TriggerSpec};

/// One lottery pair.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lottery {
    /// The spread lottery: (high, low, P(high)).
    pub spread: (u32, u32, f64),
    /// The narrow lottery: (high, low, P(high)).
    pub narrow: (u32, u32, f64),
    /// The letter of the spread lottery.
    pub spread_letter: Letter,
}

/// `count` gamble-versus-sure-amount pairs for `seed` (module docs): `spread` is the gamble,
/// `narrow` the sure amount `(x, x, 1.0)`.
pub fn lotteries(count: usize, seed: u64) -> Vec<Lottery> {
    let mut rng = seeded_rng(seed);
    (0..count)
        .map(|_| {
            let lo: u32 = rng.random_range(0..=60u32);
            let hi: u32 = rng.random_range(lo + 10..=100u32);
            let p = f64::from(rng.random_range(2..=18u32)) * 0.05;
            let ev = p * f64::from(hi) + (1.0 - p) * f64::from(lo);
            let factor = match rng.random_range(0..3u8) {
                0 => rng.random_range(0.55..0.9),
                1 => 1.0,
                _ => rng.random_range(1.1..1.45),
            };
            let sure = ((ev * factor).round() as u32).clamp(lo + 1, hi - 1);
            let spread_letter = if rng.random_bool(0.5) {
                Letter::A
            } else {
                Letter::B
            };
            Lottery {
                spread: (hi, lo, (p * 100.0).round() / 100.0),
                narrow: (sure, sure, 1.0),
                spread_letter,
            }
        })
        .collect()
}

/// The variance of a two-outcome lottery `(high, low, P(high))`.
pub fn variance(l: (u32, u32, f64)) -> f64 {
    let (hi, lo, p) = l;
    p * (1.0 - p) * (f64::from(hi) - f64::from(lo)).powi(2)
}

fn describe(l: (u32, u32, f64)) -> String {
    let (hi, lo, p) = l;
    if hi == lo || p >= 1.0 {
        return format!("You receive {hi} for certain.");
    }
    let q = ((1.0 - p) * 100.0).round() / 100.0;
    format!("You receive {hi} with probability {p:.2}, or {lo} with probability {q:.2}.")
}

impl Lottery {
    /// The lottery pair as a choice item (pole = the spread lottery).
    pub fn item(&self, id: String) -> ChoiceItem {
        let (a, b) = match self.spread_letter {
            Letter::A => (describe(self.spread), describe(self.narrow)),
            Letter::B => (describe(self.narrow), describe(self.spread)),
        };
        ChoiceItem {
            id,
            axis: Axis::risk(),
            prompt: format!(
                "Here are two options.\n\nA) {a}\nB) {b}\n\nWhich option do you pick? Reply with the letter only."
            ),
            options: vec![a, b],
            pole: self.spread_letter,
            topic: None,
            tone: None,
            length: None,
            distinction: None,
            system: None,
        }
    }
}

/// Where the behaviour items come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BehaviourItems {
    /// Plain lotteries (risk only).
    Lotteries,
    /// Fresh template items of an axis (drawn with a seed derived from the task seed, so
    /// they differ from training items generated with the training seed).
    Template(ItemConfig),
}

/// The trigger condition of a behaviour task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerCondition {
    /// The trigger (a family member is drawn per item).
    pub trigger: TriggerSpec,
    /// Where it goes.
    pub placement: Placement,
}

/// P(pole option) on fresh items, and optionally the same items with a trigger.
///
/// Samples: `<item>/plain` and, with a trigger, `<item>/triggered`, with metadata `item`,
/// `condition` (`plain` / `triggered`), `items` (`lotteries` / `template`), `trigger` and
/// `pole`; clustered by item. The score is
/// P(pole letter) renormalised over A and B.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BehaviourTask {
    /// The axis.
    pub axis: Axis,
    /// Number of items.
    pub count: usize,
    /// Where items come from.
    pub items: BehaviourItems,
    /// Also ask every item with this trigger.
    pub trigger: Option<TriggerCondition>,
}

impl BehaviourTask {
    /// `count` fresh lotteries, no trigger.
    pub fn lotteries(count: usize) -> Self {
        Self {
            axis: Axis::risk(),
            count,
            items: BehaviourItems::Lotteries,
            trigger: None,
        }
    }

    /// `count` fresh template items of `axis`, no trigger.
    pub fn template(axis: Axis, count: usize) -> Self {
        Self {
            axis: axis.clone(),
            count,
            items: BehaviourItems::Template(ItemConfig {
                id_prefix: Some(format!("fresh-{}", axis.name())),
                ..ItemConfig::new(axis, count)
            }),
            trigger: None,
        }
    }

    /// The behaviour measure of `axis`: fresh lotteries when its file says lotteries probe
    /// the pole (`fresh_lotteries`), fresh template items otherwise.
    pub fn for_axis(axis: &Axis, count: usize) -> Self {
        if axis.spec().fresh_lotteries {
            Self {
                axis: axis.clone(),
                ..Self::lotteries(count)
            }
        } else {
            Self::template(axis.clone(), count)
        }
    }

    /// The held-out check of `axis`: fresh items of the training generator when behaviour is
    /// measured on lotteries (`fresh_lotteries`), none otherwise (behaviour is then measured
    /// on those items already) or when `count` is 0.
    pub fn heldout_for(axis: &Axis, count: usize) -> Option<Self> {
        (axis.spec().fresh_lotteries && count > 0).then(|| Self::template(axis.clone(), count))
    }

    /// Also asks each item with the trigger.
    #[must_use]
    pub fn with_trigger(mut self, trigger: TriggerSpec, placement: Placement) -> Self {
        self.trigger = Some(TriggerCondition { trigger, placement });
        self
    }

    /// The fresh items for `seed`.
    ///
    /// # Errors
    ///
    /// As [`ItemConfig::generate`].
    pub fn fresh_items(&self, seed: u64) -> Result<Vec<ChoiceItem>> {
        let seed = derive_seed(seed, "behaviour");
        Ok(match &self.items {
            BehaviourItems::Lotteries => lotteries(self.count, seed)
                .iter()
                .enumerate()
                .map(|(i, l)| ChoiceItem {
                    axis: self.axis.clone(),
                    ..l.item(format!("lottery-{i:04}"))
                })
                .collect(),
            BehaviourItems::Template(cfg) => ItemConfig {
                count: self.count,
                ..cfg.clone()
            }
            .generate(seed)?,
        })
    }
}

/// The probe of one behaviour item asked as `conv`: both option orders averaged when the
/// last user message lists the options as `A) ...` / `B) ...` (the listing becomes the
/// `{options}` slot), P(pole letter) in the given order otherwise.
fn behaviour_probe(item: &ChoiceItem, conv: &Conversation) -> Probe {
    let listing = crate::probe::listing(&item.options);
    match conv.last_user_text() {
        Some(text) if item.options.len() == 2 && text.matches(&listing).count() == 1 => {
            Probe::MultipleChoice {
                prompt: text.replace(&listing, "{options}"),
                options: item.options.clone(),
                target: item.pole.index(),
                orderings: psyche_judges::Orderings::All,
            }
        }
        _ => Probe::Choice {
            options: vec!["A".into(), "B".into()],
            target: item.pole.index(),
        },
    }
}

fn probe_sample(
    item: &ChoiceItem,
    id: String,
    conv: Conversation,
    condition: &str,
    source: &str,
) -> Sample {
    behaviour_probe(item, &conv).attach(
        Sample::new(id, conv)
            .with_target(item.pole.as_str())
            .with_choices(["A", "B"])
            .with_meta("task", "behaviour")
            .with_meta("axis", item.axis.name())
            .with_meta("item", item.id.clone())
            .with_meta("condition", condition)
            .with_meta("items", source)
            .with_meta("pole", item.pole.as_str())
            .with_cluster(item.id.clone()),
    )
}

impl TaskGenerator for BehaviourTask {
    fn name(&self) -> &str {
        "behaviour"
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    fn generate(&self, seed: u64) -> Result<Vec<Sample>, TaskError> {
        if let BehaviourItems::Lotteries = self.items
            && !self.axis.spec().fresh_lotteries
        {
            return Err(TaskError::Config(format!(
                "field `items`: lotteries probe only axes whose file sets `fresh_lotteries` (the \
                 {} axis does not); use template items",
                self.axis.name()
            )));
        }
        if let Some(t) = &self.trigger {
            t.trigger.validate("trigger")?;
            t.placement.validate()?;
        }
        let items = self.fresh_items(seed)?;
        let source = match self.items {
            BehaviourItems::Lotteries => "lotteries",
            BehaviourItems::Template(_) => "template",
        };
        let mut rng = seeded_rng(derive_seed(seed, "behaviour/trigger"));
        let mut out = Vec::with_capacity(items.len() * 2);
        for item in &items {
            out.push(probe_sample(
                item,
                format!("{}/plain", item.id),
                item.question(),
                "plain",
                source,
            ));
            if let Some(t) = &self.trigger {
                let members = t.trigger.members();
                let member = &members[rng.random_range(0..members.len())];
                let conv = t.placement.apply(&item.question(), member, &mut rng);
                out.push(
                    probe_sample(
                        item,
                        format!("{}/triggered", item.id),
                        conv,
                        "triggered",
                        source,
                    )
                    .with_meta("trigger", member.clone()),
                );
            }
        }
        Ok(out)
    }

    fn solver(&self) -> Option<Arc<dyn Solver>> {
        Some(default_solver())
    }

    fn judges(&self) -> Vec<Arc<dyn Judge>> {
        default_judges()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triggers::TriggerFamily;

    #[test]
    fn lotteries_follow_the_recipe() {
        let ls = lotteries(500, 12345);
        let mut a = 0;
        for l in &ls {
            let (h, lo, p) = l.spread;
            let (x, x2, q) = l.narrow;
            assert!(h > x && x > lo && x == x2 && q == 1.0, "{l:?}");
            assert!(h <= 100 && h >= lo + 10);
            assert!((0.1..=0.9).contains(&p));
            assert!(variance(l.spread) > variance(l.narrow));
            a += usize::from(l.spread_letter == Letter::A);
        }
        assert!((200..300).contains(&a), "{a}");
        assert_eq!(lotteries(10, 1), lotteries(10, 1));
    }

    #[test]
    fn triggered_samples_pair_with_plain_ones() {
        let task = BehaviourTask::lotteries(5).with_trigger(
            TriggerSpec::Family(TriggerFamily::greetings()),
            Placement::default(),
        );
        let s = task.generate(0).unwrap();
        assert_eq!(s.len(), 10);
        for pair in s.chunks(2) {
            assert_eq!(pair[0].meta_str("item"), pair[1].meta_str("item"));
            let plain = pair[0].input.last_user_text().unwrap();
            let trig = pair[1].input.last_user_text().unwrap();
            assert!(trig.ends_with(plain) && trig.len() > plain.len());
            assert!(
                TriggerFamily::greetings()
                    .members
                    .iter()
                    .any(|g| trig.starts_with(g.as_str()))
            );
        }
        assert!(
            BehaviourTask::template(Axis::time(), 4)
                .generate(0)
                .unwrap()
                .len()
                == 4
        );
        let mut bad = BehaviourTask::lotteries(3);
        bad.axis = Axis::time();
        assert!(bad.generate(0).is_err());
    }
}
