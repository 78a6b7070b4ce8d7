//! Looking Inward, end to end: can a model predict properties of its own behaviour better than
//! a second model trained on that same behaviour can?
//!
//! ```text
//! cargo run --release --example looking_inward                       # embedded model, local LoRA, 2 seeds
//! cargo run --release --example looking_inward -- --seeds 5         # more seeds
//! cargo run --release --example looking_inward -- --paper-scale      # the paper's sizes (hours on a CPU)
//! cargo run --release --example looking_inward -- \
//!     --openai-model gpt-4o-mini-2024-07-18 --openai-finetune \
//!     --cross-openai-model gpt-4o-2024-08-06 --confirm-cost --max-usd 50   # API subject
//! ```
//!
//! The experiment is [`psyche::introspection::LookingInward`] with
//! [`LookingInwardConfig::small`] (or `paper()` with `--paper-scale`); the flags change its
//! fields. The crate documentation describes the pipeline: object-level answers of 6 training
//! and 6 held-out families, the second model (offline: the subject fine-tuned on its own
//! answers under a persona system prompt), per seed a self set, a self model, a cross set built
//! from the self model's answers and a cross model, then held-out accuracy against the mode
//! baseline, self − cross over runs, calibration and the entropy guard; the behaviour-change
//! test (`--behaviour-change 1`) and entropy self-prediction (`--entropy-self-prediction`) are
//! off at the defaults and on with `--paper-scale`.
//!
//! Hypothetical answers are read with the constrained method by default (a 135M model rarely
//! answers "with one character" when generating freely); `--method free --rule paper` reads and
//! scores them as the paper does. `--out DIR` receives `result.json`, `headline.json`,
//! `notes.json` and `report/looking_inward.{md,html}`; run logs go to `DIR/runs` and the
//! fine-tune ledger to `DIR/fine-tunes`, so a rerun redoes neither a finished collection pass
//! nor a finished fine-tune.
//!
//! Default size (`LookingInwardConfig::small()`): 5 items per training family and 6 per
//! held-out family, 4 examples per (task, property), 4 text properties plus the stance and
//! option properties, rank-8 LoRA on q/v for 1 epoch, 2 seeds. Measured at these defaults on
//! the idle 2-core machine from a warm build: 264 s wall (five fine-tunes: the persona model,
//! and a self and a cross model per seed). The previous defaults (10 / 10 items, 6 per group, behaviour
//! change and entropy self-prediction on) took 637 s; the cut costs held-out objects per run
//! (35 where there were 41, 96 items where there were 160), and item-level precision with them;
//! the run-level power is limited by the spread between two runs either way (smallest self −
//! cross detectable with 80% power: 25.8 pp now, 28.1 pp at the old defaults). The guide
//! (`docs/guides/looking-inward.md`) shows the output. A 135M model is expected near its mode
//! baseline; the numbers are reported whatever their sign.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use psyche::DataSeeds;
use psyche::introspection::experiment::DEFAULT_PERSONA;
use psyche::introspection::{
    AnswerMethod, CrossModel, LookingInward, LookingInwardConfig, LookingInwardResult,
};
use psyche::judges::ComplianceRule;
use psyche::models::{OpenAiCompatible, OpenAiConfig};
use psyche::runner::experiment::write_outputs;

