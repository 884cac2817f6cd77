"""Hybrid quantum-classical CNN vs classical CNN on HAM10000: build, train, evaluate, explain.

Importing the package is cheap (no torch): the app's pages that need no model stay fast.
"""

__version__ = "0.1.0"
