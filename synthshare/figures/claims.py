"""The paper's qualitative claims, each tested on this run (method.md, "Figures").

One row per claim, always: a claim whose inputs are not in the run's grid gets a row
saying so (``holds`` empty). Columns: ``claim_id, claim, figure, statistic, value,
pvalue, alpha, holds, detail``. A claim holds when its statistic points the paper's way
and its test reaches ``ALPHA``; a claim that does not hold is a finding.

Tests: ranked Welch (``stats.compare``) within a party; across parties an exact one-sided
sign test (binomial, p = 1/2) on how many parties go the paper's way; across skew levels
Spearman's rank correlation over (seed, skew) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import stats as sps

from synthshare.figures.readers import read_ll, samples_by
from synthshare.figures.samples import local_and_combined, local_only, need, representative_parties, steps_of
from synthshare.figures.stats import ALPHA, compare
from synthshare.naming import format_number as fmt

SATURATION_STEP = 5
"""The paper: "after about five steps no further improvements occur"."""
SATURATION_SHARE = 0.8
"""Saturated: by step 5 a party has at least this share of its gain at the last step."""

COVERAGE_LEVEL = 0.95
"""The nominal level of the study's intervals."""
COVERAGE_MIN_DATA_SETS = 10
"""Fewer distinct data sets behind a term's intervals leave its coverage untestable (0 or 1 at one)."""
COVERAGE_BELOW_SHARE = 0.1
"""The coverage claims hold if at most this share of slope terms is significantly below nominal."""

COLUMNS = ("claim_id", "claim", "figure", "statistic", "value", "pvalue", "alpha", "holds", "detail")


@dataclass(frozen=True)
class Claim:
    claim_id: str
    claim: str
    figure: str
    statistic: str


CLAIMS = (
    Claim("most_parties_benefit", "Combined data beats local only for most parties", "fig1",
          "share of parties with combined > local only (one-sided ranked Welch p <= alpha); "
          "p: one-sided sign test of that count against half the parties"),
    Claim("gain_saturates_after_five", "The improvement saturates after about five parties' synthetic data", "fig2",
          f"median over parties (with a positive total gain) of the share of the last step's median gain reached by "
          f"step {SATURATION_STEP}; holds if >= {SATURATION_SHARE}; p: sign test that the gain per added party is "
          f"larger in steps 1-{SATURATION_STEP} than after"),
    Claim("good_party_peaks_early", "A party with a good local fit gains from 1-2 parties' data, then drops", "fig2",
          "step (>= 1) with the highest median for the best local party; holds if 1 or 2 and the last step is lower; "
          "p: one-sided ranked Welch, peak step > last step"),
    Claim("gain_grows_as_data_shrinks", "The gain from sharing grows as local data shrinks", "fig3",
          "share of parties whose median gain (combined - local only) is larger at the smallest fraction than at the "
          "largest; p: one-sided sign test"),
    Claim("fraction_party_combined_beats_local", "{fraction_party} with all its data (f = 1): combined beats local only",
          "fig4", "median combined - median local only; p: two-sided ranked Welch"),
    Claim("fraction_party_without_ethnicity_beats_local",
          "{fraction_party} (f = 1): local only without ethnicity beats local only with it", "fig4",
          "median without ethnicity - median with it; p: two-sided ranked Welch"),
    Claim("correction_grows_with_skew", "The correction by shared data grows with the skew", "fig5",
          "Spearman correlation of the skew fraction kept with the per-seed median gain (combined - local only); "
          "negative = larger correction for stronger skew; p: one-sided (rho < 0)"),
    Claim("larger_epsilon_helps", "Larger ε helps", "fig6",
          "share of parties whose combined median is higher at the largest ε than at the smallest; p: one-sided sign test"),
    Claim("all_parties_benefit_at_eps2", "At ε = 2 every party's combined beats local only", "fig_s1",
          "share of parties with combined > local only (one-sided ranked Welch p <= alpha); p: the largest party p-value"),
    # beyond the paper (issue 16): are the combined intervals right, not just likely?
    Claim("synthetic_intervals_cover", "Rubin's-rules 95 % intervals from all partners' DP synthetic data cover the "
          "estimand at the nominal rate", "coverage",
          "mean over slope terms of the coverage at the last step (reference ε, over parties, seeds and orders); holds "
          f"if at most {COVERAGE_BELOW_SHARE:.0%} of the terms are significantly below 0.95 (Clopper-Pearson upper "
          "bound < 0.95); p: none (replicates are not independent)"),
    Claim("real_intervals_cover", "The yardstick: 95 % intervals from all partners' real data cover the estimand at "
          "the nominal rate", "coverage",
          "as above for sharing the partners' real data (one fit, its own HC1 variance)"),
)


