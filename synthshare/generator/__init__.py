"""The DP generator stage: DPVI (d3p) fits of the study's mixture + Poisson model per
party, a privacy ledger, and K synthetic data sets per fit.

Modules: ``encoding`` (records as level codes, one-hot blocks, the design),
``model`` (numpyro model and guide), ``gradients`` (closed-form per-record, clipped
and prior gradients), ``subsampling`` (Poisson batches), ``dpvi`` (d3p ``DPSVI``
subclasses, the reference), ``fused`` and ``fused_kernel`` (the same aligned steps
compiled by numba from randomness drawn in blocks, the fits' default), ``accounting`` (σ and ε), ``fit`` (vectorised fitting),
``sampling`` (synthetic sets), ``ledger``, ``job`` (one workflow job end to end),
``settings``, ``compilation``, ``resources``.
"""
