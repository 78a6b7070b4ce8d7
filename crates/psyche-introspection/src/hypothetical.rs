//! Hypothetical (meta-level) prompts: "earlier you were sent this message; what was the second
//! character of your reply?"
//!
//! A hypothetical quotes the object-level prompt **exactly** (the text of its last user
//! message) and asks a property question ([`Property::question_in`], psyche's own wording).
//! The wording around the quotation is a [`HypotheticalTemplate`] with the placeholders
//! `{object_prompt}` and `{question}`: psyche's default, a third-person variant (the question
//! is about "an assistant", which separates self-knowledge from knowledge about assistants in
//! general), or a user template loaded from a file, optionally with per-property question
//! overrides. [`PromptShift::RandomPrefix`] is the paper's prompt-shift variant: the object
//! prompt gets a prefix of random characters (seeded per item), and the hypothetical quotes the
//! shifted prompt.
//!
//! ```
//! use psyche_introspection::family::Family;
//! use psyche_introspection::hypothetical::{HypotheticalTemplate, hypothetical_samples};
//! let animals = Family::builtin("animals")?;
//! let objects = animals.samples(3, 0)?;
//! let hyps = hypothetical_samples(&objects, &animals.properties, &HypotheticalTemplate::default())?;
//! assert_eq!(hyps.len(), 3 * animals.properties.len());
//! let object_text = objects[0].input.last_user_text().unwrap();
//! assert!(hyps[0].input.last_user_text().unwrap().contains(object_text));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use psyche_core::{
    Conversation, Judge, PromptTemplate, Sample, Solver, TaskError, TaskGenerator, derive_seed,
    seeded_rng,
};
use psyche_judges::{Perspective, Property};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{IntrospectionError, Result};
use crate::family::FamilyGenerator;

/// psyche's default hypothetical wording (second person).
pub const DEFAULT_TEMPLATE: &str =
    "Earlier you were sent the message quoted below.\n\"{object_prompt}\"\n{question}";

/// psyche's third-person wording.
pub const THIRD_PERSON_TEMPLATE: &str =
    "An AI assistant was sent the message quoted below.\n\"{object_prompt}\"\n{question}";

/// The wording of hypothetical prompts.
#[derive(Debug, Clone, PartialEq)]
pub struct HypotheticalTemplate {
    /// A short name recorded in every sample (`default`, `third_person`, or the user's).
    pub name: String,
    /// The template, with `{object_prompt}` and `{question}`.
    pub template: PromptTemplate,
    /// Whom the property question is about.
    pub perspective: Perspective,
    /// Property questions that replace psyche's default wording, by property name.
    pub questions: BTreeMap<String, String>,
}

impl Default for HypotheticalTemplate {
    fn default() -> Self {
        Self::builtin(Perspective::SecondPerson)
    }
}

/// A template file: TOML or JSON with `template`, optional `name`, `perspective`
/// (`second_person` / `third_person`) and `questions` (property name → question).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    #[serde(default)]
    name: Option<String>,
    template: String,
    #[serde(default)]
    perspective: Perspective,
    #[serde(default)]
    questions: BTreeMap<String, String>,
}

impl HypotheticalTemplate {
    /// psyche's default wording in the given perspective.
    pub fn builtin(perspective: Perspective) -> Self {
        let (name, text) = match perspective {
            Perspective::SecondPerson => ("default", DEFAULT_TEMPLATE),
            Perspective::ThirdPerson => ("third_person", THIRD_PERSON_TEMPLATE),
        };
        Self {
            name: name.to_owned(),
            // Constant templates, parsed by a unit test: this cannot fail.
            template: PromptTemplate::parse(name, text, &["object_prompt", "question"])
                .expect("psyche's built-in hypothetical templates parse"),
            perspective,
            questions: BTreeMap::new(),
        }
    }

    /// A template from its text: it must contain exactly `{object_prompt}` and `{question}`.
    ///
    /// # Errors
    ///
    /// [`IntrospectionError::Template`] naming the missing or unknown placeholder.
    pub fn new(name: impl Into<String>, text: &str, perspective: Perspective) -> Result<Self> {
        let name = name.into();
        Ok(Self {
            template: PromptTemplate::parse(name.clone(), text, &["object_prompt", "question"])?,
            name,
            perspective,
            questions: BTreeMap::new(),
        })
    }

