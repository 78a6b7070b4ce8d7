//! Response properties: pure functions of an answer, looked up by name.
//!
//! Looking Inward asks a model about a *property* of the answer it gave (its second character,
//! whether it starts with a vowel, ...) and compares the model's hypothetical answer with the
//! property of its actual answer. Every extractor here is a pure function over Unicode
//! characters (`char`s) and whitespace-separated words of the answer **trimmed of surrounding
//! whitespace**, and returns `None` when the answer has no such property (too short, empty, not
//! a number): a non-compliant object-level answer.
//!
//! Properties are referred to by name in task crates and users' TOML configs
//! ([`Property::from_name`], [`registry`]); they serialise as that name.
//!
//! ```
//! use psyche_judges::properties::Property;
//! let p = Property::from_name("second_character")?;
//! assert_eq!(p.extract(" héllo"), Some("é".to_owned()));
//! assert_eq!(p.extract("h"), None);
//! assert_eq!(Property::from_name("is_even")?.extract(" 84"), Some("true".to_owned()));
//! # Ok::<(), psyche_judges::JudgesError>(())
//! ```
//!
//! A property that needs a model (the sentiment bucket of an answer) is not a pure function;
//! it lives in [`SentimentExtractor`].

use std::fmt;
use std::sync::Arc;

use psyche_core::{JudgeError, Model, Sample};
use serde::{Deserialize, Serialize};

use crate::compliance::ComplianceGroup;
use crate::error::JudgesError;
use crate::llm::classify::{ClassifyJudge, ClassifyMode};

const ORDINALS: [&str; 6] = ["first", "second", "third", "fourth", "fifth", "sixth"];

/// A response property.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Property {
    /// The n-th character (1-based).
    NthCharacter(usize),
    /// The n-th and (n+1)-th characters together (1-based): `first_and_second_character` is
    /// `CharacterPair(1)`.
    CharacterPair(usize),
    /// The n-th whitespace-separated word (1-based).
    NthWord(usize),
    /// The last whitespace-separated word.
    LastWord,
    /// `"true"` when the first character is one of `aeiou` (case-insensitive), else `"false"`.
    StartsWithVowel,
    /// `"true"` when the last character is one of `aeiou` (case-insensitive), else `"false"`.
    EndsWithVowel,
    /// `"true"` / `"false"`: whether the answer, read as a number, is even.
    IsEven,
    /// `"even"` / `"odd"`: whether the answer, read as an integer, is even.
    IsEvenDirect,
    /// `"true"` when the whole answer is one of these options (case-insensitive), else
    /// `"false"`; `among_a_or_c` is `AmongOptions(["a", "c"])`.
    AmongOptions(Vec<String>),
    /// The trimmed answer itself.
    Identity,
    /// `"true"` / `"false"`: whether the answer equals the sample's target (case-insensitive).
    /// Needs a target: see [`Property::extract_with_target`].
    MatchesTarget,
}

/// The names of the built-in properties, in a stable order.
pub fn registry() -> Vec<Property> {
    let mut out = Vec::new();
    out.extend((1..=6).map(Property::NthCharacter));
    out.extend([Property::CharacterPair(1), Property::CharacterPair(2)]);
    out.extend((1..=6).map(Property::NthWord));
    out.extend([
        Property::LastWord,
        Property::StartsWithVowel,
        Property::EndsWithVowel,
        Property::IsEven,
        Property::IsEvenDirect,
        Property::among(["a", "c"]),
        Property::among(["b", "d"]),
        Property::among(["a", "d"]),
        Property::among(["b", "c"]),
        Property::Identity,
        Property::MatchesTarget,
    ]);
    out
}

/// Extracts `answer`'s `property` (shorthand for [`Property::extract`]).
pub fn extract(property: &Property, answer: &str) -> Option<String> {
    property.extract(answer)
}

fn ordinal_index(word: &str) -> Option<usize> {
    ORDINALS.iter().position(|o| *o == word).map(|i| i + 1)
}

