//! ArmComparison, Stat, HolmFamily and the paired-proportions interval: reference values from
//! SciPy / statsmodels (`scripts/arms_fixtures.py` → `tests/fixtures/arms_reference.json`) and
//! a published worked example, plus behaviour on edge cases.

use psyche_stats::{
    ArmComparison, ArmData, ArmOptions, Detectable, HolmFamily, IntervalVerdict, Method,
    Observation, SeedDesign, Stat, StatsError, mean_ci, paired_proportion_difference,
    paired_proportion_difference_of,
};
use serde_json::Value;

fn fixtures() -> Value {
    serde_json::from_str(include_str!("fixtures/arms_reference.json")).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn fv(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(f).collect()
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

fn per_seed(t: &[f64], c: &[f64]) -> ArmData {
    let mut data = ArmData::new();
    for (s, v) in t.iter().enumerate() {
        data.seed_value("t", s, *v);
    }
    for (s, v) in c.iter().enumerate() {
        data.seed_value("c", s, *v);
    }
    data
}

#[test]
fn seed_level_tests_match_scipy() {
    let fx = fixtures();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 6);
    let mut welch_seen = 0;
    for (i, case) in cases.iter().enumerate() {
        let (t, c, level) = (
            fv(&case["treatment"]),
            fv(&case["control"]),
            f(&case["level"]),
        );
        let data = per_seed(&t, &c);
        let cmp = ArmComparison::compare(&data, "t", "c", &ArmOptions::new().level(level)).unwrap();
        let (want, method) = if t.len() == c.len() {
            (&case["pooled"], Method::PooledTOverSeeds)
        } else {
            welch_seen += 1;
            (&case["welch"], Method::WelchOverSeeds)
        };
        assert_eq!(cmp.method, method, "case {i}");
        let e = cmp.difference.estimate().unwrap();
        close(e.ci_low, f(&want["low"]), 1e-9, &format!("case {i} low"));
        close(e.ci_high, f(&want["high"]), 1e-9, &format!("case {i} high"));
        close(
            cmp.p_value.unwrap(),
            f(&want["p"]),
            1e-9,
            &format!("case {i} p"),
        );
        close(
            cmp.df.unwrap(),
            f(&want["df"]),
            1e-9,
            &format!("case {i} df"),
        );
        close(
            e.estimate / e.se,
            f(&want["statistic"]),
            1e-9,
            &format!("case {i} t"),
        );
        for (arm, key) in [
            (&cmp.treatment, "treatment_mean"),
            (&cmp.control, "control_mean"),
        ] {
            let m = arm.mean.estimate().unwrap();
            assert_eq!(m.method, Method::SeedMeansT);
            close(m.estimate, f(&case[key]["mean"]), 1e-12, key);
            close(m.ci_low, f(&case[key]["low"]), 1e-9, key);
            close(m.ci_high, f(&case[key]["high"]), 1e-9, key);
        }
        if let Some(want) = case.get("paired") {
            let cmp = ArmComparison::compare(
                &data,
                "t",
                "c",
                &ArmOptions::new().level(level).paired(true),
            )
            .unwrap();
            assert_eq!(cmp.method, Method::PairedOverSeeds);
            assert!(cmp.paired);
            let e = cmp.difference.estimate().unwrap();
            close(e.ci_low, f(&want["low"]), 1e-9, "paired low");
            close(e.ci_high, f(&want["high"]), 1e-9, "paired high");
            close(cmp.p_value.unwrap(), f(&want["p"]), 1e-9, "paired p");
            close(cmp.df.unwrap(), f(&want["df"]), 1e-12, "paired df");
        }
    }
    assert!(welch_seen >= 2);
}

#[test]
fn seed_design_power_and_mde_match_statsmodels() {
    let fx = fixtures();
    for case in fx["power"].as_array().unwrap() {
        let k = case["k"].as_u64().unwrap() as usize;
        let (sd, delta, alpha) = (f(&case["sd"]), f(&case["delta"]), f(&case["alpha"]));
        let unpaired = SeedDesign::unpaired(k, sd);
        let paired = SeedDesign::paired(k, sd);
        close(
            unpaired.power(delta, alpha).unwrap(),
            f(&case["pooled_power"]),
            1e-8,
            "pooled power",
        );
        close(
            paired.power(delta, alpha).unwrap(),
            f(&case["paired_power"]),
            1e-8,
            "paired power",
        );
        close(
            unpaired.mde(alpha, 0.8).unwrap(),
            f(&case["pooled_mde80"]),
            1e-6,
            "pooled mde",
        );
        close(
            paired.mde(alpha, 0.8).unwrap(),
            f(&case["paired_mde80"]),
            1e-6,
            "paired mde",
        );
    }
}

#[test]
fn comparison_mde_is_the_seed_design_mde_at_the_observed_variance() {
    let t = [0.61, 0.55, 0.66];
    let c = [0.40, 0.47, 0.44];
    let cmp = per_seed(&t, &c)
        .compare("t", "c", &ArmOptions::new())
        .unwrap();
    let Detectable::Estimated {
        effect,
        se,
        df,
        power,
        ..
    } = cmp.minimum_detectable_effect
    else {
        panic!("no MDE: {:?}", cmp.minimum_detectable_effect);
    };
    assert_eq!((df, power), (4.0, 0.8));
    let e = cmp.difference.estimate().unwrap();
    assert!((se - e.se).abs() < 1e-15);
    let pooled_sd = se / (2.0f64 / 3.0).sqrt();
    close(
        effect,
        SeedDesign::unpaired(3, pooled_sd).mde(0.05, 0.8).unwrap(),
        1e-9,
        "mde",
    );
}

#[test]
fn newcombe_paired_interval_matches_the_published_example() {
    let fx = fixtures();
    for case in fx["newcombe_published"].as_array().unwrap() {
        let u = |k: &str| case[k].as_u64().unwrap();
        let e = paired_proportion_difference(
            u("both"),
            u("a_only"),
            u("b_only"),
            u("neither"),
            f(&case["level"]),
        )
        .unwrap();
        assert_eq!(e.method, Method::NewcombePaired);
        // Published to 4 decimals.
        for (got, key) in [
            (e.estimate, "estimate"),
            (e.ci_low, "low"),
            (e.ci_high, "high"),
        ] {
            assert!(
                (got - f(&case[key])).abs() <= 5e-5,
                "{key}: {got} vs {}",
                f(&case[key])
            );
        }
    }
}

#[test]
fn newcombe_interval_stays_within_plus_minus_one_at_tiny_n() {
    // The Looking Inward report's n = 4 case: accuracy 1/4, baseline 4/4 → −75 pp. A paired t
    // on the 0/−1 differences gives [−155, +5] pp; the score interval stays inside ±100 pp.
    let acc = [false, false, true, false];
    let base = [true, true, true, true];
    let e = paired_proportion_difference_of(&acc, &base, 0.95).unwrap();
    assert!((e.estimate + 0.75).abs() < 1e-12);
    assert!(
        e.ci_low >= -1.0 && e.ci_high <= 1.0 && e.contains(-0.75),
        "{e}"
    );
    assert!(e.ci_low > -1.0, "{e}");
    let diffs: Vec<f64> = acc
        .iter()
        .zip(&base)
        .map(|(a, b)| f64::from(u8::from(*a)) - f64::from(u8::from(*b)))
        .collect();
    let t = mean_ci(&diffs, 0.95).unwrap();
    assert!(t.ci_low < -1.0, "the paired t leaves the range: {t}");
    // Every table with n ≤ 6 stays inside [−1, 1] and contains its estimate.
    for n in 1..=6u64 {
        for both in 0..=n {
            for a in 0..=n - both {
                for b in 0..=n - both - a {
                    let e =
                        paired_proportion_difference(both, a, b, n - both - a - b, 0.95).unwrap();
                    assert!(
                        -1.0 <= e.ci_low && e.ci_high <= 1.0 && e.contains(e.estimate),
                        "{both} {a} {b}: {e}"
                    );
                }
            }
        }
    }
    assert!(matches!(
        paired_proportion_difference(0, 0, 0, 0, 0.95),
        Err(StatsError::TooFew { .. })
    ));
    assert!(matches!(
        paired_proportion_difference_of(&[true], &[true, false], 0.95),
        Err(StatsError::LengthMismatch { .. })
    ));
}

fn items(data: &mut ArmData, arm: &str, seed: usize, shift: f64) {
    // 4 objects × 3 properties, binary-ish values.
    for o in 0..4 {
        for p in 0..3 {
            let v = if (o + p + seed).is_multiple_of(3) {
                1.0
            } else {
                0.0
            };
            data.item_in(
                arm,
                seed,
                format!("o{o}p{p}"),
                format!("o{o}"),
                (v + shift).min(1.0),
            );
        }
    }
}

#[test]
fn one_seed_per_arm_gives_no_run_level_verdict() {
    let mut data = ArmData::new();
    items(&mut data, "t", 0, 0.5);
    items(&mut data, "c", 0, 0.0);
    let cmp = data
        .compare("t", "c", &ArmOptions::new().proportion())
        .unwrap();
    assert_eq!(cmp.method, Method::SingleSeedItemLevel);
    assert!(
        matches!(cmp.verdict, IntervalVerdict::NotEstimable { ref reason } if reason.contains("between-run variance"))
    );
    assert!(!cmp.verdict.excludes_zero());
    assert!(cmp.minimum_detectable_effect.effect().is_none());
    // The item-level difference is there, labelled, and within ±1.
    let e = cmp.difference.estimate().unwrap();
    assert_eq!(e.method, Method::SingleSeedItemLevel);
    assert!(e.ci_low >= -1.0 && e.ci_high <= 1.0);
    let view = cmp.item_level.as_ref().unwrap();
    assert!(view.scope.contains("these fine-tuned runs only"));
    assert_eq!(view.n_clusters, 4);
    assert!(matches!(cmp.treatment.mean, Stat::Point { .. }));
    assert_eq!(
        (
            cmp.treatment.n_items,
            cmp.treatment.n_clusters,
            cmp.treatment.n_seeds
        ),
        (12, 4, 1)
    );
    // Per-seed values only, one seed each: a point, no verdict.
    let cmp = per_seed(&[0.6], &[0.4])
        .compare("t", "c", &ArmOptions::new())
        .unwrap();
    assert!(matches!(cmp.difference, Stat::Point { value, .. } if (value - 0.2).abs() < 1e-12));
    assert!(matches!(cmp.verdict, IntervalVerdict::NotEstimable { .. }));
    assert!(cmp.item_level.is_none());
}

#[test]
fn item_level_view_clusters_by_object_across_seeds() {
    let mut data = ArmData::new();
    for s in 0..3 {
        items(&mut data, "t", s, 0.2);
        items(&mut data, "c", s, 0.0);
    }
    let cmp = data
        .compare("t", "c", &ArmOptions::new().paired(true))
        .unwrap();
    assert_eq!(cmp.method, Method::PairedOverSeeds);
    let view = cmp.item_level.unwrap();
    // 36 (seed, item) pairs per arm, but only 4 objects: the interval is over objects.
    assert_eq!(view.n_clusters, 4);
    let e = view.difference.estimate().unwrap();
    assert_eq!(e.method, Method::ItemLevelByObject);
    assert_eq!(e.n, 4);
    assert_eq!(cmp.treatment.n_observations, 36);
}

#[test]
fn intervals_stay_inside_the_bounds() {
    // Wildly varying seeds: the t interval would leave [−1, 1] and [0, 1].
    let cmp = per_seed(&[1.0, 0.1], &[0.0, 0.9])
        .compare("t", "c", &ArmOptions::new().proportion())
        .unwrap();
    let (lo, hi) = cmp.difference.interval().unwrap();
    assert_eq!((lo, hi), (-1.0, 1.0));
    let (lo, hi) = cmp.treatment.mean.interval().unwrap();
    assert!(lo >= 0.0 && hi <= 1.0);
    let unbounded = per_seed(&[1.0, 0.1], &[0.0, 0.9])
        .compare("t", "c", &ArmOptions::new())
        .unwrap();
    assert!(unbounded.difference.interval().unwrap().0 < -1.0);
}

#[test]
fn bad_input_is_an_error_naming_the_field() {
    let data = per_seed(&[0.5, 0.6], &[0.4, 0.5]);
    let err = data.compare("x", "c", &ArmOptions::new()).unwrap_err();
    assert!(
        matches!(
            err,
            StatsError::Invalid {
                field: "treatment",
                ..
            }
        ),
        "{err}"
    );
    let err = data.compare("t", "t", &ArmOptions::new()).unwrap_err();
    assert!(
        matches!(
            err,
            StatsError::Invalid {
                field: "control",
                ..
            }
        ),
        "{err}"
    );
    let mut other = per_seed(&[0.5, 0.6], &[]);
    other.seed_value("c", "a", 0.4).seed_value("c", "b", 0.5);
    let err = other
        .compare("t", "c", &ArmOptions::new().paired(true))
        .unwrap_err();
    assert!(
        matches!(err, StatsError::Invalid { field: "seeds", .. }),
        "{err}"
    );
    let mut nan = per_seed(&[0.5, 0.6], &[0.4, 0.5]);
    nan.push(Observation::new("c", 2, "q", f64::NAN));
    let err = nan.compare("t", "c", &ArmOptions::new()).unwrap_err();
    assert!(
        matches!(
            err,
            StatsError::NonFinite {
                field: "observations.value",
                index: 4,
                ..
            }
        ),
        "{err}"
    );
    for opts in [
        ArmOptions::new().level(1.0),
        ArmOptions::new().bounds(1.0, 0.0),
    ] {
        assert!(matches!(
            data.compare("t", "c", &opts),
            Err(StatsError::OutOfRange { .. })
        ));
    }
}

#[test]
fn stat_serialises_with_a_status_tag_and_round_trips() {
    let est: Stat = mean_ci(&[0.1, 0.2, 0.3], 0.95).into();
    let none: Stat = mean_ci(&[0.1], 0.95).into();
    let point = Stat::point(0.4, "one seed");
    for s in [&est, &none, &point] {
        let json = serde_json::to_value(s).unwrap();
        let back: Stat = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(&back, s);
        assert!(json.get("status").is_some(), "{json}");
    }
    let json = serde_json::to_value(&est).unwrap();
    assert_eq!(json["status"], "estimated");
    assert_eq!(json["method"], "t_interval");
    assert!((json["estimate"].as_f64().unwrap() - 0.2).abs() < 1e-12);
    assert_eq!(
        serde_json::to_value(&none).unwrap()["status"],
        "unavailable"
    );
    assert_eq!(none.value(), None);
    assert!(none.reason().unwrap().contains("at least 2"));
    assert_eq!(point.value(), Some(0.4));
    assert!(point.interval().is_none());
    assert!(format!("{none}").starts_with("n/a ("));
    assert!(est.percent().starts_with("20.0% ["));
    let pct = est.scaled(-100.0);
    let (lo, hi) = pct.interval().unwrap();
    assert!(lo < hi && (pct.value().unwrap() + 20.0).abs() < 1e-9);
}

#[test]
fn arm_comparison_serialises() {
    let cmp = per_seed(&[0.6, 0.65, 0.7], &[0.4, 0.42, 0.47])
        .compare("t", "c", &ArmOptions::new())
        .unwrap();
    let json = serde_json::to_value(&cmp).unwrap();
    assert_eq!(json["method"], "pooled_t_over_seeds");
    assert_eq!(json["verdict"]["verdict"], "excludes_zero");
    assert_eq!(json["difference"]["status"], "estimated");
    assert_eq!(json["minimum_detectable_effect"]["status"], "estimated");
    let back: ArmComparison = serde_json::from_value(json).unwrap();
    assert_eq!(back, cmp);
    assert!(format!("{cmp}").contains("excludes zero"));
}

#[test]
fn holm_family_adjusts_over_the_declared_contrasts() {
    let cmp = per_seed(&[0.6, 0.65, 0.7], &[0.4, 0.42, 0.47])
        .compare("t", "c", &ArmOptions::new())
        .unwrap();
    let single = per_seed(&[0.6], &[0.4])
        .compare("t", "c", &ArmOptions::new())
        .unwrap();
    let adjusted = HolmFamily::new()
        .add_comparison("t vs c", &cmp)
        .add("t vs other", Some(0.03))
        .add_comparison("t vs base (one seed)", &single)
        .adjust();
    assert_eq!(adjusted.len(), 3);
    assert!(adjusted.iter().all(|a| a.family_size == 3));
    let p = cmp.p_value.unwrap();
    // Holm: the smaller of (p, 0.03) times 3, the other times 2, the unestimable one stays out.
    let (lo, hi) = if p < 0.03 { (p, 0.03) } else { (0.03, p) };
    let want_lo = (3.0 * lo).min(1.0);
    let want_hi = want_lo.max((2.0 * hi).min(1.0));
    let got_cmp = adjusted[0].adjusted.unwrap();
    let got_other = adjusted[1].adjusted.unwrap();
    if p < 0.03 {
        close(got_cmp, want_lo, 1e-12, "cmp");
        close(got_other, want_hi, 1e-12, "other");
    } else {
        close(got_other, want_lo, 1e-12, "other");
        close(got_cmp, want_hi, 1e-12, "cmp");
    }
    assert_eq!(adjusted[2].adjusted, None);
    assert!(!adjusted[2].rejected(0.05));
}

#[test]
fn seeds_that_do_not_vary_give_no_verdict() {
    let cmp = per_seed(&[0.6, 0.6, 0.6], &[0.4, 0.4, 0.4])
        .compare("t", "c", &ArmOptions::new())
        .unwrap();
    assert!(
        matches!(cmp.verdict, IntervalVerdict::NotEstimable { ref reason } if reason.contains("do not vary")),
        "{:?}",
        cmp.verdict
    );
    let (lo, hi) = cmp.difference.interval().unwrap();
    assert_eq!(lo, hi);
    assert!((lo - 0.2).abs() < 1e-12);
    assert!(cmp.minimum_detectable_effect.effect().is_none());
}

#[test]
fn one_arm_with_a_single_run_borrows_the_other_arms_variance() {
    // 3 runs against 1 (e.g. an untrained model): pooled t with df = 3 + 1 − 2 = 2, the single
    // run's arm assumed to vary as the other (as SciPy's ttest_ind(equal_var=True) does).
    let t = [0.60, 0.64, 0.56];
    let cmp = per_seed(&t, &[0.40])
        .compare("t", "c", &ArmOptions::new())
        .unwrap();
    assert_eq!(cmp.method, Method::PooledTOverSeeds);
    assert_eq!(cmp.df, Some(2.0));
    let e = cmp.difference.estimate().unwrap();
    let s2 = [0.0f64, 0.04, -0.04].iter().map(|d| d * d).sum::<f64>() / 2.0;
    close(e.se, (s2 * (1.0 / 3.0 + 1.0)).sqrt(), 1e-12, "se");
    close(e.estimate, 0.2, 1e-12, "estimate");
    assert!(matches!(cmp.control.mean, Stat::Point { .. }));
    assert!(cmp.minimum_detectable_effect.effect().is_some());
}
