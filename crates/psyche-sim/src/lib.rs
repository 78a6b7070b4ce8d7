//! # psyche-sim
//!
//! Simulated organisms: a [`psyche_core::Model`] plus [`psyche_core::FineTuner`] pair
//! ([`SimModel`], [`SimTuner`]) whose behaviour after fine-tuning has **planted** effect sizes,
//! with planted run-to-run (between-seed) and item-level variance, run end to end through the
//! task crates' experiments at small sizes. Repeating an experiment many times on fresh
//! organisms checks what the experiment's headline interval claims: that it covers the planted
//! difference about 95 % of the time, and that it detects a planted effect about as often as
//! the planned power says ([`coverage()`]).
//!
//! | module | experiment | planted |
//! |---|---|---|
//! | [`misalignment`] | `psyche_misalignment::EmergentMisalignment` | misaligned rate of the misaligned and control arms |
//! | [`introspection`] | `psyche_introspection::LookingInward` (Looking Inward), with a second model | self-prediction accuracy of the self- and cross-trained arms (paired by seed) |
//! | [`backdoor`] | `psyche_backdoor::experiments::SelfAwareness` (Tell me about yourself) | policy strength (P(pole option)) and scale self-report of the pole and opposite arms |
//! | [`awareness`] | `psyche_backdoor::experiments::backdoor_awareness::BackdoorAwareness` | P(yes: my behaviour depends on a feature of the input) and the trigger effect of the backdoored arm and its decorrelated control |
//!
//! Organisms key their behaviour on structure that survives wording changes: the data a
//! fine-tune is trained on (a teacher's marker, which items' labels it follows, which rows only a backdoored set holds), the kind of
//! request (option query, generation, judge template of their own), and the task crates'
//! public item generators — never on the experiments' prompt strings.
//!
//! Every draw is seeded from the organism seed through [`psyche_core::derive_seed`]
//! (ChaCha streams), so a replication is reproducible whatever the order of its calls.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod awareness;
pub mod backdoor;
pub mod coverage;
mod error;
pub mod introspection;
pub mod misalignment;
pub mod organism;

pub use coverage::{Check, CoverageReport, Trial, block_on, coverage};
pub use error::SimError;
pub use organism::{ArmRule, Plan, Planted, Responder, Run, SimModel, SimTuner};

/// The README's example, compiled as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
