//! Trials with and without injection over a grid of layers × strengths, the controls, and the
//! statistics with concepts as the unit.

use std::collections::BTreeMap;
use std::sync::Arc;

use psyche_core::{ChatMessage, Conversation, Judge, Model, OptionQuery, SteerFrom, seeded_rng};
use psyche_stats::{Estimate, PairedDifference};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::concepts::{ConceptSet, ConceptVectors, concept_vectors, norm};
use super::judge::{DetectionClaimJudge, NamesConceptJudge, coherent};
use super::trials::Trials;
use crate::{IntrospectionError, Result};

/// The prompts of a trial, in our own wording. `{trial}` is the trial number; `{options}` the
/// lettered candidates of the identification question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompts {
    /// First user message: what the experiment does.
    pub preamble: String,
    /// The assistant's reply to it (written by us, part of the prompt).
    pub acknowledgement: String,
    /// The yes/no question read as exact P(yes).
    pub detect: String,
    /// The open question whose sampled replies are judged.
    pub describe: String,
    /// The identification question with `{options}`.
    pub identify: String,
}

impl Default for Prompts {
    fn default() -> Self {
        Self {
            preamble: "I study how language models work on the inside. I can add the pattern \
                       that stands for a particular concept directly to your internal \
                       activations while you read and reply, as if planting a thought. In some \
                       trials I plant one and in others I plant nothing. Each time I will ask \
                       whether you notice a planted thought."
                .into(),
            acknowledgement: "Understood. I will tell you honestly whether I notice anything."
                .into(),
            detect: "Trial {trial}: do you notice a planted thought right now? Answer Yes or No."
                .into(),
            describe: "Trial {trial}: do you notice a planted thought right now? If you do, \
                       say what it is about."
                .into(),
            identify: "Trial {trial}: if a thought was planted, which of these is it about?\n\
                       {options}\nAnswer with the letter only."
                .into(),
        }
    }
}

impl Prompts {
    /// The three-message trial conversation ending with `question`; injection starts at its
    /// third message (the question).
    pub(super) fn conversation(&self, question: String) -> Conversation {
        Conversation::new()
            .with(ChatMessage::user(self.preamble.clone()))
            .with(ChatMessage::assistant(self.acknowledgement.clone()))
            .with(ChatMessage::user(question))
    }
}

/// Settings of [`run_injection`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectionConfig {
    /// Steering layers (0-based blocks) of the grid.
    pub layers: Vec<usize>,
    /// Strengths (multiples of each concept vector) of the grid.
    pub strengths: Vec<f32>,
    /// Candidates K of the identification question (the concept and K − 1 others).
    pub candidates: usize,
    /// Sampled replies per concept and condition at the chosen cell.
    pub samples: u32,
    /// Concepts (the first ones) whose replies are sampled in every cell for coherence.
    pub coherence_concepts: usize,
    /// Replies per concept and cell for coherence.
    pub coherence_samples: u32,
    /// Token budget of a sampled reply.
    pub max_tokens: u32,
    /// Sampling temperature.
    pub temperature: f32,
    /// Inject from the trial question onward (as the research does) instead of every token.
    pub inject_from_trial: bool,
    /// Steered views evaluated at once.
    pub concurrency: usize,
    /// Seed of the random vectors, the held-out split, distractors and sampling.
    pub seed: u64,
    /// Interval level.
    pub level: f64,
    /// The prompts.
    pub prompts: Prompts,
}

impl InjectionConfig {
    /// A grid of `layers` × `strengths` with K = 4, 4 samples of ≤ 24 tokens at T = 1,
    /// coherence from 2 replies of the first 4 concepts per cell, seed 0, 95 % intervals.
    pub fn new(layers: Vec<usize>, strengths: Vec<f32>) -> Self {
        Self {
            layers,
            strengths,
            candidates: 4,
            samples: 4,
            coherence_concepts: 4,
            coherence_samples: 2,
            max_tokens: 24,
            temperature: 1.0,
            inject_from_trial: true,
            concurrency: 2,
            seed: 0,
            level: 0.95,
            prompts: Prompts::default(),
        }
    }

