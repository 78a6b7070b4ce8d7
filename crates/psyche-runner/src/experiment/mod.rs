//! The shape every fine-tuning experiment shares: headline comparisons in one type, run notes,
//! and one writer for `result.json`, `headline.json` and the report.
//!
//! A task crate's experiment returns a result type that implements [`ExperimentResult`]: its
//! [`headline`](ExperimentResult::headline) lists the comparisons the paper is about as
//! [`Headline`]s (each an [`ArmContrast`] from psyche-stats with its label, scale and the
//! paper's effect), and its [`report`](ExperimentResult::report) renders the whole result as a
//! [`Document`]. [`write_outputs`] writes the three files the same way for every experiment, so
//! a replication script reads `headline.json` from any of them without knowing its result type.

use std::path::{Path, PathBuf};

use psyche_stats::{ArmContrast, Stat};
use serde::{Deserialize, Serialize};

use crate::error::RunnerError;
use crate::report::{Document, ReportPaths};

mod render;
pub use render::{headline_table, stat_cell};

/// One headline comparison: treatment arm against control arm over fine-tuning runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    /// A stable key (`"self_minus_cross"`, `"p_yes/neutral"`…), unique within the experiment.
    pub key: String,
    /// The paper's name for the experiment (`"Looking Inward"`).
    pub paper: String,
    /// What is compared, in words a reader of the summary table understands.
    pub comparison: String,
    /// The treatment arm in words (`"self-trained predicting itself"`); empty: the arm's key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub treatment_label: String,
    /// The control arm in words; empty: the arm's key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub control_label: String,
    /// The unit of the values after [`scale`](Self::scale) (`"pp"`, `"P(yes) × 100"`, `""`).
    pub unit: String,
    /// Multiply values by this for display (100 for proportions shown in points).
    pub scale: f64,
    /// What the items within a run are clustered by (`"objects"`, `"questions"`, `"items"`).
    pub clusters: String,
    /// The paper's effect on the same scale as the values (before `scale`), when comparable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_effect: Option<f64>,
    /// The untrained model's value, when it was evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Stat>,
    /// The paper's own result for this comparison, in words with its section
    /// (`"GPT-4o self 49.4 % vs cross 36.6 % (§1.14)"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_result: Option<String>,
    /// Baselines and context a reader needs beside the numbers (a mode baseline, counts of
    /// collapsed runs, a flag that the arms behave alike), one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<String>,
    /// Why the comparison cannot be read either way, when the design rules it out (the two
    /// arms behave alike, so no difference could show): the verdict then states this instead
    /// of a null or an effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uninformative: Option<String>,
    /// The comparison over runs (each arm's mean, the difference with its interval, p-value,
    /// verdict, minimum detectable effect, item-level view), or why there is none.
    pub contrast: ArmContrast,
}

impl Headline {
    /// A headline for `contrast`, with scale 1, no unit, items as clusters.
    pub fn new(
        key: impl Into<String>,
        paper: impl Into<String>,
        comparison: impl Into<String>,
        contrast: ArmContrast,
    ) -> Self {
        Self {
            key: key.into(),
            paper: paper.into(),
            comparison: comparison.into(),
            treatment_label: String::new(),
            control_label: String::new(),
            unit: String::new(),
            scale: 1.0,
            clusters: "items".to_owned(),
            paper_effect: None,
            base: None,
            paper_result: None,
            context: Vec::new(),
            uninformative: None,
            contrast,
        }
    }

    /// The arms in words, for tables.
    #[must_use]
    pub fn labels(mut self, treatment: impl Into<String>, control: impl Into<String>) -> Self {
        self.treatment_label = treatment.into();
        self.control_label = control.into();
        self
    }

    /// The paper's own result, in words with its section.
    #[must_use]
    pub fn paper_result(mut self, result: impl Into<String>) -> Self {
        self.paper_result = Some(result.into());
        self
    }

    /// One sentence of context (a baseline, a caveat).
    #[must_use]
    pub fn context(mut self, sentence: impl Into<String>) -> Self {
        self.context.push(sentence.into());
        self
    }

