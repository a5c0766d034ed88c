"""Rule audit_tables: the audit's tables and its claims rows from every shadow job.

input {scores (Parquet, one per audited party and arm), anonymeter (CSV, likewise)};
params {level, seed (the config's ``audit``)}; output {summary, per_target, outliers
(CSV), roc (Parquet), anonymeter (CSV, stacked), claims (CSV: the two audit rows of
claims.csv)} (synthshare.audit.tables, synthshare.figures.claims.evaluate_audit_claims).
Standalone: ``python scripts/audit_tables.py --configfile config/smoke.yaml audit_tables``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

import pandas as pd

from synthshare.atomic import write_csv, write_parquet
from synthshare.audit.tables import audit_tables
from synthshare.errors import InputError
from synthshare.figures.claims import evaluate_audit_claims
from synthshare.runlog import logged_run


def _read(paths, reader):
    frames = []
    for path in paths:
        try:
            frames.append(reader(path))
        except (OSError, ValueError) as error:
            raise InputError(f"{path}: cannot read audit output: {error}") from None
    return pd.concat(frames, ignore_index=True)


def main(snakemake) -> None:
    output, params = snakemake.output, snakemake.params
    with logged_run(snakemake.log[0]) as log:
        scores = _read(snakemake.input.scores, pd.read_parquet)
        tables = audit_tables(scores, float(params.level), int(params.seed))
        for name in ("summary", "per_target", "outliers"):
            write_csv(tables[name], output[name], float_format="%.6g")
        write_parquet(tables["roc"], output.roc)
        write_csv(_read(snakemake.input.anonymeter, pd.read_csv), output.anonymeter, float_format="%.6g")
        claims = evaluate_audit_claims(tables["summary"])
        write_csv(claims, output.claims, float_format="%.6g")
        summary = tables["summary"]
        for row in summary[summary["group"] != "typical"].to_dict("records"):
            log.info("%s f=%g %s %s %s: AUC %.3f [%.3f, %.3f], TPR at FPR 0.1 %.3f, epsilon lower bound %.3f "
                     "(ledger %.3g)", row["party"], row["fraction"], row["arm"], row["attack"], row["group"], row["auc"],
                     row["auc_low"], row["auc_high"], row["tpr_at_fpr_0.1"], row["epsilon_lower_bound"], row["epsilon"])
        for row in claims.itertuples():
            log.info("%s: holds=%s value=%s p=%s %s", row.claim_id, row.holds, row.value, row.pvalue, row.detail)


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
