//! One unit of work (solve + judge → one record) and the writer thread that appends records
//! to the run log.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use psyche_core::{Judge, Model, Record, RecordKey, Sample, derive_seed};

use crate::error::RunnerError;
use crate::log::redact_text;
use crate::progress::Progress;
use crate::solver::{SolveContext, Solver};

pub(super) struct Shared {
    pub(super) run_id: String,
    pub(super) samples: Arc<Vec<Sample>>,
    pub(super) roles: Arc<BTreeMap<String, Arc<dyn Model>>>,
    pub(super) judges: Arc<Vec<Arc<dyn Judge>>>,
    pub(super) solver: Arc<dyn Solver>,
    pub(super) seed: u64,
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The seed of one (sample, epoch): the same for every subject model.
pub fn unit_seed(run_seed: u64, sample_id: &str, epoch: u32) -> u64 {
    derive_seed(run_seed, &format!("{sample_id}/{epoch}"))
}

pub(super) fn git_revision() -> Option<String> {
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

pub(super) async fn run_unit(
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

pub(super) enum Sink {
    File(std::io::BufWriter<std::fs::File>, PathBuf),
    Memory(Vec<Record>),
}

pub(super) struct WriterOutcome {
    pub(super) progress: Progress,
    pub(super) records: Vec<Record>,
}

pub(super) fn writer_loop(
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

pub(super) fn key(sample: &Sample, model_id: &str, epoch: u32) -> RecordKey {
    RecordKey {
        sample_id: sample.id.clone(),
        model_id: model_id.to_owned(),
        epoch,
    }
}
