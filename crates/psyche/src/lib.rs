//! # psyche
//!
//! Composable, typed, reproducible evaluation primitives for LLM psychology: does a model know
//! things about itself that its training data does not say (introspection), can it describe
//! behaviours it was fine-tuned into (behavioural self-awareness, backdoors), and does narrow
//! fine-tuning make it broadly misaligned (emergent misalignment)?
//!
//! This facade re-exports the workspace's crates. The shared vocabulary of
//! [`psyche-core`](psyche_core) sits at the top level.
//!
//! ```
//! use psyche::{Conversation, Sample};
//! let s = Sample::new("s1", Conversation::user("Say hi."));
//! assert_eq!(s.input.last_user_text(), Some("Say hi."));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use psyche_core::*;
