"""Where the project reads and writes: one place, so the CLI and the app agree."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "results"  # the committed results the app shows by default
CHECKPOINT_DIR = REPO_ROOT / "checkpoints"
CACHE_DIR = Path(os.environ.get("QCNN_CACHE_DIR", REPO_ROOT / ".cache"))
SPLIT_FILE = "split.csv"
RUNS_DIR = "runs"
SUMMARY_FILE = "summary.json"
BACKBONE_HISTORY_FILE = "backbone_history.csv"
from qcnn.constants import MODEL_KINDS  # noqa: F401  (re-exported for older imports)


def results_dir() -> Path:
    """$QCNN_RESULTS_DIR, read at call time (a test or a running app can be pointed elsewhere), else results/."""
    return Path(os.environ.get("QCNN_RESULTS_DIR") or RESULTS_DIR)


def checkpoint_dir() -> Path:
    """$QCNN_CHECKPOINT_DIR, read at call time, else checkpoints/."""
    return Path(os.environ.get("QCNN_CHECKPOINT_DIR") or CHECKPOINT_DIR)


def run_name(kind: str, seed: int) -> str:
    return f"{kind}_seed{seed}"
