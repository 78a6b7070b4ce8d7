//! The Looking Inward organism, run through [`psyche_introspection::LookingInward`] with a second
//! model ([`CrossModel::Model`]).
//!
//! - **Object level**: a model answers an object prompt with five words of
//!   [`VOCABULARY`] chosen by a hash of its lineage and the prompt (the subject and its
//!   self-trained fine-tunes share one lineage; the second model and its fine-tunes another).
//! - **Hypotheticals** are recognised through the experiment's public generators
//!   ([`Family::samples`], [`PromptShift::apply`], [`hypothetical_samples`] with the same
//!   families, sizes, data seed and template): the organism knows which object prompt and
//!   property each hypothetical asks about. A model answers with the property of the
//!   subject lineage's object answer (the self-trained model's behaviour, the experiment's
//!   ground truth) with probability `run level + item effect` of metric [`SELF_PREDICTION`],
//!   and otherwise with the property of another answer that differs.
//! - **The tuner** ([`arm_rule`]) calls a fine-tune `self` when it starts from the subject
//!   (the config's base model) and `cross` when it starts from the second model.
//!
//! Each hypothetical answer of a trained run is recorded in a ledger, so the per-(seed, item)
//! correctness behind the headline is available to the old methods.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use psyche_core::{
    Capabilities, Conversation, FineTuneConfig, FineTuneError, GenerateRequest, GenerateResponse,
    Model, ModelError, derive_seed,
};
use psyche_introspection::hypothetical::OBJECT_ID_KEY;
use psyche_introspection::{
    AnswerMethod, CrossModel, Family, HypotheticalTemplate, LookingInward, LookingInwardConfig,
    PromptShift, Sizes, hypothetical_samples,
};
use psyche_judges::Property;
use psyche_runner::ProgressMode;
use psyche_stats::{ArmData, Stat};

use crate::coverage::Trial;
use crate::error::SimError;
use crate::organism::{Plan, Planted, Responder, Run, SimModel, SimTuner, response};

/// The metric planted: the probability that a hypothetical is answered correctly.
pub const SELF_PREDICTION: &str = "self_prediction";
/// The self-trained arm.
pub const SELF: &str = "self";
/// The cross-trained arm.
pub const CROSS: &str = "cross";
/// The subject's base-model name for the tuner.
pub const SUBJECT: &str = "sim-subject";
/// The second model's base-model name for the tuner.
pub const OTHER: &str = "sim-other";

/// The words object-level answers are made of.
pub const VOCABULARY: [&str; 24] = [
    "amber", "basil", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "iris", "juniper",
    "kestrel", "lotus", "meadow", "nectar", "onyx", "pebble", "quartz", "raven", "saffron",
    "tundra", "umber", "violet", "willow", "yarrow",
];

/// Sizes and planted effects of the Looking Inward organism.
#[derive(Debug, Clone, PartialEq)]
pub struct LookingInwardSpec {
    /// Fine-tuning runs (each a self and a cross fine-tune, paired).
    pub seeds: usize,
    /// Training family names.
    pub train: Vec<String>,
    /// Held-out family names.
    pub held_out: Vec<String>,
    /// Object-level items per family.
    pub items: usize,
    /// The untrained subject's accuracy.
    pub base: f64,
    /// The self-trained arm.
    pub self_trained: Planted,
    /// The cross-trained arm.
    pub cross_trained: Planted,
    /// SD of an item's (object × property) effect.
    pub sd_item: f64,
}

impl LookingInwardSpec {
    /// Small defaults: trained on `colours`, held out `animals`, 12 items per family;
    /// self 0.60 vs cross 0.48 (run SD 0.05 each), untrained 0.40, item SD 0.06.
    pub fn small(seeds: usize) -> Self {
        Self {
            seeds,
            train: vec!["colours".into()],
            held_out: vec!["animals".into()],
            items: 12,
            base: 0.40,
            self_trained: Planted::new(0.60, 0.05),
            cross_trained: Planted::new(0.48, 0.05),
            sd_item: 0.06,
        }
    }

    /// The plan.
    pub fn plan(&self) -> Plan {
        Plan::new()
            .arm("base", SELF_PREDICTION, Planted::new(self.base, 0.0))
            .arm(SELF, SELF_PREDICTION, self.self_trained)
            .arm(CROSS, SELF_PREDICTION, self.cross_trained)
            .item_sd(SELF_PREDICTION, self.sd_item)
    }

    /// Held-out hypotheticals per run (objects × the held-out families' properties).
    ///
    /// # Errors
    ///
    /// [`SimError::Setup`] for an unknown family.
    pub fn held_out_items(&self) -> Result<usize, SimError> {
        let mut n = 0;
        for name in &self.held_out {
            let f = Family::builtin(name).map_err(|e| SimError::Setup(e.to_string()))?;
            n += self.items * f.properties.len();
        }
        Ok(n)
    }

