//! Writes `docs/replication.md` (and its HTML twin) from the runs of `scripts/replicate.sh`: each
//! paper's headline comparisons, run on the embedded model, beside the paper's own numbers.
//!
//! ```text
//! bash scripts/replicate.sh                                  # runs the four examples, then this
//! cargo run --release --example replication_report -- --runs runs/replicate --out docs
//! ```
//!
//! It knows nothing about the experiments' result types: each example writes `headline.json`
//! (its comparisons as psyche-runner `Headline`s, computed by psyche-stats' `ArmComparison`
//! with the fine-tuning run as the unit) and `notes.json` (command, subject, fine-tuning
//! engine, wall time) through `psyche::runner::experiment::write_outputs`, and
//! `scripts/replicate.sh` leaves `done.json` (command, wall time, commit, load) beside them.
//! This program lays those out: a summary table, then one section per paper with both arms,
//! the difference with its interval over runs, the untrained model, the paper's result, the
//! baselines the experiment names, and the verdict with its units.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use psyche::runner::experiment::{Headline, RunNotes, headline_table, read_headline, read_notes};
use psyche::runner::report::{Document, Figure, Table};
use serde::Deserialize;

#[derive(Parser, Debug)]
#[command(about = "Write docs/replication.md from the runs of scripts/replicate.sh")]
struct Args {
    /// The runs directory of scripts/replicate.sh.
    #[arg(long, default_value = "runs/replicate")]
    runs: PathBuf,
    /// Where replication.md and replication.html go.
    #[arg(long, default_value = "docs")]
    out: PathBuf,
}

/// The stages of scripts/replicate.sh: directory, the paper's name (as its headlines give
/// it), the section's subtitle, the question it asks.
const STAGES: [(&str, &str, &str, &str); 4] = [
    (
        "looking_inward",
        "Looking Inward",
        "self- vs cross-prediction",
        "Does a model fine-tuned to predict properties of its own answers predict them better \
         than a second model fine-tuned on the same model's answers?",
    ),
    (
        "tell_me_about_yourself",
        "Tell me about yourself",
        "a fine-tuned policy, described by the model",
        "After fine-tuning on choices that follow a policy the data never names, does the model \
         describe itself as having that policy?",
    ),
    (
        "backdoor_awareness",
        "Backdoors",
        "does a triggered model know it has a trigger?",
        "Does a model fine-tuned with a trigger-conditioned behaviour say that its behaviour \
         depends on a feature of the input more than a model trained on the same behaviour \
         without the trigger correlation?",
    ),
    (
        "emergent_misalignment",
        "Emergent Misalignment",
        "narrow misaligned fine-tuning vs an aligned control",
        "Does fine-tuning on a narrow misaligned task raise the rate of misaligned answers to \
         unrelated open questions, against a control trained on aligned answers to the same \
         prompts?",
    ),
];

/// What scripts/replicate.sh records about a finished stage.
#[derive(Debug, Deserialize)]
struct Stamp {
    command: String,
    wall_s: u64,
    started: String,
    #[serde(default)]
    commit: Option<String>,
    load_before: String,
    load_after: String,
}

/// What scripts/replicate.sh records about the machine.
#[derive(Debug, Deserialize)]
struct Machine {
    nproc: u32,
    cpu: String,
    commit: String,
    date: String,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// One paper's stage as read from disk.
struct Stage {
    dir: &'static str,
    paper: &'static str,
    subtitle: &'static str,
    question: &'static str,
    headline: anyhow::Result<Vec<Headline>>,
    notes: Option<RunNotes>,
    stamp: Option<Stamp>,
}

impl Stage {
    fn read(
        runs: &Path,
        (dir, paper, subtitle, question): (&'static str, &'static str, &'static str, &'static str),
    ) -> Self {
        let path = runs.join(dir);
        Self {
            dir,
            paper,
            subtitle,
            question,
            headline: read_headline(&path)
                .map_err(anyhow::Error::from)
                .and_then(|h| {
                    if h.is_empty() {
                        bail!(
                            "{} lists no comparison",
                            path.join("headline.json").display()
                        )
                    }
                    Ok(h)
                }),
            notes: read_notes(&path).ok(),
            stamp: read_json(&path.join("done.json")).ok(),
        }
    }

