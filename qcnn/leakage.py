"""Lesion leakage of a split protocol, and what it does to the models' test metrics (``results/leakage.json``).

HAM10000 holds several images of one lesion. The study split image by image, so a test image can
have a sibling (same ``lesion_id``) in train or val: a near-duplicate the model has seen. This module
counts those siblings for the lesion-disjoint split (must be none) and the study's image-level split,
and scores each model on the image split's whole (leaky) test set and on its leak-free part (test
images whose lesion has no image in train or val), beside the same models on the lesion split.

Intervals follow ``qcnn.stats``: over several seeds they count the seeds and the test lesions
(``seed_lesion_interval``); the lesion bootstrap is shared by every quantity read on one test set, so
an inflation (whole − leak-free, same runs) is a paired difference, while the two splits' test sets are
resampled independently (their variances add).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qcnn import paths
from qcnn.constants import MODEL_KINDS
from qcnn.metrics import METRICS, score_ranks, metric_vector
from qcnn.stats import INTERVAL_METHOD, paired_predictions, seed_estimate

LEAKAGE_FILE = paths.LEAKAGE_FILE
MODEL_POOLS = ("train", "val")
PARTS = ("lesion", "image", "leak_free")  # lesion split's test set; image split's test set; its leak-free part
PART_LABELS = {
    "lesion": "lesion split (no lesion in two pools)",
    "image": "image split, whole test set (leaky)",
    "leak_free": "image split, leak-free part of its test set",
}


def leakage_counts(split: pd.DataFrame) -> dict[str, int]:
    """How many test images and lesions of ``split`` have a sibling in the pools the models learn from."""
    test = split[split.pool == "test"]
    lesions = {pool: set(split.lesion_id[split.pool == pool]) for pool in MODEL_POOLS}
    seen = lesions["train"] | lesions["val"]
    leaky = test.lesion_id.isin(seen)
    return {
        "n_test": len(test),
        "n_test_malignant": int(test.label.sum()),
        "n_test_lesions": int(test.lesion_id.nunique()),
        "test_images_with_sibling_in_train": int(test.lesion_id.isin(lesions["train"]).sum()),
        "test_images_with_sibling_in_val": int(test.lesion_id.isin(lesions["val"]).sum()),
        "test_images_with_sibling_in_train_or_val": int(leaky.sum()),
        "leaky_test_malignant": int(test.label[leaky].sum()),
        "test_lesions_also_in_train_or_val": len(set(test.lesion_id) & seen),
        "lesions_in_both_train_and_val": len(lesions["train"] & lesions["val"]),
        "leak_free_test_images": int((~leaky).sum()),
        "leak_free_test_malignant": int(test.label[~leaky].sum()),
    }


def leak_free_mask(split: pd.DataFrame, image_ids: pd.Series) -> np.ndarray:
    """True for each of ``image_ids`` whose lesion has no image in train or val of ``split``."""
    seen = set(split.lesion_id[split.pool.isin(MODEL_POOLS)])
    lesion_of = split.set_index("image_id").lesion_id
    return ~image_ids.map(lesion_of).isin(seen).to_numpy()


def _bootstrap(
    frames: list[pd.DataFrame], masks: list[np.ndarray], n_bootstrap: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Point (R, K, M) and lesion-bootstrap (B, R, K, M) metrics of R runs scored on one test set, on K subsets.

    Every run and every subset sees the same resampled lesions, so differences between them are paired.
    """
    labels, lesions, probs = paired_predictions(frames)
    point = np.array([[metric_vector(labels[m], p[m]) for m in masks] for p in probs], dtype=float)
    rng = np.random.default_rng(seed)
    _, lesion_index = np.unique(lesions, return_inverse=True)
    n_lesions = lesion_index.max() + 1
    ranks = [score_ranks(p) for p in probs]
    boot = np.empty((n_bootstrap, len(probs), len(masks), len(METRICS)))
    for b in range(n_bootstrap):
        weights = np.bincount(rng.integers(n_lesions, size=n_lesions), minlength=n_lesions)[lesion_index]
        for r, p in enumerate(probs):
            for k, mask in enumerate(masks):
                boot[b, r, k] = metric_vector(labels, p, weights=weights * mask, rank=ranks[r])
    return point, boot