def _sign_test(successes: int, trials: int) -> float:
    """P(X >= successes) for X ~ Binomial(trials, 1/2): the one-sided sign test."""
    return float(sps.binomtest(successes, trials, 0.5, alternative="greater").pvalue) if trials else float("nan")


def _result(value: float, pvalue: float, holds: bool, detail: str) -> dict[str, Any]:
    return {"value": float(value), "pvalue": float(pvalue), "holds": bool(holds), "detail": detail}


def _not_tested(reason: str) -> dict[str, Any]:
    return {"value": np.nan, "pvalue": np.nan, "holds": None, "detail": f"not tested in this run: {reason}"}


def _median(values: np.ndarray) -> float:
    return float(np.median(values))


# --- the claims ---------------------------------------------------------------------------

def _parties_benefit(ll: Path, s: dict, epsilon: float, require_all: bool) -> dict[str, Any]:
    parties = s["parties"]
    pairs = local_and_combined(ll, parties, len(parties) - 1, scenario="centres", epsilon=epsilon, fraction=s["fraction"])
    tests = {p: compare(c, lo, "greater") for p, (lo, c) in pairs.items()}
    significant = [p for p, t in tests.items() if t.pvalue <= ALPHA]
    share = len(significant) / len(parties)
    failing = ", ".join(f"{p} (p = {tests[p].pvalue:.2g})" for p in parties if p not in significant) or "none"
    detail = f"ε = {fmt(epsilon)}, f = {fmt(s['fraction'])}: {len(significant)} of {len(parties)} parties; not: {failing}"
    if require_all:
        return _result(share, max(t.pvalue for t in tests.values()), share == 1.0, detail)
    pvalue = _sign_test(len(significant), len(parties))
    return _result(share, pvalue, share > 0.5 and pvalue <= ALPHA, detail)


def most_parties_benefit(ll: Path, s: dict) -> dict[str, Any]:
    return _parties_benefit(ll, s, s["epsilon"], require_all=False)


def all_parties_benefit_at_eps2(ll: Path, s: dict) -> dict[str, Any]:
    if s["supplement_epsilon"] is None:
        return _not_tested("needs ε = 2 in `epsilons`")
    return _parties_benefit(ll, s, s["supplement_epsilon"], require_all=True)


def _step_medians(ll: Path, s: dict) -> dict[str, np.ndarray]:
    """party -> median log-likelihood at steps 0 ... M-1 (reference setting)."""
    last = len(s["parties"]) - 1
    where = {"scenario": "centres", "epsilon": s["epsilon"], "fraction": s["fraction"]}
    return {p: np.array([_median(v) for v in steps_of(ll, p, last, **where).values()]) for p in s["parties"]}


def gain_saturates_after_five(ll: Path, s: dict) -> dict[str, Any]:
    last = len(s["parties"]) - 1
    if last <= SATURATION_STEP:
        return _not_tested(f"needs more than {SATURATION_STEP + 1} parties (steps beyond {SATURATION_STEP}); "
                           f"this run has {len(s['parties'])}")
    medians = _step_medians(ll, s)
    shares, early_larger = {}, 0
    for party, m in medians.items():
        total = m[-1] - m[0]
        if total > 0:
            shares[party] = (m[SATURATION_STEP] - m[0]) / total
        early = (m[SATURATION_STEP] - m[0]) / SATURATION_STEP
        late = (m[-1] - m[SATURATION_STEP]) / (last - SATURATION_STEP)
        early_larger += early > late
    if not shares:
        return _result(np.nan, np.nan, False, "no party gains from sharing at the last step")
    value = float(np.median(list(shares.values())))
    pvalue = _sign_test(early_larger, len(medians))
    detail = (f"{len(shares)} parties with a positive gain; share by step {SATURATION_STEP}: "
              + ", ".join(f"{p} {v:.2f}" for p, v in shares.items())
              + f"; gain per added party larger early than late for {early_larger} of {len(medians)}")
    return _result(value, pvalue, value >= SATURATION_SHARE and pvalue <= ALPHA, detail)


