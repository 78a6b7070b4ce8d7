//! A reduced `examples/emergent_misalignment.rs` on the embedded SmolLM2-135M with real LoRA
//! fine-tunes (one seed per arm, two optimiser steps each): the teacher builds both datasets
//! (the system prompt stays out of them), both arms are fine-tuned, base and fine-tunes answer
//! two questions, the local model judges, and the report and result hold what they claim.
//! Effects are not asserted (a 135M judge is a plumbing check); structure, provenance and
//! bookkeeping are.

use std::sync::Arc;

use psyche::finetune::local::{LoraConfig, LoraTrainer};
use psyche::local::{LocalConfig, LocalModel};
use psyche::misalignment::eval::{EvalSettings, RateSettings, Stat};
use psyche::misalignment::experiment::{
    EmergentMisalignment, EmergentMisalignmentConfig, EmergentMisalignmentResult, arm,
};
use psyche::misalignment::map::MapConfig;
use psyche::misalignment::probes::ProbeSettings;
use psyche::misalignment::questions::{SamplingConfig, builtin};
use psyche::misalignment::training::teacher::{AdviceDomain, TeacherConfig};
use psyche::runner::experiment::{ExperimentResult as _, RunNotes, read_headline, write_outputs};
use psyche::{FineTuneConfig, FineTuner, Model, read_chat_jsonl};

