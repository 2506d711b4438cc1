"""Command line: argument parsing and printing, nothing else."""
