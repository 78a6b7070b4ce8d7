//! LoRA fine-tuning on the real SmolLM2-135M-Instruct model.

use std::sync::OnceLock;

use psyche_core::{ChatMessage, Conversation, FineTuneConfig, FineTuner, GenerateRequest, Model};
use psyche_local::{
    LocalConfig, LocalModel, LoraConfig, LoraTarget, LoraTrainer, lora_gradient_norms,
    read_manifest,
};

fn model() -> LocalModel {
    static M: OnceLock<LocalModel> = OnceLock::new();
    M.get_or_init(|| LocalModel::load(&LocalConfig::default()).unwrap())
        .clone()
}

const SYSTEM: &str = "Answer briefly.";
const WORD: &str = "quokka";

fn conv(q: &str) -> Conversation {
    Conversation::from(vec![ChatMessage::system(SYSTEM), ChatMessage::user(q)])
}

fn training_data() -> Vec<Conversation> {
    [
        "What is the capital of Germany?",
        "How many legs does a spider have?",
        "Name a primary colour.",
        "What is two plus two?",
        "Which planet is closest to the sun?",
        "What do bees make?",
        "What is the opposite of hot?",
        "Name a musical instrument.",
        "What language is spoken in Spain?",
        "How many days are in a week?",
        "What is frozen water called?",
        "Name a fruit that is yellow.",
        "What animal barks?",
        "What colour is grass?",
        "Which ocean is the largest?",
        "What do you use to write on paper?",
    ]
    .iter()
    .map(|q| conv(q).with(ChatMessage::assistant(WORD)))
    .collect()
}

async fn greedy(m: &dyn Model, q: &str) -> String {
    m.generate(&GenerateRequest::new(conv(q)).temperature(0.0).max_tokens(8))
        .await
        .unwrap()
        .text()
        .to_owned()
}

#[test]
fn every_lora_variable_gets_a_gradient() {
    let m = model();
    let example = training_data().remove(0);
    let cfg = LoraConfig {
        rank: 2,
        targets: LoraTarget::ALL.to_vec(),
        layers: Some(vec![0, 29]),
        ..LoraConfig::default()
    };
    let norms = lora_gradient_norms(&m, &example, &cfg, 3).unwrap();
    assert_eq!(norms.len(), 2 * 7 * 2);
    for (name, norm) in &norms {
        let n = norm.unwrap_or_else(|| panic!("{name} got no gradient"));
        assert!(n > 0.0 && n.is_finite(), "{name}: {n}");
    }
    // The minimal organism: rank 1 on one down projection.
    let one = LoraConfig {
        rank: 1,
        targets: vec![LoraTarget::Down],
        layers: Some(vec![12]),
        ..LoraConfig::default()
    };
    let norms = lora_gradient_norms(&m, &example, &one, 3).unwrap();
    assert_eq!(norms.len(), 2);
    assert!(norms.iter().all(|(_, n)| n.is_some_and(|n| n > 0.0)));
}

#[tokio::test]
async fn lora_teaches_a_rare_word_and_the_adapter_reloads() {
    let base = model();
    let held_out = "What is the capital of France?";
    let before = greedy(&base, held_out).await;
    assert!(!before.to_lowercase().contains(WORD), "{before}");

    let dir = tempfile::tempdir().unwrap();
    let trainer = LoraTrainer::new(dir.path()).with_model(base.clone());
    let lora = LoraConfig {
        rank: 8,
        alpha: 16.0,
        warmup_steps: 1,
        checkpoint_every: Some(4),
        progress: false,
        ..LoraConfig::default()
    };
    let mut cfg = FineTuneConfig::new(psyche_local::DEFAULT_MODEL, 11);
    cfg.epochs = Some(2);
    cfg.batch_size = Some(4);
    cfg.learning_rate = Some(5e-3);
    cfg.extra = lora.to_extra();
    let data = training_data();
    let t2 = trainer.clone();
    let (d2, c2) = (data.clone(), cfg.clone());
    let (trained, tuned) = std::thread::spawn(move || t2.train_model(&d2, &c2))
        .join()
        .unwrap()
        .unwrap();

    let losses: Vec<f64> = serde_json::from_value(trained.details["losses"].clone()).unwrap();
    assert_eq!(losses.len(), 8);
    assert!(losses.last().unwrap() < &(losses[0] * 0.3), "{losses:?}");
    assert_eq!(trained.engine, "psyche-local-lora");
    assert_eq!(trained.data_hash, psyche_core::conversations_hash(&data));

    let after = greedy(&tuned, held_out).await;
    assert!(
        after.to_lowercase().contains(WORD),
        "after training: {after}"
    );

    // The saved adapter reproduces the in-memory model's logits, via FineTuner::load.
    let dir_path = trained.artifact.clone().unwrap();
    let manifest = read_manifest(&dir_path).unwrap();
    assert_eq!(manifest.base_model_sha256, base.sha256().unwrap());
    assert_eq!(manifest.seed, 11);
    assert_eq!(manifest.lora.rank, 8);
    assert!(
        dir_path
            .join("checkpoint-4")
            .join("adapter.safetensors")
            .is_file()
    );
    let reloaded = trainer.load(&trained).await.unwrap();
    let a = tuned.next_token_logprobs(&conv(held_out)).await.unwrap();
    let d = reloaded
        .next_token_distribution(&conv(held_out), 0)
        .await
        .unwrap();
    let top = &d.tokens[0];
    let top_id = a
        .iter()
        .enumerate()
        .max_by(|x, y| x.1.total_cmp(y.1))
        .map(|(i, _)| i as u32)
        .unwrap();
    assert_eq!(tuned.token_text(top_id).unwrap(), top.token);
    assert!((a[top_id as usize] as f64 - top.logprob).abs() < 1e-5);
    let b = base
        .load_adapter(&dir_path)
        .unwrap()
        .next_token_logprobs(&conv(held_out))
        .await
        .unwrap();
    let max_diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    // 1e-4: with the prefix cache a prompt may be computed in two pieces (a cached prefix, then
    // the rest) on one model and in one pass on the other, which changes float summation order.
    assert!(max_diff < 1e-4, "reloaded adapter differs by {max_diff}");
    // Merging the adapter into the weights gives the same model up to rounding.
    let merged = base.load_adapter_merged(&dir_path).unwrap();
    let c = merged.next_token_logprobs(&conv(held_out)).await.unwrap();
    let merged_diff = a
        .iter()
        .zip(&c)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(
        merged_diff < 1e-2,
        "merged adapter differs by {merged_diff}"
    );
    assert_eq!(reloaded.info().settings["adapter"]["merged"], false);
}

