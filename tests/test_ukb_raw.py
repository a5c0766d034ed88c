"""The study's cohort from a raw UK Biobank extract (synthshare.cohort.ukb), on a fake extract.

The fake extract (tests/fake_ukb.py) is written in UK Biobank's exact formats. Checks:
hand-made participants against values worked out by hand; the whole cohort and flow
table against a row-by-row reference written independently of the library (its own
code tables, plain loops); the flow table's arithmetic; every kind of bad input; the
same bytes twice; and the workflow's data stage running on the result.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from synthshare.cohort.file import read_cohort_file
from synthshare.errors import InputError
from synthshare.parties.split import split_train_test
from synthshare.cohort.ukb import FLOW_COLUMNS, build_cohort, select_cohort
from synthshare.variables import CENTRES, COLUMNS, FEATURE_LEVELS

sys.path.insert(0, str(Path(__file__).parent))
from fake_ukb import COLUMNS as RAW_COLUMNS  # noqa: E402
from fake_ukb import WITHDRAWN, FakeUKB, write_fake_ukb  # noqa: E402
from tests.conftest import copy_workflow  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> FakeUKB:
    return write_fake_ukb(tmp_path_factory.mktemp("ukb"))


@pytest.fixture(scope="module")
def selection(fake):
    return select_cohort(fake.main, fake.covid_tests, fake.withdrawals)


# --- hand-checked participants (fake_ukb.HAND_ROWS) ---------------------------------

KEPT = {
    # age 40; qualifications {3, 2} -> 2; Townsend -9 is the lowest -> 1st; the positive
    # test on 20/03/2021 is after the cutoff, so only the negative one counts.
    1000001: ("[40, 45)", "Female", "White British", "1st", "A levels/AS levels or equivalent", "Leeds", False),
    # ethnicity 3 "Asian or Asian British"; -7 None of the above; positive in Scotland's file.
    1000002: ("[65, 70)", "Male", "South Asian", "4th", "None of the above", "Barts", True),
    # ethnicity 1 "White" -> White Other; {6, 4, 5} -> 4 CSEs; never-drinker with 3731
    # blank, housing -7 and employment -7 are kept (the authors' rules).
    1000003: ("[70, 200)", "Female", "White Other", "1st", "O levels/GCSEs/CSEs", "Newcastle", True),
    # died 2018-02-01, after the 2018-01-31 cutoff: kept; 2003 White and Asian -> Mixed.
    1000006: ("[55, 60)", "Male", "Mixed", "1st", "Others", "Sheffield", False),
}
REMOVED = {
    1000004: "centre_not_in_study",  # Cardiff, not configured
    1000005: "died",  # died on 2018-01-31 exactly
    1000007: "withdrawn",
    1000008: "pilot_centre",
    1000009: "missing_age_group",  # age 39
    1000010: "missing_housing",  # undeclared housing code -1
    1000011: "missing_urban_rural",  # 9 postcode not linkable
    1000012: "untested",  # tests on 15/03/2021 and later only
    1000013: "missing_education",  # -3 prefer not to answer
    1000014: "missing_ethnicity",  # also housing -1: counted once, at the first step
    1000015: "missing_deprivation",  # Townsend blank
    1000016: "withdrawn",  # also the pilot centre: counted at the first step
    1000017: "missing_household_size",
    1000018: "missing_alcohol",
}


def _participant(selection, eid: int) -> pd.Series:
    rows = selection.participants.loc[selection.participants["eid"] == eid]
    assert len(rows) == 1
    return rows.iloc[0]


def test_hand_checked_participants_are_kept_with_the_expected_values(selection):
    for eid, expected in KEPT.items():
        row = _participant(selection, eid)
        assert row["removed_at"] is None, (eid, row["removed_at"])
        assert tuple(row[list(COLUMNS)]) == expected, eid


def test_hand_checked_participants_are_removed_at_the_expected_step(selection):
    for eid, step in REMOVED.items():
        assert _participant(selection, eid)["removed_at"] == step, eid


def test_cohort_has_the_study_columns_levels_and_order(selection, fake):
    cohort = selection.cohort
    assert list(cohort.columns) == list(COLUMNS)
    for feature, levels in FEATURE_LEVELS.items():
        assert set(cohort[feature]) <= set(levels), feature
        assert cohort[feature].dtype == object
    assert set(cohort["assessment_center"]) <= set(CENTRES)
    assert cohort["covid_test_result"].dtype == bool
    kept = selection.participants.loc[selection.participants["removed_at"].isna()]
    assert kept["eid"].is_monotonic_increasing and kept["eid"].is_unique
    assert len(kept) == len(cohort)
    pd.testing.assert_frame_equal(cohort, kept[list(COLUMNS)].reset_index(drop=True).astype(cohort.dtypes.to_dict()))
    # the file is shuffled: sorting happened
    assert len(selection.participants) == len(fake.rows)


def test_build_cohort_returns_the_selection_cohort_and_flow(fake, selection):
    cohort, flow = build_cohort(fake.main, fake.covid_tests, fake.withdrawals)
    pd.testing.assert_frame_equal(cohort, selection.cohort)
    pd.testing.assert_frame_equal(flow, selection.flow)


# --- the flow table -----------------------------------------------------------------


def test_flow_table_arithmetic(selection, fake):
    flow = selection.flow
    assert tuple(flow.columns) == FLOW_COLUMNS
    filters = flow.loc[flow["step"] != "records_out"].reset_index(drop=True)
    out = flow.loc[flow["step"] == "records_out"]
    assert filters.loc[0, "step"] == "records_in"
    assert filters.loc[0, "remaining"] == len(fake.rows)
    assert pd.isna(filters.loc[0, "removed"])
    for i in range(1, len(filters)):
        assert filters.loc[i, "remaining"] == filters.loc[i - 1, "remaining"] - filters.loc[i, "removed"], filters.loc[i, "step"]
    assert filters["step"].tolist()[1:4] == ["withdrawn", "pilot_centre", "died"]
    assert filters["step"].tolist()[-2:] == ["untested", "centre_not_in_study"]
    assert filters.iloc[-1]["remaining"] == len(selection.cohort) == out["remaining"].sum()
    assert out["centre"].tolist() == list(CENTRES)
    counts = selection.cohort["assessment_center"].value_counts()
    assert [counts.get(c, 0) for c in CENTRES] == out["remaining"].tolist()
    # every removal is attributed once, to the step that reports it
    removed = selection.participants["removed_at"].value_counts()
    for _, row in filters.iloc[1:].iterrows():
        assert removed.get(row["step"], 0) == row["removed"], row["step"]
    # the designed exclusions: withdrawn eids present in the extract, the pilot, the dead
    assert filters.set_index("step").loc["withdrawn", "removed"] == sum(e in fake.rows for e in WITHDRAWN)


def test_flow_csv_layout(tmp_path, selection):
    from synthshare.atomic import write_csv

    write_csv(selection.flow, tmp_path / "flow.csv")
    lines = (tmp_path / "flow.csv").read_text().splitlines()
    assert lines[0] == "step,description,fields,centre,removed,remaining"
    assert lines[1].startswith("records_in,Records in the main extract,,,,")
    assert lines[-1].startswith("records_out,Records out,,Stoke,,")


# --- an independent row-by-row reference --------------------------------------------

ETHNICITY = {
    "1001": "White British", "1002": "White Irish", "1": "White Other", "1003": "White Other",
    "2": "Mixed", "2001": "Mixed", "2002": "Mixed", "2003": "Mixed", "2004": "Mixed",
    "3": "South Asian", "3001": "South Asian", "3002": "South Asian", "3003": "South Asian", "3004": "South Asian",
    "4": "Black", "4001": "Black", "4002": "Black", "4003": "Black", "5": "Chinese", "6": "Other",
}
EDUCATION = {
    1: "College or University degree", 2: "A levels/AS levels or equivalent", 3: "O levels/GCSEs/CSEs",
    4: "O levels/GCSEs/CSEs", 5: "Others", 6: "Others", -7: "None of the above",
}
CENTRE_NAMES = {
    "11012": "Barts", "11021": "Birmingham", "11011": "Bristol", "11008": "Bury", "11020": "Croydon",
    "11018": "Hounslow", "11010": "Leeds", "11016": "Liverpool", "11001": "Manchester",
    "11017": "Middlesborough", "11009": "Newcastle", "11013": "Nottingham", "11002": "Oxford",
    "11007": "Reading", "11014": "Sheffield", "11006": "Stoke", "11003": "Cardiff", "11022": "Swansea",
    "11005": "Edinburgh", "11004": "Glasgow", "10003": "Stockport (pilot)",
}
# field -> codes that count as missing (besides a blank); "" alone for continuous fields
MISSING_CODES = {
    "1647": {"-1", "-3"}, "2188": {"-1", "-3"}, "2178": {"-1", "-3"}, "20116": {"-3"}, "21001": set(),
    "1558": {"-3"}, "6142": {"-3"}, "680": {"-1", "-3"}, "20118": {"9"}, "709": {"-1", "-3"},
}
COVARIATE_STEPS = [("country_of_birth", "1647"), ("longstanding_illness", "2188"), ("overall_health", "2178"),
                   ("smoking", "20116"), ("bmi", "21001"), ("alcohol", "1558"), ("employment", "6142"),
                   ("housing", "680"), ("urban_rural", "20118"), ("household_size", "709")]


def reference_cohort(fake: FakeUKB, cutoff: date, extra: tuple[str, ...] = ()) -> tuple[pd.DataFrame, dict[str, int]]:
    """The cohort (sorted by eid, COLUMNS) and the removed count of each step, by plain loops."""
    removed: dict[str, int] = {}
    alive = sorted(fake.rows)

    def drop(step, fails):
        nonlocal alive
        gone = [e for e in alive if fails(e, fake.rows[e])]
        removed[step] = len(gone)
        alive = [e for e in alive if e not in set(gone)]

    drop("withdrawn", lambda e, r: e in WITHDRAWN)
    drop("pilot_centre", lambda e, r: r["54"] == "10003")
    drop("died", lambda e, r: r["40000"] != "" and date.fromisoformat(r["40000"]) <= date(2018, 1, 31))
    townsend = [float(fake.rows[e]["189"]) for e in alive if fake.rows[e]["189"] != ""]
    q1, q2, q3 = np.quantile(townsend, [0.25, 0.5, 0.75])

    def derive(r):
        age = int(r["21022"])
        groups = [(40, 45), (45, 50), (50, 55), (55, 60), (60, 65), (65, 70), (70, 200)]
        age_group = next((f"[{lo}, {hi})" for lo, hi in groups if lo <= age < hi), None)
        t = float(r["189"]) if r["189"] != "" else None
        deprivation = None if t is None else "1st" if t <= q1 else "2nd" if t <= q2 else "3rd" if t <= q3 else "4th"
        codes = [int(c) for c in r["6138"] if c != ""]
        education = EDUCATION.get(min(codes)) if codes else None
        return {"age_group": age_group, "sex": {"0": "Female", "1": "Male"}[r["31"]], "ethnicity": ETHNICITY.get(r["21000"]),
                "deprivation": deprivation, "education": education, "assessment_center": CENTRE_NAMES[r["54"]]}

    derived = {e: derive(fake.rows[e]) for e in alive}
    for name in ("age_group", "sex", "ethnicity", "deprivation", "education", "assessment_center"):
        drop(f"missing_{name}", lambda e, r, name=name: derived[e][name] is None)
    for name, field_id in COVARIATE_STEPS:
        def fails(e, r, field_id=field_id):
            value = r[field_id][0] if isinstance(r[field_id], list) else r[field_id]
            return value == "" or value in MISSING_CODES[field_id]
        drop(f"missing_{name}", fails)
    tested: dict[int, bool] = {}
    for eid, when, result in fake.tests:
        if when < cutoff:
            tested[eid] = tested.get(eid, False) or result == 1
    drop("untested", lambda e, r: e not in tested)
    drop("centre_not_in_study", lambda e, r: derived[e]["assessment_center"] not in (*CENTRES, *extra))
    rows = [{**derived[e], "covid_test_result": tested[e]} for e in alive]
    return pd.DataFrame(rows, columns=list(COLUMNS)), removed


@pytest.mark.parametrize("cutoff, extra", [("2021-03-15", ()), ("2020-12-01", ("Cardiff", "Edinburgh"))])
def test_cohort_and_flow_match_a_row_by_row_reference(fake, cutoff, extra):
    selection = select_cohort(fake.main, fake.covid_tests, fake.withdrawals, cutoff, list(extra))
    expected, removed = reference_cohort(fake, date.fromisoformat(cutoff), extra)
    assert len(expected) > 100
    pd.testing.assert_frame_equal(selection.cohort, expected.astype(selection.cohort.dtypes.to_dict()))
    flow = selection.flow.set_index("step")
    for step, count in removed.items():
        assert flow.loc[step, "removed"] == count, step
    if extra:
        out = selection.flow.loc[selection.flow["step"] == "records_out"]
        assert out["centre"].tolist() == [*CENTRES, *extra]


def test_extra_centre_keeps_its_records(fake, selection):
    with_cardiff = select_cohort(fake.main, fake.covid_tests, fake.withdrawals, extra_centres=["Cardiff"])
    row = _participant(with_cardiff, 1000004)
    assert row["removed_at"] is None
    assert tuple(row[list(COLUMNS)]) == ("[50, 55)", "Male", "Black", "4th", "College or University degree", "Cardiff", True)
    cardiff = int((with_cardiff.cohort["assessment_center"] == "Cardiff").sum())
    assert cardiff >= 1
    assert len(with_cardiff.cohort) == len(selection.cohort) + cardiff
    last = with_cardiff.flow.iloc[-1]
    assert (last["step"], last["centre"], last["remaining"]) == ("records_out", "Cardiff", cardiff)


def test_test_cutoff_is_configurable_and_exclusive(fake):
    later = select_cohort(fake.main, fake.covid_tests, fake.withdrawals, test_cutoff="2021-03-21")
    # 1000001's positive test of 20/03/2021 now counts; 1000012's test of 15/03/2021 too
    assert _participant(later, 1000001)["covid_test_result"] is True
    assert _participant(later, 1000012)["removed_at"] is None
    same_day = select_cohort(fake.main, fake.covid_tests, fake.withdrawals, test_cutoff="2021-03-16")
    assert _participant(same_day, 1000012)["removed_at"] is None


def test_without_withdrawals_file_nobody_is_withdrawn(fake):
    selection = select_cohort(fake.main, fake.covid_tests, None)
    assert selection.flow.set_index("step").loc["withdrawn", "removed"] == 0
    assert _participant(selection, 1000007)["removed_at"] is None
    assert _participant(selection, 1000016)["removed_at"] == "pilot_centre"


# --- bad input: one line naming file, column, line and value -------------------------


def _rewrite_main(fake: FakeUKB, target: Path, edit) -> Path:
    with open(fake.main, newline="") as handle:
        rows = list(csv.reader(handle))
    rows = edit(rows)
    with open(target, "w", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return target


def _set(column: str, line: int, value: str):
    def edit(rows):
        rows[line - 1][rows[0].index(column)] = value
        return rows
    return edit


def _assert_one_line(message: str, *parts: str, fake: FakeUKB | None = None, allowed_eid: str | None = None) -> None:
    assert "\n" not in message
    for part in parts:
        assert part in message, (part, message)
    if fake is not None:  # no participant id leaks, other than the bad value itself
        leaked = [e for e in map(str, fake.rows) if e in message and e != allowed_eid]
        assert not leaked, message


def test_missing_required_column_is_named(fake, tmp_path):
    def drop_ethnicity(rows):
        i = rows[0].index("21000-0.0")
        return [r[:i] + r[i + 1:] for r in rows]
    bad = _rewrite_main(fake, tmp_path / "main.csv", drop_ethnicity)
    with pytest.raises(InputError) as error:
        build_cohort(bad, fake.covid_tests, fake.withdrawals)
    _assert_one_line(str(error.value), str(bad), "'21000-0.0'", "field 21000")


@pytest.mark.parametrize(
    "column, value, expected",
    [
        ("680-0.0", "abc", ["'abc'", "not a numeric code", "data-coding 100287"]),
        ("31-0.0", "7", ["code 7", "data-coding 9", "ukb_codings.csv"]),
        ("21000-0.0", "1.5", ["'1.5'", "not a numeric code"]),
        ("40000-0.0", "31/01/2018", ["'31/01/2018'", "not a date", "yyyy-mm-dd"]),
        ("189-0.0", "high", ["'high'", "not a number"]),
        ("709-0.0", "-9", ["code -9", "data-coding 100291"]),
        ("21022-0.0", "-1", ["'-1'", "negative"]),
        ("6138-0.3", "9", ["code 9", "data-coding 100305"]),
    ],
)
def test_bad_value_names_file_column_line_and_value(fake, tmp_path, column, value, expected):
    bad = _rewrite_main(fake, tmp_path / "main.csv", _set(column, 7, value))
    with pytest.raises(InputError) as error:
        build_cohort(bad, fake.covid_tests, fake.withdrawals)
    _assert_one_line(str(error.value), str(bad), f"column {column!r}", "line 7", *expected, fake=fake)


def test_duplicate_eid_is_an_error(fake, tmp_path):
    def duplicate(rows):
        rows[5][0] = rows[4][0]
        return rows
    bad = _rewrite_main(fake, tmp_path / "main.csv", duplicate)
    with open(bad, newline="") as handle:
        eid = list(csv.reader(handle))[5][0]
    with pytest.raises(InputError) as error:
        build_cohort(bad, fake.covid_tests, fake.withdrawals)
    _assert_one_line(str(error.value), str(bad), "'eid'", "line 6", "appears twice", fake=fake, allowed_eid=eid)


@pytest.mark.parametrize(
    "column, value, expected",
    [("specdate", "2020-05-01", "expected dd/mm/yyyy"), ("result", "2", "expected 1 (positive) or 0"), ("eid", "x1", "not an integer")],
)
def test_bad_covid_test_file_names_file_column_line_and_value(fake, tmp_path, column, value, expected):
    lines = fake.covid_tests[0].read_text().splitlines()
    header = lines[0].split("\t")
    cells = lines[3].split("\t")
    cells[header.index(column)] = value
    lines[3] = "\t".join(cells)
    bad = tmp_path / "covid19_result_england.txt"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as error:
        build_cohort(fake.main, [bad, *fake.covid_tests[1:]], fake.withdrawals)
    _assert_one_line(str(error.value), str(bad), f"column {column!r}", "line 4", repr(value), expected, fake=fake)


def test_covid_test_file_without_result_column(fake, tmp_path):
    bad = tmp_path / "tests.txt"
    bad.write_text("eid\tspecdate\n1\t01/01/2021\n")
    with pytest.raises(InputError) as error:
        build_cohort(fake.main, [bad], fake.withdrawals)
    _assert_one_line(str(error.value), str(bad), "missing column 'result'")


def test_withdrawals_with_a_header_line(fake, tmp_path):
    bad = tmp_path / "w.csv"
    bad.write_text("eid\n1000007\n")
    with pytest.raises(InputError) as error:
        build_cohort(fake.main, fake.covid_tests, bad)
    _assert_one_line(str(error.value), str(bad), "line 1", "'eid'", "no header")


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"extra_centres": ["Atlantis"]}, ["extra_centres", "'Atlantis'", "Cardiff"]),
        ({"extra_centres": ["Stockport (pilot)"]}, ["extra_centres", "'Stockport (pilot)'"]),
        ({"extra_centres": ["Leeds"]}, ["extra_centres", "'Leeds'"]),
        ({"test_cutoff": "15/03/2021"}, ["test_cutoff", "'15/03/2021'", "YYYY-MM-DD"]),
    ],
)
def test_bad_settings(fake, kwargs, expected):
    with pytest.raises(InputError) as error:
        build_cohort(fake.main, fake.covid_tests, fake.withdrawals, **kwargs)
    _assert_one_line(str(error.value), *expected)


def test_missing_files(fake, tmp_path):
    for args, name in [((tmp_path / "none.csv", fake.covid_tests, None), "none.csv"),
                       ((fake.main, [tmp_path / "none.txt"], None), "none.txt"),
                       ((fake.main, fake.covid_tests, tmp_path / "none_w.csv"), "none_w.csv")]:
        with pytest.raises(InputError) as error:
            build_cohort(*args)
        _assert_one_line(str(error.value), name, "not found")


# --- the rule script and the workflow ------------------------------------------------


def _ukb_config(fake: FakeUKB, run: str, **ukb_raw) -> dict:
    """config/smoke.yaml with the fake UK Biobank files as the cohort source."""
    config = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    config["run"] = run
    config["parties"] = "all"
    config["cohort"] = {"source": "ukb_raw", "ukb_raw": {
        "main": str(fake.main), "covid_tests": [str(p) for p in fake.covid_tests],
        "withdrawals": str(fake.withdrawals), "test_cutoff": "2021-03-15", "extra_centres": ["Cardiff"], **ukb_raw}}
    return config


def _run_script(fake: FakeUKB, workdir: Path, **ukb_raw) -> tuple[subprocess.CompletedProcess, Path]:
    """The cohort rule's script standalone (scripts/_entry.py) in a copy of the workflow; returns the
    process and the run's data folder."""
    if not (workdir / "Snakefile").is_file():
        copy_workflow(workdir)
    # no extra centres unless a test asks (the workflow test keeps Cardiff)
    (workdir / "ukb.yaml").write_text(yaml.safe_dump(_ukb_config(fake, "ukb_script", **{"extra_centres": [], **ukb_raw})))
    command = [sys.executable, str(workdir / "scripts" / "build_ukb_cohort.py"), "--configfile", "ukb.yaml", "cohort"]
    return subprocess.run(command, capture_output=True, text=True, cwd=workdir), workdir / "results" / "ukb_script" / "data"


