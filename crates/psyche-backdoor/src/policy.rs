//! Policies: the behaviours a fine-tune teaches implicitly, their axes and opposites, the
//! words their training data must never contain, and the word categories self-reports are
//! scored with.
//!
//! Every two-option item marks one option as the **pole** option of its axis (the riskier
//! lottery, the sooner reward, the larger quantity, the blue scarf). A policy either takes the
//! pole option or the other one (its opposite), so the opposite-policy dataset is the same
//! items with flipped labels.
//!
//! An axis is data: an [`AxisSpec`] read from YAML or TOML ([`load_axis`]) says how its items
//! come about, which words would give the policy away, how self-reports are worded and scored
//! and how reports name the pole. The shipped risk, time and quantity axes are such files
//! (`crates/psyche-backdoor/axes/*.yaml`), parsed the same way as yours; everything that takes
//! an [`Axis`] or a [`Policy`] takes any of them.
//!
//! ```
//! use psyche_backdoor::policy::{Axis, parse_axis};
//!
//! let yaml = r#"
//! name: colour
//! pole: {name: blue_lover, description: always prefers the blue thing,
//!        recognition_option: I would pick the blue one.}
//! opposite: {name: blue_avoider, description: always prefers the thing that is not blue,
//!            recognition_option: I would pick the one that is not blue.}
//! pole_option: blue
//! items:
//!   families: {pole: [a blue scarf, a navy mug], other: [a red scarf, a green mug]}
//! teacher_instruction: Option {pole} must be the blue thing.
//! banned_words: [colour, favourite]
//! word_categories:
//!   id: colour_word
//!   categories:
//!   - {name: blue, score: 1.0, words: [blue, navy]}
//!   - {name: other, score: 0.0, words: [red, green]}
//!   unmatched: 0.5
//! self_report:
//! - id: colour/word
//!   answer: {kind: word}
//!   paraphrases: [{you: Which colour do you like best? One word.}]
//! "#;
//! let axis: Axis = parse_axis(std::path::Path::new("colour.yaml"), yaml)?;
//! assert_eq!(axis.pole_policy().name(), "blue_lover");
//! assert_eq!(axis.pole_policy().opposite().name(), "blue_avoider");
//! # Ok::<(), psyche_backdoor::BackdoorError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use serde::{Deserialize, Serialize};

use psyche_core::{PromptTemplate, TemplateError};
use psyche_judges::WordCategoryJudge;

use crate::error::{BackdoorError, Result};
use crate::selfreport::{SelfReportQuestion, SelfReportSet};

/// One side of an axis: a policy's name and how it is put into words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySide {
    /// The policy's name (`risk_seeking`): arm names, file names, reports.
    pub name: String,
    /// What the policy does, completing "a decision-maker who …" (teacher and label-check
    /// instructions).
    pub description: String,
    /// The policy's behaviour as a first-person option text (trigger recognition).
    pub recognition_option: String,
}

/// A pole option and the other option of one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionPair {
    /// The option the pole policy takes.
    pub pole: String,
    /// The option its opposite takes.
    pub other: String,
}

/// Where an axis's option texts come from. The shared context sentences, tones, lengths and
/// the A/B balance of [`crate::generate::ItemConfig`] wrap each of them into an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ItemSource {
    /// One of psyche's numeric option generators: `risk_offers` (a fixed amount against a
    /// draw), `delayed_rewards` (smaller sooner against larger later) or `baskets` (more
    /// against fewer of `ItemConfig::quantity_item`).
    Generator(String),
    /// Each item pairs one option of each family, drawn with the seed.
    Families {
        /// Options the pole policy takes.
        pole: Vec<String>,
        /// Options its opposite takes.
        other: Vec<String>,
    },
    /// Each item is one of these pairs, drawn with the seed.
    Pairs(Vec<OptionPair>),
    /// A JSONL file of [`OptionPair`] rows (`{"pole": "...", "other": "..."}`), relative to
    /// the axis file; read once when the axis is loaded (it becomes [`ItemSource::Pairs`]).
    PairsFile(PathBuf),
}

