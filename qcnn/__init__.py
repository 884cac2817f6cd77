"""Hybrid quantum-classical CNN vs classical CNN on HAM10000: build, train, evaluate, explain.

Importing the package is cheap (no torch): the app's pages that need no model stay fast.
"""

import os

# OpenMP threads that spin while waiting turn every small op into a stall when another process
# shares the 2 cores: measured here, the quantum head's step went from 0.18 s to 3-6 s. Sleeping
# waiters cost nothing measurable when the machine is idle. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