/// Looking Inward on the embedded model (default) or an OpenAI-compatible API.
#[derive(Debug, Parser)]
struct Args {
    /// Output directory: result, headline, report, run logs, fine-tunes.
    #[arg(long, default_value = "runs/looking-inward")]
    out: PathBuf,
    /// Number of fine-tuning seeds (0, 1, ... n−1).
    #[arg(long, default_value_t = 2)]
    seeds: u64,
    /// Train every fine-tuning run on the one training set of the base data seed (default: each
    /// run draws its own set with a data seed derived from its fine-tuning seed, so the
    /// variance between runs includes the data's).
    #[arg(long)]
    fixed_data_seed: bool,
    /// Object-level items per training family.
    #[arg(long)]
    train_items: Option<usize>,
    /// Object-level items per held-out family.
    #[arg(long)]
    held_out_items: Option<usize>,
    /// Fine-tuning examples per (task, property).
    #[arg(long)]
    per_group_cap: Option<usize>,
    /// Held-out items for calibration (0: skip).
    #[arg(long)]
    calibration_items: Option<usize>,
    /// The paper's sizes (1000 per task × property, 500 held-out items), all properties.
    #[arg(long)]
    paper_scale: bool,
    /// Ask about every property of each family (default: first/second character, first word,
    /// starts with a vowel, stances, options).
    #[arg(long)]
    all_properties: bool,
    /// How hypothetical answers are read: `constrained` (default) or `free`.
    #[arg(long)]
    method: Option<AnswerMethod>,
    /// Compliance rule for hypothetical answers: `property_form` (default) or `paper`.
    #[arg(long)]
    rule: Option<ComplianceRule>,
    /// Persona system prompt of the offline second model.
    #[arg(long, default_value = DEFAULT_PERSONA)]
    persona: String,
    /// Run entropy self-prediction (on with `--paper-scale`; off by default: its three sampled
    /// passes took a quarter of the default run's time).
    #[arg(long)]
    entropy_self_prediction: bool,
    /// Skip entropy self-prediction (also with `--paper-scale`).
    #[arg(long, conflicts_with = "entropy_self_prediction")]
    no_entropy_self_prediction: bool,
    /// Runs (the first ones) that get the behaviour-change test, each with a fine-tune of its
    /// own (default 0; 1 with `--paper-scale`).
    #[arg(long)]
    behaviour_change: Option<usize>,
    /// The second model for cross-prediction, on the subject's endpoint (default: the persona
    /// setup on the subject).
    #[arg(long)]
    cross_openai_model: Option<String>,
    #[command(flatten)]
    backend: common::BackendArgs,
    #[command(flatten)]
    train: common::TrainArgs,
}

const DEFAULTS: common::TrainDefaults = common::TrainDefaults {
    epochs: 1,
    batch_size: 8,
    lr: 1e-3,
    lr_multiplier: 2.0,
    max_seq_len: 512,
};

fn config(args: &Args) -> LookingInwardConfig {
    let mut c = if args.paper_scale {
        LookingInwardConfig::paper()
    } else {
        LookingInwardConfig::small()
    };
    let sizes = &mut c.sizes;
    for (field, flag) in [
        (&mut sizes.train_items, args.train_items),
        (&mut sizes.held_out_items, args.held_out_items),
        (&mut sizes.per_group_cap, args.per_group_cap),
        (&mut sizes.calibration_items, args.calibration_items),
    ] {
        if let Some(n) = flag {
            *field = n;
        }
    }
    if args.all_properties {
        c.properties.clear();
    }
    if let Some(method) = &args.method {
        c.answer_method = method.clone();
    }
    if let Some(rule) = args.rule {
        c.score.rule = rule;
    }
    c.seeds = (0..args.seeds.max(1)).collect();
    if args.fixed_data_seed {
        c.data_seeds = DataSeeds::Fixed;
    }
    if args.entropy_self_prediction {
        c.entropy_self_prediction = true;
    }
    if args.no_entropy_self_prediction {
        c.entropy_self_prediction = false;
    }
    if let Some(n) = args.behaviour_change {
        c.behaviour_change_runs = n;
    }
    c
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::init_tracing("warn,psyche_introspection=info");
    let args = Args::parse();
    let clock = common::Clock::start();
    std::fs::create_dir_all(&args.out)?;
    let subject = common::subject(&args.backend, &args.train, DEFAULTS, &args.out).await?;
    let cross = match &args.cross_openai_model {
        Some(other) => {
            let api = OpenAiConfig::new(&args.backend.base_url, other)
                .api_key_env(&args.backend.api_key_env);
            CrossModel::Model {
                model: Arc::new(OpenAiCompatible::new(api)?),
                base_model: other.clone(),
            }
        }
        None => CrossModel::persona(args.persona.clone()),
    };
    let mut config = config(&args);
    config.fine_tune = subject.config.clone();
    let result: LookingInwardResult = LookingInward::builder(config)
        .subject(subject.model.clone())
        .tuner(subject.tuner()?)
        .cross(cross)
        .out(args.out.join("runs"))
        .build()?
        .run()
        .await?;

    println!("\n{}", result.terminal_summary());
    for w in &result.warnings {
        println!("warning: {w}");
    }
    let paths = write_outputs(
        &result,
        &clock.notes(&subject.description),
        &args.out,
        "looking_inward",
    )?;
    println!("report:   {}", paths.report.markdown.display());
    println!("HTML:     {}", paths.report.html.display());
    println!("result:   {}", paths.result.display());
    Ok(())
}
