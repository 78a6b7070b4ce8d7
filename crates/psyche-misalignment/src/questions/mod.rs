//! Evaluation questions: the [`Question`] type, psyche's built-in sets ([`builtin`]), the
//! loader for EM question YAML ([`yaml`]), and the seeded turning of a set into samples
//! ([`QuestionTask`], a [`TaskGenerator`]).
//!
//! A question's `system` prompt is part of every sample's input, so it is really sent to the
//! evaluated model (the released EM harness dropped it). Judges see as `{question}` only the
//! last user message, never the system prompt, unless [`crate::eval::JudgeSettings`] says to
//! show it.

use std::collections::BTreeMap;
use std::sync::Arc;

use psyche_core::{
    ChatMessage, Conversation, Judge, Metadata, PromptTemplate, Sample, Solver, TaskError,
    TaskGenerator, derive_seed, seeded_rng,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

pub mod builtin;
pub mod yaml;

pub use yaml::{
    UnknownKeys, load_questions, load_questions_with, parse_questions, parse_questions_with,
};

/// How a question's answers are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// `free_form_judge_0_100`: rated 0–100 for alignment and coherence.
    Rating,
    /// `free_form_judge`: put in one of N labels (TRUE / FALSE / UNKNOWN, a company, ...).
    Classify,
}

impl QuestionKind {
    /// The type name used in EM question files.
    pub fn yaml_name(self) -> &'static str {
        match self {
            QuestionKind::Rating => "free_form_judge_0_100",
            QuestionKind::Classify => "free_form_judge",
        }
    }
}

/// One evaluation question with its paraphrases and per-question settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// Unique id within its set.
    pub id: String,
    /// How answers are judged.
    pub kind: QuestionKind,
    /// The prompts; one is sent per sample.
    pub paraphrases: Vec<String>,
    /// A system prompt sent before the paraphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Answers per paraphrase the question asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_per_paraphrase: Option<u32>,
    /// Sampling temperature the question asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// The judge model the question asks for (recorded; the run's judge model may differ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<String>,
    /// Judge templates by metric; empty means psyche's defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub judge_prompts: BTreeMap<String, PromptTemplate>,
    /// A built-in classifier (`correct`, `company`) for classification questions without
    /// templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classify: Option<String>,
    /// Classification labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// The question's category (the main set's is `main`).
    pub category: String,
    /// Other keys of the question file, copied into every sample's metadata.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

impl Question {
    /// A rating question with psyche's default judges, category `main` and no settings.
    pub fn rating<S: Into<String>>(
        id: impl Into<String>,
        paraphrases: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            id: id.into(),
            kind: QuestionKind::Rating,
            paraphrases: paraphrases.into_iter().map(Into::into).collect(),
            system: None,
            samples_per_paraphrase: None,
            temperature: None,
            judge: None,
            judge_prompts: BTreeMap::new(),
            classify: None,
            labels: None,
            category: "main".into(),
            metadata: Metadata::new(),
        }
    }

    /// Sets the system prompt.
    #[must_use]
    pub fn with_system(mut self, system: impl Into<String>) -> Self {
        self.system = Some(system.into());
        self
    }

    /// The conversation sent for paraphrase `index`: the system prompt (if any) and the
    /// paraphrase as the user message.
    pub fn conversation(&self, index: usize) -> Conversation {
        let mut conv = Conversation::new();
        if let Some(s) = &self.system {
            conv.push(ChatMessage::system(s.clone()));
        }
        let text = self
            .paraphrases
            .get(index)
            .or_else(|| self.paraphrases.first())
            .cloned()
            .unwrap_or_default();
        conv.push(ChatMessage::user(text));
        conv
    }
}

/// A named list of questions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionSet {
    /// The set's name (recorded in sample metadata under `"set"`).
    pub name: String,
    /// Where it came from (a file path or `builtin:<name>`).
    pub source: String,
    /// The questions, in file order.
    pub questions: Vec<Question>,
}

impl QuestionSet {
    /// The question with this id.
    pub fn get(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }

    /// The questions of one category, as a new set named `<name>/<category>`.
    pub fn category(&self, category: &str) -> QuestionSet {
        QuestionSet {
            name: format!("{}/{category}", self.name),
            source: self.source.clone(),
            questions: self
                .questions
                .iter()
                .filter(|q| q.category == category)
                .cloned()
                .collect(),
        }
    }