    /// Marks the comparison uninformative, with why (see [`Headline::uninformative`]).
    #[must_use]
    pub fn uninformative(mut self, why: impl Into<String>) -> Self {
        self.uninformative = Some(why.into());
        self
    }

    /// The treatment arm's label, or its key.
    pub fn treatment_name(&self) -> &str {
        if self.treatment_label.is_empty() {
            &self.contrast.treatment
        } else {
            &self.treatment_label
        }
    }

    /// The control arm's label, or its key.
    pub fn control_name(&self) -> &str {
        if self.control_label.is_empty() {
            &self.contrast.control
        } else {
            &self.control_label
        }
    }

    /// Values shown multiplied by `scale`, in `unit`.
    #[must_use]
    pub fn scaled(mut self, scale: f64, unit: impl Into<String>) -> Self {
        self.scale = scale;
        self.unit = unit.into();
        self
    }

    /// What items are clustered by.
    #[must_use]
    pub fn clusters(mut self, clusters: impl Into<String>) -> Self {
        self.clusters = clusters.into();
        self
    }

    /// The paper's effect (unscaled).
    #[must_use]
    pub fn paper_effect(mut self, effect: f64) -> Self {
        self.paper_effect = Some(effect);
        self
    }

    /// The untrained model's value.
    #[must_use]
    pub fn base(mut self, base: Stat) -> Self {
        self.base = Some(base);
        self
    }
}

/// How a result was made, printed at the top of its report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunNotes {
    /// The command line.
    pub command: String,
    /// The subject model and the fine-tuning engine with its hyperparameters.
    pub setup: String,
    /// Wall-clock time and machine load.
    pub timing: String,
}

/// The result of a fine-tuning experiment.
pub trait ExperimentResult: Serialize {
    /// The comparisons the paper is about, in the order a summary lists them.
    fn headline(&self) -> Vec<Headline>;

    /// The full report.
    fn report(&self, notes: &RunNotes) -> Document;
}

/// Where [`write_outputs`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPaths {
    /// `<dir>/result.json`: the whole result.
    pub result: PathBuf,
    /// `<dir>/headline.json`: the headline comparisons.
    pub headline: PathBuf,
    /// `<dir>/notes.json`: the [`RunNotes`].
    pub notes: PathBuf,
    /// `<dir>/report/<stem>.md` and `.html`.
    pub report: ReportPaths,
}

