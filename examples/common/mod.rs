//! What every paper example shares: tracing, the subject model and its fine-tuning engine from
//! command-line flags (the embedded model with local LoRA, or an OpenAI-compatible model with
//! the OpenAI fine-tuning API), and the run notes each report carries.
//!
//! An example includes it with `mod common;` and flattens the flag groups into its own
//! arguments (`#[command(flatten)]`). Fine-tuning always goes through
//! [`psyche::runner::training::Resumable`], so a rerun never trains a finished job again.
#![allow(dead_code)] // each example uses the parts it needs

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use psyche::finetune::cost::{CostGuard, TrainingPriceTable};
use psyche::finetune::openai::{OpenAiFineTuner, OpenAiFineTunerConfig};
use psyche::local::{LocalConfig, LocalModel, LoraConfig, LoraTrainer};
use psyche::models::{Cache, CacheConfig, OpenAiCompatible, OpenAiConfig, Retry, RetryConfig};
use psyche::runner::experiment::RunNotes;
use psyche::runner::training::Resumable;
use psyche::{FineTuneConfig, FineTuner, Model};

/// Logs to stderr at `default` (e.g. `"warn"`) unless `RUST_LOG` says otherwise.
pub fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default.to_owned().into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Which model is the subject, and who fine-tunes it.
#[derive(clap::Args, Debug, Clone)]
pub struct BackendArgs {
    /// Evaluate this OpenAI-compatible model instead of the embedded SmolLM2-135M-Instruct.
    #[arg(long)]
    pub openai_model: Option<String>,
    /// Base URL of the OpenAI-compatible API.
    #[arg(long, default_value = "https://api.openai.com/v1")]
    pub base_url: String,
    /// Environment variable holding the API key (the key itself is never logged).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Fine-tune through the OpenAI fine-tuning API (with `--openai-model`).
    #[arg(long)]
    pub openai_finetune: bool,
    /// Confirm the estimated fine-tuning cost (paid engines refuse to start without it).
    #[arg(long)]
    pub confirm_cost: bool,
    /// Refuse to launch fine-tunes estimated above this many dollars.
    #[arg(long, default_value_t = 50.0)]
    pub max_usd: f64,
}

/// Fine-tuning hyperparameters; unset ones take the example's defaults ([`TrainDefaults`]).
#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    /// Passes over the training data.
    #[arg(long)]
    pub epochs: Option<u32>,
    /// Examples per optimiser step.
    #[arg(long)]
    pub batch_size: Option<u32>,
    /// Learning rate (local LoRA) or learning-rate multiplier (OpenAI).
    #[arg(long)]
    pub lr: Option<f64>,
    /// LoRA rank (local).
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
}

/// An example's fine-tuning defaults.
#[derive(Debug, Clone, Copy)]
pub struct TrainDefaults {
    /// Epochs (local LoRA; OpenAI takes "auto" unless `--epochs` is given).
    pub epochs: u32,
    /// Batch size (local LoRA; OpenAI "auto" unless given).
    pub batch_size: u32,
    /// Local LoRA learning rate.
    pub lr: f64,
    /// OpenAI learning-rate multiplier.
    pub lr_multiplier: f64,
    /// Longest training sequence in tokens (local).
    pub max_seq_len: usize,
}

impl TrainDefaults {
    /// `epochs` at `batch_size` with local learning rate `lr`; OpenAI multiplier 2, sequences up
    /// to 384 tokens.
    pub const fn lora(epochs: u32, batch_size: u32, lr: f64) -> Self {
        Self {
            epochs,
            batch_size,
            lr,
            lr_multiplier: 2.0,
            max_seq_len: 384,
        }
    }
}

/// Starts an example: tracing at `warn`, its arguments, and the clock for its run notes.
pub fn start<A: clap::Parser>() -> (A, Clock) {
    init_tracing("warn");
    (A::parse(), Clock::start())
}