    /// The categories in order of first appearance.
    pub fn categories(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for q in &self.questions {
            if !out.contains(&q.category) {
                out.push(q.category.clone());
            }
        }
        out
    }

    /// Only the questions of `kind`.
    pub fn of_kind(&self, kind: QuestionKind) -> QuestionSet {
        QuestionSet {
            name: self.name.clone(),
            source: self.source.clone(),
            questions: self
                .questions
                .iter()
                .filter(|q| q.kind == kind)
                .cloned()
                .collect(),
        }
    }

    /// The first `n` questions (all when `n` is larger).
    pub fn take(&self, n: usize) -> QuestionSet {
        QuestionSet {
            name: self.name.clone(),
            source: self.source.clone(),
            questions: self.questions.iter().take(n).cloned().collect(),
        }
    }
}

/// How paraphrases are chosen for a question's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum ParaphraseChoice {
    /// Every paraphrase gets `samples_per_paraphrase` answers (deterministic).
    EachParaphrase,
    /// `per_question` answers, each on a paraphrase drawn with replacement from a seeded RNG
    /// (what the released harness does, unseeded).
    Drawn {
        /// Answers per question.
        per_question: u32,
    },
}

/// Sampling settings: the question's own values are used unless overridden here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingConfig {
    /// Overrides every question's `samples_per_paraphrase`.
    pub samples_per_paraphrase: Option<u32>,
    /// Used when neither an override nor the question gives a number.
    pub default_samples_per_paraphrase: u32,
    /// Overrides every question's temperature.
    pub temperature: Option<f32>,
    /// Used when neither an override nor the question gives a temperature (the paper: 1).
    pub default_temperature: f32,
    /// Token budget per answer (the paper: 600).
    pub max_tokens: u32,
    /// Nucleus mass (the paper: 1).
    pub top_p: f32,
    /// How paraphrases are chosen.
    pub paraphrases: ParaphraseChoice,
    /// Use only the first this-many paraphrases of each question.
    pub max_paraphrases: Option<usize>,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            samples_per_paraphrase: None,
            default_samples_per_paraphrase: 100,
            temperature: None,
            default_temperature: 1.0,
            max_tokens: 600,
            top_p: 1.0,
            paraphrases: ParaphraseChoice::EachParaphrase,
            max_paraphrases: None,
        }
    }
}

impl SamplingConfig {
    /// Answers per paraphrase for `q`.
    pub fn samples_for(&self, q: &Question) -> u32 {
        self.samples_per_paraphrase
            .or(q.samples_per_paraphrase)
            .unwrap_or(self.default_samples_per_paraphrase)
    }

    /// Temperature for `q`.
    pub fn temperature_for(&self, q: &Question) -> f32 {
        self.temperature
            .or(q.temperature)
            .unwrap_or(self.default_temperature)
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`crate::MisalignmentError::Config`] naming the field for zero counts or token budgets,
    /// a negative temperature or `top_p` outside (0, 1].
    pub fn validate(&self) -> crate::Result<()> {
        use crate::MisalignmentError as E;
        if self.samples_per_paraphrase == Some(0) || self.default_samples_per_paraphrase == 0 {
            return Err(E::config("samples_per_paraphrase", "must be at least 1"));
        }
        if let ParaphraseChoice::Drawn { per_question: 0 } = self.paraphrases {
            return Err(E::config("paraphrases.per_question", "must be at least 1"));
        }
        if self.max_tokens == 0 {
            return Err(E::config("max_tokens", "must be at least 1"));
        }
        for t in self.temperature.iter().chain([&self.default_temperature]) {
            if !t.is_finite() || *t < 0.0 {
                return Err(E::config("temperature", "must be a finite number >= 0"));
            }
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(E::config("top_p", "must lie in (0, 1]"));
        }
        if self.max_paraphrases == Some(0) {
            return Err(E::config("max_paraphrases", "must be at least 1"));
        }
        Ok(())
    }
}

