"""Rule claims: test every qualitative claim of the paper on this run (claims.csv).

input.ll; input.coverage (the coverage table, simulated cohorts only: empty otherwise) and,
with an audit, input.audit (the audit's claims rows, rule audit_tables, appended);
params.settings (synthshare.figures.catalogue.claim_settings); output.claims.
Standalone: ``python scripts/write_claims.py --configfile config/smoke.yaml claims``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

import pandas as pd

from synthshare.atomic import write_csv
from synthshare.figures.claims import evaluate_claims
from synthshare.runlog import logged_run


def main(snakemake) -> None:
    with logged_run(snakemake.log[0]) as log:
        coverage = list(snakemake.input.coverage)
        claims = evaluate_claims(snakemake.input.ll, snakemake.params.settings, coverage[0] if coverage else None)
        if "audit" in snakemake.input.keys():
            claims = pd.concat([claims, pd.read_csv(snakemake.input.audit)], ignore_index=True)
        write_csv(claims, snakemake.output.claims, float_format="%.6g")
        for row in claims.itertuples():
            log.info("%s: holds=%s value=%s p=%s", row.claim_id, row.holds, row.value, row.pvalue)


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