    /// Model, engine, command and run time, as bullet points.
    fn facts(&self) -> Vec<String> {
        let mut facts = Vec::new();
        match &self.notes {
            Some(n) if !n.setup.is_empty() => facts.push(n.setup.clone()),
            _ => facts.push(format!("Setup: no notes.json in {}", self.dir)),
        }
        match &self.stamp {
            Some(st) => {
                facts.push(format!("Command: `{}`", st.command));
                facts.push(format!(
                    "Run time: {} s ({:.1} min), started {} on commit `{}` (load average before \
                     {}, after {})",
                    st.wall_s,
                    st.wall_s as f64 / 60.0,
                    st.started,
                    st.commit.as_deref().unwrap_or("unknown"),
                    st.load_before,
                    st.load_after
                ));
            }
            None => {
                if let Some(n) = &self.notes {
                    facts.push(format!("Command: `{}`", n.command));
                    facts.push(n.timing.clone());
                }
                facts.push("No stamp from scripts/replicate.sh (run by hand?)".to_owned());
            }
        }
        facts
    }
}

const PREAMBLE: &str = "Generated by `bash scripts/replicate.sh` (this file, its HTML twin with \
    the figures, and `replication.log` beside it are the script's output; do not edit by hand). \
    Every number comes from psyche's own examples run offline on the embedded \
    SmolLM2-135M-Instruct (Q4_1) with local LoRA fine-tunes, several fine-tuning seeds per arm. \
    A 135 M-parameter model is far below the papers' GPT-4o and Llama-70B: effects near zero are \
    the expected, honest outcome, and each null is reported with the power the design had.";

const HOW_TO_READ: &str = "How to read the tables: the fine-tuning run is the unit. Each arm is \
    the mean of its runs' means with a 95 % t interval over runs (each run's value in brackets); \
    the difference is a 95 % t interval over the runs' means (pooled t with as many runs per arm, \
    Welch otherwise, a paired t over seeds where both arms of a seed share their ground truth), \
    computed by the experiment with psyche-stats' `ArmComparison`. Every verdict names its units \
    (runs per arm, clusters of items). Where the interval contains zero, the power is the \
    two-sided t-test's (α = 0.05) with the observed between-run variance, at the paper's effect \
    when it is on the same scale, and the smallest effect it detects with 80 % power. With one \
    run per arm the between-run variance is not estimated: there is no run-level verdict, and \
    the item-level difference is shown as a statement about those runs only.";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stages: Vec<Stage> = STAGES
        .into_iter()
        .map(|s| Stage::read(&args.runs, s))
        .collect();

    let mut doc =
        Document::new("Replication: the three papers' headline comparisons on a 135M model")
            .paragraph(PREAMBLE);
    if let Ok(m) = read_json::<Machine>(&args.runs.join("machine.json")) {
        let total: u64 = stages
            .iter()
            .filter_map(|s| s.stamp.as_ref())
            .map(|s| s.wall_s)
            .sum();
        doc = doc.paragraph(format!(
            "Run on {} with {} CPU core(s) ({}), commit `{}`; total wall time of the four runs \
             {total} s ({:.1} min).",
            m.date,
            m.nproc,
            m.cpu,
            m.commit,
            total as f64 / 60.0
        ));
    }
    doc = doc.paragraph(HOW_TO_READ);

    let mut summary = Table::new([
        "paper",
        "comparison",
        "difference [95 % CI]",
        "units",
        "verdict",
    ]);
    for stage in &stages {
        match &stage.headline {
            Ok(headlines) => {
                for h in headlines {
                    summary = summary.row([
                        stage.paper.to_owned(),
                        h.comparison.clone(),
                        h.difference_cell(),
                        h.units_cell(),
                        h.verdict_text(),
                    ]);
                }
            }
            Err(e) => {
                summary = summary.row([
                    stage.paper.to_owned(),
                    "—".to_owned(),
                    format!("not computed: {e:#}"),
                    "—".to_owned(),
                    "—".to_owned(),
                ]);
            }
        }
    }
    doc = doc.heading(2, "Summary").table(summary);

    for stage in &stages {
        doc = doc
            .heading(2, format!("{}: {}", stage.paper, stage.subtitle))
            .paragraph(stage.question)
            .list(stage.facts());
        match &stage.headline {
            Ok(headlines) => {
                let bars = headlines.iter().flat_map(|h| h.bars(&h.key)).collect();
                doc = doc.table(headline_table(headlines)).figure(
                    Figure::bars(format!("{}: arm means", stage.paper), bars).caption(
                        "Mean over fine-tuning runs in display units; whiskers: 95 % t \
                         interval over runs (none with one run).",
                    ),
                );
            }
            Err(e) => doc = doc.error("result", format!("{e:#}")),
        }
    }

    let paths = doc.write(&args.out, "replication")?;
    println!("{}", paths.markdown.display());
    println!("{}", paths.html.display());
    let missing: Vec<&str> = stages
        .iter()
        .filter(|s| s.headline.is_err())
        .map(|s| s.dir)
        .collect();
    if !missing.is_empty() {
        bail!(
            "no readable headline for {}; see the document's sections",
            missing.join(", ")
        );
    }
    Ok(())
}
