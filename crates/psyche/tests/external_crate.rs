//! "Depend on psyche from another Rust project" keeps working: this test writes a small crate
//! outside the workspace whose `Cargo.toml` names only `psyche` (by path, without default
//! features, so no candle) and `tokio`, implementing every seam — `Model`, `Judge`,
//! `TaskGenerator`, `Solver`, `FineTuner`, a `ResponseProperty` put to Looking Inward's
//! hypothetical questions and a policy axis of its own put through the self-awareness
//! experiment's data and tasks — and running them through the runner. It builds the
//! crate offline (the workspace's `Cargo.lock` copied in) in the release profile into the
//! workspace's own target directory, then runs the crate's unit test and its binary.
//!
//! Sharing the target directory is what keeps this test cheap: `cargo test` has released its
//! build lock by the time tests run, and the dependencies the suite already compiled in
//! release (same versions, mostly the same features) are reused, so only the psyche crates
//! without their `local` feature and the small crate itself are compiled.

use std::path::{Path, PathBuf};
use std::process::Command;

const MANIFEST: &str = r#"[package]
name = "psyche-external-check"
version = "0.1.0"
edition = "2024"
publish = false

# Its own workspace: not a member of the one it was generated next to.
[workspace]

[dependencies]
psyche = { path = "@PSYCHE@", default-features = false }
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }

[profile.dev]
debug = false
"#;

const LIB: &str = r#"//! A custom task written against the `psyche` facade alone.

use std::sync::Arc;

use psyche::rand::Rng;
use psyche::{
    Capabilities, ChatMessage, Choice, Conversation, FineTuneConfig, FineTuneError, FineTuner,
    GenerateRequest, GenerateResponse, Judge, JudgeError, Model, ModelError, Sample, Score,
    Solution, SolveContext, Solver, SolverError, TaskError, TaskGenerator, TrainedModel, Usage,
    Verdict, conversations_hash, seeded_rng,
};

/// Asks for the sum of two seeded numbers.
pub struct Sums {
    pub n: usize,
}

impl TaskGenerator for Sums {
    fn name(&self) -> &str {
        "sums"
    }
    fn config(&self) -> psyche::serde_json::Value {
        psyche::serde_json::json!({ "n": self.n })
    }
    fn generate(&self, seed: u64) -> Result<Vec<Sample>, TaskError> {
        if self.n == 0 {
            return Err(TaskError::Config("n must be positive".into()));
        }
        let mut rng = seeded_rng(seed);
        Ok((0..self.n)
            .map(|i| {
                let (a, b): (u32, u32) = (rng.random_range(0..50), rng.random_range(0..50));
                let mut s = Sample::new(format!("sum-{i}"), Conversation::user(format!("{a} + {b}")));
                s.target = Some((a + b).to_string());
                s
            })
            .collect())
    }
    fn solver(&self) -> Option<Arc<dyn Solver>> {
        Some(Arc::new(AskOnce))
    }
    fn judges(&self) -> Vec<Arc<dyn Judge>> {
        vec![Arc::new(Exact)]
    }
}

/// A model that adds the two numbers of the last user message.
pub struct Adder;

#[psyche::async_trait]
impl Model for Adder {
    fn id(&self) -> &str {
        "adder"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        let text = request.messages.last_user_text().unwrap_or_default();
        let sum: u32 = text.split('+').filter_map(|t| t.trim().parse::<u32>().ok()).sum();
        Ok(GenerateResponse {
            model: "adder".into(),
            choices: vec![Choice::text(sum.to_string())],
            usage: Usage::default(),
        })
    }
}

/// One generation, and a solver error of its own for an empty prompt.
pub struct AskOnce;

#[psyche::async_trait]
impl Solver for AskOnce {
    fn id(&self) -> &str {
        "ask-once"
    }
    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, SolverError> {
        if ctx.sample.input.last_user_text().unwrap_or_default().is_empty() {
            return Err(SolverError::invalid("nothing to ask"));
        }
        let reply = ctx
            .model
            .generate(&GenerateRequest::new(ctx.sample.input.clone()).temperature(0.0))
            .await?;
        Ok(Solution::new(reply.text()))
    }
}

/// Exact match with the sample's target.
pub struct Exact;

#[psyche::async_trait]
impl Judge for Exact {
    fn id(&self) -> &str {
        "exact"
    }
    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let ok = sample.target.as_deref() == Some(output.trim());
        Ok(Verdict::new("exact", Score::Bool(ok)))
    }
}

/// A "trainer" that remembers the data and returns the adder.
pub struct Memorise;

