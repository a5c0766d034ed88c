"""Which drawing function makes each product of the catalogue, and what it reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from synthshare.figures import beyond, coverage, paper
from synthshare.figures.catalogue import Product
from synthshare.figures.output import Rendered

_LL_PRODUCTS: dict[str, Callable[..., Rendered]] = {
    "fig1": paper.party_comparison,
    "fig_s1": paper.party_comparison,
    "fig2": paper.steps_figure,
    "fig_s2": paper.steps_figure,
    "fig3": paper.fraction_figure,
    "fig4": paper.ethnicity_figure,
    "fig5": paper.skew_figure,
    "fig6": paper.epsilon_figure,
    "ll_vs_epsilon": beyond.epsilon_every_party,
    "ll_vs_parties": beyond.party_count_figure,
}


def render_product(product: Product, inputs: Mapping[str, Any]) -> Rendered:
    """Draw ``product`` from its ``inputs`` (input kind -> path, or list of paths for ``elbo`` and ``local``)."""
    missing = [kind for kind in product.inputs if kind not in inputs]
    if missing:
        raise ValueError(f"{product.name}: inputs {missing} not given; it reads {list(product.inputs)}")
    settings = product.settings
    if product.name in _LL_PRODUCTS:
        return _LL_PRODUCTS[product.name](Path(inputs["ll"]), Path(inputs["reference"]), settings, product.name)
    if product.name == "elbo":
        paths: Sequence[str] = inputs["elbo"]
        return beyond.elbo_figure(list(paths), inputs["ledger"], settings, product.name)
    if product.name == "coef_vs_truth":
        return beyond.coefficient_figure(Path(inputs["coef"]), Path(inputs["truth"]), settings, product.name)
    if product.name == "coverage":
        return coverage.coverage_figure(inputs["intervals"], inputs["truth"], inputs["parameters"], list(inputs["local"]),
                                        settings, product.name)
    raise ValueError(f"no drawing function for product {product.name!r}")
