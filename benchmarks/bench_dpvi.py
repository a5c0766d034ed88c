"""DPVI step cost versus a plain numpyro SVI step, and vectorised versus one-by-one fitting.

Prints, for the study's model (K = 16, AutoDiagonalNormal, Adam):

1. µs per step of plain numpyro SVI (Trace_ELBO, uniform minibatch of b records),
   of d3p 0.2.0's DPSVI as shipped (fixed batch of b, per-example Trace_ELBO
   gradients), of our stock variant (Poisson subsampling, masked padded batch), of
   our aligned variant step by step (``AlignedPoissonDPSVI.update``, the reference)
   and of the same aligned steps on the fits' default path (``synthshare.generator.fused``:
   each block of steps' randomness drawn at once by JAX, the steps in the numba kernel;
   the draw is included in its time), at (b = 3, N = 290) and
   (b = 38, N = 3,800) —
   the DP variants use q = 0.01, so q·N = b on average, and a batch capacity B
   that makes overflow negligible (the batch actually computed is B, not b);
2. the ratios to the plain SVI step and the seconds for 400,000 steps;
3. one (ε, f, seed) job of 16 parties: µs per step of the job on the fused path (all
   parties' randomness in one JAX call, then the kernel party after party, as
   ``synthshare.generator.fit``) versus the sum over parties fitted one by one, at
   f = 0.1 and f = 1 party sizes, and the projected job time at 1,000 and 4,000 epochs
   (plus measured fixed costs).

Threads are pinned to 1 (synthshare.threads: OpenMP of d3p's RNG, BLAS, XLA), every
JAX program is compiled for one thread (synthshare.generator.compilation) and run as a
``lax.scan`` of ``--steps`` steps (the fused path: blocks of ``--steps`` steps). Timings are noisy on a shared machine: each measurement
is repeated in interleaved rounds and the minimum and median are shown, with the load.

    python benchmarks/bench_dpvi.py [--rounds 7] [--steps 400] [--quick]
"""

from __future__ import annotations

import os

from synthshare.threads import pin_threads

pin_threads(1)  # one thread, as a generator job with threads: 1 (OpenMP, BLAS, XLA); before numpy/jax

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from functools import partial  # noqa: E402

import d3p.random as strong_rng  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from d3p.svi import DPSVI  # noqa: E402
from numpyro.infer import SVI, Trace_ELBO  # noqa: E402
from numpyro.optim import Adam  # noqa: E402

from synthshare.generator.compilation import compile_for_one_thread  # noqa: E402
from synthshare.generator.fit import PartyData, _stack, build_dpvi, party_key  # noqa: E402
from synthshare.generator.fused import FusedState, ModelLayout, run_fused  # noqa: E402
from synthshare.generator.job import fit_and_sample  # noqa: E402
from synthshare.generator.encoding import LEVEL_COUNTS  # noqa: E402
from synthshare.generator.model import ModelSettings, generative_model, make_guide  # noqa: E402
from synthshare.generator.settings import GeneratorSettings  # noqa: E402
from synthshare.generator.subsampling import batch_capacity, effective_rate  # noqa: E402

PAPER_STEPS = 400_000
SIGMA = 26.77  # the paper's setting's σ (ε = 1, δ = 1e-6, q = 0.01, T = 400,000); speed does not depend on it


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def records(rng: np.random.Generator, n: int) -> tuple[jax.Array, jax.Array]:
    codes = np.stack([rng.integers(0, c, n) for c in LEVEL_COUNTS], axis=1).astype(np.int32)
    return jnp.asarray(codes), jnp.asarray((rng.random(n) < 0.2).astype(np.float32))


def scan_program(step, steps: int):
    """A function running ``steps`` steps of ``step(state, key) -> state`` in one scan."""
    def run(state, key):
        def body(state, key):
            return step(state, key), None
        return jax.lax.scan(body, state, jax.random.split(key, steps))[0]
    return run


def plain_svi(n: int, batch: int, codes, outcome):
    svi = SVI(partial(generative_model, settings=ModelSettings()), make_guide(), Adam(1e-3), Trace_ELBO())
    state = svi.init(jax.random.PRNGKey(0), codes[:batch], outcome[:batch], num_records=n)

    def step(state, key):
        index = jax.random.randint(key, (batch,), 0, n)
        return svi.update(state, codes[index], outcome[index], num_records=n)[0]
    return step, state


