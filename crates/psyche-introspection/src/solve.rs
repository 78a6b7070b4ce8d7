//! Solvers and judges for object-level and hypothetical prompts.
//!
//! - [`ObjectSolver`]: the object-level answer at temperature 0; with `samples > 1` the mode
//!   of that many answers (for backends that are not deterministic at T = 0, as the paper did
//!   for GPT models). The embedded backend is exact, so one answer suffices
//!   ([`ObjectSamples::Auto`]). An optional system prompt gives a persona.
//! - [`HypotheticalSolver`]: the answer to a hypothetical prompt, read by an
//!   [`AnswerMethod`]: free generation scored as written (the paper's rule), or the
//!   constrained reading that small models need (the most probable *valid* answer under the
//!   model's next-token distribution).
//! - [`SelfPredictionSolver`]: both steps on the same model in one unit of work (object prompt,
//!   then hypothetical), for one-run self-prediction evals such as the quickstart.
//! - Judges: [`object_judges`] (non-answer check and each property's value, for object-level
//!   runs) and [`SelfPredictionByProperty`] (the [`SelfPredictionJudge`] of each sample's
//!   property).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{
    Capability, ChatMessage, Conversation, GenerateRequest, Model, ModelError, Sample, Solution,
    SolveContext, Solver, SolverError,
};
use psyche_judges::compliance::ComplianceChecker;
use psyche_judges::{AnswerShape, Property, SelfPredictionJudge};
use serde::{Deserialize, Serialize};

mod judges;

pub use judges::{
    CANONICAL_EXPECTED_KEY, ObjectComplianceJudge, ObjectPropertyJudge, SelfPredictionByProperty,
    object_judges,
};

/// Metadata key: the object-level answer (trimmed).
pub const OBJECT_ANSWER_KEY: &str = SelfPredictionJudge::OBJECT_ANSWER_KEY;
/// Metadata key: whether the object-level answer is an answer (not a refusal / non-answer).
pub const OBJECT_COMPLIANT_KEY: &str = "object_compliant";
/// Metadata key: how a hypothetical answer was read.
pub const ANSWER_METHOD_KEY: &str = "answer_method";
/// Metadata key: the distribution over valid hypothetical answers (constrained reading),
/// renormalised over them.
pub const ANSWER_DISTRIBUTION_KEY: &str = "answer_distribution";
/// Metadata key: the raw probability mass of each valid hypothetical answer (constrained
/// reading), not renormalised.
pub const ANSWER_MASS_KEY: &str = "answer_mass";
/// Metadata key: the total probability mass on valid hypothetical answers.
pub const VALID_MASS_KEY: &str = "valid_mass";

/// How many object-level answers to draw at T = 0 (their mode is the answer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "n")]
pub enum ObjectSamples {
    /// One answer when the backend reports an exact full distribution (the embedded model:
    /// deterministic), else the mode of 5 (the paper's setting for API models).
    #[default]
    Auto,
    /// Exactly this many (≥ 1).
    Fixed(u32),
}

impl ObjectSamples {
    /// The count for `model`.
    pub fn count(self, model: &dyn Model) -> u32 {
        match self {
            ObjectSamples::Auto => {
                if model.capabilities().full_distribution {
                    1
                } else {
                    5
                }
            }
            ObjectSamples::Fixed(n) => n.max(1),
        }
    }
}

/// The object-level solver: a greedy answer to the sample's prompt (token budget from the
/// sample's `max_tokens` metadata, else [`ObjectSolver::max_tokens`]).
///
/// The output is the trimmed answer (the mode of `samples` answers when more than one).
/// Metadata: `object_answer`, `object_compliant` (false for refusals and non-answers, with
/// `object_noncompliance` saying why) and `object_samples`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectSolver {
    /// Default token budget.
    pub max_tokens: u32,
    /// How many answers to draw.
    pub samples: ObjectSamples,
    /// A system prompt placed before the sample's messages (a persona).
    pub system_prompt: Option<String>,
    /// Rules for refusals and non-answers.
    #[serde(skip)]
    pub compliance: ComplianceChecker,
}

