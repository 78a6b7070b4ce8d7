#!/usr/bin/env python3
"""Reference values for psyche-stats' ArmComparison tests (tests/arms.rs).

Writes crates/psyche-stats/tests/fixtures/arms_reference.json: random per-seed means
(numpy default_rng(20261207)) for 2-5 seeds per arm, with SciPy's two-sample t-tests
(pooled and Welch) and paired t-test, their confidence intervals, the per-arm t intervals,
and statsmodels' power / minimum detectable effect of the same t tests. The JSON is
committed; the tests do not need Python. Re-run after changing a case:

    python3 -m venv /tmp/venv-arms
    /tmp/venv-arms/bin/pip install numpy scipy statsmodels
    /tmp/venv-arms/bin/python crates/psyche-stats/scripts/arms_fixtures.py

The Newcombe paired-proportions reference is a published worked example (Fagerland,
Lydersen & Laake 2017, "Statistical Analysis of Contingency Tables", ch. 8: the table
59 / 6 / 16 / 80 gives -0.0621, 95% CI -0.1186 to -0.0046), written into the JSON as is.
"""
import json
import pathlib

import numpy as np
import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.power import TTestIndPower, TTestPower

rng = np.random.default_rng(20261207)
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/arms_reference.json"


def fl(x):
    return [float(v) for v in x]


cases = []
for kt, kc, level in [(2, 2, 0.95), (3, 3, 0.95), (5, 5, 0.9), (3, 5, 0.95), (2, 4, 0.95), (4, 4, 0.99)]:
    t = rng.normal(0.55, rng.uniform(0.01, 0.08), kt)
    c = rng.normal(0.45, rng.uniform(0.01, 0.08), kc)
    case = {"treatment": fl(t), "control": fl(c), "level": level}
    pooled = stats.ttest_ind(t, c, equal_var=True)
    ci = pooled.confidence_interval(level)
    case["pooled"] = {"statistic": float(pooled.statistic), "p": float(pooled.pvalue),
                      "df": float(pooled.df), "low": float(ci.low), "high": float(ci.high)}
    welch = stats.ttest_ind(t, c, equal_var=False)
    ci = welch.confidence_interval(level)
    case["welch"] = {"statistic": float(welch.statistic), "p": float(welch.pvalue),
                     "df": float(welch.df), "low": float(ci.low), "high": float(ci.high)}
    for name, x in [("treatment_mean", t), ("control_mean", c)]:
        lo, hi = stats.t.interval(level, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
        case[name] = {"mean": float(x.mean()), "low": float(lo), "high": float(hi)}
    if kt == kc:
        paired = stats.ttest_rel(t, c)
        ci = paired.confidence_interval(level)
        case["paired"] = {"statistic": float(paired.statistic), "p": float(paired.pvalue),
                          "df": float(paired.df), "low": float(ci.low), "high": float(ci.high)}
    cases.append(case)

# Power and MDE of the t tests ArmComparison runs (pooled two-sample; paired = one-sample on
# the differences), from statsmodels' noncentral-t solvers.
power = []
for k, sd, delta, alpha in [(2, 0.05, 0.2, 0.05), (3, 0.05, 0.1, 0.05), (5, 0.03, 0.05, 0.05), (3, 0.1, 0.3, 0.1)]:
    d = delta / sd
    power.append({
        "k": k, "sd": sd, "delta": delta, "alpha": alpha,
        "pooled_power": float(TTestIndPower().power(effect_size=d, nobs1=k, alpha=alpha, ratio=1.0)),
        "paired_power": float(TTestPower().power(effect_size=d, nobs=k, alpha=alpha)),
        "pooled_mde80": float(TTestIndPower().solve_power(effect_size=None, nobs1=k, alpha=alpha, power=0.8, ratio=1.0)) * sd,
        "paired_mde80": float(TTestPower().solve_power(effect_size=None, nobs=k, alpha=alpha, power=0.8)) * sd,
    })

fx = {
    "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "statsmodels": statsmodels.__version__},
    "cases": cases,
    "power": power,
    "newcombe_published": [
        {"source": "Fagerland, Lydersen & Laake (2017) ch. 8, Newcombe square-and-add (method 10)",
         "both": 59, "a_only": 6, "b_only": 16, "neither": 80, "level": 0.95,
         "estimate": -0.0621, "low": -0.1186, "high": -0.0046, "decimals": 4},
    ],
}
OUT.write_text(json.dumps(fx, indent=1) + "\n")
print(f"wrote {OUT}")
