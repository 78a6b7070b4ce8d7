//! The run log: one header line, then one [`Record`] per line (JSONL), append-only.
//!
//! ```text
//! {"psyche_log":1,"run_id":"demo","solver":"generate",...}      <- LogHeader
//! {"run_id":"demo","sample_id":"q1","model_id":"m","epoch":0,...} <- Record
//! {"run_id":"demo","sample_id":"q2","model_id":"m","epoch":0,...}
//! ```
//!
//! Guarantees:
//! - **Resume is a pure function of the log.** [`scan`] streams the file once, collecting the
//!   [`RecordKey`] of every complete line; the runner skips those keys and does the rest.
//! - **Torn lines are dropped.** A process killed mid-write leaves a last line without its
//!   newline; [`scan`] reports it and [`open_for_append`] truncates the file back to the last
//!   complete line before appending. A malformed line *inside* the file is an error naming its
//!   line number: the runner never guesses.
//! - **Nothing is duplicated.** Keys already present are never scheduled again, and the writer
//!   is the only appender.
//! - **Streaming.** Reading never loads the whole file: [`LogReader`] yields one record at a
//!   time, and resume keeps only keys in memory.
//! - **No secrets.** Model settings and configuration pass through [`redact`] before they are
//!   written; error messages pass through [`redact_text`].

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use psyche_core::{ModelInfo, Record, RecordKey};
use serde::{Deserialize, Serialize};

use crate::error::RunnerError;

/// Version of the log format written in every header.
pub const LOG_FORMAT_VERSION: u32 = 1;

/// A model taking part in a run, with its role (`"subject"` for evaluated models).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// `"subject"`, `"judge"`, `"teacher"`, ...
    pub role: String,
    /// Provenance of the model's numbers.
    pub info: ModelInfo,
}

/// The first line of a run log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogHeader {
    /// Log format version ([`LOG_FORMAT_VERSION`]); its presence marks the line as a header.
    pub psyche_log: u32,
    /// The run's id.
    pub run_id: String,
    /// The task's name, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The task generators whose samples the run evaluates, with the seed each was asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskEntry>,
    /// When the run was first started, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// The solver's id.
    pub solver: String,
    /// The solver's configuration.
    #[serde(default)]
    pub solver_config: serde_json::Value,
    /// Every model of the run with its role.
    pub models: Vec<ModelEntry>,
    /// The judges' ids, in scoring order.
    pub judges: Vec<String>,
    /// Repeats per sample.
    pub epochs: u32,
    /// The run seed; each (sample, epoch) uses `derive_seed(seed, "<sample id>/<epoch>")`.
    pub seed: u64,
    /// Number of samples when the log was created.
    pub samples: usize,
    /// SHA-256 over the samples' ids and prompts, in order.
    pub samples_hash: String,
    /// Versions of the crates that wrote the log.
    pub crate_versions: BTreeMap<String, String>,
    /// `git rev-parse HEAD` of the working directory, when available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_revision: Option<String>,
    /// Free-form extra configuration given to the builder.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub config: serde_json::Value,
}

/// A task generator recorded in a [`LogHeader`]: what produced the run's samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEntry {
    /// [`TaskGenerator::name`](psyche_core::TaskGenerator::name).
    pub name: String,
    /// [`TaskGenerator::version`](psyche_core::TaskGenerator::version).
    pub version: String,
    /// The seed the samples were generated with.
    pub seed: u64,
    /// [`TaskGenerator::config`](psyche_core::TaskGenerator::config).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub config: serde_json::Value,
    /// How many samples it produced.
    pub samples: usize,
}

