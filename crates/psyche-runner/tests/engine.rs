//! Engine, run log, resume and report behaviour against an in-process scripted model.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use psyche_core::{ChatMessage, Conversation, Model, Sample};
use psyche_runner::report::{ReportConfig, rescore, summarize, write_reports};
use psyche_runner::{
    Eval, Generate, ProgressMode, RunnerError, Solution, SolveContext, Solver, SolverError,
    read_log, scan, unit_seed,
};
use support::{ExactMatch, Scripted, arithmetic_samples};

fn eval(samples: Vec<Sample>, model: Arc<dyn Model>) -> psyche_runner::EvalBuilder {
    Eval::builder("test-run")
        .samples(samples)
        .model(model)
        .judge(Arc::new(ExactMatch))
        .solver(Generate::new(8))
        .progress(ProgressMode::Quiet)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unit_is_recorded_once_with_per_epoch_seeds_shared_across_models() {
    let samples: Vec<Sample> = (0..30)
        .map(|i| {
            Sample::new(
                format!("d{i}"),
                Conversation::user(format!("Pick a digit {i}")),
            )
        })
        .collect();
    let a = Scripted::new("model-a");
    let b = Scripted::new("model-b");
    let summary = Eval::builder("seeds")
        .samples(samples)
        .model(a.clone())
        .model(b.clone())
        .epochs(3)
        .seed(42)
        .concurrency(7)
        .progress(ProgressMode::Quiet)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(summary.total, 180);
    assert_eq!(summary.completed, 180);
    assert_eq!(summary.records.len(), 180);
    let keys: HashSet<_> = summary.records.iter().map(|r| r.key()).collect();
    assert_eq!(keys.len(), 180);
    assert_eq!(a.calls.load(Ordering::Relaxed), 90);
    let mut by_unit: HashMap<(String, u32), Vec<u64>> = HashMap::new();
    for r in &summary.records {
        let seed = r.seed.unwrap();
        assert_eq!(seed, unit_seed(42, &r.sample_id, r.epoch));
        assert_eq!(r.output.as_deref(), Some((seed % 10).to_string().as_str()));
        by_unit
            .entry((r.sample_id.clone(), r.epoch))
            .or_default()
            .push(seed);
    }
    // Both models see the same seed for a (sample, epoch); epochs differ.
    assert!(by_unit.values().all(|s| s.len() == 2 && s[0] == s[1]));
    let d0: HashSet<u64> = (0..3).map(|e| by_unit[&("d0".to_string(), e)][0]).collect();
    assert_eq!(d0.len(), 3);
}

#[tokio::test]
async fn failures_of_single_units_are_recorded_not_raised() {
    let samples = vec![
        Sample::new("ok", Conversation::user("What is 1 + 2?")).with_target("3"),
        Sample::new("boom", Conversation::user("please fail")).with_target("x"),
        Sample::new("no-target", Conversation::user("What is 5 + 5?")),
    ];
    let s = eval(samples, Scripted::new("m"))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(s.errors, 2);
    let by: HashMap<_, _> = s
        .records
        .iter()
        .map(|r| (r.sample_id.as_str(), r))
        .collect();
    assert!(by["ok"].error.is_none());
    assert_eq!(by["ok"].score("exact"), Some(1.0));
    let boom = by["boom"];
    assert!(boom.output.is_none());
    assert!(
        boom.error.as_deref().unwrap().contains("HTTP 500"),
        "{:?}",
        boom.error
    );
    let nt = by["no-target"];
    assert_eq!(nt.output.as_deref(), Some("10"));
    assert!(nt.error.as_deref().unwrap().contains("judge `exact`"));
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_skips_recorded_units_and_drops_a_torn_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.jsonl");
    let first = Scripted::new("m");
    let s1 = eval(arithmetic_samples(20), first.clone())
        .log_path(&log)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!((s1.completed, s1.skipped), (20, 0));
    let full = lines(&log);
    assert_eq!(full.len(), 21, "header + 20 records");

    // Simulate a kill mid-write: header + 10 records + half of the 11th, no newline.
    let mut cut = full[..11].join("\n");
    cut.push('\n');
    cut.push_str(&full[11][..full[11].len() / 2]);
    std::fs::write(&log, &cut).unwrap();
    let pre = scan(&log).unwrap();
    assert_eq!(pre.records, 10);
    assert!(pre.torn_bytes > 0);

    let second = Scripted::new("m");
    let s2 = eval(arithmetic_samples(20), second.clone())
        .log_path(&log)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!((s2.completed, s2.skipped), (10, 10));
    assert_eq!(s2.torn_bytes_dropped, pre.torn_bytes);
    assert_eq!(second.calls.load(Ordering::Relaxed), 10);

    let (header, records) = read_log(&log).unwrap();
    assert_eq!(header.unwrap().run_id, "test-run");
    assert_eq!(records.len(), 20);
    let keys: HashSet<_> = records.iter().map(|r| r.key()).collect();
    assert_eq!(keys.len(), 20, "no duplicates");
    let post = scan(&log).unwrap();
    assert_eq!((post.records, post.torn_bytes, post.duplicates), (20, 0, 0));

    // A third run has nothing to do.
    let third = Scripted::new("m");
    let s3 = eval(arithmetic_samples(20), third.clone())
        .log_path(&log)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!((s3.completed, s3.skipped), (0, 20));
    assert_eq!(third.calls.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn resume_refuses_another_solver_configuration_or_run_id() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.jsonl");
    eval(arithmetic_samples(3), Scripted::new("m"))
        .log_path(&log)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let err = eval(arithmetic_samples(3), Scripted::new("m"))
        .solver(Generate::new(9))
        .log_path(&log)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, RunnerError::Resume { .. }));
    assert!(err.to_string().contains("solver_config"), "{err}");
    let err = Eval::builder("other-id")
        .samples(arithmetic_samples(3))
        .model(Scripted::new("m"))
        .solver(Generate::new(8))
        .log_path(&log)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("run_id"), "{err}");
}

