"""Shadow generators: fits of the audited party's data with and without each target.

The DP game of docs/audit.md (add/remove, the ledger's relation): for target record t
of the party's local data D (N records), an *in* fit trains on D and an *out* fit on
D \\ {t} (N − 1 records, the other rows in their order). Every shadow fit is its own
"party" of :func:`synthshare.generator.job.fit_and_sample` — the release's fit
(:func:`~synthshare.generator.fit.fit_parties`, all shadow fits of one arm in one
compiled program), sampling (K synthetic sets) and accounting (σ from the Fourier
accountant, the ledger record) — so nothing here reimplements the generator.

Each (target, side, replicate r) gets its own independent fit: in-fits are not shared
between targets, so the scores pooled over targets are independent trials (what the
Clopper–Pearson intervals of the ε lower bound assume). Randomness: a shadow fit's
training stream is ``party_key(seed, scenario, name)`` and its synthetic sets'
``sampling_key(seed, scenario, name)`` with the name
``<party>.t<row>.<in|out>.r<r>`` and ``scenario`` = ``audit/<scenario>/f<f>`` (no arm:
the DP arms and the control share their random streams, common random numbers as the
release's ε grid), all from the config's ``audit.seed``.

Arms: the configured DP setting per ε (the release's generator settings), and the
non-DP control, ε = :data:`~synthshare.generator.privacy_level.NO_PRIVACY`: σ = 0 and clipping
off through the same code (``fit_and_sample``), at the release's settings unless the
config sets ``audit.control_epochs``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from synthshare.errors import InputError
from synthshare.generator.fit import PartyData
from synthshare.generator.job import PartyOutputs, fit_and_sample
from synthshare.generator.privacy_level import NO_PRIVACY
from synthshare.generator.settings import GeneratorSettings
from synthshare.naming import format_number

def shadow_scenario(scenario: str, fraction: float) -> str:
    """The ``scenario`` string of the shadow fits' random streams."""
    return f"audit/{scenario}/f{format_number(float(fraction))}"


@dataclass(frozen=True)
class Shadow:
    """One shadow fit's data set."""

    target: int
    """Row of the target in the party's local data."""
    member: bool
    """True: the target is in the training data (D); False: D without it."""
    replicate: int
    data: PartyData


def shadow_name(party: str, target: int, member: bool, replicate: int) -> str:
    return f"{party}.t{int(target)}.{'in' if member else 'out'}.r{int(replicate)}"


def without_row(data: PartyData, row: int, name: str) -> PartyData:
    """``data`` without record ``row`` (the others in their order)."""
    if not 0 <= row < data.num_records:
        raise InputError(f"audit target row {row}: party {data.name!r} has {data.num_records} records")
    return PartyData(name=name, codes=np.delete(data.codes, row, axis=0), outcome=np.delete(data.outcome, row, axis=0))


def shadow_datasets(data: PartyData, targets: Sequence[int], fits_per_target: int) -> list[Shadow]:
    """For every target, ``fits_per_target`` in-fits (D) and as many out-fits (D minus the target).

    Order: target by target, then replicate, in before out.
    """
    if fits_per_target < 1:
        raise InputError(f"audit fits_per_target: {fits_per_target!r}; expected >= 1")
    if len(set(int(t) for t in targets)) != len(targets):
        raise InputError(f"audit targets: repeated rows in {list(targets)}")
    shadows = []
    for target in targets:
        for r in range(fits_per_target):
            name_in = shadow_name(data.name, target, True, r)
            shadows.append(Shadow(int(target), True, r, replace(data, name=name_in)))
            shadows.append(Shadow(int(target), False, r, without_row(data, int(target), shadow_name(data.name, target, False, r))))
    return shadows


def control_settings(settings: GeneratorSettings, epochs: int | None) -> GeneratorSettings:
    """The control arm's generator settings: the release's, with ``epochs`` if given
    (σ = 0 and no clipping come from ε = NO_PRIVACY in ``fit_and_sample``)."""
    return settings if epochs is None else replace(settings, epochs=int(epochs))


def fit_shadows(
    shadows: Sequence[Shadow],
    scenario: str,
    fraction: float,
    epsilon: float,
    seed: int,
    settings: GeneratorSettings,
    on_chunk: Callable[[int, np.ndarray], None] | None = None,
) -> list[PartyOutputs]:
    """Fit, sample and account every shadow of one arm (ε, or NO_PRIVACY) in one job.

    Returns ``fit_and_sample``'s outputs in the order of ``shadows``.
    """
    return fit_and_sample(
        [s.data for s in shadows], shadow_scenario(scenario, fraction), epsilon, fraction, seed, settings,
        on_chunk=on_chunk,
    )
