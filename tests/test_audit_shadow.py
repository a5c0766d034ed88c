"""The audit stage's shadow fits: in/out data sets, the non-DP control through the release's
code (no noise, no clipping), deterministic scores, and one-line errors for bad config."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from synthshare.audit.scores import ATTACKS, score_outputs
from synthshare.audit.settings import audit_settings
from synthshare.audit.settings import CONTROL, arm_epsilon, arm_name
from synthshare.audit.shadow import control_settings, fit_shadows, shadow_datasets
from synthshare.audit.targets import record_codes, select_targets
from synthshare.config import check_config, load_schema
from synthshare.errors import InputError
from synthshare.generator.fit import PartyData
from synthshare.generator.gradients import clipped_gradient_sum, record_gradients
from synthshare.generator.job import UNCLIPPED
from synthshare.generator.privacy_level import NO_PRIVACY
from synthshare.generator.settings import GeneratorSettings
from tests.generator_helpers import random_frame, small_dpvi


def _party(n=30, seed=0):
    frame = random_frame(np.random.default_rng(seed), n, centre="Barts")
    return frame, PartyData.from_frame("Barts", frame, "test frame")


def test_in_and_out_datasets_differ_by_exactly_the_target():
    _, data = _party()
    shadows = shadow_datasets(data, [3, 17], fits_per_target=2)
    assert len(shadows) == 8 and len({s.data.name for s in shadows}) == 8
    for shadow in shadows:
        if shadow.member:
            np.testing.assert_array_equal(shadow.data.codes, data.codes)
            np.testing.assert_array_equal(shadow.data.outcome, data.outcome)
        else:
            assert shadow.data.num_records == data.num_records - 1
            keep = np.arange(data.num_records) != shadow.target
            np.testing.assert_array_equal(shadow.data.codes, data.codes[keep])
            np.testing.assert_array_equal(shadow.data.outcome, data.outcome[keep])
    with pytest.raises(InputError, match="target row 30"):
        shadow_datasets(data, [30], fits_per_target=2)


def test_arm_names_round_trip():
    assert arm_name(NO_PRIVACY) == CONTROL and arm_epsilon(CONTROL) == NO_PRIVACY
    assert arm_name(4.0) == "eps4" and arm_epsilon("eps4") == 4.0 and arm_epsilon(arm_name(0.5)) == 0.5


def test_control_step_has_no_noise_and_no_clipping_through_the_production_step():
    """The control's DPVI object (σ = 0, C = UNCLIPPED) in the release's aligned step:
    the noise draw has no effect and the summed gradient is the unclipped sum; at the
    release's C = 2 the same closed form clips these records (so the test can fail)."""
    dpvi, state, codes, outcome = small_dpvi("aligned", sigma=0.0, clip=UNCLIPPED, q=1.0, capacity=40, num_records=40)
    codes, outcome = jnp.asarray(codes), jnp.asarray(outcome * 5.0)  # large outcomes: gradient norms above 2
    params = dpvi.optim.get_params(state.optim_state)
    loc = params[f"{dpvi.guide.prefix}_loc"]
    eta = jnp.asarray(np.random.default_rng(1).standard_normal(loc.shape), jnp.float32)
    valid = jnp.ones(40, bool)
    args = (state, None, params, eta, codes, outcome, valid, jnp.int32(40))
    _, _, quiet = dpvi.aligned_gradients(*args, noise=jnp.zeros(loc.shape, jnp.float32))
    _, _, loud = dpvi.aligned_gradients(*args, noise=jnp.full(loc.shape, 3.0, jnp.float32))
    for site in quiet:
        np.testing.assert_array_equal(np.asarray(quiet[site]), np.asarray(loud[site]))  # noise has no effect at all
        assert np.all(np.isfinite(np.asarray(quiet[site])))
    latent = dpvi._latent(params, eta)
    _, norms, summed = dpvi.clipped_sum(state, latent, codes, outcome, valid)
    unpacked = dpvi.guide._unpack_latent(latent)
    _, grads = record_gradients(unpacked, codes, outcome)
    unclipped = np.concatenate([np.asarray(jnp.sum(grads[site], axis=0)).reshape(-1) for site in unpacked])
    assert float(jnp.max(norms)) > 2.0  # some record would be clipped at the release's C = 2
    np.testing.assert_allclose(np.asarray(summed), unclipped, rtol=1e-5, atol=1e-5 * np.abs(unclipped).max())
    _, _, at_two = clipped_gradient_sum(unpacked, codes, outcome, valid, 2.0)
    clipped = np.concatenate([np.asarray(at_two[site]).reshape(-1) for site in unpacked])
    assert np.abs(clipped - unclipped).max() > 1e-2 * np.abs(unclipped).max()


