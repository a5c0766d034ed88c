"""Rule calibrate_noise: σ of one ε for every generator job of that ε -> privacy/noise/eps<ε>.json.

params {epsilon, delta, sampling_rate, steps}; output (the noise file,
:mod:`synthshare.generator.noise`). Standalone:
``python scripts/calibrate_noise.py --configfile config/smoke.yaml calibrate_noise epsilon=1``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

import time

from synthshare.atomic import write_json
from synthshare.generator.noise import account_noise, noise_record
from synthshare.generator.subsampling import effective_rate
from synthshare.runlog import logged_run


def main(snakemake) -> None:
    params = snakemake.params
    with logged_run(snakemake.log[0]) as log:
        started = time.perf_counter()
        q = effective_rate(float(params.sampling_rate))
        noise = account_noise(float(params.epsilon), float(params.delta), q, int(params.steps))
        write_json(noise_record(noise), snakemake.output[0])
        log.info("sigma = %.6g for epsilon = %g, delta = %g, q = %.8g, T = %d: epsilon_fourier = %.6g (±%.2g), "
                 "epsilon_pld = %.6g (±%.2g) [%.1f s]", noise.sigma, noise.epsilon, noise.delta, noise.q, noise.steps,
                 noise.epsilon_fourier, noise.epsilon_fourier_error, noise.epsilon_pld, noise.epsilon_pld_error,
                 time.perf_counter() - started)


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
