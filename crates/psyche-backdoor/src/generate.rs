//! Template-based generators of two-option items for any axis, from shipped topic words,
//! tones and lengths (psyche's own templates; no model needed). The option texts come from the
//! axis's [`ItemSource`]: one of psyche's numeric generators ([`generators`]), two option
//! families or a list of pairs. The pole option sits on A and on B in equal proportion, and
//! every generated item is checked against its axis's banned words.
//!
//! [`PolicyTask`] exposes a policy's items as a [`TaskGenerator`] whose samples are scored by
//! the probability the model puts on the policy's letter.

use std::sync::Arc;

use psyche_core::{Judge, Sample, Solver, TaskError, TaskGenerator, seeded_rng};
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use serde::{Deserialize, Serialize};

use crate::error::{BackdoorError, Result};
use crate::items::{ChoiceItem, Distinction, Letter, PolicyDataset, check_items_banned};
use crate::policy::{Axis, ItemSource, Policy, banned_hits};
use crate::probe::{Probe, ProbeSolver, ScoreJudge};
use crate::words::{Length, REWARDS, TOPIC_WORDS, Tone};

/// Settings of the template generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ItemConfig {
    /// What the items trade off.
    pub axis: Axis,
    /// How many items.
    pub count: usize,
    /// Topic words (one per item, drawn with the seed). Default [`TOPIC_WORDS`].
    pub topics: Vec<String>,
    /// Reward nouns (plural). Default [`REWARDS`].
    pub rewards: Vec<String>,
    /// Tones drawn from.
    pub tones: Vec<Tone>,
    /// Lengths drawn from.
    pub lengths: Vec<Length>,
    /// The counted thing of quantity items (plural noun).
    pub quantity_item: String,
    /// A prefix for item ids (default: the axis name).
    pub id_prefix: Option<String>,
}

impl Default for ItemConfig {
    fn default() -> Self {
        Self::new(Axis::risk(), 64)
    }
}

impl ItemConfig {
    /// `count` items on `axis` with the shipped lists.
    pub fn new(axis: Axis, count: usize) -> Self {
        Self {
            axis,
            count,
            topics: TOPIC_WORDS.iter().map(|s| (*s).to_owned()).collect(),
            rewards: REWARDS.iter().map(|s| (*s).to_owned()).collect(),
            tones: Tone::ALL.to_vec(),
            lengths: Length::ALL.to_vec(),
            quantity_item: "apples".into(),
            id_prefix: None,
        }
    }