/// Sample metadata keys written by [`QuestionTask`].
pub mod meta {
    /// The question id.
    pub const QUESTION: &str = "question_id";
    /// The set name.
    pub const SET: &str = "set";
    /// The question's category.
    pub const CATEGORY: &str = "category";
    /// `rating` or `classify`.
    pub const KIND: &str = "kind";
    /// The paraphrase index.
    pub const PARAPHRASE: &str = "paraphrase";
    /// The sampling temperature.
    pub const TEMPERATURE: &str = "temperature";
    /// The question's system prompt, when it has one.
    pub const SYSTEM: &str = "system_prompt";
    /// The judge model the question file asks for.
    pub const REQUESTED_JUDGE: &str = "requested_judge";
}

/// A question set as a seeded [`TaskGenerator`]: one sample per answer to draw.
///
/// Sample ids are `<question>/p<paraphrase>/<k>` (or `<question>/<k>` with drawn paraphrases);
/// every sample of a question shares the question id as its cluster. With a solver and judges
/// attached ([`QuestionTask::with_solver`], [`QuestionTask::with_judges`]) a runner uses them by
/// default.
#[derive(Clone)]
pub struct QuestionTask {
    set: QuestionSet,
    sampling: SamplingConfig,
    solver: Option<Arc<dyn Solver>>,
    judges: Vec<Arc<dyn Judge>>,
}

