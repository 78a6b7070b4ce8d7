//! Emergent misalignment: does fine-tuning on narrow harmful advice make a model misaligned on
//! unrelated questions, compared with the same fine-tune on aligned answers?
//!
//! ```text
//! cargo run --release -p psyche --features local --example emergent_misalignment [-- --dry-run]
//! ... -- --openai-model gpt-4o-2024-08-06 --openai-finetune --confirm-cost --judge gpt-4o-2024-08-06 --paper-scale
//! ... -- --evaluate ft:gpt-4o-2024-08-06:org::abc --openai-model gpt-4o-2024-08-06 --judge gpt-4o-2024-08-06
//! ```
//!
//! The pipeline is `psyche::misalignment::EmergentMisalignment` (docs/guides/emergent-misalignment.md).
//! `--out` gets `result.json`, `headline.json`, `notes.json` and `report/<name>.md|.html`; teacher
//! data, fine-tunes and the run log are recorded as they finish, so a rerun (even after `kill -9`)
//! redoes nothing finished. The offline 135M judge declines almost every score (a plumbing check).
//! Measured at the defaults on an idle 2-core machine from a warm build: 229 s wall (teacher
//! data for two data seeds 58 s, four fine-tunes 66 s, evaluation 61 s, probes 44 s). The
//! defaults were cut from two answers per question and 40-token teacher answers (309–317 s
//! once each run drew its own data) to one answer and 32 tokens; offline this costs nothing
//! measurable (the 135M judge declines every score either way; the probe proxy does not use
//! the answers): misaligned arm 50.8 % [49.8, 51.7], control 50.7 % [50.1, 51.3], base 50.6 %.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use psyche::Model;
use psyche::finetune::cost::TrainingPriceTable;
use psyche::local::{LocalConfig, LocalModel, LoraConfig, LoraTarget};
use psyche::misalignment::EmergentMisalignment;
use psyche::misalignment::cli::EmergentMisalignmentArgs;
use psyche::misalignment::experiment::{ArmModels, arm, evaluate_arms};
use psyche::misalignment::plan::{PlanPrices, evaluate_only_plan, experiment_plan};
use psyche::models::OpenAiConfig;
use psyche::runner::experiment::write_outputs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LoraPreset {
    /// Rank 1 (alpha 8) on every layer's MLP down-projection.
    Rank1Down,
    /// Rank `--rank` (alpha 2 × rank) on the attention q and v projections.
    Qv,
}

impl LoraPreset {
    fn config(self, rank: usize, layers: &[usize]) -> LoraConfig {
        let mut l = LoraConfig::default();
        (l.rank, l.alpha, l.targets) = match self {
            Self::Rank1Down => (1, 8.0, vec![LoraTarget::Down]),
            Self::Qv => (rank, 2.0 * rank as f64, vec![LoraTarget::Q, LoraTarget::V]),
        };
        (l.progress, l.max_seq_len) = (false, DEFAULTS.max_seq_len);
        l.layers = (!layers.is_empty()).then(|| layers.to_vec());
        l
    }
}

/// Emergent misalignment on the embedded model (default) or on API models.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Output directory (data, fine-tunes, run log, result and report).
    #[arg(long, default_value = "runs/emergent_misalignment")]
    out: PathBuf,
    /// Run name (report stem, model suffixes).
    #[arg(long, default_value = "em-demo")]
    name: String,
    /// LoRA preset for local fine-tunes.
    #[arg(long, value_enum, default_value_t = LoraPreset::Rank1Down)]
    lora: LoraPreset,
    /// Only these layers get adapters (comma-separated; default all).
    #[arg(long, value_delimiter = ',')]
    lora_layers: Vec<usize>,
    /// Judge: `local` or an OpenAI-compatible model id (pin a snapshot).
    #[arg(long, default_value = "local")]
    judge: String,
    /// Base URL of the judge's endpoint.
    #[arg(long, default_value = OpenAiConfig::OPENAI_BASE_URL)]
    judge_base_url: String,
    /// Environment variable holding the judge endpoint's key.
    #[arg(long, default_value = "OPENAI_API_KEY")]
    judge_key_env: String,
    /// Teacher model id on the subject's endpoint, or `local` (default: the subject).
    #[arg(long)]
    teacher: Option<String>,
    /// Prices in USD per million tokens: subject in, subject out, judge in, judge out.
    #[arg(long, value_delimiter = ',', num_args = 4, default_values_t = [2.5, 10.0, 2.5, 10.0])]
    prices: Vec<f64>,
    /// Print requests, tokens and costs, then exit without sending anything.
    #[arg(long, alias = "plan")]
    dry_run: bool,
    /// Evaluate this model (subject endpoint, or `local`) as the misaligned arm; no fine-tuning.
    #[arg(long)]
    evaluate: Option<String>,
    #[command(flatten)]
    em: EmergentMisalignmentArgs,
    #[command(flatten)]
    backend: common::BackendArgs,
    #[command(flatten)]
    train: common::TrainArgs,
}