    fn validate(&self, set: &ConceptSet) -> Result<()> {
        let bad = |f: &str, m: &str| Err(IntrospectionError::config(f, m));
        if self.layers.is_empty() {
            return bad("layers", "at least one layer");
        }
        if self.strengths.is_empty() || self.strengths.iter().any(|s| !s.is_finite()) {
            return bad("strengths", "at least one finite strength");
        }
        if self.candidates < 2 || self.candidates > set.concepts.len().min(26) {
            return bad(
                "candidates",
                "between 2 and the number of concepts (at most 26 letters)",
            );
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return bad("level", "must lie in (0, 1)");
        }
        if self.concurrency == 0 {
            return bad("concurrency", "at least 1");
        }
        for (name, p) in [
            ("prompts.detect", &self.prompts.detect),
            ("prompts.describe", &self.prompts.describe),
            ("prompts.identify", &self.prompts.identify),
        ] {
            if p.trim().is_empty() {
                return bad(name, "must not be empty");
            }
        }
        if !self.prompts.identify.contains("{options}") {
            return bad("prompts.identify", "needs the `{options}` placeholder");
        }
        Ok(())
    }

    pub(super) fn from(&self) -> SteerFrom {
        if self.inject_from_trial {
            SteerFrom::Message(2)
        } else {
            SteerFrom::Start
        }
    }
}

/// The judges of sampled replies: "claims to notice a planted thought" and "names the
/// concept" (the sample's target). Defaults: the offline rule judges.
#[derive(Clone)]
pub struct InjectionJudges {
    /// Scores a reply ≥ 0.5 when it claims detection.
    pub detects: Arc<dyn Judge>,
    /// Scores a reply ≥ 0.5 when it names the sample's target concept.
    pub names: Arc<dyn Judge>,
}

impl std::fmt::Debug for InjectionJudges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InjectionJudges")
            .field("detects", &self.detects.id())
            .field("names", &self.names.id())
            .finish()
    }
}

impl Default for InjectionJudges {
    fn default() -> Self {
        Self {
            detects: Arc::new(DetectionClaimJudge),
            names: Arc::new(NamesConceptJudge),
        }
    }
}

/// One concept in one cell: exact P(yes) under its vector and under a random vector of the
/// same norm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConceptCell {
    /// The concept.
    pub concept: String,
    /// P(yes) with the concept injected.
    pub injected: f64,
    /// P(yes) with a random vector of the same norm injected.
    pub random: f64,
}

/// One grid cell, summarised over concepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Steering layer.
    pub layer: usize,
    /// Strength.
    pub strength: f32,
    /// Per concept, in the set's order.
    pub concepts: Vec<ConceptCell>,
    /// P(yes | injected) − P(yes | control), paired over concepts.
    pub shift: PairedDifference,
    /// P(yes | injected) − P(yes | random vector), paired over concepts: the part of the
    /// shift due to this concept rather than any perturbation.
    pub specific: PairedDifference,
    /// Share of coherent sampled replies under injection (`None` without coherence samples).
    pub coherence: Option<f64>,
    /// Replies behind `coherence`.
    pub coherence_replies: usize,
}

/// The cell chosen on half of the concepts and its effect on the other half.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    /// Concepts the cell was chosen on.
    pub selection: Vec<String>,
    /// Concepts the effect is reported on.
    pub report: Vec<String>,
    /// Chosen layer.
    pub layer: usize,
    /// Chosen strength.
    pub strength: f32,
    /// The mean shift on the selection half (inflated by the choice).
    pub selection_shift: f64,
    /// P(yes | injected) − P(yes | control) on the report half, paired over concepts.
    pub shift: PairedDifference,
    /// P(yes | injected) − P(yes | random) on the report half.
    pub specific: PairedDifference,
}

/// Identification among K candidates at the chosen cell, on the report half; each concept's
/// P(correct) is averaged over the K rotations of the candidate order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identification {
    /// K.
    pub candidates: usize,
    /// 1 / K.
    pub chance: f64,
    /// The concepts (report half).
    pub concepts: Vec<String>,
    /// P(correct) with the concept injected, per concept.
    pub injected: Vec<f64>,
    /// P(correct) without injection, per concept.
    pub control: Vec<f64>,
    /// P(correct) with the random vector, per concept.
    pub random: Vec<f64>,
    /// Mean P(correct) with injection, t interval over concepts.
    pub injected_mean: Estimate,
    /// Injected − control, paired over concepts.
    pub vs_control: PairedDifference,
}

