"""Rule plot_<product>: draw one product of the figures catalogue (its figures and tables).

params.product names the product (synthshare.figures.catalogue); inputs are named by
input kind (``ll``, ``reference``, ``coef``, ``truth``, ``ledger``, ``elbo``), outputs
``<figure>_pdf``, ``<figure>_png`` and ``<table>_table``. Standalone:
``python scripts/plot_figure.py --configfile config/smoke.yaml plot_fig1``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

from synthshare.figures.catalogue import requested_products
from synthshare.figures.output import write_rendered
from synthshare.figures.render import render_product
from synthshare.runlog import logged_run


def main(snakemake) -> None:
    with logged_run(snakemake.log[0]) as log:
        product = next(p for p in requested_products(snakemake.config) if p.name == snakemake.params.product)
        inputs = {kind: (list(snakemake.input[kind]) if kind in ("elbo", "local") else snakemake.input[kind])
                  for kind in product.inputs}
        rendered = render_product(product, inputs)
        write_rendered(
            rendered,
            {name: (snakemake.output[f"{name}_pdf"], snakemake.output[f"{name}_png"]) for name in product.figures},
            {name: snakemake.output[f"{name}_table"] for name in product.tables},
        )
        log.info("%s: figures %s, tables %s", product.name, list(product.figures), list(product.tables))


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
