#!/usr/bin/env python3
"""Generate reference values for psyche-stats' tests with SciPy / statsmodels / pandas.

Writes crates/psyche-stats/tests/fixtures/reference.json: random inputs (numpy
default_rng(20261127)) together with the reference library's outputs. The JSON is committed;
CI does not need this script or its venv. Re-run after changing a case:

    python3 -m venv .venv-stats
    .venv-stats/bin/pip install numpy scipy statsmodels pandas scikit-learn krippendorff
    .venv-stats/bin/python scripts/stats_fixtures.py

Versions used are recorded in the JSON under "versions".
"""
import json
import math
import pathlib
from collections import Counter

import krippendorff
import numpy as np
import pandas as pd
import scipy
import sklearn
import statsmodels
import statsmodels.api as sm
from scipy import special, stats
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

rng = np.random.default_rng(20261127)
OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/psyche-stats/tests/fixtures/reference.json"


def fl(x):
    return [float(v) for v in x]


def random_values(kind, n):
    if kind == "normal":
        return rng.normal(3.0, 2.0, n)
    if kind == "binary":
        return (rng.random(n) < rng.uniform(0.1, 0.9)).astype(float)
    if kind == "score":
        return np.round(rng.uniform(0, 100, n), 1)
    if kind == "skewed":
        return rng.exponential(1.0, n)
    raise ValueError(kind)


fx = {"versions": {"numpy": np.__version__, "scipy": scipy.__version__,
                   "statsmodels": statsmodels.__version__, "pandas": pd.__version__,
                   "scikit-learn": sklearn.__version__, "krippendorff": krippendorff.__version__ if hasattr(krippendorff, "__version__") else "?"}}

# --- distributions -------------------------------------------------------------------------
fx["t_quantile"] = [
    {"p": p, "df": df, "q": float(stats.t.ppf(p, df))}
    for df in [1, 2, 3.5, 4, 7, 9, 29, 30, 99, 1000]
    for p in [0.005, 0.025, 0.05, 0.5, 0.9, 0.95, 0.975, 0.995, 0.9995]
]
fx["normal_quantile"] = [{"p": p, "q": float(stats.norm.ppf(p))}
                         for p in [1e-6, 0.001, 0.025, 0.05, 0.3, 0.5, 0.8, 0.95, 0.975, 0.995]]
fx["beta_quantile"] = [
    {"p": p, "a": a, "b": b, "q": float(stats.beta.ppf(p, a, b))}
    for (a, b) in [(0.5, 0.5), (1, 20), (3, 18), (7.5, 2.5), (50, 51), (1, 1), (200, 3)]
    for p in [0.005, 0.025, 0.5, 0.975, 0.995]
]
fx["binomial_cdf"] = [
    {"k": k, "n": n, "p": p, "cdf": float(stats.binom.cdf(k, n, p))}
    for (k, n, p) in [(0, 10, 0.5), (3, 10, 0.5), (7, 20, 0.5), (40, 100, 0.5), (12, 30, 0.3), (99, 100, 0.9), (500, 1000, 0.5)]
]

# --- means ---------------------------------------------------------------------------------
cases = []
for kind in ["normal", "binary", "score", "skewed"]:
    for n in [2, 3, 10, 50, 400]:
        for level in [0.9, 0.95, 0.99]:
            x = random_values(kind, n)
            if kind == "binary" and x.std() == 0:
                x[0] = 1 - x[0]
            m = float(np.mean(x))
            se = float(stats.sem(x))
            lo, hi = stats.t.interval(level, n - 1, loc=m, scale=se)
            cases.append({"values": fl(x), "level": level, "mean": m, "se": se,
                          "ci_low": float(lo), "ci_high": float(hi)})
fx["mean_ci"] = cases