def shipped_d3p(n: int, batch: int, codes, outcome):
    """d3p 0.2.0's DPSVI unchanged: fixed batch, per-example guide draws, mean + noise."""
    model = partial(generative_model, settings=ModelSettings())
    svi = DPSVI(model, make_guide(model), Adam(1e-3), Trace_ELBO(), 2.0, SIGMA)
    state = svi.init(strong_rng.PRNGKey(0), codes[:batch], outcome[:batch], num_records=n)

    def step(state, key):
        index = jax.random.randint(key, (batch,), 0, n)
        return svi.update(state, codes[index], outcome[index], num_records=n)[0]
    return step, state


def ours(variant: str, n: int, codes, outcome):
    settings = GeneratorSettings(variant=variant)
    capacity = batch_capacity(n, effective_rate(0.01), PAPER_STEPS, 1.0, settings.overflow_delta)
    dpvi = build_dpvi(settings, SIGMA, capacity)
    state = dpvi.init(strong_rng.PRNGKey(0), codes, outcome, num_records=n)

    def step(state, key):
        return dpvi.update(state, codes, outcome, n)[0]
    return step, state, capacity, dpvi


class Fused:
    """The fits' default path for some parties: ``run(steps)`` runs ``steps`` steps of all
    of them (randomness drawn by JAX, steps by the numba kernel) from a copy of the state."""

    def __init__(self, dpvi, settings, data, sizes):
        self.dpvi, self.settings = dpvi, settings
        self.codes = [np.asarray(c) for c, _ in data]
        self.outcome = [np.asarray(y) for _, y in data]
        states = _stack([dpvi.init(party_key(1, "bench", str(i)), c, y, num_records=n)
                         for i, ((c, y), n) in enumerate(zip(data, sizes))])
        self.state = FusedState.from_reference(states)
        layout = tuple((name, tuple(np.shape(v))) for name, v in dpvi.guide._init_locs.items())
        self.layout = ModelLayout.from_guide(layout, settings.components)

    def run(self, steps: int) -> None:
        state = FusedState(self.state.loc.copy(), self.state.scale_u.copy(), self.state.moment1.copy(),
                           self.state.moment2.copy(), self.state.step.copy(), self.state.keys)
        run_fused(self.dpvi, self.settings, self.layout, state, self.codes, self.outcome, steps)


def time_programs(programs: dict, steps: int, rounds: int) -> dict[str, list[float]]:
    """µs per step of each program (a JAX step function and state, or a :class:`Fused`),
    ``rounds`` interleaved repetitions."""
    runs = {}
    for name, entry in programs.items():
        if isinstance(entry, Fused):
            runs[name] = lambda r, entry=entry: entry.run(steps)
        else:
            step, state = entry
            compiled = compile_for_one_thread(scan_program(step, steps), state, jax.random.PRNGKey(0))
            runs[name] = lambda r, compiled=compiled, state=state: jax.block_until_ready(
                compiled(state, jax.random.PRNGKey(2 + r)))
    for run in runs.values():
        run(-1)  # compile (numba: first call of the process) and warm up
    times = {name: [] for name in programs}
    for r in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run(r)
            times[name].append((time.perf_counter() - started) / steps * 1e6)
    return times


