"""A fake raw UK Biobank extract in UK Biobank's exact file formats, for the ukb_raw tests.

Writes, from a seed:
- ``ukb_main.csv``: as ``ukbconv <file> csv`` writes it: every value double-quoted,
  blanks as ``""``, header ``"eid","<field>-<instance>.<array>"``, categorical fields as
  numeric codes (with -1/-3/-7 special codes), dates ``yyyy-mm-dd``; plus columns the
  study does not read (other instances and fields) to check they are ignored;
- ``covid19_result_england.txt``, ``covid19_result_scotland.txt``,
  ``covid19_result_wales.txt``: tab-separated test results, ``dd/mm/yyyy`` dates;
- ``withdrawals.csv``: one eid per line, no header, with eids not in the extract.

Hand-made participants (:data:`HAND_ROWS`, eids 1000001...) cover each rule once; a few
hundred random participants (eids from 2000000) exercise the rest. The generator also
returns every value it wrote, so tests can recompute the cohort independently.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np

ENGLISH_CENTRE_CODES = (11012, 11021, 11011, 11008, 11020, 11018, 11010, 11016, 11001, 11017, 11009, 11013, 11002, 11007, 11014, 11006)
OTHER_CENTRE_CODES = (11003, 11022, 11005, 11004)  # Cardiff, Swansea, Edinburgh, Glasgow
PILOT = 10003

EDUCATION_ARRAYS = 6
EMPLOYMENT_ARRAYS = 4

COLUMNS = (
    ["eid", "31-0.0", "34-0.0", "54-0.0", "54-1.0", "21022-0.0", "21000-0.0", "189-0.0"]
    + [f"6138-0.{a}" for a in range(EDUCATION_ARRAYS)] + ["6138-1.0", "40000-0.0", "40000-1.0"]
    + ["1647-0.0", "2188-0.0", "2178-0.0", "20116-0.0", "21001-0.0", "1558-0.0", "3731-0.0"]
    + [f"6142-0.{a}" for a in range(EMPLOYMENT_ARRAYS)] + ["680-0.0", "20118-0.0", "709-0.0"]
)

# A complete record: every field valid, nothing excluding it.
BASE_ROW: dict[str, object] = {
    "31": "0", "54": "11010", "21022": "50", "21000": "1001", "189": "-1.5", "6138": ["1"], "40000": "",
    "1647": "1", "2188": "0", "2178": "2", "20116": "0", "21001": "24.1", "1558": "3", "3731": "",
    "6142": ["1"], "680": "1", "20118": "5", "709": "2",
}

# eid -> (field overrides, tests as (file, dd/mm/yyyy, result)); see tests/test_ukb_raw.py
HAND_ROWS: dict[int, tuple[dict[str, object], list[tuple[str, str, int]]]] = {
    1000001: ({"54": "11010", "21022": "40", "31": "0", "21000": "1001", "189": "-9.0", "6138": ["3", "2"]},
              [("england", "10/04/2020", 0), ("england", "20/03/2021", 1)]),
    1000002: ({"54": "11012", "21022": "69", "31": "1", "21000": "3", "189": "14.0", "6138": ["-7"]},
              [("england", "05/01/2021", 0), ("scotland", "14/03/2021", 1)]),
    1000003: ({"54": "11009", "21022": "72", "31": "0", "21000": "1", "189": "-8.5", "6138": ["6", "4", "5"],
               "1558": "6", "3731": "", "680": "-7", "6142": ["-7"]},
              [("england", "01/12/2020", 1)]),
    1000004: ({"54": "11003", "21022": "52", "31": "1", "21000": "4002", "189": "13.0", "6138": ["1", "2"]},
              [("wales", "02/02/2021", 1)]),
    1000005: ({"40000": "2018-01-31"}, [("england", "01/06/2020", 1)]),
    1000006: ({"54": "11014", "21022": "57", "31": "1", "21000": "2003", "189": "-9.5", "6138": ["5"],
               "40000": "2018-02-01"},
              [("england", "01/06/2020", 0)]),
    1000007: ({}, [("england", "01/06/2020", 1)]),
    1000008: ({"54": str(PILOT)}, [("england", "01/06/2020", 1)]),
    1000009: ({"21022": "39"}, [("england", "01/06/2020", 1)]),
    1000010: ({"680": "-1"}, [("england", "01/06/2020", 1)]),
    1000011: ({"20118": "9"}, [("england", "01/06/2020", 1)]),
    1000012: ({}, [("england", "15/03/2021", 1), ("wales", "02/05/2021", 0)]),
    1000013: ({"6138": ["-3"]}, [("england", "01/06/2020", 1)]),
    1000014: ({"21000": "-1", "680": "-1"}, [("england", "01/06/2020", 1)]),
    1000015: ({"189": ""}, [("england", "01/06/2020", 1)]),
    1000016: ({"54": str(PILOT)}, [("england", "01/06/2020", 1)]),
    1000017: ({"709": "-3"}, [("england", "01/06/2020", 1)]),
    1000018: ({"1558": "-3"}, [("england", "01/06/2020", 1)]),
}
WITHDRAWN = (1000007, 1000016, 999)
"""Eids in the withdrawals file; 999 is not in the extract."""


@dataclass
class FakeUKB:
    main: Path
    covid_tests: list[Path]
    """England's, Scotland's, Wales' files."""
    withdrawals: Path
    rows: dict[int, dict[str, object]]
    """eid -> the field values written (field id -> text, or list of texts for arrays)."""
    tests: list[tuple[int, date, int]] = field(default_factory=list)
    """Every test written, in any file: (eid, specdate, result)."""