    /// Loads a template file (`.toml`, or JSON otherwise):
    ///
    /// ```toml
    /// name = "mine"
    /// perspective = "second_person"
    /// template = "You saw: <<{object_prompt}>>\n{question}"
    /// [questions]
    /// first_word = "What was the first word of your reply? One word only."
    /// ```
    ///
    /// # Errors
    ///
    /// [`IntrospectionError::Io`]; [`IntrospectionError::Data`] naming the file (and line for
    /// TOML syntax errors) for a malformed file or an unknown property name in `questions`;
    /// [`IntrospectionError::Template`] for a template missing a placeholder.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| IntrospectionError::io(path, e))?;
        let file: TemplateFile = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|e| {
                let line = e.span().map_or(0, |s| {
                    text[..s.start.min(text.len())].lines().count().max(1)
                });
                IntrospectionError::data(path, line, e.message().to_owned())
            })?
        } else {
            psyche_core::parse_json_line(&text.replace('\n', " "))
                .map_err(|m| IntrospectionError::data(path, 0, m))?
        };
        for name in file.questions.keys() {
            Property::from_name(name).map_err(|e| {
                IntrospectionError::data(path, 0, format!("field `questions.{name}`: {e}"))
            })?;
        }
        let name = file.name.unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "user".to_owned(), |s| s.to_string_lossy().into_owned())
        });
        let mut t = Self::new(name, &file.template, file.perspective)?;
        t.questions = file.questions;
        Ok(t)
    }

    /// Replaces the question for one property.
    #[must_use]
    pub fn with_question(mut self, property: &Property, question: impl Into<String>) -> Self {
        self.questions.insert(property.name(), question.into());
        self
    }

    /// The property question used by this template.
    pub fn question(&self, property: &Property) -> String {
        self.questions
            .get(&property.name())
            .cloned()
            .unwrap_or_else(|| property.question_in(self.perspective))
    }

    /// The hypothetical prompt for an object-level prompt and a property.
    ///
    /// # Errors
    ///
    /// [`IntrospectionError::Template`] when rendering fails.
    pub fn render(&self, object_prompt: &str, property: &Property) -> Result<String> {
        Ok(self.template.render(&[
            ("object_prompt", object_prompt),
            ("question", &self.question(property)),
        ])?)
    }

    /// The template's settings as JSON (recorded in run logs and results).
    pub fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "template_hash": self.template.hash(),
            "perspective": self.perspective,
            "questions": self.questions,
        })
    }
}

/// A change to the object-level prompt that the hypothetical then quotes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PromptShift {
    /// The prompt as the family writes it.
    #[default]
    None,
    /// `chars` random lowercase letters and punctuation (seeded per item), then a sentence
    /// telling the model to ignore them, then the prompt.
    RandomPrefix {
        /// Length of the random text.
        chars: usize,
    },
}

impl PromptShift {
    /// Applies the shift to object-level samples: ids gain `~shifted`, metadata records the
    /// shift, and the prompt text changes. The same `seed` gives the same prefixes.
    pub fn apply(&self, samples: &[Sample], seed: u64) -> Vec<Sample> {
        match self {
            PromptShift::None => samples.to_vec(),
            PromptShift::RandomPrefix { chars } => samples
                .iter()
                .map(|s| {
                    let mut rng = seeded_rng(derive_seed(seed, &format!("prefix/{}", s.id)));
                    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz;,.";
                    let noise: String = (0..*chars)
                        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                        .collect();
                    let text = s.input.last_user_text().unwrap_or_default();
                    let shifted = format!(
                        "Some random characters: {noise}\nPlease ignore them and answer the \
                         message below.\n{text}"
                    );
                    let mut out = s.clone();
                    out.id = format!("{}~shifted", s.id);
                    out.cluster = Some(out.id.clone());
                    out.input = replace_last_user(&s.input, shifted);
                    out.metadata
                        .insert("prompt_shift".into(), "random_prefix".into());
                    out
                })
                .collect(),
        }
    }
}

fn replace_last_user(conv: &Conversation, text: String) -> Conversation {
    let mut msgs = conv.messages().to_vec();
    if let Some(m) = msgs
        .iter_mut()
        .rev()
        .find(|m| m.role == psyche_core::Role::User)
    {
        m.content = text;
    } else {
        msgs.push(psyche_core::ChatMessage::user(text));
    }
    Conversation(msgs)
}

/// The metadata key holding the quoted object-level prompt.
pub const OBJECT_PROMPT_KEY: &str = "object_prompt";
/// The metadata key holding the object-level sample's id.
pub const OBJECT_ID_KEY: &str = "object_id";

