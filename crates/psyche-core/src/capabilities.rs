//! What a backend can do, declared as types.
//!
//! Code that needs a capability asks for it with [`Capabilities::require`] and gets a typed
//! [`ModelError::Unsupported`](crate::ModelError::Unsupported) naming the missing
//! [`Capability`] instead of a provider-specific failure halfway through a run.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Logprob support of generated tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogprobSupport {
    /// The largest `top_logprobs` the backend accepts (OpenAI: 20).
    pub max_top_k: u32,
}

/// Fine-tuning support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FineTuneSupport {
    /// Full-parameter or provider-managed fine-tuning (e.g. the OpenAI jobs API).
    Managed,
    /// Low-rank adapters trained by the library itself.
    Lora,
}

/// Everything a backend declares it can do. Backends fill this honestly per configured model.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities {
    /// Logprobs of generated tokens with top-k alternatives; `None` when unavailable
    /// (e.g. Anthropic).
    pub logprobs: Option<LogprobSupport>,
    /// Exact next-token distributions over the whole vocabulary.
    pub full_distribution: bool,
    /// Log-likelihood of a given continuation of a prompt.
    pub loglikelihood: bool,
    /// Hidden states of the residual stream.
    pub hidden_states: bool,
    /// Whether `seed` makes sampling reproducible.
    pub seeded_sampling: bool,
    /// How models of this backend can be fine-tuned, if at all.
    pub fine_tuning: Option<FineTuneSupport>,
    /// Additive steering of the residual stream ([`Model::steered`](crate::Model::steered)):
    /// only in-process models can offer it.
    #[serde(default)]
    pub steering: bool,
}

/// One capability, for error messages and [`Capabilities::require`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Logprobs of generated tokens.
    Logprobs,
    /// Full next-token distributions.
    FullDistribution,
    /// Continuation log-likelihood.
    LogLikelihood,
    /// Hidden states.
    HiddenStates,
    /// Seed-reproducible sampling.
    SeededSampling,
    /// Fine-tuning.
    FineTuning,
    /// Additive residual-stream steering.
    Steering,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::Logprobs => "logprobs",
            Capability::FullDistribution => "full next-token distributions",
            Capability::LogLikelihood => "continuation log-likelihood",
            Capability::HiddenStates => "hidden states",
            Capability::SeededSampling => "seeded sampling",
            Capability::FineTuning => "fine-tuning",
            Capability::Steering => "steering (adding a vector to the residual stream)",
        })
    }
}

impl Capabilities {
    /// Whether the capability is present.
    pub fn has(&self, capability: Capability) -> bool {
        match capability {
            Capability::Logprobs => self.logprobs.is_some(),
            Capability::FullDistribution => self.full_distribution,
            Capability::LogLikelihood => self.loglikelihood,
            Capability::HiddenStates => self.hidden_states,
            Capability::SeededSampling => self.seeded_sampling,
            Capability::FineTuning => self.fine_tuning.is_some(),
            Capability::Steering => self.steering,
        }
    }

    /// Fails with [`ModelError::Unsupported`] unless the capability is present.
    ///
    /// # Errors
    ///
    /// `ModelError::Unsupported` naming `model` and the capability.
    pub fn require(&self, model: &str, capability: Capability) -> Result<(), ModelError> {
        if self.has(capability) {
            Ok(())
        } else {
            Err(ModelError::Unsupported {
                model: model.to_owned(),
                capability,
            })
        }
    }

    /// The largest top-k of logprobs, or 0 without logprob support.
    pub fn max_top_k(&self) -> u32 {
        self.logprobs.map_or(0, |l| l.max_top_k)
    }
}
