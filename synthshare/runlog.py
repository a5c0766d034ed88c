"""Logging for the workflow's entry scripts: a log file per job, one clear line on bad input."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from pathlib import Path
from typing import Iterator

from synthshare.errors import InputError


@contextlib.contextmanager
def logged_run(log_path: str | Path | None, name: str = "synthshare") -> Iterator[logging.Logger]:
    """Log INFO and warnings to ``log_path`` (and stderr); turn an InputError into one line.

    On :class:`InputError` the message alone goes to the log and to the console's
    stderr, and the process exits with status 1 (no traceback: the message says what
    is wrong). Other exceptions propagate with their traceback.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    logger = logging.getLogger(name)
    try:
        yield logger
    except InputError as error:
        logger.error("%s", error)
        print(f"synthshare: error: {error}", file=sys.__stderr__, flush=True)
        raise SystemExit(1) from None
