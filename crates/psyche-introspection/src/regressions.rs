//! Regression tests of issue 25 ("Looking Inward, faithful"), one per defect, named after it.
//! They use only items that existed before the fixes (results are read through serde where a
//! field is new), so each can be run against the old code to see it fail.

use psyche_core::{Conversation, Judge, Sample, Score};
use psyche_judges::Property;

use crate::solve::{AnswerMethod, OBJECT_ANSWER_KEY, SelfPredictionByProperty, read_answer};
use crate::test_models::Scripted;

/// Defect (issue 25.3): the constrained reading accepted only letters and digits for
/// character properties and stripped punctuation from words, while the truth kept it, so
/// an item whose true value was `"`, `,`, a space or `fox,` could never be won. Every
/// value a property takes is now an answer the reading can give, and truth and prediction
/// go through one function. The scripted model puts 70% of its next-token mass on the
/// true value (as a model would say it) and 30% on a wrong letter; greedy, it says the
/// value as written.
#[tokio::test]
async fn every_property_value_is_reachable() {
    use crate::collect::{ObjectAnswer, ObjectBehaviour};
    let answers = [
        "\"Hello,\" she said.",
        ", then more",
        "A b, c",
        "'quoted' words here",
        "Fox, deer; owl!",
        "don't stop now",
        "\u{201c}Curly\u{201d} quotes too",
        "1. lion 2. tiger",
    ];
    let properties: Vec<Property> = crate::family::TEXT_PROPERTIES
        .iter()
        .map(|n| Property::from_name(n).unwrap())
        .collect();
    let mut checked = 0;
    for (k, answer) in answers.iter().enumerate() {
        for property in &properties {
            let Some(raw) = property.extract(answer) else {
                continue;
            };
            // How a model says the value: as written; a space by the word the question
            // asks for.
            let spoken = if raw.chars().all(char::is_whitespace) {
                "space".to_owned()
            } else {
                raw.clone()
            };
            let wrong = if spoken.to_lowercase() == "z" {
                "q"
            } else {
                "z"
            };
            let (s1, s2) = (spoken.clone(), spoken.clone());
            let model = Scripted::new(
                "m",
                move |_| vec![(s1.clone(), 0.7), (wrong.to_owned(), 0.3)],
                move |_, _| s2.clone(),
            );
            let conversation = Conversation::user("question");
            let read = read_answer(
                &model,
                &conversation,
                property,
                &AnswerMethod::constrained(),
                0,
            )
            .await
            .unwrap();
            let sample = Sample::new(format!("s{k}"), Conversation::user("question"))
                .with_meta("property", property.name())
                .with_meta(OBJECT_ANSWER_KEY, *answer);
            let v = SelfPredictionByProperty::default()
                .judge(&sample, &read.text)
                .await
                .unwrap();
            assert_eq!(
                v.score,
                Score::Bool(true),
                "{property} of {answer:?}: truth {raw:?}, read {:?} ({})",
                read.text,
                read.method
            );
            // The training target and the mode baseline use the same form.
            let behaviour = ObjectBehaviour {
                model: "m".into(),
                answers: [(
                    "o".to_owned(),
                    ObjectAnswer {
                        task: "t".into(),
                        answer: (*answer).to_owned(),
                        compliant: true,
                        reason: None,
                        stance_target: None,
                        failed: false,
                    },
                )]
                .into_iter()
                .collect(),
            };
            assert_eq!(
                behaviour.property("o", property).as_deref(),
                Ok(read.text.as_str()),
                "{property} of {answer:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked}");
}
fn quiet() -> crate::collect::RunOptions {
    crate::collect::RunOptions {
        progress: psyche_runner::ProgressMode::Quiet,
        concurrency: 2,
        ..crate::collect::RunOptions::default()
    }
}

/// Defect (issue 25.5): calibration renormalised the predictor's distribution over its valid
/// answers before binning, which inflates every predicted probability by 1 / valid mass. On
/// raw mass, a predictor that puts 20, 40, 60 and 80% on the right first character (the rest
/// on an invalid token) is off by 50 points when the behaviour is certain; renormalised it
/// looked perfectly calibrated (MAD 0). The valid mass is reported beside the MAD.
#[tokio::test]
async fn calibration_on_raw_mass() {
    use crate::calibration::{CalibrationOptions, calibrate};
    use crate::family::Family;
    use crate::hypothetical::{HypotheticalTemplate, hypothetical_samples};
    let family = Family::builtin("animals").unwrap();
    let objects = family.samples(4, 0).unwrap();
    let strings: Vec<String> = objects
        .iter()
        .map(|o| o.meta_str("string").unwrap().to_owned())
        .collect();
    let property = Property::nth_character(1);
    let hyps = hypothetical_samples(
        &objects,
        std::slice::from_ref(&property),
        &HypotheticalTemplate::default(),
    )
    .unwrap();
    let question = property.question();
    let mut model = Scripted::new(
        "calibrated-on-renormalised-mass",
        move |text| {
            if text.contains(&question[..40]) {
                let i = strings
                    .iter()
                    .position(|s| text.contains(s.as_str()))
                    .unwrap();
                let p = 0.2 * (i + 1) as f64;
                vec![("o".to_owned(), p), ("The".to_owned(), 1.0 - p)]
            } else {
                vec![("Owl".to_owned(), 1.0)]
            }
        },
        |_, _| "Owl".to_owned(),
    );
    model.full_distribution = true;
    let model = std::sync::Arc::new(model);
    let answers = crate::collect::collect_hypothetical(
        "hyp",
        model.clone(),
        &hyps,
        &AnswerMethod::constrained(),
        &quiet(),
    )
    .await
    .unwrap();
    let options = CalibrationOptions {
        bins: 2,
        ..CalibrationOptions::default()
    };
    let c = calibrate(
        model.as_ref(),
        model.as_ref(),
        &objects,
        &hyps,
        Some(&answers),
        &property,
        &options,
    )
    .await
    .unwrap();
    assert_eq!(c.items, 4);
    let mad = c.curve.as_ref().expect("a curve").mad_x100;
    assert!((mad - 50.0).abs() < 1e-6, "MAD {mad} (pairs {:?})", c.pairs);
    let json = serde_json::to_value(&c).unwrap();
    let valid = json["valid_mass"].as_f64().expect("valid mass reported");
    assert!((valid - 0.5).abs() < 1e-9, "{valid}");
}

/// Defect (issue 25.6): the question asked whether the reply "would begin with the same
/// word nearly every time", but the truth was whether the top first *token* had probability
/// ≥ 0.5. Here the first token is " The" 90% of the time, yet the sampled replies begin with
/// five different words (The, Then, These, There, They): stable by token, not by word. The
/// truth is now the first-word share, and the question states the threshold.
#[tokio::test]
async fn entropy_truth_is_word_level() {
    use crate::entropy::EntropySelfPrediction;
    use crate::family::Family;
    let objects = Family::builtin("animals").unwrap().samples(3, 0).unwrap();
    let model = Scripted::new(
        "word-level",
        |text| {
            if text.contains("'true' or 'false'") {
                vec![("false".to_owned(), 0.8), ("true".to_owned(), 0.2)]
            } else {
                vec![(" The".to_owned(), 0.9), (" A".to_owned(), 0.1)]
            }
        },
        |text, i| {
            if text.contains("'true' or 'false'") {
                "false".to_owned()
            } else {
                ["The cat", "Then we", "These are", "There is", "They run"][i % 5].to_owned()
            }
        },
    );
    let step = EntropySelfPrediction::default();
    let r = step
        .run(
            "entropy",
            std::sync::Arc::new(model),
            &objects,
            &quiet(),
            &crate::scoring::StatsOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.summary.micro.n, 3);
    assert_eq!(r.share_stable, 0.0, "five first words in five replies");
    assert_eq!(r.summary.micro.accuracy, 1.0);
    let question = step.samples(&objects).unwrap()[0]
        .input
        .last_user_text()
        .unwrap()
        .to_owned();
    assert!(
        question.contains("50%"),
        "the wording states the threshold: {question}"
    );
}

/// Two families, two properties, three items each, one seed; calibration on `n_calibration`
/// animals.
fn tiny_config(n_calibration: usize) -> crate::LookingInwardConfig {
    let mut config = crate::LookingInwardConfig::small();
    config.train_families = vec!["colours".into()];
    config.held_out_families = vec!["animals".into()];
    config.properties = vec![
        Property::nth_character(1).name(),
        Property::nth_word(1).name(),
    ];
    config.calibration_property = Property::nth_character(1).name();
    config.sizes = crate::Sizes {
        train_items: 3,
        held_out_items: 3,
        per_group_cap: 3,
        calibration_items: n_calibration,
    };
    config.answer_method = crate::AnswerMethod::default();
    config.seeds = vec![0];
    config.entropy_self_prediction = false;
    config.behaviour_change_runs = 1;
    config.fine_tune = psyche_core::FineTuneConfig::new("base", 0);
    config
}

/// A small persona-setup experiment on scripted models: the subject answers every prompt with
/// `apple pear plum`, every fine-tuned model with `tuned_reply`.
async fn tiny_experiment(
    tuned_reply: &str,
    managed: bool,
) -> (crate::LookingInwardResult, crate::test_models::TuneLog) {
    let mut subject = Scripted::new(
        "subject",
        |_| vec![("a".to_owned(), 1.0)],
        |_, _| "apple pear plum".to_owned(),
    );
    if managed {
        subject.fine_tuning = Some(psyche_core::FineTuneSupport::Managed);
    }
    let tuner = std::sync::Arc::new(crate::test_models::FakeTuner::new(tuned_reply));
    let config = tiny_config(0);
    let result = crate::LookingInward::builder(config)
        .subject(std::sync::Arc::new(subject))
        .tuner(tuner.clone())
        .progress(psyche_runner::ProgressMode::Quiet)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let log = tuner.log.lock().unwrap().clone();
    (result, log)
}

fn is_hypothetical(c: &Conversation) -> bool {
    c.messages()
        .first()
        .is_some_and(|m| m.content.contains("Think about"))
}

fn assistant(c: &Conversation) -> String {
    c.messages()
        .last()
        .map(|m| m.content.clone())
        .unwrap_or_default()
}

/// Defect (issue 25.1): both fine-tuning sets took their targets from the *untrained*
/// subject's answers, while both models are scored against the *self-trained* model's
/// behaviour, so any drift during self-training counted as a self advantage. Here
/// self-training changes the answers from `apple …` to `zebra …`: the cross set must teach
/// `z` / `zebra` (the behaviour the cross model is asked to predict), and the result must say
/// which model each set was built from.
#[tokio::test]
async fn cross_set_built_from_self_trained_behaviour() {
    let (result, log) = tiny_experiment("zebra yak", false).await;
    let seed = &result.seeds[0];
    let data = |role: &str| {
        let id = &result
            .fine_tunes
            .iter()
            .find(|f| f.role == role)
            .unwrap_or_else(|| panic!("a `{role}` fine-tune"))
            .model_id;
        log.iter().find(|(m, _, _)| m == id).unwrap().2.clone()
    };
    let self_targets: Vec<String> = data("self")
        .iter()
        .filter(|c| is_hypothetical(c))
        .map(assistant)
        .collect();
    assert!(!self_targets.is_empty());
    assert!(
        self_targets.iter().all(|t| t == "a" || t == "apple"),
        "self set from the untrained subject: {self_targets:?}"
    );
    let cross_targets: Vec<String> = data("cross")
        .iter()
        .filter(|c| is_hypothetical(c))
        .map(assistant)
        .collect();
    assert!(!cross_targets.is_empty());
    assert!(
        cross_targets.iter().all(|t| t == "z" || t == "zebra"),
        "cross set from the self-trained model: {cross_targets:?}"
    );
    let json = serde_json::to_value(seed).unwrap();
    assert_eq!(json["built_from"]["self_set"], "subject", "{json}");
    assert_eq!(
        json["built_from"]["cross_set"],
        seed.self_model.as_str(),
        "{json}"
    );
}

/// Defect (issue 25.2): the offline second model was at once the cross model and M_C of the
/// behaviour-change test, and a near clone of the subject (93.8% agreement) whose self − cross
/// read as a null result. M_C is now a fine-tune of its own, the self-trained model continued
/// on the other model's object-level answers (where the tuner continues tuned models), and
/// self − cross is marked uninformative when the models behave alike.
#[tokio::test]
async fn behaviour_change_model_is_separate() {
    // Every tuned model answers like the subject: the two models behave alike.
    let (result, log) = tiny_experiment("apple pear plum", true).await;
    let seed = &result.seeds[0];
    let id_of = |role: &str| {
        result
            .fine_tunes
            .iter()
            .find(|f| f.role == role)
            .map(|f| f.model_id.clone())
    };
    let change = id_of("behaviour_change").expect("a behaviour-change fine-tune of its own");
    assert_ne!(Some(change.clone()), id_of("cross"));
    assert_ne!(Some(change.clone()), id_of("self"));
    let (_, config, data) = log.iter().find(|(m, _, _)| *m == change).unwrap();
    assert_eq!(
        config.base_model, seed.self_model,
        "continued from the self-trained model"
    );
    assert!(!data.is_empty());
    assert!(
        data.iter().all(|c| !is_hypothetical(c)),
        "only the other model's object-level answers"
    );
    assert!(seed.behaviour_change.is_some());
    let json = serde_json::to_value(&result).unwrap();
    let note = json["self_minus_cross_note"].as_str().unwrap_or_default();
    assert!(
        note.starts_with("uninformative: the models behave alike"),
        "{note:?}"
    );
    // Models that differ get no such note.
    let (differ, _) = tiny_experiment("zebra yak", true).await;
    let json = serde_json::to_value(&differ).unwrap();
    assert!(json.get("self_minus_cross_note").is_none(), "{json}");
}

/// Issue 25, defect 2, in the headline: the result marked self − cross uninformative, but the
/// headline (and with it the replication's summary table) still gave it the verdict of an
/// ordinary comparison ("null at this size …"), so a reader of the summary saw a null.
#[tokio::test]
async fn uninformative_self_minus_cross_is_the_headline_verdict() {
    use psyche_runner::experiment::ExperimentResult;
    let verdict_of = |r: &crate::LookingInwardResult| {
        r.headline()
            .into_iter()
            .find(|h| h.key == "self_minus_cross")
            .map(|h| h.verdict_text())
            .unwrap_or_default()
    };
    let (alike, _) = tiny_experiment("apple pear plum", true).await;
    let verdict = verdict_of(&alike);
    assert!(
        verdict.starts_with("uninformative: the models behave alike"),
        "{verdict:?}"
    );
    let (differ, _) = tiny_experiment("zebra yak", true).await;
    let verdict = verdict_of(&differ);
    assert!(!verdict.starts_with("uninformative"), "{verdict:?}");
}

/// Issue 24 (resume): a rerun with the same output directory and a
/// [`Resumable`](psyche_runner::training::Resumable) fine-tuner trains nothing and asks no
/// model anything again (every collection pass, calibration included, is read back), and
/// gives the same result. Before, calibration called the models again on every rerun.
#[tokio::test]
async fn rerun_redoes_no_fine_tune_and_no_collection_pass() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let run = || async {
        let subject = Scripted::new(
            "subject",
            |_| vec![("a".to_owned(), 0.6), ("b".to_owned(), 0.4)],
            |_, i| ["apple pear plum", "banana fig"][i % 2].to_owned(),
        );
        let subject_calls = subject.calls.clone();
        let tuner = Arc::new(psyche_runner::training::Resumable::new(
            crate::test_models::FakeTuner::new("zebra yak"),
            dir.path().join("fine-tunes"),
        ));
        let mut config = tiny_config(3);
        config.entropy_self_prediction = true;
        let result = crate::LookingInward::builder(config)
            .subject(Arc::new(subject))
            .tuner(tuner.clone())
            .out(dir.path().join("runs"))
            .progress(psyche_runner::ProgressMode::Quiet)
            .build()
            .unwrap()
            .run()
            .await
            .unwrap();
        let inner = tuner.get_ref();
        let trained = inner.log.lock().unwrap().len();
        let calls = subject_calls.load(Ordering::SeqCst) + inner.calls.load(Ordering::SeqCst);
        (result, trained, calls)
    };
    let (first, trained, calls) = run().await;
    assert_eq!(trained, 4, "persona, self, cross, behaviour change");
    assert!(calls > 0);
    assert!(
        first
            .calibration_untrained
            .as_ref()
            .is_some_and(|c| c.items > 0),
        "{:?}",
        first.calibration_untrained
    );
    let (again, trained, calls) = run().await;
    assert_eq!(trained, 0, "every fine-tune read back from the ledger");
    assert_eq!(calls, 0, "every collection pass read back from its record");
    let without_timings = |r: &crate::LookingInwardResult| {
        let mut v = serde_json::to_value(r).unwrap();
        v.as_object_mut().unwrap().remove("timings");
        v
    };
    assert_eq!(without_timings(&again), without_timings(&first));
}

/// The fine-tunes run through `train_runs`, one stage per role: a seed given twice is refused
/// when the experiment is built, not trained twice.
#[test]
fn duplicate_seeds_are_refused() {
    let mut config = tiny_config(0);
    config.seeds = vec![0, 1, 0];
    let err = crate::LookingInward::builder(config)
        .subject(std::sync::Arc::new(Scripted::new(
            "subject",
            |_| Vec::new(),
            |_, _| String::new(),
        )))
        .tuner(std::sync::Arc::new(crate::test_models::FakeTuner::new("x")))
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("seeds") && err.contains("seed 0"), "{err}");
}

