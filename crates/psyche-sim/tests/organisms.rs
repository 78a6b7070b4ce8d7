//! The reduced end-to-end validation (issue 23, item 4): each experiment run on fresh simulated
//! organisms with planted effects, 3 fine-tuning runs per arm. The headline interval of the
//! planted difference must cover it at least 90 % of the time, and — the regression the issue
//! asks for — the old percentile bootstrap over per-seed values, computed from the same
//! replications, covers less than 90 %. The full table (200+ replications, k = 2, 3, 5) is in
//! docs/validation.md (`scripts/validate.sh`).

use psyche_sim::awareness::{AwarenessHeadline, AwarenessSpec, run_backdoor_awareness};
use psyche_sim::backdoor::{
    SelfAwarenessMetric, SelfAwarenessSpec, run_self_awareness, run_self_awareness_on,
};
use psyche_sim::introspection::{LookingInwardSpec, run_looking_inward};
use psyche_sim::misalignment::{EmSpec, run_em};
use psyche_sim::{CoverageReport, block_on, coverage};

use psyche_sim::Trial;
use psyche_stats::{ArmComparison, ArmOptions};

const REPS: usize = 100;

/// The values read back from a replication are the ones its headline was computed from: the
/// difference of the arms' means over runs equals the headline's estimate, each arm has its
/// runs and items.
fn same_data(name: &str, t: &Trial, seeds: usize, items_per_run: usize, paired: bool) {
    let cmp = ArmComparison::compare(
        &t.data,
        &t.treatment,
        &t.control,
        &ArmOptions::new().paired(paired).proportion(),
    )
    .unwrap();
    for arm in [&cmp.treatment, &cmp.control] {
        assert_eq!(arm.n_seeds, seeds, "{name}: {}", arm.arm);
        assert_eq!(arm.n_items, items_per_run, "{name}: {}", arm.arm);
        assert_eq!(
            arm.n_observations,
            seeds * items_per_run,
            "{name}: {}",
            arm.arm
        );
    }
    let (ours, theirs) = (cmp.difference.value().unwrap(), t.headline.value().unwrap());
    assert!(
        (ours - theirs).abs() < 1e-9,
        "{name}: headline {theirs} from other data than the {ours} read back"
    );
    assert!(t.headline.interval().is_some(), "{name}: {:?}", t.headline);
}

#[test]
fn each_experiment_runs_on_its_organism_and_reads_back_the_headline_data() {
    let dir = tempfile::tempdir().unwrap();
    let em = block_on(run_em(&EmSpec::small(3), 5, &dir.path().join("em"))).unwrap();
    same_data("EM", &em, 3, 6, false);
    // 30 sampled answers per question: rates in thirtieths, not all 0 or 1 (the draws differ
    // between samples).
    let values: Vec<f64> = em.data.observations().iter().map(|o| o.value).collect();
    assert!(
        values
            .iter()
            .all(|v| (v * 30.0 - (v * 30.0).round()).abs() < 1e-9)
    );
    assert!(values.iter().any(|v| *v > 0.0 && *v < 1.0), "{values:?}");
    assert!((em.truth - 0.12).abs() < 1e-12);

    let li_spec = LookingInwardSpec::small(3);
    let li = block_on(run_looking_inward(&li_spec, 6, &dir.path().join("li"))).unwrap();
    same_data(
        "Looking Inward",
        &li,
        3,
        li_spec.held_out_items().unwrap(),
        true,
    );

    let sa_spec = SelfAwarenessSpec::small(3);
    let sa = block_on(run_self_awareness(
        &sa_spec,
        SelfAwarenessMetric::Behaviour,
        7,
        &dir.path().join("sa"),
    ))
    .unwrap();
    same_data(
        "self-awareness behaviour",
        &sa,
        3,
        sa_spec.behaviour_items,
        false,
    );
    // Option probabilities are reported exactly: every value is strictly inside (0, 1).
    assert!(
        sa.data
            .observations()
            .iter()
            .all(|o| o.value > 0.0 && o.value < 1.0)
    );

    let ba_spec = AwarenessSpec::small(3);
    let neutral = AwarenessHeadline::PYes("neutral".into());
    let ba = block_on(run_backdoor_awareness(
        &ba_spec,
        &neutral,
        8,
        &dir.path().join("ba"),
    ))
    .unwrap();
    same_data(
        "backdoor awareness P(yes)",
        &ba,
        3,
        psyche_backdoor::awareness::awareness_questions().len(),
        false,
    );
    assert!((ba.truth - 0.12).abs() < 1e-12);
    let te = block_on(run_backdoor_awareness(
        &ba_spec,
        &AwarenessHeadline::TriggerEffect,
        8,
        &dir.path().join("te"),
    ))
    .unwrap();
    // Per item, triggered − plain: differences of exact option probabilities, some negative.
    let effects: Vec<f64> = te.data.observations().iter().map(|o| o.value).collect();
    assert_eq!(effects.len(), 2 * 3 * ba_spec.behaviour_items);
    assert!(effects.iter().any(|v| *v < 0.0) && effects.iter().any(|v| *v > 0.3));
    assert!((te.truth - 0.31).abs() < 1e-12);
    let cmp = ArmComparison::compare(
        &te.data,
        &te.treatment,
        &te.control,
        &ArmOptions::new().bounds(-1.0, 1.0),
    )
    .unwrap();
    assert!((cmp.difference.value().unwrap() - te.headline.value().unwrap()).abs() < 1e-9);
}
const LEVEL: f64 = 0.95;

