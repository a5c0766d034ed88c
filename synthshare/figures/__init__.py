"""The figures stage: the paper's figures and tables, figures beyond the paper, and the
claims table, drawn from the analysis stage's files (docs/architecture.md).

- ``catalogue``: which products a config asks for (pure; ``figure_targets(config)``);
- ``readers`` / ``samples``: slices of ``ll.parquet`` and the other inputs;
- ``stats``: box statistics and ranked Welch comparisons;
- ``boxplots``: paper-style box plots; ``paper``, ``beyond``: the figures;
- ``claims``: the claims table; ``render`` / ``output``: dispatch and atomic writing.
"""
