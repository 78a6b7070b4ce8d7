//! Solvers: what a unit of work does with a sample before it is judged.
//!
//! A [`Solver`] turns one (sample, subject model, epoch) into a [`Solution`]: the final output
//! to judge, and optionally the whole transcript, a target discovered on the way (self-prediction
//! compares the hypothetical answer with a property of the model's own object-level answer) and
//! metadata. A solver may call the subject model several times and other models by role
//! (`"judge"`, `"teacher"`, an opponent in a game) through [`SolveContext::role`].
//!
//! [`Generate`] is the default: one generation of the sample's prompt.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{
    ChatMessage, Conversation, GenerateRequest, Metadata, Model, ModelError, Sample, Usage,
};
use serde::{Deserialize, Serialize};

/// Everything a solver may use for one unit of work.
#[derive(Clone)]
pub struct SolveContext<'a> {
    /// The sample.
    pub sample: &'a Sample,
    /// The evaluated (subject) model.
    pub model: &'a Arc<dyn Model>,
    /// The epoch (0-based repeat index).
    pub epoch: u32,
    /// The seed of this (sample, epoch): `derive_seed(run_seed, "<sample id>/<epoch>")`, the same
    /// for every subject model so that models are compared on the same draws.
    pub seed: u64,
    pub(crate) roles: &'a BTreeMap<String, Arc<dyn Model>>,
}

impl std::fmt::Debug for SolveContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SolveContext")
            .field("sample", &self.sample.id)
            .field("model", &self.model.id())
            .field("epoch", &self.epoch)
            .field("seed", &self.seed)
            .field("roles", &self.roles.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<'a> SolveContext<'a> {
    /// The model registered under `role` (`"judge"`, `"teacher"`, `"opponent"`, ...).
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidRequest`] naming the role when the run has no such model.
    pub fn role(&self, role: &str) -> Result<&'a Arc<dyn Model>, ModelError> {
        self.roles.get(role).ok_or_else(|| {
            ModelError::InvalidRequest(format!(
                "solver needs a model in role `{role}` but the run has none (roles: {})",
                self.roles.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

/// What a solver produced for one unit of work.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    /// The output the judges score.
    pub output: String,
    /// The full exchange, for multi-turn solvers.
    pub transcript: Option<Conversation>,
    /// A target found while solving; judges see it as the sample's target (it replaces the
    /// sample's own) and the record keeps it under metadata `"target"`.
    pub target: Option<String>,
    /// Metadata merged into the record's (and the judged sample's) metadata.
    pub metadata: Metadata,
    /// Tokens used by the subject model.
    pub usage: Usage,
    /// Whether the answer came from a cache (counted in the progress display).
    pub cached: bool,
}

/// What a unit of work does with a sample: one or several generations, possibly by several
/// models.
///
/// Required: [`id`](Solver::id) and [`solve`](Solver::solve). The id and
/// [`config`](Solver::config) go into the run log's header; resuming a log written with a
/// different solver configuration is refused.
#[async_trait]
pub trait Solver: Send + Sync {
    /// A stable name for this solver.
    fn id(&self) -> &str;

    /// The settings that change answers (temperature, token budgets, prompt hashes).
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Solves one unit of work.
    ///
    /// # Errors
    ///
    /// The first failing model call's error; the runner records it in the unit's record.
    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, ModelError>;
}

#[async_trait]
impl<S: Solver + ?Sized> Solver for Arc<S> {
    fn id(&self) -> &str {
        (**self).id()
    }
    fn config(&self) -> serde_json::Value {
        (**self).config()
    }
    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, ModelError> {
        (**self).solve(ctx).await
    }
}

#[async_trait]
impl<S: Solver + ?Sized> Solver for Box<S> {
    fn id(&self) -> &str {
        (**self).id()
    }
    fn config(&self) -> serde_json::Value {
        (**self).config()
    }
    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, ModelError> {
        (**self).solve(ctx).await
    }
}

/// The default solver: one generation of the sample's prompt by the subject model, seeded with
/// the unit's seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generate {
    /// Token budget.
    pub max_tokens: u32,
    /// Sampling temperature (0 = greedy).
    pub temperature: f32,
    /// Nucleus mass.
    pub top_p: f32,
    /// Stop sequences.
    pub stop: Vec<String>,
}

impl Default for Generate {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            temperature: 0.0,
            top_p: 1.0,
            stop: Vec::new(),
        }
    }
}

impl Generate {
    /// Greedy decoding with this token budget.
    pub fn new(max_tokens: u32) -> Self {
        Self {
            max_tokens,
            ..Self::default()
        }
    }

    /// Sets the temperature.
    #[must_use]
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = temperature;
        self
    }

    /// The request this solver sends for `messages` with `seed`.
    pub fn request(&self, messages: Conversation, seed: u64) -> GenerateRequest {
        let mut req = GenerateRequest::new(messages)
            .max_tokens(self.max_tokens)
            .temperature(self.temperature)
            .top_p(self.top_p)
            .seed(seed);
        req.stop = self.stop.clone();
        req
    }
}

#[async_trait]
impl Solver for Generate {
    fn id(&self) -> &str {
        "generate"
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, ModelError> {
        let request = self.request(ctx.sample.input.clone(), ctx.seed);
        let response = ctx.model.generate(&request).await?;
        let output = response.text().to_owned();
        let transcript = ctx
            .sample
            .input
            .clone()
            .with(ChatMessage::assistant(output.clone()));
        Ok(Solution {
            output,
            transcript: Some(transcript),
            usage: response.usage,
            ..Solution::default()
        })
    }
}