def test_script_writes_the_same_bytes_twice(fake, tmp_path, selection):
    first, second = tmp_path / "a", tmp_path / "b"
    for workdir in (first, second):
        done, _ = _run_script(fake, workdir)
        assert done.returncode == 0, done.stderr
    first, second = (w / "results" / "ukb_script" / "data" for w in (first, second))
    for name in ("cohort.parquet", "cohort_flow.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    pd.testing.assert_frame_equal(pd.read_parquet(first / "cohort.parquet"), selection.cohort)


def test_script_reports_bad_input_in_one_line(fake, tmp_path):
    done, data = _run_script(fake, tmp_path, test_cutoff="2021-13-45")
    assert done.returncode == 1
    assert "synthshare: error: cohort.ukb_raw.test_cutoff = '2021-13-45'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (data / "cohort.parquet").exists()


def test_downstream_data_stage_runs_on_the_cohort(fake, tmp_path):
    """The written cohort passes the file-cohort checks and splits per centre."""
    done, data = _run_script(fake, tmp_path)
    assert done.returncode == 0, done.stderr
    loaded = read_cohort_file(data / "cohort.parquet", list(CENTRES))
    assert loaded.rows_incomplete == 0
    split = split_train_test(loaded.frame, test_fraction=0.2, min_class_size=2, seed=11)
    assert len(split.train) + len(split.test) == len(loaded.frame)
    assert set(split.report) == set(CENTRES)
    assert set(split.test["assessment_center"]) == set(CENTRES)


@pytest.mark.slow
def test_workflow_data_stage_with_ukb_raw_source(fake, tmp_path):
    """Snakemake's data stage with ``cohort.source: ukb_raw`` (the rule in data.smk)."""
    snakemake = Path(sys.executable).parent / "snakemake"
    if not (ROOT / "Snakefile").is_file() or not snakemake.is_file():
        pytest.fail("the workflow (Snakefile) or the snakemake executable is missing")
    config = _ukb_config(fake, "ukb_raw_test")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    results = tmp_path / "results" / "ukb_raw_test" / "data"
    fraction = max(config["fractions"])
    targets = [results / "centres.csv", results / "cohort_flow.csv", results / f"local/centres/f{fraction:g}/Leeds.parquet"]
    done = subprocess.run(
        [str(snakemake), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--cores", "2",
         "--quiet", "all", "--", *[str(t.relative_to(tmp_path)) for t in targets]],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    centres = pd.read_csv(results / "centres.csv")
    flow = pd.read_csv(results / "cohort_flow.csv")
    cohort = pd.read_parquet(results / "cohort.parquet")
    assert centres["party"].tolist() == list(CENTRES)
    assert centres["records"].sum() == (cohort["assessment_center"] != "Cardiff").sum()
    assert flow["step"].iloc[-1] == "records_out" and flow["centre"].iloc[-1] == "Cardiff"
    assert len(pd.read_parquet(targets[2])) >= 1
    shutil.rmtree(tmp_path / ".snakemake", ignore_errors=True)


# --- file structure: what pandas would accept silently -------------------------------
def _main_lines(fake):
    return Path(fake.main).read_text().splitlines()


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("duplicated_column", ["column '31-0.0' appears twice in the header (columns 2 and"]),
        ("extra_field", ["cannot parse as a ukbconv CSV: line 6 has", "fields, the header"]),
        ("short_row", ["cannot parse as a ukbconv CSV: line 6 has", "fields, the header"]),
        ("nul", ["line 6: NUL byte in a field"]),
        ("header_only", ["0 data rows; expected at least 1 below the header"]),
        ("latin1", ["line 6: bytes that are not UTF-8"]),
    ],
)
def test_main_file_structure_stops(fake, tmp_path, kind, expected):
    lines = _main_lines(fake)
    path = tmp_path / "main.csv"
    if kind == "duplicated_column":
        header = lines[0].split(",")
        text = "\n".join([lines[0] + "," + header[1]] + [row + "," + row.split(",")[1] for row in lines[1:]]) + "\n"
    elif kind == "extra_field":
        text = "\n".join(lines[:5] + [lines[5] + ",1"] + lines[6:]) + "\n"
    elif kind == "short_row":
        text = "\n".join(lines[:5] + [",".join(lines[5].split(",")[:-2])] + lines[6:]) + "\n"
    elif kind == "nul":
        text = "\n".join(lines[:5] + [lines[5].replace(",", ",\x00", 1)] + lines[6:]) + "\n"
    elif kind == "header_only":
        text = lines[0] + "\n"
    else:
        path.write_bytes(("\n".join(lines[:5]) + "\n").encode() + b"\xe9" + ("\n".join(lines[5:]) + "\n").encode())
        text = None
    if text is not None:
        path.write_text(text)
    with pytest.raises(InputError) as error:
        build_cohort(str(path), fake.covid_tests, fake.withdrawals)
    _assert_one_line(str(error.value), str(path), *expected)


