"""Which figures, tables and claims a run's config asks for (a pure function of the config).

A figure whose inputs are not in the run's grid is not requested, so the workflow's DAG
follows the config: Fig 3 needs two or more fractions, Fig 4 needs f = 1, Fig 5 needs the
skew experiment, Fig 6 needs two or more ε values, S1/S2 need ε = 2, the party-count
figure needs ``uniform.party_counts`` and the coefficient table and the interval coverage
need a simulated cohort (whose ground truth is known).

The config is a checked one (``synthshare.config.check_config``: defaults filled in).
Products are grouped so that one job reads a slice of ``ll.parquet`` once: Fig 1 and its
full version S3 come from one job, as do Fig 2 and its all-party version S4.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from synthshare.grid import centre_fractions, centre_parties, model_settings, skew_enabled
from synthshare.paths import RunPaths

PAPER_CATEGORY = "3. Figures of the paper"
BEYOND_CATEGORY = "4. Beyond the paper"
CLAIMS_CATEGORY = "5. Claims"
TABLES_CATEGORY = "6. Tables behind the figures"

# ε of the supplementary Figs S1/S2 (method.md: "S1/S2: Figs 1/2 at ε = 2").
SUPPLEMENT_EPSILON = 2.0

INPUT_KINDS = ("ll", "reference", "coef", "truth", "elbo", "ledger", "intervals", "parameters", "local")
"""What a product may read: the analysis stage's ``ll.parquet``, ``reference.parquet``,
``coef.parquet``, ``intervals.parquet``, the data stage's ``truth.json``, every generator
fit's ``elbo.csv``, the privacy ledger, the simulated cohort's parameter file and the
centres' local data at the reference fraction (sizes and reference levels)."""


@dataclass(frozen=True)
class Product:
    """One job of the figures stage: the figures and tables it writes from its inputs.

    ``settings`` is JSON-like (it travels as a Snakemake param) and says what to draw:
    scenario, ε, f, parties, ... (see :func:`requested_products`).
    """

    name: str
    title: str
    figures: tuple[str, ...]
    tables: tuple[str, ...]
    inputs: tuple[str, ...]
    category: str
    settings: dict[str, Any] = field(default_factory=dict, compare=False)


def centre_epsilons(config: dict) -> list[float]:
    """ε values of the centres' models at the reference fraction (the ε sweep), sorted."""
    ref_fraction = float(config["reference"]["fraction"])
    return sorted({s.epsilon for s in model_settings(config) if s.scenario == "centres" and s.fraction == ref_fraction})


def sweep_fractions(config: dict) -> list[float]:
    """Fractions of the centres' models at the reference ε (the data-size sweep), sorted."""
    ref_epsilon = float(config["reference"]["epsilon"])
    return sorted({s.fraction for s in model_settings(config) if s.scenario == "centres" and s.epsilon == ref_epsilon})


def fraction_party(config: dict) -> str | None:
    """The centre of Figs 3 and 4 (config ``figures.fraction_party``), or None if it is no party."""
    party = config["figures"]["fraction_party"]
    return party if party in centre_parties(config) else None


