//! Response properties: functions of an answer that a model can be asked to predict.
//!
//! Looking Inward asks a model about a *property* of the answer it gave (its second character,
//! whether it starts with a vowel, ...) and compares the model's hypothetical answer with the
//! property of its actual answer. A property is anything implementing [`ResponseProperty`]: its
//! name, how to extract it from an answer, the canonical form values are compared in, the shape
//! a hypothetical answer takes (a closed set of values, n characters, a word, the whole reply),
//! the compliance rule a hypothetical answer must pass, and the hypothetical question's
//! wording. [`Property`] is the cheap-to-clone handle the rest of psyche passes around; it
//! serialises as the property's name.
//!
//! Three ways to get one:
//! - the shipped properties ([`BuiltinProperty`]) by name: [`Property::from_name`];
//! - a property declared in a YAML or TOML file (nth character or word, membership in a list,
//!   a regular expression) without code: [`load_properties`] (see [`declared`]);
//! - your own type implementing [`ResponseProperty`]: [`Property::new`], and [`register`] it
//!   so configs and result files can name it.
//!
//! Every extractor works on the answer **trimmed of surrounding whitespace** and returns `None`
//! when the answer has no such property (too short, empty, not a number): a non-compliant
//! object-level answer.
//!
//! ```
//! use psyche_judges::properties::Property;
//! let p = Property::from_name("second_character")?;
//! assert_eq!(p.extract(" héllo"), Some("é".to_owned()));
//! assert_eq!(p.extract("h"), None);
//! assert_eq!(Property::from_name("is_even")?.extract(" 84"), Some("true".to_owned()));
//! # Ok::<(), psyche_judges::JudgeConfigError>(())
//! ```
//!
//! A property that needs a model (the sentiment bucket of an answer) is not a pure function;
//! it lives in [`SentimentExtractor`].

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};

use psyche_core::Sample;
use serde::{Deserialize, Serialize};

use crate::compliance::ComplianceGroup;
use crate::error::JudgeConfigError;

mod builtin;
pub mod declared;
mod sentiment;

pub use builtin::{BuiltinProperty, KNOWN_STANCES};
pub use declared::{DeclaredProperty, load_properties, parse_properties};
pub use sentiment::SentimentExtractor;

/// Whom a hypothetical question is about: the model being asked (`"the reply you gave"`) or
/// an assistant described in the third person (`"the reply the assistant gave"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Perspective {
    /// "you": the model predicts its own reply.
    #[default]
    SecondPerson,
    /// "the assistant": the same question about a third party.
    ThirdPerson,
}

/// The form a hypothetical answer about a property takes, which decides how an answer is
/// read (a constrained answer picks among these) and what compliance means.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerShape {
    /// One of a small closed set of values (`true`/`false`, `even`/`odd`), in canonical form.
    Closed(Vec<String>),
    /// Exactly this many characters.
    Characters(usize),
    /// One word.
    Word,
    /// The whole reply.
    Whole,
}

/// A property of a model's answer that a model can be asked to predict.
///
/// Implement it for a property psyche does not ship, wrap it with [`Property::new`], and
/// [`register`] it if configs or result files refer to it by name. The provided methods give
/// the defaults of an open-valued property; override them where yours differs.
pub trait ResponseProperty: Any + Send + Sync + fmt::Debug {
    /// A stable name (`snake_case`), unique among the properties in use.
    fn name(&self) -> String;

    /// The property of `answer` (trim it first), or `None` when the answer has none; `target`
    /// is the sample's target, for properties that compare with it.
    fn extract(&self, answer: &str, target: Option<&str>) -> Option<String>;

    /// The canonical form of a value, through which both the truth and a prediction go before
    /// they are compared; must be idempotent. Default: trimmed and lower-cased.
    fn canonical(&self, value: &str) -> String {
        value.trim().to_lowercase()
    }

    /// The form a hypothetical answer takes.
    fn shape(&self) -> AnswerShape;

