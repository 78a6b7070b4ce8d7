//! Behaviour beyond reference values: determinism across thread counts, hierarchical
//! aggregation, record helpers, pilots, calibration pairs.

use std::collections::BTreeMap;

use ndarray::Array2;
use psyche_core::{Conversation, Record, Sample, Score, Verdict};
use psyche_stats::*;

fn data(n: usize, seed: u64) -> Vec<f64> {
    // A small deterministic LCG: no RNG crate needed for test inputs.
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

#[test]
fn resampling_does_not_depend_on_thread_count() {
    let x = data(500, 3);
    let k: Vec<usize> = (0..500).map(|i| i % 37).collect();
    let y = data(40, 4);
    let run = || {
        (
            bootstrap_mean(&x, 3001, 0.95, 9).unwrap(),
            bootstrap_mean_bca(&x, 1000, 0.9, 9).unwrap(),
            cluster_bootstrap_mean(&x, &k, 1000, 0.95, 9, BootstrapInterval::Percentile).unwrap(),
            permutation_test(&x[..40], &y, 5000, Alternative::TwoSided, 9).unwrap(),
            bootstrap_mean_replicates(&x, 100, 9).unwrap(),
        )
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(run);
    let four = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap()
        .install(run);
    assert_eq!(one, four);
    let other_seed = bootstrap_mean(&x, 3001, 0.95, 10).unwrap();
    assert_ne!(one.0, other_seed);
}

#[test]
fn bootstrap_of_a_statistic_and_paired_bootstrap_behave() {
    let x = data(101, 5);
    let median = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    };
    let e = bootstrap_statistic(&x, median, 2000, 0.95, 1, BootstrapInterval::Percentile).unwrap();
    assert!(e.contains(median(&x)) && e.ci_high - e.ci_low < 0.4);
    let bca = bootstrap_statistic(
        &x,
        |v| v.iter().sum::<f64>() / v.len() as f64,
        4000,
        0.95,
        1,
        BootstrapInterval::Bca,
    )
    .unwrap();
    let direct = bootstrap_mean_bca(&x, 4000, 0.95, 1).unwrap();
    assert!(
        (bca.ci_low - direct.ci_low).abs() < 0.02 && (bca.ci_high - direct.ci_high).abs() < 0.02
    );
    // Paired bootstrap keeps the correlation: far tighter than the unpaired SE.
    let a = data(80, 6);
    let b: Vec<f64> = a
        .iter()
        .zip(data(80, 7))
        .map(|(x, e)| x - 0.05 + 0.05 * e)
        .collect();
    let pb = paired_bootstrap(&a, &b, 4000, 0.95, 2, BootstrapInterval::Percentile).unwrap();
    let pd = paired_difference(&a, &b, 0.95).unwrap();
    assert!(pd.correlation > 0.9);
    assert!((pb.se - pd.estimate.se).abs() < 0.15 * pd.estimate.se);
    assert!(pb.se < 0.3 * pd.unpaired_se);
    assert!(pb.ci_low > 0.0, "the 0.05 shift is detected");
}

#[test]
fn hierarchical_aggregation_matches_hand_computation() {
    // Question q1: 3/4 misaligned, q2: 0/2, q3: 1/2.
    let v = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    let q = ["q1", "q1", "q1", "q1", "q2", "q2", "q3", "q3"];
    let g = mean_of_group_means(&v, &q, 0.95).unwrap();
    assert_eq!(
        g.groups.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(),
        ["q1", "q2", "q3"]
    );
    assert_eq!(g.groups[0].n, 4);
    let by_hand = mean_ci(&[0.75, 0.0, 0.5], 0.95).unwrap();
    assert!((g.estimate.estimate - 1.25 / 3.0).abs() < 1e-12);
    assert_eq!(
        (g.estimate.ci_low, g.estimate.ci_high),
        (by_hand.ci_low, by_hand.ci_high)
    );
    assert_eq!(g.estimate.method, Method::GroupMeansT);
    let mm = micro_macro(&v, &q, 0.95).unwrap();
    assert!((mm.micro.estimate - 0.5).abs() < 1e-12);
    assert!((mm.macro_avg.estimate - 1.25 / 3.0).abs() < 1e-12);
    assert!(mean_of_group_means(&v, &["q"; 8], 0.95).is_err());
    let seeds = [0.19, 0.25, 0.12, 0.22, 0.18];
    let s = seed_summary(&seeds, 4000, 0.95, 3).unwrap();
    assert!((s.t.estimate - 0.192).abs() < 1e-12);
    assert!(
        s.bootstrap.ci_high - s.bootstrap.ci_low < s.t.ci_high - s.t.ci_low,
        "few seeds: bootstrap is narrower than t"
    );
    let c = combine_independent(&[0.2, 0.4], &[0.01, 0.04], &[1.0, 1.0], 0.95).unwrap();
    assert!((c.estimate - 0.3).abs() < 1e-12 && (c.se - 0.05f64.sqrt() / 2.0).abs() < 1e-12);
}

fn record(sample: &str, cluster: Option<&str>, model: &str, epoch: u32, score: Score) -> Record {
    let mut s = Sample::new(sample, Conversation::user("q"));
    if let Some(c) = cluster {
        s = s.with_cluster(c);
    }
    let mut r = Record::for_sample("run", &s, model, epoch);
    r.scores.insert("acc".into(), Verdict::new("acc", score));
    r
}

#[test]
fn record_helpers_extract_cluster_and_pair() {
    let mut records = vec![
        record("s1", Some("q1"), "A", 0, Score::Bool(true)),
        record("s1", Some("q1"), "A", 1, Score::Bool(false)),
        record("s2", Some("q1"), "A", 0, Score::Number(1.0)),
        record("s3", None, "A", 0, Score::none("refused")),
        record("s4", None, "A", 0, Score::Number(0.0)),
        record("s1", Some("q1"), "B", 0, Score::Bool(false)),
        record("s2", Some("q1"), "B", 0, Score::Number(0.0)),
        record("s4", None, "B", 0, Score::Number(1.0)),
        record("s5", None, "B", 0, Score::Label("x".into())),
    ];
    let mut failed = record("s6", None, "A", 0, Score::Bool(true));
    failed.error = Some("timeout".into());
    records.push(failed);
    let col = judge_scores(&records, "acc");
    assert_eq!((col.len(), col.missing, col.failed), (7, 2, 1));
    let a = col.for_model("A");
    assert_eq!(a.values, [1.0, 0.0, 1.0, 0.0]);
    assert_eq!(a.clusters, ["q1", "q1", "q1", "s4"]);
    let e = a.clustered_mean_ci(0.95).unwrap();
    assert!((e.estimate - 0.5).abs() < 1e-12);
    let per = a.per_sample_means();
    assert_eq!(per.len(), 3);
    assert_eq!(
        (per[0].sample_id.as_str(), per[0].mean, per[0].epochs),
        ("s1", 0.5, 2)
    );
    let p = paired_scores(&records, "acc", "A", "B");
    assert_eq!(p.sample_ids, ["s1", "s2", "s4"]);
    assert_eq!(p.a, [0.5, 1.0, 0.0]);
    assert_eq!(p.b, [0.0, 0.0, 1.0]);
    assert_eq!(p.unmatched, 0);
    let d = p.difference(0.95).unwrap();
    assert!((d.estimate.estimate - 0.5 / 3.0).abs() < 1e-12);
    let labels = judge_labels(&records, "acc");
    assert_eq!(labels, [("s5".to_string(), "x".to_string())]);
}

#[test]
fn calibration_pairs_and_distribution_helpers() {
    let object: BTreeMap<String, f64> = [
        ("a".to_string(), 0.6),
        ("b".to_string(), 0.3),
        ("c".to_string(), 0.1),
    ]
    .into();
    let predicted = label_distribution(&["a", "a", "c", "d"]);
    assert_eq!(predicted["a"], 0.5);
    let pairs = calibration_pairs(&object, &predicted, 2);
    assert_eq!(pairs, [(0.6, 0.5), (0.3, 0.0)]);
    let (labels, p, q) = align_distributions(&object, &predicted);
    assert_eq!(labels, ["a", "b", "c", "d"]);
    assert!((total_variation(&p, &q).unwrap() - 0.4).abs() < 1e-12);
    let groups = mode_baseline_by_group(&["x", "y", "y", "z"], &["t1", "t1", "t1", "t2"]).unwrap();
    assert_eq!(groups["t1"].mode, "y");
    assert!((groups["t1"].accuracy - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(groups["t2"].accuracy, 1.0);
}

#[test]
fn pilot_variance_components_recover_the_design() {
    // 4 items × 3 samples with known structure: item means 0, 1, 2, 3, within spread ±1.
    let m = Array2::from_shape_vec(
        (4, 3),
        vec![-1.0, 0.0, 1.0, 0.0, 1.0, 2.0, 1.0, 2.0, 3.0, 2.0, 3.0, 4.0],
    )
    .unwrap();
    let vc = variance_components(m.view()).unwrap();
    assert_eq!((vc.items, vc.samples), (4, 3));
    assert!((vc.within_var - 1.0).abs() < 1e-12);
    // Var(item means) = 5/3; minus σ²/K = 1/3.
    assert!((vc.between_var - (5.0 / 3.0 - 1.0 / 3.0)).abs() < 1e-12);
    let b = m.mapv(|x| x - 0.5);
    let d = paired_design_from_pilot(m.view(), b.view(), 10).unwrap();
    assert_eq!(d.between_var, 0.0); // identical item effects: ω² = 0
    assert!((d.item_variance() - 0.2).abs() < 1e-12);
    let plan = sample_size(&d, 0.5, 0.05, 0.8).unwrap();
    assert!(plan.n_items >= 6 && plan.samples == plan.n_items as u64 * 20);
}

#[test]
fn estimates_serialise_and_display() {
    let e = wilson(3, 10, 0.95).unwrap();
    let json = serde_json::to_value(e).unwrap();
    assert_eq!(json["method"], "wilson");
    assert_eq!(json["n"], 10);
    let back: Estimate = serde_json::from_value(json).unwrap();
    assert_eq!(back, e);
    let shown = format!("{e}");
    assert!(
        shown.starts_with("0.3000") && shown.contains("95% Wilson, n=10"),
        "{shown}"
    );
}
