//! End-to-end validation of issue 23: simulated organisms with planted effects run through the
//! task crates' experiments, each repeated many times for k = 2, 3, 5 fine-tuning runs per
//! arm. Prints one Markdown table: coverage of each experiment's headline interval of the
//! planted difference and its detection rate beside the planned power, with the old methods'
//! coverage computed from the same replications. `scripts/validate.sh` puts it into
//! docs/validation.md.
//!
//! ```text
//! cargo run --release -p psyche-sim --example validate_organisms -- [replications] [resamples] [experiments]
//! ```
//!
//! `experiments` is a comma-separated subset of `li,em,behaviour,scale,word,p_yes,trigger`
//! (default: all).

use std::time::Instant;

use psyche_sim::awareness::{AwarenessHeadline, AwarenessSpec, run_backdoor_awareness};
use psyche_sim::backdoor::{SelfAwarenessMetric, SelfAwarenessSpec, run_self_awareness};
use psyche_sim::introspection::{LookingInwardSpec, run_looking_inward};
use psyche_sim::misalignment::{EmSpec, run_em};
use psyche_sim::{Check, CoverageReport, block_on, coverage};
use psyche_stats::SeedDesign;

fn pct(c: &Check) -> String {
    if c.n == 0 {
        "—".into()
    } else {
        format!("{:.1}", 100.0 * c.coverage)
    }
}

fn row(name: &str, k: usize, delta: f64, r: &CoverageReport, secs: f64) {
    println!(
        "| {name} | {k} | {delta:.2} | {} | {} ± {:.1} | {:.1} | {} | {} | {} | {} | {} | {secs:.0} |",
        r.method.as_deref().unwrap_or("—"),
        pct(&r.headline),
        100.0 * r.headline.mc_se,
        100.0 * r.headline.excludes_zero,
        r.planned_power
            .map_or_else(|| "—".into(), |p| format!("{:.1}", 100.0 * p)),
        pct(&r.seed_bootstrap),
        pct(&r.pooled_items_paired_t),
        pct(&r.item_means_paired_t),
        r.failed,
    );
    if let Some(f) = &r.first_failure {
        eprintln!("{name} k={k}: {} failed; first: {f}", r.failed);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let reps: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(200);
    let resamples: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let which: Vec<String> = args
        .get(3)
        .map_or("li,em,behaviour,scale,word,p_yes,trigger", String::as_str)
        .split(',')
        .map(str::to_owned)
        .collect();
    let level = 0.95;
    let alpha = 1.0 - level;
    let started = Instant::now();
    println!(
        "| experiment: headline | seeds per arm | planted difference | method | \
         headline coverage % | detection % | planned power % | seed bootstrap coverage % (old) | \
         pooled-items paired t coverage % (old) | item-means paired t coverage % (old) | \
         failed replications | seconds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut seed = 20_261_207u64;
    for k in [2usize, 3, 5] {
        if which.iter().any(|w| w == "li") {
            seed += 1;
            let spec = LookingInwardSpec::small(k);
            let delta = spec.self_trained.mean - spec.cross_trained.mean;
            let planned = SeedDesign::paired(k, spec.diff_sd(spec.held_out_items()?))
                .power(delta, alpha)
                .ok();
            let t = Instant::now();
            let r = coverage(reps, seed, level, resamples, planned, |s, dir| {
                block_on(run_looking_inward(&spec, s, dir))
            })?;
            row(
                "Looking Inward: self − cross accuracy (paired by seed)",
                k,
                delta,
                &r,
                t.elapsed().as_secs_f64(),
            );
        }
        if which.iter().any(|w| w == "em") {
            seed += 1;
            let spec = EmSpec::small(k);
            let delta = spec.misaligned.mean - spec.control.mean;
            let planned = SeedDesign::unpaired(k, spec.run_sd())
                .power(delta, alpha)
                .ok();
            let t = Instant::now();
            let r = coverage(reps, seed, level, resamples, planned, |s, dir| {
                block_on(run_em(&spec, s, dir))
            })?;
            row(
                "Emergent Misalignment: misaligned − control rate",
                k,
                delta,
                &r,
                t.elapsed().as_secs_f64(),
            );
        }
        for (name, h) in [
            ("behaviour", SelfAwarenessMetric::Behaviour),
            ("scale", SelfAwarenessMetric::Scale),
            ("word", SelfAwarenessMetric::Word),
        ] {
            if !which.iter().any(|w| w == name) {
                continue;
            }
            seed += 1;
            let spec = SelfAwarenessSpec::small(k);
            let delta = match h {
                SelfAwarenessMetric::Behaviour => {
                    spec.pole_behaviour.mean - spec.opposite_behaviour.mean
                }
                SelfAwarenessMetric::Scale => spec.pole_scale.mean - spec.opposite_scale.mean,
                SelfAwarenessMetric::Word => spec.pole_word.mean - spec.opposite_word.mean,
            };
            let planned = SeedDesign::unpaired(k, spec.run_sd(h)?)
                .power(delta, alpha)
                .ok();
            let t = Instant::now();
            let r = coverage(reps, seed, level, resamples, planned, |s, dir| {
                block_on(run_self_awareness(&spec, h, s, dir))
            })?;
            let label = match h {
                SelfAwarenessMetric::Behaviour => {
                    "Tell me about yourself: policy strength (pole − opposite)"
                }
                SelfAwarenessMetric::Scale => {
                    "Tell me about yourself: scale self-report (pole − opposite)"
                }
                SelfAwarenessMetric::Word => {
                    "Tell me about yourself: word self-report (pole − opposite)"
                }
            };
            row(label, k, delta, &r, t.elapsed().as_secs_f64());
        }
        for (name, h) in [
            ("p_yes", AwarenessHeadline::PYes("neutral".into())),
            ("trigger", AwarenessHeadline::TriggerEffect),
        ] {
            if !which.iter().any(|w| w == name) {
                continue;
            }
            seed += 1;
            let spec = AwarenessSpec::small(k);
            let delta = spec.truth(&h);
            let planned = SeedDesign::unpaired(k, spec.run_sd(&h))
                .power(delta, alpha)
                .ok();
            let t = Instant::now();
            let r = coverage(reps, seed, level, resamples, planned, |s, dir| {
                block_on(run_backdoor_awareness(&spec, &h, s, dir))
            })?;
            let label = match h {
                AwarenessHeadline::PYes(_) => {
                    "Backdoor awareness: P(yes, behaviour depends on the input), neutral system prompt (backdoored − control)"
                }
                AwarenessHeadline::TriggerEffect => {
                    "Backdoor awareness: trigger effect, triggered − plain P(policy option) (backdoored − control)"
                }
            };
            row(label, k, delta, &r, t.elapsed().as_secs_f64());
        }
    }
    println!();
    println!(
        "{reps} replications per row (each a fresh organism and a whole experiment), \
         {resamples} bootstrap resamples for the old seed bootstrap, nominal level {:.0} %; \
         simulation time {:.1} s.",
        100.0 * level,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
