//! The engine: samples × subject models × epochs → solver → judges → records, streamed with
//! bounded concurrency into a run log.
//!
//! ```text
//!  work items ──► buffer_unordered(concurrency) ──► tokio tasks: solve + judge ──► Record
//!  (lazy, skips                                                                    │ bounded
//!   logged keys)                                              writer thread ◄──────┘ channel
//!                                                  (serialise, append, flush, progress bar)
//! ```
//!
//! Each unit of work runs in its own tokio task (so response parsing spreads over all worker
//! threads) and ends in exactly one [`Record`]: failures are recorded, not raised. Records go
//! through a bounded channel to one blocking writer thread that serialises them, appends them
//! to the log, flushes whenever the channel runs dry and drives the progress bar.

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use psyche_core::{Judge, Model, Record, RecordKey, Sample, TaskGenerator, derive_seed};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::error::RunnerError;
use crate::log::{self, LogHeader, ModelEntry, TaskEntry, redact, redact_text};
use crate::progress::{Progress, ProgressMode};
use crate::solver::{Generate, SolveContext, Solver};

/// A configured evaluation run. Build one with [`Eval::builder`], then [`Eval::run`] it.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(model: std::sync::Arc<dyn psyche_core::Model>, judge: std::sync::Arc<dyn psyche_core::Judge>) -> Result<(), psyche_runner::RunnerError> {
/// use psyche_core::Sample;
/// use psyche_runner::{Eval, Generate};
/// let samples = vec![Sample::new("q1", psyche_core::Conversation::user("Name a colour."))];
/// let summary = Eval::builder("demo-run")
///     .samples(samples)
///     .model(model)
///     .solver(Generate::new(16))
///     .judge(judge)
///     .epochs(3)
///     .seed(7)
///     .concurrency(64)
///     .log_path("runs/demo-run.jsonl")
///     .build()?
///     .run()
///     .await?;
/// println!("{} new records in {:?}", summary.completed, summary.elapsed);
/// # Ok(()) }
/// ```
pub struct Eval {
    run_id: String,
    task: Option<String>,
    tasks: Vec<TaskEntry>,
    samples: Arc<Vec<Sample>>,
    subjects: Vec<Arc<dyn Model>>,
    roles: Arc<BTreeMap<String, Arc<dyn Model>>>,
    judges: Arc<Vec<Arc<dyn Judge>>>,
    solver: Arc<dyn Solver>,
    epochs: u32,
    seed: u64,
    concurrency: usize,
    log_path: Option<PathBuf>,
    progress: ProgressMode,
    config: serde_json::Value,
    channel_capacity: usize,
}

impl std::fmt::Debug for Eval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eval")
            .field("run_id", &self.run_id)
            .field("task", &self.task)
            .field("samples", &self.samples.len())
            .field(
                "subjects",
                &self.subjects.iter().map(|m| m.id()).collect::<Vec<_>>(),
            )
            .field("roles", &self.roles.keys().collect::<Vec<_>>())
            .field(
                "judges",
                &self.judges.iter().map(|j| j.id()).collect::<Vec<_>>(),
            )
            .field("solver", &self.solver.id())
            .field("epochs", &self.epochs)
            .field("seed", &self.seed)
            .field("concurrency", &self.concurrency)
            .field("log_path", &self.log_path)
            .finish()
    }
}

/// Builder of an [`Eval`]; see [`Eval::builder`].
pub struct EvalBuilder {
    run_id: String,
    task: Option<String>,
    tasks: Vec<TaskEntry>,
    task_errors: Vec<String>,
    task_solvers: Vec<(String, Arc<dyn Solver>)>,
    default_judges: Vec<Arc<dyn Judge>>,
    samples: Vec<Sample>,
    subjects: Vec<Arc<dyn Model>>,
    roles: BTreeMap<String, Arc<dyn Model>>,
    judges: Vec<Arc<dyn Judge>>,
    solver: Option<Arc<dyn Solver>>,
    epochs: u32,
    seed: u64,
    concurrency: usize,
    log_path: Option<PathBuf>,
    progress: ProgressMode,
    config: serde_json::Value,
    channel_capacity: usize,
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
    /// reach through [`SolveContext::role`]. Role models are not evaluated themselves.
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
    /// records are kept in memory and returned in [`RunSummary::records`].
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

/// What a finished [`Eval::run`] did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// The run's id.
    pub run_id: String,
    /// The log written, when the run had one.
    pub log_path: Option<PathBuf>,
    /// Units of work in the whole run (samples × subjects × epochs).
    pub total: u64,
    /// Units skipped because the log already held them.
    pub skipped: u64,
    /// Units done by this call.
    pub completed: u64,
    /// Units done by this call whose record carries an error.
    pub errors: u64,
    /// Units done by this call whose solver reported a cache hit.
    pub cached: u64,
    /// Bytes of a torn last line dropped before resuming.
    pub torn_bytes_dropped: u64,
    /// Wall-clock time of this call.
    pub elapsed: Duration,
    /// The records of this call, for runs without a log.
    pub records: Vec<Record>,
}

