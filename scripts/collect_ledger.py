"""Rule collect_ledger: every generator fit's privacy.json -> privacy/ledger.csv.

input (the privacy.json files); output.ledger.
Standalone: ``python scripts/collect_ledger.py --configfile config/smoke.yaml collect_ledger``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

from synthshare.atomic import write_csv
from synthshare.generator.ledger import collect_ledger, within_stated_error
from synthshare.runlog import logged_run


def main(snakemake) -> None:
    with logged_run(snakemake.log[0]) as log:
        ledger = collect_ledger(list(snakemake.input))
        write_csv(ledger, snakemake.output.ledger, float_format="%.10g")
        for row in ledger.to_dict("records"):
            bad = [name for name, ok in within_stated_error(row).items() if not ok]
            if bad:
                log.warning("%s/%s eps%g f%g seed%d: epsilon by %s exceeds the target %g beyond its stated error",
                            row["scenario"], row["party"], row["epsilon_target"], row["fraction"], row["seed"],
                            " and ".join(bad), row["epsilon_target"])
        log.info("ledger: %d records -> %s (max epsilon_fourier - target %.2g, max epsilon_pld - target %.2g)",
                 len(ledger), snakemake.output.ledger,
                 float((ledger["epsilon_fourier"] - ledger["epsilon_target"]).max()) if len(ledger) else 0.0,
                 float((ledger["epsilon_pld"] - ledger["epsilon_target"]).max()) if len(ledger) else 0.0)


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
