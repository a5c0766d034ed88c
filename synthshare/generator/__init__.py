"""The DP generator stage: DPVI (d3p) fits of the study's mixture + Poisson model per
party, a privacy ledger, and K synthetic data sets per fit.

Modules: ``model`` (numpyro model, guide, closed-form per-record gradients),
``subsampling`` (Poisson batches), ``dpvi`` (d3p ``DPSVI`` subclasses), ``blocked`` (the
aligned steps with each epoch's randomness drawn at once, the fits' default), ``accounting``
(σ and ε), ``fit`` (vectorised fitting), ``sampling`` (synthetic sets), ``ledger``,
``generate`` (one job end to end), ``settings``, ``compilation``.
"""
