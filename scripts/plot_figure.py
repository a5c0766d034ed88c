"""Rule plot_<product>: draw one product of the figures catalogue (its figures and tables).

Under Snakemake the product is ``params.product``; outputs are named ``<figure>_pdf``,
``<figure>_png`` and ``<table>_table``. Standalone (debugging):

    python scripts/plot_figure.py --config config/smoke.yaml fig1

reads and writes under ``results/<run>/`` of that config.
"""


import argparse
import glob
import sys
from pathlib import Path

import yaml

from synthshare.config import check_config, load_schema
from synthshare.figures.catalogue import figure_path, requested_products, results_dir, table_path
from synthshare.figures.output import write_rendered
from synthshare.figures.render import render_product
from synthshare.runlog import logged_run

REPO = Path(__file__).resolve().parents[1]


def product_named(config: dict, name: str):
    products = {p.name: p for p in requested_products(config)}
    if name not in products:
        raise SystemExit(f"plot_figure: product {name!r} is not requested by this config; requested: {sorted(products)}")
    return products[name]


def run_snakemake(sm) -> None:
    with logged_run(sm.log[0]) as log:
        product = product_named(sm.config, sm.params.product)
        inputs = {kind: (list(sm.input[kind]) if kind == "elbo" else sm.input[kind]) for kind in product.inputs}
        rendered = render_product(product, inputs)
        write_rendered(
            rendered,
            {name: (sm.output[f"{name}_pdf"], sm.output[f"{name}_png"]) for name in product.figures},
            {name: sm.output[f"{name}_table"] for name in product.tables},
        )
        log.info("%s: figures %s, tables %s", product.name, list(product.figures), list(product.tables))


def run_standalone(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml", help="the run's config file")
    parser.add_argument("product", help="a product of synthshare.figures.catalogue (fig1, fig2, ..., elbo)")
    args = parser.parse_args(argv)
    schema = load_schema(REPO / "workflow/schemas/config.schema.yaml")
    config = check_config(yaml.safe_load(Path(args.config).read_text()), schema, args.config)
    product = product_named(config, args.product)
    results = results_dir(config)
    paths = {"ll": f"{results}/analysis/ll.parquet", "reference": f"{results}/analysis/reference.parquet",
             "coef": f"{results}/analysis/coef.parquet", "truth": f"{results}/data/truth.json",
             "ledger": f"{results}/privacy/ledger.csv",
             "elbo": sorted(glob.glob(f"{results}/generator/*/eps*/f*/seed*/*/elbo.csv"))}
    with logged_run(None):
        rendered = render_product(product, {kind: paths[kind] for kind in product.inputs})
        write_rendered(rendered,
                       {n: (figure_path(config, n, "pdf"), figure_path(config, n, "png")) for n in product.figures},
                       {n: table_path(config, n) for n in product.tables})


if "snakemake" in globals():
    run_snakemake(snakemake)  # noqa: F821 (injected by Snakemake)
elif __name__ == "__main__":
    run_standalone(sys.argv[1:])
