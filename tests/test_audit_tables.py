"""The audit's tables and claims rows from scores with known leakage."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from synthshare.audit.scores import ATTACKS
from synthshare.audit.tables import audit_tables
from synthshare.figures.claims import evaluate_audit_claims


def _scores(shift_control: float, shift_dp: float, fits: int = 20, seed: int = 0) -> pd.DataFrame:
    """Scores of 4 vulnerable and 2 typical targets; members shifted by ``shift`` on the
    vulnerable targets only (a leak on the outliers)."""
    rng = np.random.default_rng(seed)
    rows = []
    for arm, epsilon, shift in (("eps1", 1.0, shift_dp), ("control", math.inf, shift_control)):
        for target in range(6):
            group = "vulnerable" if target < 4 else "typical"
            for member in (True, False):
                for r in range(fits):
                    value = rng.standard_normal() + (shift if member and group == "vulnerable" else 0.0)
                    rows.append({"party": "Barts", "fraction": 0.1, "arm": arm, "epsilon": epsilon, "delta": 1e-6,
                                 "target": target, "group": group, "vulnerability": 3.0 if group == "vulnerable" else 1.0,
                                 "member": member, "replicate": r, **{a: value for a in ATTACKS}})
    return pd.DataFrame(rows)


def test_tables_find_a_leak_on_the_outliers_only():
    tables = audit_tables(_scores(shift_control=2.0, shift_dp=0.0), level=0.95, seed=0)
    summary = tables["summary"].set_index(["arm", "attack", "group"])
    leak = summary.loc[("control", "log_probability", "vulnerable")]
    assert leak["auc"] > 0.85 and leak["auc_low"] > 0.5 and leak["auc_pvalue"] < 1e-6
    assert leak["tpr_at_fpr_0.1"] > 0.4 and leak["epsilon_lower_bound"] > 0.5
    assert summary.loc[("control", "log_probability", "typical"), "auc_low"] < 0.5
    assert abs(summary.loc[("eps1", "log_probability", "vulnerable"), "auc"] - 0.5) < 0.15
    outliers = tables["outliers"].set_index(["arm", "attack"])
    assert outliers.loc[("control", "cell_count"), "vulnerable_auc"] > outliers.loc[("control", "cell_count"), "typical_auc"]
    assert len(tables["per_target"]) == 2 * len(ATTACKS) * 6
    roc = tables["roc"]
    assert set(roc["group"]) == {"vulnerable", "typical", "all"} and roc["tpr"].between(0, 1).all()


def test_claims_rows_say_no_power_rather_than_pass():
    quiet = evaluate_audit_claims(audit_tables(_scores(0.0, 0.0), 0.95, 0)["summary"]).set_index("claim_id")
    assert quiet.loc["dp_lower_bound_within_ledger", "holds"] == True  # noqa: E712 (numpy or Python bool)
    control = quiet.loc["control_leaks_on_outliers"]
    assert control["holds"] is None and control["detail"].startswith("no power at this size")
    loud = evaluate_audit_claims(audit_tables(_scores(2.0, 0.0), 0.95, 0)["summary"]).set_index("claim_id")
    assert loud.loc["control_leaks_on_outliers", "holds"] == True  # noqa: E712
    # A DP arm that leaks far beyond ε = 1 breaks the first claim.
    broken = evaluate_audit_claims(audit_tables(_scores(2.0, 4.0, fits=40), 0.95, 0)["summary"]).set_index("claim_id")
    assert broken.loc["dp_lower_bound_within_ledger", "holds"] == False  # noqa: E712
    assert broken.loc["dp_lower_bound_within_ledger", "value"] > 0


def test_perfect_separation_is_significant_not_degenerate():
    """At AUC = 1 DeLong's standard error is 0; the p-value (Mann–Whitney) is still tiny."""
    summary = audit_tables(_scores(shift_control=50.0, shift_dp=0.0, fits=6), 0.95, 0)["summary"]
    leak = summary.set_index(["arm", "attack", "group"]).loc[("control", "log_probability", "vulnerable")]
    assert leak["auc"] == 1.0 and leak["auc_pvalue"] < 1e-6
    claims = evaluate_audit_claims(summary).set_index("claim_id")
    assert claims.loc["control_leaks_on_outliers", "holds"] == True  # noqa: E712


def test_stratified_test_sees_a_per_target_leak_that_pooling_hides():
    """Each vulnerable target's members score higher than its own non-members, but the
    targets' score levels differ far more: the pooled AUC stays near 1/2, the mean
    per-target AUC is near 1 and its within-target permutation p-value is small."""
    scores = _scores(shift_control=1.5, shift_dp=0.0, fits=8, seed=2)
    scores["log_probability"] += 40.0 * scores["target"]
    summary = audit_tables(scores, 0.95, 0)["summary"].set_index(["arm", "attack", "group"])
    leak = summary.loc[("control", "log_probability", "vulnerable")]
    assert abs(leak["auc"] - 0.5) < 0.2 and leak["auc_pvalue"] > 0.01
    assert leak["target_auc"] > 0.8 and leak["target_auc_pvalue"] < 0.001
    quiet = summary.loc[("eps1", "log_probability", "vulnerable")]
    assert quiet["target_auc_pvalue"] > 0.01