impl LogHeader {
    /// Checks that a run described by `self` may append to a log that starts with `existing`:
    /// same run id, solver, solver configuration and seed, and every model already in the log
    /// (same id and role) still has the same backend and weights. Models, samples, epochs and
    /// judges may be added. A model whose other settings changed (threads, CPU kernels, ...)
    /// resumes with a warning: its new records come from different settings.
    ///
    /// # Errors
    ///
    /// [`RunnerError::Resume`] naming the first field that differs.
    pub fn check_resumable(&self, existing: &LogHeader, path: &Path) -> Result<(), RunnerError> {
        let differs = |field: &str, old: String, new: String| {
            Err(RunnerError::Resume {
                path: path.to_owned(),
                message: format!(
                    "header field `{field}` differs: log has {old}, this run has {new}; use a new run id or log path"
                ),
            })
        };
        if existing.run_id != self.run_id {
            return differs("run_id", existing.run_id.clone(), self.run_id.clone());
        }
        if existing.solver != self.solver {
            return differs("solver", existing.solver.clone(), self.solver.clone());
        }
        if existing.solver_config != self.solver_config {
            return differs(
                "solver_config",
                existing.solver_config.to_string(),
                self.solver_config.to_string(),
            );
        }
        if existing.seed != self.seed {
            return differs("seed", existing.seed.to_string(), self.seed.to_string());
        }
        for new in &self.tasks {
            let Some(old) = existing.tasks.iter().find(|t| t.name == new.name) else {
                continue;
            };
            let name = format!("tasks[{}]", new.name);
            if old.version != new.version {
                return differs(
                    &format!("{name}.version"),
                    old.version.clone(),
                    new.version.clone(),
                );
            }
            if old.seed != new.seed {
                return differs(
                    &format!("{name}.seed"),
                    old.seed.to_string(),
                    new.seed.to_string(),
                );
            }
            if old.config != new.config {
                return differs(
                    &format!("{name}.config"),
                    old.config.to_string(),
                    new.config.to_string(),
                );
            }
        }
        for new in &self.models {
            let Some(old) = existing
                .models
                .iter()
                .find(|m| m.role == new.role && m.info.id == new.info.id)
            else {
                continue;
            };
            let name = format!("models[{} {}]", new.role, new.info.id);
            if old.info.backend != new.info.backend {
                return differs(
                    &format!("{name}.backend"),
                    old.info.backend.clone(),
                    new.info.backend.clone(),
                );
            }
            if old.info.weights != new.info.weights {
                let show = |w: &Option<String>| w.clone().unwrap_or_else(|| "none".into());
                return differs(
                    &format!("{name}.weights"),
                    show(&old.info.weights),
                    show(&new.info.weights),
                );
            }
            if old.info.settings != new.info.settings {
                tracing::warn!(
                    log = %path.display(),
                    model = %new.info.id,
                    "resuming with changed model settings; new records come from the new settings"
                );
            }
        }
        Ok(())
    }
}

/// What a scan of an existing log found.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// The header, when the file had one.
    pub header: Option<LogHeader>,
    /// Keys of all complete records.
    pub keys: HashSet<RecordKey>,
    /// Number of complete records.
    pub records: usize,
    /// Byte length of the complete part of the file.
    pub good_len: u64,
    /// Bytes after `good_len` (a torn last line), 0 when the file ends cleanly.
    pub torn_bytes: u64,
    /// Records whose key appeared earlier in the file (0 for logs written by this crate).
    pub duplicates: usize,
    /// Records that carry an error.
    pub errors: usize,
}

#[derive(Deserialize)]
struct KeyOnly {
    sample_id: String,
    model_id: String,
    epoch: u32,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

/// Whether a log line is a header line.
fn is_header(line: &[u8]) -> bool {
    // Headers start with their version field; records start with `run_id`.
    line.starts_with(b"{\"psyche_log\"")
}

/// Streams `path` once and collects what resuming needs. A missing file scans as empty.
///
/// # Errors
///
/// [`RunnerError::Io`] when the file cannot be read; [`RunnerError::Log`] naming the line when
/// a complete line is not a valid header or record.
pub fn scan(path: &Path) -> Result<Scan, RunnerError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Scan::default()),
        Err(e) => return Err(RunnerError::io(path, e)),
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut scan = Scan::default();
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| RunnerError::io(path, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            // A torn last line: the writer was killed mid-write.
            scan.torn_bytes = n as u64;
            break;
        }
        let line = &buf[..n - 1];
        if line.iter().all(u8::is_ascii_whitespace) {
            scan.good_len += n as u64;
            continue;
        }
        if line_no == 1 && is_header(line) {
            let header: LogHeader = serde_json::from_slice(line).map_err(|e| RunnerError::Log {
                path: path.to_owned(),
                line: line_no,
                message: format!("invalid header: {e}"),
            })?;
            scan.header = Some(header);
        } else {
            let k: KeyOnly = serde_json::from_slice(line).map_err(|e| RunnerError::Log {
                path: path.to_owned(),
                line: line_no,
                message: format!("invalid record: {e}"),
            })?;
            if k.error.is_some() {
                scan.errors += 1;
            }
            let key = RecordKey {
                sample_id: k.sample_id,
                model_id: k.model_id,
                epoch: k.epoch,
            };
            if !scan.keys.insert(key) {
                scan.duplicates += 1;
            }
            scan.records += 1;
        }
        scan.good_len += n as u64;
    }
    Ok(scan)
}

