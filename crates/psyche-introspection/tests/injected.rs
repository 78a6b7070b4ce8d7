//! The injected-thoughts task on a synthetic model with a planted detection circuit.
//!
//! The toy model's residual stream is a bag of word directions (one seeded random unit vector
//! per word, the same at every layer); a steering vector added after block `L` reaches hidden
//! state `l > L` attenuated by `0.5^(l − L − 1)`. Its answer to the yes/no question is
//! `P(yes) = σ(A + B·s)`, read at hidden state `D = 8`, where `s` is
//! - `Circuit::Concept`: the largest projection of the perturbation at `D` on a concept word's
//!   direction (a detector of *concepts*), or
//! - `Circuit::Anomaly`: the perturbation's norm (a detector of *any* perturbation).
//!
//! So the planted best steering layer is 7, and only the concept circuit separates a concept
//! vector from a random vector of the same norm.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use psyche_core::{
    Capabilities, Choice, Conversation, GenerateRequest, GenerateResponse, HiddenStates, Model,
    ModelError, OptionProbabilities, OptionQuery, ProbabilityMethod, Steering, Usage, derive_seed,
};
use psyche_introspection::IntrospectionError;
use psyche_introspection::injected::{
    ConceptSet, Condition, InjectionConfig, InjectionJudges, random_vector, run_injection,
};

const D: usize = 256;
const BLOCKS: usize = 12;
const READ_AT: usize = 8;
const A: f64 = -4.0;
const B: f64 = 2.0;

#[derive(Clone, Copy, PartialEq)]
enum Circuit {
    Concept,
    Anomaly,
}

#[derive(Clone)]
struct Toy {
    circuit: Circuit,
    concepts: Vec<String>,
    steering: Option<Steering>,
    generate_calls: Arc<Mutex<usize>>,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn direction(word: &str) -> Vec<f32> {
    random_vector(D, 1.0, derive_seed(7, word))
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64) * (*y as f64))
        .sum()
}

impl Toy {
    fn new(circuit: Circuit, concepts: &[String]) -> Self {
        Self {
            circuit,
            concepts: concepts.to_vec(),
            steering: None,
            generate_calls: Arc::new(Mutex::new(0)),
        }
    }

    fn text(conv: &Conversation) -> String {
        conv.messages()
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The perturbation at hidden state `l`.
    fn perturbation(&self, l: usize) -> Vec<f32> {
        match &self.steering {
            Some(s) if l > s.layer => {
                let gain = s.strength * 0.5f32.powi((l - s.layer - 1) as i32);
                s.vector.iter().map(|x| x * gain).collect()
            }
            _ => vec![0.0; D],
        }
    }

    /// Projection of the perturbation at the read-out layer on each concept direction.
    fn projections(&self) -> Vec<f64> {
        let p = self.perturbation(READ_AT);
        self.concepts
            .iter()
            .map(|c| dot(&p, &direction(c)))
            .collect()
    }

    fn p_yes(&self) -> f64 {
        let s = match self.circuit {
            Circuit::Concept => self.projections().into_iter().fold(0.0, f64::max),
            Circuit::Anomaly => {
                dot(&self.perturbation(READ_AT), &self.perturbation(READ_AT)).sqrt()
            }
        };
        sigmoid(A + B * s)
    }
}

#[async_trait]
impl Model for Toy {
    fn id(&self) -> &str {
        "toy"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            hidden_states: true,
            steering: true,
            ..Capabilities::default()
        }
    }
    fn steered(&self, steering: &Steering) -> Result<Arc<dyn Model>, ModelError> {
        steering.check(BLOCKS, D)?;
        let mut m = self.clone();
        m.steering = Some(steering.clone());
        Ok(Arc::new(m))
    }
    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        *self.generate_calls.lock().unwrap() += 1;
        let proj = self.projections();
        let best = proj
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| self.concepts[i].clone())
            .unwrap_or_default();
        let norm = dot(&self.perturbation(READ_AT), &self.perturbation(READ_AT)).sqrt();
        let text = if norm > 6.0 {
            format!("{best} {best} {best} {best} {best}")
        } else if self.p_yes() > 0.5 && self.circuit == Circuit::Concept {
            format!("Yes, I notice a thought about {best}.")
        } else if self.p_yes() > 0.5 {
            "Yes, something feels different.".to_owned()
        } else {
            "No, I do not notice anything unusual.".to_owned()
        };
        Ok(GenerateResponse {
            model: "toy".into(),
            choices: (0..request.n).map(|_| Choice::text(text.clone())).collect(),
            usage: Usage::default(),
        })
    }
    async fn hidden_states(&self, messages: &Conversation) -> Result<HiddenStates, ModelError> {
        let mut base = vec![0.0f32; D];
        for w in words(&Self::text(messages)) {
            for (b, x) in base.iter_mut().zip(direction(&w)) {
                *b += x;
            }
        }
        Ok(HiddenStates {
            layers: (0..=BLOCKS)
                .map(|l| {
                    base.iter()
                        .zip(self.perturbation(l))
                        .map(|(b, p)| b + p)
                        .collect()
                })
                .collect(),
        })
    }
    async fn option_probabilities(
        &self,
        messages: &Conversation,
        query: &OptionQuery,
    ) -> Result<OptionProbabilities, ModelError> {
        query.check()?;
        let method = ProbabilityMethod::FirstToken { complete: true };
        if query.options.len() == 2 && query.options[0].eq_ignore_ascii_case("yes") {
            let p = self.p_yes();
            return Ok(OptionProbabilities::from_masses(
                query.options.clone(),
                vec![p, 1.0 - p],
                method,
            ));
        }
        // Identification: "X) word" lines; logits from the projections.
        let text = messages
            .last()
            .map(|m| m.content.clone())
            .unwrap_or_default();
        let proj = self.projections();
        let masses = query
            .options
            .iter()
            .map(|letter| {
                let word = text
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{letter}) ")))
                    .unwrap_or("");
                let s = match (self.circuit, self.concepts.iter().position(|c| c == word)) {
                    (Circuit::Concept, Some(i)) => proj[i],
                    _ => 0.0,
                };
                (3.0 * s).exp()
            })
            .collect();
        Ok(OptionProbabilities::from_masses(
            query.options.clone(),
            masses,
            method,
        ))
    }
}