impl Default for ObjectSolver {
    fn default() -> Self {
        Self {
            max_tokens: 24,
            samples: ObjectSamples::Auto,
            system_prompt: None,
            compliance: ComplianceChecker::default(),
        }
    }
}

impl ObjectSolver {
    /// Answers under this system prompt (a persona).
    #[must_use]
    pub fn with_system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.system_prompt = Some(prompt.into());
        self
    }

    /// Sets how many answers are drawn.
    #[must_use]
    pub fn samples(mut self, samples: ObjectSamples) -> Self {
        self.samples = samples;
        self
    }

    /// The conversation sent for `sample`.
    pub fn conversation(&self, sample: &Sample) -> Conversation {
        match &self.system_prompt {
            Some(sys) => {
                let mut msgs = vec![ChatMessage::system(sys.clone())];
                msgs.extend(
                    sample
                        .input
                        .messages()
                        .iter()
                        .filter(|m| m.role != psyche_core::Role::System)
                        .cloned(),
                );
                Conversation(msgs)
            }
            None => sample.input.clone(),
        }
    }

    /// The object-level answer of `model` to `sample` (trimmed; the mode when several are
    /// drawn) and the usage.
    ///
    /// # Errors
    ///
    /// The model's errors.
    pub async fn answer(
        &self,
        model: &dyn Model,
        sample: &Sample,
        seed: u64,
    ) -> Result<(String, psyche_core::Usage, u32), ModelError> {
        let max_tokens = sample
            .metadata
            .get("max_tokens")
            .and_then(serde_json::Value::as_u64)
            .map_or(self.max_tokens, |m| m as u32);
        let n = self.samples.count(model);
        let request = GenerateRequest::new(self.conversation(sample))
            .temperature(0.0)
            .max_tokens(max_tokens)
            .n(n)
            .seed(seed);
        let response = model.generate(&request).await?;
        if response.choices.is_empty() {
            return Err(ModelError::InvalidResponse(format!(
                "model `{}` returned no choices",
                model.id()
            )));
        }
        let answers: Vec<String> = response
            .choices
            .iter()
            .map(|c| c.text.trim().to_owned())
            .collect();
        Ok((mode_of(&answers), response.usage, answers.len() as u32))
    }
}

/// The most common string (ties: the one that appears first).
pub fn mode_of(answers: &[String]) -> String {
    let mut counts: Vec<(&String, usize)> = Vec::new();
    for a in answers {
        match counts.iter_mut().find(|(s, _)| *s == a) {
            Some(c) => c.1 += 1,
            None => counts.push((a, 1)),
        }
    }
    let best = counts.iter().map(|c| c.1).max().unwrap_or(0);
    counts
        .into_iter()
        .find(|c| c.1 == best)
        .map(|c| c.0.clone())
        .unwrap_or_default()
}

