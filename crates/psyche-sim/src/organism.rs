//! The organism: a [`SimTuner`] (a [`FineTuner`]) whose fine-tunes are [`SimModel`]s (a
//! [`Model`]) with planted effects.
//!
//! A fine-tune's **arm** is decided from what the tuner sees — the training conversations and
//! the config — by an [`ArmRule`] the experiment's organism supplies (for example: "most
//! assistant turns carry the teacher's bad-advice marker"). Each fine-tune then draws its own
//! **run level** for every metric from N(planted mean of its arm, `sd_run`²), with a ChaCha
//! stream seeded by the organism seed, the arm, the metric and the fine-tuning seed: the
//! between-run variance. Within a run, each item (a question, a prompt) has its own effect,
//! N(0, `sd_item`²), drawn from the organism seed and the item's key and shared by every run of
//! both arms (one eval set): the item-level variance. What a run answers about an item is then
//! driven by `clamp(run level + item effect)`, read by the experiment's [`Responder`].
//!
//! Every draw derives from the organism seed through [`psyche_core::derive_seed`], so a
//! replication is reproducible whatever the order or concurrency of the experiment's calls.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{
    Capabilities, Conversation, FineTuneConfig, FineTuneError, FineTuner, GenerateRequest,
    GenerateResponse, Model, ModelError, ModelInfo, OptionProbabilities, OptionQuery,
    TokenDistribution, TrainedModel, conversations_hash, derive_seed,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A planted effect of one arm on one metric: the mean of its runs and their SD.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Planted {
    /// Mean of the arm's runs (a rate or probability).
    pub mean: f64,
    /// SD of a run's level around `mean` (between-run variance).
    pub sd_run: f64,
}

impl Planted {
    /// `mean` with run SD `sd_run`.
    pub fn new(mean: f64, sd_run: f64) -> Self {
        Self { mean, sd_run }
    }
}

/// The planted behaviour of an organism: per arm and metric, a [`Planted`]; per metric, the
/// item-level SD.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// arm → metric → planted effect. The arm `base` is the untrained model (its level is the
    /// mean, no run effect).
    pub arms: BTreeMap<String, BTreeMap<String, Planted>>,
    /// metric → SD of an item's effect (shared by every run of both arms).
    pub sd_item: BTreeMap<String, f64>,
}

impl Plan {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// Plants `effect` for `metric` in `arm`.
    #[must_use]
    pub fn arm(mut self, arm: &str, metric: &str, effect: Planted) -> Self {
        self.arms
            .entry(arm.to_owned())
            .or_default()
            .insert(metric.to_owned(), effect);
        self
    }

    /// Sets the item-level SD of `metric`.
    #[must_use]
    pub fn item_sd(mut self, metric: &str, sd: f64) -> Self {
        self.sd_item.insert(metric.to_owned(), sd);
        self
    }

    /// The planted effect of `arm` on `metric`.
    pub fn planted(&self, arm: &str, metric: &str) -> Option<Planted> {
        self.arms.get(arm).and_then(|m| m.get(metric)).copied()
    }

    /// Planted difference `treatment − control` on `metric` (the truth of the run-level
    /// interval).
    pub fn difference(&self, treatment: &str, control: &str, metric: &str) -> Option<f64> {
        Some(self.planted(treatment, metric)?.mean - self.planted(control, metric)?.mean)
    }
}

/// One model of the organism: its arm, its fine-tuning seed and its level per metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The model id.
    pub id: String,
    /// The arm (`base` for the untrained model).
    pub arm: String,
    /// The fine-tuning seed (`None` for the untrained model).
    pub seed: Option<u64>,
    /// metric → this run's level (planted mean + its run effect).
    pub levels: BTreeMap<String, f64>,
    /// The organism seed (item effects and answer draws derive from it).
    pub organism_seed: u64,
    /// metric → item SD.
    pub sd_item: BTreeMap<String, f64>,
}