def summary(values: list[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def step_costs(steps: int, rounds: int) -> None:
    print(f"== 1-2. cost per step, K = 16 ({load()})")
    rng = np.random.default_rng(0)
    for n, batch in ((290, 3), (3800, 38)):
        codes, outcome = records(rng, n)
        aligned_step, aligned_state, capacity, aligned_dpvi = ours("aligned", n, codes, outcome)
        stock_step, stock_state, _, _ = ours("stock", n, codes, outcome)
        programs = {
            "plain numpyro SVI": plain_svi(n, batch, codes, outcome),
            "d3p DPSVI as shipped": shipped_d3p(n, batch, codes, outcome),
            "ours, stock (Poisson)": (stock_step, stock_state),
            "ours, aligned step by step": (aligned_step, aligned_state),
            "ours, aligned fused (default)": Fused(aligned_dpvi, GeneratorSettings(), [(codes, outcome)], [n]),
        }
        times = time_programs(programs, steps, rounds)
        base_min, base_median = summary(times["plain numpyro SVI"])
        print(f"N = {n}, b = {batch} (DP variants: q = 0.01, capacity B = {capacity})")
        print(f"  {'':32s} {'µs/step min':>12s} {'median':>8s} {'ratio min':>10s} {'median':>8s} {'400k steps (s)':>15s}")
        for name, values in times.items():
            low, mid = summary(values)
            print(f"  {name:32s} {low:12.1f} {mid:8.1f} {low / base_min:10.2f} {mid / base_median:8.2f} "
                  f"{low * PAPER_STEPS / 1e6:15.0f}")
        print(f"  ({load()})")


def party_sizes(fraction: float, rng: np.random.Generator) -> list[int]:
    """16 party sizes spanning the study's centres' training splits (1,494-4,737) times f."""
    full = np.linspace(1494, 4737, 16).round().astype(int)
    return [max(1, int(round(fraction * n))) for n in rng.permutation(full)]


def vectorised_costs(steps: int, rounds: int) -> None:
    print(f"== 3. one job of 16 parties, aligned variant ({load()})")
    rng = np.random.default_rng(1)
    q = effective_rate(0.01)
    for fraction in (0.1, 1.0):
        sizes = party_sizes(fraction, rng)
        data = [records(rng, n) for n in sizes]
        capacities = [batch_capacity(n, q, PAPER_STEPS, 1.0, 1e-8) for n in sizes]
        settings = GeneratorSettings()
        dpvi = build_dpvi(settings, SIGMA, max(capacities))
        programs = {"one job, 16 parties": Fused(dpvi, settings, data, sizes)}
        singles = {f"party {i}": Fused(build_dpvi(settings, SIGMA, cap), settings, [d], [n])
                   for i, (d, n, cap) in enumerate(zip(data, sizes, capacities))}
        times = time_programs({**programs, **singles}, steps, rounds)
        joint_min, joint_median = summary(times["one job, 16 parties"])
        alone_min = sum(min(times[name]) for name in singles)
        alone_median = sum(statistics.median(times[name]) for name in singles)
        print(f"f = {fraction:g}: N = {min(sizes)}-{max(sizes)}, capacity {max(capacities)} (own {min(capacities)}-{max(capacities)})")
        print(f"  one job: {joint_min:.0f} µs/step (median {joint_median:.0f}) for all 16 = {joint_min / 16:.1f} µs per party-step")
        print(f"  one by one: {alone_min:.0f} µs/step (median {alone_median:.0f}) summed over the 16 parties")
        print(f"  one job vs one by one: {alone_min / joint_min:.2f}× (median {alone_median / joint_median:.2f}×)")
        for epochs in (1000, 4000):
            print(f"  {epochs} epochs = {epochs * 100} steps: training {joint_min * epochs * 100 / 1e6:.0f} s "
                  f"(median {joint_median * epochs * 100 / 1e6:.0f} s) in the job")

        # Fixed costs of a real job: σ search + PLD check, init, compile, sampling K = 100 sets.
        parties = [PartyData(f"p{i}", np.asarray(c), np.asarray(y)) for i, (c, y) in enumerate(data)]
        started = time.perf_counter()
        fit_and_sample(parties, "bench", 1.0, fraction, 5, GeneratorSettings(epochs=1))
        fixed = time.perf_counter() - started - joint_median * 100 / 1e6
        print(f"  fixed costs of a job (accounting at T = 100, init, compile, 100 synthetic sets): {fixed:.0f} s "
              f"(+ about 10 s for the σ search at T = 400,000)")
        print(f"  ({load()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=400, help="steps per timed call")
    parser.add_argument("--quick", action="store_true", help="section 1-2 only")
    args = parser.parse_args()
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, XLA_FLAGS={os.environ.get('XLA_FLAGS')}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    step_costs(args.steps, args.rounds)
    if not args.quick:
        vectorised_costs(args.steps, args.rounds)


if __name__ == "__main__":
    main()
