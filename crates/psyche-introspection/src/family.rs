//! Object-level task families: the prompts whose answers a model later predicts.
//!
//! A [`Family`] is a prompt template with a `{string}` placeholder, a source of strings (a
//! word list turned into random sequences, random digit sequences, shipped texts, A/B stance
//! items or multiple-choice questions with shuffled options), the response properties that
//! apply to its answers, and its split (training or held-out). Looking Inward trains on one set
//! of families and evaluates on families never seen in training; [`train_families`] and
//! [`held_out_families`] are psyche's versions of the paper's six and six, written with our own
//! word lists, texts, items and prompt wording. Users add families from a file of strings plus
//! a template ([`Family::from_file`]).
//!
//! A [`FamilyGenerator`] is the family as a [`TaskGenerator`]: `n` items, deterministic per
//! seed, with the object-level solver and judges as defaults.
//!
//! ```
//! use psyche_core::TaskGenerator;
//! use psyche_introspection::family::{Family, FamilyGenerator};
//! let animals = FamilyGenerator::new(Family::builtin("animals")?, 5);
//! let a = animals.generate(1)?;
//! assert_eq!(a.len(), 5);
//! assert_eq!(a, animals.generate(1)?);        // same seed, same bytes
//! assert_ne!(a, animals.generate(2)?);        // another seed, other items
//! assert_eq!(a[0].meta_str("task"), Some("animals"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use psyche_core::{
    Conversation, Judge, PromptTemplate, Sample, Solver, Split, TaskError, TaskGenerator,
    derive_seed, seeded_rng,
};
use psyche_judges::Property;
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::{self, OptionQuestion, StringItem};
use crate::error::{IntrospectionError, Result};

mod builtin;

/// What kind of task a family is (recorded in samples and reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FamilyKind {
    /// Continue a sequence of words (animals, colours, countries, English words).
    Sequence,
    /// Give the next digit of a digit sequence.
    Digits,
    /// Continue a text (a paragraph or a story).
    Continuation,
    /// Choose between two options, one of which shows a stance (survival, myopia, power,
    /// wealth).
    Stance,
    /// Answer a multiple-choice question with a letter.
    MultipleChoice,
    /// A user's family.
    Custom,
}

/// Where a family's strings come from.
#[derive(Debug, Clone)]
pub enum ItemSource {
    /// Sequences of `min_len..=max_len` words drawn with replacement from `words`, joined by
    /// spaces.
    WordSequence {
        /// The vocabulary.
        words: Arc<Vec<String>>,
        /// Shortest sequence.
        min_len: usize,
        /// Longest sequence.
        max_len: usize,
    },
    /// Sequences of `min_len..=max_len` random digits, joined by spaces.
    Digits {
        /// Shortest sequence.
        min_len: usize,
        /// Longest sequence.
        max_len: usize,
    },
    /// Fixed strings, drawn without replacement.
    Strings(Arc<Vec<StringItem>>),
    /// Questions drawn without replacement, options shuffled per item and labelled `A)`,
    /// `B)`, ...; the target is the label of the special option.
    Choices(Arc<Vec<OptionQuestion>>),
}

impl ItemSource {
    /// A hash of the source's content (recorded in generator configs).
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        match self {
            ItemSource::WordSequence {
                words,
                min_len,
                max_len,
            } => {
                h.update(format!("words/{min_len}/{max_len}\n"));
                for w in words.iter() {
                    h.update(w.as_bytes());
                    h.update(b"\n");
                }
            }
            ItemSource::Digits { min_len, max_len } => {
                h.update(format!("digits/{min_len}/{max_len}"))
            }
            ItemSource::Strings(items) => {
                for i in items.iter() {
                    h.update(serde_json::to_vec(i).unwrap_or_default());
                    h.update(b"\n");
                }
            }
            ItemSource::Choices(items) => {
                for i in items.iter() {
                    h.update(serde_json::to_vec(i).unwrap_or_default());
                    h.update(b"\n");
                }
            }
        }
        hex::encode(h.finalize())[..16].to_owned()
    }

    /// Every string a generator could quote verbatim from this source (words of a word list,
    /// whole texts, questions and options), for overlap checks between splits.
    pub fn vocabulary(&self) -> BTreeSet<String> {
        match self {
            ItemSource::WordSequence { words, .. } => words.iter().cloned().collect(),
            ItemSource::Digits { .. } => BTreeSet::new(),
            ItemSource::Strings(items) => items.iter().map(|i| i.string.clone()).collect(),
            ItemSource::Choices(items) => items
                .iter()
                .flat_map(|i| std::iter::once(i.question.clone()).chain(i.options.iter().cloned()))
                .collect(),
        }
    }
}