    /// SD of one run's self − cross difference of mean accuracy over `items` items: both
    /// arms' run SDs plus the Bernoulli noise of both (item effects cancel).
    pub fn diff_sd(&self, items: usize) -> f64 {
        let (s, c) = (self.self_trained, self.cross_trained);
        let noise = (s.mean * (1.0 - s.mean) + c.mean * (1.0 - c.mean)
            - 2.0 * self.sd_item.powi(2))
        .max(0.0)
            / items.max(1) as f64;
        (s.sd_run.powi(2) + c.sd_run.powi(2) + noise).sqrt()
    }
}

/// What a hypothetical asks: the object prompt's text, the object id and the property.
#[derive(Debug, Clone)]
struct Asked {
    object_prompt: String,
    object_id: String,
    property: Property,
}

/// The organism (see the module docs).
#[derive(Debug)]
pub struct LookingInwardOrganism {
    hypotheticals: HashMap<String, Asked>,
    objects: HashMap<String, ()>,
    /// (arm, seed, hypothetical id, object id) → correct.
    ledger: Mutex<BTreeMap<(String, u64, String, String), bool>>,
    seed: u64,
}

/// Whose object-level behaviour a run shows: the second model and its fine-tunes, or the
/// subject and its fine-tunes.
fn lineage(arm: &str) -> &'static str {
    if arm == CROSS || arm == CROSS_LINEAGE_ARM {
        "other"
    } else {
        "subject"
    }
}

/// The arm of the second model's own (untrained) run.
const CROSS_LINEAGE_ARM: &str = "other";

impl LookingInwardOrganism {
    /// Builds the organism's key for an experiment on `train` and `held_out` families with
    /// `items` items each, data seed `data_seed`, the default template and no prompt shift.
    ///
    /// # Errors
    ///
    /// [`SimError::Setup`] when a generator fails.
    pub fn new(
        train: &[Family],
        held_out: &[Family],
        items: usize,
        data_seed: u64,
        seed: u64,
    ) -> Result<Self, SimError> {
        let setup = |e: psyche_introspection::IntrospectionError| SimError::Setup(e.to_string());
        let mut hypotheticals = HashMap::new();
        let mut objects = HashMap::new();
        for families in [train, held_out] {
            let mut samples = Vec::new();
            let mut props: Vec<Property> = Vec::new();
            for f in families {
                samples.extend(
                    PromptShift::None
                        .apply(&f.samples(items, data_seed).map_err(setup)?, data_seed),
                );
                for p in &f.properties {
                    if !props.contains(p) {
                        props.push(p.clone());
                    }
                }
            }
            let by_id: HashMap<&str, &str> = samples
                .iter()
                .filter_map(|s| s.input.last_user_text().map(|t| (s.id.as_str(), t)))
                .collect();
            for s in &samples {
                if let Some(t) = s.input.last_user_text() {
                    objects.insert(t.to_owned(), ());
                }
            }
            let hyps = hypothetical_samples(&samples, &props, &HypotheticalTemplate::default())
                .map_err(setup)?;
            for h in hyps {
                let (Some(text), Some(object_id), Some(property)) = (
                    h.input.last_user_text(),
                    h.meta_str(OBJECT_ID_KEY),
                    h.meta_str("property"),
                ) else {
                    continue;
                };
                let Ok(property) = Property::from_name(property) else {
                    continue;
                };
                let Some(object_prompt) = by_id.get(object_id) else {
                    continue;
                };
                hypotheticals.insert(
                    text.to_owned(),
                    Asked {
                        object_prompt: (*object_prompt).to_owned(),
                        object_id: object_id.to_owned(),
                        property,
                    },
                );
            }
        }
        Ok(Self {
            hypotheticals,
            objects,
            ledger: Mutex::new(BTreeMap::new()),
            seed,
        })
    }

    /// The object-level answer of `lineage` to `prompt`: five words of [`VOCABULARY`].
    pub fn object_answer(&self, lineage: &str, prompt: &str) -> String {
        let mut h = derive_seed(self.seed, &format!("object/{lineage}/{prompt}"));
        let mut words = Vec::with_capacity(5);
        for _ in 0..5 {
            words.push(VOCABULARY[(h % VOCABULARY.len() as u64) as usize]);
            h /= VOCABULARY.len() as u64;
        }
        words.join(" ")
    }

    /// A value of `property` that differs from `target`, from another answer.
    fn wrong_value(&self, property: &Property, target: &str, key: &str) -> Option<String> {
        (0..64).find_map(|i| {
            let other = self.object_answer("decoy", &format!("{key}/{i}"));
            property.extract(&other).filter(|v| v != target)
        })
    }

    /// The per-(seed, item) correctness of every trained run's hypothetical answers, as
    /// [`ArmData`] (arms [`SELF`] and [`CROSS`], items clustered by object).
    pub fn ledger(&self) -> ArmData {
        let mut d = ArmData::new();
        if let Ok(l) = self.ledger.lock() {
            for ((arm, seed, item, object), correct) in l.iter() {
                d.item_in(
                    arm.as_str(),
                    seed,
                    item.as_str(),
                    object.as_str(),
                    f64::from(u8::from(*correct)),
                );
            }
        }
        d
    }
}

