//! [`EvalBuilder`]: configuring an [`Eval`].

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use psyche_core::{Judge, Model, Sample, TaskGenerator};

use crate::error::RunnerError;
use crate::log::{TaskEntry, redact};
use crate::progress::ProgressMode;
use crate::solver::{Generate, Solver};

use super::Eval;

/// Builder of an [`Eval`]; see [`Eval::builder`].
pub struct EvalBuilder {
    pub(super) run_id: String,
    pub(super) task: Option<String>,
    pub(super) tasks: Vec<TaskEntry>,
    pub(super) task_errors: Vec<String>,
    pub(super) task_solvers: Vec<(String, Arc<dyn Solver>)>,
    pub(super) default_judges: Vec<Arc<dyn Judge>>,
    pub(super) samples: Vec<Sample>,
    pub(super) subjects: Vec<Arc<dyn Model>>,
    pub(super) roles: BTreeMap<String, Arc<dyn Model>>,
    pub(super) judges: Vec<Arc<dyn Judge>>,
    pub(super) solver: Option<Arc<dyn Solver>>,
    pub(super) epochs: u32,
    pub(super) seed: u64,
    pub(super) concurrency: usize,
    pub(super) log_path: Option<PathBuf>,
    pub(super) progress: ProgressMode,
    pub(super) config: serde_json::Value,
    pub(super) channel_capacity: usize,
}

impl std::fmt::Debug for EvalBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalBuilder")
            .field("run_id", &self.run_id)
            .field("samples", &self.samples.len())
            .field("subjects", &self.subjects.len())
            .field("judges", &self.judges.len())
            .finish_non_exhaustive()
    }
}

/// `value` as a shared trait object: an `Arc<T>` passes through unchanged, anything else is
/// wrapped by `wrap`. Lets builder methods take a model, judge or solver by value or as an
/// `Arc` alike without double indirection.
fn share<T: ?Sized + 'static, V: 'static>(value: V, wrap: impl FnOnce(V) -> Arc<T>) -> Arc<T> {
    let mut slot = Some(value);
    let any: &mut dyn Any = &mut slot;
    if let Some(shared) = any.downcast_mut::<Option<Arc<T>>>().and_then(Option::take) {
        return shared;
    }
    match slot {
        Some(value) => wrap(value),
        // The downcast only succeeds (and empties the slot) when `V` is `Arc<T>`, and then
        // the function has already returned.
        None => unreachable!("slot emptied without returning"),
    }
}

impl EvalBuilder {
    /// Adds the samples of a task generator for `seed`, and records the generator's name,
    /// version, configuration and seed in the log header.
    ///
    /// Unless set explicitly with [`solver`](Self::solver), the run uses the generator's
    /// [default solver](TaskGenerator::solver); the generator's
    /// [default judges](TaskGenerator::judges) are added to the run's judges (a judge added
    /// with [`judge`](Self::judge) under the same id replaces the default). A generator error
    /// is reported by [`build`](Self::build).
    #[must_use]
    pub fn task<G: TaskGenerator + ?Sized>(mut self, generator: &G, seed: u64) -> Self {
        let name = generator.name().to_owned();
        match generator.generate(seed) {
            Ok(samples) => {
                self.tasks.push(TaskEntry {
                    name: name.clone(),
                    version: generator.version().to_owned(),
                    seed,
                    config: generator.config(),
                    samples: samples.len(),
                });
                self.samples.extend(samples);
            }
            Err(e) => self
                .task_errors
                .push(format!("task `{name}` (seed {seed}): {e}")),
        }
        if let Some(solver) = generator.solver() {
            self.task_solvers.push((name.clone(), solver));
        }
        self.default_judges.extend(generator.judges());
        if self.task.is_none() {
            self.task = Some(name);
        }
        self
    }

    /// Sets the task name recorded in the header (set by [`task`](Self::task) otherwise).
    #[must_use]
    pub fn task_name(mut self, task: impl Into<String>) -> Self {
        self.task = Some(task.into());
        self
    }

    /// Adds samples.
    #[must_use]
    pub fn samples(mut self, samples: impl IntoIterator<Item = Sample>) -> Self {
        self.samples.extend(samples);
        self
    }

