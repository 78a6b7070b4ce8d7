//! A run killed with SIGKILL in the middle of 5,000 samples against the local test server
//! resumes to exactly one record per sample, with the same results as an uninterrupted run.
//!
//! The child is this test binary itself, re-invoked to run the ignored test `child_run`
//! (which refuses to run without the parent's environment variables).

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use psyche_models::{OpenAiCompatible, OpenAiConfig};
use psyche_runner::{Eval, Generate, ProgressMode, read_log, scan};
use psyche_test_server::{ServerConfig, TestServer};
use support::{ExactMatch, arithmetic_samples};

const N: usize = 5_000;
const ENV_URL: &str = "PSYCHE_RUNNER_KILL_CHILD_URL";
const ENV_LOG: &str = "PSYCHE_RUNNER_KILL_CHILD_LOG";

fn eval(url: &str, log: &Path, concurrency: usize) -> Eval {
    let model = OpenAiCompatible::new(OpenAiConfig::new(url, "test-model")).unwrap();
    Eval::builder("kill-resume")
        .samples(arithmetic_samples(N))
        .model(Arc::new(model))
        .judge(Arc::new(ExactMatch))
        .solver(Generate::new(16))
        .seed(7)
        .concurrency(concurrency)
        .progress(ProgressMode::Quiet)
        .log_path(log)
        .build()
        .unwrap()
}

/// Runs only as the child of `sigkill_mid_run_then_resume_records_every_sample_once`.
#[test]
#[ignore = "child process of sigkill_mid_run_then_resume_records_every_sample_once"]
fn child_run() {
    let url = std::env::var(ENV_URL).expect("run only as the child of the SIGKILL test");
    let log = std::env::var(ENV_LOG).expect("run only as the child of the SIGKILL test");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        eval(&url, Path::new(&log), 8).run().await.unwrap();
    });
}

/// (sample, epoch) → (output, seed, exact score).
type Results = BTreeMap<(String, u32), (Option<String>, Option<u64>, Option<f64>)>;

fn results(path: &Path) -> Results {
    let (_, records) = read_log(path).unwrap();
    let mut map = BTreeMap::new();
    for r in records {
        let prev = map.insert(
            (r.sample_id.clone(), r.epoch),
            (r.output.clone(), r.seed, r.score("exact")),
        );
        assert!(prev.is_none(), "sample {} recorded twice", r.sample_id);
    }
    map
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_then_resume_records_every_sample_once() {
    // 2 ms per answer at concurrency 8: the child needs over a second, so we can kill it midway.
    let server = TestServer::start(ServerConfig::default().latency(Duration::from_millis(2))).await;
    let url = server.base_url();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("killed.jsonl");

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_run",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_URL, &url)
        .env(ENV_LOG, &log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        // Complete lines: the header, then one record per line.
        let lines = std::fs::read(&log)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0);
        if lines > 1_001 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child exited before it could be killed: {status}");
        }
        assert!(Instant::now() < deadline, "child made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // std's Child::kill sends SIGKILL on Unix: no destructor, no flush, no cooperation.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");

    let killed = scan(&log).unwrap();
    assert!(
        killed.records > 1_000,
        "{} records before the kill",
        killed.records
    );
    assert!(killed.records < N, "the child finished before the kill");
    assert_eq!(killed.duplicates, 0);

    let resumed = eval(&url, &log, 64).run().await.unwrap();
    assert_eq!(resumed.skipped as usize, killed.records);
    assert_eq!((resumed.skipped + resumed.completed) as usize, N);
    assert_eq!(resumed.errors, 0);
    let after = scan(&log).unwrap();
    assert_eq!(
        (after.records, after.duplicates, after.torn_bytes),
        (N, 0, 0)
    );

    let clean_log = dir.path().join("uninterrupted.jsonl");
    let clean = eval(&url, &clean_log, 64).run().await.unwrap();
    assert_eq!(clean.completed as usize, N);

    let a = results(&log);
    let b = results(&clean_log);
    assert_eq!(a.len(), N);
    assert_eq!(a, b, "resumed results differ from an uninterrupted run");
    // The server really answered: arithmetic is right, so every exact score is 1.
    assert!(a.values().all(|v| v.2 == Some(1.0)));
}
