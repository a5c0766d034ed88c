# Figures stage: the paper's figures and tables, figures beyond the paper, claims.csv.
# Which products exist is synthshare.figures.catalogue's pure function of the config, so a
# figure whose inputs are not in the run's grid has no rule (the DAG follows the config).
# `rule all` takes every output from synthshare.figures.catalogue.figure_targets(config).

from synthshare.figures.catalogue import (
    CLAIMS_CATEGORY,
    TABLES_CATEGORY,
    claim_settings,
    requested_products,
)

# What a product may read, by input kind (synthshare.figures.catalogue.INPUT_KINDS).
FIGURE_INPUTS = {
    "ll": PATHS.ll,
    "reference": PATHS.reference,
    "coef": PATHS.coef,
    "truth": PATHS.truth,
    "ledger": PATHS.ledger,
    "elbo": lambda w: generator_files("elbo", w.run),
    "intervals": PATHS.intervals,
    "parameters": config["cohort"]["simulated"]["parameters"],
    # fraction-major, as synthshare.figures.coverage reads them
    "local": [PATHS.local("centres", f, p) for f in centre_fractions(config) for p in parties_of("centres")],
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
                    PATHS.figure(name, "png"),
                    caption=f"../report/{name}.rst",
                    category=report_category(_product.category),
                    subcategory=_product.title,
                )
                for name in _product.figures
            },
            **{f"{name}_pdf": PATHS.figure(name, "pdf") for name in _product.figures},
            **{
                f"{name}_table": report(PATHS.table(name), caption="../report/tables.rst", category=report_category(TABLES_CATEGORY))
                for name in _product.tables
            },
        params:
            product=_product.name,
            # What is drawn; a change of settings reruns the job.
            settings=_product.settings,
        log:
            PATHS.log(_product.name, "figures"),
        resources:
            mem_mb=attempt_scaled(4000),
            runtime=attempt_scaled(20),
        conda:
            "../envs/synthshare.yaml"
        script:
            "../../scripts/plot_figure.py"


rule claims:
    """claims.csv: every qualitative claim of the paper, tested on this run."""
    input:
        ll=PATHS.ll,
        # the coverage claims read the coverage product's table (simulated cohorts)
        coverage=[PATHS.table("coverage")] if any(p.name == "coverage" for p in requested_products(config)) else [],
        # The audit's two rows (rule audit_tables), when the config has an `audit` section.
        **({"audit": PATHS.audit_table("claims.csv")} if "audit" in config else {}),
    output:
        claims=report(PATHS.claims, caption="../report/claims.rst", category=report_category(CLAIMS_CATEGORY)),
    params:
        settings=claim_settings(config),
    log:
        PATHS.log("claims", "figures"),
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=attempt_scaled(20),
    conda:
        "../envs/synthshare.yaml"
    script:
        "../../scripts/write_claims.py"


if SWEEP:

    rule heterogeneity_sweep:
        input:
            ll=[RunPaths(run).ll for run in RUNS],
        output:
            **{
                f"{name}_png": report(
                    SWEEP_PATHS.figure(name, "png"),
                    caption=f"../report/{name}.rst",
                    category="7. Heterogeneity sweep",
                )
                for name in SWEEP_FIGURES
            },
            **{f"{name}_pdf": SWEEP_PATHS.figure(name, "pdf") for name in SWEEP_FIGURES},
            **{
                f"{name}_table": report(SWEEP_PATHS.table(name), caption="../report/tables.rst", category="7. Heterogeneity sweep")
                for name in SWEEP_TABLES
            },
        params:
            product="heterogeneity",
            settings={
                "sds": sweep_sds(config),
                "parties": parties_of("centres"),
                "epsilon": REF_EPSILON,
                "fraction": REF_FRACTION,
            },
        log:
            SWEEP_PATHS.log("heterogeneity_sweep", "figures"),
        resources:
            mem_mb=attempt_scaled(4000),
            runtime=attempt_scaled(20),
        conda:
            "../envs/synthshare.yaml"
        script:
            "../../scripts/plot_heterogeneity.py"