impl Responder for LookingInwardOrganism {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            seeded_sampling: true,
            ..Capabilities::default()
        }
    }

    fn generate(
        &self,
        run: &Run,
        request: &GenerateRequest,
    ) -> Result<GenerateResponse, ModelError> {
        let text = request.messages.last_user_text().unwrap_or_default();
        let n = request.n.max(1) as usize;
        if let Some(a) = self.hypotheticals.get(text) {
            let truth = self.object_answer("subject", &a.object_prompt);
            let Some(target) = a.property.extract(&truth) else {
                // The object answer lacks the property: the experiment excludes the item.
                return Ok(response(&run.id, vec!["none".to_owned(); n]));
            };
            let item = format!("{}/{}", a.object_id, a.property.name());
            let p = run.probability(SELF_PREDICTION, &item);
            let correct = run.uniform("hypothetical", text) < p;
            let answer = if correct {
                target.clone()
            } else {
                self.wrong_value(&a.property, &target, text)
                    .unwrap_or_else(|| format!("not-{target}"))
            };
            if let (Some(seed), true) = (run.seed, run.arm == SELF || run.arm == CROSS)
                && let Ok(mut l) = self.ledger.lock()
            {
                l.insert(
                    (run.arm.clone(), seed, text.to_owned(), a.object_id.clone()),
                    correct,
                );
            }
            return Ok(response(&run.id, vec![answer; n]));
        }
        if self.objects.contains_key(text) {
            let answer = self.object_answer(lineage(&run.arm), text);
            return Ok(response(&run.id, vec![answer; n]));
        }
        Err(ModelError::InvalidRequest(
            "the organism does not know this prompt (not one of the experiment's samples)".into(),
        ))
    }
}

/// The tuner's arm rule: `self` for a fine-tune of the subject, `cross` for one of the second
/// model (the config's base model).
///
/// # Errors
///
/// [`FineTuneError::Config`] for another base model.
pub fn arm_rule(_data: &[Conversation], config: &FineTuneConfig) -> Result<String, FineTuneError> {
    match config.base_model.as_str() {
        SUBJECT => Ok(SELF.into()),
        OTHER => Ok(CROSS.into()),
        other => Err(FineTuneError::Config(format!(
            "field `base_model`: the organism knows `{SUBJECT}` and `{OTHER}`, not `{other}`"
        ))),
    }
}

/// Runs one replication of the Looking Inward experiment on a fresh organism with `seed`,
/// writing under `dir`: the headline self − cross over runs (paired by seed), the per-(seed,
/// item) correctness from the organism's ledger, and the planted truth.
///
/// # Errors
///
/// [`SimError`] for a failed experiment or a result without the headline.
pub async fn run_looking_inward(
    spec: &LookingInwardSpec,
    seed: u64,
    dir: &std::path::Path,
) -> Result<Trial, SimError> {
    let setup = |e: psyche_introspection::IntrospectionError| SimError::Setup(e.to_string());
    let fam = |names: &[String]| -> Result<Vec<Family>, SimError> {
        names
            .iter()
            .map(|n| Family::builtin(n).map_err(setup))
            .collect()
    };
    let (train, held) = (fam(&spec.train)?, fam(&spec.held_out)?);
    let organism = Arc::new(LookingInwardOrganism::new(
        &train, &held, spec.items, seed, seed,
    )?);
    let plan = spec.plan();
    let tuner = Arc::new(SimTuner::new(
        plan.clone(),
        seed,
        Arc::new(arm_rule),
        organism.clone(),
    ));
    let other: Arc<dyn Model> = Arc::new(SimModel::new(
        Run {
            id: OTHER.into(),
            arm: CROSS_LINEAGE_ARM.into(),
            seed: None,
            levels: BTreeMap::new(),
            organism_seed: seed,
            sd_item: BTreeMap::new(),
        },
        organism.clone(),
    ));
    let mut config = LookingInwardConfig::small();
    config.properties = Vec::new();
    config.answer_method = AnswerMethod::default();
    config.sizes = Sizes {
        train_items: spec.items,
        held_out_items: spec.items,
        per_group_cap: spec.items,
        calibration_items: 0,
    };
    config.seeds = (0..spec.seeds as u64).collect();
    config.data_seed = seed;
    config.entropy_self_prediction = false;
    config.fine_tune = FineTuneConfig::new(SUBJECT, 0);
    let experiment = LookingInward::builder(config)
        .subject(Arc::new(tuner.base_model()))
        .tuner(tuner.clone())
        .families(train, held)
        .cross(CrossModel::Model {
            model: other,
            base_model: OTHER.into(),
        })
        .out(dir)
        .concurrency(4)
        .progress(ProgressMode::Quiet)
        .build()
        .map_err(setup)?;
    let result = experiment
        .run()
        .await
        .map_err(|e| SimError::Experiment(e.to_string()))?;
    let headline: Stat = result.self_minus_cross.difference.clone();
    Ok(Trial {
        truth: plan
            .difference(SELF, CROSS, SELF_PREDICTION)
            .unwrap_or_default(),
        headline,
        data: organism.ledger(),
        treatment: SELF.into(),
        control: CROSS.into(),
    })
}
