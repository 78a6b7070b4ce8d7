//! The Inspect export validates against the schema `inspect log schema` prints and reads back
//! with `inspect_ai.log.read_eval_log`.
//!
//! Needs `.venv-inspect` at the repository root: run `scripts/inspect-venv.sh` (CI does).

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{Judge, JudgeError, Sample, Score, Verdict};
use psyche_runner::inspect::export_inspect;
use psyche_runner::{Eval, Generate, ProgressMode};
use support::{ExactMatch, Scripted, arithmetic_samples};

fn venv() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    let venv = root.join(".venv-inspect");
    assert!(
        venv.join("bin/python").exists() && venv.join("bin/inspect").exists(),
        "missing {}: run `scripts/inspect-venv.sh` to install inspect_ai for this test",
        venv.display()
    );
    venv
}

/// A judge that gives numbers, labels and `None` so every score kind is exported.
struct Mixed;

#[async_trait]
impl Judge for Mixed {
    fn id(&self) -> &str {
        "mixed"
    }
    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let n: usize = sample.id[1..].parse().unwrap_or(0);
        let score = match n % 3 {
            0 => Score::Number(output.len() as f64),
            1 => Score::Label(format!("len{}", output.len())),
            _ => Score::none("declined for the test"),
        };
        Ok(Verdict::new("mixed", score).with_explanation("test judge"))
    }
}

#[tokio::test]
async fn export_validates_against_inspect_schema_and_reads_back() {
    let venv = venv();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.jsonl");
    let mut samples = arithmetic_samples(12);
    samples.push(Sample::new(
        "s99999",
        psyche_core::Conversation::user("please fail"),
    ));
    Eval::builder("inspect-export")
        .task_name("arithmetic")
        .samples(samples)
        .model(Scripted::new("model-a"))
        .model(Scripted::new("model-b"))
        .judge(Arc::new(ExactMatch))
        .judge(Arc::new(Mixed))
        .solver(Generate::new(8))
        .epochs(2)
        .seed(3)
        .progress(ProgressMode::Quiet)
        .log_path(&log)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let out = dir.path().join("inspect");
    let paths = export_inspect(&log, &out).unwrap();
    assert_eq!(paths.len(), 2, "one Inspect log per subject model");
    let result = Command::new(venv.join("bin/python"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/inspect_validate.py"
        ))
        .arg(venv.join("bin/inspect"))
        .arg("26")
        .args(&paths)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "Inspect validation failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, model) in lines.iter().zip(["model-a", "model-b"]) {
        let facts: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(facts["model"], model);
        assert_eq!(facts["samples"], 26);
        assert_eq!(facts["first_epoch"], 1);
        assert_eq!(facts["scorers"], serde_json::json!(["exact", "mixed"]));
        // 12 good samples × 2 epochs; the scripted model is wrong when a % 4 == 0.
        let mean = facts["metrics"]["exact"]["mean"].as_f64().unwrap();
        assert!(mean > 0.5 && mean < 1.0, "{facts}");
    }
}
