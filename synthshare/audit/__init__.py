"""Empirical privacy audit (issue 13): targets, membership-inference scores, statistics,
and the DPVI mechanism check. See docs/audit.md for the threat model and what exists."""