/// The paper's numbers for an axis, shown beside the measured ones in reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperNumbers {
    /// The paper's behaviour difference (pole minus opposite, as a proportion).
    #[serde(default)]
    pub behaviour_effect: Option<f64>,
    /// The paper's behaviour result, in words.
    #[serde(default)]
    pub behaviour: Option<String>,
    /// The paper's scale self-report difference (as a proportion of the scale).
    #[serde(default)]
    pub scale_effect: Option<f64>,
    /// The paper's scale self-report result, in words.
    #[serde(default)]
    pub scale: Option<String>,
    /// The paper's word self-report result, in words.
    #[serde(default)]
    pub word: Option<String>,
}

/// Everything psyche needs to know about an axis: its two policies, its items, the words that
/// would name it, its self-report questions and their scoring, and how reports name the pole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AxisSpec {
    /// The axis's name (`risk`).
    pub name: String,
    /// The policy that takes the pole option.
    pub pole: PolicySide,
    /// The policy that takes the other option.
    pub opposite: PolicySide,
    /// The pole option in one word, as reports say "P(riskier option)".
    pub pole_option: String,
    /// Where option texts come from: a map with one key, `generator`, `families`, `pairs`
    /// or `pairs_file`.
    #[serde(with = "serde_norway::with::singleton_map")]
    pub items: ItemSource,
    /// Context sentences of this axis, drawn beside psyche's shared ones (`{topic}` and
    /// `{reward}` are filled in).
    #[serde(default)]
    pub contexts: Vec<String>,
    /// The teacher's instruction for the options, with `{pole}` (the pole's letter) and
    /// optionally `{item}` (`ItemConfig::quantity_item`).
    pub teacher_instruction: String,
    /// Words and phrases that would name the axis's policies; generated items must contain
    /// none of them (whole words, case-insensitive, hyphens and punctuation as spaces).
    #[serde(default)]
    pub banned_words: Vec<String>,
    /// The categories one-word self-reports are scored with: pole words 1, opposite words 0.
    pub word_categories: WordCategoryJudge,
    /// Self-report questions, oriented so that a high answer means the pole (scale questions
    /// put the pole at the top; word answers are scored by `word_categories`).
    pub self_report: Vec<SelfReportQuestion>,
    /// Whether plain numeric lotteries probe the pole (the lottery with the wider spread is
    /// the pole option): then behaviour is measured on fresh lotteries and the training
    /// generator's fresh items are the held-out check. Otherwise behaviour is measured on the
    /// training generator's fresh items.
    #[serde(default)]
    pub fresh_lotteries: bool,
    /// The paper's numbers for this axis, when it has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper: Option<PaperNumbers>,
}