#[tokio::test]
async fn resume_refuses_a_model_whose_weights_changed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.jsonl");
    let with = |weights: &str| {
        eval(arithmetic_samples(3), Scripted::with_weights("m", weights))
            .log_path(&log)
            .build()
            .unwrap()
    };
    with("a.gguf sha256:aa").run().await.unwrap();
    let err = with("b.gguf sha256:bb").run().await.unwrap_err();
    assert!(matches!(err, RunnerError::Resume { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("weights") && msg.contains("a.gguf sha256:aa"),
        "{msg}"
    );
    // The same weights resume (nothing left to do).
    let s = with("a.gguf sha256:aa").run().await.unwrap();
    assert_eq!((s.completed, s.skipped), (0, 3));
}

#[tokio::test]
async fn a_malformed_line_inside_the_log_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.jsonl");
    eval(arithmetic_samples(4), Scripted::new("m"))
        .log_path(&log)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let mut l = lines(&log);
    l[2] = "{\"run_id\": 5}".into();
    std::fs::write(&log, l.join("\n") + "\n").unwrap();
    let err = scan(&log).unwrap_err();
    match &err {
        RunnerError::Log { line, .. } => assert_eq!(*line, 3),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("run.jsonl:3"), "{err}");
    let err = eval(arithmetic_samples(4), Scripted::new("m"))
        .log_path(&log)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert!(err.to_string().contains(":3:"), "{err}");
}