# --- clustered SE: statsmodels OLS on a constant with cluster-robust covariance -------------
cases = []
for (c, size_lo, size_hi, kind) in [(2, 2, 5, "normal"), (3, 1, 4, "binary"), (8, 100, 101, "binary"),
                                     (10, 1, 8, "score"), (30, 3, 12, "normal"), (60, 1, 3, "binary")]:
    sizes = rng.integers(size_lo, size_hi, c) if size_hi > size_lo + 1 else np.full(c, size_lo)
    clusters, values = [], []
    for ci, s in enumerate(sizes):
        effect = rng.normal(0, 1.0)
        if kind == "binary":
            p = 1 / (1 + math.exp(-(effect)))
            v = (rng.random(s) < p).astype(float)
        elif kind == "score":
            v = np.clip(np.round(50 + 20 * effect + rng.normal(0, 15, s)), 0, 100)
        else:
            v = effect + rng.normal(0, 1, s)
        clusters += [f"c{ci}"] * int(s)
        values += list(v)
    # shuffle order so clusters are interleaved
    perm = rng.permutation(len(values))
    values = np.array(values)[perm]
    clusters = [clusters[i] for i in perm]
    groups = pd.factorize(pd.Series(clusters))[0]
    res = sm.OLS(values, np.ones(len(values))).fit(cov_type="cluster", cov_kwds={"groups": groups})
    m = float(res.params[0])
    se = float(res.bse[0])
    C = len(set(clusters))
    for level in [0.95, 0.9]:
        lo, hi = stats.t.interval(level, C - 1, loc=m, scale=se)
        cases.append({"values": fl(values), "clusters": clusters, "level": level, "mean": m,
                      "se": se, "ci_low": float(lo), "ci_high": float(hi), "n_clusters": C,
                      "naive_se": float(stats.sem(values))})
fx["clustered"] = cases

# --- proportions ---------------------------------------------------------------------------
cases = []
for (x, n) in [(0, 1), (1, 1), (0, 20), (20, 20), (1, 20), (7, 8), (3, 10), (45, 100), (198, 1000), (0, 800), (57, 800)]:
    for level in [0.95, 0.9, 0.99]:
        alpha = 1 - level
        w = proportion_confint(x, n, alpha=alpha, method="wilson")
        cp = proportion_confint(x, n, alpha=alpha, method="beta")
        lo_j, hi_j = proportion_confint(x, n, alpha=alpha, method="jeffreys")
        # Brown, Cai & DasGupta (2001): the Jeffreys interval is set to 0 / 1 at x = 0 / x = n.
        lo_j = 0.0 if x == 0 else lo_j
        hi_j = 1.0 if x == n else hi_j
        lo_u, hi_u = stats.beta.ppf([alpha / 2, 1 - alpha / 2], x + 1, n - x + 1)
        cases.append({"x": x, "n": n, "level": level, "wilson": fl(w), "clopper_pearson": fl(cp),
                      "jeffreys": [float(lo_j), float(hi_j)],
                      "uniform_posterior": [float(lo_u), float(hi_u)],
                      "uniform_posterior_mean": float(stats.beta.mean(x + 1, n - x + 1)),
                      "uniform_posterior_sd": float(stats.beta.std(x + 1, n - x + 1))})
fx["proportions"] = cases

cases = []
for (x1, n1, x2, n2) in [(99, 500, 2, 500), (30, 100, 20, 100), (5, 40, 9, 35), (0, 50, 3, 60), (10, 10, 7, 12)]:
    z, p = proportions_ztest([x1, x2], [n1, n2])
    lo, hi = confint_proportions_2indep(x1, n1, x2, n2, method="wald", compare="diff")
    cases.append({"x1": x1, "n1": n1, "x2": x2, "n2": n2, "z": float(z), "p_value": float(p),
                  "ci": [float(lo), float(hi)], "diff": x1 / n1 - x2 / n2})
fx["two_proportion"] = cases

