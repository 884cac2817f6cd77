"""Does a better backbone move the QCNN − classical gap? (``results/backbones.json``, ``qcnn backbones``)

The same two models, seed by seed, trained on a weaker and a stronger backbone and all scored on the
lesion split's one test set. Per seed, the change (strong − weak) of each model's metrics and of their
difference is paired; one lesion bootstrap shared by all the runs resamples that test set, so the
interval of the mean change counts the seeds and the test lesions (``qcnn.stats.seed_lesion_interval``).
Each backbone's own QCNN − classical interval says little about the change between them: two
intervals can overlap while the paired change is clear, or one exclude zero while the change is noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qcnn import paths
from qcnn.constants import MODEL_KINDS
from qcnn.errors import ConfigError
from qcnn.metrics import metric_vector
from qcnn.stats import INTERVAL_METHOD, lesion_bootstrap, paired_predictions, seed_estimate

BACKBONES_FILE = paths.BACKBONES_FILE
SIDES = ("weak", "strong")


def backbone_change(
    weak_runs: dict[tuple[str, int], pd.DataFrame],
    strong_runs: dict[tuple[str, int], pd.DataFrame],
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Strong − weak for each model and for QCNN − classical, over the seeds with all four runs.

    ``weak_runs`` / ``strong_runs`` map (model, seed) to a run's predictions.csv frame, all on the same
    test images. Returns None when no seed has both models on both backbones.
    """
    runs = dict(zip(SIDES, (weak_runs, strong_runs), strict=True))
    seeds = sorted({s for _, s in strong_runs if all((k, s) in r for r in runs.values() for k in MODEL_KINDS)})
    if not seeds:
        return None
    keys = [(side, k, s) for side in SIDES for k in MODEL_KINDS for s in seeds]
    frames = [runs[side][(k, s)] for side, k, s in keys]
    labels, lesions, probs = paired_predictions(frames)
    point = np.array([metric_vector(labels, p) for p in probs])  # (R, M)
    boot = lesion_bootstrap(labels, lesions, probs, n_bootstrap, seed)  # (B, R, M)
    row = {key: i for i, key in enumerate(keys)}

    def rows(side: str, kind: str) -> list[int]:
        return [row[(side, kind, s)] for s in seeds]

    def values(side: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
        if kind == "difference":
            (qp, qb), (cp, cb) = values(side, "qcnn"), values(side, "classical")
            return qp - cp, qb - cb
        return point[rows(side, kind)], boot[:, rows(side, kind)]

    def change(kind: str) -> dict[str, Any]:
        (sp, sb), (wp, wb) = values("strong", kind), values("weak", kind)
        return seed_estimate(sp - wp, sb - wb, seeds)

    return {
        "seeds": seeds,
        "n_test": len(labels),
        "n_test_malignant": int(labels.sum()),
        "n_bootstrap": n_bootstrap,
        "bootstrap_unit": "lesion",
        "interval_method": INTERVAL_METHOD,
        "metrics": {
            side: {kind: seed_estimate(*values(side, kind), seeds) for kind in (*MODEL_KINDS, "difference")}
            for side in SIDES
        },
        "change": {kind: change(kind) for kind in (*MODEL_KINDS, "difference")},
    }


def write_backbones(
    ws: Any, weak_experiment: str | Path, strong_experiment: str | Path, n_bootstrap: int = 2000
) -> dict[str, Any]:
    """``results/backbones.json``: both models on each backbone, and the change between them."""
    from qcnn.io import write_json
    from qcnn.runs import finished_predictions
    from qcnn.sweep import load_experiment

    experiments = dict(zip(SIDES, map(load_experiment, (weak_experiment, strong_experiment)), strict=True))
    if experiments["weak"].backbone == experiments["strong"].backbone:
        raise ConfigError(
            f"{experiments['weak'].name} and {experiments['strong'].name} train on the same backbone "
            f"({experiments['weak'].backbone}): there is no change to measure"
        )
    found = {side: finished_predictions(e, ws, 1.0, "lesion") for side, e in experiments.items()}
    result = {
        "description": "Both models trained on a weaker and a stronger backbone, scored on the lesion split's "
        "test set: each model's metrics and QCNN − classical on each, and the change strong − weak",
        **{
            side: {"experiment": e.name, "backbone": Path(e.backbone).stem, "runs_found": len(found[side])}
            for side, e in experiments.items()
        },
        "models": backbone_change(found["weak"], found["strong"], n_bootstrap),
    }
    write_json(ws.results_dir / BACKBONES_FILE, result)
    return result