#[tokio::test]
async fn the_header_names_models_judges_and_seeds_and_never_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.jsonl");
    eval(arithmetic_samples(3), Scripted::new("m"))
        .role("teacher", Scripted::new("t"))
        .seed(9)
        .epochs(2)
        .config(serde_json::json!({"note": "x", "openai_api_key": "sk-abcdefghijklmnopqrstuv"}))
        .log_path(&log)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let (header, records) = read_log(&log).unwrap();
    let h = header.unwrap();
    assert_eq!(records.len(), 6);
    assert_eq!((h.seed, h.epochs, h.samples), (9, 2, 3));
    assert_eq!(h.judges, vec!["exact".to_string()]);
    assert_eq!(h.solver, "generate");
    assert_eq!(h.solver_config["max_tokens"], 8);
    let roles: Vec<_> = h
        .models
        .iter()
        .map(|m| (m.role.as_str(), m.info.backend.as_str()))
        .collect();
    assert_eq!(
        roles,
        vec![("subject", "scripted-test"), ("teacher", "scripted-test")]
    );
    assert_eq!(h.crate_versions["psyche-runner"], env!("CARGO_PKG_VERSION"));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("sk-test-should-never-appear"));
    assert!(!text.contains("sk-abcdefghijklmnopqrstuv"));
    assert!(text.contains("[redacted]"));
}

/// Asks the subject, then has the "teacher" grade it in a second conversation.
struct AskThenCheck;

#[async_trait]
impl Solver for AskThenCheck {
    fn id(&self) -> &str {
        "ask-then-check"
    }
    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, SolverError> {
        let g = Generate::new(8);
        let first = ctx
            .model
            .generate(&g.request(ctx.sample.input.clone(), ctx.seed))
            .await?;
        let teacher = ctx.role("teacher")?;
        let follow = Conversation::user(format!("What is {} + 0?", first.text()));
        let second = teacher
            .generate(&g.request(follow.clone(), ctx.seed))
            .await?;
        let transcript = ctx
            .sample
            .input
            .clone()
            .with(ChatMessage::assistant(first.text()))
            .with(follow.messages()[0].clone())
            .with(ChatMessage::assistant(second.text()));
        let mut solution = Solution {
            output: second.text().to_owned(),
            transcript: Some(transcript),
            target: Some(first.text().to_owned()),
            ..Solution::default()
        };
        solution
            .metadata
            .insert("first".into(), first.text().into());
        Ok(solution)
    }
}

#[tokio::test]
async fn multi_turn_solvers_reach_other_models_by_role() {
    let teacher = Scripted::new("teacher");
    let s = eval(arithmetic_samples(6), Scripted::new("student"))
        .role("teacher", teacher.clone())
        .solver(AskThenCheck)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(s.errors, 0);
    assert_eq!(teacher.calls.load(Ordering::Relaxed), 6);
    for r in &s.records {
        assert_eq!(r.transcript.as_ref().unwrap().len(), 4);
        // The solver's target (the student's answer) is what the judge compared with.
        assert_eq!(r.meta_str("target"), r.meta_str("first"));
        let first: i64 = r.meta_str("first").unwrap().parse().unwrap();
        let exact = first % 4 != 0;
        assert_eq!(
            r.score("exact"),
            Some(if exact { 1.0 } else { 0.0 }),
            "{r:?}"
        );
    }
    // Without the role the unit fails with a message naming it.
    let s = eval(arithmetic_samples(1), Scripted::new("student"))
        .solver(AskThenCheck)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(
        s.records[0]
            .error
            .as_deref()
            .unwrap()
            .contains("role `teacher`")
    );
}

