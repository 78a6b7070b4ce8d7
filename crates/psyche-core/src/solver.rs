//! The [`Solver`] seam: what a unit of work does with a sample before it is judged.
//!
//! A [`Solver`] turns one (sample, subject model, epoch) into a [`Solution`]: the final output
//! to judge, and optionally the whole transcript, a target discovered on the way (self-prediction
//! compares the hypothetical answer with a property of the model's own object-level answer) and
//! metadata. A solver may call the subject model several times and other models by role
//! (`"judge"`, `"teacher"`, an opponent in a game) through [`SolveContext::role`].
//!
//! The runner (psyche-runner) drives solvers over many samples and models; a solver can also be
//! called directly, which is how one is unit-tested:
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use psyche_core::*;
//!
//! struct Shout;
//! #[async_trait]
//! impl Solver for Shout {
//!     fn id(&self) -> &str { "shout" }
//!     async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, SolverError> {
//!         let text = ctx.sample.input.last_user_text().unwrap_or_default();
//!         if text.is_empty() {
//!             return Err(SolverError::invalid("the sample has no user message"));
//!         }
//!         Ok(Solution::new(text.to_uppercase()))
//!     }
//! }
//!
//! struct Silent;
//! #[async_trait]
//! impl Model for Silent {
//!     fn id(&self) -> &str { "silent" }
//!     fn capabilities(&self) -> Capabilities { Capabilities::default() }
//!     async fn generate(&self, _: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
//!         Ok(GenerateResponse { model: "silent".into(), choices: vec![], usage: Usage::default() })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let model: Arc<dyn Model> = Arc::new(Silent);
//! let sample = Sample::new("s1", Conversation::user("hello"));
//! let ctx = SolveContext::new(&sample, &model).with_seed(7);
//! assert_eq!(Shout.solve(&ctx).await?.output, "HELLO");
//! # Ok::<(), SolverError>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{JudgeError, ModelError, TaskError};
use crate::generation::Usage;
use crate::message::Conversation;
use crate::model::Model;
use crate::sample::{Metadata, Sample};

/// Models by role, as a run registers them (`"judge"`, `"teacher"`, ...).
pub type Roles = BTreeMap<String, Arc<dyn Model>>;

static NO_ROLES: Roles = BTreeMap::new();

/// Everything a solver may use for one unit of work.
#[derive(Clone)]
pub struct SolveContext<'a> {
    /// The sample.
    pub sample: &'a Sample,
    /// The evaluated (subject) model.
    pub model: &'a Arc<dyn Model>,
    /// The epoch (0-based repeat index).
    pub epoch: u32,
    /// The seed of this (sample, epoch). The runner sets it to
    /// `derive_seed(run_seed, "<sample id>/<epoch>")`, the same for every subject model so that
    /// models are compared on the same draws.
    pub seed: u64,
    roles: &'a Roles,
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
    /// A context for `sample` on `model`: epoch 0, seed 0, no other roles.
    pub fn new(sample: &'a Sample, model: &'a Arc<dyn Model>) -> Self {
        Self {
            sample,
            model,
            epoch: 0,
            seed: 0,
            roles: &NO_ROLES,
        }
    }

    /// Sets the epoch.
    #[must_use]
    pub fn with_epoch(mut self, epoch: u32) -> Self {
        self.epoch = epoch;
        self
    }

    /// Sets the unit's seed.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Makes the models in `roles` reachable through [`role`](Self::role).
    #[must_use]
    pub fn with_roles(mut self, roles: &'a Roles) -> Self {
        self.roles = roles;
        self
    }

    /// The model registered under `role` (`"judge"`, `"teacher"`, `"opponent"`, ...).
    ///
    /// # Errors
    ///
    /// [`SolverError::MissingRole`] naming the role when the run has no such model.
    pub fn role(&self, role: &str) -> Result<&'a Arc<dyn Model>, SolverError> {
        self.roles
            .get(role)
            .ok_or_else(|| SolverError::MissingRole {
                role: role.to_owned(),
                available: self.roles.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// The names of the roles this context can reach.
    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
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

impl Solution {
    /// A solution with this output and nothing else.
    pub fn new(output: impl Into<String>) -> Self {
        Self {
            output: output.into(),
            ..Self::default()
        }
    }

    /// Sets the target judges compare against.
    #[must_use]
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Adds one metadata entry.
    #[must_use]
    pub fn with_meta(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// Failure of one unit of work in a [`Solver`]. The runner records it in the unit's record
/// and goes on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SolverError {
    /// A model call failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A judge called inside the solver failed.
    #[error(transparent)]
    Judge(#[from] JudgeError),
    /// Building the unit's prompts failed (a template, the task's data).
    #[error(transparent)]
    Task(#[from] TaskError),
    /// The solver needs a model in a role the run does not have.
    #[error("solver needs a model in role `{role}` but the run has none (roles: {available})")]
    MissingRole {
        /// The role asked for.
        role: String,
        /// The roles the run has, comma-separated.
        available: String,
    },
    /// The sample or an intermediate answer cannot be solved (e.g. the object-level answer is a
    /// refusal, so there is nothing to predict); the message says why.
    #[error("{0}")]
    Invalid(String),
}

impl SolverError {
    /// A [`SolverError::Invalid`] with this message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    /// Whether retrying the unit may succeed (a retryable model error).
    pub fn is_retryable(&self) -> bool {
        matches!(self, SolverError::Model(e) if e.is_retryable())
    }
}

/// What a unit of work does with a sample: one or several generations, possibly by several
/// models.
///
/// Required: [`id`](Solver::id) and [`solve`](Solver::solve). The id and
/// [`config`](Solver::config) go into a run log's header; resuming a log written with a
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
    /// [`SolverError`]: a failing model call, a missing role, or an item that cannot be solved.
    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, SolverError>;
}

macro_rules! forward_solver {
    ($($wrapper:tt)+) => {
        #[async_trait]
        impl<S: Solver + ?Sized> Solver for $($wrapper)+ {
            fn id(&self) -> &str {
                (**self).id()
            }
            fn config(&self) -> serde_json::Value {
                (**self).config()
            }
            async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, SolverError> {
                (**self).solve(ctx).await
            }
        }
    };
}

forward_solver!(Arc<S>);
forward_solver!(Box<S>);
forward_solver!(&S);
