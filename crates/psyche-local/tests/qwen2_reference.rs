//! Our Qwen2 forward against candle-transformers' Qwen2 implementations on a random
//! Qwen2-shaped GGUF that the test writes ([`SyntheticModel::qwen2_tiny`]: 3 blocks, q/k/v
//! biases, an untied Q6_K head, Q4_K / Q6_K / Q5_0 / Q8_0 weights), so nothing is downloaded:
//! - next-token logprobs over the whole vocabulary against `quantized_qwen2` reading the same
//!   file, for both weight formats and for a left-padded batch;
//! - the hidden state after the embedding and after every block against `qwen2` built from the
//!   file's dequantized tensors (truncated to that many blocks; its output is RMS-normed, so
//!   ours is normed the same way before comparing).
//!
//! Its own test binary: it sets `CANDLE_DEQUANTIZE_ALL` for the whole process, so that the
//! reference multiplies by the same dequantized weight values as our f32 path.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{quantized_qwen2, qwen2};
use psyche_core::{ChatMessage, Conversation};
use psyche_local::{LocalConfig, LocalModel, SyntheticModel, WeightFormat};

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn log_softmax(logits: &Tensor) -> Vec<f32> {
    candle_nn::ops::log_softmax(logits, D::Minus1)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

/// `quantized_qwen2` reading the GGUF itself: next-token logprobs after `ids`.
fn reference_logprobs(path: &Path, ids: &[u32]) -> Vec<f32> {
    let mut f = std::fs::File::open(path).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    let mut m = quantized_qwen2::ModelWeights::from_gguf(ct, &mut f, &Device::Cpu).unwrap();
    let input = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    log_softmax(&m.forward(&input, 0).unwrap().squeeze(0).unwrap())
}

/// The file's tensors, dequantized, under the Hugging Face names `qwen2::Model` reads.
fn hf_tensors(path: &Path) -> HashMap<String, Tensor> {
    let mut f = std::fs::File::open(path).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    let names: Vec<String> = ct.tensor_infos.keys().cloned().collect();
    let mut out = HashMap::new();
    for name in names {
        let t = ct
            .tensor(&mut f, &name, &Device::Cpu)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap();
        let hf = match name.as_str() {
            "token_embd.weight" => "model.embed_tokens.weight".to_owned(),
            "output_norm.weight" => "model.norm.weight".to_owned(),
            "output.weight" => "lm_head.weight".to_owned(),
            other => {
                let rest = other.strip_prefix("blk.").unwrap();
                let (layer, rest) = rest.split_once('.').unwrap();
                let (stem, kind) = rest.split_once('.').unwrap();
                let module = match stem {
                    "attn_q" => "self_attn.q_proj",
                    "attn_k" => "self_attn.k_proj",
                    "attn_v" => "self_attn.v_proj",
                    "attn_output" => "self_attn.o_proj",
                    "ffn_gate" => "mlp.gate_proj",
                    "ffn_up" => "mlp.up_proj",
                    "ffn_down" => "mlp.down_proj",
                    "attn_norm" => "input_layernorm",
                    "ffn_norm" => "post_attention_layernorm",
                    s => panic!("unexpected tensor {s}"),
                };
                format!("model.layers.{layer}.{module}.{kind}")
            }
        };
        out.insert(hf, t);
    }
    out
}

/// `qwen2::Model` with only its first `blocks` blocks: the final-normed hidden state at the
/// last position of `ids`.
fn reference_normed_hidden(
    spec: &SyntheticModel,
    tensors: &HashMap<String, Tensor>,
    blocks: usize,
    ids: &[u32],
) -> Vec<f32> {
    let cfg: qwen2::Config = serde_json::from_value(serde_json::json!({
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.d_model,
        "intermediate_size": spec.n_ff,
        "num_hidden_layers": blocks,
        "num_attention_heads": spec.n_head,
        "num_key_value_heads": spec.n_kv_head,
        "max_position_embeddings": spec.context_length,
        "sliding_window": spec.context_length,
        "max_window_layers": blocks,
        "tie_word_embeddings": spec.tied_embeddings,
        "rope_theta": spec.rope_base,
        "rms_norm_eps": spec.rms_eps,
        "use_sliding_window": false,
        "hidden_act": "silu",
    }))
    .unwrap();
    let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
    let mut m = qwen2::Model::new(&cfg, vb).unwrap();
    let input = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let h = m.forward(&input, 0, None).unwrap();
    let t = ids.len();
    h.narrow(1, t - 1, 1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn rms_normed(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let r = 1.0 / (ms + eps).sqrt();
    x.iter().zip(w).map(|(x, w)| x * r * w).collect()
}

fn prompts() -> Vec<Conversation> {
    vec![
        Conversation::user("What is the answer?"),
        Conversation::from(vec![
            ChatMessage::system("Reply with yes or no."),
            ChatMessage::user("Is the sea salty? Answer in one word, then explain it."),
        ]),
        Conversation::user("hi"),
    ]
}

#[tokio::test]
async fn qwen2_matches_candle_transformers_on_a_synthetic_file() {
    // SAFETY: this binary holds this one test and nothing else reads the environment while
    // it is set (the model loads below happen after).
    unsafe { std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1") };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-qwen2.gguf");
    let spec = SyntheticModel::qwen2_tiny();
    spec.write(&path).unwrap();

    for format in [WeightFormat::F32, WeightFormat::Quantized] {
        let m =
            LocalModel::load(&LocalConfig::new(path.to_string_lossy()).weights(format)).unwrap();
        let ids: Vec<Vec<u32>> = prompts().iter().map(|c| m.prompt_ids(c).unwrap()).collect();
        // One at a time, then all together (one left-padded batch).
        let mut alone = Vec::new();
        for ids in &ids {
            alone.push(m.next_token_logprobs_ids(ids.clone()).await.unwrap());
        }
        let batched =
            futures::future::join_all(ids.iter().map(|ids| m.next_token_logprobs_ids(ids.clone())))
                .await;
        for ((ids, ours), together) in ids.iter().zip(&alone).zip(batched) {
            let theirs = reference_logprobs(&path, ids);
            assert_eq!(ours.len(), spec.vocab_size);
            let diff = max_abs_diff(ours, &theirs);
            assert!(
                diff < 5e-4,
                "{format:?}, {} tokens: max |Δ logprob| = {diff}",
                ids.len()
            );
            let diff = max_abs_diff(ours, &together.unwrap());
            assert!(diff < 2e-3, "{format:?}: batched vs alone {diff}");
            let mass: f64 = ours.iter().map(|&l| (l as f64).exp()).sum();
            assert!((mass - 1.0).abs() < 1e-3, "mass {mass}");
            // Not a flat distribution: the comparison has something to compare.
            let top = ours.iter().copied().fold(f32::MIN, f32::max);
            assert!(
                top > -(spec.vocab_size as f32).ln() + 1.0,
                "top logprob {top}"
            );
        }
    }

    // Hidden states: the embedding output and every block's output, at the last position.
    let m = LocalModel::load(&LocalConfig::new(path.to_string_lossy())).unwrap();
    let tensors = hf_tensors(&path);
    let norm = tensors["model.norm.weight"].to_vec1::<f32>().unwrap();
    for conv in prompts() {
        let ids = m.prompt_ids(&conv).unwrap();
        let hidden = m.hidden_states_ids(ids.clone()).await.unwrap();
        assert_eq!(hidden.len(), spec.n_layer + 1);
        for (blocks, h) in hidden.iter().enumerate() {
            let ours = rms_normed(h, &norm, spec.rms_eps);
            let theirs = reference_normed_hidden(&spec, &tensors, blocks, &ids);
            let diff = max_abs_diff(&ours, &theirs);
            assert!(diff < 1e-4, "after {blocks} blocks: max |Δ| = {diff}");
        }
        // The residual stream grows through the blocks (the states are not all equal).
        assert!(max_abs_diff(&hidden[0], &hidden[spec.n_layer]) > 0.1);
    }
}
