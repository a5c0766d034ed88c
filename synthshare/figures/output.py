"""What a figure job returns, and writing it: figures as PDF + PNG, tables as CSV, atomically."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import pandas as pd

from synthshare.atomic import atomic_path, write_csv
from synthshare.figures.boxplots import DPI

# PDF font subsetting logs a line per table at INFO; job logs should show our lines.
logging.getLogger("fontTools").setLevel(logging.WARNING)


@dataclass
class Rendered:
    """Figures (name -> matplotlib Figure) and tables (name -> DataFrame) of one job."""

    figures: dict[str, plt.Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def save_figure(figure: plt.Figure, pdf: str | os.PathLike, png: str | os.PathLike) -> None:
    """Write ``figure`` as PDF and PNG (``DPI``) atomically, without dates, then close it.

    No CreationDate in the PDF, so the same inputs give the same bytes.
    """
    with atomic_path(pdf) as tmp:
        figure.savefig(tmp, format="pdf", metadata={"CreationDate": None, "Creator": "synthshare"})
    with atomic_path(png) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": "synthshare"})
    plt.close(figure)


def write_rendered(rendered: Rendered, figure_paths: dict[str, tuple[str, str]], table_paths: dict[str, str]) -> None:
    """Write every figure to its (pdf, png) and every table to its CSV; names must match exactly."""
    if set(rendered.figures) != set(figure_paths) or set(rendered.tables) != set(table_paths):
        raise ValueError(f"figures {sorted(rendered.figures)} / tables {sorted(rendered.tables)} do not match the "
                         f"requested {sorted(figure_paths)} / {sorted(table_paths)}")
    for name, figure in rendered.figures.items():
        save_figure(figure, *figure_paths[name])
    for name, table in rendered.tables.items():
        write_csv(table, table_paths[name], float_format="%.10g")