#[test]
fn build_rejects_invalid_configuration_naming_the_field() {
    let field = |b: psyche_runner::EvalBuilder| match b.build() {
        Err(RunnerError::Config { field, .. }) => field,
        other => panic!("expected a config error, got {other:?}"),
    };
    let mut dup = arithmetic_samples(2);
    dup[1].id = dup[0].id.clone();
    assert_eq!(field(eval(dup, Scripted::new("m"))), "samples");
    assert_eq!(
        field(eval(arithmetic_samples(2), Scripted::new("m")).epochs(0)),
        "epochs"
    );
    assert_eq!(
        field(eval(arithmetic_samples(2), Scripted::new("m")).concurrency(0)),
        "concurrency"
    );
    assert_eq!(
        field(Eval::builder("x").samples(arithmetic_samples(1))),
        "model"
    );
    assert_eq!(
        field(eval(arithmetic_samples(2), Scripted::new("m")).judge(Arc::new(ExactMatch))),
        "judge"
    );
    assert_eq!(
        field(Eval::builder(" ").model(Scripted::new("m"))),
        "run_id"
    );
}

#[tokio::test]
async fn reports_and_rescoring_work_from_the_log_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("rep.jsonl");
    eval(arithmetic_samples(60), Scripted::new("m"))
        .epochs(2)
        .log_path(&log)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let summary = summarize(&log, &ReportConfig::default()).unwrap();
    assert_eq!(summary.records, 120);
    // One row per task (t0, t1, t2); property is absent.
    assert_eq!(summary.rows.len(), 3);
    for row in &summary.rows {
        assert_eq!(row.n, 40);
        assert_eq!(row.clusters, 20, "epochs repeat samples");
        let e = row.estimate.unwrap();
        // Every 4th `a` (a = 7919 i mod 1000) is answered wrongly by the scripted model.
        assert!(e.estimate > 0.5 && e.estimate < 1.0, "{e:?}");
        assert!(e.ci_low < e.estimate && e.estimate < e.ci_high);
        assert_eq!(e.method.label(), "clustered t");
        assert!(row.mode_baseline.is_some());
    }
    let md = summary.to_markdown();
    assert!(md.contains("## Judge `exact`"), "{md}");
    assert!(md.contains("| m | t0 | - |"), "{md}");
    assert!(md.contains("clustered t"));
    assert!(md.contains("scripted-test"));
    let paths = write_reports(&log, None, &ReportConfig::default()).unwrap();
    let html = std::fs::read_to_string(&paths.html).unwrap();
    assert!(html.contains("<svg") && html.contains("</svg>"));
    assert!(paths.markdown.exists());

    // Re-score with a judge that was not in the run: nothing is regenerated.
    struct Always;
    #[async_trait]
    impl psyche_core::Judge for Always {
        fn id(&self) -> &str {
            "always"
        }
        async fn judge(
            &self,
            sample: &Sample,
            output: &str,
        ) -> Result<psyche_core::Verdict, psyche_core::JudgeError> {
            let ok = sample.target.is_some() && !output.is_empty();
            Ok(psyche_core::Verdict::new(
                "always",
                psyche_core::Score::Bool(ok),
            ))
        }
    }
    let out = dir.path().join("rescored.jsonl");
    let n = rescore(
        &log,
        &out,
        &[Arc::new(Always) as Arc<dyn psyche_core::Judge>],
    )
    .await
    .unwrap();
    assert_eq!(n, 120);
    let (h, recs) = read_log(&out).unwrap();
    assert_eq!(
        h.unwrap().judges,
        vec!["exact".to_string(), "always".to_string()]
    );
    assert!(
        recs.iter()
            .all(|r| r.score("always") == Some(1.0) && r.score("exact").is_some())
    );
}

#[test]
fn the_reader_skips_a_torn_last_line_without_modifying_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("r.jsonl");
    let mut f = std::fs::File::create(&log).unwrap();
    let s = Sample::new("a", Conversation::user("x"));
    let r = psyche_core::Record::for_sample("run", &s, "m", 0);
    writeln!(f, "{}", serde_json::to_string(&r).unwrap()).unwrap();
    write!(f, "{{\"run_id\":\"run\",\"sam").unwrap();
    drop(f);
    let before = std::fs::metadata(&log).unwrap().len();
    let (header, records) = read_log(&log).unwrap();
    assert!(header.is_none());
    assert_eq!(records.len(), 1);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), before);
}