def requested_products(config: dict) -> list[Product]:
    """Every figure job the config asks for, in report order."""
    ref_eps = float(config["reference"]["epsilon"])
    ref_frac = float(config["reference"]["fraction"])
    parties = centre_parties(config)
    epsilons = centre_epsilons(config)
    fractions = sweep_fractions(config)
    focus = fraction_party(config)
    base = {"scenario": "centres", "parties": parties}
    products = [
        Product("fig1", "Fig 1 and S3: every party, local only vs combined", ("fig1", "fig_s3"), ("fig1",), ("ll", "reference"), PAPER_CATEGORY,
                {**base, "epsilon": ref_eps, "fraction": ref_frac, "full_figure": "fig_s3"}),
        Product("fig2", "Fig 2 and S4: gain per added party", ("fig2", "fig_s4"), ("fig2",), ("ll", "reference"), PAPER_CATEGORY,
                {**base, "epsilon": ref_eps, "fraction": ref_frac, "full_figure": "fig_s4"}),
    ]
    if len(fractions) >= 2 and focus is not None:
        products.append(Product("fig3", "Fig 3: local data size", ("fig3",), ("fig3",), ("ll", "reference"), PAPER_CATEGORY,
                                {**base, "party": focus, "epsilon": ref_eps, "fractions": fractions}))
    if 1.0 in fractions and focus is not None:
        products.append(Product("fig4", "Fig 4: local data skew (ethnicity)", ("fig4",), ("fig4",), ("ll", "reference"), PAPER_CATEGORY,
                                {**base, "party": focus, "epsilon": ref_eps, "fraction": 1.0}))
    if skew_enabled(config):
        products.append(Product("fig5", "Fig 5: skewed party", ("fig5",), ("fig5",), ("ll", "reference"), PAPER_CATEGORY,
                                {**base, "epsilon": ref_eps, "skews": sorted(float(s) for s in config["skew"]["fractions"])}))
    if len(epsilons) >= 2:
        products.append(Product("fig6", "Fig 6: privacy level ε", ("fig6",), ("fig6",), ("ll", "reference"), PAPER_CATEGORY,
                                {**base, "epsilons": epsilons, "reference_epsilon": ref_eps, "fraction": ref_frac}))
    if SUPPLEMENT_EPSILON in epsilons and SUPPLEMENT_EPSILON != ref_eps:
        supplement = {**base, "epsilon": SUPPLEMENT_EPSILON, "fraction": ref_frac, "full_figure": None}
        products.append(Product("fig_s1", "Fig S1: Fig 1 at ε = 2", ("fig_s1",), ("fig_s1",), ("ll", "reference"), PAPER_CATEGORY, supplement))
        products.append(Product("fig_s2", "Fig S2: Fig 2 at ε = 2", ("fig_s2",), ("fig_s2",), ("ll", "reference"), PAPER_CATEGORY, supplement))
    if len(epsilons) >= 2:
        products.append(Product("ll_vs_epsilon", "Log-likelihood vs ε, every party", ("ll_vs_epsilon",), ("ll_vs_epsilon",), ("ll", "reference"), BEYOND_CATEGORY,
                                {**base, "epsilons": epsilons, "reference_epsilon": ref_eps, "fraction": ref_frac}))
    party_counts = sorted(int(m) for m in config["uniform"]["party_counts"])
    if party_counts:
        products.append(Product("ll_vs_parties", "Log-likelihood vs number of parties M", ("ll_vs_parties",), ("ll_vs_parties",), ("ll", "reference"), BEYOND_CATEGORY,
                                {"party_counts": party_counts, "epsilon": ref_eps, "fraction": float(config["uniform"]["fraction"])}))
    products.append(Product("elbo", "Generator ELBO traces", ("elbo",), (), ("elbo", "ledger"), BEYOND_CATEGORY, {}))
    if config["cohort"]["source"] == "simulated":
        products.append(Product("coef_vs_truth", "Coefficients vs simulated truth", ("coef_vs_truth",), ("coef_vs_truth",), ("coef", "truth"), BEYOND_CATEGORY,
                                {**base, "epsilon": ref_eps, "fraction": ref_frac}))
        products.append(Product("coverage", "Interval coverage vs partners added", ("coverage",), ("coverage", "coverage_by_party"),
                                ("intervals", "truth", "parameters", "local"), BEYOND_CATEGORY,
                                {**base, "epsilon": ref_eps, "fraction": ref_frac, "fractions": centre_fractions(config),
                                 "orders": int(config["analysis"]["orders"]),
                                 "order_seed": int(config["analysis"]["order_seed"])}))
    return products


def claim_settings(config: dict) -> dict[str, Any]:
    """What the claims table can test on this run (JSON-like; None = not in the grid)."""
    ref_eps = float(config["reference"]["epsilon"])
    fractions = sweep_fractions(config)
    epsilons = centre_epsilons(config)
    return {
        "parties": centre_parties(config),
        "epsilon": ref_eps,
        "fraction": float(config["reference"]["fraction"]),
        "fraction_party": fraction_party(config),
        "fraction_party_name": config["figures"]["fraction_party"],
        "fractions": fractions,
        "epsilons": epsilons,
        "skews": sorted(float(s) for s in config["skew"]["fractions"]) if skew_enabled(config) else [],
        "supplement_epsilon": SUPPLEMENT_EPSILON if SUPPLEMENT_EPSILON in epsilons else None,
    }


def figure_targets(config: dict, run: str | None = None) -> list[str]:
    """Every file the figures stage writes for this config: PDFs, PNGs, tables, claims.csv
    (of ``run``: the config's run, or a sub-run of its sweep, ``synthshare.sweep``)."""
    paths = RunPaths(config["run"] if run is None else run)
    targets: list[str] = []
    for product in requested_products(config):
        for name in product.figures:
            targets += [paths.figure(name, "pdf"), paths.figure(name, "png")]
        targets += [paths.table(name) for name in product.tables]
    targets.append(paths.claims)
    return targets
