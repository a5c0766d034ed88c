"""The paper grid's total run time on this machine, projected from measured unit costs.

Counts the grid of ``config/paper.yaml`` with :mod:`synthshare.grid` (every model setting
x seed is one generator job of all the scenario's parties; every job and the skew
experiment is one analysis job) and prices it with costs measured here, now:

1. **Generator.** For every distinct job shape (scenario, f: the parties' sizes N_m from
   the simulated cohort's training split, the batch capacity B of T = 400,000 steps), one
   short run of :func:`synthshare.generator.fit.fit_parties` (the workflow's fit path,
   the config's generator settings) of ``--epochs`` and of 3 × ``--epochs`` epochs, each
   three times: the difference of the two warm lengths (fastest of the last two calls
   each) gives µs per step of the whole job; the
   rest of a warm call (initial states) and each first minus second call (compilation) a
   per-job cost; the numba kernel's compilation (once per machine) is measured first,
   apart. Per job: steps x µs/step + compile + sampling K synthetic sets per party
   (the sampler's compilation, once per job process, plus a warm cost per record: draw,
   table and Parquet write, measured on the largest job) + the job process's start
   (imports, numba's cached kernels, numpyro's eager initialisation, which compiles
   hundreds of small XLA programs: a fresh process timed). Per distinct ε of the grid:
   one σ calibration at T = 400,000 (rule ``calibrate_noise``; each ε measured).
2. **Analysis.** Distinct fits per second of the experiment (compiled GLM kernel) on
   every party of the cohort at f = 0.1 with the paper's K and S, one order each, for
   synthetic sets resampled from the local data (many zero-positive levels: the slow
   end) and freshly simulated ones (closer to real DPVI sets) — as
   ``bench_analysis.py``'s projection (fastest of three passes), plus a fresh job
   process's start per job. Distinct fits per job from the paper's orders
   (repeated first-j sets are fitted once).
3. **Figures.** The paper-scale figure jobs (``figures_paper_scale.py``: Figs 1/S3, 2/S4
   and the claims reading every step) on fabricated ll.parquet files of one and two
   seeds: a fixed cost per model setting (plus the skew experiment) and a cost per row,
   times the rows of every analysis job. An upper bound of sorts: not every setting
   draws every figure.

Every process is pinned to one thread (OpenMP, BLAS, numba, XLA); the projection assumes
two such jobs at a time on the 2 cores (Snakemake ``--cores 2``, jobs of one thread) and
perfect packing, i.e. total core-seconds / 2. Data-stage jobs (~5 s) and the DAG (~8 s)
are left out. Default run time ~4-5 min on the 2-core machine.

    .venv/bin/python benchmarks/bench_grid.py [--epochs 30] [--analysis-orders 1] [--skip-figures]
"""

from __future__ import annotations

from synthshare.threads import pin_threads

pin_threads(1)  # one thread per process, as a job with threads: 1; before numpy / jax / numba load

import argparse  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from synthshare.glm.cells import count_cells  # noqa: E402
from synthshare.glm.design import most_frequent_levels  # noqa: E402
from synthshare.analysis.experiment import PartyExperiment, random_orders  # noqa: E402
from synthshare.analysis.resources import analysis_fits  # noqa: E402
from synthshare.grid import model_settings, parties_of, skew_enabled  # noqa: E402
from synthshare.parties.local import subsample_size  # noqa: E402
from synthshare.variables import CENTRE_COLUMN, CENTRES  # noqa: E402


