"""Outputs layer: the run folder, analysis, finance, charts and the report; reads only what a run saved."""
