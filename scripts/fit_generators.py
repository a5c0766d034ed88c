"""Rule fit_generators_<scenario>: DP generators of every party of one (scenario, ε, f, seed).

input.local (Parquet, one per party in params.parties order), input.noise (σ of the
job's ε, rule calibrate_noise); params {parties,
scenario, epsilon, fraction, seed, settings (the config's ``generator`` mapping)};
output {synthetic, params, elbo, privacy} (lists in party order). Standalone:
``python scripts/fit_generators.py --configfile config/smoke.yaml
fit_generators_centres epsilon=1 fraction=0.5 seed=123``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

import logging

import numpy as np
import pandas as pd
from tqdm import tqdm

from synthshare.errors import InputError
from synthshare.generator.fit import PartyData
from synthshare.generator.job import fit_and_sample, write_party_outputs
from synthshare.generator.noise import read_noise
from synthshare.generator.settings import GeneratorSettings
from synthshare.generator.subsampling import effective_rate
from synthshare.runlog import logged_run


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


def main(snakemake) -> None:
    params, outputs = snakemake.params, snakemake.output
    with logged_run(snakemake.log[0]) as log:
        settings = GeneratorSettings.from_config(dict(params.settings))
        data = [_read_party(name, path) for name, path in zip(params.parties, snakemake.input.local, strict=True)]
        log.info("scenario %s, epsilon %g, f %g, seed %d: %d parties, N = %s, %s variant, %d epochs (T = %d)",
                 params.scenario, float(params.epsilon), float(params.fraction), int(params.seed), len(data),
                 [p.num_records for p in data], settings.variant, settings.epochs, settings.steps)

        noise = read_noise(snakemake.input.noise, float(params.epsilon), settings.delta,
                           effective_rate(settings.sampling_rate), settings.steps)

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
            on_chunk=progress, noise=noise,
        )
        for i, output in enumerate(outputs_per_party):
            write_party_outputs(output, outputs.synthetic[i], outputs.params[i], outputs.elbo[i], outputs.privacy[i])
            record = output.record
            log.info("%s: N = %d, epsilon_fourier = %.4f, epsilon_pld = %.4f, delta = %.3g, final ELBO/record %.4f",
                     output.fit.name, record["N"], record["epsilon_fourier"], record["epsilon_pld"], record["delta"],
                     output.fit.elbo[-1] / record["N"])


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
