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
CONFIGS = ["config.yaml", "smoke.yaml", "paper.yaml", "audit.yaml"]


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


# -- strict YAML: every config file, the cohort parameter file, the profiles -------------
from synthshare.workflow_config import ConfigSources, check_run_name, check_workflow_config  # noqa: E402
from synthshare.yaml_strict import load_mapping, main as yaml_check  # noqa: E402

SCHEMA_PATH = REPO / "workflow/schemas/config.schema.yaml"
COHORT_SCHEMA_PATH = REPO / "workflow/schemas/cohort_simulated.schema.yaml"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("run: a\nepsilons: [1]\nepsilons: [2]\n", "line 3, column 1: key 'epsilons' given twice (first on line 2)"),
        ("run: a\ngenerator:\n  clip: 1\n  clip: 2\n", "line 4, column 3: key 'clip' given twice (first on line 3)"),
        ("run: a\ngenerator: {clip: 1, clip: 2}\n", "key 'clip' given twice"),
        ("run: a\ngenerator:\n\tclip: 1\n", "line 3: tab in indentation; YAML allows spaces only"),
        ("run: a\n  epsilons: [1]\n", "line 2, column 11: mapping values are not allowed here"),
        ("run: a\nepsilons: [1, 2\n", "expected ',' or ']'"),
        ("- run: a\n", "line 1: the top level is a list; expected a mapping"),
        ("just text\n", "line 1: the top level is a plain string; expected a mapping"),
        ("", "line 1: the file is empty; expected a mapping"),
        ("# only a comment\n", "line 1: the file is empty"),
    ],
)
def test_strict_yaml_gives_file_and_line_in_one_line(tmp_path, text, expected):
    path = tmp_path / "my.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as raised:
        load_mapping(path)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert expected in message


def test_strict_yaml_bytes(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_bytes(b"run: a\nepsilons: [1]\x00\n")
    with pytest.raises(InputError, match=r"my\.yaml: line 2: NUL byte"):
        load_mapping(path)
    path.write_bytes("run: a\nparties: [Öxford]\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"my\.yaml: line 2: byte 0xd6 is not UTF-8"):
        load_mapping(path)
    with pytest.raises(InputError, match=r"nothere\.yaml: file not found"):
        load_mapping(tmp_path / "nothere.yaml")


def test_strict_yaml_accepts_what_safe_load_accepts(tmp_path):
    """Comments, anchors and merge keys, a tab inside a value; .nan loads (refused later)."""
    path = tmp_path / "my.yaml"
    path.write_text("run: a  # tab\there\nbase: &b {clip: 1}\ngenerator:\n  <<: *b\n  epochs: 2\nx: .nan\n")
    loaded = load_mapping(path)
    assert loaded["generator"] == {"clip": 1, "epochs": 2} and loaded["x"] != loaded["x"]


@pytest.mark.parametrize("name", ["config/config.yaml", "config/smoke.yaml", "config/paper.yaml", "config/audit.yaml",
                                  "config/cohort_simulated.yaml",
                                  "profiles/default/config.v8+.yaml", "profiles/slurm/config.v8+.yaml"])
def test_shipped_yaml_is_strict(name):
    assert load_mapping(REPO / name) == yaml.safe_load((REPO / name).read_text())


def test_yaml_check_command(tmp_path, capsys):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("run: a\n")
    bad.write_text("run: a\nrun: b\n")
    assert yaml_check([str(good)]) == 0
    assert yaml_check([str(good), str(bad)]) == 1
    assert capsys.readouterr().err.strip() == f"{bad}: line 2, column 1: key 'run' given twice (first on line 1); each key may appear once"


# -- numbers must be finite ---------------------------------------------------------------
@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c.update(epsilons=[1.0, float("nan")]), "epsilons[1] = nan: must be a finite number"),
        (lambda c: c.update(epsilons=[float("inf")]), "epsilons[0] = inf: must be a finite number"),
        (lambda c: c["generator"].update(delta=float("nan")), "generator.delta = nan: must be a finite number"),
        (lambda c: c["generator"].update(epochs=float("inf")), "generator.epochs = inf: must be a finite number"),
        (lambda c: c["reference"].update(epsilon=float("-inf")), "reference.epsilon = -inf: must be a finite number"),
        (lambda c: c["cohort"]["simulated"].update(scale=float("nan")), "cohort.simulated.scale = nan: must be a finite number"),
    ],
)
def test_non_finite_numbers_are_refused(mutate, expected):
    config = _base()
    mutate(config)
    with pytest.raises(InputError) as raised:
        check_config(config, SCHEMA, "my.yaml")
    assert str(raised.value) == f"my.yaml: {expected}"


def test_non_finite_cohort_parameter_is_refused():
    parameters = yaml.safe_load((REPO / "config/cohort_simulated.yaml").read_text())
    parameters["positive_share"] = float("nan")
    with pytest.raises(InputError, match=r"^p\.yaml: positive_share = nan: must be a finite number$"):
        check_config(parameters, COHORT_SCHEMA, "p.yaml")


