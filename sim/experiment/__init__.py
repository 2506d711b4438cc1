"""Experiment layer: replications and where they run (in-process, local pool, Dask)."""
