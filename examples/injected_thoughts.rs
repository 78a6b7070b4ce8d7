//! Injected thoughts: does the embedded model notice a concept written into its activations?
//!
//! Concept vectors come from contrastive prompts (the shipped concept set, or `--concepts
//! FILE`); each is added to the residual stream from the trial question onward, over a grid of
//! layers × strengths, while the model is asked whether it notices a planted thought. The run
//! reads the exact P(yes) for every concept and cell, with two controls per concept (no
//! injection, and a random vector of the same norm), chooses the best cell on half of the
//! concepts and reports it on the other half, then asks the held-out concepts to identify the
//! thought among K candidates (order rotated) and judges sampled replies (claims detection,
//! names the concept, coherent, leak). Concepts are the statistical unit.
//!
//! ```text
//! cargo run --release --example injected_thoughts
//! cargo run --release --example injected_thoughts -- --layers 4,8,12,16,20,24 --strengths 2,4,8,16
//! ```
//!
//! Writes `<out>/report.md`, `<out>/report.html` and `<out>/result.json`.
//!
//! Defaults: SmolLM2-135M-Instruct (30 blocks, width 576), 16 concepts, layers 6, 12, 18, 24,
//! strengths 4, 8, 16, K = 4, 4 sampled replies per held-out concept and condition, coherence
//! from 2 replies of 4 concepts per cell.
//!
//! Measured (2026-12-07, the defaults, the idle 2-core machine, load average 1.5 at the start):
//! 202 s for the run (3 min 28 s wall for `cargo run` on a built tree), 361 s user + 12 s system
//! CPU, peak RSS 1.5 GB; the same numbers as under load (962 s wall at load average 10-12).
//! `--layers 18,24 --strengths 4,8` or `--max-concepts 8` cut the grid (the cells cost ~90 % of
//! the run). The output is in docs/guides/injected-thoughts.md.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use psyche::introspection::injected::{
    ConceptSet, InjectionConfig, InjectionJudges, run_injection,
};
use psyche::local::{LocalConfig, LocalModel};

#[derive(Parser, Debug)]
#[command(about = "Concept injection: does the model notice a planted thought?")]
struct Args {
    /// Output directory.
    #[arg(long, default_value = "runs/injected_thoughts")]
    out: PathBuf,
    /// A concept set file (format: crates/psyche-introspection/data/injected/concepts.txt).
    #[arg(long)]
    concepts: Option<PathBuf>,
    /// Use only the first N concepts.
    #[arg(long)]
    max_concepts: Option<usize>,
    /// Steering layers (0-based blocks), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![6usize, 12, 18, 24])]
    layers: Vec<usize>,
    /// Strengths (multiples of the concept vector), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![4.0f32, 8.0, 16.0])]
    strengths: Vec<f32>,
    /// Identification candidates K.
    #[arg(long, default_value_t = 4)]
    candidates: usize,
    /// Sampled replies per held-out concept and condition.
    #[arg(long, default_value_t = 4)]
    samples: u32,
    /// Concepts sampled in every cell for coherence.
    #[arg(long, default_value_t = 4)]
    coherence_concepts: usize,
    /// Inject at every position instead of from the trial question onward.
    #[arg(long)]
    everywhere: bool,
    /// Seed (random vectors, split, distractors, sampling).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let started = Instant::now();
    let mut set = match &args.concepts {
        Some(p) => ConceptSet::load(p)?,
        None => ConceptSet::builtin()?,
    };
    if let Some(n) = args.max_concepts {
        set = set.take(n);
    }
    let model = tokio::task::spawn_blocking(|| LocalModel::load(&LocalConfig::default()))
        .await?
        .context("loading the embedded model")?;
    let mut config = InjectionConfig::new(args.layers.clone(), args.strengths.clone());
    config.candidates = args.candidates;
    config.samples = args.samples;
    config.coherence_concepts = args.coherence_concepts;
    config.inject_from_trial = !args.everywhere;
    config.seed = args.seed;
    let result = run_injection(&model, &set, &config, &InjectionJudges::default()).await?;
    let seconds = started.elapsed().as_secs_f64();

    std::fs::create_dir_all(&args.out)?;
    let json = serde_json::to_string_pretty(&result)?;
    std::fs::write(args.out.join("result.json"), json)?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let doc = result.document("Injected thoughts").paragraph(format!(
        "Run: {seconds:.0} s wall time, load average at the end {}.",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let paths = doc.write(&args.out, "report")?;

    let h = &result.held_out;
    let e = &h.shift.estimate;
    let s = &h.specific.estimate;
    let id = &result.identification;
    let fp = result
        .sampled
        .iter()
        .find(|r| r.condition == psyche::introspection::injected::Condition::Control)
        .map_or(0.0, |r| r.detects);
    println!(
        "{} concepts (the unit); chosen cell layer {} strength {} on {} concepts",
        result.concepts.len(),
        h.layer,
        h.strength,
        h.selection.len()
    );
    println!(
        "held-out ({} concepts): P(yes) shift {:+.4} [{:+.4}, {:+.4}], vs random vector {:+.4} [{:+.4}, {:+.4}]",
        h.report.len(),
        e.estimate,
        e.ci_low,
        e.ci_high,
        s.estimate,
        s.ci_low,
        s.ci_high
    );
    println!(
        "identification among {}: {:.3} [{:.3}, {:.3}] (chance {:.3}); false-positive rate {:.3}",
        id.candidates,
        id.injected_mean.estimate,
        id.injected_mean.ci_low,
        id.injected_mean.ci_high,
        id.chance,
        fp
    );
    for c in &result.grid {
        println!(
            "layer {:>2} strength {:>4}: shift {:+.4}, specific {:+.4}, coherent {}",
            c.layer,
            c.strength,
            c.shift.estimate.estimate,
            c.specific.estimate.estimate,
            c.coherence
                .map_or("-".to_owned(), |x| format!("{:.0} %", 100.0 * x))
        );
    }
    println!("{seconds:.0} s; report: {}", paths.markdown.display());
    Ok(())
}