#[async_trait]
impl Solver for ObjectSolver {
    fn id(&self) -> &str {
        "introspection-object"
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, SolverError> {
        let (answer, usage, n) = self
            .answer(ctx.model.as_ref(), ctx.sample, ctx.seed)
            .await?;
        let compliance = self.compliance.check_object_answer(&answer);
        let mut s = Solution::new(answer.clone())
            .with_meta(OBJECT_ANSWER_KEY, answer.clone())
            .with_meta(OBJECT_COMPLIANT_KEY, compliance.is_compliant())
            .with_meta("object_samples", n);
        if let Some(r) = compliance.reason() {
            s = s.with_meta("object_noncompliance", r);
        }
        s.transcript = Some(
            self.conversation(ctx.sample)
                .with(ChatMessage::assistant(answer)),
        );
        s.usage = usage;
        Ok(s)
    }
}

/// How a hypothetical answer is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AnswerMethod {
    /// A greedy reply (T = 0) of at most `max_tokens` tokens, scored exactly as written
    /// (lower-cased and trimmed), as the paper does. Small models often add words or
    /// punctuation, which makes the answer non-compliant and wrong.
    Free {
        /// Token budget.
        max_tokens: u32,
    },
    /// The most probable *valid* answer. For properties with a closed answer set
    /// (true/false, even/odd) and for character properties, the model's next-token
    /// distribution is restricted to tokens that are a valid answer (a single character,
    /// punctuation and quotation marks included, or the word `space`; a prefix of
    /// `true`/`false`), merged case-insensitively; the answer is its argmax, and both the raw
    /// mass of each valid answer (it feeds calibration) and the distribution renormalised over
    /// them are recorded. For word properties, the first word of a greedy reply of at most
    /// `word_max_tokens` tokens in the canonical word form ([`Property::canonical`], the form
    /// the truth is compared in). Every value a property can take is thus an answer this
    /// reading can give. Backends without logprobs, or whose
    /// top-k holds no valid token, fall back to `Free` (recorded per answer).
    Constrained {
        /// Token budget for word answers and for the fallback.
        word_max_tokens: u32,
    },
}

impl Default for AnswerMethod {
    fn default() -> Self {
        AnswerMethod::Free { max_tokens: 8 }
    }
}

impl std::str::FromStr for AnswerMethod {
    type Err = crate::IntrospectionError;

    /// `free` ([`AnswerMethod::default`]) or `constrained` ([`AnswerMethod::constrained`]), the
    /// names [`AnswerMethod::name`] gives, e.g. from a command-line flag.
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "free" => Ok(AnswerMethod::default()),
            "constrained" => Ok(AnswerMethod::constrained()),
            other => Err(crate::IntrospectionError::config(
                "answer_method",
                format!("unknown method `{other}` (known: free, constrained)"),
            )),
        }
    }
}

impl AnswerMethod {
    /// The constrained reading with its default budget.
    pub fn constrained() -> Self {
        AnswerMethod::Constrained { word_max_tokens: 6 }
    }

    /// A short name for reports (`free` / `constrained`).
    pub fn name(&self) -> &'static str {
        match self {
            AnswerMethod::Free { .. } => "free",
            AnswerMethod::Constrained { .. } => "constrained",
        }
    }
}

/// A hypothetical answer as read by an [`AnswerMethod`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HypotheticalAnswer {
    /// The answer to score.
    pub text: String,
    /// How it was read: `free`, `constrained_distribution`, `constrained_first_word`,
    /// `constrained_fallback_free`.
    pub method: String,
    /// The renormalised distribution over valid answers (constrained distribution reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<BTreeMap<String, f64>>,
    /// The raw probability mass of each valid answer, as the model gave it (not
    /// renormalised; it sums to `valid_mass`). Calibration uses this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mass: Option<BTreeMap<String, f64>>,
    /// The probability mass that fell on valid answers before renormalising.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_mass: Option<f64>,
    /// Tokens used.
    #[serde(default)]
    pub usage: psyche_core::Usage,
}

/// The valid answer a token stands for in a hypothetical answer of `shape`, if any, in the
/// property's [canonical form](Property::canonical) (the form the truth is compared in): a
/// token that starts exactly one closed option (case-insensitive) counts for it; a token of the
/// right number of characters (trimmed, lower-cased) counts as itself, punctuation and
/// quotation marks included, since they are values a character property takes (a reply's
/// second character is often a comma or a quotation mark); for one character, the word `space`
/// counts as the space character (the question asks for a space that way).
pub fn token_key(shape: &AnswerShape, token: &str) -> Option<String> {
    let t = token.trim().to_lowercase();
    if t.is_empty() {
        return None;
    }
    match shape {
        AnswerShape::Closed(options) => {
            let hits: Vec<&String> = options.iter().filter(|o| o.starts_with(&t)).collect();
            (hits.len() == 1).then(|| hits[0].clone())
        }
        AnswerShape::Characters(1) if t == "space" => Some(t),
        AnswerShape::Characters(n) => (t.chars().count() == *n).then_some(t),
        AnswerShape::Word | AnswerShape::Whole => None,
    }
}

