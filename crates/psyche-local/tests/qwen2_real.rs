//! The real Qwen2.5-0.5B-Instruct `Q4_K_M` GGUF, given by path (nothing is downloaded; CI
//! has no copy, so the test is ignored unless asked for):
//!
//! ```text
//! PSYCHE_QWEN2_GGUF=/path/to/qwen2.5-0.5b-instruct-q4_k_m.gguf \
//!   cargo test --release -p psyche-local --test qwen2_real -- --ignored --nocapture
//! ```
//!
//! It checks the metadata dispatch, that every tensor type of the file takes our decode kernels,
//! the chat template's default system turn, our logprobs (both weight formats) against
//! candle-transformers' `quantized_qwen2` on the same file, a coherent greedy answer, the hidden
//! states' shape and rank-1 rsLoRA gradients on a down projection by finite differences. Its own
//! test binary: it sets `CANDLE_DEQUANTIZE_ALL` for the whole process.

use candle_core::quantized::gguf_file;
use candle_core::{D, Device, Tensor};
use candle_transformers::models::quantized_qwen2;
use psyche_core::{ChatMessage, Conversation, GenerateRequest, Model};
use psyche_local::{
    DefaultSystemPrompt, LocalConfig, LocalModel, LoraConfig, LoraTarget, RopeStyle, WeightFormat,
    lora_gradient_check,
};

#[tokio::test]
#[ignore = "needs a real Qwen2.5-0.5B-Instruct GGUF: set PSYCHE_QWEN2_GGUF"]
async fn real_qwen2_5_0_5b_instruct() {
    let path = std::env::var("PSYCHE_QWEN2_GGUF")
        .expect("set PSYCHE_QWEN2_GGUF to a qwen2.5-0.5b-instruct-q4_k_m.gguf");
    // SAFETY: this binary holds this one test; nothing reads the environment meanwhile.
    unsafe { std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1") };
    let m = LocalModel::load(&LocalConfig::new(&path)).unwrap();
    let hp = m.hparams();
    assert_eq!(hp.architecture, "qwen2");
    assert_eq!(
        (hp.n_layer, hp.d_model, hp.n_head, hp.n_kv_head),
        (24, 896, 14, 2)
    );
    assert_eq!(hp.vocab_size, 151_936);
    assert_eq!(hp.rope_style, RopeStyle::Neox);
    assert_eq!(hp.biases, vec![LoraTarget::Q, LoraTarget::K, LoraTarget::V]);
    let settings = m.info().settings;
    println!("tensor types: {}", settings["tensor_types"]);
    for (ty, used) in settings["tensor_types"].as_object().unwrap() {
        let decode = used["decode"].as_str().unwrap();
        assert!(decode == "avx2" || decode == "portable", "{ty}: {decode}");
    }

    // The template injects a system turn into a conversation without one, unless told not to.
    let ask = Conversation::user("What is the capital of France?");
    let rendered = m.render_chat(&ask, true).unwrap();
    assert!(rendered.starts_with("<|im_start|>system\n"), "{rendered}");
    let omit =
        LocalModel::load(&LocalConfig::new(&path).default_system_prompt(DefaultSystemPrompt::Omit))
            .unwrap();
    assert!(
        omit.render_chat(&ask, true)
            .unwrap()
            .starts_with("<|im_start|>user\n")
    );

    let mut f = std::fs::File::open(&path).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    let mut reference = quantized_qwen2::ModelWeights::from_gguf(ct, &mut f, &Device::Cpu).unwrap();
    let quantized =
        LocalModel::load(&LocalConfig::new(&path).weights(WeightFormat::Quantized)).unwrap();
    let prompts = [
        ask.clone(),
        Conversation::from(vec![
            ChatMessage::system("Answer in one word."),
            ChatMessage::user("Is the sky blue?"),
        ]),
    ];
    for conv in &prompts {
        let ids = m.prompt_ids(conv).unwrap();
        reference.clear_kv_cache();
        let input = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = reference.forward(&input, 0).unwrap().squeeze(0).unwrap();
        let theirs = candle_nn::ops::log_softmax(&logits, D::Minus1)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for model in [&m, &quantized] {
            let ours = model.next_token_logprobs_ids(ids.clone()).await.unwrap();
            let diff = ours
                .iter()
                .zip(&theirs)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            println!("{:?}: max |Δ logprob| = {diff}", model.weight_format());
            assert!(diff < 2e-3, "{diff}");
        }
    }

    for model in [&m, &quantized] {
        let r = model
            .generate(
                &GenerateRequest::new(ask.clone())
                    .temperature(0.0)
                    .max_tokens(24),
            )
            .await
            .unwrap();
        println!("{:?}: {}", model.weight_format(), r.text());
        assert!(r.text().contains("Paris"), "{}", r.text());
    }

    let hidden = m.hidden_states(&ask).await.unwrap();
    assert_eq!(hidden.layers.len(), 25);
    assert!(hidden.layers.iter().all(|l| l.len() == 896));

    let organism = LoraConfig {
        rank: 1,
        alpha: 32.0,
        rslora: true,
        targets: vec![LoraTarget::Down],
        layers: Some(vec![12]),
        ..LoraConfig::default()
    };
    let example = ask.with(ChatMessage::assistant("Paris."));
    for c in lora_gradient_check(&m, &example, &organism, 1, 1e-2).unwrap() {
        println!("{}: analytic {} numeric {}", c.name, c.analytic, c.numeric);
        assert!(
            (c.analytic - c.numeric).abs() <= 2e-2 * c.analytic.abs() + 1e-3,
            "{}: {} vs {}",
            c.name,
            c.analytic,
            c.numeric
        );
    }
}