# --- paired difference ---------------------------------------------------------------------
cases = []
for (n, rho, kind) in [(2, 0.5, "normal"), (8, 0.8, "normal"), (40, 0.3, "normal"), (100, 0.9, "score"),
                       (25, -0.4, "normal"), (60, 0.6, "binary")]:
    z1 = rng.normal(size=n)
    z2 = rho * z1 + math.sqrt(1 - rho * rho) * rng.normal(size=n)
    if kind == "score":
        a, b = np.round(50 + 15 * z1), np.round(47 + 15 * z2)
    elif kind == "binary":
        a, b = (z1 > -0.2).astype(float), (z2 > 0.1).astype(float)
    else:
        a, b = 0.45 + 0.1 * z1, 0.35 + 0.1 * z2
    res = stats.ttest_rel(a, b)
    lo, hi = res.confidence_interval(0.95)
    d = a - b
    cases.append({"a": fl(a), "b": fl(b), "level": 0.95, "diff": float(d.mean()),
                  "se": float(d.std(ddof=1) / math.sqrt(n)), "ci": [float(lo), float(hi)],
                  "t": float(res.statistic), "p_value": float(res.pvalue),
                  "correlation": float(stats.pearsonr(a, b).statistic) if n > 2 else float(np.corrcoef(a, b)[0, 1])})
fx["paired"] = cases

cases = []
for (b, c) in [(0, 0), (0, 5), (5, 0), (3, 7), (10, 25), (40, 41), (120, 90)]:
    res = mcnemar([[10, b], [c, 10]], exact=True)
    cases.append({"a_only": b, "b_only": c, "p_value": float(res.pvalue)})
fx["mcnemar"] = cases


def mean_diff(x, y, axis):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


cases = []
for (nx, ny, shift) in [(5, 6, 0.8), (4, 4, 0.0), (7, 5, -1.5), (2, 3, 0.5)]:
    x = np.round(rng.normal(shift, 1, nx), 2)
    y = np.round(rng.normal(0, 1, ny), 2)
    row = {"x": fl(x), "y": fl(y), "exact": True}
    for alt in ["two-sided", "less", "greater"]:
        res = stats.permutation_test((x, y), mean_diff, vectorized=True, n_resamples=100000,
                                     alternative=alt, permutation_type="independent")
        row[alt] = float(res.pvalue)
    cases.append(row)
for (nx, ny, shift) in [(30, 30, 0.5), (40, 25, 0.2)]:
    x = rng.normal(shift, 1, nx)
    y = rng.normal(0, 1, ny)
    row = {"x": fl(x), "y": fl(y), "exact": False, "scipy_resamples": 200000}
    for alt in ["two-sided", "less", "greater"]:
        res = stats.permutation_test((x, y), mean_diff, vectorized=True, n_resamples=200000,
                                     alternative=alt, permutation_type="independent", rng=rng)
        row[alt] = float(res.pvalue)
    cases.append(row)
fx["permutation"] = cases

cases = []
for m in [1, 5, 12, 30]:
    p = rng.uniform(0, 0.2, m) ** rng.uniform(0.5, 2, m)
    if m > 3:
        p[1] = p[0]  # a tie
    cases.append({"p": fl(p), "holm": fl(multipletests(p, method="holm")[1]),
                  "bh": fl(multipletests(p, method="fdr_bh")[1])})
fx["multitest"] = cases

# --- bootstrap -----------------------------------------------------------------------------
B_SCIPY = 100000
cases = []
for (kind, n) in [("normal", 30), ("skewed", 25), ("binary", 60), ("score", 200)]:
    x = random_values(kind, n)
    row = {"values": fl(x), "level": 0.95, "scipy_resamples": B_SCIPY}
    for method in ["percentile", "BCa"]:
        res = stats.bootstrap((x,), np.mean, n_resamples=B_SCIPY, method=method,
                              confidence_level=0.95, rng=rng, vectorized=True)
        row[method] = {"ci": [float(res.confidence_interval.low), float(res.confidence_interval.high)],
                       "se": float(res.standard_error)}
    cases.append(row)
fx["bootstrap"] = cases