    /// Adds a subject model (an evaluated model; every sample runs on every subject), given
    /// by value or as an `Arc`.
    #[must_use]
    pub fn model<M: Model + 'static>(mut self, model: M) -> Self {
        self.subjects
            .push(share(model, |m| Arc::new(m) as Arc<dyn Model>));
        self
    }

    /// Registers a model under a role (`"judge"`, `"teacher"`, `"opponent"`, ...) that solvers
    /// reach through [`SolveContext::role`](crate::SolveContext::role). Role models are not evaluated themselves.
    #[must_use]
    pub fn role<M: Model + 'static>(mut self, role: impl Into<String>, model: M) -> Self {
        self.roles
            .insert(role.into(), share(model, |m| Arc::new(m) as Arc<dyn Model>));
        self
    }

    /// Adds a judge (by value or as an `Arc`); every output is scored by every judge, in the
    /// order added.
    #[must_use]
    pub fn judge<J: Judge + 'static>(mut self, judge: J) -> Self {
        self.judges
            .push(share(judge, |j| Arc::new(j) as Arc<dyn Judge>));
        self
    }

    /// Sets the solver, by value or as an `Arc` (default: the task generator's, else
    /// [`Generate::default`]).
    #[must_use]
    pub fn solver<S: Solver + 'static>(mut self, solver: S) -> Self {
        self.solver = Some(share(solver, |s| Arc::new(s) as Arc<dyn Solver>));
        self
    }

    /// Repeats each sample `epochs` times with distinct seeds (default 1).
    #[must_use]
    pub fn epochs(mut self, epochs: u32) -> Self {
        self.epochs = epochs;
        self
    }

    /// Sets the run seed (default 0).
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Maximum units of work in flight (default 32).
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Appends records to this JSONL log, resuming it when it exists. Without a log path the
    /// records are kept in memory and returned in [`RunSummary::records`](super::RunSummary::records).
    #[must_use]
    pub fn log_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_path = Some(path.into());
        self
    }

    /// Sets the progress display (default [`ProgressMode::Auto`]).
    #[must_use]
    pub fn progress(mut self, mode: ProgressMode) -> Self {
        self.progress = mode;
        self
    }

    /// Extra configuration recorded in the header (credentials are redacted).
    #[must_use]
    pub fn config(mut self, config: serde_json::Value) -> Self {
        self.config = config;
        self
    }

    /// Capacity of the channel between workers and the log writer (default 8192).
    #[must_use]
    pub fn channel_capacity(mut self, capacity: usize) -> Self {
        self.channel_capacity = capacity;
        self
    }

    /// Checks the configuration and builds the run.
    ///
    /// # Errors
    ///
    /// [`RunnerError::Config`] when: `run_id` is empty; there are no samples or no subject
    /// models; two samples share an id; two subject models share an id; two judges share an
    /// id; `epochs`, `concurrency` or `channel_capacity` is 0.
    pub fn build(mut self) -> Result<Eval, RunnerError> {
        if self.run_id.trim().is_empty() {
            return Err(RunnerError::config("run_id", "must not be empty"));
        }
        if !self.task_errors.is_empty() {
            return Err(RunnerError::config("task", self.task_errors.join("; ")));
        }
        let solver = match self.solver.take() {
            Some(explicit) => explicit,
            None => {
                let mut solvers = self.task_solvers.iter();
                match solvers.next() {
                    None => Arc::new(Generate::default()) as Arc<dyn Solver>,
                    Some((first_task, first)) => {
                        if let Some((task, other)) = solvers
                            .find(|(_, s)| s.id() != first.id() || s.config() != first.config())
                        {
                            return Err(RunnerError::config(
                                "solver",
                                format!(
                                    "tasks `{first_task}` and `{task}` declare different solvers \
                                     (`{}` and `{}`); set one with `.solver(..)` or run them separately",
                                    first.id(),
                                    other.id()
                                ),
                            ));
                        }
                        Arc::clone(first)
                    }
                }
            }
        };
        // Default judges first, each replaced by an explicit judge with the same id.
        let mut judges: Vec<Arc<dyn Judge>> = Vec::new();
        for d in std::mem::take(&mut self.default_judges) {
            if !self.judges.iter().any(|j| j.id() == d.id())
                && !judges.iter().any(|j| j.id() == d.id())
            {
                judges.push(d);
            }
        }
        judges.append(&mut self.judges);
        self.judges = judges;
        if self.samples.is_empty() {
            return Err(RunnerError::config(
                "samples",
                "at least one sample is needed",
            ));
        }
        if self.subjects.is_empty() {
            return Err(RunnerError::config(
                "model",
                "at least one subject model is needed",
            ));
        }
        if self.epochs == 0 {
            return Err(RunnerError::config("epochs", "must be at least 1"));
        }
        if self.concurrency == 0 {
            return Err(RunnerError::config("concurrency", "must be at least 1"));
        }
        if self.channel_capacity == 0 {
            return Err(RunnerError::config(
                "channel_capacity",
                "must be at least 1",
            ));
        }
        let mut ids = HashSet::with_capacity(self.samples.len());
        for s in &self.samples {
            if !ids.insert(s.id.as_str()) {
                return Err(RunnerError::config(
                    "samples",
                    format!(
                        "sample id `{}` appears twice; resume keys on sample ids",
                        s.id
                    ),
                ));
            }
        }
        let mut mids = HashSet::new();
        for m in &self.subjects {
            if !mids.insert(m.id()) {
                return Err(RunnerError::config(
                    "model",
                    format!("subject model id `{}` appears twice", m.id()),
                ));
            }
        }
        let mut jids = HashSet::new();
        for j in &self.judges {
            if !jids.insert(j.id()) {
                return Err(RunnerError::config(
                    "judge",
                    format!("judge id `{}` appears twice", j.id()),
                ));
            }
        }
        let mut config = self.config;
        redact(&mut config);
        Ok(Eval {
            run_id: self.run_id,
            task: self.task,
            tasks: self.tasks,
            samples: Arc::new(self.samples),
            subjects: self.subjects,
            roles: Arc::new(self.roles),
            judges: Arc::new(self.judges),
            solver,
            epochs: self.epochs,
            seed: self.seed,
            concurrency: self.concurrency,
            log_path: self.log_path,
            progress: self.progress,
            config,
            channel_capacity: self.channel_capacity,
        })
    }
}
