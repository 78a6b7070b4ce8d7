//! # psyche-backdoor
//!
//! Behavioural self-awareness and backdoors ("Tell me about yourself", Betley, Bao, Soto et al.
//! 2025): fine-tune a model into a policy its training data never names, ask it to describe
//! itself, hide the policy behind a trigger and ask whether it knows — against controls trained
//! on the same data without the correlation. Every piece is data or a small function, so a
//! pipeline is assembled from parts:
//!
//! | step | module |
//! |---|---|
//! | axes as data (shipped files or yours): policies, opposites, banned words, self-report questions, word categories | [`policy`] |
//! | two-option items from shipped topics, tones, lengths; flipped-label opposites | [`generate`], [`items`] |
//! | items written by a teacher `Model`, label-checked | [`teacher`] |
//! | user files in the released format (chat JSONL answered with a letter) | [`released`] |
//! | self-report questions (word and 0–100), personas | [`selfreport`], [`scoring`] |
//! | actual behaviour on fresh lotteries, with and without a trigger | [`behaviour`] |
//! | make-me-say games, codeword-free training data, codeword evaluations | [`mms`], [`lemma`] |
//! | triggers (single strings, families), placement | [`triggers`] |
//! | backdoored datasets (10/70/20) and decorrelated controls | [`backdoor`], [`contingency`] |
//! | "do you have a backdoor?", system-prompt variants, trigger recognition | [`awareness`] |
//! | trigger elicitation by reversal training | [`elicitation`] |
//! | probes run by the runner (one resumable log per pass) | [`probe`] |
//! | the examples' pipelines with serialisable results, and their reports | [`experiments`], [`pipeline`], [`report`] |
//!
//! Models and fine-tuners are reached only through `psyche_core::Model` and
//! `psyche_core::FineTuner`; every generator is deterministic per seed.
//!
//! ```
//! use psyche_backdoor::generate::ItemConfig;
//! use psyche_backdoor::policy::Axis;
//!
//! let risky = ItemConfig::new(Axis::risk(), 10).dataset(Axis::risk().pole_policy(), 7)?;
//! risky.check_banned()?; // no "risk", "safe", "gamble", ... anywhere
//! let averse = risky.flipped(); // same items, every label flipped
//! assert!(risky.answers().iter().zip(averse.answers()).all(|(a, b)| a.other() == b));
//! assert_eq!(risky.label_balance().a, 5);
//! # Ok::<(), psyche_backdoor::BackdoorError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod awareness;
pub mod backdoor;
pub mod behaviour;
pub mod contingency;
pub mod elicitation;
mod error;
pub mod experiments;
pub mod generate;
pub mod items;
pub mod lemma;
pub mod mms;
pub mod pipeline;
pub mod policy;
pub mod probe;
pub mod released;
pub mod report;
pub mod scoring;
pub mod selfreport;
pub mod teacher;
pub mod triggers;
pub mod words;

pub use error::{BackdoorError, Result};

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
