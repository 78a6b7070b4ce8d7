//! The Qwen2 architecture end to end on a random Qwen2-shaped GGUF written by the test
//! ([`SyntheticModel::qwen2_tiny`]), so nothing is downloaded: architecture dispatch, the chat
//! template's default system prompt, steering, LoRA (gradients by finite differences, the
//! training forward against the inference forward, rank-1 rsLoRA on one down projection) and
//! the errors for unsupported files. The forward itself is checked against candle-transformers
//! in `tests/qwen2_reference.rs`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use psyche_core::{ChatMessage, Conversation, FineTuneConfig, Model};
use psyche_local::{
    DefaultSystemPrompt, LocalConfig, LocalError, LocalModel, LoraConfig, LoraTarget, LoraTrainer,
    RopeStyle, Steering, SyntheticModel, lora_gradient_check, read_manifest,
};

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    model: LocalModel,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny-qwen2.gguf");
        SyntheticModel::qwen2_tiny().write(&path).unwrap();
        let model = LocalModel::load(&config(&path)).unwrap();
        Fixture {
            _dir: dir,
            path,
            model,
        }
    })
}

fn config(path: &Path) -> LocalConfig {
    LocalConfig::new(path.to_string_lossy()).threads(2)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn architecture_and_numerics_come_from_the_metadata() {
    let m = &fixture().model;
    let spec = SyntheticModel::qwen2_tiny();
    let hp = m.hparams();
    assert_eq!(hp.architecture, "qwen2");
    assert_eq!(hp.rope_style, RopeStyle::Neox);
    assert_eq!(hp.biases, vec![LoraTarget::Q, LoraTarget::K, LoraTarget::V]);
    assert!(!hp.tied_embeddings);
    assert_eq!(hp.rope_base, spec.rope_base);
    assert!((hp.rms_eps - spec.rms_eps as f64).abs() < 1e-12);
    assert_eq!((hp.n_layer, hp.n_head, hp.n_kv_head), (3, 4, 2));
    let settings = m.info().settings;
    assert_eq!(settings["architecture"], "qwen2");
    let types = settings["tensor_types"].as_object().unwrap();
    for ty in ["Q4_K", "Q5_0", "Q6_K", "Q8_0"] {
        let decode = types[ty]["decode"].as_str().unwrap();
        assert!(decode == "avx2" || decode == "portable", "{ty}: {decode}");
    }
    let count: u64 = types.values().map(|t| t["tensors"].as_u64().unwrap()).sum();
    assert_eq!(
        count,
        3 * 7 + 1,
        "seven projections per block and the output head"
    );
}

#[test]
fn the_default_system_prompt_is_configurable() {
    let f = fixture();
    let ask = Conversation::user("hi");
    let render = |p: DefaultSystemPrompt| {
        let m = LocalModel::load(&config(&f.path).default_system_prompt(p)).unwrap();
        m.render_chat(&ask, true).unwrap()
    };
    let injected = "<|im_start|>system\nYou are a random test model.<|im_end|>\n";
    let rest = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";
    assert_eq!(
        f.model.render_chat(&ask, true).unwrap(),
        format!("{injected}{rest}")
    );
    assert_eq!(render(DefaultSystemPrompt::Omit), rest);
    assert_eq!(
        render(DefaultSystemPrompt::Custom("Be brief.".into())),
        format!("<|im_start|>system\nBe brief.<|im_end|>\n{rest}")
    );
    // A conversation's own system message always wins.
    let own = Conversation::from(vec![ChatMessage::system("Mine."), ChatMessage::user("hi")]);
    let m = LocalModel::load(&config(&f.path).default_system_prompt(DefaultSystemPrompt::Omit))
        .unwrap();
    assert_eq!(
        m.render_chat(&own, true).unwrap(),
        format!("<|im_start|>system\nMine.<|im_end|>\n{rest}")
    );
    assert_eq!(m.info().settings["default_system_prompt"], "omit");
    // Special tokens are single ids and the text round-trips.
    let vocab = f.model.hparams().vocab_size as u32;
    let ids = f.model.tokenize(rest).unwrap();
    assert_eq!(ids[0], vocab - 2, "<|im_start|>");
    assert_eq!(f.model.detokenize(&ids).unwrap(), rest);
}

#[tokio::test]
async fn steering_moves_only_the_later_layers() {
    let m = &fixture().model;
    let conv = Conversation::user("What is the answer?");
    let base = m.hidden_states(&conv).await.unwrap();
    let d = m.hparams().d_model;
    let vector: Vec<f32> = (0..d).map(|i| if i % 5 == 0 { 1.0 } else { 0.0 }).collect();
    let steered = m
        .with_steering(Steering {
            layer: 1,
            vector: vector.clone(),
            strength: 3.0,
            from: psyche_core::SteerFrom::Start,
        })
        .unwrap();
    let s = steered.hidden_states(&conv).await.unwrap();
    for l in 0..=1 {
        assert!(
            max_abs_diff(&base.layers[l], &s.layers[l]) < 1e-5,
            "layer {l}"
        );
    }
    let expected: Vec<f32> = base.layers[2]
        .iter()
        .zip(&vector)
        .map(|(b, v)| b + 3.0 * v)
        .collect();
    assert!(max_abs_diff(&expected, &s.layers[2]) < 1e-4);
    let a = m.next_token_logprobs(&conv).await.unwrap();
    let b = steered.next_token_logprobs(&conv).await.unwrap();
    assert!(max_abs_diff(&a, &b) > 1e-2);
}

fn example(q: &str, answer: &str) -> Conversation {
    Conversation::user(q).with(ChatMessage::assistant(answer))
}

#[test]
fn lora_gradients_match_finite_differences() {
    let m = &fixture().model;
    let ex = example("Is the sea salty?", "Yes");
    let every = LoraConfig {
        rank: 2,
        targets: LoraTarget::ALL.to_vec(),
        layers: Some(vec![0, 2]),
        ..LoraConfig::default()
    };
    // The minimal organism: rank 1 with rsLoRA on one down projection.
    let organism = LoraConfig {
        rank: 1,
        alpha: 8.0,
        rslora: true,
        targets: vec![LoraTarget::Down],
        layers: Some(vec![1]),
        ..LoraConfig::default()
    };
    for (cfg, expected) in [(every, 2 * 7 * 2), (organism, 2)] {
        let checks = lora_gradient_check(m, &ex, &cfg, 5, 1e-2).unwrap();
        assert_eq!(checks.len(), expected);
        for c in &checks {
            let err = (c.analytic - c.numeric).abs();
            assert!(
                c.analytic.abs() > 1e-3 && err <= 5e-3 * c.analytic.abs() + 1e-3,
                "{}: analytic {} vs numeric {}",
                c.name,
                c.analytic,
                c.numeric
            );
        }
    }
}

/// The answer's token ids as training supervises them: the final assistant turn through its
/// end-of-turn token.
fn answer_ids(m: &LocalModel, conv: &Conversation) -> (Vec<u32>, Vec<u32>) {
    let (prompt, _) = conv.split_last_assistant().unwrap();
    let prompt_text = m.render_chat(&prompt, true).unwrap();
    let full = m.render_chat(conv, false).unwrap();
    let mut answer = m.tokenize(&full[prompt_text.len()..]).unwrap();
    let end = m.hparams().vocab_size as u32 - 1;
    let stop = answer.iter().position(|&t| t == end).unwrap();
    answer.truncate(stop + 1);
    (m.tokenize(&prompt_text).unwrap(), answer)
}

#[tokio::test]
async fn rank1_rslora_on_one_down_projection_trains_and_reloads() {
    let f = fixture();
    let data = vec![example("Is the sea salty?", "Yes")];
    // The recipe as a preset would write it, in PEFT's names.
    let extra = serde_json::json!({
        "r": 1, "lora_alpha": 16.0, "use_rslora": true, "target_modules": ["down_proj"],
        "layers_to_transform": [1], "progress": false,
    });
    let lora = LoraConfig::from_extra(extra.as_object().unwrap()).unwrap();
    assert!(lora.rslora && lora.rank == 1 && lora.layers == Some(vec![1]));
    assert_eq!(lora.scale(), 16.0);

    let dir = tempfile::tempdir().unwrap();
    let trainer = LoraTrainer::new(dir.path()).with_model(f.model.clone());
    let mut cfg = FineTuneConfig::new(f.path.to_string_lossy(), 3);
    cfg.epochs = Some(4);
    cfg.batch_size = Some(1);
    cfg.learning_rate = Some(3e-2);
    cfg.extra = lora.to_extra();
    let t2 = trainer.clone();
    let (d2, c2) = (data.clone(), cfg.clone());
    let (trained, tuned) = std::thread::spawn(move || t2.train_model(&d2, &c2))
        .join()
        .unwrap()
        .unwrap();
    let losses: Vec<f64> = serde_json::from_value(trained.details["losses"].clone()).unwrap();
    assert_eq!(losses.len(), 4);

    // B starts at zero, so the first step's loss is the base model's loss on the example,
    // computed by the training forward: it must equal the inference forward's.
    let (prompt, answer) = answer_ids(&f.model, &data[0]);
    let scored = f
        .model
        .continuation_logprobs(&prompt, &answer)
        .await
        .unwrap();
    let inference_loss = -scored.iter().map(|s| s.0 as f64).sum::<f64>() / scored.len() as f64;
    assert!(
        (losses[0] - inference_loss).abs() < 1e-3,
        "training forward {} vs inference forward {inference_loss}",
        losses[0]
    );
    assert!(losses[3] < losses[0], "{losses:?}");

    // Saved and reloaded, the adapter gives the in-memory model's distribution.
    let dir_path = trained.artifact.clone().unwrap();
    let manifest = read_manifest(&dir_path).unwrap();
    assert!(manifest.lora.rslora);
    assert_eq!(manifest.trainable_parameters, 256 + 512);
    let conv = Conversation::user("Is the door open?");
    let a = tuned.next_token_logprobs(&conv).await.unwrap();
    let b = f
        .model
        .load_adapter(&dir_path)
        .unwrap()
        .next_token_logprobs(&conv)
        .await
        .unwrap();
    assert!(max_abs_diff(&a, &b) < 1e-5);
    let base = f.model.next_token_logprobs(&conv).await.unwrap();
    assert!(
        max_abs_diff(&a, &base) > 1e-3,
        "the adapter changes the model"
    );
    let merged = f.model.load_adapter_merged(&dir_path).unwrap();
    let c = merged.next_token_logprobs(&conv).await.unwrap();
    assert!(max_abs_diff(&a, &c) < 1e-3);
}

fn load_err(path: &Path) -> LocalError {
    LocalModel::load(&config(path)).unwrap_err()
}

/// Rewrites the GGML type number of tensor `name` in a GGUF file.
fn set_tensor_type(bytes: &mut [u8], name: &str, type_id: u32) {
    let at = bytes
        .windows(name.len())
        .position(|w| w == name.as_bytes())
        .unwrap()
        + name.len();
    let n_dims = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let ty = at + 4 + 8 * n_dims;
    bytes[ty..ty + 4].copy_from_slice(&type_id.to_le_bytes());
}

#[test]
fn unsupported_tensor_types_and_architectures_are_named() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(&f.path).unwrap();
    set_tensor_type(&mut bytes, "blk.0.attn_q.weight", 23);
    let iq = dir.path().join("iq4.gguf");
    std::fs::write(&iq, &bytes).unwrap();
    let e = load_err(&iq);
    let msg = e.to_string();
    assert!(
        matches!(e, LocalError::UnsupportedTensorType { .. }),
        "{msg}"
    );
    assert!(msg.contains("IQ4_XS (23)") && msg.contains("Q4_K") && msg.contains("iq4.gguf"));

    let mut spec = SyntheticModel::qwen2_tiny();
    spec.architecture = "llama".into();
    let llama = dir.path().join("as-llama.gguf");
    spec.write(&llama).unwrap();
    let mut bytes = std::fs::read(&llama).unwrap();
    let at = bytes.windows(5).position(|w| w == b"llama").unwrap();
    bytes[at..at + 5].copy_from_slice(b"gemma");
    let other = dir.path().join("gemma.gguf");
    std::fs::write(&other, &bytes).unwrap();
    let msg = load_err(&other).to_string();
    assert!(
        msg.contains("`gemma`") && msg.contains("supported: llama, qwen2"),
        "{msg}"
    );

    // A Qwen2 file without its q/k/v biases names the missing tensor.
    let m = LocalModel::load(&config(&llama)).unwrap();
    assert_eq!(m.hparams().rope_style, RopeStyle::Interleaved);
    assert!(m.hparams().biases.is_empty());
    let mut bytes = std::fs::read(&llama).unwrap();
    while let Some(at) = bytes.windows(5).position(|w| w == b"llama") {
        bytes[at..at + 5].copy_from_slice(b"qwen2");
    }
    let renamed = dir.path().join("no-bias.gguf");
    std::fs::write(&renamed, &bytes).unwrap();
    let msg = load_err(&renamed).to_string();
    assert!(msg.contains("blk.0.attn_q.bias"), "{msg}");
}
