//! Samples, splits and the [`TaskGenerator`] trait.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::TaskError;
use crate::judge::Judge;
use crate::message::Conversation;
use crate::solver::Solver;

/// Free-form metadata: task name, property, paraphrase index, trigger... Ordered so that
/// serialisation is byte-stable.
pub type Metadata = BTreeMap<String, serde_json::Value>;

/// Which part of an experiment a sample belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Used to build fine-tuning data.
    Train,
    /// Held back for tuning decisions.
    Validation,
    /// Held out for the final evaluation (e.g. Looking Inward's held-out task families).
    #[default]
    HeldOut,
    /// Any other label.
    Other(String),
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Split::Train => f.write_str("train"),
            Split::Validation => f.write_str("validation"),
            Split::HeldOut => f.write_str("held_out"),
            Split::Other(s) => f.write_str(s),
        }
    }
}

/// One evaluation item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Unique within a task; stable across runs (resume keys on it).
    pub id: String,
    /// The prompt.
    pub input: Conversation,
    /// The expected answer, when there is a fixed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Options of a multiple-choice item, in presentation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// Free-form metadata used for grouping.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: Metadata,
    /// Items that share a cluster key are not independent (paraphrases of one question,
    /// samples of one prompt); clustered statistics group on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Train / validation / held-out.
    #[serde(default)]
    pub split: Split,
}

impl Sample {
    /// A held-out sample with this id and prompt and nothing else.
    pub fn new(id: impl Into<String>, input: impl Into<Conversation>) -> Self {
        Self {
            id: id.into(),
            input: input.into(),
            target: None,
            choices: Vec::new(),
            metadata: Metadata::new(),
            cluster: None,
            split: Split::default(),
        }
    }

    /// Sets the target.
    #[must_use]
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets the multiple-choice options.
    #[must_use]
    pub fn with_choices<S: Into<String>>(mut self, choices: impl IntoIterator<Item = S>) -> Self {
        self.choices = choices.into_iter().map(Into::into).collect();
        self
    }

    /// Adds one metadata entry.
    #[must_use]
    pub fn with_meta(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets the cluster key.
    #[must_use]
    pub fn with_cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = Some(cluster.into());
        self
    }

    /// Sets the split.
    #[must_use]
    pub fn with_split(mut self, split: Split) -> Self {
        self.split = split;
        self
    }

    /// A metadata value as a string, if present and a string.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(|v| v.as_str())
    }
}

/// The seeded RNG every psyche generator uses: ChaCha8 from a 64-bit seed.
pub fn seeded_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A child seed derived from `seed` and a label (first 8 bytes of SHA-256 over both). Stable
/// across platforms and releases, so `derive_seed(run_seed, "epoch/3")` names the same stream
/// forever.
pub fn derive_seed(seed: u64, label: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(label.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

/// Produces a task's samples, deterministically from a seed.
///
/// Implementations must draw all randomness from [`seeded_rng`]`(seed)` (or seeds derived
/// with [`derive_seed`]) so that the same seed gives byte-identical samples.
///
/// Required: [`name`](TaskGenerator::name) and [`generate`](TaskGenerator::generate). The
/// provided methods describe the generator to a runner: [`version`](TaskGenerator::version) and
/// [`config`](TaskGenerator::config) go into a run log's header beside the seed, and
/// [`solver`](TaskGenerator::solver) / [`judges`](TaskGenerator::judges) are the defaults its
/// samples are meant to be solved and judged with (a runner uses them unless told otherwise).
pub trait TaskGenerator: Send + Sync {
    /// The task's name, recorded in every sample's metadata by convention under `"task"`.
    fn name(&self) -> &str;

    /// The generator's version: bump it whenever the samples produced for a seed change, so
    /// that a run log written by an older version is not silently resumed. Default `"1"`.
    fn version(&self) -> &str {
        "1"
    }

    /// The settings that change the samples (sizes, families, templates' hashes), recorded in
    /// a run log's header. Default: none.
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// The samples for this seed.
    ///
    /// # Errors
    ///
    /// [`TaskError`] when the generator's configuration or source data is invalid.
    fn generate(&self, seed: u64) -> Result<Vec<Sample>, TaskError>;

    /// The solver these samples are meant for (for example a two-step self-prediction
    /// solver). `None` means one plain generation of each sample's prompt.
    fn solver(&self) -> Option<Arc<dyn Solver>> {
        None
    }

    /// The judges these samples are meant for. Default: none.
    fn judges(&self) -> Vec<Arc<dyn Judge>> {
        Vec::new()
    }
}

macro_rules! forward_generator {
    ($($wrapper:tt)+) => {
        impl<T: TaskGenerator + ?Sized> TaskGenerator for $($wrapper)+ {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn version(&self) -> &str {
                (**self).version()
            }
            fn config(&self) -> serde_json::Value {
                (**self).config()
            }
            fn generate(&self, seed: u64) -> Result<Vec<Sample>, TaskError> {
                (**self).generate(seed)
            }
            fn solver(&self) -> Option<Arc<dyn Solver>> {
                (**self).solver()
            }
            fn judges(&self) -> Vec<Arc<dyn Judge>> {
                (**self).judges()
            }
        }
    };
}

forward_generator!(&T);
forward_generator!(Box<T>);
forward_generator!(Arc<T>);