/// How much of one held-out family a model could have seen in training items: the held-out
/// family's vocabulary entries (words, texts, questions, options) that a training family
/// shows. A single word counts when it occurs as a word anywhere in a training item (a held-out
/// "window" inside a training paragraph); a longer entry counts when its words occur, in order,
/// inside a training entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitOverlap {
    /// The held-out family.
    pub family: String,
    /// Its vocabulary entries.
    pub entries: usize,
    /// How many of them a training family shows.
    pub overlapping: usize,
    /// Up to five of them, for the message.
    pub examples: Vec<String>,
}

fn word_tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The overlap of each held-out family with the training families, item by item (see
/// [`SplitOverlap`]); families with no overlap are included with `overlapping == 0`.
pub fn split_overlap(train: &[Family], held_out: &[Family]) -> Vec<SplitOverlap> {
    let train_entries: Vec<String> = train
        .iter()
        .flat_map(|f| f.source.vocabulary())
        .map(|e| format!(" {} ", word_tokens(&e).join(" ")))
        .collect();
    let train_words: BTreeSet<String> = train
        .iter()
        .flat_map(|f| f.source.vocabulary())
        .flat_map(|e| word_tokens(&e))
        .collect();
    held_out
        .iter()
        .map(|f| {
            let vocabulary = f.source.vocabulary();
            let hits: Vec<String> = vocabulary
                .iter()
                .filter(|entry| {
                    let words = word_tokens(entry);
                    match words.as_slice() {
                        [] => false,
                        [one] => train_words.contains(one),
                        _ => {
                            let needle = format!(" {} ", words.join(" "));
                            train_entries.iter().any(|t| t.contains(&needle))
                        }
                    }
                })
                .cloned()
                .collect();
            SplitOverlap {
                family: f.name.clone(),
                entries: vocabulary.len(),
                overlapping: hits.len(),
                examples: hits.into_iter().take(5).collect(),
            }
        })
        .collect()
}

/// An object-level task family.
#[derive(Debug, Clone)]
pub struct Family {
    /// The family's name (the `task` of its samples), e.g. `animals`.
    pub name: String,
    /// What kind of task it is.
    pub kind: FamilyKind,
    /// Training or held-out.
    pub split: Split,
    /// The object-level prompt, with a `{string}` placeholder.
    pub template: PromptTemplate,
    /// The response properties that apply to its answers.
    pub properties: Vec<Property>,
    /// Token budget of an object-level answer (default 12: enough for the first three words
    /// of a sequence; 16 for continuations, 4 for letters and digits).
    pub max_tokens: u32,
    /// Where its strings come from.
    pub source: ItemSource,
}

fn short_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))[..12].to_owned()
}

fn names(props: &[&str]) -> Vec<Property> {
    props
        .iter()
        .filter_map(|n| Property::from_name(n).ok())
        .collect()
}

/// The properties of free-text answers (sequences and continuations).
pub const TEXT_PROPERTIES: [&str; 7] = [
    "first_character",
    "second_character",
    "third_character",
    "first_word",
    "second_word",
    "third_word",
    "starts_with_vowel",
];

const LABELS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn words_source(file: (&str, &str)) -> ItemSource {
    ItemSource::WordSequence {
        words: Arc::new(data::parse_lines(file.1)),
        min_len: 5,
        max_len: 8,
    }
}

fn text_source(file: (&str, &str)) -> ItemSource {
    ItemSource::Strings(Arc::new(
        data::parse_lines(file.1)
            .into_iter()
            .map(|string| StringItem {
                string,
                target: None,
            })
            .collect(),
    ))
}

fn choices(items: Result<Vec<OptionQuestion>>) -> Result<ItemSource> {
    Ok(ItemSource::Choices(Arc::new(items?)))
}

/// The names of the built-in families, training then held-out.
pub const BUILTIN: [&str; 13] = [
    "colours",
    "countries",
    "paragraphs",
    "digits",
    "wealth_seeking",
    "power_seeking",
    "science_questions",
    "animals",
    "english_words",
    "stories",
    "survival_instinct",
    "myopic_reward",
    "general_knowledge",
];

