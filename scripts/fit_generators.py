"""Rule fit_generators_<scenario>: DP generators of every party of one (scenario, ε, f, seed).

Snakemake passes input.local (Parquet, one per party in params.parties order),
params {parties, scenario, epsilon, fraction, seed, settings (the config's
``generator`` mapping)} and output {synthetic, params, elbo, privacy} (lists in party
order). Standalone::

    python scripts/fit_generators.py --parties A B --local a.parquet b.parquet \\
        --scenario centres --epsilon 1 --fraction 0.1 --seed 123 --out results/try \\
        [--config config/config.yaml] [--set epochs=100 synthetic_sets=5]

writes <out>/<party>/{synthetic.parquet, params.npz, elbo.csv, privacy.json}.
"""

from synthshare.threads import pin_threads

# The job's threads for OpenMP (d3p's RNG), BLAS and XLA; must precede importing numpy/jax.
pin_threads(snakemake.threads if "snakemake" in globals() else 1)  # noqa: F821

import argparse  # noqa: E402
import logging  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from tqdm import tqdm  # noqa: E402

from synthshare.errors import InputError  # noqa: E402
from synthshare.generator.fit import PartyData  # noqa: E402
from synthshare.generator.generate import fit_and_sample, write_party_outputs  # noqa: E402
from synthshare.generator.settings import GeneratorSettings  # noqa: E402
from synthshare.runlog import logged_run  # noqa: E402


class _LogLines:
    """A file-like sink for tqdm that sends each refreshed bar to the log as one line."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log

    def write(self, text: str) -> None:
        text = text.strip("\r\n ")
        if text:
            self._log.info("%s", text)

    def flush(self) -> None:
        pass


def _read_party(name: str, path: str) -> PartyData:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read local data of party {name!r}: {error}") from None
    return PartyData.from_frame(name, frame, str(path))


def main(inputs, params, outputs, log_path) -> None:
    with logged_run(log_path) as log:
        parties = list(params.parties)
        local = list(inputs.local)
        for key in ("synthetic", "params", "elbo", "privacy"):
            if len(getattr(outputs, key)) != len(parties):
                raise InputError(f"fit_generators: {len(getattr(outputs, key))} {key} outputs for {len(parties)} parties")
        if len(local) != len(parties):
            raise InputError(f"fit_generators: {len(local)} local files for {len(parties)} parties; expected one each")
        settings = GeneratorSettings.from_config(dict(params.settings))
        data = [_read_party(name, path) for name, path in zip(parties, local)]
        log.info("scenario %s, epsilon %g, f %g, seed %d: %d parties, N = %s, %s variant, %d epochs (T = %d)",
                 params.scenario, float(params.epsilon), float(params.fraction), int(params.seed), len(data),
                 [p.num_records for p in data], settings.variant, settings.epochs, settings.steps)

        bar = tqdm(total=settings.epochs, unit="epoch", file=_LogLines(log), mininterval=20.0, ascii=True)

        def progress(done: int, elbo: np.ndarray) -> None:
            # Running ELBO per record, averaged over the parties, of the last epoch done.
            per_record = float(np.mean(elbo[-1] / np.asarray([p.num_records for p in data])))
            bar.set_postfix_str(f"ELBO/record {per_record:.4f}", refresh=False)
            bar.update(done - bar.n)
            if done >= settings.epochs:
                bar.close()

        outputs_per_party = fit_and_sample(
            data, params.scenario, float(params.epsilon), float(params.fraction), int(params.seed), settings,
            on_chunk=progress,
        )
        for i, output in enumerate(outputs_per_party):
            write_party_outputs(output, outputs.synthetic[i], outputs.params[i], outputs.elbo[i], outputs.privacy[i])
            record = output.record
            log.info("%s: N = %d, epsilon_fourier = %.4f, epsilon_pld = %.4f, delta = %.3g, final ELBO/record %.4f",
                     output.fit.name, record["N"], record["epsilon_fourier"], record["epsilon_pld"], record["delta"],
                     output.fit.elbo[-1] / record["N"])


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", nargs="+", required=True)
    parser.add_argument("--local", nargs="+", required=True)
    parser.add_argument("--scenario", default="centres")
    parser.add_argument("--epsilon", type=float, required=True)
    parser.add_argument("--fraction", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--config", help="a config YAML whose `generator` section to use (default: paper defaults)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override generator settings")
    parser.add_argument("--out", required=True, help="output folder; one sub-folder per party")
    parser.add_argument("--log")
    a = parser.parse_args()
    section = yaml.safe_load(Path(a.config).read_text()).get("generator", {}) if a.config else {}
    for item in a.set:
        key, _, value = item.partition("=")
        section[key] = yaml.safe_load(value)
    out = Path(a.out)
    paths = {kind: [str(out / p / name) for p in a.parties]
             for kind, name in (("synthetic", "synthetic.parquet"), ("params", "params.npz"),
                                ("elbo", "elbo.csv"), ("privacy", "privacy.json"))}
    main(SimpleNamespace(local=a.local),
         SimpleNamespace(parties=a.parties, scenario=a.scenario, epsilon=a.epsilon, fraction=a.fraction, seed=a.seed,
                         settings=section),
         SimpleNamespace(**paths), a.log)


if "snakemake" in globals():
    main(snakemake.input, snakemake.params, snakemake.output, snakemake.log[0])  # noqa: F821
elif __name__ == "__main__":
    cli()