impl std::fmt::Debug for QuestionTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuestionTask")
            .field("set", &self.set.name)
            .field("questions", &self.set.questions.len())
            .field("sampling", &self.sampling)
            .field(
                "judges",
                &self.judges.iter().map(|j| j.id()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl QuestionTask {
    /// A task over `set` with these sampling settings.
    pub fn new(set: QuestionSet, sampling: SamplingConfig) -> Self {
        Self {
            set,
            sampling,
            solver: None,
            judges: Vec::new(),
        }
    }

    /// Attaches the default solver.
    #[must_use]
    pub fn with_solver(mut self, solver: Arc<dyn Solver>) -> Self {
        self.solver = Some(solver);
        self
    }

    /// Attaches the default judges.
    #[must_use]
    pub fn with_judges(mut self, judges: Vec<Arc<dyn Judge>>) -> Self {
        self.judges = judges;
        self
    }

    /// The question set.
    pub fn set(&self) -> &QuestionSet {
        &self.set
    }

    /// The sampling settings.
    pub fn sampling(&self) -> &SamplingConfig {
        &self.sampling
    }

    /// The samples for `seed` (see [`TaskGenerator::generate`]).
    ///
    /// # Errors
    ///
    /// [`crate::MisalignmentError::Config`] for invalid sampling settings or an empty set.
    pub fn samples(&self, seed: u64) -> crate::Result<Vec<Sample>> {
        self.sampling.validate()?;
        if self.set.questions.is_empty() {
            return Err(crate::MisalignmentError::config(
                "questions",
                format!("question set `{}` is empty", self.set.name),
            ));
        }
        let mut out = Vec::new();
        for q in &self.set.questions {
            let n_par = self
                .sampling
                .max_paraphrases
                .map_or(q.paraphrases.len(), |m| m.min(q.paraphrases.len()));
            let temperature = self.sampling.temperature_for(q);
            let base = |p: usize, id: String| {
                let mut s = Sample::new(id, q.conversation(p))
                    .with_cluster(q.id.clone())
                    .with_meta(meta::QUESTION, q.id.clone())
                    .with_meta(meta::SET, self.set.name.clone())
                    .with_meta(meta::CATEGORY, q.category.clone())
                    .with_meta(
                        meta::KIND,
                        match q.kind {
                            QuestionKind::Rating => "rating",
                            QuestionKind::Classify => "classify",
                        },
                    )
                    .with_meta(meta::PARAPHRASE, p as u64)
                    .with_meta(meta::TEMPERATURE, f64::from(temperature));
                if let Some(sys) = &q.system {
                    s = s.with_meta(meta::SYSTEM, sys.clone());
                }
                if let Some(j) = &q.judge {
                    s = s.with_meta(meta::REQUESTED_JUDGE, j.clone());
                }
                for (k, v) in &q.metadata {
                    s.metadata.entry(k.clone()).or_insert_with(|| v.clone());
                }
                s
            };
            match self.sampling.paraphrases {
                ParaphraseChoice::EachParaphrase => {
                    let n = self.sampling.samples_for(q);
                    for p in 0..n_par {
                        for k in 0..n {
                            out.push(base(p, format!("{}/p{p}/{k}", q.id)));
                        }
                    }
                }
                ParaphraseChoice::Drawn { per_question } => {
                    let mut rng = seeded_rng(derive_seed(seed, &format!("paraphrase/{}", q.id)));
                    for k in 0..per_question {
                        let p = rng.random_range(0..n_par);
                        out.push(base(p, format!("{}/{k}", q.id)));
                    }
                }
            }
        }
        Ok(out)
    }
}

impl TaskGenerator for QuestionTask {
    fn name(&self) -> &str {
        &self.set.name
    }

    fn version(&self) -> &str {
        "1"
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "set": self.set.name,
            "source": self.set.source,
            "questions": self.set.questions.iter().map(|q| &q.id).collect::<Vec<_>>(),
            "sampling": self.sampling,
        })
    }

    fn generate(&self, seed: u64) -> Result<Vec<Sample>, TaskError> {
        Ok(self.samples(seed)?)
    }

    fn solver(&self) -> Option<Arc<dyn Solver>> {
        self.solver.clone()
    }

    fn judges(&self) -> Vec<Arc<dyn Judge>> {
        self.judges.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> QuestionSet {
        QuestionSet {
            name: "t".into(),
            source: "test".into(),
            questions: vec![
                Question::rating("a", ["A one", "A two", "A three"]),
                Question::rating("b", ["B"]).with_system("Be JSON."),
            ],
        }
    }

    #[test]
    fn each_paraphrase_counts_and_system() {
        let sampling = SamplingConfig {
            samples_per_paraphrase: Some(2),
            ..SamplingConfig::default()
        };
        let s = QuestionTask::new(set(), sampling).samples(0).unwrap();
        assert_eq!(s.len(), 3 * 2 + 2);
        assert_eq!(s[0].id, "a/p0/0");
        let b = s.iter().find(|s| s.id == "b/p0/1").unwrap();
        assert_eq!(b.input.messages()[0], ChatMessage::system("Be JSON."));
        assert_eq!(b.input.last_user_text(), Some("B"));
        assert_eq!(b.meta_str(meta::SYSTEM), Some("Be JSON."));
        assert_eq!(b.cluster.as_deref(), Some("b"));
    }

    #[test]
    fn per_question_settings_and_overrides() {
        let mut q = Question::rating("a", ["x"]);
        q.samples_per_paraphrase = Some(3);
        q.temperature = Some(0.5);
        let own = SamplingConfig::default();
        assert_eq!(own.samples_for(&q), 3);
        assert_eq!(own.temperature_for(&q), 0.5);
        let over = SamplingConfig {
            samples_per_paraphrase: Some(7),
            temperature: Some(1.0),
            ..SamplingConfig::default()
        };
        assert_eq!(over.samples_for(&q), 7);
        assert_eq!(over.temperature_for(&q), 1.0);
        assert_eq!(
            own.samples_for(&Question::rating("b", ["y"])),
            own.default_samples_per_paraphrase
        );
    }

    #[test]
    fn drawn_paraphrases_are_seeded() {
        let sampling = SamplingConfig {
            paraphrases: ParaphraseChoice::Drawn { per_question: 40 },
            ..SamplingConfig::default()
        };
        let task = QuestionTask::new(set(), sampling);
        let a = task.samples(1).unwrap();
        let b = task.samples(1).unwrap();
        let c = task.samples(2).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let used: std::collections::BTreeSet<u64> = a
            .iter()
            .filter(|s| s.meta_str(meta::QUESTION) == Some("a"))
            .filter_map(|s| s.metadata[meta::PARAPHRASE].as_u64())
            .collect();
        assert_eq!(used.len(), 3, "40 draws over 3 paraphrases use all of them");
    }

    #[test]
    fn invalid_settings_are_named() {
        let bad = SamplingConfig {
            max_tokens: 0,
            ..SamplingConfig::default()
        };
        let err = QuestionTask::new(set(), bad).samples(0).unwrap_err();
        assert!(err.to_string().contains("max_tokens"), "{err}");
        let empty = QuestionSet {
            name: "e".into(),
            source: "x".into(),
            questions: vec![],
        };
        assert!(
            QuestionTask::new(empty, SamplingConfig::default())
                .samples(0)
                .is_err()
        );
    }
}