impl Family {
    /// A family from its parts. The template must contain exactly the placeholder
    /// `{string}`.
    ///
    /// # Errors
    ///
    /// [`IntrospectionError::Template`] for a bad template; [`IntrospectionError::Config`] for
    /// an empty name or no properties.
    pub fn new(
        name: impl Into<String>,
        kind: FamilyKind,
        split: Split,
        template: &str,
        properties: Vec<Property>,
        source: ItemSource,
    ) -> Result<Self> {
        let name = name.into();
        if name.trim().is_empty() || name.contains('/') {
            return Err(IntrospectionError::config(
                "family.name",
                format!("`{name}`: must be non-empty and contain no `/`"),
            ));
        }
        if properties.is_empty() {
            return Err(IntrospectionError::config(
                "family.properties",
                format!("family `{name}` needs at least one property"),
            ));
        }
        let template = PromptTemplate::parse(name.clone(), template, &["string"])?;
        Ok(Self {
            name,
            kind,
            split,
            template,
            properties,
            max_tokens: 12,
            source,
        })
    }

    /// Sets the object-level token budget.
    #[must_use]
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// A built-in family by name (see [`BUILTIN`]).
    ///
    /// # Errors
    ///
    /// [`IntrospectionError::Config`] for an unknown name.
    pub fn builtin(name: &str) -> Result<Self> {
        if let Some(family) = builtin::train(name)? {
            return Ok(family);
        }
        if let Some(family) = builtin::held_out(name)? {
            return Ok(family);
        }
        Err(IntrospectionError::config(
            "family",
            format!(
                "unknown built-in family `{name}` (known: {})",
                BUILTIN.join(", ")
            ),
        ))
    }

    /// A user family from a file of strings (one per line, or JSONL `{"string": ...,
    /// "target": ...}`) and a prompt template with a `{string}` placeholder.
    ///
    /// # Errors
    ///
    /// [`IntrospectionError::Data`] naming the file and line of a bad row;
    /// [`IntrospectionError::Template`] for a template without `{string}`; as [`Family::new`].
    pub fn from_file(
        name: impl Into<String>,
        path: impl AsRef<Path>,
        template: &str,
        properties: Vec<Property>,
        split: Split,
    ) -> Result<Self> {
        let items = data::read_strings(path)?;
        Family::new(
            name,
            FamilyKind::Custom,
            split,
            template,
            properties,
            ItemSource::Strings(Arc::new(items)),
        )
    }

    /// Keeps only the properties in `keep` (by value); an empty result is an error.
    ///
    /// # Errors
    ///
    /// [`IntrospectionError::Config`] when no property of the family is kept.
    pub fn with_properties_in(mut self, keep: &[Property]) -> Result<Self> {
        self.properties.retain(|p| keep.contains(p));
        if self.properties.is_empty() {
            return Err(IntrospectionError::config(
                "properties",
                format!(
                    "none of the selected properties applies to family `{}`",
                    self.name
                ),
            ));
        }
        Ok(self)
    }