impl RunSummary {
    /// Completed units per second of this call.
    pub fn rate(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

struct Shared {
    run_id: String,
    samples: Arc<Vec<Sample>>,
    roles: Arc<BTreeMap<String, Arc<dyn Model>>>,
    judges: Arc<Vec<Arc<dyn Judge>>>,
    solver: Arc<dyn Solver>,
    seed: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The seed of one (sample, epoch): the same for every subject model.
pub fn unit_seed(run_seed: u64, sample_id: &str, epoch: u32) -> u64 {
    derive_seed(run_seed, &format!("{sample_id}/{epoch}"))
}

fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let rev = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!rev.is_empty()).then_some(rev)
}

async fn run_unit(
    shared: Arc<Shared>,
    model: Arc<dyn Model>,
    sample_index: usize,
    epoch: u32,
) -> Record {
    let sample = &shared.samples[sample_index];
    let seed = unit_seed(shared.seed, &sample.id, epoch);
    let mut record = Record::for_sample(&shared.run_id, sample, model.id(), epoch);
    record.seed = Some(seed);
    record.timing.started_ms = now_ms();
    let start = Instant::now();
    let ctx = SolveContext::new(sample, &model)
        .with_epoch(epoch)
        .with_seed(seed)
        .with_roles(&shared.roles);
    match shared.solver.solve(&ctx).await {
        Ok(solution) => {
            record.usage = solution.usage;
            record.transcript = solution.transcript;
            let target = solution.target.or_else(|| sample.target.clone());
            if let Some(t) = &target {
                record
                    .metadata
                    .insert("target".into(), serde_json::Value::String(t.clone()));
            }
            if solution.cached {
                record
                    .metadata
                    .insert("cache_hit".into(), serde_json::Value::Bool(true));
            }
            let judged_owned;
            let judged: &Sample = if solution.metadata.is_empty() && target == sample.target {
                sample
            } else {
                let mut s = sample.clone();
                s.target = target;
                s.metadata.extend(solution.metadata.clone());
                judged_owned = s;
                &judged_owned
            };
            record.metadata.extend(solution.metadata);
            let mut errors = Vec::new();
            for judge in shared.judges.iter() {
                match judge.judge(judged, &solution.output).await {
                    Ok(v) => {
                        record.scores.insert(judge.id().to_owned(), v);
                    }
                    Err(e) => errors.push(format!("judge `{}`: {e}", judge.id())),
                }
            }
            if !errors.is_empty() {
                record.error = Some(redact_text(&errors.join("; ")));
            }
            record.output = Some(solution.output);
        }
        Err(e) => {
            tracing::debug!(error = %e, "unit failed");
            record.error = Some(redact_text(&e.to_string()));
        }
    }
    record.timing.elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    record
}

enum Sink {
    File(std::io::BufWriter<std::fs::File>, PathBuf),
    Memory(Vec<Record>),
}

struct WriterOutcome {
    progress: Progress,
    records: Vec<Record>,
}

fn writer_loop(
    mut sink: Sink,
    mut rx: tokio::sync::mpsc::Receiver<Record>,
    mut progress: Progress,
) -> Result<WriterOutcome, RunnerError> {
    use std::io::Write;
    let mut line = Vec::with_capacity(4096);
    loop {
        let rec = match rx.try_recv() {
            Ok(r) => r,
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                // Channel ran dry: make what we have durable (page cache survives SIGKILL).
                if let Sink::File(w, path) = &mut sink {
                    w.flush().map_err(|e| RunnerError::io(path.as_path(), e))?;
                }
                match rx.blocking_recv() {
                    Some(r) => r,
                    None => break,
                }
            }
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
        };
        let error = rec.error.is_some();
        let cached = rec
            .metadata
            .get("cache_hit")
            .is_some_and(|v| v == &serde_json::Value::Bool(true));
        match &mut sink {
            Sink::File(w, path) => {
                line.clear();
                serde_json::to_writer(&mut line, &rec).map_err(|e| RunnerError::Writer {
                    path: path.clone(),
                    message: format!("cannot serialise record `{}`: {e}", rec.sample_id),
                })?;
                line.push(b'\n');
                // One write per line so that a kill tears at most the last line.
                w.write_all(&line)
                    .map_err(|e| RunnerError::io(path.as_path(), e))?;
            }
            Sink::Memory(v) => v.push(rec),
        }
        progress.record(error, cached);
    }
    let records = match sink {
        Sink::File(mut w, path) => {
            w.flush().map_err(|e| RunnerError::io(path.as_path(), e))?;
            Vec::new()
        }
        Sink::Memory(v) => v,
    };
    progress.finish();
    Ok(WriterOutcome { progress, records })
}