/// The first whitespace-separated word of `text` in the canonical form of word properties
/// ([`Property::canonical`]: lower-cased, surrounding punctuation and quotes removed), the
/// same function the truth goes through.
pub fn first_word(text: &str) -> String {
    text.split_whitespace()
        .next()
        .map(|w| Property::nth_word(1).canonical(w))
        .unwrap_or_default()
}

/// Reads `model`'s answer to the hypothetical `conversation` about `property`.
///
/// # Errors
///
/// The model's errors.
pub async fn read_answer(
    model: &dyn Model,
    conversation: &Conversation,
    property: &Property,
    method: &AnswerMethod,
    seed: u64,
) -> Result<HypotheticalAnswer, ModelError> {
    read_answer_of_shape(model, conversation, &property.shape(), method, seed).await
}

/// Reads `model`'s answer to `conversation`, which asks for an answer of `shape`.
///
/// # Errors
///
/// The model's errors.
pub async fn read_answer_of_shape(
    model: &dyn Model,
    conversation: &Conversation,
    shape: &AnswerShape,
    method: &AnswerMethod,
    seed: u64,
) -> Result<HypotheticalAnswer, ModelError> {
    let free = |max_tokens: u32, label: &'static str| async move {
        let r = model
            .generate(
                &GenerateRequest::new(conversation.clone())
                    .temperature(0.0)
                    .max_tokens(max_tokens)
                    .seed(seed),
            )
            .await?;
        Ok::<_, ModelError>(HypotheticalAnswer {
            text: r.text().to_owned(),
            method: label.to_owned(),
            distribution: None,
            mass: None,
            valid_mass: None,
            usage: r.usage,
        })
    };
    match method {
        AnswerMethod::Free { max_tokens } => free(*max_tokens, "free").await,
        AnswerMethod::Constrained { word_max_tokens } => {
            match shape {
                AnswerShape::Word => {
                    let mut a = free(*word_max_tokens, "constrained_first_word").await?;
                    a.text = first_word(&a.text);
                    return Ok(a);
                }
                AnswerShape::Whole => {
                    return free(*word_max_tokens, "constrained_whole_reply").await;
                }
                AnswerShape::Closed(_) | AnswerShape::Characters(_) => {}
            }
            if !model.capabilities().has(Capability::Logprobs) {
                return free(*word_max_tokens, "constrained_fallback_free").await;
            }
            let dist = model.next_token_distribution(conversation, 20).await?;
            let mut masses: BTreeMap<String, f64> = BTreeMap::new();
            for t in &dist.tokens {
                if let Some(k) = token_key(shape, &t.token) {
                    *masses.entry(k).or_default() += t.logprob.exp();
                }
            }
            let total: f64 = masses.values().sum();
            if total <= 0.0 {
                return free(*word_max_tokens, "constrained_fallback_free").await;
            }
            let best = masses
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1).then_with(|| b.0.cmp(a.0)))
                .map(|(k, _)| k.clone())
                .unwrap_or_default();
            let masses: BTreeMap<String, f64> = masses
                .into_iter()
                .filter(|(_, m)| *m / total >= 1e-4)
                .collect();
            let distribution: BTreeMap<String, f64> =
                masses.iter().map(|(k, m)| (k.clone(), m / total)).collect();
            Ok(HypotheticalAnswer {
                text: best,
                method: "constrained_distribution".into(),
                distribution: Some(distribution),
                mass: Some(masses),
                valid_mass: Some(total),
                usage: psyche_core::Usage::default(),
            })
        }
    }
}

/// The seed of an item's object-level answer: the run seed is per unit (sample and epoch), so
/// the object prompt and the epoch stand in for the item.
fn derive_object_seed(ctx: &SolveContext<'_>, prompt: &str) -> u64 {
    psyche_core::derive_seed(u64::from(ctx.epoch), prompt)
}

