//! Quickstart: does a small model know what it would say? A self-prediction ("introspection")
//! eval on the embedded SmolLM2-135M-Instruct, offline, in about a minute on a 2-core CPU.
//!
//! ```text
//! cargo run --release --example quickstart            # seed 0
//! cargo run --release --example quickstart -- 7       # another seed, other items
//! ```
//!
//! For 30 seeded animal sequences (a held-out Looking Inward family) and 3 response properties
//! (first character, second character, starts with a vowel), the model
//! 1. continues the sequence (greedy; the object-level answer),
//! 2. is shown that prompt again, quoted, and asked about a property of the reply it gave; its
//!    prediction is the most probable *valid* answer (one character, or true/false) under its
//!    exact next-token distribution (`AnswerMethod::constrained()`: a 135M model rarely answers
//!    "with one character" when generating freely),
//! 3. is judged right when the prediction equals the property of its actual reply. Refusals
//!    and non-answers at the object level are excluded and counted, not scored.
//!
//! Accuracy is printed beside the mode baseline (always guessing the most common value) on the
//! same items, with 95% bootstrap intervals; a 135M model is expected near its baseline. The
//! run log, a markdown/HTML report and an Inspect log go under `runs/`; rerunning with the same
//! seed resumes from the log. The model is fetched once on first use and cached.
//!
//! Output of seed 0 (numbers are whatever the model does; 27 s for the 90 units on an idle
//! 2-core machine, 77–88 s while other jobs shared it). Every character is a valid answer,
//! punctuation and quotation marks included (issue 25.3), and the model predicts an opening
//! quotation mark on 29 of 30 items for both character properties:
//!
//! ```text
//! property              accuracy            95% CI   mode baseline     n
//! first_character           3.3%     [0.0%, 10.0%]           86.7%    30
//! second_character          0.0%      [0.0%, 0.0%]           90.0%    30
//! starts_with_vowel        96.7%   [90.0%, 100.0%]           96.7%    30
//! micro average            33.3%    [30.0%, 36.7%]           91.1%    90
//! 90 hypothetical items; 90 scored, 0 excluded (none). Scored items on which the paper's compliance rule would give another score: 0.
//!
//! (model smollm2-135m-instruct via psyche-local)
//!
//! run log:      runs/quickstart-seed0.jsonl
//! HTML report:  runs/quickstart-seed0.html
//! markdown:     runs/quickstart-seed0.md
//! Inspect log:  runs/inspect/quickstart-seed0_smollm2-135m-instruct.json (open with `inspect view --log-dir runs/inspect`)
//! ```

use std::sync::Arc;

use anyhow::Context as _;
use psyche::Model;
use psyche::introspection::{
    AnswerMethod, Family, FamilyGenerator, HypotheticalGenerator, report, scoring,
};
use psyche::judges::Property;
use psyche::local::{LocalConfig, LocalModel};
use psyche::runner::{Eval, inspect::export_inspect, read_log};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let seed: u64 = match std::env::args().nth(1) {
        Some(s) => s
            .parse()
            .with_context(|| format!("seed `{s}` is not a number"))?,
        None => 0,
    };
    eprintln!("loading the embedded model (fetched and cached on first use)...");
    let model: Arc<dyn Model> = Arc::new(LocalModel::load(&LocalConfig::default())?);

    // The task: held-out animal sequences, three properties, constrained answers.
    let properties = ["first_character", "second_character", "starts_with_vowel"]
        .into_iter()
        .map(Property::from_name)
        .collect::<Result<Vec<_>, _>>()?;
    let task = HypotheticalGenerator::new(FamilyGenerator::new(Family::builtin("animals")?, 30))
        .properties(properties)
        .method(AnswerMethod::constrained());

    // One resumable run: the generator brings its solver (object answer, then hypothetical)
    // and its judge (the fixed self-prediction judge).
    let run_id = format!("quickstart-seed{seed}");
    let log = format!("runs/{run_id}.jsonl");
    let run = Eval::builder(&run_id)
        .task(&task, seed)
        .model(model.clone())
        .log_path(&log)
        .build()?
        .run()
        .await?;
    eprintln!(
        "{} units run, {} resumed from the log, {} errors, {:.1?}",
        run.completed, run.skipped, run.errors, run.elapsed
    );

    // Accuracy vs the mode baseline on the same items, with exclusions counted.
    let (_, records) = read_log(&log)?;
    let items = scoring::items_from_records(&records, "self_prediction");
    let summary = scoring::summarise(&items, &Default::default());
    println!("\n{}", summary.text_table());
    println!("(model {} via {})", model.info().id, model.info().backend);

    let paths = report::self_prediction_report(
        &format!("Self-prediction quickstart (seed {seed})"),
        &summary,
    )
    .write("runs", &run_id)?;
    let inspect = export_inspect(&log, "runs/inspect")?;
    println!("\nrun log:      {log}");
    println!("HTML report:  {}", paths.html.display());
    println!("markdown:     {}", paths.markdown.display());
    for p in inspect {
        println!(
            "Inspect log:  {} (open with `inspect view --log-dir runs/inspect`)",
            p.display()
        );
    }
    Ok(())
}