@pytest.mark.parametrize("heterogeneity, expected", [
    ({"sd": -0.1}, "heterogeneity.sd = -0.1: must be >= 0"),
    ({"sdd": 0.1}, "unknown key heterogeneity.sdd; allowed keys here: ['sd']"),
])
def test_cohort_heterogeneity_is_checked(heterogeneity, expected):
    parameters = yaml.safe_load((REPO / "config/cohort_simulated.yaml").read_text())
    parameters["heterogeneity"] = heterogeneity
    with pytest.raises(InputError) as raised:
        check_config(parameters, COHORT_SCHEMA, "p.yaml")
    assert str(raised.value) == f"p.yaml: {expected}"
    del parameters["heterogeneity"]
    assert check_config(parameters, COHORT_SCHEMA, "p.yaml")["heterogeneity"] == {"sd": 0.0}


# -- run names and the whole workflow check ----------------------------------------------
@pytest.mark.parametrize("run", ["..", ".", "", "a/b", "../x", "/abs", ".hidden", "-x", "a b", "x" * 101, "ü", None, True])
def test_unsafe_run_names_are_refused(run):
    with pytest.raises(InputError, match=r"^my\.yaml: run = .*: must be one folder name under results/"):
        check_run_name(run, "my.yaml")


def test_numeric_run_name_asks_for_quotes():
    with pytest.raises(InputError, match=r'^my\.yaml: run = 2024: must be text; quote it \(run: "2024"\)$'):
        check_run_name(2024, "my.yaml")


@pytest.mark.parametrize("run", ["default", "smoke", "my-data_2.v1", "2024", "A" * 100])
def test_safe_run_names_pass(run):
    check_run_name(run, "my.yaml")


def _sources(tmp_path, user_text: str | None, overrides=None):
    """ConfigSources for config/config.yaml plus, when given, a user file with ``user_text``."""
    default = REPO / "config/config.yaml"
    users = []
    if user_text is not None:
        users = [tmp_path / "my.yaml"]
        users[0].write_text(user_text)
    return ConfigSources([default], users, overrides)


def _merged(sources):
    merged = {}
    for raw in sources.raw.values():
        for key, value in raw.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    merged.update(sources.overrides)
    return merged


def _check(tmp_path, user_text, overrides=None, cwd=REPO):
    sources = _sources(tmp_path, user_text, overrides)
    old = Path.cwd()
    import os

    os.chdir(cwd)
    try:
        return check_workflow_config(_merged(sources), sources, SCHEMA_PATH, COHORT_SCHEMA_PATH)
    finally:
        os.chdir(old)


def test_default_config_alone_passes(tmp_path):
    assert _check(tmp_path, None)["run"] == "default"


def test_user_config_must_name_its_run(tmp_path):
    """Without it the run would inherit config/config.yaml's 'default' and overwrite results/default."""
    with pytest.raises(InputError) as raised:
        _check(tmp_path, "epsilons: [2.0]\n")
    assert str(raised.value).endswith("my.yaml: run: missing; a config given with --configfile must name its run "
                                      "(results/<run>/ is where everything goes), e.g. run: mydata")
    assert _check(tmp_path, "epsilons: [2.0]\n", overrides={"run": "viacli"})["run"] == "viacli"
    assert _check(tmp_path, "run: mine\n")["run"] == "mine"


def test_default_file_given_as_configfile_counts_as_the_users():
    sources = ConfigSources([REPO / "config/config.yaml"], [REPO / "config/config.yaml"])
    assert sources.run_is_named() and sources.default_files == []