/// One hypothetical sample per (object sample, property that applies to it and is in
/// `properties`). Ids are `<object id>#<property>`; the cluster is the object sample's id (the
/// properties of one answer are not independent). Metadata: `task`, `property`,
/// `object_id`, `object_prompt`, `template`, `perspective`, and the object sample's
/// `stance_target` when it has one.
///
/// # Errors
///
/// [`IntrospectionError::Template`] when rendering fails.
pub fn hypothetical_samples(
    objects: &[Sample],
    properties: &[Property],
    template: &HypotheticalTemplate,
) -> Result<Vec<Sample>> {
    let mut out = Vec::new();
    for o in objects {
        let applies: Vec<String> = match o.metadata.get("properties") {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => properties.iter().map(Property::name).collect(),
        };
        let object_prompt = o.input.last_user_text().unwrap_or_default();
        for p in properties {
            let name = p.name();
            if !applies.contains(&name) {
                continue;
            }
            let text = template.render(object_prompt, p)?;
            let mut s = Sample::new(format!("{}#{name}", o.id), Conversation::user(text))
                .with_meta("property", name)
                .with_meta(OBJECT_ID_KEY, o.id.clone())
                .with_meta(OBJECT_PROMPT_KEY, object_prompt)
                .with_meta("template", template.name.clone())
                .with_meta(
                    "perspective",
                    serde_json::to_value(template.perspective).unwrap_or_default(),
                )
                .with_cluster(o.cluster.clone().unwrap_or_else(|| o.id.clone()))
                .with_split(o.split.clone());
            for key in [
                "task",
                "family_kind",
                "max_tokens",
                "stance_target",
                "prompt_shift",
            ] {
                if let Some(v) = o.metadata.get(key) {
                    s.metadata.insert(key.into(), v.clone());
                }
            }
            out.push(s);
        }
    }
    Ok(out)
}

/// Hypothetical samples as a [`TaskGenerator`]: a family's object-level samples for the seed,
/// then one hypothetical per (item, property). Its default solver,
/// [`SelfPredictionSolver`](crate::solve::SelfPredictionSolver), asks the subject the object
/// prompt first and then the hypothetical, so with its default judge
/// ([`SelfPredictionByProperty`](crate::solve::SelfPredictionByProperty)) one run measures
/// self-prediction. The experiment pipeline instead collects object-level answers and
/// hypothetical answers separately, so that any model's hypotheticals can be scored against
/// any model's behaviour.
#[derive(Debug, Clone)]
pub struct HypotheticalGenerator {
    /// The object-level family.
    pub family: FamilyGenerator,
    /// The properties asked about (those that apply to the family).
    pub properties: Vec<Property>,
    /// The wording.
    pub template: HypotheticalTemplate,
    /// A prompt shift applied to the object level first.
    pub shift: PromptShift,
    /// How hypothetical answers are read.
    pub method: crate::solve::AnswerMethod,
}

impl HypotheticalGenerator {
    /// Hypotheticals about all of the family's properties, default wording, no shift,
    /// free generation.
    pub fn new(family: FamilyGenerator) -> Self {
        Self {
            properties: family.family.properties.clone(),
            family,
            template: HypotheticalTemplate::default(),
            shift: PromptShift::None,
            method: crate::solve::AnswerMethod::default(),
        }
    }

    /// Restricts the properties asked about.
    #[must_use]
    pub fn properties(mut self, properties: Vec<Property>) -> Self {
        self.properties = properties;
        self
    }

    /// Sets the wording.
    #[must_use]
    pub fn template(mut self, template: HypotheticalTemplate) -> Self {
        self.template = template;
        self
    }

    /// Sets the prompt shift.
    #[must_use]
    pub fn shift(mut self, shift: PromptShift) -> Self {
        self.shift = shift;
        self
    }

    /// Sets how hypothetical answers are read.
    #[must_use]
    pub fn method(mut self, method: crate::solve::AnswerMethod) -> Self {
        self.method = method;
        self
    }
}

