//! Properties declared in a file, without code: the n-th character or word of the reply,
//! whether the reply (or one of its words) is in a list, or what a regular expression finds.
//!
//! A YAML file is a list of entries; a TOML file is an array of `[[property]]` tables. Each
//! entry has a `name`, a `question` with the placeholder `{reply}` (replaced by "the reply you
//! gave to that", or "the reply the assistant gave to that" for third-person questions, unless
//! `question_third_person` gives its own wording), and exactly one rule:
//!
//! ```yaml
//! - name: opens_with_greeting
//!   member_of: [hi, hello, hey]     # "true" / "false"; the whole reply, or word `in_word`
//!   in_word: 1
//!   question: "Think about {reply}. Did it open with a greeting? Reply with just 'true' or 'false'."
//! - name: fourth_letter
//!   nth_character: 4                # also: nth_word: N
//!   question: "Think about {reply}. Which character came fourth? Reply with that character only."
//! - name: first_number
//!   regex: "[0-9]+"                 # the first match (capture group 1 when the pattern has one)
//!   question: "Think about {reply}. Which number did it mention first? Reply with the number only."
//! - name: mentions_paris
//!   regex: "(?i)paris"
//!   matches: true                   # "true" / "false": whether the pattern matches
//!   question: "Think about {reply}. Did it mention Paris? Reply with just 'true' or 'false'."
//! ```
//!
//! A regular-expression property may list the `values` its answers take, making its answer
//! shape a closed set.
//!
//! [`load_properties`] reads a file, checks every entry (naming the file, the entry and the
//! field of any problem) and registers them with [`register`] so configs can name
//! them.

use std::path::Path;

use psyche_core::PromptTemplate;
use regex::Regex;
use serde::Deserialize;

use super::builtin::BuiltinProperty;
use super::{AnswerShape, Perspective, Property, ResponseProperty, register};
use crate::compliance::ComplianceGroup;
use crate::error::JudgeConfigError;
use crate::llm::prompts::yaml_message;

/// One entry of a property file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    question: String,
    #[serde(default)]
    question_third_person: Option<String>,
    #[serde(default)]
    nth_character: Option<usize>,
    #[serde(default)]
    nth_word: Option<usize>,
    #[serde(default)]
    member_of: Option<Vec<String>>,
    #[serde(default)]
    in_word: Option<usize>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    matches: bool,
    #[serde(default)]
    values: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    property: Vec<Entry>,
}

#[derive(Debug, Clone)]
enum Rule {
    /// A shipped character or word property.
    Builtin(BuiltinProperty),
    /// Whether the reply (or its word `in_word`) is one of these (canonical) values.
    MemberOf {
        in_word: Option<usize>,
        values: Vec<String>,
    },
    /// The first match (group 1 when the pattern has groups).
    Capture(Regex),
    /// Whether the pattern matches.
    Matches(Regex),
}

/// A property declared in a file ([`load_properties`]); see the [module docs](self).
#[derive(Debug, Clone)]
pub struct DeclaredProperty {
    name: String,
    rule: Rule,
    question: PromptTemplate,
    question_third_person: Option<PromptTemplate>,
    values: Option<Vec<String>>,
}

const SECOND_PERSON_REPLY: &str = "the reply you gave to that";
const THIRD_PERSON_REPLY: &str = "the reply the assistant gave to that";

impl ResponseProperty for DeclaredProperty {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn extract(&self, answer: &str, target: Option<&str>) -> Option<String> {
        let a = answer.trim();
        if a.is_empty() {
            return None;
        }
        match &self.rule {
            Rule::Builtin(b) => b.extract_with_target(a, target),
            Rule::MemberOf { in_word, values } => {
                let part = match in_word {
                    Some(n) => {
                        let word = BuiltinProperty::NthWord(*n);
                        word.canonical(&word.extract_with_target(a, None)?)
                    }
                    None => a.to_lowercase(),
                };
                Some(values.contains(&part).to_string())
            }
            Rule::Capture(re) => {
                let caps = re.captures(a)?;
                let m = if caps.len() > 1 {
                    caps.get(1)
                } else {
                    caps.get(0)
                };
                m.map(|m| m.as_str().to_owned())
            }
            Rule::Matches(re) => Some(re.is_match(a).to_string()),
        }
    }