def test_shadow_fits_run_the_release_code_and_give_the_same_scores_twice():
    frame, data = _party(n=24)
    records = record_codes(frame, "test frame")
    chosen = select_targets(records, 1, 1)
    groups = {int(chosen.vulnerable[0]): "vulnerable", int(chosen.typical[0]): "typical"}
    shadows = shadow_datasets(data, list(groups), fits_per_target=2)
    settings = control_settings(GeneratorSettings(components=2, epochs=2, sampling_rate=0.25, synthetic_sets=2), 4)
    assert settings.epochs == 4
    tables = []
    for _ in range(2):
        outputs = fit_shadows(shadows, "centres", 0.5, NO_PRIVACY, 7, settings)
        assert all(o.record["sigma"] == 0.0 and o.record["clip"] == UNCLIPPED for o in outputs)
        assert all(math.isinf(o.record["epsilon_fourier"]) for o in outputs)
        assert [o.fit.num_records for o in outputs] == [s.data.num_records for s in shadows]
        tables.append(score_outputs(records, groups, chosen.scores, shadows, outputs, 2, draws=8, seed=3))
    assert list(tables[0][list(ATTACKS)].notna().all()) == [True] * 3
    assert tables[0].to_csv(float_format="%.17g") == tables[1].to_csv(float_format="%.17g")
    # Different seeds per fit: the two in-fits of a target are not the same fit.
    first = tables[0][tables[0]["member"] & (tables[0]["target"] == shadows[0].target)]
    assert first["log_probability"].nunique() == 2


GOOD = {"parties": [{"party": "Barts", "fraction": 0.1, "vulnerable": 2, "typical": 1, "fits_per_target": 3}],
        "epsilons": [1.0, 4.0], "seed": 1}


def test_audit_settings_check_parties_and_fractions_with_one_line():
    settings = audit_settings(GOOD, ["Barts", "Leeds"], [0.1, 0.5], "config/audit.yaml")
    assert settings.arm_epsilons == (1.0, 4.0, NO_PRIVACY) and settings.parties[0].key == "Barts_f0.1"
    bad_party = {**GOOD, "parties": [{**GOOD["parties"][0], "party": "Atlantis"}]}
    with pytest.raises(InputError) as error:
        audit_settings(bad_party, ["Barts"], [0.1], "config/audit.yaml")
    message = str(error.value)
    assert "\n" not in message and "config/audit.yaml" in message and "audit.parties[0].party = 'Atlantis'" in message
    bad_fraction = {**GOOD, "parties": [{**GOOD["parties"][0], "fraction": 0.3}]}
    with pytest.raises(InputError, match=r"audit.parties\[0\].fraction = 0.3: .*fractions \[0.1, 0.5\]"):
        audit_settings(bad_fraction, ["Barts"], [0.1, 0.5])


def test_bad_audit_values_stop_at_the_schema_with_one_line():
    schema = load_schema("workflow/schemas/config.schema.yaml")
    for change, expected in (({"fits_per_target": 1}, "fits_per_target"), ({"typical": "two"}, "typical"),
                             ({"colour": 1}, "colour")):
        section = {**GOOD, "parties": [{**GOOD["parties"][0], **change}]}
        with pytest.raises(InputError) as error:
            check_config({"run": "x", "audit": section}, schema, "config/audit.yaml")
        assert "\n" not in str(error.value) and expected in str(error.value) and "config/audit.yaml" in str(error.value)
    with pytest.raises(InputError, match="epsilons"):
        check_config({"run": "x", "audit": {**GOOD, "epsilons": [0.0]}}, schema, "config/audit.yaml")
    filled = check_config({"run": "x", "audit": GOOD}, schema, "c")["audit"]
    assert filled["control_epochs"] is None and filled["level"] == 0.95
    assert "audit" not in check_config({"run": "x"}, schema, "c")
