"""The experiment layer's own error, in a module of its own so that the command line can catch it without
importing the model (sim.experiment.executors imports it; `report` and `validate` run no replication)."""


class ExecutorError(Exception):
    """The executor cannot start (Dask not installed, scheduler unreachable)."""
