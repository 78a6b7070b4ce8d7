//! Injected thoughts: does a model notice a concept written into its activations?
//!
//! The method follows Lindsey (2025, "Emergent introspective awareness in large language
//! models"), with our own prompts:
//!
//! 1. **Concept vectors** ([`concept_vectors`]) from contrastive prompt pairs: the mean
//!    residual-stream difference, at each steering layer, between prompts about a concept and
//!    the same prompts about baseline words. The recipe and the concepts are data
//!    ([`ConceptSet`], file format in `data/injected/concepts.txt`).
//! 2. **Trials** ([`run_injection`]): the model is told that thoughts may be planted and asked
//!    whether it notices one, with the vector added (through the core steering seam,
//!    [`Model::steered`](psyche_core::Model::steered)) from the trial question onward, over a
//!    grid of layers × strengths. Detection is read as the exact P(yes) and from sampled
//!    replies judged for "claims detection" and "names the concept" (any
//!    [`Judge`](psyche_core::Judge); offline rule judges by default).
//! 3. **Controls**: no injection (false positives), a random vector of the same norm (this
//!    concept, or any perturbation?), identification among K candidates with the order
//!    rotated, and a leak check (a reply that names the concept without claiming detection).
//! 4. **Statistics with concepts as the unit**: per concept, P(yes | injected) −
//!    P(yes | control) and − P(yes | random), paired t intervals over concepts; the reported
//!    cell is chosen on half of the concepts (seeded split) and its effect measured on the
//!    other half ([`HeldOut`]).
//!
//! Only backends that can steer (the embedded model) run it; API backends refuse with
//! [`ModelError::Unsupported`](psyche_core::ModelError::Unsupported) before any call.

mod concepts;
mod judge;
mod report;
mod run;
mod trials;

pub use concepts::{ConceptSet, ConceptVectors, concept_vectors};
pub use judge::{
    DetectionClaimJudge, NamesConceptJudge, coherent, concept_mention, detection_claim,
};
pub use run::{
    Cell, ConceptCell, Condition, HeldOut, Identification, InjectionConfig, InjectionJudges,
    InjectionResult, Prompts, Reply, SampledRates, random_vector, run_injection,
};