@pytest.mark.parametrize("kind", ["duplicated_column", "extra_field", "short_row", "nul"])
def test_test_file_structure_stops(fake, tmp_path, kind):
    lines = Path(fake.covid_tests[0]).read_text().splitlines()
    path = tmp_path / "tests.txt"
    if kind == "duplicated_column":
        text = "\n".join([lines[0] + "\tresult"] + [row + "\t" + row.split("\t")[5] for row in lines[1:]]) + "\n"
        expected = "column 'result' appears twice in the header"
    elif kind == "extra_field":
        text = "\n".join(lines[:3] + [lines[3] + "\tx"] + lines[4:]) + "\n"
        expected = "line 4 has 10 fields, the header 9"
    elif kind == "short_row":
        text = "\n".join(lines[:3] + ["\t".join(lines[3].split("\t")[:-1])] + lines[4:]) + "\n"
        expected = "line 4 has 8 fields, the header 9"
    else:
        text = "\n".join(lines[:3] + [lines[3].replace("\t", "\t\x00", 1)] + lines[4:]) + "\n"
        expected = "line 4: NUL byte in a field"
    path.write_text(text)
    with pytest.raises(InputError) as error:
        build_cohort(fake.main, [str(path), *fake.covid_tests[1:]], fake.withdrawals)
    _assert_one_line(str(error.value), str(path), expected)
