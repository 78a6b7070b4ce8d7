//! Solvers: what a unit of work does with a sample before it is judged.
//!
//! The [`Solver`] seam, its [`SolveContext`] and [`Solution`] live in psyche-core (re-exported
//! here); this module holds the runner's default solver, [`Generate`]: one generation of the
//! sample's prompt.

use async_trait::async_trait;
use psyche_core::{ChatMessage, Conversation, GenerateRequest};
pub use psyche_core::{Solution, SolveContext, Solver, SolverError};
use serde::{Deserialize, Serialize};

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

    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, SolverError> {
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