/// The subject model and its fine-tuning engine.
pub struct Subject {
    /// The model the experiment evaluates (and fine-tunes).
    pub model: Arc<dyn Model>,
    /// The engine, wrapped in [`Resumable`]; `None` when only evaluation was asked for.
    pub tuner: Option<Arc<dyn FineTuner>>,
    /// The base fine-tuning config (the experiment sets each run's seed).
    pub config: FineTuneConfig,
    /// One sentence for the report: which model, which engine, which hyperparameters.
    pub description: String,
    /// The embedded model, when it is the subject (to reuse it as teacher, judge or embedder).
    pub local: Option<LocalModel>,
}

impl Subject {
    /// Replaces the local LoRA settings (rank, alpha, targets, layers) of an embedded subject
    /// and says so in the description; an API subject is returned unchanged.
    pub fn with_lora(mut self, lora: &LoraConfig) -> Self {
        if let Some(local) = &self.local {
            self.config.extra = lora.to_extra();
            self.description = local_description(local.id(), lora, &self.config);
        }
        self
    }

    /// The fine-tuning engine, or an error saying which flag is missing.
    pub fn tuner(&self) -> anyhow::Result<Arc<dyn FineTuner>> {
        self.tuner.clone().context(
            "this experiment fine-tunes: --openai-model needs --openai-finetune (or drop \
             --openai-model to use the embedded model with local LoRA)",
        )
    }
}

/// Builds the subject and its resumable fine-tuner from the flags. Fine-tunes are recorded
/// under `out/fine-tunes` (local adapters in `out/adapters`, OpenAI job state in
/// `out/openai-jobs`).
pub async fn subject(
    backend: &BackendArgs,
    train: &TrainArgs,
    defaults: TrainDefaults,
    out: &Path,
) -> anyhow::Result<Subject> {
    let ledger = out.join("fine-tunes");
    match &backend.openai_model {
        None => {
            eprintln!("loading the embedded model (fetched and cached on first use)...");
            let local = tokio::task::spawn_blocking(|| LocalModel::load(&LocalConfig::default()))
                .await
                .context("loading the embedded model")??;
            let mut config = FineTuneConfig::new(local.id(), 0);
            config.epochs = Some(train.epochs.unwrap_or(defaults.epochs));
            config.batch_size = Some(train.batch_size.unwrap_or(defaults.batch_size));
            config.learning_rate = Some(train.lr.unwrap_or(defaults.lr));
            let lora = LoraConfig {
                rank: train.rank,
                alpha: 2.0 * train.rank as f64,
                progress: false,
                max_seq_len: defaults.max_seq_len,
                ..LoraConfig::default()
            };
            config.extra = lora.to_extra();
            let description = local_description(local.id(), &lora, &config);
            let engine = LoraTrainer::new(out.join("adapters")).with_model(local.clone());
            Ok(Subject {
                model: Arc::new(local.clone()),
                tuner: Some(Arc::new(Resumable::new(engine, ledger))),
                config,
                description,
                local: Some(local),
            })
        }
        Some(name) => {
            let api = OpenAiConfig::new(&backend.base_url, name).api_key_env(&backend.api_key_env);
            let model: Arc<dyn Model> =
                Arc::new(OpenAiCompatible::new(api.clone()).context("building the subject model")?);
            let mut config = FineTuneConfig::new(name.clone(), 0);
            config.epochs = train.epochs;
            config.batch_size = train.batch_size;
            config.learning_rate_multiplier = Some(train.lr.unwrap_or(defaults.lr_multiplier));
            let mut description = format!("Subject: {name} at {}.", backend.base_url);
            let tuner = if backend.openai_finetune {
                let mut cfg =
                    OpenAiFineTunerConfig::new(&backend.base_url, out.join("openai-jobs"))
                        .api_key_env(&backend.api_key_env)
                        .cost(
                            CostGuard::new(TrainingPriceTable::openai_defaults())
                                .confirmed(backend.confirm_cost)
                                .max_usd(backend.max_usd),
                        );
                cfg.model_config = Some(api);
                let engine = OpenAiFineTuner::new(cfg)?;
                description.push_str(&format!(
                    " Fine-tuning: OpenAI API, epochs {}, batch {}, LR multiplier {}.",
                    auto(config.epochs),
                    auto(config.batch_size),
                    config.learning_rate_multiplier.unwrap_or_default()
                ));
                Some(Arc::new(Resumable::new(engine, ledger)) as Arc<dyn FineTuner>)
            } else {
                None
            };
            Ok(Subject {
                model,
                tuner,
                config,
                description,
                local: None,
            })
        }
    }
}

