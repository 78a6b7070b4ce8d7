//! Resume, proven (issue 24): the reduced `emergent_misalignment` example is killed with
//! SIGKILL during fine-tuning and again during collection (the evaluation's run log), then
//! rerun to completion in the same directory. Nothing that finished is done again — the
//! teacher's data record, the finished fine-tune's ledger entry and the run log's complete
//! lines are the very files (same inode, same bytes) the killed runs left — and `result.json`
//! equals an uninterrupted run's, timings and directory names aside.
//!
//! The phases are detected from files appearing (the data record, the first ledger entry, the
//! run log's lines), never from sleeps. The example binary comes from the same
//! `cargo test --release` build (cargo builds examples before it runs tests).
#![cfg(feature = "local")]

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The reduced sizes `scripts/replicate.sh --reduced` gives this example, one seed per arm.
const REDUCED: &[&str] = &[
    "--seeds",
    "1",
    "--name",
    "em",
    "--teacher-samples",
    "1",
    "--teacher-max-tokens",
    "12",
    "--train-examples",
    "6",
    "--epochs",
    "1",
    "--samples-per-paraphrase",
    "1",
    "--max-tokens",
    "12",
];

fn example() -> PathBuf {
    // target/<profile>/deps/resume-<hash> → target/<profile>/examples/emergent_misalignment
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile.join("examples").join("emergent_misalignment");
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

fn start(out: &Path) -> Child {
    std::fs::create_dir_all(out).unwrap();
    let log = std::fs::File::create(out.with_extension("stderr.log")).unwrap();
    Command::new(example())
        .args(REDUCED)
        .arg("--out")
        .arg(out)
        .env(
            "RUST_LOG",
            "warn,psyche_misalignment=info,psyche_runner::training=info",
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn finish(mut child: Child, out: &Path) -> String {
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(out.with_extension("stderr.log")).unwrap();
    assert!(status.success(), "the example failed:\n{stderr}");
    stderr
}

/// Polls until `ready` holds (or the child exits, or 10 minutes pass: both failures).
fn wait_for(child: &mut Child, what: &str, ready: impl Fn() -> bool) {
    let started = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the example exited ({status}) before {what}");
        }
        assert!(started.elapsed() < Duration::from_secs(600), "no {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The files under `dir` (any depth: the ledger keeps one folder per engine) ending in `suffix`.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            v.extend(files(&path, suffix));
        } else if path.to_string_lossy().ends_with(suffix) {
            v.push(path);
        }
    }
    v.sort();
    v
}

/// A file's identity: a rewrite (atomic rename or truncate) changes the inode or the bytes.
fn identity(path: &Path) -> (u64, Vec<u8>) {
    (
        std::fs::metadata(path).unwrap().ino(),
        std::fs::read(path).unwrap(),
    )
}

/// The complete lines of a run log (a torn last line is dropped on resume).
fn complete_lines(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    match text.rfind('\n') {
        Some(i) => text[..=i].to_owned(),
        None => String::new(),
    }
}

/// `result.json` with what legitimately differs between two runs removed: stage timings,
/// training seconds, and the output directory's name.
fn normalised_result(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("result.json")).unwrap();
    let text = text.replace(&out.display().to_string(), "<out>");
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["timings"] = serde_json::Value::Null;
    for f in v["fine_tunes"].as_array_mut().unwrap() {
        f["seconds"] = serde_json::Value::Null;
        let details = f["details"].as_object_mut().unwrap();
        details.remove("seconds");
        details.remove("step_seconds");
    }
    v
}

