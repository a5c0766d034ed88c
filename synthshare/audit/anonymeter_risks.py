"""anonymeter's singling-out, linkability and inference risks of a released synthetic set.

Giomi et al. (PoPETs 2023), the ``anonymeter`` package (pinned in requirements.txt):
each evaluator attacks the original records ``ori`` (the party's training data) with
the synthetic set and attacks a control set of records the generator never saw the
same way; the risk is the attack's success on ``ori`` beyond its success on the
control, (r_ori − r_control)/(1 − r_control), with a confidence interval. The control
here is the party's held-out records: its centre's rows of the test split.

Attacks, on the six columns (five features and the outcome, as categories):

- singling out (multivariate, predicates on 3 columns);
- linkability: records split into (age group, sex, ethnicity) and (deprivation,
  education, outcome); a link is found when the nearest synthetic record of both halves
  is the same (1 neighbour);
- inference: the outcome (the secret) guessed from the five features by the nearest
  synthetic record.

anonymeter draws from NumPy's global generator (``pandas.DataFrame.sample``) and from
a module-level ``default_rng()`` of its singling-out evaluator; :func:`anonymeter_risks`
seeds both from ``seed`` so the same inputs give the same risks.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
from anonymeter.evaluators import InferenceEvaluator, LinkabilityEvaluator, SinglingOutEvaluator
from anonymeter.evaluators import singling_out_evaluator

from synthshare.variables import FEATURES, OUTCOME

COLUMNS = tuple(FEATURES) + (OUTCOME,)
LINK_HALVES = (["age_group", "sex", "ethnicity"], ["deprivation", "education", OUTCOME])
SINGLING_OUT_COLUMNS = 3
SINGLING_OUT_ATTEMPTS = 100_000
"""anonymeter's ``max_attempts`` of query generation (its default, 10⁷, can run for hours)."""


def _categories(frame: pd.DataFrame) -> pd.DataFrame:
    """The six columns as text (anonymeter treats object columns as categorical)."""
    return pd.DataFrame({c: frame[c].astype(str).to_numpy(dtype=object) for c in COLUMNS})


@contextlib.contextmanager
def _seeded(seed: int):
    """Seed anonymeter's two random sources for the block; restore NumPy's global state after."""
    state = np.random.get_state()
    module_rng = singling_out_evaluator.rng
    np.random.seed(seed % 2**32)
    singling_out_evaluator.rng = np.random.default_rng(seed)
    try:
        yield
    finally:
        singling_out_evaluator.rng = module_rng
        np.random.set_state(state)


def anonymeter_risks(original: pd.DataFrame, synthetic: pd.DataFrame, control: pd.DataFrame, attacks: int,
                     level: float, seed: int) -> pd.DataFrame:
    """One row per evaluator: ``risk, risk_low, risk_high, attacks, success_rate, control_rate``.

    ``attacks`` is capped by the sizes of ``original`` and ``control`` (anonymeter samples
    its targets from both without replacement).
    """
    ori, syn, ctl = _categories(original), _categories(synthetic), _categories(control)
    n = int(min(attacks, len(ori.drop_duplicates()), len(ctl.drop_duplicates())))
    rows = []
    with _seeded(seed):
        evaluators = {
            "singling_out": lambda: SinglingOutEvaluator(
                ori=ori, syn=syn, control=ctl, n_attacks=n, n_cols=SINGLING_OUT_COLUMNS,
                max_attempts=SINGLING_OUT_ATTEMPTS).evaluate(mode="multivariate"),
            "linkability": lambda: LinkabilityEvaluator(
                ori=ori, syn=syn, control=ctl, n_attacks=n, aux_cols=LINK_HALVES, n_neighbors=1).evaluate(n_jobs=1),
            "inference": lambda: InferenceEvaluator(
                ori=ori, syn=syn, control=ctl, aux_cols=list(FEATURES), secret=OUTCOME, regression=False,
                n_attacks=n).evaluate(n_jobs=1),
        }
        for name, run in evaluators.items():
            evaluator = run()
            risk = evaluator.risk(confidence_level=level)
            results = evaluator.results(confidence_level=level)
            rows.append({
                "evaluator": name, "risk": float(risk.value), "risk_low": float(risk.ci[0]),
                "risk_high": float(risk.ci[1]), "attacks": int(results.n_attacks),
                "success_rate": float(results.attack_rate.value), "control_rate": float(results.control_rate.value),
            })
    return pd.DataFrame(rows)