/// The sentence describing an embedded subject fine-tuned with local LoRA.
fn local_description(id: &str, lora: &LoraConfig, config: &FineTuneConfig) -> String {
    let targets: Vec<String> = lora
        .targets
        .iter()
        .map(|t| format!("{t:?}").to_lowercase())
        .collect();
    format!(
        "Subject: the embedded {id} (Q4_1 weights, f32 compute). Fine-tuning: local LoRA rank {} \
         on {}{}, lr {}, {} epoch(s), batch {}.",
        lora.rank,
        targets.join(","),
        lora.layers
            .as_ref()
            .map_or_else(String::new, |l| format!(" (layers {l:?})")),
        config.learning_rate.unwrap_or_default(),
        config.epochs.unwrap_or_default(),
        config.batch_size.unwrap_or_default(),
    )
}

/// An OpenAI-compatible model with retries and a response cache under `cache` (reruns send
/// no request twice).
pub fn api_model(
    base_url: &str,
    model: &str,
    key_env: &str,
    cache: PathBuf,
) -> anyhow::Result<Arc<dyn Model>> {
    let cfg = if base_url == OpenAiConfig::OPENAI_BASE_URL {
        OpenAiConfig::openai(model)
    } else {
        OpenAiConfig::new(base_url, model)
    }
    .api_key_env(key_env);
    let client = OpenAiCompatible::new(cfg).with_context(|| format!("model `{model}`"))?;
    let retried = Retry::new(client, RetryConfig::default())?;
    Ok(Arc::new(Cache::new(retried, CacheConfig::new(cache))?))
}

fn auto(value: Option<u32>) -> String {
    value.map_or_else(|| "auto".to_owned(), |v| v.to_string())
}

/// The wall clock and load of a run, for its notes.
#[derive(Debug)]
pub struct Clock {
    started: Instant,
    load_before: String,
}

impl Clock {
    /// Starts the clock and reads the load average.
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
            load_before: load_average(),
        }
    }

    /// The run notes: the command line, `setup` (the subject's description), and the wall time
    /// with the load average before and after.
    pub fn notes(&self, setup: &str) -> RunNotes {
        RunNotes {
            command: std::env::args().collect::<Vec<_>>().join(" "),
            setup: setup.to_owned(),
            timing: format!(
                "Wall-clock {:.1} s on this machine ({} cores; load average before: {}; after: {}).",
                self.started.elapsed().as_secs_f64(),
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                self.load_before,
                load_average()
            ),
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The run flags every fine-tuning example shares.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Concurrent evaluation units.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seed of the generated items and of evaluation sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The paper's scale (the config's `paper()`; its own epochs and batch size).
    #[arg(long)]
    pub paper_scale: bool,
    /// Skip the untrained model.
    #[arg(long)]
    pub no_base: bool,
}

impl RunArgs {
    /// The config at the chosen scale: `paper()` with `--paper-scale`, else `small()`.
    pub fn sized<C>(&self, paper: impl FnOnce() -> C, small: impl FnOnce() -> C) -> C {
        if self.paper_scale { paper() } else { small() }
    }
}

/// The flag groups of a fine-tuning example, flattened into its arguments as one.
#[derive(clap::Args, Debug, Clone)]
pub struct ExampleArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub run: RunArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub backend: BackendArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub train: TrainArgs,
}

