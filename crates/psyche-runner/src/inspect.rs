//! Export a run log to Inspect's `.json` eval-log format, so psyche runs open in
//! `inspect view` and load with `inspect_ai.log.read_eval_log`.
//!
//! Inspect logs hold one task × one model, so [`export_inspect`] writes one file per subject
//! model. The mapping:
//!
//! | psyche | Inspect `EvalLog` |
//! |---|---|
//! | header `run_id`, `task`, `created_ms`, `git_revision` | `eval.run_id`, `eval.task`, `eval.created`, `eval.revision` |
//! | header (whole) | `eval.metadata.psyche_header` |
//! | record (sample, epoch) | `samples[]` with `epoch` = psyche epoch + 1 (Inspect counts from 1) |
//! | transcript without the final answer / with it | `input` / `messages` |
//! | `output` | `output.completion` and `output.choices[0].message` |
//! | verdicts | `scores[judge]`: numbers and bools as values, labels as strings; `Score::None` is left out (listed in `metadata.psyche_declined`) |
//! | `error` | `error.message` |
//! | per-judge mean and standard error | `results.scores[]` metrics `mean` and `stderr` |
//!
//! The result validates against the schema printed by `inspect log schema` (see the
//! `inspect_export` test).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use psyche_core::{Conversation, Record, Role, Score, Usage};
use serde_json::{Value, json};

use crate::error::RunnerError;
use crate::log::{LogHeader, LogReader};

/// Milliseconds since the Unix epoch as an RFC 3339 UTC timestamp
/// (`2026-11-27T06:00:00.000+00:00`).
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}+00:00",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

fn message(role: Role, content: &str) -> Value {
    json!({"role": role.as_str(), "content": content})
}

fn messages(c: &Conversation) -> Vec<Value> {
    c.messages()
        .iter()
        .map(|m| message(m.role, &m.content))
        .collect()
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "output_tokens": u.completion_tokens,
        "total_tokens": u.total(),
    })
}

fn score_value(score: &Score) -> Option<Value> {
    match score {
        Score::Number(x) if x.is_finite() => Some(json!(x)),
        Score::Number(_) | Score::None { .. } => None,
        Score::Bool(b) => Some(json!(b)),
        Score::Label(l) => Some(json!(l)),
    }
}

fn sample_json(rec: &Record, model: &str) -> Value {
    let (input, full) = match &rec.transcript {
        Some(t) => {
            let input = t
                .split_last_assistant()
                .map_or_else(|| t.clone(), |(p, _)| p);
            (messages(&input), messages(t))
        }
        None => (Vec::new(), Vec::new()),
    };
    let output = rec.output.clone().unwrap_or_default();
    let mut scores = serde_json::Map::new();
    let mut declined = serde_json::Map::new();
    for (judge, v) in &rec.scores {
        match score_value(&v.score) {
            Some(value) => {
                let mut s = json!({"value": value, "history": []});
                if let Some(a) = &v.answer {
                    s["answer"] = json!(a);
                }
                if let Some(e) = &v.explanation {
                    s["explanation"] = json!(e);
                }
                if !v.metadata.is_empty() {
                    s["metadata"] = json!(v.metadata);
                }
                scores.insert(judge.clone(), s);
            }
            None => {
                let reason = match &v.score {
                    Score::None { reason } => reason.clone(),
                    _ => "non-finite number".to_owned(),
                };
                declined.insert(judge.clone(), json!(reason));
            }
        }
    }
    let mut metadata = serde_json::Map::new();
    for (k, v) in &rec.metadata {
        metadata.insert(k.clone(), v.clone());
    }
    if let Some(seed) = rec.seed {
        // Seeds exceed JavaScript's safe integers; keep them exact as strings.
        metadata.insert("psyche_seed".into(), json!(seed.to_string()));
    }
    if let Some(c) = &rec.cluster {
        metadata.insert("psyche_cluster".into(), json!(c));
    }
    metadata.insert("psyche_split".into(), json!(rec.split.to_string()));
    if !declined.is_empty() {
        metadata.insert("psyche_declined".into(), Value::Object(declined));
    }
    let mut model_usage = serde_json::Map::new();
    model_usage.insert(model.to_owned(), usage_json(&rec.usage));
    let mut s = json!({
        "id": rec.sample_id,
        "epoch": rec.epoch + 1,
        "input": input,
        "target": rec.meta_str("target").unwrap_or(""),
        "messages": full,
        "output": {
            "model": model,
            "choices": [{
                "message": {"role": "assistant", "content": output, "source": "generate"},
                "stop_reason": "stop",
            }],
            "completion": output,
            "usage": usage_json(&rec.usage),
            "time": rec.timing.elapsed_ms / 1e3,
        },
        "scores": scores,
        "metadata": metadata,
        "store": {},
        "events": [],
        "model_usage": model_usage,
        "role_usage": {},
        "attachments": {},
        "total_time": rec.timing.elapsed_ms / 1e3,
        "working_time": rec.timing.elapsed_ms / 1e3,
        "started_at": rfc3339_ms(rec.timing.started_ms),
        "uuid": format!("{}:{}:{}:{}", rec.run_id, rec.model_id, rec.sample_id, rec.epoch),
    });
    if let Some(e) = &rec.error {
        s["error"] = json!({"message": e, "traceback": "", "traceback_ansi": ""});
    }
    s
}