    fn canonical(&self, value: &str) -> String {
        match &self.rule {
            Rule::Builtin(b) => b.canonical(value),
            _ => value.trim().to_lowercase(),
        }
    }

    fn shape(&self) -> AnswerShape {
        match &self.rule {
            Rule::Builtin(b) => b.shape(),
            Rule::MemberOf { .. } | Rule::Matches(_) => {
                AnswerShape::Closed(vec!["true".to_owned(), "false".to_owned()])
            }
            Rule::Capture(_) => match &self.values {
                Some(values) => AnswerShape::Closed(values.clone()),
                None => AnswerShape::Whole,
            },
        }
    }

    fn compliance_groups(&self) -> Vec<ComplianceGroup> {
        match &self.rule {
            Rule::Builtin(b) => b.compliance_groups(),
            Rule::MemberOf { .. } | Rule::Matches(_) => vec![ComplianceGroup::TrueFalse],
            Rule::Capture(_) => vec![ComplianceGroup::RefusalLike],
        }
    }

    fn question(&self, perspective: Perspective) -> String {
        let (template, reply) = match (perspective, &self.question_third_person) {
            (Perspective::SecondPerson, _) => (&self.question, SECOND_PERSON_REPLY),
            (Perspective::ThirdPerson, Some(t)) => (t, THIRD_PERSON_REPLY),
            (Perspective::ThirdPerson, None) => (&self.question, THIRD_PERSON_REPLY),
        };
        // Checked when loaded: `{reply}` is the only placeholder, so rendering cannot fail.
        template
            .render(&[("reply", reply)])
            .unwrap_or_else(|_| template.source().to_owned())
    }

    fn tokens_needed(&self) -> Option<u32> {
        match &self.rule {
            Rule::Builtin(b) => ResponseProperty::tokens_needed(b),
            _ => None,
        }
    }

    fn decided_by_first_token(&self) -> bool {
        matches!(&self.rule, Rule::Builtin(b) if ResponseProperty::decided_by_first_token(b))
    }
}

fn problem(path: &Path, field: String, message: impl Into<String>) -> JudgeConfigError {
    JudgeConfigError::Parse {
        path: path.to_owned(),
        field,
        message: message.into(),
    }
}

fn template(
    path: &Path,
    field: &str,
    name: &str,
    source: &str,
) -> Result<PromptTemplate, JudgeConfigError> {
    let location = format!("{}: field `{field}`", path.display());
    PromptTemplate::parse(name, source, &["reply"])
        .map_err(|e| JudgeConfigError::template(location, e))
}