# What a job's process does before its real work: pin threads, import the stack, load
# the compiled kernels from numba's cache and compile its JAX programs (a tiny fit). The
# sampler's compilation is priced apart (measure_generator), so it is not run here.
GENERATOR_START = """
from synthshare.threads import pin_threads
pin_threads(1)
import numpy as np
from synthshare.generator.fit import PartyData, fit_parties
from synthshare.generator.settings import GeneratorSettings
rng = np.random.default_rng(0)
parties = [PartyData(f"p{i}", np.stack([rng.integers(0, c, 64) for c in (7, 2, 8, 4, 5)], axis=1).astype(np.int32),
                     np.zeros(64, np.float32)) for i in range(2)]
settings = GeneratorSettings(epochs=1)
fit_parties(parties, settings, 5.0, 8, 1, "start")
"""
ANALYSIS_START = """
from synthshare.threads import pin_threads
pin_threads(1)
import numpy as np
from synthshare.glm.design import Design
from synthshare.glm.irls import PoissonBatchSolver
from synthshare.variables import FEATURES, FEATURE_LEVELS
design = Design(tuple(FEATURES), (0,) * len(FEATURES))
rng = np.random.default_rng(0)
n = rng.integers(1, 4, (2, *design.shape))
s = rng.binomial(n, 0.3)
PoissonBatchSolver(design).fit(np.stack([n, s], axis=-1).astype(np.int32))
"""


def process_start_seconds(code: str, repeats: int = 2) -> float:
    """Wall seconds of a fresh one-thread process running ``code`` (best of ``repeats``)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
        best = min(best, time.perf_counter() - started)
    return best


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- the grid ---------------------------------------------------------------------------

def distinct_share(parties: int, orders: int, order_seed: int, replicas: int = 4) -> float:
    """Share of a job's order-step fits that are distinct (a first-j set of parties is fitted once)."""
    others = parties - 1
    if others <= 0 or orders == 0:
        return 1.0
    shares = []
    for i in range(replicas):
        drawn = random_orders(others, orders, np.random.default_rng([order_seed, i]))
        distinct = sum(len({frozenset(o[: j + 1].tolist()) for o in drawn}) for j in range(others))
        shares.append(distinct / (orders * others))
    return float(np.mean(shares))


def count_grid(config: dict) -> dict:
    """Generator jobs (per shape), analysis fits (all and distinct) and ll rows of the config."""
    seeds = len(config["seeds"])
    generator = config["generator"]
    analysis = config["analysis"]
    sets, orders, draws = int(generator["synthetic_sets"]), int(analysis["orders"]), int(analysis["draws"])
    steps = int(generator["epochs"]) * max(1, round(1.0 / float(generator["sampling_rate"])))
    shapes: dict[tuple[str, float], int] = {}
    fits = distinct = rows = 0.0
    for setting in model_settings(config):
        parties = len(parties_of(config, setting.scenario))
        shapes[(setting.scenario, setting.fraction)] = shapes.get((setting.scenario, setting.fraction), 0) + seeds
        job_fits = analysis_fits(parties, parties - 1, orders, sets)
        fits += seeds * job_fits
        distinct += seeds * parties * (orders * (parties - 1) * sets * distinct_share(parties, orders, analysis["order_seed"]) + 2)
        rows += seeds * parties * (2 * draws + orders * (parties - 1) * draws)  # local full + no_ethnicity, steps
    skew_jobs = 0
    if skew_enabled(config):
        receivers, centres = len(config["skew"]["fractions"]), len(parties_of(config, "centres"))
        skew_jobs = seeds
        fits += seeds * analysis_fits(receivers, centres, orders, sets)
        distinct += seeds * receivers * (orders * centres * sets * distinct_share(centres + 1, orders, analysis["order_seed"]) + 2)
        rows += seeds * receivers * (2 * draws + orders * centres * draws)
    return {"shapes": shapes, "steps": steps, "fits": fits, "distinct": distinct, "rows": rows,
            "generator_jobs": sum(shapes.values()), "analysis_jobs": sum(shapes.values()) + skew_jobs,
            "party_fits": sum(n * len(parties_of(config, s)) for (s, _), n in shapes.items())}


# -- generator --------------------------------------------------------------------------