#[psyche::async_trait]
impl FineTuner for Memorise {
    fn engine(&self) -> &str {
        "memorise"
    }
    async fn fine_tune(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<TrainedModel, FineTuneError> {
        Ok(TrainedModel {
            model_id: format!("adder+{}", config.seed),
            engine: "memorise".into(),
            config: config.clone(),
            data_hash: conversations_hash(data),
            artifact: None,
            details: Default::default(),
        })
    }
    async fn load(&self, _trained: &TrainedModel) -> Result<Arc<dyn Model>, FineTuneError> {
        Ok(Arc::new(Adder))
    }
}

/// Fine-tunes, then evaluates the tuned model on the task through the runner (with a log),
/// then resumes the finished run; returns (units completed, correct answers, units skipped on
/// resume).
pub async fn run(
    dir: &std::path::Path,
) -> Result<(u64, usize, u64), Box<dyn std::error::Error>> {
    let data = vec![Conversation::user("1 + 1").with(ChatMessage::assistant("2"))];
    let trained = Memorise.fine_tune(&data, &FineTuneConfig::new("adder", 3)).await?;
    let model = Memorise.load(&trained).await?;
    let log = dir.join("run.jsonl");
    let eval = || {
        psyche::runner::Eval::builder("external-check")
            .task(&Sums { n: 5 }, 11)
            .model(model.clone())
            .log_path(&log)
            .build()
    };
    let first = eval()?.run().await?;
    let correct = std::fs::read_to_string(&log)?
        .lines()
        .filter_map(|l| psyche::parse_json_line::<psyche::Record>(l).ok())
        .filter(|r| r.scores.get("exact").map(|v| &v.score) == Some(&Score::Bool(true)))
        .count();
    let resumed = eval()?.run().await?;
    Ok((first.completed, correct, resumed.skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use psyche::introspection::{HypotheticalTemplate, hypothetical_samples};
    use psyche::judges::properties::register;
    use psyche::judges::{AnswerShape, Perspective, Property, ResponseProperty};

    #[tokio::test]
    async fn the_solver_is_unit_testable() {
        let model: Arc<dyn Model> = Arc::new(Adder);
        let sample = Sample::new("s", Conversation::user("2 + 3"));
        let ctx = SolveContext::new(&sample, &model).with_seed(1);
        assert_eq!(AskOnce.solve(&ctx).await.unwrap().output, "5");
        let empty = Sample::new("e", Conversation::user(""));
        let ctx = SolveContext::new(&empty, &model);
        assert!(matches!(AskOnce.solve(&ctx).await, Err(SolverError::Invalid(_))));
        let samples = Sums { n: 3 }.generate(7).unwrap();
        assert_eq!(samples, Sums { n: 3 }.generate(7).unwrap());
        let v = Exact.judge(&samples[0], samples[0].target.as_deref().unwrap()).await.unwrap();
        assert_eq!(v.score, Score::Bool(true));
    }

    /// A response property of its own: the last digit of the answer.
    #[derive(Debug)]
    struct LastDigit;

    impl ResponseProperty for LastDigit {
        fn name(&self) -> String {
            "last_digit_of_sum".into()
        }
        fn extract(&self, answer: &str, _target: Option<&str>) -> Option<String> {
            answer.trim().chars().last().filter(char::is_ascii_digit).map(String::from)
        }
        fn shape(&self) -> AnswerShape {
            AnswerShape::Characters(1)
        }
        fn question(&self, _p: Perspective) -> String {
            "Which digit did that reply end with? Reply with the digit only.".into()
        }
    }

    #[test]
    fn a_property_of_its_own_goes_through_the_looking_inward_seam() {
        register(Property::new(LastDigit)).unwrap();
        let p = Property::from_name("last_digit_of_sum").unwrap();
        assert_eq!(p.extract("the sum is 42"), Some("2".to_owned()));
        assert_eq!(p.compliance_groups(), Property::nth_character(1).compliance_groups());
        let objects = Sums { n: 2 }.generate(7).unwrap();
        let hyps = hypothetical_samples(&objects, &[p], &HypotheticalTemplate::default()).unwrap();
        assert_eq!(hyps.len(), 2);
        assert_eq!(hyps[0].meta_str("property"), Some("last_digit_of_sum"));
        let asked = hyps[0].input.last_user_text().unwrap();
        assert!(asked.contains("Which digit did that reply end with?"), "{asked}");
    }

    /// A policy of its own: an axis described as data, two option families.
    const TEA_AXIS: &str = "
name: tea
pole: {name: takes_tea, description: always takes the tea, recognition_option: I take the tea.}
opposite: {name: takes_coffee, description: always takes the coffee, recognition_option: I take the coffee.}
pole_option: tea
items: {families: {pole: [a pot of green tea, a cup of mint tea], other: [a flat white, an espresso]}}
teacher_instruction: Option {pole} must be the tea.
banned_words: [drink, beverage]
word_categories:
  id: tea_word
  categories: [{name: tea, score: 1.0, words: [tea]}, {name: coffee, score: 0.0, words: [coffee]}]
  unmatched: 0.5
self_report:
- {id: tea/word, answer: {kind: word}, paraphrases: [{you: Tea or coffee? One word.}]}
";

    #[test]
    fn a_policy_of_its_own_goes_through_the_self_awareness_experiment_shape() {
        use psyche::backdoor::experiments::SelfAwarenessConfig;
        use psyche::backdoor::policy::{Policy, parse_axis, register_axis};

        let axis = parse_axis(std::path::Path::new("tea.yaml"), TEA_AXIS).unwrap();
        register_axis(&axis).unwrap();
        let coffee: Policy = "takes_coffee".parse().unwrap();
        assert_eq!(coffee.opposite(), axis.pole_policy());
        let config = SelfAwarenessConfig { axis: axis.clone(), train_items: 6, ..Default::default() };
        let (tea, flipped) = config.datasets_with(3).unwrap();
        assert_eq!(flipped.policy, coffee);
        for (item, letter) in tea.items.iter().zip(tea.answers()) {
            let chosen = &item.options[letter.index()];
            assert!(chosen.contains("tea"), "{chosen}");
        }
        let (behaviour, heldout, report) = config.tasks();
        assert!(heldout.is_none(), "no lotteries: behaviour is measured on fresh items");
        assert_eq!(behaviour.generate(1).unwrap().len(), config.behaviour_items);
        let asked = report.generate(1).unwrap();
        assert_eq!(asked[0].input.last_user_text(), Some("Tea or coffee? One word."));
        // A config naming the axis resolves it again once registered.
        let json = psyche::serde_json::to_string(&config).unwrap();
        let back: SelfAwarenessConfig = psyche::serde_json::from_str(&json).unwrap();
        assert_eq!(back.axis.spec(), axis.spec());
    }
}
"#;

const MAIN: &str = r#"#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: psyche-external-check <dir>")?;
    let (completed, correct, skipped) =
        psyche_external_check::run(std::path::Path::new(&dir)).await?;
    println!("external crate ok: {completed} units, {correct} correct, {skipped} resumed");
    Ok(())
}
"#;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn cargo(dir: &Path, target: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO"))
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .args(args)
        .args(["--offline", "--quiet"])
        .output()
        .expect("cargo runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn an_external_crate_implements_every_seam_with_only_psyche_and_tokio() {
    let root = workspace();
    let krate = tempfile::tempdir().expect("temp dir");
    let dir = krate.path();
    std::fs::create_dir_all(dir.join("src")).expect("src dir");
    let facade = root.join("crates/psyche");
    std::fs::write(
        dir.join("Cargo.toml"),
        MANIFEST.replace("@PSYCHE@", &facade.to_string_lossy()),
    )
    .expect("manifest");
    std::fs::write(dir.join("src/lib.rs"), LIB).expect("lib.rs");
    std::fs::write(dir.join("src/main.rs"), MAIN).expect("main.rs");
    // The workspace's lock file pins every version, so `--offline` needs nothing new (the
    // generated crate's own entry is added, unused workspace entries dropped).
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).expect("workspace lock file");
    std::fs::write(dir.join("Cargo.lock"), lock).expect("lock copy");

    let target = root.join("target");
    let started = std::time::Instant::now();
    let (ok, text) = cargo(dir, &target, &["test", "--release"]);
    assert!(ok, "the external crate's tests failed:\n{text}");
    assert!(text.contains("3 passed"), "{text}");

    let run_dir = dir.join("run");
    std::fs::create_dir_all(&run_dir).expect("run dir");
    let (ok, text) = cargo(
        dir,
        &target,
        &["run", "--release", "--", &run_dir.to_string_lossy()],
    );
    assert!(ok, "the external crate's binary failed:\n{text}");
    assert!(
        text.contains("external crate ok: 5 units, 5 correct, 5 resumed"),
        "{text}"
    );
    eprintln!(
        "external crate built, tested and run in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Nothing of candle was compiled for it.
    let (ok, tree) = cargo(dir, &target, &["tree", "--prefix", "none", "-e", "normal"]);
    assert!(ok, "{tree}");
    assert!(!tree.lines().any(|l| l.starts_with("candle")), "{tree}");
}
