"""Every path a run writes, under ``results/<run>/``: the one place that spells them.

The workflow's rules, the figures catalogue and the tests ask :class:`RunPaths`;
nothing else builds a results path. Each method takes concrete values (numbers are
written with :func:`synthshare.naming.format_number`, so ``0.10`` and ``0.1`` name one
file) or Snakemake wildcard placeholders such as ``"{epsilon}"``, which pass through
unchanged: the same method gives a rule's output pattern and a target's path.

Layout (``docs/architecture.md`` has the file contracts)::

    data/        cohort.parquet, truth.json, cohort_flow.csv, train.parquet, test.parquet,
                 split_report.json, centres.csv, local/<scenario>/f<f>/<party>.parquet,
                 skew/local_s<s>.parquet, skew/eval.parquet
    generator/   <scenario>/eps<ε>/f<f>/seed<s>/<party>/{synthetic.parquet, params.npz,
                 elbo.csv, privacy.json}
    privacy/     ledger.csv
    analysis/    <scenario>/eps<ε>/f<f>/seed<s>/{ll,coef,intervals,selection}.parquet,
                 skew/eps<ε>/seed<s>/{ll,coef,intervals,selection}.parquet, ll.parquet,
                 coef.parquet, intervals.parquet, selection.parquet,
                 reference.parquet, reference_coef.parquet
    audit/       <party>_f<f>/<arm>/{scores.parquet, anonymeter.csv, accounting.json},
                 summary.csv, per_target.csv, outliers.csv, roc.parquet, anonymeter.csv,
                 claims.csv   (only when the config has an ``audit`` section)
    figures/     <name>.{pdf,png};  tables/<name>.csv;  claims.csv;  report.html
    logs/, benchmarks/   one file per job
"""

from __future__ import annotations

from dataclasses import dataclass

from synthshare.naming import format_number

GENERATOR_FILES = {
    "synthetic": "synthetic.parquet",
    "params": "params.npz",
    "elbo": "elbo.csv",
    "privacy": "privacy.json",
}
"""What one generator fit writes, by kind: K synthetic sets, the variational
parameters, the ELBO trace and the privacy record."""


ANALYSIS_JOB_FILES = ("ll", "coef", "intervals", "selection")
"""What one analysis job writes (``tables``: ``LL_SCHEMA``, ``COEF_SCHEMA``,
``INTERVALS_SCHEMA``, ``SELECTION_SCHEMA``), as names of ``<name>.parquet``."""


def _value(value: float | int | str) -> str:
    """A number as written in paths; a string (a wildcard placeholder or a wildcard's
    value, already written so) unchanged."""
    return value if isinstance(value, str) else format_number(float(value))


