# Figures stage: the paper's figures and tables, figures beyond the paper, claims.csv.
# Which products exist is synthshare.figures.catalogue's pure function of the config, so a
# figure whose inputs are not in the run's grid has no rule (the DAG follows the config).
# `rule all` takes every output from synthshare.figures.catalogue.figure_targets(config).

from synthshare.figures.catalogue import (
    CLAIMS_CATEGORY,
    TABLES_CATEGORY,
    claim_settings,
    claims_path,
    figure_path,
    requested_products,
    table_path,
)

# What a product may read, by input kind (synthshare.figures.catalogue.INPUT_KINDS).
FIGURE_INPUTS = {
    "ll": f"{RESULTS}/analysis/ll.parquet",
    "reference": f"{RESULTS}/analysis/reference.parquet",
    "coef": f"{RESULTS}/analysis/coef.parquet",
    "truth": f"{RESULTS}/data/truth.json",
    "ledger": f"{RESULTS}/privacy/ledger.csv",
    "elbo": all_elbo_traces(),
}


# One rule per product: products differ in inputs, outputs and captions. Outputs are
# named <figure>_png (in the report, captioned), <figure>_pdf and <table>_table.
for _product in requested_products(config):

    rule:
        name:
            f"plot_{_product.name}"
        input:
            **{kind: FIGURE_INPUTS[kind] for kind in _product.inputs},
        output:
            **{
                f"{name}_png": report(
                    figure_path(config, name, "png"),
                    caption=f"../report/{name}.rst",
                    category=_product.category,
                    subcategory=_product.title,
                )
                for name in _product.figures
            },
            **{f"{name}_pdf": figure_path(config, name, "pdf") for name in _product.figures},
            **{
                f"{name}_table": report(table_path(config, name), caption="../report/tables.rst", category=TABLES_CATEGORY)
                for name in _product.tables
            },
        params:
            product=_product.name,
            # What is drawn; a change of settings reruns the job.
            settings=_product.settings,
        log:
            f"{RESULTS}/logs/figures/{_product.name}.log",
        resources:
            mem_mb=attempt_scaled(4000),
            runtime=attempt_scaled(20),
        script:
            "../../scripts/plot_figure.py"


rule claims:
    """claims.csv: every qualitative claim of the paper, tested on this run."""
    input:
        ll=f"{RESULTS}/analysis/ll.parquet",
    output:
        claims=report(claims_path(config), caption="../report/claims.rst", category=CLAIMS_CATEGORY),
    params:
        settings=claim_settings(config),
    log:
        f"{RESULTS}/logs/figures/claims.log",
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=attempt_scaled(20),
    script:
        "../../scripts/write_claims.py"
