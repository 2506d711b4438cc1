"""Lowest layer: small rules and utilities with no dependency on the rest of the project (random streams, the NHS
calendar, apportioning sessions by shares, the rule a theatre session books its cases by)."""