/// Opens `path` for appending after a [`scan`]: truncates a torn last line, and writes `header`
/// first when the file is new or empty.
///
/// # Errors
///
/// [`RunnerError::Io`] when the file cannot be created, truncated or written.
pub fn open_for_append(
    path: &Path,
    scan: &Scan,
    header: &LogHeader,
) -> Result<BufWriter<File>, RunnerError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| RunnerError::io(dir, e))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| RunnerError::io(path, e))?;
    if scan.torn_bytes > 0 {
        tracing::warn!(
            path = %path.display(),
            bytes = scan.torn_bytes,
            "dropping a torn last line left by an interrupted run"
        );
        file.set_len(scan.good_len)
            .map_err(|e| RunnerError::io(path, e))?;
    }
    let mut w = BufWriter::with_capacity(1 << 16, file);
    if scan.header.is_none() && scan.records == 0 {
        if scan.good_len > 0 {
            // Only blank lines so far; start afresh.
            w.get_ref()
                .set_len(0)
                .map_err(|e| RunnerError::io(path, e))?;
        }
        serde_json::to_writer(&mut w, header).map_err(|e| RunnerError::Writer {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        w.write_all(b"\n").map_err(|e| RunnerError::io(path, e))?;
        w.flush().map_err(|e| RunnerError::io(path, e))?;
    }
    Ok(w)
}

/// A streaming reader over a run log: the header, then records one at a time.
///
/// A torn last line is skipped with a warning (reading never modifies the file).
#[derive(Debug)]
pub struct LogReader {
    path: PathBuf,
    reader: BufReader<File>,
    header: Option<LogHeader>,
    line_no: usize,
    buf: Vec<u8>,
    pending: Option<Record>,
}

impl LogReader {
    /// Opens a log and reads its header.
    ///
    /// # Errors
    ///
    /// [`RunnerError::Io`] when the file cannot be opened; [`RunnerError::Log`] when the first
    /// line is neither a header nor a record.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RunnerError> {
        let path = path.as_ref().to_owned();
        let file = File::open(&path).map_err(|e| RunnerError::io(&path, e))?;
        let mut r = Self {
            path,
            reader: BufReader::with_capacity(1 << 20, file),
            header: None,
            line_no: 0,
            buf: Vec::with_capacity(4096),
            pending: None,
        };
        if let Some(first) = r.next_line()? {
            if is_header(&first) {
                r.header = Some(
                    serde_json::from_slice(&first).map_err(|e| RunnerError::Log {
                        path: r.path.clone(),
                        line: 1,
                        message: format!("invalid header: {e}"),
                    })?,
                );
            } else {
                r.pending = Some(r.parse_record(&first)?);
            }
        }
        Ok(r)
    }

    /// The log's header, when it has one.
    pub fn header(&self) -> Option<&LogHeader> {
        self.header.as_ref()
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn next_line(&mut self) -> Result<Option<Vec<u8>>, RunnerError> {
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| RunnerError::io(&self.path, e))?;
            if n == 0 {
                return Ok(None);
            }
            self.line_no += 1;
            if self.buf.last() != Some(&b'\n') {
                tracing::warn!(
                    path = %self.path.display(),
                    line = self.line_no,
                    "skipping a torn last line (interrupted run)"
                );
                return Ok(None);
            }
            self.buf.pop();
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(std::mem::take(&mut self.buf)));
        }
    }

    fn parse_record(&self, line: &[u8]) -> Result<Record, RunnerError> {
        serde_json::from_slice(line).map_err(|e| RunnerError::Log {
            path: self.path.clone(),
            line: self.line_no,
            message: format!("invalid record: {e}"),
        })
    }
}

