//! Edge cases: n = 0, n = 1, all-equal values, one cluster, p = 0 or 1, bad parameters.
//! Each returns a typed error or a documented finite result — never NaN, never a panic.

use psyche_stats::*;

fn finite(e: &Estimate) {
    for v in [e.estimate, e.se, e.ci_low, e.ci_high] {
        assert!(v.is_finite(), "{e:?}");
    }
    assert!(e.ci_low <= e.estimate && e.estimate <= e.ci_high, "{e:?}");
}

#[test]
fn empty_and_single_observations_are_errors() {
    let empty: [f64; 0] = [];
    assert!(matches!(
        mean_ci(&empty, 0.95),
        Err(StatsError::TooFew {
            field: "values",
            needed: 2,
            got: 0
        })
    ));
    assert!(matches!(
        mean_ci(&[1.0], 0.95),
        Err(StatsError::TooFew { got: 1, .. })
    ));
    assert!(mean(&empty).is_err());
    assert_eq!(mean(&[4.0]).unwrap(), 4.0);
    assert!(bootstrap_mean(&[1.0], 100, 0.95, 0).is_err());
    assert!(bootstrap_mean_bca(&empty, 100, 0.95, 0).is_err());
    assert!(paired_difference(&[1.0], &[0.0], 0.95).is_err());
    assert!(wilson(0, 0, 0.95).is_err());
    assert!(clopper_pearson(0, 0, 0.95).is_err());
    assert!(mode_baseline::<&str>(&[]).is_none());
    assert!(calibration_curve(&[], 10).is_err());
    assert!(mcnemar(&[], &[]).is_err());
    assert!(permutation_test(&empty, &[1.0], 10, Alternative::TwoSided, 0).is_err());
    assert!(entropy(&empty).is_err());
    assert!(cohen_kappa::<&str>(&[], &[]).is_err());
    let empty_units: Vec<Vec<f64>> = vec![vec![1.0], vec![]];
    assert!(matches!(
        krippendorff_alpha_interval(&empty_units),
        Err(StatsError::TooFew { .. })
    ));
}

#[test]
fn all_equal_values_give_zero_width_intervals() {
    let x = [0.7; 12];
    let e = mean_ci(&x, 0.95).unwrap();
    finite(&e);
    assert_eq!((e.se, e.ci_low, e.ci_high), (0.0, 0.7, 0.7));
    let k: Vec<usize> = (0..12).map(|i| i / 3).collect();
    let c = clustered_mean_ci(&x, &k, 0.95).unwrap();
    finite(&c);
    assert_eq!(c.se, 0.0);
    for est in [
        bootstrap_mean(&x, 200, 0.95, 1).unwrap(),
        bootstrap_mean_bca(&x, 200, 0.95, 1).unwrap(),
        cluster_bootstrap_mean(&x, &k, 200, 0.95, 1, BootstrapInterval::Bca).unwrap(),
        bootstrap_statistic(&x, |v| v[0], 200, 0.95, 1, BootstrapInterval::Bca).unwrap(),
    ] {
        finite(&est);
        assert_eq!((est.ci_low, est.ci_high), (0.7, 0.7));
    }
    let d = paired_difference(&x, &x, 0.95).unwrap();
    finite(&d.estimate);
    assert_eq!((d.correlation, d.t, d.p_value), (0.0, 0.0, 1.0));
    let shifted: Vec<f64> = x.iter().map(|v| v - 0.5).collect();
    let d = paired_difference(&x, &shifted, 0.95).unwrap();
    assert_eq!(d.p_value, 0.0);
    assert_eq!(d.t, f64::INFINITY);
    // Calibration with every expected value equal: a single bin.
    let cal = calibration_curve(&[(0.5, 0.4), (0.5, 0.6), (0.5, 0.2)], 10).unwrap();
    assert_eq!(cal.points.len(), 1);
    assert!((cal.mad_x100 - 10.0).abs() < 1e-9);
    // Kappa and alpha are undefined when there is one label throughout.
    assert!(cohen_kappa(&["a", "a"], &["a", "a"]).is_err());
    assert!(krippendorff_alpha_interval(&[vec![2.0, 2.0], vec![2.0, 2.0]]).is_err());
    assert_eq!(entropy(&[1.0, 0.0]).unwrap(), 0.0);
}

#[test]
fn one_cluster_is_an_error_naming_clusters() {
    let x = [1.0, 0.0, 1.0];
    let k = ["q", "q", "q"];
    assert!(matches!(
        clustered_mean_ci(&x, &k, 0.95),
        Err(StatsError::TooFew {
            field: "clusters",
            needed: 2,
            got: 1
        })
    ));
    assert!(cluster_bootstrap_mean(&x, &k, 100, 0.95, 0, BootstrapInterval::Percentile).is_err());
    assert!(matches!(
        clustered_mean_ci(&x, &["a", "b"], 0.95),
        Err(StatsError::LengthMismatch {
            field: "clusters",
            expected: 3,
            got: 2
        })
    ));
}

