"""The study's cohort from one of three sources (config ``cohort.source``).

- ``simulated``: a UK-Biobank-like cohort drawn from published numbers (the default);
- ``file``: a processed cohort in CSV or Parquet, checked strictly;
- ``ukb``: UK Biobank's raw ``ukbconv`` extract and COVID-19 test files, with the
  study's preprocessing and a flow table.

Each returns records with the columns of :mod:`synthshare.variables`.
"""