@dataclass(frozen=True)
class RunPaths:
    """The paths of one run, ``results/<run>/...``."""

    run: str

    @property
    def root(self) -> str:
        """``results/<run>``."""
        return f"results/{self.run}"

    # Data stage.
    @property
    def cohort(self) -> str:
        return f"{self.root}/data/cohort.parquet"

    @property
    def truth(self) -> str:
        return f"{self.root}/data/truth.json"

    @property
    def cohort_flow(self) -> str:
        return f"{self.root}/data/cohort_flow.csv"

    @property
    def train(self) -> str:
        return f"{self.root}/data/train.parquet"

    @property
    def test(self) -> str:
        return f"{self.root}/data/test.parquet"

    @property
    def split_report(self) -> str:
        return f"{self.root}/data/split_report.json"

    @property
    def centres(self) -> str:
        return f"{self.root}/data/centres.csv"

    def local(self, scenario: str, fraction: float | str, party: str) -> str:
        """A party's local data at fraction f."""
        return f"{self.root}/data/local/{scenario}/f{_value(fraction)}/{party}.parquet"

    def skew_local(self, skew: float | str) -> str:
        """The skewed party's local data at skew fraction s."""
        return f"{self.root}/data/skew/local_s{_value(skew)}.parquet"

    @property
    def skew_eval(self) -> str:
        """The skewed party's evaluation set (half B's subgroup)."""
        return f"{self.root}/data/skew/eval.parquet"

    # Generator stage.
    def generator_dir(self, scenario: str, epsilon: float | str, fraction: float | str, seed: int | str, party: str) -> str:
        return f"{self.root}/generator/{scenario}/eps{_value(epsilon)}/f{_value(fraction)}/seed{seed}/{party}"

    def generator_file(self, kind: str, scenario: str, epsilon: float | str, fraction: float | str,
                       seed: int | str, party: str) -> str:
        """One file of a generator fit; ``kind`` is a key of :data:`GENERATOR_FILES`."""
        return f"{self.generator_dir(scenario, epsilon, fraction, seed, party)}/{GENERATOR_FILES[kind]}"

    def noise(self, epsilon: float | str) -> str:
        """σ of one ε, calibrated once for every generator job of that ε
        (:mod:`synthshare.generator.noise`)."""
        return f"{self.root}/privacy/noise/eps{_value(epsilon)}.json"

    @property
    def ledger(self) -> str:
        return f"{self.root}/privacy/ledger.csv"

    # Analysis stage.
    def analysis_job(self, scenario: str, epsilon: float | str, fraction: float | str, seed: int | str, name: str) -> str:
        """``<name>.parquet`` of a scenario job, ``name`` one of :data:`ANALYSIS_JOB_FILES`."""
        return f"{self.root}/analysis/{scenario}/eps{_value(epsilon)}/f{_value(fraction)}/seed{seed}/{name}.parquet"

    def skew_job(self, epsilon: float | str, seed: int | str, name: str) -> str:
        """``<name>.parquet`` of a skewed-party job, ``name`` one of :data:`ANALYSIS_JOB_FILES`."""
        return f"{self.root}/analysis/skew/eps{_value(epsilon)}/seed{seed}/{name}.parquet"

    @property
    def ll(self) -> str:
        """Every job's log-likelihoods, stacked."""
        return f"{self.root}/analysis/ll.parquet"

    @property
    def coef(self) -> str:
        """Every job's pooled coefficients, stacked."""
        return f"{self.root}/analysis/coef.parquet"

    @property
    def intervals(self) -> str:
        """Every job's Rubin pieces per order and step (``tables.INTERVALS_SCHEMA``), stacked."""
        return f"{self.root}/analysis/intervals.parquet"

    @property
    def selection(self) -> str:
        """Every job's partner-selection rounds (``tables.SELECTION_SCHEMA``), stacked."""
        return f"{self.root}/analysis/selection.parquet"

    @property
    def reference(self) -> str:
        return f"{self.root}/analysis/reference.parquet"

    @property
    def reference_coef(self) -> str:
        return f"{self.root}/analysis/reference_coef.parquet"

    # Audit stage (issue 13; synthshare.audit).
    def audit_job_file(self, name: str, party: str, fraction: float | str, arm: str) -> str:
        """``scores.parquet``, ``anonymeter.csv`` or ``accounting.json`` (``name`` = the file
        name) of one audited party and arm (``eps<ε>`` or ``control``)."""
        return f"{self.root}/audit/{party}_f{_value(fraction)}/{arm}/{name}"

    def audit_table(self, name: str) -> str:
        """A table of the whole audit: ``summary.csv``, ``per_target.csv``, ``outliers.csv``,
        ``roc.parquet``, ``anonymeter.csv`` or ``claims.csv``."""
        return f"{self.root}/audit/{name}"

    # Figures stage.
    def figure(self, name: str, extension: str) -> str:
        """``figures/<name>.<extension>`` (``pdf`` or ``png``)."""
        return f"{self.root}/figures/{name}.{extension}"

    def table(self, name: str) -> str:
        return f"{self.root}/tables/{name}.csv"

    @property
    def claims(self) -> str:
        return f"{self.root}/claims.csv"

    @property
    def report(self) -> str:
        return f"{self.root}/report.html"

    # Per job: logs and benchmarks.
    @staticmethod
    def job_name(scenario: str, epsilon: float | str, fraction: float | str | None, seed: int | str) -> str:
        """``<scenario>_eps<ε>[_f<f>]_seed<s>``: how logs and benchmarks name a grid job."""
        middle = "" if fraction is None else f"_f{_value(fraction)}"
        return f"{scenario}_eps{_value(epsilon)}{middle}_seed{seed}"

    def log(self, name: str, stage: str | None = None) -> str:
        """``logs/[<stage>/]<name>.log``."""
        return f"{self.root}/logs/{stage + '/' if stage else ''}{name}.log"

    def benchmark(self, name: str, stage: str) -> str:
        """``benchmarks/<stage>/<name>.tsv`` (Snakemake's ``benchmark:`` files)."""
        return f"{self.root}/benchmarks/{stage}/{name}.tsv"