impl Iterator for LogReader {
    type Item = Result<Record, RunnerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(r) = self.pending.take() {
            return Some(Ok(r));
        }
        match self.next_line() {
            Ok(Some(line)) => {
                let rec = self.parse_record(&line);
                self.buf = line;
                Some(rec)
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Reads a whole log into memory (header and records). Prefer [`LogReader`] for large logs.
///
/// # Errors
///
/// As [`LogReader::open`], plus the first invalid record.
pub fn read_log(path: impl AsRef<Path>) -> Result<(Option<LogHeader>, Vec<Record>), RunnerError> {
    let reader = LogReader::open(path)?;
    let header = reader.header().cloned();
    let records = reader.collect::<Result<Vec<_>, _>>()?;
    Ok((header, records))
}

const SECRET_KEY_PARTS: [&str; 6] = [
    "key",
    "token",
    "secret",
    "password",
    "authorization",
    "credential",
];

/// Replaces the value of every object field whose name looks like a credential (`api_key`,
/// `token`, `secret`, `password`, `authorization`, ...) with `"[redacted]"`, recursively, and
/// runs [`redact_text`] over every string.
pub fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let lower = k.to_ascii_lowercase();
                let secret = SECRET_KEY_PARTS.iter().any(|p| lower.contains(p))
                    && !lower.contains("tokens")
                    && !lower.starts_with("top_")
                    && !lower.ends_with("_id");
                if secret && !v.is_null() {
                    *v = serde_json::Value::String("[redacted]".into());
                } else {
                    redact(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        serde_json::Value::String(s) => {
            let r = redact_text(s);
            if r != *s {
                *s = r;
            }
        }
        _ => {}
    }
}

/// Masks substrings that look like API keys (`sk-...`, `sk-ant-...`, `Bearer ...`, `hf_...`)
/// in free text such as error messages.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut bearer = false;
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let w = word.trim_matches(|c: char| "\"'`,;()[]{}".contains(c));
        let looks_secret = bearer
            || ((w.starts_with("sk-") || w.starts_with("hf_") || w.starts_with("sk_"))
                && w.len() >= 12);
        bearer = w.eq_ignore_ascii_case("bearer");
        if looks_secret && !w.is_empty() {
            out.push_str(&word.replace(w, "[redacted]"));
        } else {
            out.push_str(word);
        }
    }
    out
}

/// Writes `header` and `records` as a fresh log at `path` (used by re-scoring and tests).
///
/// # Errors
///
/// [`RunnerError::Io`] when the file cannot be written.
pub fn write_log<'a>(
    path: &Path,
    header: &LogHeader,
    records: impl IntoIterator<Item = &'a Record>,
) -> Result<(), RunnerError> {
    let file = File::create(path).map_err(|e| RunnerError::io(path, e))?;
    let mut w = BufWriter::new(file);
    let ser = |e: serde_json::Error| RunnerError::Writer {
        path: path.to_owned(),
        message: e.to_string(),
    };
    serde_json::to_writer(&mut w, header).map_err(ser)?;
    w.write_all(b"\n").map_err(|e| RunnerError::io(path, e))?;
    for r in records {
        serde_json::to_writer(&mut w, r).map_err(ser)?;
        w.write_all(b"\n").map_err(|e| RunnerError::io(path, e))?;
    }
    w.flush().map_err(|e| RunnerError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_masks_credential_fields_and_key_like_text() {
        let mut v = serde_json::json!({
            "api_key": "sk-abcdefghijklmnop",
            "max_tokens": 5,
            "nested": {"Authorization": "Bearer abc", "url": "http://x"},
            "note": "failed with key sk-proj-1234567890abcdef here"
        });
        redact(&mut v);
        assert_eq!(v["api_key"], "[redacted]");
        assert_eq!(v["max_tokens"], 5);
        assert_eq!(v["nested"]["Authorization"], "[redacted]");
        assert_eq!(v["nested"]["url"], "http://x");
        assert_eq!(v["note"], "failed with key [redacted] here");
        assert_eq!(redact_text("Bearer abc123 rest"), "Bearer [redacted] rest");
    }
}
