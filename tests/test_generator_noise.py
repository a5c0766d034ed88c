"""Noise files (synthshare.generator.noise): exact round trip, refusals, and their use."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from synthshare.atomic import write_json
from synthshare.errors import InputError
from synthshare.generator.fit import PartyData
from synthshare.generator.job import fit_and_sample
from synthshare.generator.noise import NOISE_FIELDS, AccountedNoise, noise_record, read_noise
from synthshare.generator.settings import GeneratorSettings
from synthshare.generator.subsampling import effective_rate

NOISE = AccountedNoise(epsilon=1.0, delta=1e-6, q=effective_rate(0.01), steps=200_000, sigma=0.1 + 0.2,
                       epsilon_fourier=0.9991234567891234, epsilon_fourier_error=3.3e-7,
                       epsilon_pld=1.0000000000000002, epsilon_pld_error=1e-9)


def test_noise_file_round_trips_exactly(tmp_path):
    path = tmp_path / "eps1.json"
    write_json(noise_record(NOISE), path)
    assert set(json.loads(path.read_text())) == set(NOISE_FIELDS)
    assert read_noise(path, 1.0, 1e-6, effective_rate(0.01), 200_000) == NOISE  # bit for bit (0.1 + 0.2 too)


@pytest.mark.parametrize("key, value", [("epsilon", 2.0), ("delta", 1e-5), ("q", 0.02), ("steps", 100_000)])
def test_noise_file_for_other_settings_is_refused(tmp_path, key, value):
    path = tmp_path / "eps1.json"
    write_json(noise_record(NOISE), path)
    needed = dict(epsilon=1.0, delta=1e-6, q=effective_rate(0.01), steps=200_000)
    needed[key] = value
    with pytest.raises(InputError, match=rf"eps1.json: {key} = .*this job needs {key} = {value!r}"):
        read_noise(path, **needed)


@pytest.mark.parametrize("content, message", [
    ("{not json", "cannot read the noise calibration"),
    (json.dumps({k: v for k, v in noise_record(NOISE).items() if k != "sigma"}), "expected exactly"),
    (json.dumps({**noise_record(NOISE), "sigma": 0.0}), "sigma = 0.0; expected a finite number > 0"),
    (json.dumps({**noise_record(NOISE), "sigma": "1"}), "sigma = '1'"),
])
def test_malformed_noise_file_is_refused(tmp_path, content, message):
    path = tmp_path / "eps1.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_noise(path, 1.0, 1e-6, effective_rate(0.01), 200_000)


def test_job_refuses_noise_for_another_level():
    settings = replace(GeneratorSettings(), epochs=2000)
    party = PartyData("a", np.zeros((10, 5), np.int32), np.zeros(10, np.float32))
    assert settings.steps == 200_000
    with pytest.raises(ValueError, match=r"noise calibrated for .*\(2\.0, "):
        fit_and_sample([party], "centres", 1.0, 0.5, 1, settings, noise=replace(NOISE, epsilon=2.0))