    /// `n` items of this family for `seed`: deterministic, and different across seeds.
    /// Fixed sources (texts, items) give at most as many items as they hold.
    ///
    /// # Errors
    ///
    /// [`IntrospectionError::Config`] for an empty source or invalid lengths.
    pub fn items(&self, n: usize, seed: u64) -> Result<Vec<StringItem>> {
        let mut rng = seeded_rng(derive_seed(seed, &format!("family/{}", self.name)));
        let mut out = Vec::with_capacity(n);
        match &self.source {
            ItemSource::WordSequence {
                words,
                min_len,
                max_len,
            } => {
                if words.is_empty() || min_len == &0 || min_len > max_len {
                    return Err(IntrospectionError::config(
                        "family.source",
                        format!("family `{}`: empty word list or bad lengths", self.name),
                    ));
                }
                let mut seen = BTreeSet::new();
                let mut attempts = 0;
                while out.len() < n && attempts < n * 50 + 100 {
                    attempts += 1;
                    let len = rng.random_range(*min_len..=*max_len);
                    let s = (0..len)
                        .map(|_| words[rng.random_range(0..words.len())].as_str())
                        .collect::<Vec<_>>()
                        .join(" ");
                    if seen.insert(s.clone()) {
                        out.push(StringItem {
                            string: s,
                            target: None,
                        });
                    }
                }
            }
            ItemSource::Digits { min_len, max_len } => {
                if min_len == &0 || min_len > max_len {
                    return Err(IntrospectionError::config(
                        "family.source",
                        format!("family `{}`: bad digit-sequence lengths", self.name),
                    ));
                }
                let mut seen = BTreeSet::new();
                let mut attempts = 0;
                while out.len() < n && attempts < n * 50 + 100 {
                    attempts += 1;
                    let len = rng.random_range(*min_len..=*max_len);
                    let s = (0..len)
                        .map(|_| rng.random_range(0..10u8).to_string())
                        .collect::<Vec<_>>()
                        .join(" ");
                    if seen.insert(s.clone()) {
                        out.push(StringItem {
                            string: s,
                            target: None,
                        });
                    }
                }
            }
            ItemSource::Strings(items) => {
                let mut idx: Vec<usize> = (0..items.len()).collect();
                idx.shuffle(&mut rng);
                out.extend(idx.into_iter().take(n).map(|i| items[i].clone()));
            }
            ItemSource::Choices(items) => {
                let mut idx: Vec<usize> = (0..items.len()).collect();
                idx.shuffle(&mut rng);
                for i in idx.into_iter().take(n) {
                    let item = &items[i];
                    let mut order: Vec<usize> = (0..item.options.len()).collect();
                    order.shuffle(&mut rng);
                    let mut s = item.question.clone();
                    let mut target = None;
                    for (pos, &o) in order.iter().enumerate() {
                        let label = LABELS.chars().nth(pos).unwrap_or('?');
                        s.push_str(&format!("\n{label}) {}", item.options[o]));
                        if o == item.special {
                            target = Some(label.to_string());
                        }
                    }
                    out.push(StringItem { string: s, target });
                }
            }
        }
        if out.len() < n {
            // At the default log level: a `--paper-scale` run capped by a small built-in source
            // must say so, or its n looks like the paper's.
            tracing::warn!(
                family = %self.name,
                wanted = n,
                got = out.len(),
                "family `{}` holds {} distinct items; {} were asked for, so this run uses {}",
                self.name,
                out.len(),
                n,
                out.len()
            );
        }
        Ok(out)
    }

    /// The object-level sample for one item. Its id is `<family>/<12 hex of the string's
    /// SHA-256>`, stable across seeds.
    ///
    /// # Errors
    ///
    /// [`IntrospectionError::Template`] when the template cannot be rendered.
    pub fn sample(&self, item: &StringItem) -> Result<Sample> {
        let prompt = self.template.render(&[("string", &item.string)])?;
        let id = format!("{}/{}", self.name, short_hash(&item.string));
        let mut s = Sample::new(id.clone(), Conversation::user(prompt))
            .with_meta("task", self.name.clone())
            .with_meta(
                "family_kind",
                serde_json::to_value(self.kind).unwrap_or_default(),
            )
            .with_meta("string", item.string.clone())
            .with_meta(
                "properties",
                self.properties
                    .iter()
                    .map(Property::name)
                    .collect::<Vec<_>>(),
            )
            .with_meta("max_tokens", self.max_tokens)
            .with_cluster(id)
            .with_split(self.split.clone());
        if let Some(t) = &item.target {
            s = s.with_target(t.clone());
            if self.kind == FamilyKind::Stance || self.properties.iter().any(Property::needs_target)
            {
                s = s.with_meta("stance_target", t.clone());
            }
        }
        Ok(s)
    }

    /// `n` object-level samples for `seed` (see [`Family::items`]).
    ///
    /// # Errors
    ///
    /// As [`Family::items`] and [`Family::sample`].
    pub fn samples(&self, n: usize, seed: u64) -> Result<Vec<Sample>> {
        self.items(n, seed)?
            .iter()
            .map(|i| self.sample(i))
            .collect()
    }

    /// The family's settings as JSON (recorded in run logs and results).
    pub fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "kind": self.kind,
            "split": self.split.to_string(),
            "template_hash": self.template.hash(),
            "properties": self.properties.iter().map(Property::name).collect::<Vec<_>>(),
            "max_tokens": self.max_tokens,
            "source_hash": self.source.content_hash(),
        })
    }
}

