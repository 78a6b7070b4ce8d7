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
mod builder;
mod worker;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use psyche_core::{Judge, Model, Record, Sample};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::error::RunnerError;
use crate::log::{self, LogHeader, ModelEntry, TaskEntry, redact};
use crate::progress::{Progress, ProgressMode};
use crate::solver::Solver;

pub use builder::EvalBuilder;
pub use worker::unit_seed;
use worker::{Shared, Sink, git_revision, key, now_ms, run_unit, writer_loop};

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