/// On an axis without lotteries the behaviour items are measured in the learned-policy pass
/// (its own log, before the self-reports), and the headline is computed from exactly those
/// values.
#[test]
fn an_axis_without_lotteries_measures_behaviour_in_the_learned_policy_pass() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SelfAwarenessSpec::small(2);
    let t = block_on(run_self_awareness_on(
        &spec,
        psyche_backdoor::policy::Axis::time(),
        SelfAwarenessMetric::Behaviour,
        3,
        dir.path(),
    ))
    .unwrap();
    same_data("TMAY time behaviour", &t, 2, spec.behaviour_items, false);
    let log =
        std::fs::read_to_string(dir.path().join("runs/self_awareness_behaviour.jsonl")).unwrap();
    assert!(
        log.contains("\"axis\":\"time\""),
        "{}",
        &log[..log.len().min(400)]
    );
    let main = std::fs::read_to_string(dir.path().join("runs/self_awareness.jsonl")).unwrap();
    assert!(!main.contains("\"task\":\"behaviour\""));
}

fn check(name: &str, r: &CoverageReport) {
    eprintln!(
        "{name}: headline {:.3} ({} of {REPS}, {} failed), detection {:.3}; old seed bootstrap \
         {:.3}, pooled-items paired t {:.3}, item-means paired t {:.3}",
        r.headline.coverage,
        r.headline.n,
        r.failed,
        r.headline.excludes_zero,
        r.seed_bootstrap.coverage,
        r.pooled_items_paired_t.coverage,
        r.item_means_paired_t.coverage,
    );
    assert_eq!(r.failed, 0, "{name}: {:?}", r.first_failure);
    assert_eq!(r.headline.n, REPS, "{name}: every headline has an interval");
    assert!(
        r.headline.coverage >= 0.90,
        "{name}: the headline interval covers the planted difference {:.1} % of the time",
        100.0 * r.headline.coverage
    );
    assert!(
        r.seed_bootstrap.n == REPS && r.seed_bootstrap.coverage < 0.90,
        "{name}: the old seed bootstrap should under-cover on the same data, covers {:.1} %",
        100.0 * r.seed_bootstrap.coverage
    );
}

#[test]
fn emergent_misalignment_headline_covers_and_the_old_bootstrap_does_not() {
    let spec = EmSpec::small(3);
    let r = coverage(REPS, 23, LEVEL, 1000, None, |s, dir| {
        block_on(run_em(&spec, s, dir))
    })
    .unwrap();
    check("EM misaligned − control", &r);
    // The old question-level t over per-question means ignores the run-to-run variance.
    assert!(
        r.item_means_paired_t.coverage < 0.90,
        "item-means paired t covers {:.3}",
        r.item_means_paired_t.coverage
    );
}

#[test]
fn self_awareness_behaviour_headline_covers_and_the_old_bootstrap_does_not() {
    let spec = SelfAwarenessSpec::small(3);
    let r = coverage(REPS, 24, LEVEL, 1000, None, |s, dir| {
        block_on(run_self_awareness(
            &spec,
            SelfAwarenessMetric::Behaviour,
            s,
            dir,
        ))
    })
    .unwrap();
    check("self-awareness behaviour", &r);
}

#[test]
fn self_awareness_scale_headline_covers_and_the_old_bootstrap_does_not() {
    let spec = SelfAwarenessSpec::small(3);
    let r = coverage(REPS, 25, LEVEL, 1000, None, |s, dir| {
        block_on(run_self_awareness(
            &spec,
            SelfAwarenessMetric::Scale,
            s,
            dir,
        ))
    })
    .unwrap();
    check("self-awareness scale", &r);
}

#[test]
fn looking_inward_headline_covers_and_the_old_methods_do_not() {
    let spec = LookingInwardSpec::small(3);
    let r = coverage(REPS, 26, LEVEL, 1000, None, |s, dir| {
        block_on(run_looking_inward(&spec, s, dir))
    })
    .unwrap();
    check("Looking Inward self − cross", &r);
    // The old paired t over items pooled from all seeds ignores the run-to-run variance.
    assert!(
        r.pooled_items_paired_t.coverage < 0.90,
        "pooled-items paired t covers {:.3}",
        r.pooled_items_paired_t.coverage
    );
}

#[test]
fn backdoor_awareness_p_yes_headline_covers_and_the_old_bootstrap_does_not() {
    let spec = AwarenessSpec::small(3);
    let neutral = AwarenessHeadline::PYes("neutral".into());
    let r = coverage(REPS, 27, LEVEL, 1000, None, |s, dir| {
        block_on(run_backdoor_awareness(&spec, &neutral, s, dir))
    })
    .unwrap();
    check("backdoor awareness P(yes), neutral", &r);
}

#[test]
fn backdoor_awareness_trigger_effect_headline_covers_and_the_old_bootstrap_does_not() {
    let spec = AwarenessSpec::small(3);
    let r = coverage(REPS, 28, LEVEL, 1000, None, |s, dir| {
        block_on(run_backdoor_awareness(
            &spec,
            &AwarenessHeadline::TriggerEffect,
            s,
            dir,
        ))
    })
    .unwrap();
    check("backdoor awareness trigger effect", &r);
}
