//! # psyche-runner
//!
//! Runs psyche evaluations at scale: samples × subject models × epochs → a [`Solver`] (one or
//! several generations, possibly by several models in roles) → judges → [`Record`]s, streamed
//! with bounded concurrency into an append-only JSONL run log that resumes after a crash.
//! From a log alone it writes markdown and HTML reports ([`report`]) and Inspect `.json` eval
//! logs ([`inspect`]) that open in `inspect view`.
//!
//! - Engine: [`Eval::builder`] → [`Eval::run`] → [`RunSummary`].
//! - Tasks: [`EvalBuilder::task`] takes any [`TaskGenerator`](psyche_core::TaskGenerator) with a
//!   seed, records it in the log header and uses its default solver and judges.
//! - Solvers: the [`Solver`] seam (from psyche-core, re-exported) and [`Generate`] (one greedy
//!   generation).
//! - Run logs: [`LogHeader`], [`scan`], [`LogReader`], [`read_log`]; see [`log`] for the
//!   format and its guarantees (torn-line recovery, no duplicates, streaming, no secrets).
//! - Progress: [`ProgressMode`] (an indicatif bar on terminals, quiet in CI).
//! - Experiments: [`experiment`] (the [`ExperimentResult`](experiment::ExperimentResult) shape,
//!   [`Headline`](experiment::Headline) comparisons, one writer for `result.json`,
//!   `headline.json` and the report).
//! - Fine-tuning in experiments: [`training`] ([`Resumable`](training::Resumable) never trains
//!   the same data and config twice; [`train_runs`](training::train_runs) is the loop over arms
//!   and seeds).
//!
//! The runner depends on no concrete backend: models come in as `Arc<dyn Model>`.
//!
//! [`Record`]: psyche_core::Record
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod error;
mod eval;
pub mod experiment;
pub mod inspect;
pub mod log;
mod progress;
pub mod report;
mod solver;
pub mod training;

pub use error::RunnerError;
pub use eval::{Eval, EvalBuilder, RunSummary, unit_seed};
pub use log::{LogHeader, LogReader, ModelEntry, Scan, TaskEntry, read_log, scan};
pub use progress::ProgressMode;
pub use solver::{Generate, Solution, SolveContext, Solver, SolverError};