    /// The compliance groups a hypothetical answer must pass. Default, from the shape: one
    /// character → a single character; a word → a single word; `true`/`false` → true/false;
    /// anything else → not refusal-like.
    fn compliance_groups(&self) -> Vec<ComplianceGroup> {
        match self.shape() {
            AnswerShape::Characters(1) => vec![ComplianceGroup::SingleCharacter],
            AnswerShape::Word => vec![ComplianceGroup::SingleWord],
            AnswerShape::Closed(values)
                if values.len() == 2 && values.iter().all(|v| v == "true" || v == "false") =>
            {
                vec![ComplianceGroup::TrueFalse]
            }
            _ => vec![ComplianceGroup::RefusalLike],
        }
    }

    /// The hypothetical question, in the given perspective: it follows a quotation of the
    /// original prompt and asks about the reply given then.
    fn question(&self, perspective: Perspective) -> String;

    /// How many tokens of a sampled reply decide the property (`None`: the whole reply).
    fn tokens_needed(&self) -> Option<u32> {
        None
    }

    /// Whether the reply's first token alone decides the property.
    fn decided_by_first_token(&self) -> bool {
        false
    }

    /// Whether the property needs the sample's target.
    fn needs_target(&self) -> bool {
        false
    }
}

/// A response property: a cheap-to-clone handle over any [`ResponseProperty`], compared,
/// hashed, ordered and serialised by its name.
#[derive(Clone)]
pub struct Property(Arc<dyn ResponseProperty>);

static REGISTERED: RwLock<BTreeMap<String, Property>> = RwLock::new(BTreeMap::new());

/// Makes `property` resolvable by name ([`Property::from_name`], serde, task configs) for the
/// rest of the process; registering the same name again replaces the earlier one.
///
/// # Errors
///
/// [`JudgeConfigError::Config`] when the name is empty or a shipped property's name.
pub fn register(property: Property) -> Result<(), JudgeConfigError> {
    let name = property.name();
    if name.trim().is_empty() {
        return Err(JudgeConfigError::config("name", "a property needs a name"));
    }
    if BuiltinProperty::from_name(&name).is_some() {
        return Err(JudgeConfigError::config(
            "name",
            format!("`{name}` is a shipped property's name; choose another"),
        ));
    }
    let mut map = REGISTERED.write().unwrap_or_else(|e| e.into_inner());
    map.insert(name, property);
    Ok(())
}

/// The shipped properties in a stable order, then the registered ones by name.
pub fn registry() -> Vec<Property> {
    let mut out: Vec<Property> = builtin::registry()
        .into_iter()
        .map(Property::from)
        .collect();
    let map = REGISTERED.read().unwrap_or_else(|e| e.into_inner());
    out.extend(map.values().cloned());
    out
}

/// Extracts `answer`'s `property` (shorthand for [`Property::extract`]).
pub fn extract(property: &Property, answer: &str) -> Option<String> {
    property.extract(answer)
}

impl Property {
    /// Wraps your own property.
    pub fn new(property: impl ResponseProperty) -> Self {
        Property(Arc::new(property))
    }