def leak_free_metrics(
    image_runs: dict[tuple[str, int], pd.DataFrame],
    lesion_runs: dict[tuple[str, int], pd.DataFrame],
    image_split: pd.DataFrame,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Each model on the lesion split, on the image split's whole test set and on its leak-free part.

    ``image_runs`` / ``lesion_runs`` map (model, seed) to a run's predictions.csv frame. Only seeds with
    all four runs (both models on both splits) count, so every comparison rests on the same seeds.
    Returns None when no seed is complete.
    """
    seeds = sorted(
        {s for _, s in image_runs if all((k, s) in image_runs and (k, s) in lesion_runs for k in MODEL_KINDS)}
    )
    if not seeds:
        return None
    keys = [(k, s) for k in MODEL_KINDS for s in seeds]
    image_frames = [image_runs[key] for key in keys]
    free = leak_free_mask(image_split, image_frames[0].image_id)
    every = np.ones(len(free), dtype=bool)
    image_point, image_boot = _bootstrap(image_frames, [every, free], n_bootstrap, seed)
    lesion_frames = [lesion_runs[key] for key in keys]
    lesion_point, lesion_boot = _bootstrap(lesion_frames, [np.ones(len(lesion_frames[0]), bool)], n_bootstrap, seed + 1)

    # (part, model) -> per-seed (S, M) and bootstrap (B, S, M)
    n = len(seeds)
    rows = {k: slice(i * n, (i + 1) * n) for i, k in enumerate(MODEL_KINDS)}
    values = {}
    for k in MODEL_KINDS:
        values[("lesion", k)] = (lesion_point[rows[k], 0], lesion_boot[:, rows[k], 0])
        values[("image", k)] = (image_point[rows[k], 0], image_boot[:, rows[k], 0])
        values[("leak_free", k)] = (image_point[rows[k], 1], image_boot[:, rows[k], 1])
    for part in PARTS:
        (qp, qb), (cp, cb) = values[(part, "qcnn")], values[(part, "classical")]
        values[(part, "difference")] = (qp - cp, qb - cb)

    def change(who: str, minuend: str, subtrahend: str) -> dict[str, Any]:
        (ap, ab), (bp, bb) = values[(minuend, who)], values[(subtrahend, who)]
        return seed_estimate(ap - bp, ab - bb, seeds)

    labels, test = image_frames[0].label.to_numpy(), lesion_frames[0].label.to_numpy()
    return {
        "seeds": seeds,
        "n_bootstrap": n_bootstrap,
        "bootstrap_unit": "lesion",
        "interval_method": INTERVAL_METHOD,
        "parts": {
            "lesion": {"label": PART_LABELS["lesion"], "n": len(test), "n_malignant": int(test.sum())},
            "image": {"label": PART_LABELS["image"], "n": len(labels), "n_malignant": int(labels.sum())},
            "leak_free": {
                "label": PART_LABELS["leak_free"],
                "n": int(free.sum()),
                "n_malignant": int(labels[free].sum()),
            },
        },
        "metrics": {
            who: {part: seed_estimate(*values[(part, who)], seeds) for part in PARTS}
            for who in (*MODEL_KINDS, "difference")
        },
        "inflation": {
            who: {
                "image_minus_leak_free": change(who, "image", "leak_free"),
                "image_minus_lesion": change(who, "image", "lesion"),
            }
            for who in (*MODEL_KINDS, "difference")
        },
    }


def write_leakage(
    ws: Any, image_experiment: str | Path, lesion_experiment: str | Path, n_bootstrap: int = 2000
) -> dict[str, Any]:
    """``results/leakage.json``: both splits' leakage counts, and the models' metrics once image-split runs exist."""
    from qcnn.io import write_json
    from qcnn.runs import finished_predictions, load_split
    from qcnn.sweep import load_experiment

    image_split = load_split(ws, "image")
    image_runs = finished_predictions(load_experiment(image_experiment), ws, 1.0, "image")
    lesion_runs = finished_predictions(load_experiment(lesion_experiment), ws, 1.0, "lesion")
    result = {
        "description": "Test images whose lesion has another image in train or val, per split protocol; "
        "the models on the image split's whole test set and on its leak-free part",
        "splits": {
            "lesion": {"file": paths.SPLIT_FILE, **leakage_counts(load_split(ws, "lesion"))},
            "image": {"file": paths.IMAGE_SPLIT_FILE, **leakage_counts(image_split)},
        },
        "image_experiment": Path(image_experiment).stem,
        "lesion_experiment": f"{Path(lesion_experiment).stem} (fraction 1)",
        "runs_found": {"image": len(image_runs), "lesion": len(lesion_runs)},
        "models": leak_free_metrics(image_runs, lesion_runs, image_split, n_bootstrap),
    }
    write_json(ws.results_dir / LEAKAGE_FILE, result)
    return result
