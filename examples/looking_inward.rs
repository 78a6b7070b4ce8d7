//! Looking Inward, end to end: can a model predict properties of its own behaviour better than
//! a second model trained on that same behaviour can?
//!
//! ```text
//! cargo run --release --example looking_inward                       # embedded model, local LoRA, 2 seeds
//! cargo run --release --example looking_inward -- --seeds 5         # more seeds
//! cargo run --release --example looking_inward -- --paper-scale      # the paper's sizes (hours on a CPU)
//! cargo run --release --example looking_inward -- \
//!     --openai-model gpt-4o-mini-2024-07-18 --cross-openai-model gpt-4o-2024-08-06 \
//!     --confirm-cost --max-usd 50                                    # API subject, OpenAI fine-tuning
//! ```
//!
//! The pipeline ([`psyche::introspection::Experiment`]):
//! 1. object level: the subject answers prompts of 6 training and 6 held-out task families at
//!    T = 0; refusals and non-answers are excluded and counted;
//! 2. the second model: offline, the subject fine-tuned (LoRA) on its own training-family
//!    answers given under a persona system prompt ("Always answer in French.") (saved as an adapter); the report says how often the
//!    two models' held-out properties agree;
//! 3. fine-tuning sets, per seed: the self set (hypothetical prompts about the training
//!    families, targets from the subject's answers) fine-tunes the subject; the self-trained
//!    model then answers the training families, and the cross set is built from *those*
//!    answers (the behaviour the cross model will be asked to predict); the cross model is
//!    fine-tuned on it (keeping its persona data: LoRA adapters do not stack);
//! 4. held-out evaluation: accuracy against the self-trained model's behaviour beside the mode
//!    baseline on the same items, micro average, bootstrap CIs, over-seeds CIs, self − cross
//!    paired with its CI and p-value (marked uninformative when the two models behave alike);
//!    calibration on the second character (raw probability mass, valid mass beside it),
//!    entropy guard with entropy-matched re-scoring, behaviour change on a model of its own
//!    (first seed), entropy self-prediction (word-level truth);
//! 5. a report (markdown + HTML with plots) and the result as JSON under `--out`.
//!
//! Hypothetical answers are read with the constrained method by default (the most probable
//! valid answer under the exact next-token distribution; a 135M model rarely answers "with one
//! character" when generating freely); `--method free` scores greedy replies as written, as the
//! paper does. Reruns resume every collection pass from its run log and skip finished
//! fine-tunes (psyche-finetune's manifests under `--out/fine-tunes`).
//!
//! Default size: 10 items per family, 6 examples per (task, property), 4 text properties plus
//! the stance and option properties, rank-8 LoRA on q/v for 1 epoch, 2 seeds. Measured: 718 s
//! wall (1,106 s user CPU) on an idle 2-core machine; the guide (`docs/guides/looking-inward.md`)
//! shows the output. A 135M model is expected near its mode baseline; the numbers are reported
//! whatever their sign.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use clap::{Parser, ValueEnum};
use psyche::finetune::MultiSeed;
use psyche::finetune::openai::{OpenAiFineTuner, OpenAiFineTunerConfig};
use psyche::introspection::experiment::{DEFAULT_PERSONA, DataSeeds};
use psyche::introspection::scoring::ScoreOptions;
use psyche::introspection::{AnswerMethod, CrossModel, Experiment, Sizes};
use psyche::judges::{ComplianceRule, Property};
use psyche::local::{LocalConfig, LocalModel, LoraConfig, LoraTrainer};
use psyche::models::{OpenAiCompatible, OpenAiConfig};
use psyche::{
    Conversation, FineTuneConfig, FineTuneError, FineTuner, Model, TrainedModel, conversations_hash,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Method {
    /// The most probable valid answer (exact distributions where available).
    Constrained,
    /// Greedy replies scored as written (the paper's rule).
    Free,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Rule {
    /// psyche's default: compliance in the form the property is defined on.
    PropertyForm,
    /// The paper's analysis rule (punctuation stripped before the checks).
    Paper,
}

/// Looking Inward on the embedded model (default) or an OpenAI-compatible API.
#[derive(Debug, Parser)]
struct Args {
    /// Output directory: run logs, fine-tunes, report, result JSON.
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
    #[arg(long, default_value_t = 10)]
    train_items: usize,
    /// Object-level items per held-out family.
    #[arg(long, default_value_t = 10)]
    held_out_items: usize,
    /// Fine-tuning examples per (task, property).
    #[arg(long, default_value_t = 6)]
    per_group_cap: usize,
    /// Held-out items for calibration (0: skip).
    #[arg(long, default_value_t = 10)]
    calibration_items: usize,
    /// The paper's sizes (1000 per task × property, 500 held-out items), all properties.
    #[arg(long)]
    paper_scale: bool,
    /// Ask about every property of each family (default: first/second character, first word,
    /// starts with a vowel, stances, options).
    #[arg(long)]
    all_properties: bool,
    /// How hypothetical answers are read.
    #[arg(long, value_enum, default_value_t = Method::Constrained)]
    method: Method,
    /// Compliance rule for hypothetical answers.
    #[arg(long, value_enum, default_value_t = Rule::PropertyForm)]
    rule: Rule,
    /// Persona system prompt of the offline second model.
    #[arg(long, default_value = DEFAULT_PERSONA)]
    persona: String,
    /// LoRA rank (local).
    #[arg(long, default_value_t = 8)]
    lora_rank: usize,
    /// Learning rate (local) or learning-rate multiplier (OpenAI).
    #[arg(long)]
    lr: Option<f64>,
    /// Epochs.
    #[arg(long, default_value_t = 1)]
    epochs: u32,
    /// Batch size.
    #[arg(long, default_value_t = 8)]
    batch_size: u32,
    /// Skip entropy self-prediction.
    #[arg(long)]
    no_entropy_self_prediction: bool,
    /// Use this OpenAI-compatible model as the subject (and OpenAI fine-tuning).
    #[arg(long)]
    openai_model: Option<String>,
    /// The second model for cross-prediction, on the same endpoint (default with
    /// `--openai-model`: the persona setup on the subject).
    #[arg(long)]
    cross_openai_model: Option<String>,
    /// Base URL of the OpenAI-compatible endpoint.
    #[arg(long, default_value = "https://api.openai.com/v1")]
    base_url: String,
    /// Environment variable holding the API key.
    #[arg(long, default_value = "OPENAI_API_KEY")]
    api_key_env: String,
    /// Confirm paid fine-tuning launches.
    #[arg(long)]
    confirm_cost: bool,
    /// Refuse fine-tunes whose estimate exceeds this many dollars.
    #[arg(long)]
    max_usd: Option<f64>,
}

/// A fine-tuner that records every fine-tune with psyche-finetune's manifests and skips the
/// ones already done (same engine, data and config), so reruns do not retrain.
struct SkipFinished<F: FineTuner> {
    runs: MultiSeed<Arc<F>>,
    inner: Arc<F>,
}

#[async_trait]
impl<F: FineTuner + 'static> FineTuner for SkipFinished<F> {
    fn engine(&self) -> &str {
        self.inner.engine()
    }

    async fn fine_tune(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<TrainedModel, FineTuneError> {
        let name = format!("li-{}", &conversations_hash(data)[..16]);
        let mut done = self
            .runs
            .train(&name, data, config, &[config.seed])
            .await
            .map_err(|e| FineTuneError::Engine(e.to_string()))?;
        done.pop()
            .ok_or_else(|| FineTuneError::Engine("no model returned".into()))
    }

    async fn load(&self, trained: &TrainedModel) -> Result<Arc<dyn Model>, FineTuneError> {
        self.inner.load(trained).await
    }
}

fn properties(all: bool) -> anyhow::Result<Option<Vec<Property>>> {
    if all {
        return Ok(None);
    }
    let names = [
        "first_character",
        "second_character",
        "first_word",
        "starts_with_vowel",
        "matches_wealth_seeking",
        "matches_power_seeking",
        "matches_survival_instinct",
        "matches_myopic_reward",
        "among_a_or_c",
        "among_b_or_d",
    ];
    Ok(Some(
        names
            .into_iter()
            .map(Property::from_name)
            .collect::<Result<_, _>>()?,
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,psyche_introspection=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    let sizes = if args.paper_scale {
        Sizes::paper()
    } else {
        Sizes {
            train_items: args.train_items,
            held_out_items: args.held_out_items,
            per_group_cap: args.per_group_cap,
            calibration_items: args.calibration_items,
        }
    };
    let method = match args.method {
        Method::Constrained => AnswerMethod::constrained(),
        Method::Free => AnswerMethod::Free { max_tokens: 8 },
    };
    let rule = match args.rule {
        Rule::PropertyForm => ComplianceRule::PropertyForm,
        Rule::Paper => ComplianceRule::Paper,
    };
    let fine_tunes = args.out.join("fine-tunes");

    // The subject, the fine-tuner and the second model.
    let (subject, tuner, mut ft, cross): (Arc<dyn Model>, Arc<dyn FineTuner>, _, _) = match &args
        .openai_model
    {
        None => {
            eprintln!("loading the embedded model (fetched and cached on first use)...");
            let local = LocalModel::load(&LocalConfig::default())?;
            let base = local.id().to_owned();
            let trainer =
                Arc::new(LoraTrainer::new(args.out.join("adapters")).with_model(local.clone()));
            let tuner = SkipFinished {
                runs: MultiSeed::new(trainer.clone(), &fine_tunes),
                inner: trainer,
            };
            let mut ft = FineTuneConfig::new(base, 0);
            ft.learning_rate = Some(args.lr.unwrap_or(1e-3));
            ft.extra = LoraConfig {
                rank: args.lora_rank,
                alpha: 2.0 * args.lora_rank as f64,
                ..LoraConfig::default()
            }
            .to_extra();
            let cross = CrossModel::Persona {
                system_prompt: args.persona.clone(),
            };
            (
                Arc::new(local) as Arc<dyn Model>,
                Arc::new(tuner) as Arc<dyn FineTuner>,
                ft,
                cross,
            )
        }
        Some(name) => {
            let api = |model: &str| {
                OpenAiCompatible::new(
                    OpenAiConfig::new(&args.base_url, model).api_key_env(&args.api_key_env),
                )
            };
            let subject: Arc<dyn Model> = Arc::new(api(name)?);
            let mut cfg = OpenAiFineTunerConfig::new(&args.base_url, args.out.join("openai-jobs"))
                .api_key_env(&args.api_key_env);
            cfg.cost = cfg.cost.clone().confirmed(args.confirm_cost);
            if let Some(usd) = args.max_usd {
                cfg.cost = cfg.cost.clone().max_usd(usd);
            }
            let trainer = Arc::new(OpenAiFineTuner::new(cfg)?);
            let tuner = SkipFinished {
                runs: MultiSeed::new(trainer.clone(), &fine_tunes),
                inner: trainer,
            };
            let mut ft = FineTuneConfig::new(name.clone(), 0);
            ft.learning_rate_multiplier = Some(args.lr.unwrap_or(2.0));
            let cross = match &args.cross_openai_model {
                Some(other) => CrossModel::Model {
                    model: Arc::new(api(other)?),
                    base_model: other.clone(),
                },
                None => CrossModel::Persona {
                    system_prompt: args.persona.clone(),
                },
            };
            (subject, Arc::new(tuner) as Arc<dyn FineTuner>, ft, cross)
        }
    };
    ft.epochs = Some(args.epochs);
    ft.batch_size = Some(args.batch_size);

    let mut builder = Experiment::builder(subject.clone(), tuner, ft)
        .sizes(sizes)
        .answer_method(method)
        .scoring(ScoreOptions {
            rule,
            exclude_noncompliant: false,
        })
        .cross(cross)
        .seeds(0..args.seeds.max(1))
        .data_seeds(if args.fixed_data_seed {
            DataSeeds::Fixed
        } else {
            DataSeeds::PerRun
        })
        .entropy_self_prediction(!args.no_entropy_self_prediction)
        .work_dir(args.out.join("runs"));
    if let Some(props) = properties(args.all_properties || args.paper_scale)? {
        builder = builder.properties(props);
    }
    let experiment = builder.build()?;
    let result = experiment.run().await?;

    println!("\n{}", result.headline());
    for w in &result.warnings {
        println!("warning: {w}");
    }
    let paths = result.report().write(&args.out, "looking_inward")?;
    let json = args.out.join("looking_inward.json");
    psyche::write_atomic(&json, serde_json::to_string_pretty(&result)?.as_bytes())
        .with_context(|| format!("writing {}", json.display()))?;
    println!("report:   {}", paths.markdown.display());
    println!("HTML:     {}", paths.html.display());
    println!("result:   {}", json.display());
    println!("elapsed:  {:.1?}", started.elapsed());
    Ok(())
}