/// Builds the Inspect `EvalLog` document for the records of one subject model.
pub fn eval_log_json(header: Option<&LogHeader>, model: &str, records: &[Record]) -> Value {
    let run_id = header.map_or_else(
        || {
            records
                .first()
                .map(|r| r.run_id.clone())
                .unwrap_or_default()
        },
        |h| h.run_id.clone(),
    );
    let task = header
        .and_then(|h| h.task.clone())
        .unwrap_or_else(|| run_id.clone());
    let created_ms = header.map_or_else(
        || {
            records
                .iter()
                .map(|r| r.timing.started_ms)
                .min()
                .unwrap_or(0)
        },
        |h| h.created_ms,
    );
    let completed_ms = records
        .iter()
        .map(|r| r.timing.started_ms + r.timing.elapsed_ms as u64)
        .max()
        .unwrap_or(created_ms);
    let mut usage = Usage::default();
    let mut by_judge: BTreeMap<&str, (Vec<f64>, usize)> = BTreeMap::new();
    let mut sample_ids: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in records {
        usage += r.usage;
        if seen.insert(r.sample_id.as_str()) {
            sample_ids.push(&r.sample_id);
        }
        for (j, v) in &r.scores {
            let e = by_judge.entry(j.as_str()).or_default();
            match v.score.as_f64().filter(|x| x.is_finite()) {
                Some(x) => e.0.push(x),
                None => e.1 += 1,
            }
        }
    }
    let scores: Vec<Value> = by_judge
        .iter()
        .map(|(j, (vals, unscored))| {
            let n = vals.len() as f64;
            let mean = if vals.is_empty() {
                0.0
            } else {
                vals.iter().sum::<f64>() / n
            };
            let stderr = if vals.len() < 2 {
                0.0
            } else {
                (vals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
            };
            json!({
                "name": j,
                "scorer": j,
                "params": {},
                "scored_samples": vals.len(),
                "unscored_samples": unscored,
                "metrics": {
                    "mean": {"name": "mean", "value": mean, "params": {}},
                    "stderr": {"name": "stderr", "value": stderr, "params": {}},
                },
            })
        })
        .collect();
    let completed = records.iter().filter(|r| r.error.is_none()).count();
    let epochs = header.map_or(1, |h| h.epochs);
    let mut model_usage = serde_json::Map::new();
    model_usage.insert(model.to_owned(), usage_json(&usage));
    let solver = header.map_or_else(|| "unknown".to_owned(), |h| h.solver.clone());
    let solver_config = header.map_or(Value::Null, |h| h.solver_config.clone());
    let params = match &solver_config {
        Value::Object(_) => solver_config.clone(),
        Value::Null => json!({}),
        other => json!({"config": other}),
    };
    let mut packages = serde_json::Map::new();
    if let Some(h) = header {
        for (k, v) in &h.crate_versions {
            packages.insert(k.clone(), json!(v));
        }
    }
    let mut eval = json!({
        "eval_id": format!("{run_id}:{model}"),
        "run_id": run_id,
        "created": rfc3339_ms(created_ms),
        "task": task,
        "task_id": run_id,
        "task_version": 0,
        "task_attribs": {},
        "task_args": {},
        "task_args_passed": {},
        "solver": solver,
        "dataset": {"name": task, "samples": sample_ids.len(), "sample_ids": sample_ids},
        "model": model,
        "model_generate_config": {},
        "model_args": {},
        "config": {"epochs": epochs},
        "packages": packages,
        "metadata": {"psyche_header": header},
    });
    if let Some(rev) = header.and_then(|h| h.git_revision.clone()) {
        eval["revision"] = json!({"type": "git", "origin": "", "commit": rev});
    }
    json!({
        "version": 2,
        "status": "success",
        "eval": eval,
        "plan": {
            "name": "plan",
            "steps": [{"solver": solver, "params": params, "params_passed": {}}],
            "config": {},
        },
        "results": {
            "total_samples": records.len(),
            "completed_samples": completed,
            "scores": scores,
        },
        "stats": {
            "started_at": rfc3339_ms(created_ms),
            "completed_at": rfc3339_ms(completed_ms),
            "model_usage": model_usage,
            "role_usage": {},
            "connection_limit_history": [],
        },
        "invalidated": false,
        "tags": ["psyche"],
        "metadata": {"exported_by": format!("psyche-runner {}", env!("CARGO_PKG_VERSION"))},
        "samples": records.iter().map(|r| sample_json(r, model)).collect::<Vec<_>>(),
    })
}

fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Exports the log at `log` as Inspect `.json` eval logs, one per subject model, into
/// `out_dir` (`<run id>_<model>.json`). Returns the written paths.
///
/// Records of one model are held in memory while its file is written (Inspect's `.json` form
/// is a single document).
///
/// # Errors
///
/// As [`LogReader`], plus [`RunnerError::Io`] when a file cannot be written.
pub fn export_inspect(
    log: impl AsRef<Path>,
    out_dir: impl AsRef<Path>,
) -> Result<Vec<PathBuf>, RunnerError> {
    let reader = LogReader::open(log)?;
    let header = reader.header().cloned();
    let mut by_model: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for r in reader {
        let r = r?;
        by_model.entry(r.model_id.clone()).or_default().push(r);
    }
    let out_dir = out_dir.as_ref();
    std::fs::create_dir_all(out_dir).map_err(|e| RunnerError::io(out_dir, e))?;
    let mut paths = Vec::new();
    for (model, mut records) in by_model {
        records
            .sort_by(|a, b| (a.epoch, a.sample_id.as_str()).cmp(&(b.epoch, b.sample_id.as_str())));
        let doc = eval_log_json(header.as_ref(), &model, &records);
        let run = header
            .as_ref()
            .map_or_else(|| "run".to_owned(), |h| h.run_id.clone());
        let path = out_dir.join(format!("{}_{}.json", file_safe(&run), file_safe(&model)));
        let file = std::fs::File::create(&path).map_err(|e| RunnerError::io(&path, e))?;
        let mut w = std::io::BufWriter::new(file);
        serde_json::to_writer(&mut w, &doc).map_err(|e| RunnerError::Writer {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::io::Write::flush(&mut w).map_err(|e| RunnerError::io(&path, e))?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000+00:00");
        // 2000-02-29T12:34:56.789Z
        assert_eq!(rfc3339_ms(951_827_696_789), "2000-02-29T12:34:56.789+00:00");
        // 2026-11-27T06:00:00Z
        assert_eq!(
            rfc3339_ms(1_795_759_200_000),
            "2026-11-27T06:00:00.000+00:00"
        );
    }
}
