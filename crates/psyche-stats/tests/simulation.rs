//! The coverage simulator, run with a fixed seed: nominal 95% intervals must cover the planted
//! truth 93–97% of the time, and the planner's power must be achieved.

use psyche_stats::{OrganismSpec, sample_size, simulate_coverage};

/// Self-prediction 0.45 vs cross-prediction 0.35, items vary (τ = 0.1, r = 0.6), K = 10.
fn spec(items: usize) -> OrganismSpec {
    OrganismSpec {
        items,
        samples_per_item: 10,
        p_a: 0.45,
        p_b: 0.35,
        between_sd: 0.10,
        correlation: 0.6,
    }
}

#[test]
fn nominal_95_intervals_cover_93_to_97_percent_and_planned_power_is_achieved() {
    // Plan the eval first: n for 80% power to detect the planted 0.10 difference.
    let plan = sample_size(&spec(2).design(), 0.10, 0.05, 0.80).unwrap();
    assert_eq!(plan.n_items, 42);
    let report = simulate_coverage(&spec(plan.n_items), 2000, 0.95, 20261127).unwrap();
    eprintln!("{report:#?}");
    // 2000 replications: Monte Carlo SE of a 95% coverage ≈ 0.005, so [0.93, 0.97] is ±4 SE.
    for (name, m) in [
        ("mean", report.mean),
        ("clustered mean", report.clustered_mean),
        ("paired difference", report.paired_difference),
    ] {
        assert_eq!(m.failures, 0, "{name}");
        assert!(
            (0.93..=0.97).contains(&m.coverage),
            "{name}: coverage {} outside [0.93, 0.97]",
            m.coverage
        );
    }
    // Ignoring the clustering is visibly wrong: the pooled Wilson interval under-covers.
    assert!(
        report.naive_wilson.coverage < 0.90,
        "naive Wilson coverage {}",
        report.naive_wilson.coverage
    );
    assert!(report.naive_wilson.mean_width < report.clustered_mean.mean_width);
    assert!(report.bootstrap_percentile.is_none());
    // Power: the normal-approximation plan says 0.80; the t-test the simulation runs on 42
    // items has a little less (power_t). The simulated rejection rate must match power_t
    // within 4 MC SE (≈ 0.038) and not exceed the normal plan by more than 3 MC SE.
    assert!((report.planned_power - 0.80).abs() < 0.01);
    assert!(report.planned_power_t < report.planned_power);
    assert!(
        (report.achieved_power - report.planned_power_t).abs() < 4.0 * report.power_mc_se
            && report.achieved_power < report.planned_power + 3.0 * report.power_mc_se,
        "planned {} / t {} achieved {} (mc se {})",
        report.planned_power,
        report.planned_power_t,
        report.achieved_power,
        report.power_mc_se
    );
}

#[test]
fn percentile_bootstrap_coverage_is_reported_on_request() {
    // 300 replications × 400 resamples keeps this fast in the dev profile; the MC SE of the
    // coverage is ≈ 0.013, so the band is wide. (2,000 × 1,000 gave 93.85%; see
    // docs/statistics.md.)
    let report =
        psyche_stats::simulate_coverage_with_bootstrap(&spec(42), 300, 0.95, 20261127, 400)
            .unwrap();
    let b = report.bootstrap_percentile.unwrap();
    assert_eq!(b.failures, 0);
    assert!(
        (0.89..=0.98).contains(&b.coverage),
        "bootstrap coverage {}",
        b.coverage
    );
    // Same replications as the plain run: the other methods are unchanged.
    let plain = simulate_coverage(&spec(42), 300, 0.95, 20261127).unwrap();
    assert_eq!(plain.mean, report.mean);
}

#[test]
fn simulation_is_deterministic_and_rejects_impossible_specs() {
    let a = simulate_coverage(&spec(20), 100, 0.9, 1).unwrap();
    let b = simulate_coverage(&spec(20), 100, 0.9, 1).unwrap();
    assert_eq!(a, b);
    let c = simulate_coverage(&spec(20), 100, 0.9, 2).unwrap();
    assert_ne!(a, c);
    let mut bad = spec(20);
    bad.between_sd = 0.3; // 0.35 − 0.3·√3·(0.6+0.8) < 0
    assert!(simulate_coverage(&bad, 10, 0.95, 1).is_err());
    let mut bad = spec(1);
    bad.items = 1;
    assert!(simulate_coverage(&bad, 10, 0.95, 1).is_err());
}