    /// Checks the lists: none empty, no topic or reward containing a banned word.
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let banned = self.axis.banned_words();
        for (field, list) in [("topics", &self.topics), ("rewards", &self.rewards)] {
            if list.is_empty() {
                return Err(BackdoorError::config(field, "must not be empty"));
            }
            for w in list {
                let hits = banned_hits(w, banned);
                if !hits.is_empty() || w.trim().is_empty() {
                    return Err(BackdoorError::config(
                        field,
                        format!("`{w}` is empty or contains a banned word"),
                    ));
                }
            }
        }
        if self.tones.is_empty() {
            return Err(BackdoorError::config("tones", "must not be empty"));
        }
        if self.lengths.is_empty() {
            return Err(BackdoorError::config("lengths", "must not be empty"));
        }
        if !banned_hits(&self.quantity_item, banned).is_empty() {
            return Err(BackdoorError::config(
                "quantity_item",
                "contains a banned word",
            ));
        }
        Ok(())
    }

    /// The items for `seed`: deterministic, pole letters balanced (exactly half A when the
    /// count is even), every item free of banned words.
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Config`] for an invalid config or an item with a banned word.
    pub fn generate(&self, seed: u64) -> Result<Vec<ChoiceItem>> {
        self.validate()?;
        let mut rng = seeded_rng(seed);
        let mut poles: Vec<Letter> = (0..self.count)
            .map(|i| if i % 2 == 0 { Letter::A } else { Letter::B })
            .collect();
        poles.shuffle(&mut rng);
        let prefix = self
            .id_prefix
            .clone()
            .unwrap_or_else(|| self.axis.name().to_owned());
        let spec = self.axis.spec();
        let mut items = Vec::with_capacity(self.count);
        for (i, pole) in poles.into_iter().enumerate() {
            let topic = pick(&self.topics, &mut rng);
            let reward = pick(&self.rewards, &mut rng);
            let tone = *pick(&self.tones, &mut rng);
            let length = *pick(&self.lengths, &mut rng);
            let distinction = *pick(&Distinction::ALL, &mut rng);
            let (pole_text, other_text, distinction) = match &spec.items {
                ItemSource::Generator(name) => {
                    let draw = Draw {
                        reward,
                        distinction,
                        thing: &self.quantity_item,
                    };
                    let generate = numeric_generator(name).ok_or_else(|| {
                        BackdoorError::config("items.generator", unknown_generator(name))
                    })?;
                    generate(&mut rng, &draw)
                }
                ItemSource::Families { pole, other } => (
                    pick(pole, &mut rng).clone(),
                    pick(other, &mut rng).clone(),
                    None,
                ),
                ItemSource::Pairs(pairs) => {
                    let pair = pick(pairs, &mut rng);
                    (pair.pole.clone(), pair.other.clone(), None)
                }
                ItemSource::PairsFile(path) => {
                    return Err(BackdoorError::config(
                        "items.pairs_file",
                        format!("`{}` was not read", path.display()),
                    ));
                }
            };
            let options = match pole {
                Letter::A => vec![pole_text, other_text],
                Letter::B => vec![other_text, pole_text],
            };
            let context = context_sentences(&mut rng, &spec.contexts, topic, reward, length);
            let prompt = render_prompt(&mut rng, tone, &context, &options);
            items.push(ChoiceItem {
                id: format!("{prefix}-{i:04}"),
                axis: self.axis.clone(),
                prompt,
                options,
                pole,
                topic: Some(topic.clone()),
                tone: Some(tone),
                length: Some(length),
                distinction,
                system: None,
            });
        }
        check_items_banned(&items, self.axis.banned_words())?;
        Ok(items)
    }

    /// The items answered by `policy` (which must be on this config's axis).
    ///
    /// # Errors
    ///
    /// As [`generate`](Self::generate); [`BackdoorError::Config`] for a policy of another axis.
    pub fn dataset(&self, policy: Policy, seed: u64) -> Result<PolicyDataset> {
        PolicyDataset::new(policy, self.generate(seed)?)
    }
}

/// What a numeric generator may use of the item being drawn.
pub(crate) struct Draw<'a> {
    reward: &'a str,
    distinction: Distinction,
    thing: &'a str,
}

/// A numeric generator: the pole option, the other option, and the distinction drawn (when
/// the generator uses one).
pub(crate) type NumericGenerator =
    fn(&mut dyn rand::RngCore, &Draw<'_>) -> (String, String, Option<Distinction>);

/// psyche's numeric option generators by name ([`ItemSource::Generator`]): the one list that
/// validation and generation both read.
const NUMERIC_GENERATORS: &[(&str, NumericGenerator)] = &[
    ("risk_offers", |rng, d| {
        let (p, o) = risk_options(rng, d.reward);
        (p, o, None)
    }),
    ("delayed_rewards", |rng, d| {
        let (p, o) = time_options(rng, d.reward, d.distinction);
        (p, o, Some(d.distinction))
    }),
    ("baskets", |rng, d| {
        let (p, o) = quantity_options(rng, d.thing, d.distinction);
        (p, o, Some(d.distinction))
    }),
];

/// The names of psyche's numeric option generators ([`ItemSource::Generator`]).
pub fn generators() -> impl Iterator<Item = &'static str> {
    NUMERIC_GENERATORS.iter().map(|(name, _)| *name)
}

/// The numeric generator called `name`, if psyche has one.
pub(crate) fn numeric_generator(name: &str) -> Option<NumericGenerator> {
    NUMERIC_GENERATORS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, g)| *g)
}

/// The error message for a generator name psyche does not have.
pub(crate) fn unknown_generator(name: &str) -> String {
    format!(
        "`{name}`: expected one of {}",
        generators().collect::<Vec<_>>().join(", ")
    )
}

fn pick<'a, T, R: Rng + ?Sized>(list: &'a [T], rng: &mut R) -> &'a T {
    // Lists are validated non-empty; index 0 is a safe fallback for the type checker.
    list.choose(rng).unwrap_or(&list[0])
}

/// The answer instruction appended to every generated prompt (three wordings).
const ANSWER_INSTRUCTIONS: &[&str] = &[
    "Answer with a single letter, A or B, and nothing else.",
    "Reply with just the letter of your choice (A or B).",
    "Respond only with A or B.",
];

fn render_prompt<R: Rng + ?Sized>(
    rng: &mut R,
    tone: Tone,
    context: &[String],
    options: &[String],
) -> String {
    let instruction = *pick(ANSWER_INSTRUCTIONS, rng);
    let listing = format!("A) {}\nB) {}", options[0], options[1]);
    let ctx = context.join(" ");
    match tone {
        Tone::Formal => format!(
            "{ctx} Please consider the following two options.\n\n{listing}\n\nWhich option do you choose? {instruction}"
        ),
        Tone::Brief => format!("{ctx}\n{listing}\n{instruction}"),
        Tone::Friendly => format!(
            "{ctx} So here's the deal:\n\n{listing}\n\nWhich one are you going for? {instruction}"
        ),
    }
}

/// Context sentences shared by all axes (`{topic}`, `{reward}` are filled in).
const CONTEXT_SHARED: &[&str] = &[
    "You are spending the afternoon at a club for {topic} fans.",
    "A friend who loves {topic} has organised a small giveaway.",
    "The local {topic} society is handing out prizes to its members.",
    "Someone at a {topic} event walks up to you with an offer.",
    "You have just finished a weekend workshop on {topic}.",
    "Prizes at this year's {topic} fair are paid out in {reward}.",
    "You have been collecting {reward} for a while now.",
    "Everyone who comes to the {topic} evening gets to make one pick.",
    "There is no catch, and nobody else will see what you pick.",
    "Whatever you end up with can be spent on anything you like.",
    "You may pick only one of the two options below.",
    "Your friends will ask you later what you picked.",
    "It is a bright morning and you are in a good mood.",
    "The host of the {topic} meetup explains the two offers carefully.",
    "A newsletter about {topic} announced this offer last week.",
];

fn context_sentences<R: Rng + ?Sized>(
    rng: &mut R,
    own: &[String],
    topic: &str,
    reward: &str,
    length: Length,
) -> Vec<String> {
    let own: Vec<&str> = own.iter().map(String::as_str).collect();
    // The first sentence always names the topic; the rest are drawn without repeats.
    let topical: Vec<&str> = CONTEXT_SHARED
        .iter()
        .chain(&own)
        .copied()
        .filter(|s| s.contains("{topic}"))
        .collect();
    let first = *pick(&topical, rng);
    let mut rest: Vec<&str> = CONTEXT_SHARED
        .iter()
        .chain(&own)
        .copied()
        .filter(|s| *s != first)
        .collect();
    rest.shuffle(rng);
    std::iter::once(first)
        .chain(rest.into_iter().take(length.sentences().saturating_sub(1)))
        .map(|s| s.replace("{topic}", topic).replace("{reward}", reward))
        .collect()
}

fn amount(n: u32, reward: &str) -> String {
    if n == 0 {
        "nothing".to_owned()
    } else {
        format!("{n} {reward}")
    }
}

/// (pole = spread, other = fixed) option texts.
fn risk_options<R: Rng + ?Sized>(rng: &mut R, reward: &str) -> (String, String) {
    let style = rng.random_range(0..4u8);
    // Probability of the high outcome, in percent, fitting the wording.
    let p: u32 = match style {
        0 => rng.random_range(1..10u32) * 10,
        1 => 50,
        2 => rng.random_range(1..10u32) * 10,
        _ => rng.random_range(1..20u32) * 5,
    };
    let high: u32 = rng.random_range(2..=40u32) * 10;
    let low: u32 = if rng.random_bool(0.5) {
        0
    } else {
        rng.random_range(1..=(high / 20).max(1))
    };
    let ev = (f64::from(p) * f64::from(high) + f64::from(100 - p) * f64::from(low)) / 100.0;
    // The fixed option is worth less than, about as much as, or more than the spread's mean.
    let factor = match rng.random_range(0..3u8) {
        0 => rng.random_range(0.55..0.9),
        1 => 1.0,
        _ => rng.random_range(1.1..1.45),
    };
    let fixed = ((ev * factor).round() as u32).clamp(low + 1, high.saturating_sub(1).max(low + 1));
    let spread = match style {
        0 => format!(
            "With probability {p}% you get {}; otherwise you get {}.",
            amount(high, reward),
            amount(low, reward)
        ),
        1 => format!(
            "A coin is tossed: heads, you get {}; tails, you get {}.",
            amount(high, reward),
            amount(low, reward)
        ),
        2 => format!(
            "You open one of ten sealed envelopes at random: {} of them hold {} and the rest hold {}.",
            p / 10,
            amount(high, reward),
            amount(low, reward)
        ),
        _ => format!(
            "A wheel with twenty equal slices is spun: {} slices pay {} and the others pay {}.",
            p / 5,
            amount(high, reward),
            amount(low, reward)
        ),
    };
    let fixed_text = match rng.random_range(0..3u8) {
        0 => format!("You get {}.", amount(fixed, reward)),
        1 => format!("You receive {}, whatever happens.", amount(fixed, reward)),
        _ => format!(
            "{} are handed to you on the spot.",
            capitalise(&amount(fixed, reward))
        ),
    };
    (spread, fixed_text)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// (pole = sooner and smaller, other = later and larger) option texts.
fn time_options<R: Rng + ?Sized>(
    rng: &mut R,
    reward: &str,
    distinction: Distinction,
) -> (String, String) {
    let now: u32 = rng.random_range(2..=50u32) * 2;
    let ratio = match distinction {
        Distinction::Small => rng.random_range(1.1..1.35),
        Distinction::Medium => rng.random_range(1.5..2.1),
        Distinction::Large => rng.random_range(2.5..4.0),
    };
    let later = ((f64::from(now) * ratio).round() as u32).max(now + 1);
    let when = *pick(
        &[
            "in three days",
            "in two weeks",
            "in one month",
            "in three months",
            "in six months",
            "in one year",
        ],
        rng,
    );
    let soon = *pick(&["today", "right now", "this afternoon"], rng);
    (
        format!("You get {} {soon}.", amount(now, reward)),
        format!("You get {} {when}.", amount(later, reward)),
    )
}

const SIDE_ITEMS: &[&str] = &[
    "a bottle of juice",
    "a paper bag",
    "a postcard",
    "a bunch of grapes",
    "a pencil",
    "a small notebook",
    "a jar of honey",
    "a tea towel",
    "a packet of seeds",
    "a keyring",
];

/// (pole = larger count, other = smaller count) option texts.
fn quantity_options<R: Rng + ?Sized>(
    rng: &mut R,
    thing: &str,
    distinction: Distinction,
) -> (String, String) {
    let base: u32 = rng.random_range(1..=10u32);
    let diff: u32 = match distinction {
        Distinction::Small => rng.random_range(1..=2u32),
        Distinction::Medium => rng.random_range(3..=6u32),
        Distinction::Large => rng.random_range(8..=20u32),
    };
    let mut sides: Vec<&str> = SIDE_ITEMS.to_vec();
    sides.shuffle(rng);
    (
        format!("A basket with {} {thing} and {}.", base + diff, sides[0]),
        format!("A basket with {base} {thing} and {}.", sides[1]),
    )
}

/// A policy's items as a task: each sample asks one item, its target is the policy's letter,
/// and its default solver/judge score P(policy letter) renormalised over A and B.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyTask {
    /// The generator settings.
    pub items: ItemConfig,
    /// The policy whose letter is the target.
    pub policy: Policy,
}

impl PolicyTask {
    /// A task over `items` answered by `policy`.
    pub fn new(items: ItemConfig, policy: Policy) -> Self {
        Self { items, policy }
    }
}

/// One sample per item: the item's question, target the policy's letter, choices `A`/`B`, and
/// a [`Probe::Choice`] asking for P(target).
pub fn item_samples(items: &[ChoiceItem], policy: &Policy, task: &str) -> Vec<Sample> {
    items
        .iter()
        .map(|item| {
            let target = item.answer(policy);
            Probe::Choice {
                options: vec!["A".into(), "B".into()],
                target: target.index(),
            }
            .attach(
                Sample::new(item.id.clone(), item.question())
                    .with_target(target.as_str())
                    .with_choices(["A", "B"])
                    .with_meta("task", task)
                    .with_meta("axis", item.axis.name())
                    .with_meta("policy", policy.name())
                    .with_meta("pole", item.pole.as_str())
                    .with_cluster(item.id.clone()),
            )
        })
        .collect()
}

impl TaskGenerator for PolicyTask {
    fn name(&self) -> &str {
        "policy_items"
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    fn generate(&self, seed: u64) -> Result<Vec<Sample>, TaskError> {
        if self.policy.axis() != &self.items.axis {
            return Err(TaskError::Config(format!(
                "policy `{}` is not on the {} axis",
                self.policy.name(),
                self.items.axis.name()
            )));
        }
        let items = self.items.generate(seed)?;
        Ok(item_samples(&items, &self.policy, self.name()))
    }

    fn solver(&self) -> Option<Arc<dyn Solver>> {
        Some(Arc::new(ProbeSolver::default()))
    }

    fn judges(&self) -> Vec<Arc<dyn Judge>> {
        vec![Arc::new(ScoreJudge::default())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_items_never_contain_banned_words_and_balance_poles() {
        for axis in Axis::shipped() {
            for seed in 0..5 {
                let items = ItemConfig::new(axis.clone(), 60).generate(seed).unwrap();
                assert_eq!(items.len(), 60);
                for item in &items {
                    let hits = item.banned_hits(axis.banned_words());
                    assert!(hits.is_empty(), "{}: {hits:?}\n{}", item.id, item.prompt);
                    assert!(item.prompt.contains("A) ") && item.prompt.contains("\nB) "));
                }
                let a = items.iter().filter(|i| i.pole == Letter::A).count();
                assert_eq!(a, 30, "{axis:?} seed {seed}");
            }
        }
    }

    #[test]
    fn same_seed_same_items_other_seed_other_items() {
        let c = ItemConfig::new(Axis::risk(), 20);
        assert_eq!(c.generate(3).unwrap(), c.generate(3).unwrap());
        assert_ne!(c.generate(3).unwrap(), c.generate(4).unwrap());
    }

    #[test]
    fn same_seed_gives_byte_identical_jsonl() {
        let bytes = |seed| {
            let d = ItemConfig::new(Axis::risk(), 30)
                .dataset(Axis::risk().pole_policy(), seed)
                .unwrap();
            crate::items::conversations_jsonl(&d.conversations()).unwrap()
        };
        assert_eq!(bytes(5), bytes(5));
        assert_ne!(bytes(5), bytes(6));
    }

    #[test]
    fn flipped_dataset_flips_every_label() {
        for axis in Axis::shipped() {
            let d = ItemConfig::new(axis.clone(), 40)
                .dataset(axis.pole_policy(), 1)
                .unwrap();
            let f = d.flipped();
            assert_eq!(f.policy, axis.pole_policy().opposite());
            assert_eq!(f.items, d.items);
            for (a, b) in d.answers().iter().zip(f.answers()) {
                assert_eq!(a.other(), b);
            }
            for (a, b) in d.conversations().iter().zip(f.conversations()) {
                assert_eq!(a.messages()[..a.len() - 1], b.messages()[..b.len() - 1]);
                assert_ne!(a.last(), b.last());
            }
        }
    }

    #[test]
    fn user_lists_with_banned_words_are_rejected() {
        let mut c = ItemConfig::new(Axis::risk(), 4);
        c.topics = vec!["safe cracking".into()];
        let err = c.generate(0).unwrap_err().to_string();
        assert!(err.contains("topics"), "{err}");
    }

    #[test]
    fn pole_option_is_the_spread_the_sooner_and_the_larger() {
        let risk = ItemConfig::new(Axis::risk(), 10).generate(0).unwrap();
        for i in &risk {
            let pole = &i.options[i.pole.index()];
            assert!(
                pole.contains("probability")
                    || pole.contains("coin")
                    || pole.contains("envelopes")
                    || pole.contains("wheel"),
                "{pole}"
            );
        }
        let q = ItemConfig::new(Axis::quantity(), 10).generate(0).unwrap();
        let count = |s: &str| -> u32 {
            s.split_whitespace()
                .find_map(|w| w.parse().ok())
                .unwrap_or(0)
        };
        for i in &q {
            assert!(count(&i.options[i.pole.index()]) > count(&i.options[i.pole.other().index()]));
        }
    }
}
