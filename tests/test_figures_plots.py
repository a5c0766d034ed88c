"""The figures stage on fabricated analysis files (tests/figures_fixture.py), smoke grid.

Under Snakemake, through a test Snakefile that includes only common.smk and figures.smk
(the upstream stages are not needed): every target of ``catalogue.figure_targets`` is
written, figures are non-empty PNGs of the expected size plus PDFs, tables have their
rows, and ``--report`` renders every caption. In process: the same inputs give the same
bytes, and bad inputs stop with a message naming the file."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from synthshare.config import check_config, load_schema
from synthshare.errors import InputError
from synthshare.figures.catalogue import figure_targets, requested_products
from synthshare.figures.claims import CLAIMS
from synthshare.figures.output import write_rendered
from synthshare.figures.render import render_product
from tests.conftest import REPO, copy_workflow, run_snakemake
from tests.figures_fixture import fabricate_run

# Pixel sizes at 150 dpi for the smoke grid (6 parties, 2 fractions, 2 ε, 2 skews, M ∈ {2, 3}).
EXPECTED_PNG = {
    "fig1": (900, 660), "fig_s3": (900, 660), "fig2": (1440, 540), "fig_s4": (1920, 990),
    "fig3": (900, 660), "fig4": (900, 690), "fig5": (900, 660), "fig6": (1530, 570),
    "fig_s1": (900, 660), "fig_s2": (1440, 540), "ll_vs_epsilon": (2040, 1050), "ll_vs_parties": (900, 660),
    "elbo": (2130, 975), "coef_vs_truth": (1440, 720), "coverage": (2025, 630),
}


TEST_SNAKEFILE = """
# Test harness: the figures stage alone on fabricated inputs.
configfile: "config/smoke.yaml"
# the figures stage alone: no audit stage (its claims rows need audit.smk's jobs)
config.pop("audit", None)
include: "workflow/rules/common.smk"
include: "workflow/rules/figures.smk"
from synthshare.figures.catalogue import figure_targets
rule all:
    input: figure_targets(config)
    default_target: True
"""



@pytest.fixture(scope="module")
def smoke_config() -> dict:
    schema = load_schema(REPO / "workflow/schemas/config.schema.yaml")
    return check_config(yaml.safe_load((REPO / "config/smoke.yaml").read_text()), schema)


def draw_all(config: dict, results: Path, only: tuple[str, ...] | None = None) -> dict[str, Path]:
    """Draw the config's products (or those named in ``only``) in process; files by name."""
    inputs = fabricate_run(results, config)
    written = {}
    for product in requested_products(config):
        if only is not None and product.name not in only:
            continue
        figures = {n: (results / f"figures/{n}.pdf", results / f"figures/{n}.png") for n in product.figures}
        tables = {n: results / f"tables/{n}.csv" for n in product.tables}
        write_rendered(render_product(product, inputs), figures, tables)
        written.update({f"{n}.png": p[1] for n, p in figures.items()})
        written.update({f"{n}.pdf": p[0] for n, p in figures.items()})
        written.update({f"{n}.csv": p for n, p in tables.items()})
    return written


@pytest.fixture(scope="module")
def workflow_run(smoke_config, tmp_path_factory) -> Path:
    """Run the figures stage and then ``--report`` in a copy of the workflow; its results dir."""
    root = tmp_path_factory.mktemp("figures")
    workdir = copy_workflow(root / "wf")
    (workdir / "Snakefile").write_text(textwrap.dedent(TEST_SNAKEFILE))
    fabricate_run(workdir / "results/smoke", smoke_config)
    run_snakemake(workdir)
    run_snakemake(workdir, "--report", "results/smoke/report.html")
    return workdir / "results/smoke"


@pytest.fixture(scope="module")
def drawn(workflow_run) -> dict[str, Path]:
    """Figure and table files by name (``fig1.png``, ``fig1.csv``, ...)."""
    return {p.name: p for folder in ("figures", "tables") for p in (workflow_run / folder).iterdir()}


@pytest.mark.slow
def test_every_target_and_the_report(workflow_run, smoke_config):
    for target in figure_targets(smoke_config):
        assert (workflow_run.parents[1] / target).stat().st_size > 0, target
    claims = pd.read_csv(workflow_run / "claims.csv")
    assert list(claims["claim_id"]) == [c.claim_id for c in CLAIMS]
    report = (workflow_run / "report.html").read_text()
    # Captions rendered (Jinja filled in) for the figures, the tables and the claims.
    for text in ("does every party gain", "how many parties are needed", "a large but skewed party",
                 "The tests behind Fig 4", "tested on this run"):
        assert text in report, text
    assert "|format(" not in report and "{% if" not in report


@pytest.mark.slow
def test_every_figure_is_a_non_empty_png_of_the_expected_size(drawn):
    pngs = {k.removesuffix(".png"): v for k, v in drawn.items() if k.endswith(".png")}
    assert set(pngs) == set(EXPECTED_PNG)
    for name, path in pngs.items():
        with Image.open(path) as image:
            assert image.size == EXPECTED_PNG[name], name
            pixels = np.asarray(image.convert("L"), dtype=float)
        # Not blank: a real plot has many dark pixels (lines, text) on a white page.
        assert (pixels < 128).mean() > 0.005, name
        pdf = drawn[f"{name}.pdf"]
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5000, name


