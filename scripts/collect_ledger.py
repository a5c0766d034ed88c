"""Rule collect_ledger: every generator fit's privacy.json -> privacy/ledger.csv.

Snakemake passes input (the privacy.json files) and output.ledger. Standalone::

    python scripts/collect_ledger.py --out ledger.csv results/default/generator/*/*/*/*/*/privacy.json
"""

import argparse
from types import SimpleNamespace

from synthshare.atomic import write_csv
from synthshare.generator.ledger import collect_ledger, within_stated_error
from synthshare.runlog import logged_run


def main(inputs, outputs, log_path) -> None:
    with logged_run(log_path) as log:
        ledger = collect_ledger(list(inputs))
        write_csv(ledger, outputs.ledger, float_format="%.10g")
        for row in ledger.to_dict("records"):
            bad = [name for name, ok in within_stated_error(row).items() if not ok]
            if bad:
                log.warning("%s/%s eps%g f%g seed%d: epsilon by %s exceeds the target %g beyond its stated error",
                            row["scenario"], row["party"], row["epsilon_target"], row["fraction"], row["seed"],
                            " and ".join(bad), row["epsilon_target"])
        log.info("ledger: %d records -> %s (max epsilon_fourier - target %.2g, max epsilon_pld - target %.2g)",
                 len(ledger), outputs.ledger,
                 float((ledger["epsilon_fourier"] - ledger["epsilon_target"]).max()) if len(ledger) else 0.0,
                 float((ledger["epsilon_pld"] - ledger["epsilon_target"]).max()) if len(ledger) else 0.0)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+")
    parser.add_argument("--out", required=True)
    parser.add_argument("--log")
    a = parser.parse_args()
    main(a.records, SimpleNamespace(ledger=a.out), a.log)


if "snakemake" in globals():
    main(snakemake.input, snakemake.output, snakemake.log[0])  # noqa: F821
elif __name__ == "__main__":
    cli()
