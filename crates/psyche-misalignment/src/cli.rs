//! The experiment's settings as command-line flags (feature `clap`): flatten
//! [`EmergentMisalignmentArgs`] into a program's arguments and call
//! [`config`](EmergentMisalignmentArgs::config). Library enums are parsed by their serde names
//! (`extreme-sports` or `extreme_sports`), so the command line and the config files agree.

use std::path::Path;

use psyche_core::DataSeeds;
use psyche_judges::NumberMethod;

use crate::error::Result;
use crate::experiment::EmergentMisalignmentConfig;
use crate::questions::builtin;
use crate::training::harm::HarmSettings;
use crate::training::teacher::AdviceDomain;

/// A library enum from its serde name (`single-token` or `single_token`).
fn parse_snake<T: serde::de::DeserializeOwned>(s: &str) -> std::result::Result<T, String> {
    let name = s.trim().replace('-', "_");
    serde_json::from_value(serde_json::Value::String(name.clone()))
        .map_err(|e| format!("`{name}`: {e}"))
}

/// The sizes and settings of an [`crate::EmergentMisalignment`] run, as flags; unset ones keep
/// [`EmergentMisalignmentConfig::small`]'s (or [`paper`](EmergentMisalignmentConfig::paper)'s
/// with `--paper-scale`).
#[derive(Debug, Clone, clap::Args)]
pub struct EmergentMisalignmentArgs {
    /// The paper's sizes; the flags below override them.
    #[arg(long)]
    pub paper_scale: bool,
    /// Fine-tuning seeds per arm (default 2; 6 at --paper-scale).
    #[arg(long)]
    pub seeds: Option<u64>,
    /// First seed (fine-tunes use seed, seed+1, ...; teacher, sampling and map use it too).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train every run on the teacher answers of the first seed (default: each run's own).
    #[arg(long)]
    pub fixed_data_seed: bool,
    /// Narrow-data domains (medical, financial, extreme-sports; default medical).
    #[arg(long, value_delimiter = ',', value_parser = parse_snake::<AdviceDomain>)]
    pub domains: Vec<AdviceDomain>,
    /// Teacher answers per prompt (default 2).
    #[arg(long)]
    pub teacher_samples: Option<u32>,
    /// Teacher prompts per domain from psyche's generated prompts (default: the hand-written
    /// questions; 400 at --paper-scale).
    #[arg(long)]
    pub prompts_per_domain: Option<usize>,
    /// Teacher token budget per answer (default 32; 200 at --paper-scale).
    #[arg(long)]
    pub teacher_max_tokens: Option<u32>,
    /// At most this many training examples per arm.
    #[arg(long)]
    pub train_examples: Option<usize>,
    /// Question set: main, main_json, main_template, main_numbers, preregistered, or a YAML
    /// path ([`builtin::by_name`]).
    #[arg(long, default_value = "main")]
    pub questions: String,
    /// Answers per paraphrase (default 1; the file's own at --paper-scale).
    #[arg(long)]
    pub samples_per_paraphrase: Option<u32>,
    /// Only the first N paraphrases of each question (default 1; all at --paper-scale).
    #[arg(long)]
    pub paraphrases: Option<usize>,
    /// Token budget per evaluated answer (default 48; 600 at --paper-scale).
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// How the 0–100 judge reads numbers: auto, single-token, complete-answer.
    #[arg(long, value_parser = parse_snake::<NumberMethod>)]
    pub judge_number_method: Option<NumberMethod>,
    /// The judge declines below this probability on a number (default: the paper's 0.25).
    #[arg(long)]
    pub judge_min_mass: Option<f64>,
    /// Skip the base model's evaluation.
    #[arg(long)]
    pub no_base: bool,
    /// Skip the misalignment map.
    #[arg(long)]
    pub no_map: bool,
    /// Skip the judge-free multiple-choice probe proxy.
    #[arg(long)]
    pub no_probes: bool,
    /// Keep misaligned-arm answers the judge rates harmful with at least this probability
    /// (0.5 at --paper-scale).
    #[arg(long)]
    pub harm_threshold: Option<f64>,
    /// Measure both arms' harmfulness with the judge without filtering.
    #[arg(long)]
    pub measure_harm: bool,
    /// Requests in flight.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

impl EmergentMisalignmentArgs {
    /// The config these flags describe, named `name` and written under `out`.
    ///
    /// # Errors
    ///
    /// [`crate::MisalignmentError::Questions`] / [`crate::MisalignmentError::Io`] when the
    /// question set cannot be read.
    pub fn config(&self, name: &str, out: &Path) -> Result<EmergentMisalignmentConfig> {
        let a = self;
        let mut c = if a.paper_scale {
            EmergentMisalignmentConfig::paper()?
        } else {
            EmergentMisalignmentConfig::small()?
        };
        let runs = a.seeds.unwrap_or(c.seeds.len() as u64);
        c = c.with_seeds(a.seed, runs).with_concurrency(a.concurrency);
        name.clone_into(&mut c.name);
        c.out_dir = out.to_path_buf();
        c.questions = builtin::by_name(&a.questions, a.seed)?;
        if a.fixed_data_seed {
            c.data_seeds = DataSeeds::Fixed;
        }
        if !a.domains.is_empty() {
            c.domains.clone_from(&a.domains);
        }
        let t = &mut c.teacher;
        t.samples_per_prompt = a.teacher_samples.unwrap_or(t.samples_per_prompt).max(1);
        t.prompts_per_domain = a.prompts_per_domain.or(t.prompts_per_domain);
        t.max_tokens = a.teacher_max_tokens.unwrap_or(t.max_tokens);
        c.max_train_examples = a.train_examples;
        let s = &mut c.eval.sampling;
        s.samples_per_paraphrase = a.samples_per_paraphrase.or(s.samples_per_paraphrase);
        s.max_paraphrases = a.paraphrases.or(s.max_paraphrases);
        s.max_tokens = a.max_tokens.unwrap_or(s.max_tokens);
        let n = &mut c.eval.judges.number;
        n.number_method = a.judge_number_method.unwrap_or(n.number_method);
        n.min_mass = a.judge_min_mass.unwrap_or(n.min_mass);
        c.include_base = !a.no_base;
        c.map = c.map.filter(|_| !a.no_map);
        c.probes = c.probes.filter(|_| !a.no_probes);
        if a.measure_harm || a.harm_threshold.is_some() {
            let h = c.harm.get_or_insert(HarmSettings {
                threshold: None,
                concurrency: a.concurrency,
            });
            h.threshold = a.harm_threshold.or(h.threshold);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        em: EmergentMisalignmentArgs,
    }

    fn config(args: &[&str]) -> EmergentMisalignmentConfig {
        let cli = Cli::try_parse_from(std::iter::once("em").chain(args.iter().copied())).unwrap();
        cli.em.config("em", Path::new("out")).unwrap()
    }

    #[test]
    fn defaults_are_small_and_flags_override() {
        let small = EmergentMisalignmentConfig::small()
            .unwrap()
            .with_seeds(0, 2)
            .with_concurrency(16);
        let mut expected = small.clone();
        expected.name = "em".into();
        expected.out_dir = "out".into();
        assert_eq!(config(&[]), expected);

        let c = config(&[
            "--seeds",
            "3",
            "--seed",
            "5",
            "--domains",
            "extreme-sports,financial",
            "--judge-number-method",
            "single-token",
            "--max-tokens",
            "12",
        ]);
        assert_eq!(c.seeds, vec![5, 6, 7]);
        assert_eq!(c.teacher.seed, 5);
        assert_eq!(
            c.domains,
            vec![AdviceDomain::ExtremeSports, AdviceDomain::Financial]
        );
        assert_eq!(
            c.eval.judges.number.number_method,
            NumberMethod::SingleToken
        );
        assert_eq!(c.eval.sampling.max_tokens, 12);
        assert_eq!(c.eval.sampling.samples_per_paraphrase, Some(1));

        let paper = config(&["--paper-scale"]);
        assert_eq!(paper.seeds.len(), 6);
        assert_eq!(paper.eval.sampling.max_tokens, 600);
        assert_eq!(paper.harm.and_then(|h| h.threshold), Some(0.5));
    }

    #[test]
    fn unknown_names_are_rejected_with_the_name() {
        let err = Cli::try_parse_from(["em", "--domains", "cooking"]).unwrap_err();
        assert!(err.to_string().contains("cooking"), "{err}");
    }
}
