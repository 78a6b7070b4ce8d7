//! Task generators consumed by the runner: samples, header entry, default solver and judges,
//! deferred generator errors, and resume refusing a changed generator.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{
    Conversation, Judge, JudgeError, Sample, Score, Solution, SolveContext, Solver, SolverError,
    TaskError, TaskGenerator, Verdict,
};
use psyche_runner::{Eval, Generate, ProgressMode, RunnerError};
use support::{ExactMatch, Scripted, arithmetic_samples};

/// Arithmetic samples with a default judge, optionally a default solver, and a version.
struct Arithmetic {
    n: usize,
    version: &'static str,
    with_solver: bool,
}

impl TaskGenerator for Arithmetic {
    fn name(&self) -> &str {
        "arithmetic"
    }
    fn version(&self) -> &str {
        self.version
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "n": self.n })
    }
    fn generate(&self, _seed: u64) -> Result<Vec<Sample>, TaskError> {
        if self.n == 0 {
            return Err(TaskError::Config("n must be at least 1".into()));
        }
        Ok(arithmetic_samples(self.n))
    }
    fn solver(&self) -> Option<Arc<dyn Solver>> {
        self.with_solver
            .then(|| Arc::new(Suffixed) as Arc<dyn Solver>)
    }
    fn judges(&self) -> Vec<Arc<dyn Judge>> {
        vec![Arc::new(ExactMatch)]
    }
}

/// Answers like `Generate` but appends "!" so the exact-match judge marks every answer wrong:
/// tells apart whether the generator's solver or the default one ran.
struct Suffixed;

#[async_trait]
impl Solver for Suffixed {
    fn id(&self) -> &str {
        "suffixed"
    }
    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, SolverError> {
        let answer = Generate::new(8).solve(ctx).await?;
        Ok(Solution::new(format!("{}!", answer.output)))
    }
}

/// A judge with the default judge's id that scores everything as correct.
struct LenientExact;

#[async_trait]
impl Judge for LenientExact {
    fn id(&self) -> &str {
        "exact"
    }
    async fn judge(&self, _sample: &Sample, _output: &str) -> Result<Verdict, JudgeError> {
        Ok(Verdict::new("exact", Score::Bool(true)))
    }
}

fn task(n: usize, with_solver: bool) -> Arithmetic {
    Arithmetic {
        n,
        version: "1",
        with_solver,
    }
}

fn accuracy(records: &[psyche_core::Record]) -> f64 {
    let hits = records
        .iter()
        .filter(|r| r.scores["exact"].score == Score::Bool(true))
        .count();
    hits as f64 / records.len() as f64
}

#[tokio::test]
async fn a_generator_brings_its_samples_judges_and_header_entry() {
    let eval = Eval::builder("tasks")
        .task(&task(8, false), 3)
        .model(Scripted::new("m"))
        .progress(ProgressMode::Quiet)
        .build()
        .unwrap();
    let header = eval.header();
    assert_eq!(header.task.as_deref(), Some("arithmetic"));
    assert_eq!(header.tasks.len(), 1);
    let entry = &header.tasks[0];
    assert_eq!(
        (
            entry.name.as_str(),
            entry.version.as_str(),
            entry.seed,
            entry.samples
        ),
        ("arithmetic", "1", 3, 8)
    );
    assert_eq!(entry.config, serde_json::json!({ "n": 8 }));
    assert_eq!(header.judges, vec!["exact".to_owned()]);
    assert_eq!(header.solver, "generate");
    let summary = eval.run().await.unwrap();
    assert_eq!(summary.records.len(), 8);
    // The scripted model gets every 4th sum wrong.
    assert!((accuracy(&summary.records) - 0.75).abs() < 1e-9);
}

#[tokio::test]
async fn the_generators_solver_is_used_unless_one_is_set() {
    let by_task = Eval::builder("tasks")
        .task(&task(4, true), 0)
        .model(Scripted::new("m"))
        .progress(ProgressMode::Quiet)
        .build()
        .unwrap();
    assert_eq!(by_task.header().solver, "suffixed");
    assert_eq!(accuracy(&by_task.run().await.unwrap().records), 0.0);

    let explicit = Eval::builder("tasks")
        .solver(Generate::new(8))
        .task(&task(4, true), 0)
        .model(Scripted::new("m"))
        .progress(ProgressMode::Quiet)
        .build()
        .unwrap();
    assert_eq!(explicit.header().solver, "generate");
}

#[tokio::test]
async fn an_explicit_judge_replaces_the_default_with_the_same_id() {
    let summary = Eval::builder("tasks")
        .task(&task(8, false), 0)
        .judge(LenientExact)
        .model(Scripted::new("m"))
        .progress(ProgressMode::Quiet)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(accuracy(&summary.records), 1.0);
}

#[test]
fn a_generator_error_surfaces_at_build_naming_the_task() {
    let err = Eval::builder("tasks")
        .task(&task(0, false), 9)
        .model(Scripted::new("m"))
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, RunnerError::Config { field: "task", .. }),
        "{text}"
    );
    assert!(
        text.contains("arithmetic") && text.contains("seed 9"),
        "{text}"
    );
}

#[test]
fn two_tasks_with_different_default_solvers_are_refused() {
    struct Plain;
    impl TaskGenerator for Plain {
        fn name(&self) -> &str {
            "plain"
        }
        fn generate(&self, _seed: u64) -> Result<Vec<Sample>, TaskError> {
            Ok(vec![Sample::new("p1", Conversation::user("hi"))])
        }
        fn solver(&self) -> Option<Arc<dyn Solver>> {
            Some(Arc::new(Generate::new(4)))
        }
    }
    let err = Eval::builder("tasks")
        .task(&task(2, true), 0)
        .task(&Plain, 0)
        .model(Scripted::new("m"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("different solvers"), "{err}");
}

#[tokio::test]
async fn resuming_with_a_changed_generator_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.jsonl");
    let run = |version: &'static str| {
        Eval::builder("tasks")
            .task(
                &Arithmetic {
                    n: 4,
                    version,
                    with_solver: false,
                },
                0,
            )
            .model(Scripted::new("m"))
            .log_path(&log)
            .progress(ProgressMode::Quiet)
            .build()
            .unwrap()
    };
    run("1").run().await.unwrap();
    assert_eq!(run("1").run().await.unwrap().skipped, 4);
    let err = run("2").run().await.unwrap_err();
    assert!(
        err.to_string().contains("tasks[arithmetic].version"),
        "{err}"
    );
}

#[tokio::test]
async fn models_judges_and_solvers_are_taken_by_value_or_arc() {
    let shared: Arc<dyn psyche_core::Model> = Scripted::new("m");
    let judge: Arc<dyn Judge> = Arc::new(ExactMatch);
    let eval = Eval::builder("tasks")
        .samples(arithmetic_samples(2))
        .model(Arc::clone(&shared))
        .role("teacher", Scripted::new("t"))
        .judge(judge)
        .solver(Arc::new(Generate::new(8)) as Arc<dyn Solver>)
        .progress(ProgressMode::Quiet)
        .build()
        .unwrap();
    let header = eval.header();
    assert_eq!(header.models[0].info.id, "m");
    assert_eq!(header.models[1].role, "teacher");
    assert_eq!(eval.run().await.unwrap().records.len(), 2);
}
