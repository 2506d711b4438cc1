"""North West London capacity simulator: a SimPy model of elective recovery for an integrated care system."""

import pandas as _pandas

__version__ = "0.1.0"

# Text columns are held as Python strings whether or not pyarrow is installed (the web app's Streamlit brings it, and
# pandas 3 then stores text in Arrow): Arrow refuses text that Python holds, such as a lone surrogate from a byte that
# is not UTF-8 on the command line, and what the simulator writes must not depend on what else is installed.
_pandas.set_option("mode.string_storage", "python")