def training_sizes(config: dict) -> tuple[dict[str, int], int]:
    """Each centre's training-split size and the pooled training size (simulated cohort, as the data stage)."""
    from synthshare.cohort.simulated import load_parameters, simulate_cohort
    from synthshare.parties.split import split_train_test

    simulated = config["cohort"]["simulated"]
    cohort = simulate_cohort(load_parameters(REPO / simulated["parameters"]), float(simulated["scale"]), int(simulated["seed"])).frame
    split = split_train_test(cohort, float(config["split"]["test_fraction"]), int(config["split"]["min_class_size"]),
                             int(config["split"]["seed"]))
    sizes = split.train[CENTRE_COLUMN].value_counts()
    return {c: int(sizes[c]) for c in CENTRES}, len(split.train)


def job_party_sizes(config: dict, scenario: str, fraction: float, train: dict[str, int], pooled: int) -> list[int]:
    if scenario == "centres":
        return [subsample_size(train[c], fraction) for c in parties_of(config, scenario)]
    parties = len(parties_of(config, scenario))
    pooled_part = subsample_size(pooled, fraction)
    return [len(part) for part in np.array_split(np.arange(pooled_part), parties)]


def measure_generator(config: dict, shapes: dict, epochs: int, steps_paper: int) -> dict:
    """µs per step and compile seconds of each job shape; σ calibration and sampling costs."""
    import jax.numpy as jnp  # noqa: F401  (jax loads with the pinned flags above)

    from synthshare.generator.fit import PartyData, fit_parties
    from synthshare.generator.noise import account_noise
    from synthshare.generator.sampling import sample_synthetic
    from synthshare.generator.settings import GeneratorSettings
    from synthshare.generator.subsampling import batch_capacity, effective_rate
    from synthshare.generator.encoding import LEVEL_COUNTS
    from synthshare.atomic import write_parquet

    generator = config["generator"]
    settings = GeneratorSettings.from_config(generator)
    q = effective_rate(settings.sampling_rate)
    epsilon = float(config["reference"]["epsilon"])
    # σ is calibrated once per ε of the grid (rule calibrate_noise), not once per job.
    sigma_seconds = {}
    for grid_epsilon in sorted({s.epsilon for s in model_settings(config)}):
        started = time.perf_counter()
        noise = account_noise(grid_epsilon, float(settings.delta), q, steps_paper)
        sigma_seconds[grid_epsilon] = time.perf_counter() - started
        print(f"  σ calibration + PLD check at ε = {grid_epsilon:g}, T = {steps_paper:,}: {sigma_seconds[grid_epsilon]:.1f} s "
              f"(σ = {noise.sigma:.4g})")
    calibration = account_noise(epsilon, float(settings.delta), q, steps_paper)
    short = replace(settings, epochs=epochs)
    short_steps = short.steps
    train, pooled = training_sizes(config)
    rng = np.random.default_rng(0)
    out = {"sigma_seconds": sum(sigma_seconds.values()), "shapes": {}}
    largest_fits, largest_records = None, 0
    # The numba kernel compiles once per machine (cache=True; later processes load it in
    # about a second): a small fit first, so that no shape's per-job cost carries it.
    started = time.perf_counter()
    tiny = [PartyData(f"w{i}", np.stack([rng.integers(0, c, 64) for c in LEVEL_COUNTS], axis=1).astype(np.int32),
                      np.zeros(64, np.float32)) for i in range(2)]
    fit_parties(tiny, replace(settings, epochs=1), calibration.sigma, 8, 1, "warmup")
    out["kernel_compile_s"] = time.perf_counter() - started
    print(f"  kernel compile or cache load and a first small fit: {out['kernel_compile_s']:.1f} s (once per machine)")
    out["process_start_s"] = process_start_seconds(GENERATOR_START)
    print(f"  a job process's start (imports, cached kernels, numpyro's eager initialisation): "
          f"{out['process_start_s']:.1f} s per job")
    for (scenario, fraction) in sorted(shapes):
        sizes = job_party_sizes(config, scenario, fraction, train, pooled)
        capacity = max(batch_capacity(n, q, steps_paper, epsilon, float(settings.overflow_delta)) for n in sizes)
        parties = [PartyData(f"p{i}", np.stack([rng.integers(0, c, n) for c in LEVEL_COUNTS], axis=1).astype(np.int32),
                             (rng.random(n) < 0.2).astype(np.float32)) for i, n in enumerate(sizes)]
        longer = replace(settings, epochs=3 * epochs)
        runs = {"short": [], "longer": []}
        # Each length three times: the first call compiles its draw programs, the
        # fastest of the other two is the warm cost (the machine is shared).
        for _ in range(3):
            for label, run_settings in (("short", short), ("longer", longer)):
                started = time.perf_counter()
                fits = fit_parties(parties, run_settings, calibration.sigma, capacity, 1, scenario)
                runs[label].append(time.perf_counter() - started)
        warm_short, warm_longer = min(runs["short"][1:]), min(runs["longer"][1:])
        # The steps' cost from the difference of two lengths; the rest of a call (the
        # parties' initial states, numpyro tracing) is a per-job cost like compilation.
        step_us = (warm_longer - warm_short) / (longer.steps - short_steps) * 1e6
        per_call_s = max(0.0, warm_short - step_us * short_steps / 1e6)
        compile_s = max(0.0, runs["short"][0] - warm_short) + max(0.0, runs["longer"][0] - warm_longer) + per_call_s
        out["shapes"][(scenario, fraction)] = {"step_us": step_us, "compile_s": compile_s, "parties": len(sizes),
                                                "records": sum(sizes), "capacity": capacity}
        print(f"  {scenario:9s} f = {fraction:<4g}: {len(sizes):2d} parties, N = {min(sizes)}-{max(sizes)}, B = {capacity}: "
              f"{step_us:7.0f} µs/step of the job ({step_us / len(sizes):5.1f} per party-step), compile + init {compile_s:4.1f} s "
              f"-> {steps_paper:,} steps {step_us * steps_paper / 1e6 / 60:5.1f} min  ({load()})")
        if sum(sizes) > largest_records:
            largest_fits, largest_records = fits, sum(sizes)
    # Sampling: the first call of a process compiles the sampler (once per job); later
    # calls cost per record: the draw, the table and its Parquet write, as in a job.
    sets = int(generator["synthetic_sets"])
    fit = max(largest_fits, key=lambda f: f.num_records)
    times = []
    with tempfile.TemporaryDirectory() as workdir:
        for repeat in range(3):
            started = time.perf_counter()
            write_parquet(sample_synthetic(fit, settings.model, sets, repeat, "bench"), Path(workdir) / "synthetic.parquet")
            times.append(time.perf_counter() - started)
    sampled = sets * fit.num_records
    out["sample_s_per_record"] = min(times[1:]) / sampled
    out["sample_compile_s"] = max(0.0, times[0] - min(times[1:]))
    out["sets"] = sets
    print(f"  sampling: compile {out['sample_compile_s']:.1f} s per job, then {out['sample_s_per_record'] * 1e6:.2f} µs per "
          f"synthetic record (draw + table + Parquet; {sampled:,} records, best of 2 warm calls)")
    return out