@pytest.mark.slow
def test_tables_have_a_row_per_comparison(drawn, smoke_config):
    parties = smoke_config["parties"]
    fig1 = pd.read_csv(drawn["fig1.csv"])
    assert sorted(fig1["party"]) == sorted(parties)
    assert (fig1["alternative"] == "greater").all() and fig1["pvalue"].between(0, 1).all()
    assert list(fig1["median_local"]) == sorted(fig1["median_local"])  # Fig 1's order
    fig2 = pd.read_csv(drawn["fig2.csv"])
    assert len(fig2) == len(parties) * len(parties)  # steps 0 ... M-1 for every party
    assert fig2.loc[fig2["step"] == 0, "pvalue"].isna().all() and fig2.loc[fig2["step"] > 0, "pvalue"].notna().all()
    assert set(fig2["role"].dropna()) == {"bad local fit", "intermediate local fit", "good local fit"}
    assert list(pd.read_csv(drawn["fig3.csv"])["fraction"]) == [0.5, 1.0]
    fig4 = pd.read_csv(drawn["fig4.csv"])
    assert list(zip(fig4["a"], fig4["b"])) == [("combined", "local"), ("no_ethnicity", "local"), ("combined", "no_ethnicity")]
    assert (fig4["alternative"] == "two-sided").all()
    fig5 = pd.read_csv(drawn["fig5.csv"])
    assert list(fig5["skew"]) == [0.25, 1.0] and (fig5["alternative"] == "two-sided").all()
    assert len(pd.read_csv(drawn["fig6.csv"])) == 3 * 2  # three parties x two ε
    assert len(pd.read_csv(drawn["ll_vs_epsilon.csv"])) == len(parties) * 2
    assert list(pd.read_csv(drawn["ll_vs_parties.csv"])["parties"]) == [2, 3]
    coef = pd.read_csv(drawn["coef_vs_truth.csv"])
    assert set(coef["stage"]) == {"local only", "combined"}
    assert coef["truth"].notna().all() and coef["coverage"].between(0, 1).all()


@pytest.mark.slow
def test_truth_is_re_expressed_in_each_partys_reference_coding(drawn):
    # The fixture codes age_group with its second level as reference; the truth must follow.
    coef = pd.read_csv(drawn["coef_vs_truth.csv"])
    terms = set(coef["term"])
    assert "age_group[[40, 45)]" in terms and "age_group[[45, 50)]" not in terms
    # Estimates are truth + N(0, 0.05²) noise at the last step: the bias must be small there.
    combined = coef[coef["stage"] == "combined"]
    assert combined["bias"].abs().max() < 0.25 and combined["rmse"].mean() < 0.1
    # The no-ethnicity model's rows (another coding; the fixture puts 9.0 there) are left out.
    assert coef.loc[coef["term"] == "sex[Male]", "estimate"].abs().max() < 2


def test_same_inputs_same_bytes(smoke_config, tmp_path):
    digests = []
    for name in ("a", "b"):
        written = draw_all(smoke_config, tmp_path / name / "results/smoke", only=("fig1", "coef_vs_truth"))
        digests.append({k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in written.items()})
    assert digests[0] == digests[1] and len(digests[0]) > 5


def test_missing_column_names_the_file_and_column(smoke_config, tmp_path):
    inputs = fabricate_run(tmp_path / "results/smoke", smoke_config)
    pd.read_parquet(inputs["ll"]).drop(columns="variant").to_parquet(inputs["ll"])
    product = requested_products(smoke_config)[0]
    with pytest.raises(InputError, match=r"ll\.parquet: missing column\(s\) \['variant'\]"):
        render_product(product, inputs)


def test_missing_rows_name_the_setting(smoke_config, tmp_path):
    inputs = fabricate_run(tmp_path / "results/smoke", smoke_config)
    ll = pd.read_parquet(inputs["ll"])
    ll[~((ll["party"] == "Leeds") & (ll["step"] == 5))].to_parquet(inputs["ll"])
    with pytest.raises(InputError, match=r"no ll rows for .*party=Leeds, step=5"):
        render_product(requested_products(smoke_config)[0], inputs)


def test_reference_needs_exactly_one_row(smoke_config, tmp_path):
    inputs = fabricate_run(tmp_path / "results/smoke", smoke_config)
    pd.DataFrame({"evaluation": ["skew_eval"], "ll": [-0.6]}).to_parquet(inputs["reference"])
    with pytest.raises(InputError, match=r"reference\.parquet: evaluation = 'global_test' has 0 rows"):
        render_product(requested_products(smoke_config)[0], inputs)


def test_elbo_needs_every_fit_in_the_ledger(smoke_config, tmp_path):
    inputs = fabricate_run(tmp_path / "results/smoke", smoke_config)
    ledger = pd.read_csv(inputs["ledger"])
    ledger[ledger["party"] != "Oxford"].to_csv(inputs["ledger"], index=False)
    elbo = next(p for p in requested_products(smoke_config) if p.name == "elbo")
    with pytest.raises(InputError, match=r"ledger\.csv: no ledger row for the generator fit .*Oxford"):
        render_product(elbo, inputs)