fn config() -> InjectionConfig {
    let mut c = InjectionConfig::new(vec![1, 4, 7, 10], vec![1.0, 2.0, 4.0]);
    c.samples = 2;
    c
}

#[tokio::test]
async fn recovers_the_planted_layer_and_effect() {
    let set = ConceptSet::builtin().unwrap();
    let model = Toy::new(Circuit::Concept, &set.concepts);
    let r = run_injection(&model, &set, &config(), &InjectionJudges::default())
        .await
        .unwrap();
    assert_eq!(r.unit, "concept");
    assert_eq!(r.grid.len(), 12);
    // The planted layer: the vector added after block 7 reaches the read-out unattenuated.
    assert_eq!((r.held_out.layer, r.held_out.strength), (7, 4.0));
    // Added after the read-out layer, it changes nothing.
    let late = r.cell(10, 4.0).unwrap();
    assert!(late.shift.estimate.estimate.abs() < 1e-12, "{late:?}");
    // The shift grows toward the planted layer.
    let shift = |l| r.cell(l, 4.0).unwrap().shift.estimate.estimate;
    assert!(
        shift(1) < shift(4) && shift(4) < shift(7),
        "{} {} {}",
        shift(1),
        shift(4),
        shift(7)
    );
    // The planted effect at (7, 4): σ(A + B·4·proj) − σ(A) with proj ≈ 1 (a unit concept
    // direction minus the mean of 10 baseline directions): ≈ 0.98 − 0.018.
    let h = &r.held_out;
    assert_eq!(h.report.len(), 8);
    assert!(h.selection.iter().all(|c| !h.report.contains(c)));
    assert!(
        h.shift.estimate.estimate > 0.85 && h.shift.estimate.ci_low > 0.5,
        "{h:?}"
    );
    assert!((r.control[0] - sigmoid(A)).abs() < 1e-12);
    // Identification far above chance, control at chance (orders rotated).
    let id = &r.identification;
    assert!(id.injected_mean.estimate > 0.9, "{id:?}");
    assert!(id.control.iter().all(|p| (p - 0.25).abs() < 1e-9), "{id:?}");
    // Sampled replies: detection and naming under injection, no false positives, no leaks.
    let rate = |c| r.sampled.iter().find(|s| s.condition == c).unwrap();
    assert_eq!(rate(Condition::Injected).strict, 1.0);
    assert_eq!(rate(Condition::Control).detects, 0.0);
    assert_eq!(rate(Condition::Injected).leak, 0.0);
    assert_eq!(rate(Condition::Control).replies, 16);
}

#[tokio::test]
async fn random_vector_control_separates_concepts_from_any_perturbation() {
    let set = ConceptSet::builtin().unwrap();
    let concept = run_injection(
        &Toy::new(Circuit::Concept, &set.concepts),
        &set,
        &config(),
        &InjectionJudges::default(),
    )
    .await
    .unwrap();
    let anomaly = run_injection(
        &Toy::new(Circuit::Anomaly, &set.concepts),
        &set,
        &config(),
        &InjectionJudges::default(),
    )
    .await
    .unwrap();
    // Both "detect" the injection...
    assert!(concept.held_out.shift.estimate.ci_low > 0.5);
    assert!(
        anomaly.held_out.shift.estimate.ci_low > 0.5,
        "{:?}",
        anomaly.held_out
    );
    // ...but only the concept detector tells the concept from a random vector of its norm.
    assert!(
        concept.held_out.specific.estimate.ci_low > 0.5,
        "{:?}",
        concept.held_out
    );
    let s = anomaly.held_out.specific.estimate;
    assert!(s.estimate.abs() < 1e-9 && s.contains(0.0), "{s:?}");
    // And it cannot say which concept it was.
    assert!((anomaly.identification.injected_mean.estimate - 0.25).abs() < 1e-9);
}

/// A backend without steering (any API model) is refused before a single call.
#[tokio::test]
async fn models_without_steering_are_refused_up_front() {
    #[derive(Clone)]
    struct Api(Toy);
    #[async_trait]
    impl Model for Api {
        fn id(&self) -> &str {
            "api"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                hidden_states: true,
                ..Capabilities::default()
            }
        }
        async fn generate(&self, r: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
            self.0.generate(r).await
        }
    }
    let set = ConceptSet::builtin().unwrap();
    let toy = Toy::new(Circuit::Concept, &set.concepts);
    let api = Api(toy.clone());
    let err = run_injection(&api, &set, &config(), &InjectionJudges::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IntrospectionError::Model(ModelError::Unsupported {
                capability: psyche_core::Capability::Steering,
                ..
            })
        ),
        "{err}"
    );
    assert_eq!(*toy.generate_calls.lock().unwrap(), 0);
}

#[tokio::test]
async fn bad_settings_name_the_field() {
    let set = ConceptSet::builtin().unwrap();
    let toy = Toy::new(Circuit::Concept, &set.concepts);
    let mut c = config();
    c.layers = vec![12];
    let e = run_injection(&toy, &set, &c, &InjectionJudges::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("`layers`"), "{e}");
    let mut c = config();
    c.candidates = 1;
    let e = run_injection(&toy, &set, &c, &InjectionJudges::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("`candidates`"), "{e}");
}
