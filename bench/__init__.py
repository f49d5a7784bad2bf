"""Benchmarks for q2q-registry: validate, reconcile passes, SQL counts and memory.

Run from the repository root with the project's virtual environment active,
for example `python -m bench.reconcile_specs --specs 10000`. Nothing here is
installed with the package; docs/benchmarks.md records the results.
"""
