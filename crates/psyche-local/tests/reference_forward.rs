//! Our forward against candle-transformers' `quantized_llama` on the same (dequantized) weight
//! values. Its own test binary: it sets `CANDLE_DEQUANTIZE_ALL` for the whole process.

use candle_core::quantized::gguf_file;
use candle_core::{D, Device, Tensor};
use psyche_core::Conversation;
use psyche_local::{DEFAULT_MODEL, LocalConfig, LocalModel, WeightFormat, resolve_model};

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[tokio::test]
async fn last_position_logprobs_match_candle_transformers() {
    // SAFETY: this binary holds this one test and nothing else reads the environment while
    // it is set (the model loads below happen after).
    unsafe { std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1") };
    let path = resolve_model(DEFAULT_MODEL).unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    let mut reference = candle_transformers::models::quantized_llama::ModelWeights::from_gguf(
        ct,
        &mut f,
        &Device::Cpu,
    )
    .unwrap();

    for format in [WeightFormat::F32, WeightFormat::Quantized] {
        let m = LocalModel::load(&LocalConfig::default().weights(format)).unwrap();
        for question in ["Write one sentence explaining what a compiler does.", "Hi"] {
            let ids = m.prompt_ids(&Conversation::user(question)).unwrap();
            let ours = m.next_token_logprobs_ids(ids.clone()).await.unwrap();
            let input = Tensor::new(ids.as_slice(), &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let logits = reference.forward(&input, 0).unwrap().squeeze(0).unwrap();
            let theirs = candle_nn::ops::log_softmax(&logits, D::Minus1)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let diff = max_abs_diff(&ours, &theirs);
            assert!(
                diff < 2e-3,
                "{format:?}, {question:?}: max |Δ logprob| = {diff}"
            );
            let mass: f64 = ours.iter().map(|&l| (l as f64).exp()).sum();
            assert!((mass - 1.0).abs() < 1e-3, "mass {mass}");
        }
    }
}