/// Writes `result.json`, `headline.json`, `notes.json` and the report (`report/<stem>.md`, `.html`, figures)
/// under `dir`, each atomically.
///
/// # Errors
///
/// [`RunnerError::Io`] naming the file that could not be written; [`RunnerError::Report`] when
/// the report cannot be drawn.
pub fn write_outputs<R: ExperimentResult + ?Sized>(
    result: &R,
    notes: &RunNotes,
    dir: impl AsRef<Path>,
    stem: &str,
) -> Result<OutputPaths, RunnerError> {
    let dir = dir.as_ref();
    let write_json = |name: &str, value: &dyn erased::Json| -> Result<PathBuf, RunnerError> {
        let path = dir.join(name);
        let body = value.to_pretty().map_err(|e| RunnerError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        psyche_core::write_atomic(&path, &body).map_err(|source| RunnerError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };
    let result_path = write_json("result.json", &erased::Value(result))?;
    let headline_path = write_json("headline.json", &erased::Value(&result.headline()))?;
    let notes_path = write_json("notes.json", &erased::Value(notes))?;
    let report = result.report(notes).write(dir.join("report"), stem)?;
    Ok(OutputPaths {
        result: result_path,
        headline: headline_path,
        notes: notes_path,
        report,
    })
}

/// Reads the headline comparisons an experiment wrote with [`write_outputs`].
///
/// # Errors
///
/// [`RunnerError::Io`] when the file cannot be read; [`RunnerError::Log`] naming the file,
/// line and field when it is not a headline list.
pub fn read_headline(dir: impl AsRef<Path>) -> Result<Vec<Headline>, RunnerError> {
    read_json(dir.as_ref().join("headline.json"))
}

/// Reads the [`RunNotes`] an experiment wrote with [`write_outputs`].
///
/// # Errors
///
/// As [`read_headline`], for `notes.json`.
pub fn read_notes(dir: impl AsRef<Path>) -> Result<RunNotes, RunnerError> {
    read_json(dir.as_ref().join("notes.json"))
}

fn read_json<T: serde::de::DeserializeOwned>(path: PathBuf) -> Result<T, RunnerError> {
    let text = std::fs::read_to_string(&path).map_err(|source| RunnerError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| RunnerError::Log {
        line: e.line(),
        message: e.to_string(),
        path,
    })
}

mod erased {
    //! Pretty JSON of a value whose type is only known to be `Serialize` (possibly unsized).

    pub(super) trait Json {
        fn to_pretty(&self) -> Result<Vec<u8>, serde_json::Error>;
    }

    pub(super) struct Value<'a, T: ?Sized>(pub(super) &'a T);

    impl<T: serde::Serialize + ?Sized> Json for Value<'_, T> {
        fn to_pretty(&self) -> Result<Vec<u8>, serde_json::Error> {
            serde_json::to_vec_pretty(self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psyche_stats::{ArmData, ArmOptions};

    #[derive(Serialize)]
    struct Toy {
        data: ArmData,
    }

    impl ExperimentResult for Toy {
        fn headline(&self) -> Vec<Headline> {
            let contrast = ArmContrast::of(&self.data, "a", "b", &ArmOptions::new());
            vec![
                Headline::new("a_minus_b", "Toy", "a minus b", contrast)
                    .scaled(100.0, "pp")
                    .clusters("objects")
                    .labels("arm a in words", "")
                    .paper_effect(0.1),
            ]
        }
        fn report(&self, notes: &RunNotes) -> Document {
            Document::new("Toy").paragraph(notes.command.clone())
        }
    }

    #[test]
    fn outputs_round_trip_through_headline_json() {
        let mut data = ArmData::new();
        for seed in 0..3u64 {
            for item in 0..4 {
                let value = 0.5 + 0.01 * seed as f64 + 0.02 * f64::from(item);
                data.item(
                    "a",
                    seed,
                    format!("i{item}"),
                    value + 0.2 + 0.01 * (seed as f64 - 1.0),
                );
                data.item("b", seed, format!("i{item}"), value);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let toy = Toy { data };
        let notes = RunNotes {
            command: "toy --seeds 3".into(),
            ..RunNotes::default()
        };
        let paths = write_outputs(&toy, &notes, dir.path(), "toy").unwrap();
        assert!(paths.result.ends_with("result.json"));
        assert!(
            std::fs::read_to_string(&paths.report.markdown)
                .unwrap()
                .contains("toy --seeds 3")
        );
        let headline = read_headline(dir.path()).unwrap();
        // serde_json reads floats to within one ulp, so compare the parts, not bit for bit.
        assert_eq!(headline.len(), 1);
        assert_eq!(headline[0].key, "a_minus_b");
        assert_eq!(headline[0].clusters, "objects");
        assert_eq!(headline[0].paper_effect, Some(0.1));
        assert_eq!(headline[0].treatment_name(), "arm a in words");
        assert_eq!(headline[0].control_name(), "b");
        assert_eq!(read_notes(dir.path()).unwrap(), notes);
        let difference = headline[0].contrast.difference.value().unwrap();
        assert!((difference - 0.2).abs() < 1e-9, "{difference}");
        let (lo, hi) = headline[0].contrast.difference.interval().unwrap();
        assert!(lo > 0.1 && hi < 0.3, "{lo} {hi}");
    }

    #[test]
    fn malformed_headline_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("headline.json"), "[{\"key\": 1}]").unwrap();
        let err = read_headline(dir.path()).unwrap_err().to_string();
        assert!(err.contains("headline.json:1"), "{err}");
    }
}
