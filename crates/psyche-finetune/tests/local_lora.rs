//! A real multi-seed run: psyche-local's LoRA trainer on the embedded SmolLM2-135M, three seeds
//! on a tiny dataset (2 optimiser steps each, short sequences), through psyche-runner's
//! `train_runs` with a `Resumable` engine.
//! The model is fetched on first use by psyche-local (cached afterwards).

use psyche_core::{
    ChatMessage, Conversation, FineTuneConfig, FineTuner, GenerateRequest, TrainedModel,
    conversations_hash,
};
use psyche_finetune::local::{LoraTrainer, lora_config};
use psyche_finetune::presets::LoraSpec;
use psyche_local::{DEFAULT_MODEL, LocalConfig, LocalModel, LoraConfig};
use psyche_runner::training::{Resumable, TrainingJob, train_runs};

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
async fn three_seeds_give_three_adapters_and_a_rerun_reuses_them() {
    let base = LocalModel::load(&LocalConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let trainer = LoraTrainer::new(dir.path().join("adapters")).with_model(base);
    let tuner = Resumable::new(trainer, dir.path().join("ledger"));
    let jobs: Vec<TrainingJob> = [10, 11, 12]
        .iter()
        .map(|&seed| TrainingJob::new("picks", seed, data(), config()))
        .collect();
    let out: Vec<TrainedModel> = train_runs(&tuner, &jobs, 1)
        .await
        .unwrap()
        .into_iter()
        .map(|run| run.trained)
        .collect();

    let mut weights = Vec::new();
    for (i, m) in out.iter().enumerate() {
        let seed = 10 + i as u64;
        assert_eq!(m.engine, "psyche-local-lora");
        let adapter = m.artifact.clone().unwrap();
        let bytes = std::fs::read(adapter.join("adapter.safetensors")).unwrap();
        weights.push(bytes);
        let local = psyche_local::read_manifest(&adapter).unwrap();
        assert_eq!(local.seed, seed);
        assert_eq!(local.lora.rank, 1);

        assert_eq!(m.config.base_model, DEFAULT_MODEL);
        assert_eq!(m.config.seed, seed);
        assert_eq!(m.config.batch_size, Some(4));
        assert_eq!(m.config.learning_rate, Some(1e-2));
        assert_eq!(LoraConfig::from_extra(&m.config.extra).unwrap().rank, 1);
        assert_eq!(m.data_hash, conversations_hash(&data()));

        // The ledger records it under its data and config.
        let recorded = tuner
            .lookup(&jobs[i].data, &jobs[i].config)
            .unwrap()
            .unwrap();
        assert_eq!(recorded.model_id, m.model_id);
        assert_eq!(recorded.artifact.as_ref(), Some(&adapter));
    }
    // Three distinct models with three distinct adapters.
    let mut ids: Vec<&str> = out.iter().map(|m| m.model_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    assert!(weights[0] != weights[1] && weights[1] != weights[2] && weights[0] != weights[2]);

    // Rerun: all three reused, adapters untouched.
    let modified: Vec<_> = out
        .iter()
        .map(|m| {
            std::fs::metadata(m.artifact.as_ref().unwrap().join("adapter.safetensors"))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();
    let again = train_runs(&tuner, &jobs, 1).await.unwrap();
    for ((run, m), t) in again.iter().zip(&out).zip(&modified) {
        assert_eq!(run.trained.model_id, m.model_id);
        let now = std::fs::metadata(m.artifact.as_ref().unwrap().join("adapter.safetensors"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(&now, t);
    }

    // A trained adapter loads as a psyche Model and answers.
    let model = tuner.load(&out[1]).await.unwrap();
    assert_eq!(model.id(), out[1].model_id);
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