def good_party_peaks_early(ll: Path, s: dict) -> dict[str, Any]:
    last = len(s["parties"]) - 1
    if last < 3:
        return _not_tested(f"needs at least 4 parties (a peak at 1-2 steps and a later drop); this run has {len(s['parties'])}")
    where = {"scenario": "centres", "epsilon": s["epsilon"], "fraction": s["fraction"]}
    local = local_only(ll, s["parties"], **where)
    good = list(representative_parties(local))[-1]
    by_step = steps_of(ll, good, last, **where)
    medians = {step: _median(v) for step, v in by_step.items()}
    peak = max(range(1, last + 1), key=lambda j: medians[j])
    test = compare(by_step[peak], by_step[last], "greater") if peak != last else None
    pvalue = test.pvalue if test else np.nan
    holds = peak in (1, 2) and test is not None and pvalue <= ALPHA
    detail = f"{good}: medians by step " + ", ".join(f"{j}: {m:.4f}" for j, m in medians.items())
    return _result(peak, pvalue, holds, detail)


def _party_gains(ll: Path, s: dict, epsilon: float, fraction: float) -> dict[str, float]:
    pairs = local_and_combined(ll, s["parties"], len(s["parties"]) - 1, scenario="centres", epsilon=epsilon,
                               fraction=fraction)
    return {p: _median(c) - _median(lo) for p, (lo, c) in pairs.items()}


def gain_grows_as_data_shrinks(ll: Path, s: dict) -> dict[str, Any]:
    fractions = s["fractions"]
    if len(fractions) < 2:
        return _not_tested("needs at least two local data fractions at the reference ε (`fractions`)")
    gains = {f: _party_gains(ll, s, s["epsilon"], f) for f in fractions}
    small, large = gains[fractions[0]], gains[fractions[-1]]
    larger = sum(small[p] > large[p] for p in s["parties"])
    share = larger / len(s["parties"])
    pvalue = _sign_test(larger, len(s["parties"]))
    focus = s["fraction_party"]
    detail = (f"parties with a larger gain at f = {fmt(fractions[0])} than at f = {fmt(fractions[-1])}: "
              f"{larger} of {len(s['parties'])}")
    if focus:
        detail += f"; {focus}'s gain by f: " + ", ".join(f"{fmt(f)}: {gains[f][focus]:.4f}" for f in fractions)
    return _result(share, pvalue, share > 0.5 and pvalue <= ALPHA, detail)


def _fraction_party_f1(ll: Path, s: dict) -> dict[str, np.ndarray] | str:
    if s["fraction_party"] is None:
        return "the fraction party (figures.fraction_party) is not one of the parties"
    if 1.0 not in s["fractions"]:
        return "needs f = 1 in `fractions`"
    party = s["fraction_party"]
    where = {"scenario": "centres", "epsilon": s["epsilon"], "fraction": 1.0}
    local, combined = local_and_combined(ll, [party], len(s["parties"]) - 1, **where)[party]
    no_ethnicity = local_only(ll, [party], variant="no_ethnicity", **where)[party]
    return {"local": local, "combined": combined, "no_ethnicity": no_ethnicity}


def _two_sided_better(samples: dict | str, better: str, worse: str, party: str | None) -> dict[str, Any]:
    if isinstance(samples, str):
        return _not_tested(samples)
    test = compare(samples[better], samples[worse], "two-sided")
    value = test.median_a - test.median_b
    detail = f"{party}: median {better} {test.median_a:.4f} vs {worse} {test.median_b:.4f} (n = {test.n_a}, {test.n_b})"
    return _result(value, test.pvalue, value > 0 and test.pvalue <= ALPHA, detail)


def skew_correction(ll: Path, s: dict) -> dict[str, Any]:
    skews = s["skews"]
    if len(skews) < 2:
        return _not_tested("needs the skew experiment with at least two skew fractions (`skew.fractions`, f = 1)")
    last = len(s["parties"])
    frame = read_ll(ll, columns=("skew", "seed", "step", "ll"), scenario="skew", party="skewed", variant="full",
                    epsilon=s["epsilon"], fraction=1.0, step=[0, last])
    groups = samples_by(frame, ["skew", "seed", "step"])
    seeds = sorted(frame["seed"].unique())
    x, gains = [], []
    for skew in skews:
        for seed in seeds:
            where = {"skew": skew, "seed": seed}
            local = need(groups, (skew, seed, 0), ll, step=0, **where)
            combined = need(groups, (skew, seed, last), ll, step=last, **where)
            x.append(skew)
            gains.append(_median(combined) - _median(local))
    rho, pvalue = sps.spearmanr(x, gains, alternative="less")
    by_skew = pd.Series(gains, index=x).groupby(level=0).mean()
    detail = "mean over seeds of the median gain by skew fraction kept: " + ", ".join(
        f"{fmt(k)}: {v:.4f}" for k, v in by_skew.items())
    return _result(rho, pvalue, bool(rho < 0) and pvalue <= ALPHA, detail)


