"""`python -m sim.outputs.report RUN_DIR`: build the report of a saved run folder."""
import sys

from sim.outputs.report import main

sys.exit(main())