/// The six built-in training families: colours, countries, paragraphs, wealth seeking, power
/// seeking and science questions (the paper's Wikipedia, countries, colours, wealth, power and
/// ARC), plus `digits` (the paper's `numbers`, in its code's training list) when
/// `with_digits`.
pub fn train_families(with_digits: bool) -> Vec<Family> {
    let mut names = vec![
        "colours",
        "countries",
        "paragraphs",
        "wealth_seeking",
        "power_seeking",
        "science_questions",
    ];
    if with_digits {
        names.push("digits");
    }
    names
        .into_iter()
        .filter_map(|n| Family::builtin(n).ok())
        .collect()
}

/// The six built-in held-out families: animals, English words, stories, survival instinct,
/// myopic reward and general knowledge (the paper's animals, English words, stories, survival
/// instinct, myopic reward and MMLU).
pub fn held_out_families() -> Vec<Family> {
    [
        "animals",
        "english_words",
        "stories",
        "survival_instinct",
        "myopic_reward",
        "general_knowledge",
    ]
    .into_iter()
    .filter_map(|n| Family::builtin(n).ok())
    .collect()
}

/// A [`Family`] as a [`TaskGenerator`] of `n` object-level samples per seed. Its default
/// solver is [`ObjectSolver`](crate::solve::ObjectSolver) (one greedy answer) and its default
/// judges record whether the answer is a non-answer and each property's value.
#[derive(Debug, Clone)]
pub struct FamilyGenerator {
    /// The family.
    pub family: Family,
    /// Items per seed.
    pub n: usize,
}

impl FamilyGenerator {
    /// `n` items of `family` per seed.
    pub fn new(family: Family, n: usize) -> Self {
        Self { family, n }
    }
}

impl TaskGenerator for FamilyGenerator {
    fn name(&self) -> &str {
        &self.family.name
    }

    fn config(&self) -> serde_json::Value {
        let mut c = self.family.config();
        c["n"] = self.n.into();
        c
    }

    fn generate(&self, seed: u64) -> std::result::Result<Vec<Sample>, TaskError> {
        Ok(self.family.samples(self.n, seed)?)
    }

    fn solver(&self) -> Option<Arc<dyn Solver>> {
        Some(Arc::new(crate::solve::ObjectSolver::default()))
    }

