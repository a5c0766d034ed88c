"""Privacy accounting: σ calibration reaches the target, early stops are caught, and two
independent accountants (Fourier, PLD) agree that ε ≤ target within their stated errors."""

from __future__ import annotations

import json

import pytest

from synthshare.errors import InputError
from synthshare.generator import accounting
from synthshare.generator.accounting import AccountingError, calibrate_noise, pld_epsilon
from synthshare.generator.ledger import COLUMNS, collect_ledger, ledger_record, within_stated_error
from synthshare.generator.subsampling import effective_rate

DELTA = 1e-6


@pytest.mark.parametrize(
    "epsilon,q,steps",
    [
        (1.0, 0.01, 400_000),  # the paper's setting: 4,000 epochs at q = 0.01
        (4.0, 0.05, 2_000),
    ],
)
def test_both_accountants_certify_the_target_within_their_stated_error(epsilon, q, steps):
    q = effective_rate(q)
    calibration = calibrate_noise(epsilon, DELTA, q, steps)
    fourier = calibration.fourier
    pld = pld_epsilon(calibration.sigma, DELTA, q, steps, discretization=1e-5 if steps > 10_000 else 1e-4)
    assert epsilon - 1e-3 <= fourier.epsilon <= epsilon + fourier.error
    assert pld.epsilon <= epsilon + pld.error
    # Independent accountants of the same mechanism agree closely.
    assert pld.epsilon == pytest.approx(fourier.epsilon, abs=2e-3)
    assert fourier.error < 1e-3 and pld.error < 1e-3


def test_an_early_stop_above_the_target_is_detected_and_retried(monkeypatch):
    """d3p's search can return a σ whose ε exceeds the target when it runs out of
    evaluations; calibrate_noise re-evaluates every σ independently, retries with more
    evaluations, and fails loudly if no attempt reaches the target. (The search is
    replaced by a stand-in that returns a given sequence of σ; the check is real.)"""
    q, steps = effective_rate(0.05), 1000
    too_little_noise, enough_noise = 1.0, 8.0  # ε ≈ 12.2 and 0.83 at q = 0.05, T = 1,000
    calls = []

    def search(returned):
        def stand_in(target, delta, q, steps, **kwargs):
            calls.append(kwargs["maxeval"])
            return returned[min(len(calls), len(returned)) - 1], target * 0.999, kwargs["maxeval"]
        return stand_in

    monkeypatch.setattr(accounting, "approximate_sigma_remove_relation", search([too_little_noise, enough_noise]))
    calibration = calibrate_noise(1.0, DELTA, q, steps, tolerance=0.9)
    assert calls == [20, 40] and calibration.sigma == enough_noise and calibration.fourier.epsilon <= 1.0

    calls.clear()
    monkeypatch.setattr(accounting, "approximate_sigma_remove_relation", search([too_little_noise]))
    with pytest.raises(AccountingError, match=r"could not reach epsilon = 1.*σ = 1 gives ε = [1-9]"):
        calibrate_noise(1.0, DELTA, q, steps, tolerance=0.9)
    assert calls == [20, 40, 80]


def test_bad_privacy_settings_are_one_line_input_errors():
    with pytest.raises(InputError, match="generator.delta"):
        calibrate_noise(1.0, 0.0, 0.01, 100)
    with pytest.raises(InputError, match="epsilon"):
        calibrate_noise(-1.0, DELTA, 0.01, 100)


def _record(**overrides):
    fields = dict(
        scenario="centres", party="Leeds", epsilon_target=1.0, fraction=0.1, seed=123, variant="aligned",
        epsilon_fourier=0.9993, epsilon_fourier_error=1e-6, epsilon_pld=0.9994, epsilon_pld_error=2e-5,
        delta=1.0e-6 + 1e-12, delta_accountant=1e-6, delta_overflow=1e-12, q=0.01, q_effective=0.0100097656,
        steps=400000, epochs=4000, steps_per_epoch=100, batch_capacity=26, expected_batch=2.9, clip=2.0,
        sigma=26.77, N=290, components=16, learning_rate=1e-3,
    )
    fields.update(overrides)
    return ledger_record(**fields)


def test_ledger_records_and_the_stated_error_check(tmp_path):
    good = _record()
    assert list(good) == list(COLUMNS) and good["versions"]["d3p"] == "0.2.0"
    assert within_stated_error(good) == {"fourier": True, "pld": True}
    assert within_stated_error(_record(epsilon_pld=1.01)) == {"fourier": True, "pld": False}
    with pytest.raises(ValueError, match="missing fields"):
        ledger_record(party="x")
    paths = []
    for i, party in enumerate(["Oxford", "Barts"]):
        path = tmp_path / f"{party}.json"
        path.write_text(json.dumps(_record(party=party)))
        paths.append(path)
    ledger = collect_ledger(paths)
    assert list(ledger.columns) == list(COLUMNS) and list(ledger["party"]) == ["Barts", "Oxford"]
    assert json.loads(ledger.loc[0, "versions"])["jax"] == "0.4.30"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"party": "x"}))
    with pytest.raises(InputError, match=r"bad\.json: privacy record lacks field 'scenario'"):
        collect_ledger([bad])