fn sample_property(sample: &Sample) -> Result<Property, SolverError> {
    let name = sample.meta_str("property").ok_or_else(|| {
        SolverError::invalid(format!("sample `{}` has no `property` metadata", sample.id))
    })?;
    Property::from_name(name)
        .map_err(|e| SolverError::invalid(format!("sample `{}`: {e}", sample.id)))
}

fn with_answer_meta(mut s: Solution, a: &HypotheticalAnswer) -> Solution {
    s = s.with_meta(ANSWER_METHOD_KEY, a.method.clone());
    if let Some(d) = &a.distribution {
        s = s.with_meta(
            ANSWER_DISTRIBUTION_KEY,
            serde_json::to_value(d).unwrap_or_default(),
        );
        if let Some(p) = d.get(&a.text) {
            s = s.with_meta("confidence", *p);
        }
    }
    if let Some(m) = &a.mass {
        s = s.with_meta(ANSWER_MASS_KEY, serde_json::to_value(m).unwrap_or_default());
    }
    if let Some(m) = a.valid_mass {
        s = s.with_meta(VALID_MASS_KEY, m);
    }
    s
}

/// The hypothetical solver: reads the subject's answer to the sample's (hypothetical) prompt
/// with an [`AnswerMethod`]. The property comes from the sample's `property` metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HypotheticalSolver {
    /// How answers are read.
    pub method: AnswerMethod,
}

impl HypotheticalSolver {
    /// A solver reading answers with `method`.
    pub fn new(method: AnswerMethod) -> Self {
        Self { method }
    }
}

#[async_trait]
impl Solver for HypotheticalSolver {
    fn id(&self) -> &str {
        "introspection-hypothetical"
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, SolverError> {
        let property = sample_property(ctx.sample)?;
        let a = read_answer(
            ctx.model.as_ref(),
            &ctx.sample.input,
            &property,
            &self.method,
            ctx.seed,
        )
        .await?;
        let mut s = with_answer_meta(Solution::new(a.text.clone()), &a);
        s.usage = a.usage;
        s.transcript = Some(
            ctx.sample
                .input
                .clone()
                .with(ChatMessage::assistant(a.text)),
        );
        Ok(s)
    }
}

/// Object level and hypothetical on the same model in one unit of work: the subject answers
/// the quoted object prompt (`object_prompt` metadata, at T = 0), then the hypothetical; the
/// object answer goes into the metadata for [`SelfPredictionByProperty`], and the property of
/// a compliant object answer becomes the record's target (for mode baselines).
///
/// The object-level answer is computed once per (model, object prompt, seed) and shared by the
/// hypotheticals about its different properties.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SelfPredictionSolver {
    /// How hypothetical answers are read.
    pub method: AnswerMethod,
    /// How the object-level answer is produced.
    pub object: ObjectSolver,
    #[serde(skip)]
    cache: ObjectCache,
}

type ObjectCell = Arc<tokio::sync::OnceCell<(String, psyche_core::Usage)>>;

/// (model id, object prompt, seed) of one object-level answer.
type ObjectKey = (String, String, u64);

/// Object-level answers shared between the hypotheticals of one item.
#[derive(Debug, Clone, Default)]
struct ObjectCache(Arc<std::sync::Mutex<BTreeMap<ObjectKey, ObjectCell>>>);

impl ObjectCache {
    fn cell(&self, model: &str, prompt: &str, seed: u64) -> ObjectCell {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry((model.to_owned(), prompt.to_owned(), seed))
            .or_default()
            .clone()
    }
}

impl PartialEq for SelfPredictionSolver {
    fn eq(&self, other: &Self) -> bool {
        self.method == other.method && self.object == other.object
    }
}

impl SelfPredictionSolver {
    /// A solver reading hypothetical answers with `method`.
    pub fn new(method: AnswerMethod) -> Self {
        Self {
            method,
            object: ObjectSolver::default(),
            cache: ObjectCache::default(),
        }
    }
}

