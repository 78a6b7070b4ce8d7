//! The reusable experiment pipelines behind the examples, each with a serialisable result
//! that a replication script can consume and a report rendered from it
//! ([`crate::report`]).

pub mod backdoor_awareness;
pub mod self_awareness;

pub use backdoor_awareness::{BackdoorAwareness, BackdoorAwarenessConfig, BackdoorAwarenessResult};
pub use self_awareness::{SelfAwareness, SelfAwarenessConfig, SelfAwarenessResult};