/// Issue 24: the shared headlines carry every comparison the replication report showed, with
/// the paper's numbers, and the "models behave alike" flag as context of self − cross.
#[tokio::test]
async fn headlines_carry_the_papers_numbers_and_the_alike_flag() {
    use psyche_runner::experiment::ExperimentResult;
    let (result, _) = tiny_experiment("apple pear plum", true).await;
    let headlines = result.headline();
    let keys: Vec<&str> = headlines.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "self_minus_cross",
            "self_minus_baseline",
            "calibration_cross_minus_self",
            "behaviour_change_new_minus_old"
        ]
    );
    for h in &headlines {
        assert_eq!(h.paper, "Looking Inward");
        assert!(
            h.paper_effect.is_some() && h.paper_result.is_some(),
            "{h:?}"
        );
    }
    let cross = &headlines[0];
    assert_eq!(cross.contrast, result.self_minus_cross);
    assert!((cross.paper_effect.unwrap() - 0.128).abs() < 1e-12);
    assert!(
        cross
            .context
            .iter()
            .any(|c| c.contains("uninformative: the models behave alike")),
        "{:?}",
        cross.context
    );
    assert_eq!(headlines[1].base, Some(result.untrained.micro.ci.clone()));
    // One run had the behaviour-change test: one value per arm, no run-level interval.
    assert!(headlines[3].contrast.p_value().is_none());
}