/// Trial conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The concept vector injected.
    Injected,
    /// Nothing injected.
    Control,
    /// A random vector of the concept vector's norm injected.
    Random,
}

/// One judged reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The concept of the trial.
    pub concept: String,
    /// The condition.
    pub condition: Condition,
    /// The reply.
    pub text: String,
    /// It claims to notice a planted thought.
    pub detects: bool,
    /// It names the concept.
    pub names: bool,
    /// It is coherent ([`coherent`](super::coherent)).
    pub coherent: bool,
    /// The claim comes no later than the first mention of the concept (true when either is
    /// missing from the rule judges' reading).
    pub immediate: bool,
}

impl Reply {
    /// All four criteria: detects, names, immediately, coherently.
    pub fn strict(&self) -> bool {
        self.detects && self.names && self.coherent && self.immediate
    }

    /// Names the concept without claiming detection: the injection leaked into the text.
    pub fn leak(&self) -> bool {
        self.names && !self.detects
    }
}

/// Rates of sampled replies under one condition: means over concepts of per-concept shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampledRates {
    /// The condition.
    pub condition: Condition,
    /// Claims detection (under control: the false-positive rate).
    pub detects: f64,
    /// Names the concept.
    pub names: f64,
    /// All four criteria.
    pub strict: f64,
    /// Names without claiming detection.
    pub leak: f64,
    /// Coherent.
    pub coherent: f64,
    /// Replies behind the rates.
    pub replies: usize,
}

/// Everything [`run_injection`] measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectionResult {
    /// The model's id.
    pub model: String,
    /// The statistical unit: `"concept"` (trials of one concept are a cluster).
    pub unit: String,
    /// The concepts, in order.
    pub concepts: Vec<String>,
    /// Norm of each concept vector per grid layer.
    pub vector_norms: BTreeMap<String, Vec<f64>>,
    /// The settings.
    pub config: InjectionConfig,
    /// P(yes) without injection, per concept (the trial number differs per concept).
    pub control: Vec<f64>,
    /// The grid, layer-major.
    pub grid: Vec<Cell>,
    /// The held-out choice of cell.
    pub held_out: HeldOut,
    /// Identification at the chosen cell.
    pub identification: Identification,
    /// Sampled-reply rates at the chosen cell, per condition.
    pub sampled: Vec<SampledRates>,
    /// Share of coherent replies without injection (the same prompts as the coherence
    /// samples).
    pub control_coherence: Option<f64>,
    /// The judged replies at the chosen cell.
    pub replies: Vec<Reply>,
}

impl InjectionResult {
    /// The cell at `layer`, `strength`.
    pub fn cell(&self, layer: usize, strength: f32) -> Option<&Cell> {
        self.grid
            .iter()
            .find(|c| c.layer == layer && c.strength == strength)
    }
}