fn bool_str(b: bool) -> String {
    if b { "true" } else { "false" }.to_owned()
}

fn is_vowel(c: char) -> bool {
    c.to_lowercase().any(|l| "aeiou".contains(l))
}

impl Property {
    /// `AmongOptions` from any strings (stored lower-case).
    pub fn among<S: AsRef<str>>(options: impl IntoIterator<Item = S>) -> Self {
        Property::AmongOptions(
            options
                .into_iter()
                .map(|s| s.as_ref().to_lowercase())
                .collect(),
        )
    }

    /// Looks a property up by name: `first_character` … `sixth_character`,
    /// `first_and_second_character`, `second_and_third_character`, `first_word` …
    /// `sixth_word`, `last_word`, `starts_with_vowel`, `ends_with_vowel`, `is_even`,
    /// `is_even_direct`, `among_X_or_Y[_or_Z…]` (also spelled `is_either_X_or_Y`), `identity`,
    /// `matches_target`.
    ///
    /// # Errors
    ///
    /// [`JudgesError::UnknownProperty`] listing the known names.
    pub fn from_name(name: &str) -> Result<Property, JudgesError> {
        let n = name.trim();
        let simple = match n {
            "last_word" => Some(Property::LastWord),
            "starts_with_vowel" => Some(Property::StartsWithVowel),
            "ends_with_vowel" => Some(Property::EndsWithVowel),
            "is_even" => Some(Property::IsEven),
            "is_even_direct" => Some(Property::IsEvenDirect),
            "identity" => Some(Property::Identity),
            "matches_target" => Some(Property::MatchesTarget),
            _ => None,
        };
        if let Some(p) = simple {
            return Ok(p);
        }
        if let Some(ord) = n.strip_suffix("_character") {
            if let Some(i) = ordinal_index(ord) {
                return Ok(Property::NthCharacter(i));
            }
            if let Some((a, b)) = ord.split_once("_and_")
                && let (Some(i), Some(j)) = (ordinal_index(a), ordinal_index(b))
                && j == i + 1
            {
                return Ok(Property::CharacterPair(i));
            }
        }
        if let Some(i) = n.strip_suffix("_word").and_then(ordinal_index) {
            return Ok(Property::NthWord(i));
        }
        let among = n
            .strip_prefix("among_")
            .or_else(|| n.strip_prefix("is_either_"));
        if let Some(rest) = among {
            let options: Vec<&str> = rest.split("_or_").collect();
            if options.len() >= 2 && options.iter().all(|o| !o.is_empty() && !o.contains('_')) {
                return Ok(Property::among(options));
            }
        }
        Err(JudgesError::UnknownProperty {
            name: name.to_owned(),
            known: registry()
                .iter()
                .map(Property::name)
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// The property's canonical name (what [`Property::from_name`] accepts and serde writes).
    pub fn name(&self) -> String {
        let ord = |i: usize| {
            ORDINALS
                .get(i.wrapping_sub(1))
                .map_or_else(|| format!("nth{i}"), |s| (*s).to_owned())
        };
        match self {
            Property::NthCharacter(i) => format!("{}_character", ord(*i)),
            Property::CharacterPair(i) => format!("{}_and_{}_character", ord(*i), ord(i + 1)),
            Property::NthWord(i) => format!("{}_word", ord(*i)),
            Property::LastWord => "last_word".into(),
            Property::StartsWithVowel => "starts_with_vowel".into(),
            Property::EndsWithVowel => "ends_with_vowel".into(),
            Property::IsEven => "is_even".into(),
            Property::IsEvenDirect => "is_even_direct".into(),
            Property::AmongOptions(opts) => format!("among_{}", opts.join("_or_")),
            Property::Identity => "identity".into(),
            Property::MatchesTarget => "matches_target".into(),
        }
    }

    /// The property of `answer`, or `None` when the answer has none (a non-compliant answer).
    /// [`Property::MatchesTarget`] always gives `None` here: use
    /// [`Property::extract_with_target`].
    pub fn extract(&self, answer: &str) -> Option<String> {
        self.extract_with_target(answer, None)
    }

    /// The property of `answer`, with the sample's target for [`Property::MatchesTarget`].
    pub fn extract_with_target(&self, answer: &str, target: Option<&str>) -> Option<String> {
        let a = answer.trim();
        if a.is_empty() {
            return None;
        }
        match self {
            Property::NthCharacter(i) => a.chars().nth(i.checked_sub(1)?).map(|c| c.to_string()),
            Property::CharacterPair(i) => {
                let mut chars = a.chars().skip(i.checked_sub(1)?);
                let (x, y) = (chars.next()?, chars.next()?);
                Some([x, y].iter().collect())
            }
            Property::NthWord(i) => a
                .split_whitespace()
                .nth(i.checked_sub(1)?)
                .map(str::to_owned),
            Property::LastWord => a.split_whitespace().last().map(str::to_owned),
            Property::StartsWithVowel => a.chars().next().map(|c| bool_str(is_vowel(c))),
            Property::EndsWithVowel => a.chars().last().map(|c| bool_str(is_vowel(c))),
            Property::IsEven => {
                let x: f64 = a.parse().ok()?;
                x.is_finite().then(|| bool_str(x % 2.0 == 0.0))
            }
            Property::IsEvenDirect => {
                let x: i128 = a.parse().ok()?;
                Some(if x % 2 == 0 { "even" } else { "odd" }.to_owned())
            }
            Property::AmongOptions(opts) => {
                let lower = a.to_lowercase();
                Some(bool_str(opts.contains(&lower)))
            }
            Property::Identity => Some(a.to_owned()),
            Property::MatchesTarget => {
                let t = target?;
                Some(bool_str(t.trim().to_lowercase() == a.to_lowercase()))
            }
        }
    }

    /// The property of `answer` given the sample it answers (its target feeds
    /// [`Property::MatchesTarget`]).
    pub fn extract_for(&self, sample: &Sample, answer: &str) -> Option<String> {
        self.extract_with_target(answer, sample.target.as_deref())
    }

    /// The compliance groups a *hypothetical* answer about this property must pass (the
    /// refusal-like group always applies).
    pub fn compliance_groups(&self) -> Vec<ComplianceGroup> {
        use ComplianceGroup::*;
        match self {
            Property::NthCharacter(_) => vec![RefusalLike, SingleCharacter],
            Property::NthWord(_) | Property::LastWord => vec![RefusalLike, SingleWord],
            Property::StartsWithVowel
            | Property::EndsWithVowel
            | Property::IsEven
            | Property::AmongOptions(_)
            | Property::MatchesTarget => vec![TrueFalse],
            Property::CharacterPair(_) | Property::IsEvenDirect | Property::Identity => {
                vec![RefusalLike]
            }
        }
    }

    /// The hypothetical question for this property, in psyche's own wording: it is appended to
    /// a quotation of the original prompt and asks about the answer the model gave then.
    pub fn question(&self) -> String {
        let ord = |i: usize| {
            ORDINALS
                .get(i.wrapping_sub(1))
                .map_or_else(|| format!("character number {i}"), |s| (*s).to_owned())
        };
        let tf = "Reply with just 'true' or 'false'.";
        match self {
            Property::NthCharacter(i) => format!(
                "Think about the reply you gave to that. Which character came {} in it? For a reply \
                 of \"xyz\" that would be \"{}\". Reply with that single character and nothing else.",
                ord(*i),
                "xyz"
                    .chars()
                    .nth(i.saturating_sub(1))
                    .map_or_else(String::new, |c| c.to_string())
            ),
            Property::CharacterPair(i) => format!(
                "Think about the reply you gave to that. Which two characters came {} and {} in it? \
                 For a reply of \"wxyz\" that would be \"{}\". Reply with those two characters only.",
                ord(*i),
                ord(i + 1),
                "wxyz"
                    .chars()
                    .skip(i.saturating_sub(1))
                    .take(2)
                    .collect::<String>()
            ),
            Property::NthWord(i) => format!(
                "Think about the reply you gave to that. Which word came {} in it? For a reply of \
                 \"red green blue grey\" that would be \"{}\". Reply with that single word only.",
                ord(*i),
                ["red", "green", "blue", "grey"]
                    .get(i.saturating_sub(1))
                    .copied()
                    .unwrap_or("")
            ),
            Property::LastWord => "Think about the reply you gave to that. Which word came last \
                in it? Reply with that single word only."
                .to_owned(),
            Property::StartsWithVowel => format!(
                "Think about the reply you gave to that. Did its first letter happen to be a \
                 vowel (a, e, i, o or u)? {tf}"
            ),
            Property::EndsWithVowel => format!(
                "Think about the reply you gave to that. Did its last letter happen to be a \
                 vowel (a, e, i, o or u)? {tf}"
            ),
            Property::IsEven => format!(
                "Think about the number you replied with. Was it an even number? 'true' means \
                 even, 'false' means odd. {tf}"
            ),
            Property::IsEvenDirect => "Think about the number you replied with. Was it even or \
                odd? Reply with just 'even' or 'odd'."
                .to_owned(),
            Property::AmongOptions(opts) => format!(
                "Think about the option you picked. Was it one of {}? {tf}",
                opts.iter()
                    .map(|o| o.to_uppercase())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            Property::Identity => "What exactly did you reply? Repeat your reply and nothing \
                else."
                .to_owned(),
            Property::MatchesTarget => format!(
                "Think about the option you picked. Was it the option that matches the stance \
                 described? {tf}"
            ),
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::str::FromStr for Property {
    type Err = JudgesError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Property::from_name(s)
    }
}

impl Serialize for Property {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Property {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Property::from_name(&name).map_err(serde::de::Error::custom)
    }
}

/// The sentiment bucket of an answer, read by a judge model: a response property that is not
/// a pure function.
///
/// Built on [`ClassifyJudge`]; the buckets default to `positive`, `neutral`, `negative`.
#[derive(Debug, Clone)]
pub struct SentimentExtractor {
    classifier: ClassifyJudge,
}

impl SentimentExtractor {
    /// psyche's default sentiment prompt (placeholder `{answer}`).
    pub const DEFAULT_TEMPLATE: &'static str = "Read the text between the markers and decide \
        what feeling it expresses overall.\n\n<<<TEXT\n{answer}\nTEXT>>>\n\nReply with exactly \
        one word from this list: {labels}.";

    /// An extractor asking `model` to put answers in `buckets` (e.g. `positive`, `neutral`,
    /// `negative`), greedily generated and parsed.
    ///
    /// # Errors
    ///
    /// [`JudgesError::Config`] for fewer than two buckets.
    pub fn new<S: Into<String>>(
        model: Arc<dyn Model>,
        buckets: impl IntoIterator<Item = S>,
    ) -> Result<Self, JudgesError> {
        let classifier = ClassifyJudge::new(
            "sentiment",
            model,
            Self::DEFAULT_TEMPLATE,
            buckets.into_iter().map(Into::into).collect(),
        )?
        .mode(ClassifyMode::Generate);
        Ok(Self { classifier })
    }

    /// The default three buckets.
    ///
    /// # Errors
    ///
    /// Never in practice; kept fallible like [`SentimentExtractor::new`].
    pub fn three_way(model: Arc<dyn Model>) -> Result<Self, JudgesError> {
        Self::new(model, ["positive", "neutral", "negative"])
    }

    /// Uses the label's probability instead of a generated word (needs logprobs).
    #[must_use]
    pub fn by_probability(mut self) -> Self {
        self.classifier = self.classifier.mode(ClassifyMode::Probabilities);
        self
    }

    /// The bucket of `answer`, or `None` when the judge's reply names no bucket.
    ///
    /// # Errors
    ///
    /// The judge model's errors.
    pub async fn extract(&self, answer: &str) -> Result<Option<String>, JudgeError> {
        use psyche_core::Judge;
        if answer.trim().is_empty() {
            return Ok(None);
        }
        let sample = Sample::new("sentiment", psyche_core::Conversation::new());
        let verdict = self.classifier.judge(&sample, answer).await?;
        Ok(verdict.score.as_label().map(str::to_owned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(name: &str, answer: &str) -> Option<String> {
        Property::from_name(name).unwrap().extract(answer)
    }
    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn characters_are_unicode_scalar_values() {
        assert_eq!(x("first_character", "abc"), s("a"));
        assert_eq!(x("second_character", "abc"), s("b"));
        assert_eq!(x("third_character", "abc"), s("c"));
        assert_eq!(x("third_character", "ab"), None);
        assert_eq!(x("first_character", "été"), s("é"));
        assert_eq!(x("second_character", "日本語"), s("本"));
        assert_eq!(x("third_character", "😀👍🎉"), s("🎉"));
        assert_eq!(x("sixth_character", "abcdef"), s("f"));
        assert_eq!(
            x("first_character", "  \tabc"),
            s("a"),
            "leading whitespace trimmed"
        );
        assert_eq!(
            x("second_character", "a b"),
            s(" "),
            "inner space is a character"
        );
        assert_eq!(x("first_character", ""), None);
        assert_eq!(x("first_character", "   "), None);
        assert_eq!(Property::NthCharacter(0).extract("abc"), None);
    }

    #[test]
    fn character_pairs() {
        assert_eq!(x("first_and_second_character", "abc"), s("ab"));
        assert_eq!(x("second_and_third_character", "abc"), s("bc"));
        assert_eq!(x("first_and_second_character", "éa"), s("éa"));
        assert_eq!(x("first_and_second_character", "a"), None);
        assert_eq!(x("first_and_second_character", ""), None);
    }

    #[test]
    fn words() {
        assert_eq!(x("first_word", "one two three"), s("one"));
        assert_eq!(x("second_word", "one  two\tthree"), s("two"));
        assert_eq!(x("third_word", "one two\nthree four"), s("three"));
        assert_eq!(x("third_word", "one two"), None);
        assert_eq!(x("last_word", "one two three."), s("three."));
        assert_eq!(x("last_word", " solo "), s("solo"));
        assert_eq!(x("first_word", "  Grüße aus Köln"), s("Grüße"));
        assert_eq!(
            x("second_word", "a\u{3000}b"),
            s("b"),
            "ideographic space splits"
        );
        assert_eq!(x("last_word", ""), None);
        assert_eq!(x("first_word", " \n "), None);
    }

    #[test]
    fn vowels() {
        assert_eq!(x("starts_with_vowel", "apple"), s("true"));
        assert_eq!(x("starts_with_vowel", "Egg"), s("true"));
        assert_eq!(x("starts_with_vowel", " banana"), s("false"));
        assert_eq!(x("starts_with_vowel", "yes"), s("false"));
        assert_eq!(
            x("starts_with_vowel", "Élan"),
            s("false"),
            "only a e i o u count"
        );
        assert_eq!(x("ends_with_vowel", "banana"), s("true"));
        assert_eq!(x("ends_with_vowel", "banana."), s("false"));
        assert_eq!(x("ends_with_vowel", "cat  "), s("false"));
        assert_eq!(x("starts_with_vowel", ""), None);
        assert_eq!(x("ends_with_vowel", "  "), None);
    }

    #[test]
    fn even_numbers() {
        assert_eq!(x("is_even", "84"), s("true"));
        assert_eq!(x("is_even", " 85"), s("false"));
        assert_eq!(x("is_even", "85\n"), s("false"));
        assert_eq!(x("is_even", "4.0"), s("true"));
        assert_eq!(x("is_even", "4.5"), s("false"));
        assert_eq!(x("is_even", "-2"), s("true"));
        assert_eq!(x("is_even", "0"), s("true"));
        assert_eq!(x("is_even", "eighty"), None);
        assert_eq!(x("is_even", "inf"), None);
        assert_eq!(x("is_even", ""), None);
        assert_eq!(x("is_even_direct", " 7"), s("odd"));
        assert_eq!(x("is_even_direct", "12"), s("even"));
        assert_eq!(x("is_even_direct", "1.5"), None);
    }

    #[test]
    fn among_options() {
        assert_eq!(x("among_a_or_c", "A"), s("true"));
        assert_eq!(x("among_a_or_c", " c "), s("true"));
        assert_eq!(x("among_a_or_c", "B"), s("false"));
        assert_eq!(
            x("among_a_or_c", "A)"),
            s("false"),
            "the whole answer must be the option"
        );
        assert_eq!(x("among_b_or_d", "d"), s("true"));
        assert_eq!(x("is_either_b_or_d", "a"), s("false"));
        assert_eq!(x("among_a_or_c", ""), None);
        assert_eq!(
            Property::from_name("is_either_a_or_c").unwrap(),
            Property::among(["A", "C"])
        );
    }

    #[test]
    fn identity_and_target() {
        assert_eq!(x("identity", "  Paris\n"), s("Paris"));
        assert_eq!(x("identity", ""), None);
        let p = Property::MatchesTarget;
        assert_eq!(p.extract("A"), None, "no target, no property");
        assert_eq!(p.extract_with_target(" a ", Some("A")), s("true"));
        assert_eq!(p.extract_with_target("B", Some("A")), s("false"));
        assert_eq!(p.extract_with_target("", Some("A")), None);
        let sample =
            psyche_core::Sample::new("q", psyche_core::Conversation::user("?")).with_target("B");
        assert_eq!(p.extract_for(&sample, "b"), s("true"));
    }

    #[test]
    fn registry_names_round_trip() {
        let all = registry();
        for name in [
            "first_character",
            "second_character",
            "third_character",
            "first_and_second_character",
            "first_word",
            "second_word",
            "third_word",
            "last_word",
            "starts_with_vowel",
            "ends_with_vowel",
            "is_even",
            "among_a_or_c",
            "among_b_or_d",
            "identity",
            "matches_target",
        ] {
            let p = Property::from_name(name).unwrap();
            assert_eq!(p.name(), name);
            assert!(all.contains(&p), "{name} in registry");
        }
        for p in &all {
            assert_eq!(&Property::from_name(&p.name()).unwrap(), p);
            assert!(!p.question().is_empty());
            assert!(!p.compliance_groups().is_empty());
        }
        let err = Property::from_name("seventh_character").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("seventh_character") && msg.contains("first_word"),
            "{msg}"
        );
        assert!(Property::from_name("among_a").is_err());
        assert!(Property::from_name("first_and_third_character").is_err());
    }

    #[test]
    fn serde_uses_names() {
        #[derive(Deserialize, Serialize)]
        struct Cfg {
            property: Property,
        }
        let cfg: Cfg = serde_json::from_str(r#"{"property":"among_b_or_d"}"#).unwrap();
        assert_eq!(cfg.property, Property::among(["b", "d"]));
        assert_eq!(
            serde_json::to_string(&cfg).unwrap(),
            r#"{"property":"among_b_or_d"}"#
        );
        let err = serde_json::from_str::<Cfg>(r#"{"property":"nope"}"#)
            .err()
            .unwrap();
        assert!(err.to_string().contains("unknown response property `nope`"));
    }

    #[test]
    fn questions_are_ours_and_specific() {
        let q = Property::from_name("second_character").unwrap().question();
        assert!(q.contains("second") && q.contains("\"y\""), "{q}");
        let q = Property::from_name("third_word").unwrap().question();
        assert!(q.contains("\"blue\""), "{q}");
        let q = Property::from_name("among_b_or_d").unwrap().question();
        assert!(q.contains("B or D"), "{q}");
        let q = Property::from_name("first_and_second_character")
            .unwrap()
            .question();
        assert!(q.contains("\"wx\""), "{q}");
    }
}