def test_error_names_the_file_that_set_the_key(tmp_path):
    with pytest.raises(InputError, match=r"my\.yaml: epsilons\[0\] = -1: must be > 0"):
        _check(tmp_path, "run: x\nepsilons: [-1]\n")
    with pytest.raises(InputError, match=r"^--config: run = '\.\.': must be one folder name"):
        _check(tmp_path, "run: x\n", overrides={"run": ".."})
    # a key only the default file sets is blamed on it
    sources = _sources(tmp_path, "run: x\n")
    assert sources.source_of(["generator", "clip"]).endswith("config/config.yaml")
    assert sources.source_of(["run"]).endswith("my.yaml")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("run: x\nfigures: {fraction_party: Narnia}\n",
         "figures.fraction_party = 'Narnia': not a party of this run (Figs 3 and 4 show it); expected one of ['Barts'"),
        ("run: x\nparties: [Barts, Leeds]\n",  # the default Newcastle is no party here
         "figures.fraction_party = 'Newcastle': not a party of this run"),
        ("run: x\nparties: [Barts, Cardiff]\nfigures: {fraction_party: Barts}\n",
         "parties[1] = 'Cardiff': not in the cohort; expected one of the centres of config/cohort_simulated.yaml"),
        ("run: x\ncohort: {source: file}\n", "cohort.file.path = '': empty; expected a processed cohort file"),
        ("run: x\ncohort: {source: file, file: {path: nothere.csv}}\n", "cohort.file.path = 'nothere.csv': file not found"),
        ("run: x\ncohort: {source: file, file: {path: config}}\n", "cohort.file.path = 'config': not a file"),
        ("run: x\ncohort: {source: ukb_raw}\n", "cohort.ukb_raw.main = '': empty; expected the ukbconv csv extract"),
        ("run: x\ncohort: {source: ukb_raw, ukb_raw: {main: README.md}}\n", "cohort.ukb_raw.covid_tests = []: empty"),
        ("run: x\ncohort: {source: ukb_raw, ukb_raw: {main: README.md, covid_tests: [README.md, gone.txt]}}\n",
         "cohort.ukb_raw.covid_tests[1] = 'gone.txt': file not found"),
        ("run: x\ncohort: {source: ukb_raw, ukb_raw: {main: README.md, covid_tests: [README.md]}}\nparties: [Barts, Cardiff]\n"
         "figures: {fraction_party: Barts}\n",
         "parties[1] = 'Cardiff': not in the cohort; expected one of the 16 study centres and cohort.ukb_raw.extra_centres"),
        ("run: x\ncohort: {simulated: {parameters: nothere.yaml}}\n", "cohort.simulated.parameters = 'nothere.yaml': file not found"),
        ("run: x\nfigures: {fraction_party: .nan}\n", "figures.fraction_party = nan: must be a finite number"),
        # the heterogeneity sweep (synthshare.sweep)
        ("run: x\nheterogeneity: {positive_share: 0.1}\n",
         "heterogeneity.positive_share = 0.1 without heterogeneity.sds; expected null, or the SDs of a sweep"),
        ("run: x\nheterogeneity: {sds: [0.1]}\ncohort: {source: ukb_raw, ukb_raw: {main: README.md, covid_tests: [README.md]}}\n",
         "heterogeneity.sds = [0.1] with cohort.source = 'ukb_raw'; expected source simulated"),
        ("run: x\nheterogeneity: {sds: [0.1, 0.1]}\n", "heterogeneity.sds = [0.1, 0.1]"),
        ("run: x\nheterogeneity: {sds: [-0.1]}\n", "heterogeneity.sds[0] = -0.1: must be >= 0"),
        ("run: x\nheterogeneity: {sds: [0.1], positive_share: 1.5}\n", "heterogeneity.positive_share = 1.5"),
    ],
)
def test_cross_key_and_input_checks(tmp_path, text, expected):
    with pytest.raises(InputError) as raised:
        _check(tmp_path, text)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "my.yaml") + ": ")
    assert expected in message


def test_empty_cohort_file_is_refused(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(InputError, match=r"cohort\.file\.path = 'empty\.csv': the file is empty"):
        _check(tmp_path, "run: x\ncohort: {source: file, file: {path: empty.csv}}\n", cwd=tmp_path)


def test_ukb_raw_with_listed_extra_centre_passes(tmp_path):
    text = ("run: x\ncohort: {source: ukb_raw, ukb_raw: {main: README.md, covid_tests: [README.md], extra_centres: [Cardiff]}}\n"
            "parties: [Barts, Cardiff]\nfigures: {fraction_party: Barts}\n")
    assert _check(tmp_path, text)["parties"] == ["Barts", "Cardiff"]


def test_max_incomplete_share_has_a_default():
    checked = check_config({"run": "x"}, SCHEMA)
    assert checked["cohort"]["file"]["max_incomplete_share"] == 0.05


@pytest.mark.parametrize(
    "text, expected",
    [
        ("run: x\nepsilons: [1.0]\nepsilons: [2.0]\n", "user.yaml: line 3, column 1: key 'epsilons' given twice (first on line 2)"),
        ("epsilons: [1.0]\n", "user.yaml: run: missing; a config given with --configfile must name its run"),
        ('run: ".."\n', "user.yaml: run = '..': must be one folder name under results/"),
        ("run: x\ngenerator: {delta: .nan}\n", "user.yaml: generator.delta = nan: must be a finite number"),
        ("run: x\nfigures: {fraction_party: Narnia}\n", "user.yaml: figures.fraction_party = 'Narnia': not a party of this run"),
        ("run: x\ncohort: {source: file, file: {path: gone.csv}}\n", "user.yaml: cohort.file.path = 'gone.csv': file not found"),
    ],
)
def test_snakemake_stops_with_one_line_before_any_job(workflow_dir: Path, text, expected):
    (workflow_dir / "user.yaml").write_text(text)
    process = run_snakemake(workflow_dir, "-n", "--configfile", "user.yaml", check=False)
    output = process.stdout + process.stderr
    assert process.returncode != 0
    assert expected in output, output[-3000:]
    assert "MissingInputException" not in output
    assert not (workflow_dir / "results").exists()


def test_duplicated_key_in_a_profile_stops(workflow_dir: Path):
    profile = workflow_dir / "profiles/slurm/config.v8+.yaml"
    profile.write_text(profile.read_text() + "retries: 5\n" * 2)
    process = run_snakemake(workflow_dir, "-n", "--configfile", "config/smoke.yaml", check=False)
    assert process.returncode != 0
    assert "profiles/slurm/config.v8+.yaml: line" in process.stdout + process.stderr
    assert "given twice" in process.stdout + process.stderr
