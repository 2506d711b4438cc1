"""North West London capacity simulator: a SimPy model of elective recovery for an integrated care system."""

__version__ = "0.1.0"