/// The JSON paths where `a` and `b` differ, with both values (shortened).
fn differing_paths(a: &serde_json::Value, b: &serde_json::Value, at: &str, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let null = Value::Null;
                let (p, q) = (x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null));
                differing_paths(p, q, &format!("{at}/{k}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differing_paths(p, q, &format!("{at}[{i}]"), out);
            }
        }
        // The embedded model's probabilities vary at about 1e-6 from one process to the next
        // (the batch a prompt is computed in changes the float summation order), even for the
        // same model on the same prompt, and the p-value of a near-zero difference moves in its
        // fourth digit: numbers agree when they agree to 1e-3 (absolute below 1, else relative).
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            if (x - y).abs() > 1e-3 * x.abs().max(y.abs()).max(1.0) {
                out.push(format!("{at}: {x} vs {y}"));
            }
        }
        _ if a != b => {
            let short = |v: &Value| v.to_string().chars().take(120).collect::<String>();
            out.push(format!("{at}: {} vs {}", short(a), short(b)));
        }
        _ => {}
    }
}

#[test]
fn killed_during_fine_tuning_and_collection_resumes_without_redoing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, resumed) = (dir.path().join("whole"), dir.path().join("resumed"));
    finish(start(&whole), &whole);

    let (data, ledger, log) = (
        resumed.join("data"),
        resumed.join("fine-tunes"),
        resumed.join("runs").join("em.jsonl"),
    );
    // 1. Killed during fine-tuning: the first of the two fine-tunes has finished.
    let mut child = start(&resumed);
    wait_for(&mut child, "a finished fine-tune", || {
        !files(&ledger, ".json").is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let records = files(&data, ".record.json");
    let entries = files(&ledger, ".json");
    assert_eq!(records.len(), 1, "one data seed's record");
    assert_eq!(entries.len(), 1, "killed while the second fine-tune ran");
    let record_before = identity(&records[0]);
    let entry_before = identity(&entries[0]);
    assert!(!log.exists(), "killed before any collection");

    // 2. Killed during collection: some answers are in the run log, not all.
    let mut child = start(&resumed);
    wait_for(&mut child, "collected answers", || {
        complete_lines(&log).lines().count() >= 3
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let collected = complete_lines(&log);
    assert_eq!(identity(&records[0]), record_before, "teacher data redone");
    assert_eq!(
        identity(&entries[0]),
        entry_before,
        "finished fine-tune redone"
    );
    assert_eq!(files(&ledger, ".json").len(), 2);
    let entries = files(&ledger, ".json");
    let ledger_before: Vec<_> = entries.iter().map(|p| identity(p)).collect();

    // 3. The rerun to completion.
    let stderr = finish(start(&resumed), &resumed);
    assert_eq!(identity(&records[0]), record_before, "teacher data redone");
    let ledger_after: Vec<_> = entries.iter().map(|p| identity(p)).collect();
    assert_eq!(
        ledger_after, ledger_before,
        "a finished fine-tune was redone"
    );
    assert_eq!(files(&ledger, ".json").len(), 2);
    assert_eq!(
        stderr
            .matches("fine-tune already finished; reusing it")
            .count(),
        2,
        "{stderr}"
    );
    assert!(
        stderr.contains("teacher data already built; reusing it"),
        "{stderr}"
    );
    let final_log = std::fs::read_to_string(&log).unwrap();
    assert!(
        final_log.starts_with(&collected),
        "the collected lines were rewritten"
    );
    let whole_log = std::fs::read_to_string(whole.join("runs").join("em.jsonl")).unwrap();
    assert!(
        collected.lines().count() < whole_log.lines().count(),
        "the second kill came after collection had finished"
    );
    assert_eq!(
        final_log.lines().count(),
        whole_log.lines().count(),
        "every answer collected exactly once"
    );

    let mut differences = Vec::new();
    differing_paths(
        &normalised_result(&resumed),
        &normalised_result(&whole),
        "",
        &mut differences,
    );
    assert!(
        differences.is_empty(),
        "result.json differs from the uninterrupted run's at {} place(s), first: {:#?}",
        differences.len(),
        &differences[..differences.len().min(20)]
    );
    for file in [
        "headline.json",
        "notes.json",
        "report/em.md",
        "report/em.html",
    ] {
        assert!(resumed.join(file).exists(), "{file}");
    }
}
