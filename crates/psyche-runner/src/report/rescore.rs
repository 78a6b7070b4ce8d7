//! Re-scoring a run log with other judges, without regenerating anything.

use std::path::Path;
use std::sync::Arc;

use psyche_core::{Conversation, Judge, Record, Sample};

use crate::error::RunnerError;
use crate::log::LogReader;

/// Rebuilds the sample a record was judged on: its id, prompt (the transcript without the
/// final assistant turn), target (metadata `"target"`), metadata, cluster and split.
pub fn sample_from_record(record: &Record) -> Sample {
    let input = match &record.transcript {
        Some(t) => match t.split_last_assistant() {
            Some((prompt, _)) => prompt,
            None => t.clone(),
        },
        None => Conversation::new(),
    };
    let mut s = Sample::new(record.sample_id.clone(), input);
    s.target = record.meta_str("target").map(str::to_owned);
    s.metadata = record.metadata.clone();
    s.cluster = record.cluster.clone();
    s.split = record.split.clone();
    s
}

/// Re-scores every record of the log at `input` with `judges` (replacing verdicts of the same
/// judge ids, keeping the others) and writes the result to `output` with the header's judge
/// list updated. Nothing is regenerated; records without output are copied unchanged. The
/// new log is written to `<output>.partial`, synced and renamed to `output` when complete.
///
/// # Errors
///
/// As [`LogReader`], plus [`RunnerError::Io`] when writing fails. Judge failures are recorded
/// in the record's `error` like during a run.
pub async fn rescore(
    input: impl AsRef<Path>,
    output: impl AsRef<Path>,
    judges: &[Arc<dyn Judge>],
) -> Result<usize, RunnerError> {
    use std::io::Write;
    let input = input.as_ref();
    let output = output.as_ref();
    if input == output {
        return Err(RunnerError::config(
            "output",
            "re-scoring writes a new log; give a different output path",
        ));
    }
    let reader = LogReader::open(input)?;
    // Written next to `output` and renamed into place once complete, so an interrupted
    // re-score never leaves a truncated log under the output name.
    let partial = {
        let mut name = output.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        output.with_file_name(name)
    };
    let file = std::fs::File::create(&partial).map_err(|e| RunnerError::io(&partial, e))?;
    let mut w = std::io::BufWriter::new(file);
    let ser = |e: serde_json::Error| RunnerError::Writer {
        path: output.to_owned(),
        message: e.to_string(),
    };
    if let Some(h) = reader.header() {
        let mut h = h.clone();
        for j in judges {
            if !h.judges.iter().any(|x| x == j.id()) {
                h.judges.push(j.id().to_owned());
            }
        }
        serde_json::to_writer(&mut w, &h).map_err(ser)?;
        w.write_all(b"\n").map_err(|e| RunnerError::io(output, e))?;
    }
    let mut n = 0;
    for rec in reader {
        let mut rec = rec?;
        if let Some(out) = rec.output.clone() {
            let sample = sample_from_record(&rec);
            let mut errors = Vec::new();
            for j in judges {
                match j.judge(&sample, &out).await {
                    Ok(v) => {
                        rec.scores.insert(j.id().to_owned(), v);
                    }
                    Err(e) => errors.push(format!("judge `{}`: {e}", j.id())),
                }
            }
            if !errors.is_empty() {
                rec.error = Some(errors.join("; "));
            }
        }
        serde_json::to_writer(&mut w, &rec).map_err(ser)?;
        w.write_all(b"\n").map_err(|e| RunnerError::io(output, e))?;
        n += 1;
    }
    let file = w
        .into_inner()
        .map_err(|e| RunnerError::io(&partial, e.into_error()))?;
    file.sync_all().map_err(|e| RunnerError::io(&partial, e))?;
    std::fs::rename(&partial, output).map_err(|e| RunnerError::io(output, e))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use psyche_core::{ChatMessage, Role};

    #[test]
    fn sample_from_record_strips_the_final_answer() {
        let s = Sample::new("q", Conversation::user("hi")).with_meta("task", "t");
        let mut r = Record::for_sample("run", &s, "m", 0);
        r.transcript = Some(Conversation::user("hi").with(ChatMessage::assistant("yo")));
        r.metadata.insert("target".into(), "yo".into());
        let back = sample_from_record(&r);
        assert_eq!(back.input, Conversation::user("hi"));
        assert_eq!(back.target.as_deref(), Some("yo"));
        assert_eq!(back.input.messages()[0].role, Role::User);
    }
}