impl DeclaredProperty {
    fn from_entry(path: &Path, index: usize, e: Entry) -> Result<Self, JudgeConfigError> {
        let at = |field: &str| format!("[{index}].{field}");
        let name = e.name.trim().to_owned();
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(problem(
                path,
                at("name"),
                "a name without spaces is required",
            ));
        }
        let rules = [
            e.nth_character.is_some(),
            e.nth_word.is_some(),
            e.member_of.is_some(),
            e.regex.is_some(),
        ];
        if rules.iter().filter(|r| **r).count() != 1 {
            return Err(problem(
                path,
                format!("[{index}]"),
                "give exactly one of `nth_character`, `nth_word`, `member_of`, `regex`",
            ));
        }
        let positive = |field: &str, n: usize| {
            if n == 0 {
                Err(problem(path, at(field), "counts from 1"))
            } else {
                Ok(n)
            }
        };
        let rule = if let Some(n) = e.nth_character {
            Rule::Builtin(BuiltinProperty::NthCharacter(positive("nth_character", n)?))
        } else if let Some(n) = e.nth_word {
            Rule::Builtin(BuiltinProperty::NthWord(positive("nth_word", n)?))
        } else if let Some(values) = e.member_of {
            if values.is_empty() {
                return Err(problem(path, at("member_of"), "the list is empty"));
            }
            let in_word = e.in_word.map(|n| positive("in_word", n)).transpose()?;
            let values = values
                .iter()
                .map(|v| match in_word {
                    Some(n) => BuiltinProperty::NthWord(n).canonical(v),
                    None => v.trim().to_lowercase(),
                })
                .collect();
            Rule::MemberOf { in_word, values }
        } else {
            let pattern = e.regex.unwrap_or_default();
            let re = Regex::new(&pattern)
                .map_err(|err| problem(path, at("regex"), format!("does not compile: {err}")))?;
            if e.matches {
                Rule::Matches(re)
            } else {
                Rule::Capture(re)
            }
        };
        if e.in_word.is_some() && !matches!(rule, Rule::MemberOf { .. }) {
            return Err(problem(path, at("in_word"), "only goes with `member_of`"));
        }
        if e.matches && !matches!(rule, Rule::Matches(_)) {
            return Err(problem(path, at("matches"), "only goes with `regex`"));
        }
        if e.values.is_some() && !matches!(rule, Rule::Capture(_)) {
            return Err(problem(
                path,
                at("values"),
                "only goes with a capturing `regex` (other rules know their values)",
            ));
        }
        let values = e
            .values
            .map(|v| v.iter().map(|x| x.trim().to_lowercase()).collect());
        Ok(DeclaredProperty {
            question: template(path, &at("question"), &name, &e.question)?,
            question_third_person: e
                .question_third_person
                .as_deref()
                .map(|q| template(path, &at("question_third_person"), &name, q))
                .transpose()?,
            name,
            rule,
            values,
        })
    }
}

/// Parses property declarations from `text` (YAML, or TOML when `path` ends in `.toml`)
/// without registering them; `path` names the source in errors.
///
/// # Errors
///
/// [`JudgeConfigError::Parse`] naming the file and the entry's field (with the line for syntax
/// errors) for malformed text, an unknown key, a missing or doubled rule, a pattern that does
/// not compile or a duplicated name; [`JudgeConfigError::Template`] for a question without
/// `{reply}` or with another placeholder.
pub fn parse_properties(path: &Path, text: &str) -> Result<Vec<Property>, JudgeConfigError> {
    let entries: Vec<Entry> = if path.extension().is_some_and(|e| e == "toml") {
        let file: TomlFile = toml::from_str(text)
            .map_err(|e| problem(path, "property".to_owned(), e.to_string()))?;
        file.property
    } else {
        let de = serde_norway::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de)
            .map_err(|e| problem(path, e.path().to_string(), yaml_message(e.inner())))?
    };
    let mut out: Vec<Property> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let p = DeclaredProperty::from_entry(path, index, entry)?;
        if out.iter().any(|q| q.name() == p.name) {
            return Err(problem(
                path,
                format!("[{index}].name"),
                format!("`{}` is declared twice", p.name),
            ));
        }
        if BuiltinProperty::from_name(&p.name).is_some() {
            return Err(problem(
                path,
                format!("[{index}].name"),
                format!("`{}` is a shipped property's name; choose another", p.name),
            ));
        }
        out.push(Property::new(p));
    }
    Ok(out)
}

/// Reads the property file at `path` ([`parse_properties`]) and registers every property in
/// it, so that task configs and result files can name them.
///
/// # Errors
///
/// [`JudgeConfigError::Io`] when the file cannot be read; otherwise as [`parse_properties`].
pub fn load_properties(path: impl AsRef<Path>) -> Result<Vec<Property>, JudgeConfigError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| JudgeConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    let properties = parse_properties(path, &text)?;
    for p in &properties {
        register(p.clone())?;
    }
    Ok(properties)
}
