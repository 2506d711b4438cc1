"""Scenario layer: the typed schema, YAML files, validation, input ranges, input files, calibrations, and the
pipeline that builds a scenario from them (sim.scenario.build)."""