impl Eval {
    /// Starts building a run with this id (the id names the run in its log; rerunning the same
    /// id with the same log path resumes it).
    pub fn builder(run_id: impl Into<String>) -> EvalBuilder {
        EvalBuilder {
            run_id: run_id.into(),
            task: None,
            tasks: Vec::new(),
            task_errors: Vec::new(),
            task_solvers: Vec::new(),
            default_judges: Vec::new(),
            samples: Vec::new(),
            subjects: Vec::new(),
            roles: BTreeMap::new(),
            judges: Vec::new(),
            solver: None,
            epochs: 1,
            seed: 0,
            concurrency: 32,
            log_path: None,
            progress: ProgressMode::Auto,
            config: serde_json::Value::Null,
            channel_capacity: 8192,
        }
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The log path, when set.
    pub fn log_path(&self) -> Option<&Path> {
        self.log_path.as_deref()
    }

    /// Total units of work: samples × subject models × epochs.
    pub fn total_units(&self) -> u64 {
        self.samples.len() as u64 * self.subjects.len() as u64 * u64::from(self.epochs)
    }

    /// The header this run writes to a new log.
    pub fn header(&self) -> LogHeader {
        let mut models: Vec<ModelEntry> = self
            .subjects
            .iter()
            .map(|m| ModelEntry {
                role: "subject".into(),
                info: m.info(),
            })
            .chain(self.roles.iter().map(|(role, m)| ModelEntry {
                role: role.clone(),
                info: m.info(),
            }))
            .collect();
        for m in &mut models {
            redact(&mut m.info.settings);
        }
        let mut h = Sha256::new();
        for s in self.samples.iter() {
            h.update(s.id.as_bytes());
            h.update([0]);
            h.update(serde_json::to_vec(&s.input).unwrap_or_default());
            h.update([0]);
        }
        let mut solver_config = self.solver.config();
        redact(&mut solver_config);
        let mut crate_versions = BTreeMap::new();
        crate_versions.insert(
            "psyche-runner".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        );
        LogHeader {
            psyche_log: log::LOG_FORMAT_VERSION,
            run_id: self.run_id.clone(),
            task: self.task.clone(),
            tasks: self.tasks.clone(),
            created_ms: now_ms(),
            solver: self.solver.id().to_owned(),
            solver_config,
            models,
            judges: self.judges.iter().map(|j| j.id().to_owned()).collect(),
            epochs: self.epochs,
            seed: self.seed,
            samples: self.samples.len(),
            samples_hash: hex::encode(h.finalize()),
            crate_versions,
            git_revision: git_revision(),
            config: self.config.clone(),
        }
    }

    /// Runs every unit of work not yet in the log and returns what was done.
    ///
    /// Units whose key is already in the log are skipped; a torn last line is dropped first.
    /// Failures of single units are recorded in their records and counted in
    /// [`RunSummary::errors`].
    ///
    /// # Errors
    ///
    /// [`RunnerError::Resume`] when the log belongs to another run or an incompatible
    /// configuration; [`RunnerError::Io`] / [`RunnerError::Log`] when the log cannot be read or
    /// written.
    pub async fn run(&self) -> Result<RunSummary, RunnerError> {
        let started = Instant::now();
        let header = self.header();
        let (sink, scan) = match &self.log_path {
            Some(path) => {
                let path = path.clone();
                let shown = path.clone();
                let h = header.clone();
                let (writer, scan) = tokio::task::spawn_blocking(move || {
                    let scan = log::scan(&path)?;
                    if let Some(existing) = &scan.header {
                        h.check_resumable(existing, &path)?;
                    }
                    let w = log::open_for_append(&path, &scan, &h)?;
                    Ok::<_, RunnerError>(((w, path), scan))
                })
                .await
                .map_err(|e| RunnerError::Writer {
                    path: shown,
                    message: format!("log scan task failed: {e}"),
                })??;
                (Sink::File(writer.0, writer.1), scan)
            }
            None => (Sink::Memory(Vec::new()), log::Scan::default()),
        };
        if scan.records > 0 {
            tracing::info!(
                run_id = %self.run_id,
                recorded = scan.records,
                torn_bytes = scan.torn_bytes,
                "resuming run"
            );
        }
        let done = Arc::new(scan.keys);
        let total = self.total_units();
        let mut todo_count = 0u64;
        for m in &self.subjects {
            for s in self.samples.iter() {
                for e in 0..self.epochs {
                    if !done.contains(&key(s, m.id(), e)) {
                        todo_count += 1;
                    }
                }
            }
        }
        let skipped = total - todo_count;
        let progress = Progress::new(self.progress, total, skipped);

        let (tx, rx) = tokio::sync::mpsc::channel::<Record>(self.channel_capacity);
        let writer = tokio::task::spawn_blocking(move || writer_loop(sink, rx, progress));

        let shared = Arc::new(Shared {
            run_id: self.run_id.clone(),
            samples: self.samples.clone(),
            roles: self.roles.clone(),
            judges: self.judges.clone(),
            solver: self.solver.clone(),
            seed: self.seed,
        });
        let samples = self.samples.clone();
        let epochs = self.epochs;
        let subjects = self.subjects.clone();
        let done_filter = done.clone();
        let items = subjects.into_iter().flat_map(move |m| {
            let samples = samples.clone();
            let done = done_filter.clone();
            (0..samples.len()).flat_map(move |si| {
                let samples = samples.clone();
                let done = done.clone();
                let m = m.clone();
                (0..epochs).filter_map(move |e| {
                    let s = &samples[si];
                    (!done.contains(&key(s, m.id(), e))).then(|| (m.clone(), si, e))
                })
            })
        });
        let mut stream = futures::stream::iter(items)
            .map(|(model, si, epoch)| {
                let shared = shared.clone();
                async move {
                    let sample = &shared.samples[si];
                    let span = tracing::info_span!(
                        "sample",
                        sample_id = %sample.id,
                        model = %model.id(),
                        epoch
                    );
                    let fallback = Record::for_sample(&shared.run_id, sample, model.id(), epoch);
                    let handle =
                        tokio::spawn(run_unit(shared.clone(), model, si, epoch).instrument(span));
                    match handle.await {
                        Ok(r) => r,
                        Err(e) => {
                            let mut r = fallback;
                            r.seed = Some(unit_seed(shared.seed, &r.sample_id, epoch));
                            r.error = Some(format!("unit of work panicked: {e}"));
                            r
                        }
                    }
                }
            })
            .buffer_unordered(self.concurrency);
        let mut send_failed = false;
        while let Some(record) = stream.next().await {
            if tx.send(record).await.is_err() {
                send_failed = true;
                break;
            }
        }
        drop(stream);
        drop(tx);
        let log_path = self.log_path.clone();
        let outcome = writer.await.map_err(|e| RunnerError::Writer {
            path: log_path.clone().unwrap_or_default(),
            message: format!("writer thread failed: {e}"),
        })??;
        if send_failed {
            return Err(RunnerError::Writer {
                path: log_path.unwrap_or_default(),
                message: "writer stopped early".into(),
            });
        }
        let elapsed = started.elapsed();
        let summary = RunSummary {
            run_id: self.run_id.clone(),
            log_path: self.log_path.clone(),
            total,
            skipped,
            completed: outcome.progress.done,
            errors: outcome.progress.errors,
            cached: outcome.progress.cached,
            torn_bytes_dropped: scan.torn_bytes,
            elapsed,
            records: outcome.records,
        };
        tracing::info!(
            run_id = %summary.run_id,
            completed = summary.completed,
            skipped = summary.skipped,
            errors = summary.errors,
            rate = summary.rate(),
            "run finished"
        );
        Ok(summary)
    }
}

fn key(sample: &Sample, model_id: &str, epoch: u32) -> RecordKey {
    RecordKey {
        sample_id: sample.id.clone(),
        model_id: model_id.to_owned(),
        epoch,
    }
}
