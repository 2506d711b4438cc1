"""Scenario layer: the typed schema, YAML files, validation, input ranges, input files and calibrations."""
