"""`python -m sim ...` is the same command line as `python run_sim.py ...`."""
import sys

from sim.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