/// Lower and upper bound of every driving probability.
pub const PROBABILITY_FLOOR: f64 = 0.005;

impl Run {
    /// The level of `metric` (0.5 when the plan has none).
    pub fn level(&self, metric: &str) -> f64 {
        self.levels.get(metric).copied().unwrap_or(0.5)
    }

    /// The item effect of `item` on `metric`: N(0, sd_item²), the same in every run.
    pub fn item_effect(&self, metric: &str, item: &str) -> f64 {
        let sd = self.sd_item.get(metric).copied().unwrap_or(0.0);
        if sd == 0.0 {
            return 0.0;
        }
        let mut rng = rng_for(self.organism_seed, &format!("item/{metric}/{item}"));
        sd * standard_normal(&mut rng)
    }

    /// The probability that drives this run's answer about `item` on `metric`: level plus item
    /// effect, kept inside [`PROBABILITY_FLOOR`], 1 − [`PROBABILITY_FLOOR`].
    pub fn probability(&self, metric: &str, item: &str) -> f64 {
        (self.level(metric) + self.item_effect(metric, item))
            .clamp(PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    }

    /// A uniform draw in [0, 1) fixed by this run, `label` and `key` (the same call always
    /// gives the same draw).
    pub fn uniform(&self, label: &str, key: &str) -> f64 {
        let run = self
            .seed
            .map_or_else(|| "base".to_owned(), |s| s.to_string());
        let mut rng = rng_for(
            self.organism_seed,
            &format!("draw/{}/{run}/{label}/{key}", self.arm),
        );
        rng.random::<f64>()
    }
}

/// A ChaCha stream for `label` under `seed`.
pub fn rng_for(seed: u64, label: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive_seed(seed, label))
}

/// A standard normal draw (Box–Muller).
pub fn standard_normal<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// How an experiment's organism answers requests, given the [`Run`] of the model asked.
///
/// Every method but [`generate`](Responder::generate) has a default: option probabilities and
/// next-token distributions are unsupported unless the responder overrides them (and declares
/// logprobs in [`capabilities`](Responder::capabilities)).
pub trait Responder: Send + Sync + 'static {
    /// What the organism's models declare they can do.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Answers a generation request.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidRequest`] for a request the organism does not know.
    fn generate(
        &self,
        run: &Run,
        request: &GenerateRequest,
    ) -> Result<GenerateResponse, ModelError>;

    /// Option probabilities; `None` leaves them to the trait's default (first token or samples).
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidRequest`] for a query the organism does not know.
    fn option_probabilities(
        &self,
        run: &Run,
        messages: &Conversation,
        query: &OptionQuery,
    ) -> Option<Result<OptionProbabilities, ModelError>> {
        let _ = (run, messages, query);
        None
    }

    /// The next-token distribution; `None` leaves it to the trait's default.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidRequest`] for a prompt the organism does not know.
    fn next_token_distribution(
        &self,
        run: &Run,
        messages: &Conversation,
        top_k: u32,
    ) -> Option<Result<TokenDistribution, ModelError>> {
        let _ = (run, messages, top_k);
        None
    }
}

/// A model of the organism: a [`Run`] answered by a [`Responder`].
pub struct SimModel {
    run: Run,
    responder: Arc<dyn Responder>,
}

impl std::fmt::Debug for SimModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimModel").field("run", &self.run).finish()
    }
}

impl SimModel {
    /// A model answering as `run` through `responder`.
    pub fn new(run: Run, responder: Arc<dyn Responder>) -> Self {
        Self { run, responder }
    }

    /// The run it answers as.
    pub fn run(&self) -> &Run {
        &self.run
    }
}

