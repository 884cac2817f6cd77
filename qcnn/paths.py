"""Where the project reads and writes: one place, so the CLI and the app agree."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Overridable so that tests (and a user with several result sets) can point elsewhere.
RESULTS_DIR = Path(os.environ.get("QCNN_RESULTS_DIR", REPO_ROOT / "results"))
CHECKPOINT_DIR = Path(os.environ.get("QCNN_CHECKPOINT_DIR", REPO_ROOT / "checkpoints"))
CACHE_DIR = Path(os.environ.get("QCNN_CACHE_DIR", REPO_ROOT / ".cache"))
SPLIT_FILE = "split.csv"
RUNS_DIR = "runs"
SUMMARY_FILE = "summary.json"
BACKBONE_HISTORY_FILE = "backbone_history.csv"
MODEL_KINDS = ("qcnn", "classical")


def run_name(kind: str, seed: int) -> str:
    return f"{kind}_seed{seed}"
