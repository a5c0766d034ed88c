"""Rule audit_shadows: every shadow fit of one audited party and arm, scored by the attacks.

input {local (the party's local data, Parquet), test (the test split)}; params {party,
scenario, fraction, arm (``eps<ε>`` or ``control``), settings (the config's ``generator``
mapping), audit (the config's ``audit`` mapping), centres, fractions}; output {scores
(Parquet: one row per shadow fit, synthshare.audit.scores), anonymeter (CSV: the three
risks of the first in-fit's first synthetic set), accounting (JSON: the arm's ledger
record, the same for every shadow fit but N)}. Standalone: ``python
scripts/audit_shadows.py --configfile config/smoke.yaml audit_shadows party=Barts
fraction=0.5 arm=control``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

import math

import pandas as pd

from synthshare.atomic import write_csv, write_json, write_parquet
from synthshare.audit.anonymeter_risks import anonymeter_risks
from synthshare.audit.scores import score_outputs
from synthshare.audit.settings import audit_settings
from synthshare.audit.settings import arm_epsilon
from synthshare.audit.shadow import control_settings, fit_shadows, shadow_datasets
from synthshare.audit.targets import record_codes, select_targets
from synthshare.errors import InputError
from synthshare.generator.fit import PartyData
from synthshare.generator.privacy_level import NO_PRIVACY
from synthshare.generator.sampling import SET_COLUMN
from synthshare.generator.settings import GeneratorSettings
from synthshare.naming import format_number
from synthshare.runlog import logged_run
from synthshare.variables import CENTRE_COLUMN


def _read(path: str, what: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read {what}: {error}") from None


def main(snakemake) -> None:
    params, output = snakemake.params, snakemake.output
    with logged_run(snakemake.log[0]) as log:
        audit = audit_settings(dict(params.audit), list(params.centres), list(params.fractions))
        audited = audit.party(f"{params.party}_f{format_number(float(params.fraction))}")
        epsilon = arm_epsilon(params.arm)
        settings = GeneratorSettings.from_config(dict(params.settings))
        if epsilon == NO_PRIVACY:
            settings = control_settings(settings, audit.control_epochs)
        frame = _read(snakemake.input.local, f"local data of party {audited.party!r}")
        data = PartyData.from_frame(audited.party, frame, snakemake.input.local)
        records = record_codes(frame, snakemake.input.local)
        chosen = select_targets(records, audited.vulnerable, audited.typical)
        groups = {int(t): "vulnerable" for t in chosen.vulnerable} | {int(t): "typical" for t in chosen.typical}
        shadows = shadow_datasets(data, list(groups), audited.fits_per_target)
        log.info("%s f = %g, arm %s: N = %d, %d targets (%d vulnerable, rows %s), %d shadow fits, %d epochs (T = %d)",
                 audited.party, audited.fraction, params.arm, data.num_records, len(groups), audited.vulnerable,
                 list(chosen.vulnerable), len(shadows), settings.epochs, settings.steps)
        outputs = fit_shadows(shadows, params.scenario, audited.fraction, epsilon, audit.seed, settings)
        scores = score_outputs(records, groups, chosen.scores, shadows, outputs, settings.synthetic_sets,
                               audit.draws, audit.seed)
        record = dict(outputs[0].record)
        scores.insert(0, "party", audited.party)
        scores.insert(1, "fraction", audited.fraction)
        scores.insert(2, "arm", params.arm)
        scores.insert(3, "epsilon", record["epsilon_fourier"])
        scores.insert(4, "delta", record["delta"])
        write_parquet(scores, output.scores)

        # anonymeter on a release: the first in-fit trains on the party's whole data.
        first_in = next(i for i, s in enumerate(shadows) if s.member)
        synthetic = outputs[first_in].synthetic
        released = synthetic[synthetic[SET_COLUMN] == 0]
        test = _read(snakemake.input.test, "the test split")
        control = test[test[CENTRE_COLUMN] == audited.party]
        if len(control) < 2:
            raise InputError(f"{snakemake.input.test}: {len(control)} held-out records of {audited.party!r}; "
                             "anonymeter needs a control set")
        risks = anonymeter_risks(frame, released, control, audit.anonymeter_attacks, audit.level, audit.seed)
        risks.insert(0, "party", audited.party)
        risks.insert(1, "fraction", audited.fraction)
        risks.insert(2, "arm", params.arm)
        risks.insert(3, "epsilon", record["epsilon_fourier"])
        write_csv(risks, output.anonymeter, float_format="%.6g")
        record["party"] = audited.party
        record["shadow_fits"] = len(shadows)
        # JSON has no infinity: the control's ε (no privacy) is written as null.
        write_json({k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in record.items()},
                   output.accounting)
        for row in risks.itertuples():
            log.info("anonymeter %s: risk %.3f [%.3f, %.3f] (%d attacks)", row.evaluator, row.risk, row.risk_low,
                     row.risk_high, row.attacks)


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
