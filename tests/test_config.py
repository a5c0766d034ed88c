"""Config validation: one line naming the key, the value and what is allowed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from synthshare.config import check_config, load_schema
from synthshare.errors import InputError
from tests.conftest import REPO, run_snakemake

SCHEMA = load_schema(REPO / "workflow/schemas/config.schema.yaml")
COHORT_SCHEMA = load_schema(REPO / "workflow/schemas/cohort_simulated.schema.yaml")
CONFIGS = ["config.yaml", "smoke.yaml", "paper.yaml"]


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_are_valid(name):
    config = yaml.safe_load((REPO / "config" / name).read_text())
    checked = check_config(config, SCHEMA, name)
    assert checked["run"] == config["run"]


def test_cohort_parameters_are_valid():
    check_config(yaml.safe_load((REPO / "config/cohort_simulated.yaml").read_text()), COHORT_SCHEMA, "cohort")


def test_every_field_has_description_and_default():
    def walk(schema, path):
        for name, sub in schema.get("properties", {}).items():
            assert "description" in sub, f"{path}{name} lacks a description"
            assert "default" in sub or name == "run", f"{path}{name} lacks a default"
            walk(sub, f"{path}{name}.")

    for name, sub in SCHEMA["properties"].items():
        if sub.get("type") == "object":
            walk(sub, f"{name}.")


def _base():
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c.update(epsilons=[1.0, 0.0]), "epsilons[1] = 0.0: must be > 0"),
        (lambda c: c.update(epsilons=[-2]), "epsilons[0] = -2: must be > 0"),
        (lambda c: c.update(fractions=[0.1, 1.5]), "fractions[1] = 1.5: must be > 0 and <= 1"),
        (lambda c: c.update(fractions=[0]), "fractions[0] = 0: must be > 0 and <= 1"),
        (lambda c: c["reference"].update(fraction=2), "reference.fraction = 2: must be > 0 and <= 1"),
        (lambda c: c.update(parties=["Barts", "Atlantis"]), "parties[1] = 'Atlantis': not allowed; expected one of ['Barts'"),
        (lambda c: c.update(colour="blue"), "unknown key colour; allowed keys here:"),
        (lambda c: c["generator"].update(epoch=10), "unknown key generator.epoch; allowed keys here:"),
        (lambda c: c["generator"].update(clip="big"), "generator.clip = 'big': expected a number > 0"),
        (lambda c: c["analysis"].update(orders=2.5), "analysis.orders = 2.5: expected an integer >= 1"),
        (lambda c: c["cohort"].update(source="web"), "cohort.source = 'web': not allowed; expected one of ['simulated', 'file', 'ukb_raw']"),
        (lambda c: c.update(seeds="123"), "seeds = '123': expected a list, each an integer >= 0"),
        (lambda c: c["generator"].update(variant="fast"), "generator.variant = 'fast': not allowed; expected one of ['aligned', 'stock']"),
    ],
)
def test_invalid_value_gives_one_line(mutate, expected):
    config = _base()
    mutate(config)
    with pytest.raises(InputError) as raised:
        check_config(config, SCHEMA, "config/config.yaml")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("config/config.yaml: ")
    assert expected in message


def test_defaults_are_filled():
    checked = check_config({"run": "x"}, SCHEMA)
    assert checked["generator"]["clip"] == 2.0
    assert checked["cohort"]["simulated"]["scale"] == 1.0
    assert checked["analysis"]["orders"] == 100


def test_snakemake_stops_before_any_job(workflow_dir: Path):
    bad = copy.deepcopy(yaml.safe_load((workflow_dir / "config/smoke.yaml").read_text()))
    bad["epsilons"] = [1.0, -1.0]
    (workflow_dir / "bad.yaml").write_text(yaml.safe_dump(bad))
    process = run_snakemake(workflow_dir, "--configfile", "bad.yaml", check=False)
    assert process.returncode != 0
    output = process.stdout + process.stderr
    assert "epsilons[1] = -1.0: must be > 0" in output
    assert not (workflow_dir / "results").exists()


def test_bad_cohort_parameter_file_stops(workflow_dir: Path):
    parameters = yaml.safe_load((workflow_dir / "config/cohort_simulated.yaml").read_text())
    parameters["positive_share"] = 1.5
    (workflow_dir / "config/cohort_simulated.yaml").write_text(yaml.safe_dump(parameters))
    process = run_snakemake(workflow_dir, "--configfile", "config/smoke.yaml", check=False)
    assert process.returncode != 0
    assert "config/cohort_simulated.yaml: positive_share = 1.5: must be > 0 and < 1" in process.stdout + process.stderr
    assert not (workflow_dir / "results").exists()