# BCa from fixed replicates (deterministic): scipy's own formula, step by step.
cases = []
for (n, B) in [(15, 500), (40, 1999)]:
    x = rng.exponential(1.0, n)
    theta = float(np.mean(x))
    reps = np.array([np.mean(rng.choice(x, n)) for _ in range(B)])
    jack = np.array([np.mean(np.delete(x, i)) for i in range(n)])
    for level in [0.95, 0.8]:
        alpha = (1 - level) / 2
        pct = ((reps < theta).sum() + (reps <= theta).sum()) / (2 * B)
        z0 = special.ndtri(pct)
        u = (n - 1) * (jack.mean() - jack)
        a_hat = 1 / 6 * (np.sum(u ** 3) / n ** 3) / (np.sum(u ** 2) / n ** 2) ** 1.5
        za = special.ndtri(alpha)
        a1 = special.ndtr(z0 + (z0 + za) / (1 - a_hat * (z0 + za)))
        a2 = special.ndtr(z0 + (z0 - za) / (1 - a_hat * (z0 - za)))
        lo, hi = np.percentile(reps, [100 * a1, 100 * a2])
        plo, phi = np.percentile(reps, [100 * alpha, 100 * (1 - alpha)])
        cases.append({"replicates": fl(reps), "theta": theta, "jackknife": fl(jack), "level": level,
                      "bca": [float(lo), float(hi)], "percentile": [float(plo), float(phi)]})
fx["bca_fixed"] = cases

# cluster bootstrap: numpy reference (resample whole clusters, pooled mean)
cases = []
for (c, lo_s, hi_s) in [(12, 2, 9), (40, 1, 6)]:
    sizes = rng.integers(lo_s, hi_s, c)
    clusters, values = [], []
    for ci, s in enumerate(sizes):
        eff = rng.normal(0, 1)
        values += list(eff + rng.normal(0, 1, s))
        clusters += [f"q{ci}"] * int(s)
    values = np.array(values)
    ids = pd.factorize(pd.Series(clusters))[0]
    sums = np.bincount(ids, weights=values)
    counts = np.bincount(ids).astype(float)
    idx = rng.integers(0, c, (B_SCIPY, c))
    reps = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    cases.append({"values": fl(values), "clusters": clusters, "level": 0.95,
                  "reference_resamples": B_SCIPY,
                  "percentile": fl(np.percentile(reps, [2.5, 97.5])), "se": float(reps.std(ddof=1))})
fx["cluster_bootstrap"] = cases

# --- hierarchical aggregation: pandas groupby + scipy t intervals ---------------------------
cases = []
for (g, lo_s, hi_s) in [(8, 20, 101), (5, 1, 4), (12, 3, 30)]:
    sizes = rng.integers(lo_s, hi_s, g)
    keys, vals = [], []
    for gi, size in enumerate(sizes):
        p = rng.beta(1, 4)
        vals += list((rng.random(size) < p).astype(float))
        keys += [f"question-{gi}"] * int(size)
    perm = rng.permutation(len(vals))
    vals = np.array(vals)[perm]
    keys = [keys[i] for i in perm]
    df = pd.DataFrame({"v": vals, "g": keys})
    per = df.groupby("g", sort=False)["v"].agg(["mean", "size"])
    gm = per["mean"].to_numpy()
    lo, hi = stats.t.interval(0.95, len(gm) - 1, loc=gm.mean(), scale=stats.sem(gm))
    mlo, mhi = stats.t.interval(0.95, len(vals) - 1, loc=vals.mean(), scale=stats.sem(vals))
    cases.append({"values": fl(vals), "groups": keys, "group_keys": list(per.index),
                  "group_means": fl(gm), "group_sizes": [int(v) for v in per["size"]],
                  "macro": [float(gm.mean()), float(lo), float(hi)],
                  "micro": [float(vals.mean()), float(mlo), float(mhi)]})
fx["hierarchical"] = cases

# --- introspection: mode baseline, entropy, distances, calibration -------------------------
cases = []
for n in [1, 5, 30, 200]:
    k = int(rng.integers(1, 6))
    labels = [f"l{int(v)}" for v in rng.integers(0, k, n)]
    counts = Counter(labels)
    top = max(counts.values())
    modes = sorted(l for l, c in counts.items() if c == top)
    cases.append({"labels": labels, "mode": modes[0], "accuracy": top / n,
                  "entropy": float(stats.entropy(list(counts.values())))})
