"""Strict YAML reading for every YAML file the pipeline reads (configs, the cohort's
parameter file, profiles): one line per problem, with the file name and line.

PyYAML's ``safe_load`` silently keeps the last of two equal keys (a config with two
``epsilons:`` runs the second), and its syntax errors are several lines with no file
name. :func:`load_yaml` refuses duplicated keys, reports syntax errors, tab indentation,
bytes that are not UTF-8 and a top level that is not a mapping as one
:class:`~synthshare.errors.InputError` line ``<file>: line N: <problem>``.

Run as ``python -m synthshare.yaml_strict FILE ...`` to check files before Snakemake
reads them (Snakemake's own loader accepts duplicated keys and reports syntax errors
without a file name); exit status 1 with the one line on the first bad file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from synthshare.errors import InputError


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor`: explicit keys may override merged ones
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, f"unhashable key {key!r}", key_node.start_mark) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"key {key!r} given twice (first on line {seen[key] + 1}); each key may appear once",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str) -> Any:
    """Parse ``text`` strictly; ``source`` names it in messages."""
    if "\t" in text:
        # YAML forbids tabs in indentation; PyYAML's message does not say so plainly.
        for number, line in enumerate(text.splitlines(), start=1):
            indent = line[: len(line) - len(line.lstrip(" \t"))]
            if "\t" in indent and line.strip() and not line.lstrip(" \t").startswith("#"):
                raise InputError(f"{source}: line {number}: tab in indentation; YAML allows spaces only")
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = " ".join(str(error.problem or error.context or "invalid YAML").split())
        raise InputError(f"{source}: {where}{problem}") from None
    except yaml.YAMLError as error:
        raise InputError(f"{source}: not valid YAML: {' '.join(str(error).split())}") from None


def load_yaml(path: str | Path) -> Any:
    """Read and parse one YAML file strictly (see the module docstring)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from None
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise InputError(f"{path}: line {line}: NUL byte; expected a UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(f"{path}: line {line}: byte {data[error.start]:#04x} is not UTF-8; expected a UTF-8 text file") from None
    return parse_yaml(text, str(path))


def load_mapping(path: str | Path) -> dict:
    """:func:`load_yaml` for a file whose top level must be a mapping (key: value lines)."""
    value = load_yaml(path)
    if not isinstance(value, dict):
        what = "the file is empty" if value is None else f"the top level is a {_kind(value)}"
        raise InputError(f"{path}: line 1: {what}; expected a mapping of keys to values (key: value lines)")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "plain string"
    return type(value).__name__


def main(argv: list[str] | None = None) -> int:
    for name in sys.argv[1:] if argv is None else argv:
        try:
            load_mapping(name)
        except InputError as error:
            print(error, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
