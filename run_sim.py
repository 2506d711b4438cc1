#!/usr/bin/env python3
"""North West London capacity simulator. `python run_sim.py` runs scenarios/baseline.yaml; see --help."""
import sys

from sim.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
