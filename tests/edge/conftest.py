"""The runtime tests' shared helpers (edge_runtime_helpers.py, xvfb_helpers.py) are
imported by name from the test folders below this one too (capture/, detect/, classify/, track/, outputs/,
models/, cli/, report/, web/, batch/)."""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
