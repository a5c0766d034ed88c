"""Rule claims: test every qualitative claim of the paper on this run (claims.csv).

Standalone: ``python scripts/write_claims.py --config config/smoke.yaml``.
"""


import argparse
import sys
from pathlib import Path

import yaml

from synthshare.atomic import write_csv
from synthshare.config import check_config, load_schema
from synthshare.figures.catalogue import claim_settings, claims_path, results_dir
from synthshare.figures.claims import evaluate_claims
from synthshare.runlog import logged_run

REPO = Path(__file__).resolve().parents[1]


def run_snakemake(sm) -> None:
    with logged_run(sm.log[0]) as log:
        claims = evaluate_claims(sm.input.ll, sm.params.settings)
        write_csv(claims, sm.output.claims, float_format="%.6g")
        for row in claims.itertuples():
            log.info("%s: holds=%s value=%s p=%s", row.claim_id, row.holds, row.value, row.pvalue)


def run_standalone(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml", help="the run's config file")
    args = parser.parse_args(argv)
    config = check_config(yaml.safe_load(Path(args.config).read_text()),
                          load_schema(REPO / "workflow/schemas/config.schema.yaml"), args.config)
    with logged_run(None):
        claims = evaluate_claims(f"{results_dir(config)}/analysis/ll.parquet", claim_settings(config))
        write_csv(claims, claims_path(config), float_format="%.6g")


if "snakemake" in globals():
    run_snakemake(snakemake)  # noqa: F821 (injected by Snakemake)
elif __name__ == "__main__":
    run_standalone(sys.argv[1:])