def generator_seconds(counted: dict, measured: dict, config: dict, train: dict[str, int], pooled: int) -> dict:
    """Core-seconds of all generator jobs, by part."""
    parts = {"steps": 0.0, "compile": 0.0, "start": 0.0, "sigma": 0.0, "sampling": 0.0}
    for shape, jobs in counted["shapes"].items():
        unit = measured["shapes"][shape]
        parts["steps"] += jobs * unit["step_us"] * counted["steps"] / 1e6
        parts["compile"] += jobs * unit["compile_s"]  # compilation and initial states
        parts["sampling"] += jobs * (measured["sample_compile_s"]
                                     + unit["records"] * measured["sets"] * measured["sample_s_per_record"])
    parts["sigma"] = measured["sigma_seconds"]  # once per distinct ε of the grid
    parts["compile"] += measured["kernel_compile_s"]  # once per machine
    parts["start"] = sum(counted["shapes"].values()) * measured["process_start_s"]  # every job's process
    return parts


# -- analysis ---------------------------------------------------------------------------

def measure_analysis(orders: int) -> dict[str, float]:
    """Distinct fits per second (one core) of the experiment at f = 0.1, K = S = 100, both kinds of sets."""
    import bench_analysis

    K = bench_analysis.PAPER["sets"]
    local, synthetic, test = bench_analysis.load_data(0.1, K)
    sources = {"resampled": {c: np.stack([count_cells(s) for s in synthetic[c]]).astype(np.int32) for c in CENTRES},
               "simulated": bench_analysis.simulated_sets(local, K)}
    test_counts = count_cells(test)
    rates = {}
    for label, counts in sources.items():
        engine = PartyExperiment(test_counts, bench_analysis.PAPER["draws"])
        engine.run(count_cells(local[CENTRES[0]]), np.stack([counts[c] for c in CENTRES[1:]])[:, :2],
                   random_orders(15, 1, np.random.default_rng(0)), most_frequent_levels(local[CENTRES[0]]),
                   np.random.default_rng(0))  # compile / cache load outside the timing
        seconds = float("inf")
        for _ in range(3):  # the fastest of three passes (the machine is shared), as bench_analysis.py
            started, fits = time.perf_counter(), 0
            for index, party in enumerate(CENTRES):
                rest = [c for c in CENTRES if c != party]
                run = engine.run(count_cells(local[party]), np.stack([counts[c] for c in rest]),
                                 random_orders(len(rest), orders, np.random.default_rng([15, index])),
                                 most_frequent_levels(local[party]), np.random.default_rng([16, index]))
                fits += run.summary.fits
            seconds = min(seconds, time.perf_counter() - started)
        rates[label] = fits / seconds
        print(f"  {label:9s} synthetic sets: {fits:,} distinct fits in {fits / rates[label]:.1f} s = {rates[label]:,.0f} fits/s "
              f"on one core ({load()})")
    return rates