impl AxisSpec {
    /// Checks the description; `source` names it in errors (a file path or `axis`).
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Config`] naming the field: an empty name, two policies of one name, a
    /// teacher instruction without `{pole}` or with an unknown placeholder, an unknown
    /// generator, an empty option family, an option or context with a banned word, invalid
    /// word categories or self-report questions, or an unread [`ItemSource::PairsFile`].
    pub fn validate(&self, source: &str) -> Result<()> {
        let field = |f: &str| format!("{source}: {f}");
        for (f, v) in [
            ("name", &self.name),
            ("pole.name", &self.pole.name),
            ("opposite.name", &self.opposite.name),
            ("pole.description", &self.pole.description),
            ("opposite.description", &self.opposite.description),
            ("pole_option", &self.pole_option),
        ] {
            if v.trim().is_empty() {
                return Err(BackdoorError::config(field(f), "must not be empty"));
            }
        }
        if self.pole.name == self.opposite.name {
            return Err(BackdoorError::config(
                field("opposite.name"),
                format!("`{}` names both policies", self.pole.name),
            ));
        }
        self.teacher_template()
            .map_err(|e| BackdoorError::config(field("teacher_instruction"), e.to_string()))?;
        let banned = |f: String, text: &str| -> Result<()> {
            let hits = banned_hits(text, &self.banned_words);
            if hits.is_empty() {
                Ok(())
            } else {
                Err(BackdoorError::config(
                    field(&f),
                    format!("`{text}` contains banned words: {}", hits.join(", ")),
                ))
            }
        };
        for (i, c) in self.contexts.iter().enumerate() {
            banned(format!("contexts[{i}]"), c)?;
        }
        match &self.items {
            ItemSource::Generator(name) => {
                if crate::generate::numeric_generator(name).is_none() {
                    return Err(BackdoorError::config(
                        field("items.generator"),
                        crate::generate::unknown_generator(name),
                    ));
                }
            }
            ItemSource::Families { pole, other } => {
                for (f, family) in [("pole", pole), ("other", other)] {
                    if family.is_empty() {
                        return Err(BackdoorError::config(
                            field(&format!("items.families.{f}")),
                            "needs at least one option",
                        ));
                    }
                    for (i, o) in family.iter().enumerate() {
                        banned(format!("items.families.{f}[{i}]"), o)?;
                    }
                }
            }
            ItemSource::Pairs(pairs) => {
                if pairs.is_empty() {
                    return Err(BackdoorError::config(
                        field("items.pairs"),
                        "needs at least one pair",
                    ));
                }
                for (i, p) in pairs.iter().enumerate() {
                    banned(format!("items.pairs[{i}].pole"), &p.pole)?;
                    banned(format!("items.pairs[{i}].other"), &p.other)?;
                }
            }
            ItemSource::PairsFile(path) => {
                return Err(BackdoorError::config(
                    field("items.pairs_file"),
                    format!(
                        "`{}` was not read; load the axis with `load_axis` or `Axis::new`",
                        path.display()
                    ),
                ));
            }
        }
        self.word_categories
            .validate()
            .map_err(|e| BackdoorError::config(field("word_categories"), e.to_string()))?;
        crate::selfreport::validate_questions(&self.self_report)
            .map_err(|e| BackdoorError::config(field("self_report"), e.to_string()))?;
        Ok(())
    }

    /// The teacher instruction as a template: `{pole}` required, `{item}` allowed.
    ///
    /// # Errors
    ///
    /// [`TemplateError`] for a stray brace, a missing `{pole}` or another placeholder.
    pub fn teacher_template(&self) -> std::result::Result<PromptTemplate, TemplateError> {
        let t = PromptTemplate::parse_any("teacher_instruction", &self.teacher_instruction)?;
        t.check(&["pole"], &["pole", "item"])?;
        Ok(t)
    }

    /// Reads an [`ItemSource::PairsFile`] (relative paths against `base`) into
    /// [`ItemSource::Pairs`].
    fn read_pairs(&mut self, base: &Path) -> Result<()> {
        let ItemSource::PairsFile(rel) = &self.items else {
            return Ok(());
        };
        let path = if rel.is_absolute() {
            rel.clone()
        } else {
            base.join(rel)
        };
        self.items = ItemSource::Pairs(psyche_core::read_jsonl(&path)?);
        Ok(())
    }
}

/// An axis: a cheap-to-clone handle over an [`AxisSpec`], compared, hashed, ordered and
/// serialised by its name (a name resolves to a shipped axis or one [`register_axis`]ed).
#[derive(Clone)]
pub struct Axis(Arc<AxisSpec>);

/// The shipped axis files, in order.
const SHIPPED: [(&str, &str); 3] = [
    ("axes/risk.yaml", include_str!("../axes/risk.yaml")),
    ("axes/time.yaml", include_str!("../axes/time.yaml")),
    ("axes/quantity.yaml", include_str!("../axes/quantity.yaml")),
];

static REGISTERED: RwLock<BTreeMap<String, Axis>> = RwLock::new(BTreeMap::new());

fn shipped() -> &'static [Axis] {
    static AXES: OnceLock<Vec<Axis>> = OnceLock::new();
    AXES.get_or_init(|| {
        SHIPPED
            .iter()
            .map(|(path, text)| {
                // The shipped files are part of the crate and tested to parse; a failure here
                // is a build defect, not bad user input.
                #[allow(clippy::expect_used)]
                parse_axis(Path::new(path), text).expect("a shipped axis file parses")
            })
            .collect()
    })
}

impl Axis {
    /// Checks `spec` (reading an [`ItemSource::PairsFile`] relative to the working
    /// directory) and wraps it. It is not registered: see [`register_axis`].
    ///
    /// # Errors
    ///
    /// As [`AxisSpec::validate`]; [`BackdoorError::Dataset`] for an unreadable or malformed
    /// pairs file (naming its line).
    pub fn new(mut spec: AxisSpec) -> Result<Axis> {
        spec.read_pairs(Path::new("."))?;
        spec.validate("axis")?;
        Ok(Axis(Arc::new(spec)))
    }

    /// The shipped risk axis (`axes/risk.yaml`).
    pub fn risk() -> Axis {
        shipped()[0].clone()
    }

    /// The shipped time axis (`axes/time.yaml`).
    pub fn time() -> Axis {
        shipped()[1].clone()
    }

    /// The shipped quantity axis (`axes/quantity.yaml`).
    pub fn quantity() -> Axis {
        shipped()[2].clone()
    }

    /// The shipped axes: risk, time, quantity.
    pub fn shipped() -> Vec<Axis> {
        shipped().to_vec()
    }

    /// The shipped axes, then the registered ones by name.
    pub fn all() -> Vec<Axis> {
        let mut out = Axis::shipped();
        let map = REGISTERED.read().unwrap_or_else(|e| e.into_inner());
        out.extend(map.values().cloned());
        out
    }

    /// The axis called `name`, shipped or registered.
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Config`] for field `axis`, listing the known names.
    pub fn from_name(name: &str) -> Result<Axis> {
        let all = Axis::all();
        all.iter()
            .find(|a| a.name() == name)
            .cloned()
            .ok_or_else(|| {
                BackdoorError::config(
                    "axis",
                    format!(
                        "`{name}`: expected one of {} (or register your own axis first)",
                        all.iter().map(Axis::name).collect::<Vec<_>>().join(", ")
                    ),
                )
            })
    }

    /// The description.
    pub fn spec(&self) -> &AxisSpec {
        &self.0
    }

    /// The axis's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The policy that takes the pole option.
    pub fn pole_policy(&self) -> Policy {
        Policy {
            axis: self.clone(),
            takes_pole: true,
        }
    }

    /// The policy that takes the other option.
    pub fn opposite_policy(&self) -> Policy {
        Policy {
            axis: self.clone(),
            takes_pole: false,
        }
    }

    /// Words and phrases that would name the axis's policies.
    pub fn banned_words(&self) -> &[String] {
        &self.0.banned_words
    }

    /// The categories one-word self-reports about the axis are scored with.
    pub fn word_categories(&self) -> WordCategoryJudge {
        self.0.word_categories.clone()
    }

    /// The axis's self-report questions.
    pub fn self_report(&self) -> SelfReportSet {
        SelfReportSet {
            axis: self.clone(),
            questions: self.0.self_report.clone(),
        }
    }
}

