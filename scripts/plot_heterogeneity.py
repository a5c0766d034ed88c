"""Rule heterogeneity_sweep: the sweep's figures and tables from every level's ll.parquet.

input.ll (one per level, in params.settings["sds"] order); params.settings {sds, parties,
epsilon, fraction}; outputs ``<figure>_pdf``, ``<figure>_png`` and ``<table>_table``
(synthshare.figures.heterogeneity). Standalone: ``python scripts/plot_heterogeneity.py
--configfile config/heterogeneity.yaml heterogeneity_sweep``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

from synthshare.figures.heterogeneity import heterogeneity_figures
from synthshare.figures.output import write_rendered
from synthshare.runlog import logged_run

FIGURES = ("heterogeneity_gain", "heterogeneity_steps")
TABLES = ("heterogeneity_gain", "heterogeneity_claims")


def main(snakemake) -> None:
    with logged_run(snakemake.log[0]) as log:
        rendered = heterogeneity_figures(list(snakemake.input.ll), snakemake.params.settings)
        write_rendered(
            rendered,
            {name: (snakemake.output[f"{name}_pdf"], snakemake.output[f"{name}_png"]) for name in FIGURES},
            {name: snakemake.output[f"{name}_table"] for name in TABLES},
        )
        log.info("heterogeneity sweep over SDs %s: figures %s, tables %s", snakemake.params.settings["sds"],
                 list(FIGURES), list(TABLES))


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