def write_fake_ukb(directory: str | Path, n_random: int = 480, seed: int = 20240716) -> FakeUKB:
    """Write the fake extract, test files and withdrawals file under ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows: dict[int, dict[str, object]] = {}
    tests: dict[str, list[tuple[int, date, int]]] = {"england": [], "scotland": [], "wales": []}

    for eid, (overrides, hand_tests) in HAND_ROWS.items():
        rows[eid] = {**BASE_ROW, **overrides}
        for nation, when, result in hand_tests:
            day, month, year = (int(x) for x in when.split("/"))
            tests[nation].append((eid, date(year, month, day), result))

    random_eids = 2_000_000 + rng.choice(4_000_000, size=n_random, replace=False)
    for eid in random_eids:
        row = _random_row(rng)
        rows[int(eid)] = row
        centre = int(row["54"])
        if rng.random() < 0.82:
            nation = "scotland" if centre in (11005, 11004) else "wales" if centre in (11003, 11022) else "england"
            for _ in range(int(rng.integers(1, 4))):
                tests[nation].append((int(eid), _random_date(rng, date(2020, 3, 1), date(2021, 8, 31)), int(rng.random() < 0.2)))
    # Tests of people outside the extract (e.g. withdrawn before this extract) must be ignored.
    for eid in (999, 7_000_001):
        tests["england"].append((eid, date(2020, 5, 5), 1))

    order = list(rows)
    rng.shuffle(order)  # the cohort must come out sorted by eid regardless of file order
    main = directory / "ukb_main.csv"
    _write_main(main, [(eid, rows[eid]) for eid in order], rng)
    paths = []
    for nation in ("england", "scotland", "wales"):
        path = directory / f"covid19_result_{nation}.txt"
        _write_tests(path, nation, tests[nation], rng)
        paths.append(path)
    withdrawals = directory / "withdrawals.csv"
    withdrawals.write_text("\n".join(str(e) for e in WITHDRAWN[:2]) + "\n\n" + f"{WITHDRAWN[2]}\n")
    every_test = [t for nation in tests.values() for t in nation]
    return FakeUKB(main=main, covid_tests=paths, withdrawals=withdrawals, rows=rows, tests=every_test)


def _random_row(rng: np.random.Generator) -> dict[str, object]:
    def maybe(value: str, blank: float = 0.015, negatives: tuple[str, ...] = ("-3",)) -> str:
        u = rng.random()
        if u < blank:
            return ""
        if u < 2 * blank:
            return str(rng.choice(negatives))
        return value

    u = rng.random()
    centre = PILOT if u < 0.04 else int(rng.choice(OTHER_CENTRE_CODES)) if u < 0.10 else int(rng.choice(ENGLISH_CENTRE_CODES))
    ethnicity_codes = ["1001"] * 12 + ["1002", "1003", "1", "2", "2001", "2004", "3", "3001", "3002", "3003", "3004", "4", "4001", "4003", "5", "6"]
    qualifications = rng.random()
    if qualifications < 0.08:
        education = ["-7"]
    elif qualifications < 0.10:
        education = ["-3"]
    elif qualifications < 0.12:
        education = []
    else:
        education = [str(c) for c in rng.choice(np.arange(1, 7), size=int(rng.integers(1, 4)), replace=False)]
    death = ""
    if rng.random() < 0.05:
        death = _random_date(rng, date(2012, 1, 1), date(2022, 12, 31)).isoformat()
    alcohol = maybe(str(rng.integers(1, 7)))
    former = str(rng.choice(["0", "1", "-3", ""])) if alcohol == "6" else ""
    employment = [maybe(str(rng.choice(["1", "2", "3", "4", "5", "6", "7", "-7"])))]
    if employment[0] == "1" and rng.random() < 0.3:
        employment.append("6")
    return {
        "31": str(rng.integers(0, 2)),
        "54": str(centre),
        "21022": str(rng.integers(38, 74)),
        "21000": maybe(str(rng.choice(ethnicity_codes)), negatives=("-1", "-3")),
        "189": "" if rng.random() < 0.01 else f"{float(np.clip(rng.normal(-1.5, 3.0), -6.5, 11.0)):.5f}",
        "6138": education,
        "40000": death,
        "1647": maybe(str(rng.choice([1, 1, 1, 1, 2, 3, 4, 5, 6])), negatives=("-1", "-3")),
        "2188": maybe(str(rng.integers(0, 2)), negatives=("-1", "-3")),
        "2178": maybe(str(rng.integers(1, 5)), negatives=("-1", "-3")),
        "20116": maybe(str(rng.integers(0, 3))),
        "21001": "" if rng.random() < 0.015 else f"{rng.normal(27.5, 4.5):.4f}",
        "1558": alcohol,
        "3731": former,
        "6142": employment,
        "680": maybe(str(rng.choice(["1", "2", "3", "4", "5", "6", "-7"])), negatives=("-1", "-3")),
        "20118": maybe(str(rng.choice([1, 5, 5, 5, 6, 7, 8, 12])), blank=0.01, negatives=("9",)),
        "709": maybe(str(rng.integers(1, 7)), negatives=("-1", "-3")),
    }


def _write_main(path: Path, rows: list[tuple[int, dict[str, object]]], rng: np.random.Generator) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(COLUMNS)
        for eid, row in rows:
            values = {"eid": str(eid), "34-0.0": str(rng.integers(1936, 1971)), "54-1.0": "", "6138-1.0": "1", "40000-1.0": ""}
            for column in COLUMNS[1:]:
                if column in values:
                    continue
                field_id, rest = column.split("-")
                instance, array = (int(x) for x in rest.split("."))
                value = row[field_id]
                if isinstance(value, list):
                    values[column] = value[array] if array < len(value) else ""
                else:
                    values[column] = value if array == 0 else ""
            writer.writerow([values[c] for c in COLUMNS])


def _write_tests(path: Path, nation: str, tests: list[tuple[int, date, int]], rng: np.random.Generator) -> None:
    header = {
        "england": ["eid", "specdate", "spectype", "laboratory", "origin", "result", "acute", "hosaq", "reqorg"],
        "scotland": ["eid", "specdate", "result", "factype"],
        "wales": ["eid", "specdate", "spectype", "laboratory", "result"],
    }[nation]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        for eid, when, result in tests:
            extra = {"spectype": str(rng.integers(0, 8)), "laboratory": str(rng.integers(1, 20)), "origin": str(rng.integers(0, 2)),
                     "acute": "", "hosaq": "", "reqorg": str(rng.integers(100, 999)), "factype": "1"}
            values = {"eid": str(eid), "specdate": when.strftime("%d/%m/%Y"), "result": str(result), **extra}
            writer.writerow([values[c] for c in header])


def _random_date(rng: np.random.Generator, start: date, end: date) -> date:
    return start + timedelta(days=int(rng.integers(0, (end - start).days + 1)))