#[async_trait]
impl Solver for SelfPredictionSolver {
    fn id(&self) -> &str {
        "introspection-self-prediction"
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, SolverError> {
        let property = sample_property(ctx.sample)?;
        let prompt = ctx
            .sample
            .meta_str(crate::hypothetical::OBJECT_PROMPT_KEY)
            .ok_or_else(|| {
                SolverError::invalid(format!(
                    "sample `{}` has no `object_prompt` metadata",
                    ctx.sample.id
                ))
            })?;
        let mut object_sample = Sample::new(ctx.sample.id.clone(), Conversation::user(prompt));
        if let Some(m) = ctx.sample.metadata.get("max_tokens") {
            object_sample
                .metadata
                .insert("max_tokens".into(), m.clone());
        }
        // The object seed depends on the object prompt, not on the property, so all
        // hypotheticals about one item share one object-level answer.
        let object_seed = derive_object_seed(ctx, prompt);
        let cell = self.cache.cell(ctx.model.id(), prompt, object_seed);
        let (object_answer, mut usage) = cell
            .get_or_try_init(|| async {
                self.object
                    .answer(ctx.model.as_ref(), &object_sample, object_seed)
                    .await
                    .map(|(a, u, _)| (a, u))
            })
            .await?
            .clone();
        let compliance = self.object.compliance.check_object_answer(&object_answer);
        let a = read_answer(
            ctx.model.as_ref(),
            &ctx.sample.input,
            &property,
            &self.method,
            ctx.seed,
        )
        .await?;
        usage.prompt_tokens += a.usage.prompt_tokens;
        usage.completion_tokens += a.usage.completion_tokens;
        let mut s = with_answer_meta(Solution::new(a.text.clone()), &a)
            .with_meta(OBJECT_ANSWER_KEY, object_answer.clone())
            .with_meta(OBJECT_COMPLIANT_KEY, compliance.is_compliant());
        if compliance.is_compliant()
            && let Some(v) =
                property.extract_canonical(&object_answer, ctx.sample.meta_str("stance_target"))
        {
            s.target = Some(v);
        }
        s.usage = usage;
        s.transcript = Some(
            Conversation::user(prompt)
                .with(ChatMessage::assistant(object_answer))
                .with(ChatMessage::user(
                    ctx.sample.input.last_user_text().unwrap_or_default(),
                ))
                .with(ChatMessage::assistant(a.text)),
        );
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_prefers_the_most_common_then_the_first() {
        let v = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(mode_of(&v(&["b", "a", "a", "b", "a"])), "a");
        assert_eq!(mode_of(&v(&["b", "a"])), "b");
        assert_eq!(mode_of(&[]), "");
    }

    #[test]
    fn valid_tokens_for_constrained_reading() {
        let k = |name: &str| Property::from_name(name).unwrap().shape();
        let c = k("second_character");
        assert_eq!(token_key(&c, " O"), Some("o".into()));
        assert_eq!(
            token_key(&c, "\""),
            Some("\"".into()),
            "a value like any other"
        );
        assert_eq!(token_key(&c, " space"), Some("space".into()));
        assert_eq!(token_key(&c, "7"), Some("7".into()));
        assert_eq!(token_key(&c, "ox"), None);
        assert_eq!(token_key(&c, " "), None);
        let tf = k("starts_with_vowel");
        assert_eq!(token_key(&tf, " True"), Some("true".into()));
        assert_eq!(token_key(&tf, "fal"), Some("false".into()));
        assert_eq!(token_key(&tf, "yes"), None);
        assert_eq!(k("first_word"), AnswerShape::Word);
        assert_eq!(token_key(&k("first_word"), "fox"), None);
        assert_eq!(k("identity"), AnswerShape::Whole);
        assert_eq!(first_word(" \"Fox,\" deer"), "fox");
    }
}