def larger_epsilon_helps(ll: Path, s: dict) -> dict[str, Any]:
    epsilons = s["epsilons"]
    if len(epsilons) < 2:
        return _not_tested("needs at least two ε values at the reference fraction (`epsilons`)")
    last = len(s["parties"]) - 1
    medians = {}
    for epsilon in (epsilons[0], epsilons[-1]):
        pairs = local_and_combined(ll, s["parties"], last, scenario="centres", epsilon=epsilon, fraction=s["fraction"])
        medians[epsilon] = {p: _median(c) for p, (_, c) in pairs.items()}
    better = sum(medians[epsilons[-1]][p] > medians[epsilons[0]][p] for p in s["parties"])
    share = better / len(s["parties"])
    pvalue = _sign_test(better, len(s["parties"]))
    detail = (f"parties with a higher combined median at ε = {fmt(epsilons[-1])} than at ε = {fmt(epsilons[0])}: "
              f"{better} of {len(s['parties'])}; mean of party medians "
              + ", ".join(f"ε = {fmt(e)}: {np.mean(list(m.values())):.4f}" for e, m in medians.items()))
    return _result(share, pvalue, share > 0.5 and pvalue <= ALPHA, detail)


def _intervals_cover(s: dict, source: str) -> dict[str, Any]:
    """The coverage claims, from the coverage product's table (``tables/coverage.csv``)."""
    if s.get("coverage_table") is None:
        return _not_tested("needs a simulated cohort (the coverage figure's estimand)")
    table = pd.read_csv(s["coverage_table"])
    rows = table[(table["scenario"] == "centres") & (table["source"] == source) & (table["term"] != "Intercept")]
    if source == "synthetic":
        rows = rows[np.isclose(rows["epsilon"], s["epsilon"])]
    if rows.empty:
        return _not_tested(f"no {source} intervals at the reference setting")
    last = rows[rows["step"] == rows["step"].max()]
    below = int((last["coverage_high"] < COVERAGE_LEVEL).sum())
    value = float(last["coverage"].mean())
    detail = (f"step {int(last['step'].iloc[0])}, {len(last)} slope terms: mean coverage {value:.3f} (min "
              f"{last['coverage'].min():.3f}, {int(last['intervals'].max())} intervals per term from {int(last['data_sets'].max())} distinct data sets), {below} terms "
              f"significantly below {COVERAGE_LEVEL}; mean width {last['mean_width'].mean():.3f}")
    sets = int(last["data_sets"].max())
    if sets < COVERAGE_MIN_DATA_SETS:
        # e.g. real-data sharing at the last step: every party fits the same records
        return {"value": value, "pvalue": np.nan, "holds": None,
                "detail": f"not testable: {sets} distinct data set(s) behind the intervals (fewer than "
                          f"{COVERAGE_MIN_DATA_SETS}); " + detail}
    return _result(value, np.nan, below <= COVERAGE_BELOW_SHARE * len(last), detail)


EVALUATORS: dict[str, Callable[[Path, dict], dict[str, Any]]] = {
    "synthetic_intervals_cover": lambda ll, s: _intervals_cover(s, "synthetic"),
    "real_intervals_cover": lambda ll, s: _intervals_cover(s, "real"),
    "most_parties_benefit": most_parties_benefit,
    "gain_saturates_after_five": gain_saturates_after_five,
    "good_party_peaks_early": good_party_peaks_early,
    "gain_grows_as_data_shrinks": gain_grows_as_data_shrinks,
    "fraction_party_combined_beats_local": lambda ll, s: _two_sided_better(
        _fraction_party_f1(ll, s), "combined", "local", s["fraction_party"]),
    "fraction_party_without_ethnicity_beats_local": lambda ll, s: _two_sided_better(
        _fraction_party_f1(ll, s), "no_ethnicity", "local", s["fraction_party"]),
    "correction_grows_with_skew": skew_correction,
    "larger_epsilon_helps": larger_epsilon_helps,
    "all_parties_benefit_at_eps2": all_parties_benefit_at_eps2,
}


def evaluate_claims(ll: str | Path, settings: dict[str, Any], coverage: str | Path | None = None) -> pd.DataFrame:
    """Test every claim of :data:`CLAIMS` on ``ll.parquet``; one row each, in that order.

    ``settings`` is ``catalogue.claim_settings(config)``; ``coverage`` the coverage
    product's ``tables/coverage.csv`` (simulated cohorts), else the coverage claims are
    not tested.
    """
    ll = Path(ll)
    s = {**settings, "coverage_table": coverage, "epsilon": float(settings["epsilon"]), "fraction": float(settings["fraction"]),
         "fractions": [float(f) for f in settings["fractions"]], "epsilons": [float(e) for e in settings["epsilons"]],
         "skews": [float(k) for k in settings["skews"]]}
    rows = []
    for claim in CLAIMS:
        result = EVALUATORS[claim.claim_id](ll, s)
        text = claim.claim.format(fraction_party=settings["fraction_party_name"])
        rows.append({"claim_id": claim.claim_id, "claim": text, "figure": claim.figure,
                     "statistic": claim.statistic, "value": result["value"], "pvalue": result["pvalue"],
                     "alpha": ALPHA, "holds": result["holds"], "detail": result["detail"]})
    return pd.DataFrame(rows, columns=list(COLUMNS))


