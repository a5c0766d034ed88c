"""synthshare: collaborative learning from distributed data with DP synthetic data.

The library behind the Snakemake workflow (Prediger et al., BMC Med Inform Decis Mak
24:167, 2024). Nothing in this package knows about Snakemake: rule scripts in
``scripts/`` read their inputs, call these functions and write outputs.
"""

__version__ = "0.1.0"
