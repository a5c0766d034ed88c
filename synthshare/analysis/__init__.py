"""The analysis stage: the paper's utility experiment on top of the GLM engine.

A party fits the study's Poisson regression (:mod:`synthshare.glm`) to its local data
combined with the other parties' synthetic data, added in random orders
(``experiment``), pools the K fits with Rubin's rules (``rubin``) and scores S draws
on the test set (``scoring``). ``settings`` holds the stage's parameters
(:class:`AnalysisSettings`), ``inputs`` reads the stage's files, ``job`` runs one
workflow job end to end and ``tables`` writes its tidy results. On the simulated cohort,
``estimand`` gives the analysis model's population-level coefficients (the target of an
interval) and ``coverage`` the intervals' coverage of them (issue 16, docs/coverage.md);
``sharing`` fits the real-data-sharing yardstick and ``selection`` chooses partners with
the party's local data alone (issue 16).
"""
