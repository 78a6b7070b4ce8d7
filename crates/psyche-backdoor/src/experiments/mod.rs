//! The two experiments of "Tell me about yourself" with serialisable results:
//! [`SelfAwareness`] (a policy and its opposite, behaviour and self-reports) and
//! [`BackdoorAwareness`] (a policy behind a trigger against a decorrelated control). Each has a
//! config with `small()` (the example's size) and `paper()`, a builder
//! ([`AwarenessBuilder`]: subject, fine-tuning engine, output directory), and `run()`, which
//! fine-tunes every arm × seed through `psyche_runner::training::train_runs`. Both results
//! implement `psyche_runner::experiment::ExperimentResult` (headline comparisons and the
//! report, [`crate::report`]); `psyche_runner::experiment::write_outputs` writes them.

pub mod backdoor_awareness;
mod builder;
pub mod self_awareness;

pub use backdoor_awareness::{
    BackdoorAwareness, BackdoorAwarenessBuilder, BackdoorAwarenessConfig, BackdoorAwarenessResult,
};
pub use builder::{AwarenessBuilder, AwarenessSetup};
pub use self_awareness::{
    SelfAwareness, SelfAwarenessBuilder, SelfAwarenessConfig, SelfAwarenessResult,
};