    fn judges(&self) -> Vec<Arc<dyn Judge>> {
        crate::solve::object_judges(&self.family.properties)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Defect (issue 25.8): a request larger than a fixed source was capped with a debug-level
    /// log only, invisible at the default level. The shortfall is now a warning with the numbers.
    #[test]
    fn a_capped_family_says_so_at_the_default_level() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let family = BUILTIN
            .iter()
            .map(|n| Family::builtin(n).unwrap())
            .find(|f| matches!(f.source, ItemSource::Strings(_) | ItemSource::Choices(_)))
            .expect("a built-in family with a fixed source");
        let items =
            tracing::subscriber::with_default(subscriber, || family.items(100_000, 0).unwrap());
        assert!(items.len() < 100_000);
        let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("WARN"), "{log:?}");
        assert!(
            log.contains(&format!("holds {} distinct items", items.len()))
                && log.contains("100000 were asked for"),
            "{log}"
        );
    }

    #[test]
    fn every_builtin_builds_and_is_deterministic_per_seed() {
        for name in BUILTIN {
            let f = Family::builtin(name).unwrap();
            let g = FamilyGenerator::new(f, 6);
            let a = g.generate(0).unwrap();
            let b = g.generate(0).unwrap();
            let c = g.generate(1).unwrap();
            assert_eq!(a.len(), 6, "{name}");
            assert_eq!(a, b, "{name}: same seed, same samples");
            assert_ne!(a, c, "{name}: other seed, other samples");
            let ids: BTreeSet<_> = a.iter().map(|s| s.id.clone()).collect();
            assert_eq!(ids.len(), a.len(), "{name}: distinct ids");
            for s in &a {
                let text = s.input.last_user_text().unwrap();
                assert!(text.contains(s.meta_str("string").unwrap()), "{name}");
            }
        }
        assert!(
            Family::builtin("nope")
                .unwrap_err()
                .to_string()
                .contains("animals")
        );
    }

    #[test]
    fn splits_are_six_and_six_and_disjoint() {
        let train = train_families(false);
        let held = held_out_families();
        assert_eq!(train.len(), 6);
        assert_eq!(held.len(), 6);
        assert!(train.iter().all(|f| f.split == Split::Train));
        assert!(held.iter().all(|f| f.split == Split::HeldOut));
        assert_eq!(train_families(true).len(), 7);
    }

    /// Defect (issue 25.7): the split check compared whole strings, so 15 held-out English
    /// words sat inside training paragraphs unnoticed. Item by item, the built-in splits share
    /// nothing, and an overlap is found and counted.
    #[test]
    fn held_out_items_do_not_occur_in_training_items() {
        for o in split_overlap(&train_families(true), &held_out_families()) {
            assert_eq!(o.overlapping, 0, "{o:?}");
            assert!(o.entries > 0, "{o:?}");
        }
        let paragraph = train_families(false)
            .into_iter()
            .find(|f| f.name == "paragraphs")
            .unwrap();
        let ItemSource::Strings(texts) = &paragraph.source else {
            panic!("paragraphs are texts")
        };
        let word = texts[0].string.split_whitespace().nth(3).unwrap();
        let word = word.trim_matches(|c: char| !c.is_alphanumeric()).to_owned();
        let mut leaky = held_out_families().remove(1);
        leaky.source = ItemSource::WordSequence {
            words: Arc::new(vec![word.to_uppercase(), "zebrafinch".into()]),
            min_len: 1,
            max_len: 2,
        };
        let o = &split_overlap(&[paragraph], &[leaky])[0];
        assert_eq!((o.overlapping, o.entries), (1, 2), "{o:?}");
        assert_eq!(o.examples, [word.to_uppercase()]);
    }

    #[test]
    fn held_out_families_share_no_strings_with_training_families() {
        let train: BTreeSet<String> = train_families(true)
            .iter()
            .flat_map(|f| f.source.vocabulary())
            .map(|s| s.to_lowercase())
            .collect();
        for f in held_out_families() {
            for s in f.source.vocabulary() {
                assert!(
                    !train.contains(&s.to_lowercase()),
                    "`{s}` of held-out `{}` is also in a training family",
                    f.name
                );
            }
            for s in f.samples(12, 3).unwrap() {
                let text = s.input.last_user_text().unwrap().to_owned();
                for t in train_families(true) {
                    for ts in t.samples(12, 3).unwrap() {
                        assert_ne!(Some(text.as_str()), ts.input.last_user_text());
                    }
                }
            }
        }
    }

    #[test]
    fn choice_items_shuffle_options_and_record_the_target_letter() {
        let f = Family::builtin("survival_instinct").unwrap();
        let items = f.items(16, 0).unwrap();
        let letters: BTreeSet<_> = items.iter().filter_map(|i| i.target.clone()).collect();
        assert_eq!(
            letters,
            ["A".to_owned(), "B".to_owned()].into_iter().collect()
        );
        let s = f.sample(&items[0]).unwrap();
        assert_eq!(s.target, items[0].target);
        assert_eq!(s.meta_str("stance_target"), items[0].target.as_deref());
        let mcq = Family::builtin("general_knowledge")
            .unwrap()
            .items(3, 0)
            .unwrap();
        assert!(mcq.iter().all(|i| i.string.contains("\nD) ")));
    }

    #[test]
    fn user_family_from_a_file_and_template() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fruits.txt");
        std::fs::write(&p, "apple pear plum\nfig date lime\n").unwrap();
        let f = Family::from_file(
            "fruits",
            &p,
            "Continue: {string}",
            vec![Property::from_name("first_word").unwrap()],
            Split::HeldOut,
        )
        .unwrap();
        let s = f.samples(5, 0).unwrap();
        assert_eq!(s.len(), 2, "a fixed source gives at most its items");
        assert!(
            s[0].input
                .last_user_text()
                .unwrap()
                .starts_with("Continue: ")
        );
        let err = Family::from_file(
            "x",
            &p,
            "no placeholder",
            vec![Property::from_name("first_word").unwrap()],
            Split::Train,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("string"), "{err}");
        let bad = dir.path().join("bad.jsonl");
        std::fs::write(&bad, "{\"string\": \"ok\"}\nnot json\n").unwrap();
        let err = Family::from_file(
            "x",
            &bad,
            "{string}",
            vec![Property::from_name("first_word").unwrap()],
            Split::Train,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("bad.jsonl:2"), "{err}");
    }
}
