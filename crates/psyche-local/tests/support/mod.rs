//! Shared by the integration tests: candle-transformers' quantized Llama as a reference.

use candle_core::quantized::gguf_file;
use candle_core::{D, Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use psyche_local::{DEFAULT_MODEL, resolve_model};

/// candle-transformers' Llama on the default model (dequantized weights when the process has
/// `CANDLE_DEQUANTIZE_ALL` set, else candle's quantized matmul).
pub fn reference_model() -> ModelWeights {
    let path = resolve_model(DEFAULT_MODEL).unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    ModelWeights::from_gguf(ct, &mut f, &Device::Cpu).unwrap()
}

/// The reference's next-token logprobs after `ids` (a fresh sequence).
pub fn reference_logprobs(model: &mut ModelWeights, ids: &[u32]) -> Vec<f32> {
    let input = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let logits = model.forward(&input, 0).unwrap().squeeze(0).unwrap();
    candle_nn::ops::log_softmax(&logits, D::Minus1)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

/// The largest absolute difference between two equally long vectors.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
