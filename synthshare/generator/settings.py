"""The ``generator:`` section of the config, checked and typed.

Defaults are the paper's settings (method.md, "Generative model"). T = epochs / q steps:
one epoch is round(1/q) steps (q = 0.01: 100 steps, 4,000 epochs: 400,000 steps).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from synthshare.errors import InputError
from synthshare.generator.model import ModelSettings

VARIANTS = ("aligned", "stock")


@dataclass(frozen=True)
class GeneratorSettings:
    components: int = 16
    """Mixture components K."""
    delta: float = 1e-6
    """δ given to the accountant (the ledger adds the truncation term, ``subsampling.overflow_delta``)."""
    clip: float = 2.0
    """Per-example gradient clipping threshold C."""
    sampling_rate: float = 0.01
    """Poisson subsampling rate q (nominal; see ``subsampling.effective_rate``)."""
    epochs: int = 4000
    """Passes over the data in expectation; T = epochs · round(1/q) steps."""
    learning_rate: float = 1e-3
    """Adam step size."""
    init_scale: float = 0.1
    """Initial standard deviation of the AutoDiagonalNormal guide."""
    variant: str = "aligned"
    """``aligned`` (DPVIm aligned gradients, as the authors) or ``stock`` (d3p's DPSVI)."""
    synthetic_sets: int = 100
    """K synthetic data sets per model, one posterior draw each."""
    dirichlet_concentration: float = 1.0
    """α of the Dirichlet (and Beta) priors."""
    coef_prior_scale: float = 1.0
    """Standard deviation of the Normal prior on the regression coefficients."""
    overflow_delta: float = 1e-8
    """Budget for the δ charged to truncation (overflowing batches, exhausted bit streams); sets the batch capacity."""

    def __post_init__(self) -> None:
        def fail(key: str, expected: str) -> None:
            raise InputError(f"generator.{key}: {getattr(self, key)!r}; expected {expected}")

        for key in ("components", "epochs", "synthetic_sets"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                fail(key, "a positive integer")
        for key in ("clip", "learning_rate", "init_scale", "dirichlet_concentration", "coef_prior_scale"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
                fail(key, "a finite number > 0")
        if not 0 < self.delta < 1:
            fail("delta", "0 < delta < 1")
        if not 0 < self.sampling_rate <= 1:
            fail("sampling_rate", "0 < q <= 1")
        if not 0 < self.overflow_delta < 1:
            fail("overflow_delta", "0 < overflow_delta < 1")
        if self.variant not in VARIANTS:
            fail("variant", f"one of {list(VARIANTS)}")

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> "GeneratorSettings":
        """From the config's ``generator`` mapping; unknown keys are an error (typos)."""
        known = {f.name for f in fields(cls)}
        for key in section:
            if key not in known:
                raise InputError(f"generator.{key}: unknown key; expected keys {sorted(known)}")
        values = dict(section)
        for key in ("components", "epochs", "synthetic_sets"):
            if isinstance(values.get(key), float) and float(values[key]).is_integer():
                values[key] = int(values[key])
        return cls(**values)

    @property
    def steps_per_epoch(self) -> int:
        """round(1/q), at least 1."""
        return max(1, round(1.0 / self.sampling_rate))

    @property
    def steps(self) -> int:
        """T, the number of DP-SGD steps."""
        return self.epochs * self.steps_per_epoch

    @property
    def model(self) -> ModelSettings:
        return ModelSettings(
            components=self.components,
            dirichlet_concentration=float(self.dirichlet_concentration),
            coef_prior_scale=float(self.coef_prior_scale),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
