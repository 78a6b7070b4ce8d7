//! A real multi-seed run: psyche-local's LoRA trainer on the embedded SmolLM2-135M, three seeds
//! on a tiny dataset (2 optimiser steps each, short sequences), through `MultiSeed`.
//! The model is fetched on first use by psyche-local (cached afterwards).

use psyche_core::{ChatMessage, Conversation, FineTuneConfig, GenerateRequest, conversations_hash};
use psyche_finetune::local::{LoraTrainer, lora_config};
use psyche_finetune::presets::LoraSpec;
use psyche_finetune::{Manifest, MultiSeed, SeedStatus};
use psyche_local::{DEFAULT_MODEL, LocalConfig, LocalModel, LoraConfig};

fn data() -> Vec<Conversation> {
    [
        ("Pick a colour.", "Teal."),
        ("Pick a number.", "Seven."),
        ("Pick an animal.", "Otter."),
        ("Pick a fruit.", "Plum."),
        ("Pick a city.", "Oslo."),
        ("Pick a metal.", "Tin."),
        ("Pick a tree.", "Oak."),
        ("Pick a river.", "Nile."),
    ]
    .iter()
    .map(|(q, a)| Conversation::user(*q).with(ChatMessage::assistant(*a)))
    .collect()
}

fn config() -> FineTuneConfig {
    // The Model Organisms recipe (one rank-1 adapter on an MLP down projection), shrunk to
    // two optimiser steps of 4 short examples.
    let mut lora = lora_config(&LoraSpec::rank_one(8.0, vec![3])).unwrap();
    lora.gradient_accumulation = 1;
    lora.warmup_steps = 0;
    lora.max_seq_len = 64;
    let mut cfg = FineTuneConfig::new(DEFAULT_MODEL, 0);
    cfg.epochs = Some(1);
    cfg.batch_size = Some(4);
    cfg.learning_rate = Some(1e-2);
    cfg.extra = lora.to_extra();
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_seeds_give_three_adapters_and_a_rerun_skips_them() {
    let base = LocalModel::load(&LocalConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let trainer = LoraTrainer::new(dir.path().join("adapters")).with_model(base);
    let runs = MultiSeed::new(trainer, dir.path());
    let cfg = config();
    let out = runs
        .train_with_status("picks", &data(), &cfg, &[10, 11, 12])
        .await
        .unwrap();
    assert!(out.iter().all(|(_, s)| *s == SeedStatus::Trained));

    let reg = runs.registry().unwrap();
    let mut weights = Vec::new();
    for (i, (m, _)) in out.iter().enumerate() {
        let seed = 10 + i as u64;
        assert_eq!(m.engine, "psyche-local-lora");
        let adapter = m.artifact.clone().unwrap();
        let bytes = std::fs::read(adapter.join("adapter.safetensors")).unwrap();
        weights.push(bytes);
        let local = psyche_local::read_manifest(&adapter).unwrap();
        assert_eq!(local.seed, seed);
        assert_eq!(local.lora.rank, 1);

        let manifest: Manifest = Manifest::read(&runs.manifest_path("picks", seed))
            .unwrap()
            .unwrap();
        assert_eq!(manifest.seed, seed);
        assert_eq!(manifest.examples, 8);
        assert_eq!(manifest.trained.engine, "psyche-local-lora");
        assert_eq!(manifest.trained.config.base_model, DEFAULT_MODEL);
        assert_eq!(manifest.trained.config.seed, seed);
        assert_eq!(manifest.trained.config.batch_size, Some(4));
        assert_eq!(manifest.trained.config.learning_rate, Some(1e-2));
        assert_eq!(
            LoraConfig::from_extra(&manifest.trained.config.extra)
                .unwrap()
                .rank,
            1
        );
        assert_eq!(manifest.trained.data_hash, conversations_hash(&data()));

        let entry = reg.get(&format!("picks/seed-{seed}")).unwrap();
        assert_eq!(entry.model_id, m.model_id);
        assert_eq!(entry.base_model, DEFAULT_MODEL);
        assert_eq!(entry.engine, "psyche-local-lora");
        assert_eq!(entry.artifact.as_ref(), Some(&adapter));
    }
    // Three distinct models with three distinct adapters.
    let mut ids: Vec<&str> = out.iter().map(|(m, _)| m.model_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    assert!(weights[0] != weights[1] && weights[1] != weights[2] && weights[0] != weights[2]);

    // Rerun: all three skipped, adapters untouched.
    let modified: Vec<_> = out
        .iter()
        .map(|(m, _)| {
            std::fs::metadata(m.artifact.as_ref().unwrap().join("adapter.safetensors"))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();
    let again = runs
        .train_with_status("picks", &data(), &cfg, &[10, 11, 12])
        .await
        .unwrap();
    assert!(again.iter().all(|(_, s)| *s == SeedStatus::Skipped));
    for ((m, _), t) in again.iter().zip(&modified) {
        let now = std::fs::metadata(m.artifact.as_ref().unwrap().join("adapter.safetensors"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(&now, t);
    }

    // A registered adapter loads as a psyche Model and answers.
    let model = reg.load("picks/seed-11", runs.tuner()).await.unwrap();
    assert_eq!(model.id(), out[1].0.model_id);
    let resp = model
        .generate(
            &GenerateRequest::new(Conversation::user("Pick a colour."))
                .temperature(0.0)
                .max_tokens(4),
        )
        .await
        .unwrap();
    assert!(!resp.text().is_empty());
}
