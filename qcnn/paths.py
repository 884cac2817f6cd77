"""Where the project reads and writes: one place, so the CLI and the app agree.

The app reads the repository's committed ``results/`` and ``checkpoints/`` (or $QCNN_RESULTS_DIR /
$QCNN_CHECKPOINT_DIR). The CLI writes to ``./results`` and ``./checkpoints`` of the current
directory (the same folders when run from the repository), never into an installed package.
"""

from __future__ import annotations

import os
from pathlib import Path

from qcnn.constants import MODEL_KINDS  # noqa: F401  (re-exported for older imports)

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "results"  # the committed results the app shows by default
CHECKPOINT_DIR = REPO_ROOT / "checkpoints"
SPLIT_FILE = "split.csv"
IMAGE_SPLIT_FILE = "split_image.csv"  # the study's image-level protocol, never over split.csv
RUNS_DIR = "runs"
EXPERIMENTS_DIR = "experiments"
SUMMARY_FILE = "summary.json"
BACKBONE_HISTORY_FILE = "backbone_history.csv"
BACKBONE_FILE = "backbone.safetensors"  # checkpoints/: the domain-pretrained ResNet18 every run builds on
OOD_REFERENCE_FILE = "ood_reference.safetensors"  # checkpoints/: the Try-it out-of-distribution check
MAP_CSV = "map.csv"  # qcnn map: each test image's 2-D place in each model's outcome space
MAP_JSON = "map.json"  # ... and how the projection was made
LEAKAGE_FILE = "leakage.json"  # qcnn leakage: lesion siblings across pools, the models on the leak-free part
BACKBONES_FILE = "backbones.json"  # qcnn backbones: both models on two backbones, the change between them


def results_dir() -> Path:
    """For the app: $QCNN_RESULTS_DIR, read at call time, else the repository's results/."""
    return Path(os.environ.get("QCNN_RESULTS_DIR") or RESULTS_DIR)


def checkpoint_dir() -> Path:
    """For the app: $QCNN_CHECKPOINT_DIR, read at call time, else the repository's checkpoints/."""
    return Path(os.environ.get("QCNN_CHECKPOINT_DIR") or CHECKPOINT_DIR)


def cli_results_dir() -> Path:
    """For commands: $QCNN_RESULTS_DIR, else ./results of the current directory."""
    return Path(os.environ.get("QCNN_RESULTS_DIR") or "results")


def cli_checkpoint_dir() -> Path:
    """For commands: $QCNN_CHECKPOINT_DIR, else ./checkpoints of the current directory."""
    return Path(os.environ.get("QCNN_CHECKPOINT_DIR") or "checkpoints")


def cache_dir(override: str | Path | None = None) -> Path:
    """The feature cache (2-4 GB): the argument, else $QCNN_CACHE_DIR, else $XDG_CACHE_HOME/qcnn or ~/.cache/qcnn."""
    if override:
        return Path(override)
    if os.environ.get("QCNN_CACHE_DIR"):
        return Path(os.environ["QCNN_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qcnn"


def run_name(kind: str, seed: int) -> str:
    return f"{kind}_seed{seed}"
