"""Rule audit_figures: the audit's ROC (log axes) and per-target AUC figures.

input {summary, per_target, outliers (CSV), roc (Parquet)} (rule audit_tables); output
{roc_png, roc_pdf, per_target_png, per_target_pdf} (synthshare.audit.figures).
Standalone: ``python scripts/audit_figures.py --configfile config/smoke.yaml audit_figures``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

import pandas as pd

from synthshare.audit.figures import per_target_figure, roc_figure
from synthshare.figures.output import save_figure
from synthshare.runlog import logged_run


def main(snakemake) -> None:
    inputs, output = snakemake.input, snakemake.output
    with logged_run(snakemake.log[0]) as log:
        summary = pd.read_csv(inputs.summary)
        save_figure(roc_figure(pd.read_parquet(inputs.roc), summary), output.roc_pdf, output.roc_png)
        save_figure(per_target_figure(pd.read_csv(inputs.per_target), pd.read_csv(inputs.outliers)),
                    output.per_target_pdf, output.per_target_png)
        log.info("audit figures: %s, %s", output.roc_png, output.per_target_png)


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