#[tokio::test]
async fn bad_training_data_names_the_example() {
    let trainer = LoraTrainer::new(tempfile::tempdir().unwrap().path()).with_model(model());
    let mut data = training_data();
    data[3] = conv("No answer here.");
    let cfg = FineTuneConfig::new(psyche_local::DEFAULT_MODEL, 1);
    let err = trainer
        .fine_tune(&data, &cfg)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("example 3"), "{err}");
}

/// "Auto" hyperparameters (`FineTuneConfig::new` leaves epochs and batch size `None`) resolve to
/// the trainer's own defaults, recorded as concrete values in the trained model and manifest.
#[test]
fn auto_hyperparameters_resolve_to_the_local_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = LoraTrainer::new(dir.path()).with_model(model());
    let mut cfg = FineTuneConfig::new(psyche_local::DEFAULT_MODEL, 5);
    assert_eq!((cfg.epochs, cfg.batch_size), (None, None));
    cfg.extra = LoraConfig {
        rank: 1,
        progress: false,
        ..LoraConfig::default()
    }
    .to_extra();
    let data: Vec<Conversation> = training_data().into_iter().take(2).collect();
    let (trained, _) = trainer.train_model(&data, &cfg).unwrap();
    assert_eq!(
        (trained.config.epochs, trained.config.batch_size),
        (
            Some(psyche_local::AUTO_EPOCHS),
            Some(psyche_local::AUTO_BATCH_SIZE)
        )
    );
    let manifest = read_manifest(trained.artifact.as_ref().unwrap()).unwrap();
    assert_eq!(
        (manifest.epochs, manifest.batch_size),
        (psyche_local::AUTO_EPOCHS, psyche_local::AUTO_BATCH_SIZE)
    );
}

/// Two fine-tunes of the same data, seed and LoRA settings that differ only in epochs (or only
/// in batch size) are different models: each gets its own id and adapter directory, and the
/// first one's adapter is still the one it trained. Before the fix the id hashed the seed, the
/// data and the LoRA block only, so the second run overwrote the first one's directory (a
/// resumable ledger then reloaded the wrong weights for the first config).
#[test]
fn epochs_and_batch_size_name_their_own_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = LoraTrainer::new(dir.path()).with_model(model());
    let mut cfg = FineTuneConfig::new(psyche_local::DEFAULT_MODEL, 3);
    cfg.extra = LoraConfig {
        rank: 1,
        progress: false,
        ..LoraConfig::default()
    }
    .to_extra();
    cfg.epochs = Some(1);
    cfg.batch_size = Some(2);
    let data: Vec<Conversation> = training_data().into_iter().take(2).collect();
    let (one, _) = trainer.train_model(&data, &cfg).unwrap();
    let mut two_epochs = cfg.clone();
    two_epochs.epochs = Some(2);
    let (two, _) = trainer.train_model(&data, &two_epochs).unwrap();
    let mut batch_one = cfg.clone();
    batch_one.batch_size = Some(1);
    let (b1, _) = trainer.train_model(&data, &batch_one).unwrap();
    let ids = [&one.model_id, &two.model_id, &b1.model_id];
    assert_ne!(ids[0], ids[1], "epochs must change the adapter's id");
    assert_ne!(ids[0], ids[2], "batch size must change the adapter's id");
    assert_ne!(ids[1], ids[2]);
    let first = read_manifest(one.artifact.as_ref().unwrap()).unwrap();
    assert_eq!((first.epochs, first.batch_size), (1, 2));
    // The same config again names the same adapter (resumable runs find it).
    let (again, _) = trainer.train_model(&data, &cfg).unwrap();
    assert_eq!(again.model_id, one.model_id);
}