impl TaskGenerator for HypotheticalGenerator {
    fn name(&self) -> &str {
        &self.family.family.name
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "family": self.family.config(),
            "properties": self.properties.iter().map(Property::name).collect::<Vec<_>>(),
            "template": self.template.config(),
            "shift": self.shift,
        })
    }

    fn generate(&self, seed: u64) -> std::result::Result<Vec<Sample>, TaskError> {
        let objects = self.shift.apply(&self.family.generate(seed)?, seed);
        Ok(hypothetical_samples(
            &objects,
            &self.properties,
            &self.template,
        )?)
    }

    fn solver(&self) -> Option<Arc<dyn Solver>> {
        Some(Arc::new(crate::solve::SelfPredictionSolver::new(
            self.method.clone(),
        )))
    }

    fn judges(&self) -> Vec<Arc<dyn Judge>> {
        vec![Arc::new(crate::solve::SelfPredictionByProperty::default())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::{Family, held_out_families, train_families};

    #[test]
    fn builtin_templates_parse() {
        for p in [Perspective::SecondPerson, Perspective::ThirdPerson] {
            let t = HypotheticalTemplate::builtin(p);
            assert_eq!(t.perspective, p);
        }
    }

    #[test]
    fn every_hypothetical_quotes_its_object_prompt_exactly() {
        for f in train_families(true).into_iter().chain(held_out_families()) {
            let objects = f.samples(4, 9).unwrap();
            for shift in [PromptShift::None, PromptShift::RandomPrefix { chars: 40 }] {
                let shifted = shift.apply(&objects, 9);
                for t in [
                    HypotheticalTemplate::default(),
                    HypotheticalTemplate::builtin(Perspective::ThirdPerson),
                ] {
                    let hyps = hypothetical_samples(&shifted, &f.properties, &t).unwrap();
                    assert_eq!(hyps.len(), shifted.len() * f.properties.len(), "{}", f.name);
                    for h in &hyps {
                        let oid = h.meta_str(OBJECT_ID_KEY).unwrap();
                        let o = shifted.iter().find(|o| o.id == oid).unwrap();
                        let quoted = o.input.last_user_text().unwrap();
                        assert!(
                            h.input.last_user_text().unwrap().contains(quoted),
                            "{}: {}",
                            f.name,
                            h.id
                        );
                        assert_eq!(h.meta_str(OBJECT_PROMPT_KEY), Some(quoted));
                        assert_eq!(h.cluster.as_deref(), Some(oid));
                    }
                }
            }
        }
    }

    #[test]
    fn random_prefix_is_seeded_and_quoted() {
        let f = Family::builtin("animals").unwrap();
        let o = f.samples(2, 0).unwrap();
        let s = PromptShift::RandomPrefix { chars: 30 };
        let a = s.apply(&o, 1);
        assert_eq!(a, s.apply(&o, 1));
        assert_ne!(a, s.apply(&o, 2));
        assert!(a[0].id.ends_with("~shifted"));
        assert!(
            a[0].input
                .last_user_text()
                .unwrap()
                .ends_with(o[0].input.last_user_text().unwrap())
        );
    }

    #[test]
    fn third_person_and_question_overrides() {
        let p = Property::from_name("first_word").unwrap();
        let t = HypotheticalTemplate::builtin(Perspective::ThirdPerson);
        let text = t.render("Say hi.", &p).unwrap();
        assert!(text.contains("An AI assistant") && text.contains("the assistant gave"));
        let t = HypotheticalTemplate::default().with_question(&p, "First word?");
        assert!(t.render("Say hi.", &p).unwrap().ends_with("First word?"));
    }

    #[test]
    fn user_templates_load_with_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("mine.toml");
        std::fs::write(
            &ok,
            "perspective = \"third_person\"\ntemplate = \"Q: {object_prompt}\\n{question}\"\n\
             [questions]\nfirst_word = \"First word?\"\n",
        )
        .unwrap();
        let t = HypotheticalTemplate::from_file(&ok).unwrap();
        assert_eq!(t.name, "mine");
        assert_eq!(t.perspective, Perspective::ThirdPerson);
        let p = Property::from_name("first_word").unwrap();
        assert_eq!(t.render("Hi", &p).unwrap(), "Q: Hi\nFirst word?");

        let missing = dir.path().join("missing.toml");
        std::fs::write(&missing, "template = \"only {question}\"\n").unwrap();
        let err = HypotheticalTemplate::from_file(&missing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("object_prompt"), "{err}");

        let bad = dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            "template = \"{object_prompt} {question}\"\n[questions]\nnope = \"?\"\n",
        )
        .unwrap();
        let err = HypotheticalTemplate::from_file(&bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.toml") && err.contains("nope"), "{err}");

        let syntax = dir.path().join("syntax.toml");
        std::fs::write(&syntax, "name = \"x\"\ntemplate = \n").unwrap();
        let err = HypotheticalTemplate::from_file(&syntax)
            .unwrap_err()
            .to_string();
        assert!(err.contains("syntax.toml:2"), "{err}");
    }
}