# The audit's claims (issue 13; synthshare.audit): rows only when the config has an
# ``audit`` section. Inputs: the audit's summary table (synthshare.audit.tables).
AUDIT_CLAIMS = (
    Claim("dp_lower_bound_within_ledger", "The DP release's empirical ε lower bound is within its ledger ε", "audit_roc",
          "largest empirical ε lower bound (Clopper-Pearson, held-out threshold) minus the ledger's ε, over the DP arms, "
          "audited parties, attacks and target groups; holds if <= 0 (the intervals are at the audit's level)"),
    Claim("control_leaks_on_outliers", "The non-DP control leaks on outliers", "audit_per_target",
          "largest mean per-target AUC of the non-DP control on the vulnerable targets over parties and attacks; p: "
          "smallest stratified permutation p-value (member labels permuted within each target) times the number of "
          "(party, attack) tests (Bonferroni); holds if p <= alpha, otherwise 'no power at this size' (never a pass)"),
)


def _dp_within_ledger(summary: pd.DataFrame) -> dict[str, Any]:
    dp = summary[np.isfinite(summary["epsilon"].to_numpy(np.float64))]
    if dp.empty:
        return _not_tested("no DP arm in the audit")
    excess = dp["epsilon_lower_bound"] - dp["epsilon"]
    worst = dp.loc[excess.idxmax()]
    per_arm = dp.groupby("arm")["epsilon_lower_bound"].max()
    detail = (f"largest lower bound {worst['epsilon_lower_bound']:.3g} ({worst['attack']}, {worst['group']}, "
              f"{worst['party']} f = {fmt(float(worst['fraction']))}, {worst['arm']}, ledger ε {worst['epsilon']:.3g}); "
              + ", ".join(f"{arm}: max {value:.3g}" for arm, value in per_arm.items()))
    return _result(float(excess.max()), np.nan, bool(excess.max() <= 0), detail)


def _control_leaks(summary: pd.DataFrame) -> dict[str, Any]:
    control = summary[~np.isfinite(summary["epsilon"].to_numpy(np.float64)) & (summary["group"] == "vulnerable")]
    if control.empty:
        return _not_tested("no control arm in the audit")
    tests = len(control)
    best = control.loc[control["target_auc_pvalue"].idxmin()]
    pvalue = min(1.0, float(best["target_auc_pvalue"]) * tests)
    detail = (f"smallest p: {best['attack']} on {best['party']} f = {fmt(float(best['fraction']))}, mean per-target "
              f"AUC {best['target_auc']:.3f} over {int(best['targets'])} targets ({int(best['members'])} + "
              f"{int(best['others'])} fits; permutation p {best['target_auc_pvalue']:.2g}, {tests} tests); pooled over "
              f"targets (one threshold): AUC {best['auc']:.3f} [{best['auc_low']:.3f}, {best['auc_high']:.3f}], "
              f"Mann-Whitney p {best['auc_pvalue']:.2g}")
    if pvalue > ALPHA:
        return {"value": float(control["target_auc"].max()), "pvalue": pvalue, "holds": None,
                "detail": f"no power at this size: the control shows no significant leakage; {detail}"}
    return _result(float(control["target_auc"].max()), pvalue, True, detail)


def evaluate_audit_claims(summary: str | Path | pd.DataFrame) -> pd.DataFrame:
    """The two audit rows of claims.csv (same columns) from the audit's summary table."""
    table = pd.read_csv(summary) if not isinstance(summary, pd.DataFrame) else summary
    results = {"dp_lower_bound_within_ledger": _dp_within_ledger(table), "control_leaks_on_outliers": _control_leaks(table)}
    rows = [{"claim_id": c.claim_id, "claim": c.claim, "figure": c.figure, "statistic": c.statistic,
             **{k: results[c.claim_id][k] for k in ("value", "pvalue")}, "alpha": ALPHA,
             "holds": results[c.claim_id]["holds"], "detail": results[c.claim_id]["detail"]} for c in AUDIT_CLAIMS]
    return pd.DataFrame(rows, columns=list(COLUMNS))