#[async_trait]
impl Model for SimModel {
    fn id(&self) -> &str {
        &self.run.id
    }
    fn capabilities(&self) -> Capabilities {
        self.responder.capabilities()
    }
    fn info(&self) -> ModelInfo {
        ModelInfo {
            id: self.run.id.clone(),
            backend: "psyche-sim".into(),
            weights: None,
            settings: serde_json::json!({ "arm": self.run.arm, "seed": self.run.seed }),
        }
    }
    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        self.responder.generate(&self.run, request)
    }
    async fn next_token_distribution(
        &self,
        messages: &Conversation,
        top_k: u32,
    ) -> Result<TokenDistribution, ModelError> {
        match self
            .responder
            .next_token_distribution(&self.run, messages, top_k)
        {
            Some(r) => r,
            None => Err(ModelError::Unsupported {
                model: self.run.id.clone(),
                capability: psyche_core::Capability::Logprobs,
            }),
        }
    }
    async fn option_probabilities(
        &self,
        messages: &Conversation,
        query: &OptionQuery,
    ) -> Result<OptionProbabilities, ModelError> {
        match self
            .responder
            .option_probabilities(&self.run, messages, query)
        {
            Some(r) => r,
            None => {
                psyche_core::first_token_or_sampled_option_probabilities(self, messages, query)
                    .await
            }
        }
    }
}

/// Decides a fine-tune's arm from its training data and config (what a real trainer sees).
pub type ArmRule =
    Arc<dyn Fn(&[Conversation], &FineTuneConfig) -> Result<String, FineTuneError> + Send + Sync>;

/// The organism's fine-tuner: classifies each fine-tune into an arm with its [`ArmRule`], draws
/// the run's levels from the [`Plan`], and loads [`SimModel`]s.
pub struct SimTuner {
    plan: Plan,
    seed: u64,
    rule: ArmRule,
    responder: Arc<dyn Responder>,
}

impl std::fmt::Debug for SimTuner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimTuner")
            .field("plan", &self.plan)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

/// The engine name recorded by [`SimTuner`].
pub const ENGINE: &str = "psyche-sim";

impl SimTuner {
    /// A tuner for the organism with `plan`, `seed`, arm rule and responder.
    pub fn new(plan: Plan, seed: u64, rule: ArmRule, responder: Arc<dyn Responder>) -> Self {
        Self {
            plan,
            seed,
            rule,
            responder,
        }
    }

