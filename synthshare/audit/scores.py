"""Scores of every shadow fit's target by the three attacks of :mod:`synthshare.audit.attacks`.

Per shadow fit (a target t, in or out) the attacker knows the other records D \\ {t}
(the reference, identical for the in- and out-fits of t) and sees the fit's K
synthetic sets (black box) and its guide (white box). The three scores:

- ``cell_count``: :func:`~synthshare.audit.attacks.cell_count` minus the count per
  set the reference's cell model predicts, n·p_ref(cell);
- ``density_ratio``: :func:`~synthshare.audit.attacks.density_ratio` (synthetic vs
  reference cell models);
- ``log_probability``: :func:`~synthshare.audit.attacks.log_probability` minus the
  reference's log p_ref(cell).

The subtracted terms depend on the target only (the same for all its in- and
out-fits), so a target's own ROC and AUC are those of the raw attack; they put the
scores of different targets on one scale (each relative to what the other records
predict) for the metrics pooled over targets, where one threshold serves all targets.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from synthshare.audit.attacks import cell_count, cell_index, cell_log_density, density_ratio, log_probability
from synthshare.audit.targets import record_codes
from synthshare.generator.job import PartyOutputs

ATTACKS = ("cell_count", "density_ratio", "log_probability")
"""Attack names, the score columns of the scores table."""

ATTACK_LABELS = {
    "cell_count": "black box: cell count",
    "density_ratio": "black box: density ratio (DOMIAS-style)",
    "log_probability": "white box: log-probability",
}


def score_fit(target: np.ndarray, reference: np.ndarray, synthetic: np.ndarray, sets: int,
              loc: np.ndarray, scale: np.ndarray, layout, draws: int, seed: int) -> dict[str, float]:
    """The three scores of one target (6,) against one fit.

    ``reference`` (N − 1, 6) the party's other records, ``synthetic`` (K·N', 6) the K
    sets stacked, ``loc``, ``scale``, ``layout`` the fit's guide.
    """
    cell = int(cell_index(target))
    reference_log = cell_log_density(reference)[cell]
    per_set = synthetic.shape[0] / sets
    white = log_probability(np.asarray(target)[None, :], loc, scale, layout, draws=draws, seed=seed)[0]
    return {
        "cell_count": cell_count(target, synthetic, sets) - per_set * math.exp(reference_log),
        "density_ratio": density_ratio(target, synthetic, reference),
        "log_probability": float(white - reference_log),
    }


def score_outputs(records: np.ndarray, targets: dict[int, str], vulnerability: np.ndarray,
                  shadows, outputs: list[PartyOutputs], sets: int, draws: int, seed: int) -> pd.DataFrame:
    """One row per shadow fit: ``target, group, vulnerability, member, replicate, elbo_last,
    elbo_previous`` and the :data:`ATTACKS` scores.

    ``records`` (N, 6) the party's codes; ``targets`` row -> group (``vulnerable`` /
    ``typical``); ``shadows`` and ``outputs`` in the same order (``fit_shadows``).
    ``elbo_last`` / ``elbo_previous``: the mean ELBO per record over the last and the
    second-to-last tenth of the epochs (a training diagnostic: equal when converged).
    """
    rows = []
    for shadow, output in zip(shadows, outputs, strict=True):
        target = records[shadow.target]
        reference = np.delete(records, shadow.target, axis=0)
        synthetic = record_codes(output.synthetic, output.fit.name)
        scores = score_fit(target, reference, synthetic, sets, output.fit.loc, output.fit.scale, output.fit.layout,
                           draws, seed)
        elbo = output.fit.elbo / output.fit.num_records
        tenth = max(1, elbo.size // 10)
        rows.append({
            "target": int(shadow.target), "group": targets[shadow.target],
            "vulnerability": float(vulnerability[shadow.target]), "member": bool(shadow.member),
            "replicate": int(shadow.replicate), "elbo_last": float(np.mean(elbo[-tenth:])),
            "elbo_previous": float(np.mean(elbo[-2 * tenth:-tenth])) if elbo.size >= 2 * tenth else float("nan"),
            **scores,
        })
    return pd.DataFrame(rows)