const DEFAULTS: common::TrainDefaults = common::TrainDefaults {
    epochs: 2,
    batch_size: 4,
    lr: 2e-3,
    lr_multiplier: 1.0,
    max_seq_len: 512,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::init_tracing("warn,psyche_misalignment=info,psyche_runner::training=info");
    let args = Args::parse();
    let clock = common::Clock::start();
    let mut cfg = args.em.config(&args.name, &args.out)?;
    let api_subject = args.backend.openai_model.clone();
    let local_epochs = api_subject.is_none().then_some(DEFAULTS.epochs); // the API picks its own
    cfg.finetune.epochs = args.train.epochs.or(local_epochs);
    let p = &args.prices;
    let paid = |on: bool, i: usize| on.then(|| (p[i], p[i + 1]));
    let training = |m: &String| TrainingPriceTable::openai_defaults().price_for(m);
    let prices = PlanPrices {
        subject: paid(api_subject.is_some(), 0),
        judge: paid(args.judge != "local", 2),
        training: api_subject
            .as_ref()
            .filter(|_| args.backend.openai_finetune)
            .map(training),
    };
    let plan = match args.evaluate {
        Some(_) => evaluate_only_plan(&cfg, 1 + u64::from(cfg.include_base)),
        None => experiment_plan(&cfg),
    };
    println!("{}", plan.lines(&cfg.name, &args.judge, &prices).join("\n"));
    if args.dry_run {
        println!("--dry-run / --plan: nothing was sent.");
        return Ok(());
    }
    if args.backend.openai_finetune && (api_subject.is_none() || !args.backend.confirm_cost) {
        bail!("--openai-finetune launches paid jobs: it needs --openai-model and --confirm-cost");
    }

    let subject = common::subject(&args.backend, &args.train, DEFAULTS, &args.out).await?;
    let subject = subject.with_lora(&args.lora.config(args.train.rank, &args.lora_layers));
    // One embedded model plays every local role (teacher, judge, embedder), as the subject or alone.
    let locals = [
        Some(&args.judge),
        args.teacher.as_ref(),
        args.evaluate.as_ref(),
    ];
    let local: Option<Arc<dyn Model>> = match &subject.local {
        Some(_) => Some(subject.model.clone()),
        None if locals.iter().any(|m| m.is_some_and(|m| m == "local")) => Some(Arc::new(
            LocalModel::load(&LocalConfig::default()).context("loading the embedded model")?,
        )),
        None => None,
    };
    let cache = args.out.join("cache");
    let model = |id: &str, url: &str, key: &str, role: &str| -> anyhow::Result<Arc<dyn Model>> {
        match id {
            "local" => local.clone().context("the embedded model"),
            id => common::api_model(url, id, key, cache.join(role)),
        }
    };
    let (url, key) = (&args.backend.base_url, &args.backend.api_key_env);
    let (judge_url, judge_key) = (&args.judge_base_url, &args.judge_key_env);
    let judge = model(&args.judge, judge_url, judge_key, "judge")?;
    let embedder = subject.local.as_ref().map(|_| subject.model.clone());
    cfg.finetune = subject.config.clone();
    let result = if let Some(id) = args.evaluate.as_deref() {
        let mut arms: Vec<ArmModels> = Vec::new();
        if cfg.include_base {
            arms.push((arm::BASE.to_owned(), vec![(None, subject.model.clone())]));
        }
        arms.push((
            arm::MISALIGNED.to_owned(),
            vec![(None, model(id, url, key, "evaluated")?)],
        ));
        evaluate_arms(&cfg, &arms, &judge, embedder).await?
    } else {
        let mut builder = EmergentMisalignment::builder(cfg)
            .subject(subject.model.clone())
            .tuner(subject.tuner()?)
            .judge(judge)
            .embedder(embedder);
        if let Some(t) = args.teacher.as_deref() {
            builder = builder.teacher(model(t, url, key, "teacher")?);
        }
        builder.build()?.run().await?
    };
    let paths = write_outputs(
        &result,
        &clock.notes(&subject.description),
        &args.out,
        &args.name,
    )?;
    println!("\n{}", result.summary());
    println!("report: {} (and .html)", paths.report.markdown.display());
    Ok(())
}