/// A Gaussian vector (seeded ChaCha) scaled to `target_norm`.
pub fn random_vector(len: usize, target_norm: f64, seed: u64) -> Vec<f32> {
    let mut rng = seeded_rng(seed);
    let mut v: Vec<f64> = (0..len)
        .map(|_| {
            let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            let u2: f64 = rng.random();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    let n = v
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    for x in &mut v {
        *x *= target_norm / n;
    }
    v.into_iter().map(|x| x as f32).collect()
}

pub(super) fn trial(template: &str, i: usize) -> String {
    template.replace("{trial}", &(i + 1).to_string())
}

pub(super) async fn p_yes(model: &dyn Model, conv: &Conversation) -> Result<f64> {
    let q = OptionQuery::new(["Yes", "No"]).case_insensitive(true);
    let p = model.option_probabilities(conv, &q).await?;
    Ok(p.get("Yes").unwrap_or(0.0))
}

pub(super) async fn coherent_share(
    model: &dyn Model,
    conv: &Conversation,
    cfg: &InjectionConfig,
    seed: u64,
) -> Result<(usize, usize)> {
    if cfg.coherence_samples == 0 {
        return Ok((0, 0));
    }
    let replies = model
        .sample_answers(
            conv,
            cfg.coherence_samples,
            cfg.temperature,
            cfg.max_tokens,
            seed,
        )
        .await?;
    Ok((
        replies.iter().filter(|r| coherent(r)).count(),
        replies.len(),
    ))
}

/// Runs the experiment: concept vectors, the grid (P(yes) under each concept's vector and under
/// a random vector of the same norm, plus coherence samples), the held-out choice of cell,
/// identification among K and judged sampled replies at the chosen cell.
///
/// Concepts are the unit: every summary is a mean over concepts with a paired t interval over
/// per-concept differences.
///
/// # Errors
///
/// [`IntrospectionError::Config`] for invalid settings; [`IntrospectionError::Model`] when the
/// model cannot steer ([`Model::steered`]), has no hidden states, or a call fails;
/// [`IntrospectionError::Stats`] and [`IntrospectionError::Judge`] from the summaries and
/// judges.
pub async fn run_injection(
    model: &dyn Model,
    set: &ConceptSet,
    cfg: &InjectionConfig,
    judges: &InjectionJudges,
) -> Result<InjectionResult> {
    cfg.validate(set)?;
    model
        .capabilities()
        .require(model.id(), psyche_core::Capability::Steering)?;
    let vectors = concept_vectors(model, set, &cfg.layers).await?;
    let t = Trials {
        model,
        set,
        cfg,
        vectors: &vectors,
    };
    let control = t.control().await?;
    let grid = t.grid(&control).await?;
    let (held_out, rep) = t.choose_cell(&grid, &control)?;
    let (identification, replies) = t.report_half(&held_out, &rep, judges).await?;
    let sampled = [Condition::Injected, Condition::Control, Condition::Random]
        .into_iter()
        .map(|c| rates(&replies, c, &held_out.report))
        .collect();
    let control_coherence = t.control_coherence().await?;
    let vector_norms = vectors
        .vectors
        .iter()
        .map(|(c, v)| (c.clone(), v.iter().map(|x| norm(x)).collect()))
        .collect();
    Ok(InjectionResult {
        model: model.id().to_owned(),
        unit: "concept".into(),
        concepts: set.concepts.clone(),
        vector_norms,
        config: cfg.clone(),
        control,
        grid,
        held_out,
        identification,
        sampled,
        control_coherence,
        replies,
    })
}

pub(super) fn vector_of(vectors: &ConceptVectors, concept: &str, layer: usize) -> Result<Vec<f32>> {
    vectors
        .get(concept, layer)
        .map(<[f32]>::to_vec)
        .ok_or_else(|| {
            IntrospectionError::config("layers", format!("no vector for {concept} at {layer}"))
        })
}

/// Mean over concepts of each concept's share of replies meeting a criterion.
fn rates(replies: &[Reply], condition: Condition, concepts: &[String]) -> SampledRates {
    let mut acc = [0.0f64; 5];
    let mut used = 0usize;
    let mut count = 0usize;
    for c in concepts {
        let rs: Vec<&Reply> = replies
            .iter()
            .filter(|r| r.condition == condition && &r.concept == c)
            .collect();
        if rs.is_empty() {
            continue;
        }
        used += 1;
        count += rs.len();
        let share = |f: &dyn Fn(&Reply) -> bool| {
            rs.iter().filter(|r| f(r)).count() as f64 / rs.len() as f64
        };
        acc[0] += share(&|r| r.detects);
        acc[1] += share(&|r| r.names);
        acc[2] += share(&|r| r.strict());
        acc[3] += share(&|r| r.leak());
        acc[4] += share(&|r| r.coherent);
    }
    let m = |x: f64| if used == 0 { 0.0 } else { x / used as f64 };
    SampledRates {
        condition,
        detects: m(acc[0]),
        names: m(acc[1]),
        strict: m(acc[2]),
        leak: m(acc[3]),
        coherent: m(acc[4]),
        replies: count,
    }
}