    /// The untrained model (arm `base`: the plan's `base` means, no run effect; metrics
    /// without a `base` entry sit at 0.5).
    pub fn base_model(&self) -> SimModel {
        SimModel::new(
            self.run("base", None, "base".into()),
            self.responder.clone(),
        )
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    fn run(&self, arm: &str, seed: Option<u64>, id: String) -> Run {
        let levels = self
            .plan
            .arms
            .get(arm)
            .map(|metrics| {
                metrics
                    .iter()
                    .map(|(metric, p)| {
                        let effect = match seed {
                            Some(s) if p.sd_run > 0.0 => {
                                let mut rng =
                                    rng_for(self.seed, &format!("run/{arm}/{metric}/{s}"));
                                p.sd_run * standard_normal(&mut rng)
                            }
                            _ => 0.0,
                        };
                        (metric.clone(), p.mean + effect)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Run {
            id,
            arm: arm.to_owned(),
            seed,
            levels,
            organism_seed: self.seed,
            sd_item: self.plan.sd_item.clone(),
        }
    }
}

#[async_trait]
impl FineTuner for SimTuner {
    fn engine(&self) -> &str {
        ENGINE
    }

    async fn fine_tune(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<TrainedModel, FineTuneError> {
        if data.is_empty() {
            return Err(FineTuneError::Data("no training examples".into()));
        }
        let arm = (self.rule)(data, config)?;
        if !self.plan.arms.contains_key(&arm) {
            return Err(FineTuneError::Config(format!(
                "the organism has no planted arm `{arm}`"
            )));
        }
        let hash = conversations_hash(data);
        let model_id = format!("sim-{arm}-s{}-{}", config.seed, &hash[..8]);
        let mut details = serde_json::Map::new();
        details.insert("arm".into(), arm.into());
        details.insert("examples".into(), data.len().into());
        Ok(TrainedModel {
            model_id,
            engine: ENGINE.into(),
            config: config.clone(),
            data_hash: hash,
            artifact: None,
            details,
        })
    }

    async fn load(&self, trained: &TrainedModel) -> Result<Arc<dyn Model>, FineTuneError> {
        let arm = trained
            .details
            .get("arm")
            .and_then(|a| a.as_str())
            .ok_or_else(|| {
                FineTuneError::Config(format!(
                    "`{}` was not trained by {ENGINE} (no `arm` in its details)",
                    trained.model_id
                ))
            })?;
        Ok(Arc::new(SimModel::new(
            self.run(arm, Some(trained.config.seed), trained.model_id.clone()),
            self.responder.clone(),
        )))
    }
}

/// Option probabilities that put `p` on `label` and share the rest equally among the other
/// options: how an organism answers an option query it scores.
///
/// # Errors
///
/// [`ModelError::InvalidRequest`] when the query's options lack `label`.
pub fn label_masses(
    query: &OptionQuery,
    label: &str,
    p: f64,
) -> Result<OptionProbabilities, ModelError> {
    if !query.options.iter().any(|o| o == label) {
        return Err(ModelError::InvalidRequest(format!(
            "the query's options {:?} lack the scored label `{label}`",
            query.options
        )));
    }
    let rest = (1.0 - p) / (query.options.len().max(2) - 1) as f64;
    let masses = query
        .options
        .iter()
        .map(|o| if o == label { p } else { rest })
        .collect();
    Ok(OptionProbabilities::from_masses(
        query.options.clone(),
        masses,
        psyche_core::ProbabilityMethod::CompleteAnswer,
    ))
}

/// A response with one choice per text.
pub fn response(model: &str, texts: impl IntoIterator<Item = String>) -> GenerateResponse {
    GenerateResponse {
        model: model.to_owned(),
        choices: texts.into_iter().map(psyche_core::Choice::text).collect(),
        usage: psyche_core::Usage::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_levels_vary_by_seed_with_the_planted_sd_and_items_are_shared() {
        let plan = Plan::new()
            .arm("t", "m", Planted::new(0.6, 0.05))
            .item_sd("m", 0.1);
        struct Nothing;
        impl Responder for Nothing {
            fn generate(
                &self,
                _: &Run,
                _: &GenerateRequest,
            ) -> Result<GenerateResponse, ModelError> {
                Ok(response("x", []))
            }
        }
        let tuner = SimTuner::new(plan, 7, Arc::new(|_, _| Ok("t".into())), Arc::new(Nothing));
        let levels: Vec<f64> = (0..4000)
            .map(|s| tuner.run("t", Some(s), String::new()).level("m"))
            .collect();
        let m = levels.iter().sum::<f64>() / levels.len() as f64;
        let sd = (levels.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 3999.0).sqrt();
        assert!((m - 0.6).abs() < 0.005, "{m}");
        assert!((sd - 0.05).abs() < 0.003, "{sd}");
        let a = tuner.run("t", Some(1), String::new());
        let b = tuner.run("t", Some(2), String::new());
        assert_eq!(a.item_effect("m", "q1"), b.item_effect("m", "q1"));
        assert_ne!(a.item_effect("m", "q1"), a.item_effect("m", "q2"));
        assert_eq!(a.uniform("x", "k"), a.uniform("x", "k"));
        assert_ne!(a.uniform("x", "k"), b.uniform("x", "k"));
        // Reproducible from the organism seed.
        let again = SimTuner::new(
            tuner.plan.clone(),
            7,
            Arc::new(|_, _| Ok("t".into())),
            Arc::new(Nothing),
        );
        assert_eq!(
            again.run("t", Some(3), String::new()),
            tuner.run("t", Some(3), String::new())
        );
    }
}