#[test]
fn proportions_at_zero_and_one_are_finite_and_clamped() {
    for (x, n) in [(0u64, 1u64), (1, 1), (0, 50), (50, 50)] {
        for e in [
            wilson(x, n, 0.95).unwrap(),
            clopper_pearson(x, n, 0.95).unwrap(),
            jeffreys(x, n, 0.95).unwrap(),
            beta_posterior(x, n, 1.0, 1.0, 0.95).unwrap(),
        ] {
            finite(&e);
            assert!(e.ci_low >= 0.0 && e.ci_high <= 1.0);
            assert!(
                e.ci_high > e.ci_low,
                "a 0/n or n/n rate still has a non-trivial interval"
            );
        }
    }
    assert_eq!(wilson(0, 50, 0.95).unwrap().ci_low, 0.0);
    assert_eq!(clopper_pearson(50, 50, 0.95).unwrap().ci_high, 1.0);
    assert!(matches!(
        wilson(3, 2, 0.95),
        Err(StatsError::Invalid {
            field: "successes",
            ..
        })
    ));
    let t = two_proportion_test(0, 10, 0, 12, 0.95).unwrap();
    assert_eq!((t.z, t.p_value), (0.0, 1.0));
    let m = mcnemar_counts(0, 0);
    assert_eq!(m.p_value, 1.0);
}

#[test]
fn invalid_parameters_name_the_field() {
    let x = [1.0, 2.0, 3.0];
    for level in [0.0, 1.0, -0.5, f64::NAN, 95.0] {
        assert!(matches!(
            mean_ci(&x, level),
            Err(StatsError::OutOfRange { field: "level", .. })
        ));
    }
    assert!(matches!(
        mean_ci(&[1.0, f64::NAN, 2.0], 0.95),
        Err(StatsError::NonFinite {
            field: "values",
            index: 1,
            ..
        })
    ));
    assert!(matches!(
        bootstrap_mean(&x, 1, 0.95, 0),
        Err(StatsError::TooFew {
            field: "resamples",
            ..
        })
    ));
    assert!(holm(&[0.1, 1.5]).is_err());
    assert!(beta_posterior(1, 2, 0.0, 1.0, 0.95).is_err());
    assert!(t_quantile(0.5, -1.0).is_err());
    assert!(t_quantile(1.0, 3.0).is_err());
    let d = ItemDesign::single(0.01, 0.2, 5);
    assert!(sample_size(&d, 0.0, 0.05, 0.8).is_err());
    assert!(sample_size(&d, 0.1, 0.05, 0.01).is_err());
    assert!(power(&d, 0.1, 0, 0.05).is_err());
    assert!(sample_size(&ItemDesign::single(0.0, 0.0, 5), 0.1, 0.05, 0.8).is_err());
    assert!(entropy(&[0.5, -0.1]).is_err());
    assert!(
        kl_divergence(&[0.5, 0.5], &[1.0, 0.0])
            .unwrap()
            .is_infinite()
    );
    assert!(
        kl_divergence_smoothed(&[0.5, 0.5], &[1.0, 0.0], 1e-6)
            .unwrap()
            .is_finite()
    );
    // Errors render with the field name.
    let msg = mean_ci(&[1.0], 0.95).unwrap_err().to_string();
    assert!(
        msg.contains("values") && msg.contains('2') && msg.contains('1'),
        "{msg}"
    );
}

#[test]
fn mcnemar_records_its_test_and_the_corrected_statistic_is_never_negative() {
    let exact = mcnemar_counts(3, 7);
    assert_eq!(exact.test, McNemarTest::Exact);
    assert_eq!(exact.statistic, 3.0);
    // b = c: no evidence either way; the corrected statistic is clamped at 0 (statsmodels
    // leaves it at 1/(b + c)), so p = 1.
    let tie = mcnemar_counts_with(4, 4, McNemarTest::ChiSquare { correction: true });
    assert_eq!((tie.statistic, tie.p_value), (0.0, 1.0));
    let none = mcnemar_counts_with(0, 0, McNemarTest::ChiSquare { correction: false });
    assert_eq!((none.statistic, none.p_value), (0.0, 1.0));
    let m = mcnemar_with(
        &[true, true, false],
        &[false, true, true],
        McNemarTest::ChiSquare { correction: true },
    )
    .unwrap();
    assert_eq!((m.a_only, m.b_only, m.concordant), (1, 1, 1));
    assert_eq!(m.test, McNemarTest::ChiSquare { correction: true });
}

#[test]
fn sample_size_with_zero_between_item_variance_never_plans_a_single_item() {
    // ω² = 0 and 400 samples per item: the exact solution is under one item (196 samples);
    // one item leaves no interval across items, so the plan asks for 2 and says why.
    let d = ItemDesign::single(0.0, 0.25, 400);
    let plan = sample_size(&d, 0.1, 0.05, 0.8).unwrap();
    assert!(plan.n_exact < 1.0, "{plan:?}");
    assert_eq!(plan.n_items, 2);
    assert_eq!(plan.samples, 800);
    assert!(plan.between_var_zero);
    // With items that differ nothing changes.
    let plan = sample_size(&ItemDesign::single(0.01, 0.25, 400), 0.1, 0.05, 0.8).unwrap();
    assert!(!plan.between_var_zero);
}