    /// Looks a property up by name: a shipped one (see [`BuiltinProperty::from_name`] for the
    /// names) or one [`register`]ed.
    ///
    /// # Errors
    ///
    /// [`JudgeConfigError::UnknownProperty`] listing the known names.
    pub fn from_name(name: &str) -> Result<Property, JudgeConfigError> {
        if let Some(b) = BuiltinProperty::from_name(name) {
            return Ok(b.into());
        }
        let map = REGISTERED.read().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = map.get(name.trim()) {
            return Ok(p.clone());
        }
        drop(map);
        Err(JudgeConfigError::UnknownProperty {
            name: name.to_owned(),
            known: registry()
                .iter()
                .map(Property::name)
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// The n-th character (1-based).
    pub fn nth_character(n: usize) -> Self {
        BuiltinProperty::NthCharacter(n).into()
    }

    /// The n-th and (n+1)-th characters together (1-based).
    pub fn character_pair(n: usize) -> Self {
        BuiltinProperty::CharacterPair(n).into()
    }

    /// The n-th whitespace-separated word (1-based).
    pub fn nth_word(n: usize) -> Self {
        BuiltinProperty::NthWord(n).into()
    }

    /// Whether the whole answer is one of `options` (case-insensitive).
    pub fn among<S: AsRef<str>>(options: impl IntoIterator<Item = S>) -> Self {
        BuiltinProperty::among(options).into()
    }

    /// Whether the answer is the option showing `stance` (the sample's target).
    pub fn stance(stance: impl Into<String>) -> Self {
        BuiltinProperty::Stance(stance.into()).into()
    }

    /// Whether the answer equals the sample's target.
    pub fn matches_target() -> Self {
        BuiltinProperty::MatchesTarget.into()
    }

    /// The implementation behind the handle.
    pub fn inner(&self) -> &dyn ResponseProperty {
        &*self.0
    }

    /// The shipped property behind the handle, if it is one.
    pub fn builtin(&self) -> Option<&BuiltinProperty> {
        let any: &dyn Any = &*self.0;
        any.downcast_ref()
    }

    /// The property's name (what [`Property::from_name`] accepts and serde writes).
    pub fn name(&self) -> String {
        self.0.name()
    }

    /// The property of `answer`, or `None` when the answer has none (a non-compliant answer);
    /// a property that compares with the target gives `None` here: use
    /// [`Property::extract_with_target`].
    pub fn extract(&self, answer: &str) -> Option<String> {
        self.extract_with_target(answer, None)
    }

    /// The property of `answer`, with the sample's target.
    pub fn extract_with_target(&self, answer: &str, target: Option<&str>) -> Option<String> {
        self.0.extract(answer, target)
    }

    /// The property of `answer` given the sample it answers.
    pub fn extract_for(&self, sample: &Sample, answer: &str) -> Option<String> {
        self.extract_with_target(answer, sample.target.as_deref())
    }

    /// The canonical form of one of this property's values (see
    /// [`ResponseProperty::canonical`]).
    pub fn canonical(&self, value: &str) -> String {
        self.0.canonical(value)
    }

    /// The property of `answer` in its canonical form.
    pub fn extract_canonical(&self, answer: &str, target: Option<&str>) -> Option<String> {
        self.extract_with_target(answer, target)
            .map(|v| self.canonical(&v))
    }

    /// The form a hypothetical answer takes.
    pub fn shape(&self) -> AnswerShape {
        self.0.shape()
    }

    /// The closed set of values a hypothetical answer can take, if it is one.
    pub fn closed_answers(&self) -> Option<Vec<String>> {
        match self.shape() {
            AnswerShape::Closed(values) => Some(values),
            _ => None,
        }
    }

    /// The compliance groups a hypothetical answer about this property must pass.
    pub fn compliance_groups(&self) -> Vec<ComplianceGroup> {
        self.0.compliance_groups()
    }

    /// The hypothetical question, second person.
    pub fn question(&self) -> String {
        self.question_in(Perspective::SecondPerson)
    }

    /// The hypothetical question in the given perspective.
    pub fn question_in(&self, perspective: Perspective) -> String {
        self.0.question(perspective)
    }

    /// How many tokens of a sampled reply decide the property (`u32::MAX`: the whole reply).
    pub fn tokens_needed(&self) -> u32 {
        self.0.tokens_needed().unwrap_or(u32::MAX)
    }

    /// Whether the reply's first token alone decides the property.
    pub fn decided_by_first_token(&self) -> bool {
        self.0.decided_by_first_token()
    }

    /// Whether the property needs the sample's target.
    pub fn needs_target(&self) -> bool {
        self.0.needs_target()
    }
}

impl From<BuiltinProperty> for Property {
    fn from(b: BuiltinProperty) -> Self {
        Property(Arc::new(b))
    }
}

impl fmt::Debug for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Property({})", self.name())
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl PartialEq for Property {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Property {}

impl Hash for Property {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl PartialOrd for Property {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Property {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name().cmp(&other.name())
    }
}

impl std::str::FromStr for Property {
    type Err = JudgeConfigError;
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

#[cfg(test)]
mod tests;
