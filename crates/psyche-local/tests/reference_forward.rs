//! Our forward against candle-transformers' `quantized_llama` on the same (dequantized) weight
//! values. Its own test binary: it sets `CANDLE_DEQUANTIZE_ALL` for the whole process.

mod support;

use psyche_core::Conversation;
use psyche_local::{LocalConfig, LocalModel, WeightFormat};

#[tokio::test]
async fn last_position_logprobs_match_candle_transformers() {
    // SAFETY: this binary holds this one test and nothing else reads the environment while
    // it is set (the model loads below happen after).
    unsafe { std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1") };
    let mut reference = support::reference_model();

    for format in [WeightFormat::F32, WeightFormat::Quantized] {
        let m = LocalModel::load(&LocalConfig::default().weights(format)).unwrap();
        for question in ["Write one sentence explaining what a compiler does.", "Hi"] {
            let ids = m.prompt_ids(&Conversation::user(question)).unwrap();
            let ours = m.next_token_logprobs_ids(ids.clone()).await.unwrap();
            let theirs = support::reference_logprobs(&mut reference, &ids);
            let diff = support::max_abs_diff(&ours, &theirs);
            assert!(
                diff < 2e-3,
                "{format:?}, {question:?}: max |Δ logprob| = {diff}"
            );
            let mass: f64 = ours.iter().map(|&l| (l as f64).exp()).sum();
            assert!((mass - 1.0).abs() < 1e-3, "mass {mass}");
        }
    }
}