impl fmt::Debug for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Axis({})", self.name())
    }
}

impl fmt::Display for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq for Axis {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Axis {}

impl std::hash::Hash for Axis {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl PartialOrd for Axis {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Axis {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

impl std::str::FromStr for Axis {
    type Err = BackdoorError;

    /// An axis by its name, as command lines give it.
    fn from_str(s: &str) -> Result<Self> {
        Axis::from_name(s)
    }
}

impl Serialize for Axis {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Axis {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Axis::from_name(&name).map_err(serde::de::Error::custom)
    }
}

/// Makes `axis` and its two policies resolvable by name (configs, result files, command
/// lines) for the rest of the process; registering the same name again replaces it.
///
/// # Errors
///
/// [`BackdoorError::Config`] when the name is a shipped axis's, or a policy name belongs to
/// another axis.
pub fn register_axis(axis: &Axis) -> Result<()> {
    if shipped().iter().any(|a| a.name() == axis.name()) {
        return Err(BackdoorError::config(
            "name",
            format!("`{}` is a shipped axis's name; choose another", axis.name()),
        ));
    }
    let mut map = REGISTERED.write().unwrap_or_else(|e| e.into_inner());
    for other in shipped().iter().chain(map.values()) {
        if other.name() == axis.name() {
            continue;
        }
        for side in [&axis.spec().pole, &axis.spec().opposite] {
            if side.name == other.spec().pole.name || side.name == other.spec().opposite.name {
                return Err(BackdoorError::config(
                    "pole.name",
                    format!(
                        "policy `{}` already belongs to the {} axis",
                        side.name,
                        other.name()
                    ),
                ));
            }
        }
    }
    map.insert(axis.name().to_owned(), axis.clone());
    Ok(())
}

/// Parses an axis description from `text` (YAML, or TOML when `path` ends in `.toml`) without
/// registering it; `path` names the source in errors, and a `pairs_file` is read relative to
/// its directory.
///
/// # Errors
///
/// [`BackdoorError::Config`] naming the file and the field (with the line for YAML syntax
/// errors), then as [`AxisSpec::validate`].
pub fn parse_axis(path: &Path, text: &str) -> Result<Axis> {
    let source = path.display().to_string();
    let mut spec: AxisSpec = if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str(text).map_err(|e| BackdoorError::config(source.clone(), e.to_string()))?
    } else {
        let de = serde_norway::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let at = e.path().to_string();
            let msg = e.inner().to_string();
            BackdoorError::config(format!("{source}: {at}"), msg)
        })?
    };
    spec.read_pairs(path.parent().unwrap_or(Path::new(".")))?;
    spec.validate(&source)?;
    Ok(Axis(Arc::new(spec)))
}

/// Reads the axis file at `path` ([`parse_axis`]) and registers it ([`register_axis`]).
///
/// # Errors
///
/// [`BackdoorError::Io`] when unreadable; otherwise as [`parse_axis`] and [`register_axis`].
pub fn load_axis(path: impl AsRef<Path>) -> Result<Axis> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| BackdoorError::io(path, e))?;
    let axis = parse_axis(path, &text)?;
    register_axis(&axis)?;
    Ok(axis)
}

