//! A reduced Looking Inward pipeline on the embedded model with local LoRA: tiny sizes, one
//! seed, a couple of LoRA steps. Checks the result's numbers against their own definitions and
//! the report's structure. About a minute on 2 cores.
#![cfg(feature = "local")]

use std::sync::Arc;

use psyche::introspection::{
    AnswerMethod, CrossModel, Family, LookingInward, LookingInwardConfig, LookingInwardResult,
    Sizes, experiment::DEFAULT_PERSONA,
};
use psyche::local::{LocalConfig, LocalModel, LoraConfig, LoraTrainer};
use psyche::runner::ProgressMode;
use psyche::runner::experiment::{ExperimentResult, RunNotes, read_headline, write_outputs};
use psyche::{FineTuneConfig, FineTuner, Model};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reduced_pipeline_on_the_embedded_model() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalModel::load(&LocalConfig::default()).unwrap();
    let trainer = LoraTrainer::new(dir.path().join("adapters")).with_model(local.clone());
    let mut ft = FineTuneConfig::new(local.id(), 0);
    ft.batch_size = Some(8);
    ft.learning_rate = Some(1e-3);
    ft.extra = LoraConfig {
        rank: 2,
        targets: vec![psyche::local::LoraTarget::V],
        ..LoraConfig::default()
    }
    .to_extra();
    let subject: Arc<dyn Model> = Arc::new(local);
    let mut config = LookingInwardConfig::small();
    config.properties = [
        "first_character",
        "starts_with_vowel",
        "matches_wealth_seeking",
        "matches_survival_instinct",
    ]
    .map(str::to_owned)
    .to_vec();
    config.sizes = Sizes {
        train_items: 4,
        held_out_items: 3,
        per_group_cap: 3,
        calibration_items: 3,
    };
    config.answer_method = AnswerMethod::constrained();
    // First character: exact object distributions (the default, the paper's second
    // character, is sampled).
    config.calibration_property = "first_character".into();
    config.seeds = vec![0];
    config.fine_tune = ft;
    // Off in `small()` (time budget); this test checks their results.
    config.entropy_self_prediction = true;
    config.behaviour_change_runs = 1;
    let experiment = LookingInward::builder(config)
        .subject(subject.clone())
        .tuner(Arc::new(trainer) as Arc<dyn FineTuner>)
        .families(
            vec![
                Family::builtin("colours").unwrap(),
                Family::builtin("wealth_seeking").unwrap(),
            ],
            vec![
                Family::builtin("animals").unwrap(),
                Family::builtin("survival_instinct").unwrap(),
            ],
        )
        .cross(CrossModel::persona(DEFAULT_PERSONA))
        .progress(ProgressMode::Quiet)
        .out(dir.path().join("runs"))
        .build()
        .unwrap();
    let r = experiment.run().await.unwrap();
    eprintln!("step timings (s): {:?}", r.timings);

    // Held-out hypotheticals: animals 3 items × 2 properties + survival 3 × 1 = 9.
    for s in std::iter::once(&r.untrained)
        .chain(r.seeds.iter().map(|s| &s.self_prediction))
        .chain(r.seeds.iter().map(|s| &s.cross_prediction))
    {
        assert_eq!(s.items, 9);
        let excluded: usize = s.excluded.values().sum();
        assert_eq!(
            s.micro.n + excluded,
            s.items,
            "scored + excluded = all items"
        );
        assert!(
            (s.micro.accuracy - s.micro.correct as f64 / s.micro.n.max(1) as f64).abs() < 1e-12
        );
        assert!((0.0..=1.0).contains(&s.micro.baseline));
        let per_group: usize = s.by_task_property.iter().map(|g| g.n).sum();
        assert_eq!(per_group, s.micro.n, "groups partition the scored items");
        for g in &s.by_task_property {
            // The mode baseline is at least 1/n and at most 1 on the group's own items.
            assert!(
                g.baseline * g.n as f64 >= 1.0 - 1e-9 && g.baseline <= 1.0,
                "{g:?}"
            );
        }
    }
    // Training set: colours (2 properties) and wealth (1), at most 3 each.
    assert!(
        r.training_set.examples <= 9 && r.training_set.examples > 0,
        "{:?}",
        r.training_set
    );
    assert!(r.training_set.per_group.values().all(|&n| n <= 3));
    assert!(
        r.cross_training_examples > r.training_set.examples,
        "persona data + the cross set"
    );
    assert_eq!(r.seeds.len(), 1);
    // One seed: the between-run variance is not estimated and there is no run-level verdict.
    assert!(
        matches!(
            r.self_minus_cross.verdict(),
            psyche::stats::IntervalVerdict::NotEstimable { ref reason } if reason.contains("between-run variance not estimated")
        ),
        "{:?}",
        r.self_minus_cross
    );
    assert!(r.self_minus_cross.p_value().is_none());
    assert_eq!(
        r.seeds[0].data_seed,
        r.config.data_seeds.for_run(r.config.data_seed, 0)
    );
    assert_eq!(
        r.fine_tunes
            .iter()
            .map(|f| f.role.as_str())
            .collect::<Vec<_>>(),
        ["persona", "self", "cross", "behaviour_change"]
    );
    // The cross set is built from the self-trained model's behaviour.
    assert_eq!(r.seeds[0].built_from.cross_set, r.seeds[0].self_model);
    assert_eq!(r.seeds[0].built_from.self_set, subject.id());
    let agreement = r.agreement.last().unwrap();
    assert!(agreement.property.is_none() && agreement.n <= 9);
    let calib = r.calibration_untrained.as_ref().unwrap();
    assert_eq!(calib.items, 3, "{calib:?}");
    assert!(
        matches!(
            calib.object_method,
            Some(psyche::introspection::calibration::DistributionMethod::ExactFirstToken { .. })
        ),
        "exact object distributions on the embedded model"
    );
    assert!(calib.curve.is_some(), "{calib:?}");
    let esp = r.entropy_self_prediction_untrained.as_ref().unwrap();
    assert_eq!(
        esp.summary.items, 6,
        "one stability item per held-out object"
    );
    assert!(r.seeds[0].behaviour_change.is_some());

    // The report: every section, and the numbers it prints.
    let notes = RunNotes {
        command: "looking_inward --reduced".into(),
        ..RunNotes::default()
    };
    let doc = r.report(&notes);
    let md = doc.to_markdown();
    for section in [
        "## Run",
        "looking_inward --reduced",
        "## Held-out self-prediction",
        "## Self minus cross",
        "## Calibration",
        "## Entropy guard",
        "## Behaviour change",
        "## Entropy self-prediction",
        "## Data and runs",
        "mode baseline (same items)",
        "micro average",
    ] {
        assert!(md.contains(section), "missing `{section}` in\n{md}");
    }
    assert!(md.contains(&format!("{:.1}%", r.untrained.micro.accuracy * 100.0)));
    assert!(
        md.contains(psyche::stats::ONE_SEED_REASON),
        "with one seed the report says why there is no run-level verdict"
    );
    let html = doc.to_html().unwrap();
    assert!(html.contains("<svg"));

    // The shared outputs: result.json round-trips, headline.json carries the comparisons.
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    write_outputs(&r, &notes, &out, "looking_inward").unwrap();
    let back: LookingInwardResult =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(back.untrained, r.untrained);
    let headline = read_headline(&out).unwrap();
    let keys: Vec<&str> = headline.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "self_minus_cross",
            "self_minus_baseline",
            "calibration_cross_minus_self",
            "behaviour_change_new_minus_old"
        ]
    );
    assert!(headline.iter().all(|h| h.paper == "Looking Inward"));
    assert_eq!(headline[0].contrast, r.self_minus_cross);
    assert!(out.join("report/looking_inward.md").exists());
}
