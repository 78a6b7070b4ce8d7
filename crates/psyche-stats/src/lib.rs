//! # psyche-stats
//!
//! Honest statistics for small, clustered, paired LLM evals.
//!
//! LLM-psychology evals are small (8 questions × 100 samples), clustered (paraphrases of one
//! question, samples of one prompt, fine-tuning seeds) and paired (the same items under two
//! models). This crate gives each of those situations its proper interval or test, checked
//! against SciPy/statsmodels reference values, and a simulator to check coverage and power
//! before spending money. `docs/statistics.md` says which method to use when.
//!
//! | question | function |
//! |---|---|
//! | **treatment vs control arm of a fine-tuning experiment** (seeds as the unit) | [`ArmComparison::compare`] on [`ArmData`] |
//! | an estimate, or why there is none (for reports) | [`Stat`] |
//! | accuracy − baseline on the same few items (paired proportions) | [`paired_proportion_difference`] (Newcombe) |
//! | Holm over a declared family of contrasts | [`HolmFamily`] |
//! | how many seeds? power / MDE of the run-level test | [`SeedDesign`], [`t_test_power`], [`t_test_mde`] |
//! | does the arm comparison cover on planted data? | [`ArmSimSpec`], [`simulate_arm_coverage`] |
//! | mean of per-item scores | [`mean_ci`] (t, n−1 df) |
//! | mean when items cluster (questions, seeds) | [`clustered_mean_ci`], [`cluster_bootstrap_mean`] |
//! | one rate from few items | [`wilson`], [`clopper_pearson`], [`jeffreys`], [`beta_posterior`] |
//! | bootstrap CIs (percentile / BCa), any statistic | [`bootstrap_mean`], [`bootstrap_mean_bca`], [`bootstrap_statistic`] |
//! | per-question rate → mean; seeds; micro/macro | [`mean_of_group_means`], [`seed_summary`], [`micro_macro`] |
//! | model A vs B on the same items | [`paired_difference`], [`paired_bootstrap`], [`mcnemar`], [`mcnemar_with`] |
//! | two independent groups | [`permutation_test`], [`two_proportion_test`] |
//! | many tests | [`holm`], [`benjamini_hochberg`] |
//! | introspection baselines | [`mode_baseline`], [`entropy`], [`total_variation`], [`kl_divergence`], [`calibration_curve`] |
//! | how many items? | [`sample_size`], [`power`], [`minimum_detectable_effect`], [`paired_design_from_pilot`] |
//! | do my intervals work here? | [`simulate_coverage`] |
//! | judge agreement | [`cohen_kappa`], [`krippendorff_alpha_nominal`], [`krippendorff_alpha_interval`] |
//! | from run logs | [`judge_scores`], [`paired_scores`], [`judge_labels`] |
//!
//! ```
//! use psyche_stats::{clustered_mean_ci, mean_ci};
//! // 3 questions × 4 samples, scored 0/1: the samples of one question are correlated.
//! let scores = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0];
//! let question = ["q1", "q1", "q1", "q1", "q2", "q2", "q2", "q2", "q3", "q3", "q3", "q3"];
//! let naive = mean_ci(&scores, 0.95)?;
//! let clustered = clustered_mean_ci(&scores, &question, 0.95)?;
//! assert!(clustered.ci_high - clustered.ci_low > naive.ci_high - naive.ci_low);
//! # Ok::<(), psyche_stats::StatsError>(())
//! ```
//!
//! Every resampling function takes a `seed` and returns the same numbers on any number of
//! threads.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod agreement;
mod arm_sim;
mod arms;
mod bootstrap;
mod compare;
mod contrast;
mod descriptive;
mod dist;
mod error;
mod estimate;
mod hierarchical;
mod introspection;
mod pilot;
mod power;
mod proportion;
mod records;
mod resample;
mod simulate;
mod stat;

pub use agreement::{
    cohen_kappa, cohen_kappa_pairwise, krippendorff_alpha_interval, krippendorff_alpha_nominal,
};
pub use arm_sim::{
    ArmCoverageReport, ArmSimSpec, IntervalCheck, Replication, SIM_CONTROL, SIM_TREATMENT,
    legacy_pooled_items_paired_t, legacy_seed_bootstrap, simulate_arm_coverage,
};
pub use arms::{
    ArmComparison, ArmData, ArmOptions, ArmSummary, Detectable, HolmAdjusted, HolmFamily,
    ITEM_LEVEL_SCOPE, IntervalVerdict, ItemLevelView, ONE_SEED_REASON, Observation, SeedDesign,
    SeedMean, ZERO_VARIANCE_REASON, t_test_mde, t_test_power,
};
pub use bootstrap::{
    BootstrapInterval, bca_interval, bootstrap_mean, bootstrap_mean_bca, bootstrap_mean_replicates,
    bootstrap_statistic, cluster_bootstrap_mean, paired_bootstrap, percentile_interval,
};
pub use compare::{
    Alternative, McNemar, McNemarTest, PairedDifference, PermutationTest, benjamini_hochberg, holm,
    mcnemar, mcnemar_counts, mcnemar_counts_with, mcnemar_with, paired_difference,
    permutation_test,
};
pub use contrast::ArmContrast;
pub use descriptive::{
    ClusteredSe, clustered_mean_ci, clustered_se, mean, mean_ci, std_error, variance,
};
pub use dist::{
    beta_quantile, binomial_cdf, noncentral_t_cdf, normal_cdf, normal_quantile, normal_sf,
    t_quantile,
};
pub use error::StatsError;
pub use estimate::{Estimate, Method};
pub use hierarchical::{
    GroupSummary, GroupedMean, MicroMacro, SeedSummary, combine_independent, mean_of_group_means,
    micro_macro, seed_summary,
};
pub use introspection::{
    Calibration, ModeBaseline, align_distributions, calibration_curve, calibration_pairs, entropy,
    kl_divergence, kl_divergence_smoothed, label_distribution, label_entropy, mode_baseline,
    mode_baseline_by_group, total_variation,
};
pub use pilot::{VarianceComponents, paired_design_from_pilot, variance_components};
pub use power::{
    ItemDesign, SampleSize, minimum_detectable_effect, power, power_t, sample_size, sample_size_t,
};
pub use proportion::{
    TwoProportionTest, beta_posterior, clopper_pearson, jeffreys, paired_proportion_difference,
    paired_proportion_difference_of, two_proportion_test, wilson,
};
pub use records::{
    PairedScores, SampleMean, ScoreColumn, judge_labels, judge_scores, paired_scores,
};
pub use simulate::{
    MethodCoverage, OrganismSpec, SimulationReport, simulate_coverage,
    simulate_coverage_with_bootstrap,
};
pub use stat::Stat;

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