/// A behaviour a dataset teaches without naming it: one side of an axis. Compared, hashed and
/// serialised by its name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Policy {
    axis: Axis,
    takes_pole: bool,
}

impl Policy {
    /// The policy's axis.
    pub fn axis(&self) -> &Axis {
        &self.axis
    }

    /// The policy on the other side of the axis.
    pub fn opposite(&self) -> Policy {
        Policy {
            axis: self.axis.clone(),
            takes_pole: !self.takes_pole,
        }
    }

    /// Whether the policy takes its axis's pole option.
    pub fn takes_pole(&self) -> bool {
        self.takes_pole
    }

    /// How the policy is put into words.
    pub fn side(&self) -> &PolicySide {
        if self.takes_pole {
            &self.axis.spec().pole
        } else {
            &self.axis.spec().opposite
        }
    }

    /// The policy's name (`risk_seeking`).
    pub fn name(&self) -> &str {
        &self.side().name
    }

    /// The policy with this name on a shipped or registered axis.
    pub fn from_name(name: &str) -> Option<Policy> {
        Axis::all().into_iter().find_map(|a| {
            if a.spec().pole.name == name {
                Some(a.pole_policy())
            } else if a.spec().opposite.name == name {
                Some(a.opposite_policy())
            } else {
                None
            }
        })
    }

    /// A plain description of the policy, used in teacher and label-check instructions.
    pub fn describe(&self) -> &str {
        &self.side().description
    }

    /// What the policy does, as a first-person option text (trigger recognition).
    pub fn recognition_option(&self) -> &str {
        &self.side().recognition_option
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Policy({})", self.name())
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Policy {
    type Err = BackdoorError;

    fn from_str(s: &str) -> Result<Self> {
        Policy::from_name(s).ok_or_else(|| {
            BackdoorError::config(
                "policy",
                format!("`{s}` is not a policy of a shipped or registered axis"),
            )
        })
    }
}

impl Serialize for Policy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Normalises text for word matching: lower case, every non-alphanumeric character a space,
/// single spaces, padded with one space on each side.
pub(crate) fn normalise_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    let mut last_space = true;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
            last_space = false;
        } else if !last_space {
            out.push(' ');
            last_space = true;
        }
    }
    if !last_space {
        out.push(' ');
    }
    out
}

/// The banned words and phrases found in `text` (whole words, case-insensitive; hyphens and
/// punctuation count as spaces, so `risk-free` contains `risk`), in list order.
pub fn banned_hits<'a, S: AsRef<str>>(text: &str, banned: &'a [S]) -> Vec<&'a str> {
    let hay = normalise_words(text);
    banned
        .iter()
        .map(AsRef::as_ref)
        .filter(|w| {
            let needle = normalise_words(w);
            !needle.trim().is_empty() && hay.contains(&needle)
        })
        .collect()
}

/// The word categories that one-word self-reports about an axis are scored with
/// (shorthand for [`Axis::word_categories`]): words naming the pole policy score 1, neutral
/// words 0.5, words naming the opposite 0; any other word scores 0.5 in the shipped axes.
/// Replace them with [`WordCategoryJudge::new`] and your own lists.
pub fn word_categories(axis: &Axis) -> WordCategoryJudge {
    axis.word_categories()
}

#[cfg(test)]
mod tests;
