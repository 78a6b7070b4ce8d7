//! The full statistics-level validation of issue 23: coverage of ArmComparison's difference
//! interval and its detection rate against the planned power, for k = 2, 3, 5 seeds per arm,
//! beside the replaced methods (percentile bootstrap over per-seed values; paired t over items
//! pooled from all seeds). Prints a Markdown table; `scripts/validate.sh` puts it into
//! docs/validation.md.
//!
//! ```text
//! cargo run --release -p psyche-stats --example validate_arms -- [replications] [resamples]
//! ```

use std::time::Instant;

use psyche_stats::{ArmCoverageReport, ArmSimSpec, IntervalCheck};

/// Backdoor / misalignment-like: independent arms (fresh data seed per run).
fn unpaired(k: usize, effect: f64) -> ArmSimSpec {
    ArmSimSpec {
        seeds_per_arm: k,
        objects: 20,
        properties_per_object: 3,
        samples_per_item: 5,
        control_rate: 0.45,
        effect,
        seed_sd: 0.06,
        shared_seed_sd: 0.0,
        object_sd: 0.06,
        property_sd: 0.03,
        paired: false,
    }
}

/// Looking-Inward-like: self vs cross within each run (paired over seeds), 46 objects × 3
/// properties = 138 items per run.
fn paired(k: usize, effect: f64) -> ArmSimSpec {
    ArmSimSpec {
        seeds_per_arm: k,
        objects: 46,
        properties_per_object: 3,
        samples_per_item: 5,
        control_rate: 0.45,
        effect,
        seed_sd: 0.08,
        shared_seed_sd: 0.03,
        object_sd: 0.06,
        property_sd: 0.03,
        paired: true,
    }
}

/// Coverage in percent; "—" when the method gave no interval at all, the failures noted
/// when some replications gave none.
fn pct(c: &IntervalCheck, reps: usize) -> String {
    if c.failures >= reps {
        "—".into()
    } else if c.failures > 0 {
        format!(
            "{:.1} ({} without interval)",
            100.0 * c.coverage,
            c.failures
        )
    } else {
        format!("{:.1}", 100.0 * c.coverage)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let reps: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let resamples: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let level = 0.95;
    let started = Instant::now();
    println!(
        "| design | seeds per arm | planted effect | method | ArmComparison coverage % | \
         detection % (excludes 0) | planned power % | seed bootstrap coverage % (old) | \
         seed bootstrap excludes 0 % | pooled-items paired t coverage % (old) | \
         pooled-items excludes 0 % | item-level view: coverage of these runs % |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut seed = 20261207u64;
    for (name, make, effect) in [
        (
            "unpaired (independent arms)",
            unpaired as fn(usize, f64) -> ArmSimSpec,
            0.15,
        ),
        ("paired over seeds (self vs cross)", paired, 0.15),
    ] {
        for k in [2usize, 3, 5] {
            for delta in [0.0, effect] {
                seed += 1;
                let spec = make(k, delta);
                let r: ArmCoverageReport = spec.simulate(reps, level, seed, resamples)?;
                let method = r.method.map(|m| m.label().to_string()).unwrap_or_default();
                let planned = r
                    .planned_power
                    .map(|p| format!("{:.1}", 100.0 * p))
                    .unwrap_or_else(|| "—".into());
                let these = r
                    .item_level_these_runs
                    .map(|c| format!("{:.1}", 100.0 * c.coverage))
                    .unwrap_or_else(|| "—".into());
                println!(
                    "| {name} | {k} | {delta:.2} | {method} | {} ± {:.1} | {:.1} | {planned} | {} | {:.1} | {} | {:.1} | {these} |",
                    pct(&r.arm_comparison, reps),
                    100.0 * r.arm_comparison.mc_se,
                    100.0 * r.arm_comparison.excludes_zero,
                    pct(&r.seed_bootstrap, reps),
                    100.0 * r.seed_bootstrap.excludes_zero,
                    pct(&r.pooled_items_paired_t, reps),
                    100.0 * r.pooled_items_paired_t.excludes_zero,
                );
            }
        }
    }
    println!();
    println!(
        "{reps} replications per row, {resamples} bootstrap resamples for the old seed bootstrap, \
         nominal level {:.0} %; simulation time {:.1} s.",
        100.0 * level,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