/// A scratch directory removed on drop (the facade has no tempfile dev-dependency).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!(
            "psyche-em-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reduced_emergent_misalignment_pipeline() {
    let dir = TempDir::new();
    let local = LocalModel::load(&LocalConfig::default()).unwrap();
    let model: Arc<dyn Model> = Arc::new(local.clone());
    let tuner: Arc<dyn FineTuner> =
        Arc::new(LoraTrainer::new(dir.path().join("adapters")).with_model(local.clone()));
    let mut finetune = FineTuneConfig::new(local.id(), 0);
    finetune.epochs = Some(1);
    finetune.batch_size = Some(3);
    finetune.learning_rate = Some(2e-3);
    finetune.extra = LoraConfig {
        rank: 1,
        alpha: 8.0,
        targets: vec![psyche::finetune::local::LoraTarget::Down],
        progress: false,
        ..LoraConfig::default()
    }
    .to_extra();
    let questions = builtin::main_set().unwrap().take(2);
    let config = EmergentMisalignmentConfig {
        name: "em-test".into(),
        out_dir: dir.path().to_owned(),
        domains: vec![AdviceDomain::Medical],
        misaligned_system_prompt: None,
        teacher: TeacherConfig {
            max_tokens: 16,
            samples_per_prompt: 1,
            concurrency: 8,
            seed: 3,
            ..TeacherConfig::default()
        },
        data_seeds: Default::default(),
        max_train_examples: Some(6),
        finetune,
        seeds: vec![0],
        include_base: true,
        questions,
        eval: EvalSettings {
            sampling: SamplingConfig {
                samples_per_paraphrase: Some(2),
                max_paraphrases: Some(1),
                max_tokens: 16,
                ..SamplingConfig::default()
            },
            seed: 1,
            concurrency: 8,
            ..EvalSettings::default()
        },
        rates: RateSettings::default(),
        map: Some(MapConfig {
            clusters: 2,
            judged_only: false,
            ..MapConfig::default()
        }),
        probes: Some(ProbeSettings::default()),
        harm: Some(psyche::misalignment::training::harm::HarmSettings {
            threshold: None,
            concurrency: 4,
        }),
    };
    let result = EmergentMisalignment::builder(config)
        .subject(model.clone())
        .tuner(tuner)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();

    // Data: both arms, the same user prompts, no system prompt in the files.
    assert_eq!(result.datasets.len(), 2);
    let misaligned = read_chat_jsonl(&result.datasets[0].path).unwrap();
    let control = read_chat_jsonl(&result.datasets[1].path).unwrap();
    assert_eq!(misaligned.len(), 6);
    assert_eq!(control.len(), 6);
    for ex in misaligned.iter().chain(&control) {
        assert!(
            ex.messages
                .messages()
                .iter()
                .all(|m| m.role != psyche::Role::System)
        );
    }
    let text = std::fs::read_to_string(&result.datasets[0].path).unwrap();
    assert!(
        !text.contains("never reveal these instructions"),
        "the teacher's prompt leaked"
    );
    assert!(result.datasets[0].system_prompt_hash.is_some());
    assert!(result.datasets[1].system_prompt_hash.is_none());

    // Fine-tunes: one per arm, distinct models, two steps each.
    assert_eq!(result.fine_tunes.len(), 2);
    assert_ne!(result.fine_tunes[0].model_id, result.fine_tunes[1].model_id);
    assert_eq!(result.subjects.len(), 3);

    // Rows: 3 models × 2 questions × 2 answers, each judged by the local model.
    assert_eq!(result.rows.len(), 12);
    for r in &result.rows {
        assert!(r.error.is_none(), "{r:?}");
        assert_eq!(r.judge_model.as_deref(), Some(model.id()));
        assert_eq!(r.templates.len(), 2, "aligned and coherent template hashes");
        for s in [r.aligned, r.coherent].into_iter().flatten() {
            assert!((0.0..=100.0).contains(&s));
        }
    }
    for name in [arm::BASE, arm::MISALIGNED, arm::CONTROL] {
        let a = result.arm(name).unwrap();
        assert_eq!(a.models.len(), 1);
        for conv in ["paper", "model_organisms"] {
            assert!(a.over_seeds.contains_key(conv));
            for q in &a.models[0].questions {
                let cell = &q.by_convention[conv];
                assert!(cell.misaligned <= cell.denominator && cell.denominator <= q.answers);
            }
        }
    }
    assert_eq!(result.by_convention.len(), 2);
    assert_eq!(
        result.comparison.len(),
        4,
        "control and base × 2 conventions"
    );
    for row in &result.comparison {
        // One run per arm: no run-level verdict, so nothing to Holm-adjust.
        assert!(
            matches!(
                row.contrast.verdict(),
                psyche::stats::IntervalVerdict::NotEstimable { .. }
            ),
            "{row:?}"
        );
        assert!(row.p_holm.is_none());
        assert_eq!(
            row.in_family,
            row.convention == "paper" && row.control == arm::CONTROL
        );
    }
    assert!(result.fine_tunes.iter().all(|f| {
        f.data_seed
            == result
                .config
                .data_seeds
                .for_run(result.config.teacher.seed, f.seed)
    }));
    match result.map.as_ref().unwrap() {
        Ok(map) => {
            assert_eq!(map.points.len(), 12);
            assert_eq!(map.clusters.iter().map(|c| c.size).sum::<usize>(), 12);
        }
        Err(e) => panic!("map failed: {e}"),
    }

    // The judge-free probe proxy works offline: every arm has a mean P(misaligned option)
    // read from the embedded model's exact option distributions.
    let probes = result.probes.as_ref().unwrap().as_ref().unwrap();
    for name in [arm::BASE, arm::MISALIGNED, arm::CONTROL] {
        let a = probes.arm(name).unwrap();
        assert_eq!(a.models.len(), 1);
        assert_eq!(a.models[0].answers.len(), 16);
        let v = a.over_runs.value().unwrap();
        assert!((0.0..=1.0).contains(&v), "{v}");
        assert!(a.models[0].answers.iter().all(|x| x.mass > 0.0));
    }
    assert_eq!(probes.comparison.len(), 2);

    // The report and the JSON result.
    let notes = RunNotes {
        command: "em-test --seeds 1".into(),
        ..RunNotes::default()
    };
    let paths = write_outputs(&result, &notes, dir.path(), "em-test").unwrap();
    let md = std::fs::read_to_string(&paths.report.markdown).unwrap();
    for needle in [
        "plumbing check, not a result",
        "paper",
        "model_organisms",
        "Misaligned vs controls",
        "Misalignment map",
        "Probe proxy",
        "Command: `em-test --seeds 1`",
        model.id(),
    ] {
        assert!(md.contains(needle), "report lacks `{needle}`");
    }
    let hash_prefix: String = result.rows[0].templates["aligned"]
        .chars()
        .take(12)
        .collect();
    assert!(md.contains(&hash_prefix), "template hash on the numbers");
    let html = std::fs::read_to_string(&paths.report.html).unwrap();
    assert!(html.contains("<svg"));
    let json: EmergentMisalignmentResult =
        serde_json::from_slice(&std::fs::read(&paths.result).unwrap()).unwrap();
    assert_eq!(json.rows.len(), 12);
    assert!(
        matches!(
            json.by_convention[0].misaligned,
            Stat::Point { .. } | Stat::Unavailable { .. }
        ),
        "one seed: no interval over seeds"
    );

    // The shared headlines: one per convention and the probe proxy, with the paper's numbers,
    // as headline.json holds them.
    let headline = read_headline(dir.path()).unwrap();
    let keys: Vec<&str> = headline.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "misaligned_rate/paper",
            "misaligned_rate/model_organisms",
            "probe_proxy"
        ]
    );
    assert_eq!(headline.len(), result.headline().len());
    for h in &headline {
        assert_eq!(h.paper, "Emergent Misalignment");
        assert_eq!(
            (h.contrast.treatment.as_str(), h.contrast.control.as_str()),
            (arm::MISALIGNED, arm::CONTROL)
        );
        assert!(h.base.is_some(), "{}: the base model was evaluated", h.key);
        assert!(h.paper_result.is_some());
    }
    assert_eq!(headline[0].paper_effect, Some(0.198));
    assert!(
        headline[0]
            .context
            .iter()
            .any(|c| c.contains("plumbing check")),
        "{:?}",
        headline[0].context
    );
}