# -- figures ----------------------------------------------------------------------------

def measure_figures(settings_count: int) -> tuple[float, float]:
    """(fixed seconds per setting, seconds per ll.parquet row) of the paper-scale figure jobs,
    from fabricated files of one and of two seeds (a line through the two timings)."""
    import figures_paper_scale as F
    import pyarrow as pa
    import pyarrow.parquet as pq

    from synthshare.figures.claims import gain_saturates_after_five, most_parties_benefit
    from synthshare.figures.output import save_figure
    from synthshare.figures.paper import party_comparison, steps_figure

    points = []
    for seeds in (1, 2):
        F.SEEDS = seeds
        with tempfile.TemporaryDirectory() as workdir:
            workdir = Path(workdir)
            ll, reference = workdir / "ll.parquet", workdir / "reference.parquet"
            rows = F.fabricate(ll)
            pq.write_table(pa.table({"evaluation": ["global_test"], "ll": [-0.50]}), reference)
            settings = {"scenario": "centres", "parties": list(CENTRES), "epsilon": 1.0, "fraction": 0.1}
            claims = {**settings, "fractions": [0.1], "epsilons": [1.0], "skews": [], "supplement_epsilon": None,
                      "fraction_party": "Newcastle", "fraction_party_name": "Newcastle"}
            started = time.perf_counter()
            for result in (party_comparison(ll, reference, {**settings, "full_figure": "fig_s3"}, "fig1"),
                           steps_figure(ll, reference, {**settings, "full_figure": "fig_s4"}, "fig2")):
                for name, figure in result.figures.items():
                    save_figure(figure, workdir / f"{name}.pdf", workdir / f"{name}.png")
            most_parties_benefit(ll, claims)
            gain_saturates_after_five(ll, claims)
            points.append((rows, time.perf_counter() - started))
    (r1, t1), (r2, t2) = points
    per_row = max(0.0, (t2 - t1) / (r2 - r1))
    fixed = max(0.0, t1 - per_row * r1)
    print(f"  Figs 1/S3, 2/S4 and two claims: {t1:.1f} s on {r1:,} rows, {t2:.1f} s on {r2:,} rows "
          f"-> {fixed:.1f} s per setting + {per_row * 1e9:.0f} ns per row ({settings_count} settings)")
    return fixed, per_row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default=str(REPO / "config/paper.yaml"))
    parser.add_argument("--epochs", type=int, default=30, help="epochs of each measured generator run (100 steps each)")
    parser.add_argument("--analysis-orders", type=int, default=1)
    parser.add_argument("--skip-figures", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    config = yaml.safe_load(Path(args.configfile).read_text())
    counted = count_grid(config)
    print(f"{load()}; grid of {args.configfile}:")
    print(f"  {counted['generator_jobs']} generator jobs = {counted['party_fits']:,} party fits x {counted['steps']:,} steps; "
          f"shapes {', '.join(f'{s} f={f:g} x{n}' for (s, f), n in sorted(counted['shapes'].items()))}")
    print(f"  {counted['analysis_jobs']} analysis jobs = {counted['fits']:,.0f} fits, {counted['distinct']:,.0f} distinct; "
          f"{counted['rows']:,.0f} ll.parquet rows")

    print("generator (one thread, the workflow's fit path):")
    measured = measure_generator(config, counted["shapes"], args.epochs, counted["steps"])
    train, pooled = training_sizes(config)
    generator = generator_seconds(counted, measured, config, train, pooled)
    print("analysis (one thread, compiled GLM kernel):")
    analysis_start = process_start_seconds(ANALYSIS_START)
    print(f"  a job process's start (imports, the kernel from numba's cache, a first fit): {analysis_start:.1f} s per job")
    rates = measure_analysis(args.analysis_orders)
    figure_seconds = None
    if not args.skip_figures:
        print("figures (one thread):")
        fixed, per_row = measure_figures(counted["generator_jobs"] // len(config["seeds"]) + 1)
        figure_seconds = fixed * (counted["generator_jobs"] // len(config["seeds"]) + 1) + per_row * counted["rows"]

    cores = 2
    total_generator = sum(generator.values())
    print(f"projection, paper grid, {cores} one-thread jobs at a time on {cores} cores ({load()}):")
    print(f"  generator: {total_generator / cores / 3600:6.2f} h  (steps {generator['steps'] / cores / 3600:.2f} h, compile "
          f"{generator['compile'] / cores / 3600:.2f} h, process starts {generator['start'] / cores / 3600:.2f} h, σ calibration {generator['sigma'] / cores / 3600:.2f} h, sampling "
          f"{generator['sampling'] / cores / 3600:.2f} h)")
    analysis = {label: counted["distinct"] / rate + counted["analysis_jobs"] * analysis_start for label, rate in rates.items()}
    for label, seconds in analysis.items():
        print(f"  analysis [{label} sets]: {seconds / cores / 3600:6.2f} h  ({counted['distinct']:,.0f} distinct fits at {rates[label]:,.0f}/s, "
              f"{counted['analysis_jobs']} process starts)")
    if figure_seconds is not None:
        print(f"  figures: {figure_seconds / cores / 3600:6.2f} h  ({counted['rows']:,.0f} rows)")
    for label, seconds in analysis.items():
        total = total_generator + seconds + (figure_seconds or 0.0)
        print(f"  TOTAL [{label} sets]: {total / cores / 3600:.2f} h (goal <= 3 h): generator "
              f"{total_generator / total:.0%}, analysis {seconds / total:.0%}, figures {(figure_seconds or 0.0) / total:.0%}")
    print(f"(benchmark ran {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