fx["mode_baseline"] = cases

cases = []
for k in [2, 3, 10]:
    p = rng.dirichlet(np.ones(k))
    q = rng.dirichlet(np.ones(k))
    p_raw = p * 7.0  # unnormalised input
    cases.append({"p": fl(p_raw), "q": fl(q), "entropy": float(stats.entropy(p_raw)),
                  "kl": float(stats.entropy(p_raw, q)), "tv": float(0.5 * np.abs(p - q).sum())})
p0 = np.array([0.5, 0.5, 0.0])
q0 = np.array([0.2, 0.3, 0.5])
cases.append({"p": fl(p0), "q": fl(q0), "entropy": float(stats.entropy(p0)),
              "kl": float(stats.entropy(p0, q0)), "tv": float(0.5 * np.abs(p0 - q0).sum())})
fx["distributions"] = cases

cases = []
for (n, bins, discrete) in [(300, 10, False), (57, 10, True), (40, 4, False), (12, 10, True)]:
    if discrete:
        x = rng.integers(0, 21, n) / 20.0  # sample shares of 20 draws: many ties
    else:
        x = rng.beta(2, 2, n)
    y = np.clip(x + rng.normal(0, 0.15, n), 0, 1)
    df = pd.DataFrame({"x": x, "y": y})
    df["bin"] = pd.qcut(df["x"], bins, duplicates="drop", labels=False)
    g = df.groupby("bin").agg(x=("x", "mean"), y=("y", "mean"), n=("x", "size"))
    mad = float(np.mean(np.abs(g["x"] - g["y"])) * 100)
    cases.append({"pairs": [[float(a), float(b)] for a, b in zip(x, y)], "bins": bins,
                  "points": [[float(a), float(b)] for a, b in zip(g["x"], g["y"])],
                  "counts": [int(c) for c in g["n"]], "mad_x100": mad})
fx["calibration"] = cases

# --- power: statsmodels NormalIndPower with ratio=0 (one-sample z test) ----------------------
cases = []
for (omega2, sa, ka, sb, kb, delta, alpha, power) in [
        (0.008, 0.2375, 10, 0.2175, 10, 0.10, 0.05, 0.80),
        (0.02, 0.25, 1, 0.25, 1, 0.03, 0.05, 0.80),
        (0.0, 0.16, 100, 0.0, 1, 0.05, 0.01, 0.90),
        (0.05, 0.2, 5, 0.2, 5, 0.2, 0.1, 0.5)]:
    v = omega2 + sa / ka + sb / kb
    es = delta / math.sqrt(v)
    n = NormalIndPower().solve_power(effect_size=es, nobs1=None, alpha=alpha, power=power, ratio=0)
    row = {"between_var": omega2, "within_var_a": sa, "samples_a": ka, "within_var_b": sb,
           "samples_b": kb, "delta": delta, "alpha": alpha, "power": power, "n_exact": float(n),
           "power_at": []}
    for m in [5, 20, 100, 1000]:
        row["power_at"].append([m, float(NormalIndPower().power(es, m, alpha, ratio=0))])
    row["t_power_at"] = [[m, float(TTestPower().power(es, m, alpha))] for m in [5, 10, 20, 100]]
    cases.append(row)
fx["power"] = cases

# --- agreement -----------------------------------------------------------------------------
cases = []
for (n, k, noise) in [(20, 2, 0.2), (100, 4, 0.4), (50, 3, 0.1)]:
    a = rng.integers(0, k, n)
    b = np.where(rng.random(n) < noise, rng.integers(0, k, n), a)
    cases.append({"a": [f"c{v}" for v in a], "b": [f"c{v}" for v in b],
                  "kappa": float(cohen_kappa_score(a, b))})
fx["kappa"] = cases