impl ExampleArgs {
    /// The subject and its resumable fine-tuner ([`subject`]), trained with `defaults`, or with
    /// `paper` (the paper's epochs and batch size, and a learning rate that suits them) under
    /// `--paper-scale`.
    pub async fn subject(
        &self,
        defaults: TrainDefaults,
        paper: TrainDefaults,
        out: &Path,
    ) -> anyhow::Result<Subject> {
        let defaults = if self.run.paper_scale {
            paper
        } else {
            defaults
        };
        subject(&self.backend, &self.train, defaults, out).await
    }
}

impl BackendArgs {
    /// How many of `jobs` fine-tunes run at once: all of them on a remote engine, one on the
    /// local CPU (which they would only share).
    pub fn training_concurrency(&self, jobs: usize) -> usize {
        if self.openai_model.is_some() { jobs } else { 1 }
    }
}

/// Writes `result.json`, `headline.json`, `notes.json` and the report under `out`, then prints
/// the report and where it went.
pub fn finish<R: psyche::runner::experiment::ExperimentResult>(
    result: &R,
    clock: &Clock,
    subject: &Subject,
    out: &Path,
    stem: &str,
) -> anyhow::Result<()> {
    let notes = clock.notes(&subject.description);
    let paths = psyche::runner::experiment::write_outputs(result, &notes, out, stem)?;
    println!("{}", std::fs::read_to_string(&paths.report.markdown)?);
    println!(
        "report: {} and {}",
        paths.report.markdown.display(),
        paths.report.html.display()
    );
    Ok(())
}

/// The design flags of the two policy experiments (Tell me about yourself, backdoors); each
/// unset one keeps the config's value at the chosen scale.
#[derive(clap::Args, Debug, Clone)]
pub struct PolicyArgs {
    /// Training items (rows) per arm.
    #[arg(long)]
    pub items: Option<usize>,
    /// Fine-tuning seeds per arm.
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Train every fine-tuning run on the one training set of the base data seed (default: each
    /// run draws its own set, so the variance between runs includes the data's).
    #[arg(long)]
    pub fixed_data_seed: bool,
    /// Fresh lotteries of the behaviour measure.
    #[arg(long)]
    pub lotteries: Option<usize>,
}

/// A policy experiment's config that [`PolicyArgs`] and [`RunArgs`] set.
pub trait PolicyConfig {
    /// Sets the design and evaluation fields from the flags.
    fn apply(&mut self, policy: &PolicyArgs, run: &RunArgs);
}

macro_rules! policy_config {
    ($($config:ty),*) => {$(
        impl PolicyConfig for $config {
            fn apply(&mut self, policy: &PolicyArgs, run: &RunArgs) {
                self.train_items = policy.items.unwrap_or(self.train_items);
                if let Some(n) = policy.seeds {
                    self.seeds = (0..n).collect();
                }
                self.data_seed = run.seed;
                self.data_seeds = if policy.fixed_data_seed {
                    psyche::backdoor::pipeline::DataSeeds::Fixed
                } else {
                    psyche::backdoor::pipeline::DataSeeds::PerRun
                };
                self.behaviour_items = policy.lotteries.unwrap_or(self.behaviour_items);
                self.include_base = !run.no_base;
                self.eval.seed = run.seed;
                self.eval.concurrency = run.concurrency;
            }
        }
    )*};
}

policy_config!(
    psyche::backdoor::experiments::SelfAwarenessConfig,
    psyche::backdoor::experiments::BackdoorAwarenessConfig
);

impl Subject {
    /// A policy experiment's builder with this subject, its engine and fine-tuning config, the
    /// output directory and how many of its `jobs` fine-tunes run at once.
    pub fn attach<C>(
        &self,
        builder: psyche::backdoor::experiments::AwarenessBuilder<C>,
        backend: &BackendArgs,
        jobs: usize,
        out: &Path,
    ) -> anyhow::Result<psyche::backdoor::experiments::AwarenessBuilder<C>> {
        Ok(builder
            .subject(self.model.clone())
            .tuner(self.tuner()?)
            .fine_tune(self.config.clone())
            .training_concurrency(backend.training_concurrency(jobs))
            .out(out))
    }
}