cases = []
for (units, coders, kind, missing) in [(20, 3, "nominal", 0.1), (50, 2, "nominal", 0.0),
                                        (30, 4, "interval", 0.2), (15, 3, "interval", 0.0)]:
    truth = rng.integers(0, 4, units) if kind == "nominal" else rng.normal(50, 20, units)
    data = np.empty((coders, units))
    for c in range(coders):
        if kind == "nominal":
            data[c] = np.where(rng.random(units) < 0.3, rng.integers(0, 4, units), truth)
        else:
            data[c] = np.round(truth + rng.normal(0, 10, units), 1)
    data[rng.random((coders, units)) < missing] = np.nan
    alpha = krippendorff.alpha(reliability_data=data, level_of_measurement=kind)
    unit_lists = [[float(v) for v in data[:, u] if not np.isnan(v)] for u in range(units)]
    cases.append({"kind": kind, "units": unit_lists, "alpha": float(alpha)})
fx["krippendorff"] = cases

# --- edge cases (issue 14.6); appended last so every case above keeps its random draws -------
# McNemar chi-square, with and without the continuity correction.
cases = []
for (b, c) in [(0, 5), (5, 0), (1, 2), (3, 7), (10, 25), (40, 41), (120, 90)]:
    row = {"a_only": b, "b_only": c}
    for corr in [True, False]:
        res = mcnemar([[10, b], [c, 10]], exact=False, correction=corr)
        row["corrected" if corr else "uncorrected"] = {
            "statistic": float(res.statistic), "p_value": float(res.pvalue)}
    cases.append(row)
fx["mcnemar_chi2"] = cases

# BCa where 1 - a(z0 + z_alpha) <= 0: deterministic replicates with 2 of 2000 below theta
# (z0 = -3.09) and a jackknife with one outlier (a = -0.165). At 99.9% the lower tail's
# denominator is negative and scipy's formula returns a meaningless interval; psyche falls back
# to the percentile interval. At 99% the denominator is small but positive: BCa is defined.
reps = np.array([-1.0, -0.5] + [0.1 + 1.9 * i / 1997 for i in range(1998)])
jack = np.array([50.0] + [0.0] * 199)
theta = 0.0
cases = []
for level in [0.999, 0.99]:
    alpha = (1 - level) / 2
    pct = ((reps < theta).sum() + (reps <= theta).sum()) / (2 * len(reps))
    z0 = special.ndtri(pct)
    u = (len(jack) - 1) * (jack.mean() - jack)
    a_hat = 1 / 6 * (np.sum(u ** 3) / len(jack) ** 3) / (np.sum(u ** 2) / len(jack) ** 2) ** 1.5
    za = special.ndtri(alpha)
    den = min(1 - a_hat * (z0 + za), 1 - a_hat * (z0 - za))
    a1 = special.ndtr(z0 + (z0 + za) / (1 - a_hat * (z0 + za)))
    a2 = special.ndtr(z0 + (z0 - za) / (1 - a_hat * (z0 - za)))
    cases.append({"level": level, "accel": float(a_hat), "z0": float(z0), "min_denominator": float(den),
                  "scipy_formula": fl(np.percentile(reps, [100 * a1, 100 * a2])),
                  "percentile": fl(np.percentile(reps, [100 * alpha, 100 * (1 - alpha)]))})
fx["bca_guard"] = {"replicates": fl(reps), "theta": theta, "jackknife": fl(jack), "levels": cases}

# sample_size with zero between-item variance: the plan is a one-sample z test on the n*K
# pooled samples (statsmodels NormalIndPower in samples, ratio=0).
cases = []
for (within, k, delta, alpha, power) in [(0.25, 400, 0.1, 0.05, 0.8), (0.25, 10, 0.1, 0.05, 0.8),
                                          (0.09, 1000, 0.05, 0.01, 0.9)]:
    n_samples = NormalIndPower().solve_power(effect_size=delta / math.sqrt(within), nobs1=None,
                                             alpha=alpha, power=power, ratio=0)
    cases.append({"within_var": within, "samples": k, "delta": delta, "alpha": alpha,
                  "power": power, "n_samples_exact": float(n_samples)})
fx["power_zero_between"] = cases

OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text(json.dumps(fx, indent=1) + "\n")
print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
