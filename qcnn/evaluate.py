"""Score every trained run on the test pool and summarise the comparison with its uncertainty."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from qcnn import paths
from qcnn.config import RunSpec
from qcnn.constants import APP_SEED, MODEL_KINDS, THRESHOLD
from qcnn.errors import MissingFileError
from qcnn.io import write_csv, write_json
from qcnn.features import cached_features
from qcnn.metrics import METRICS, confusion, curves, metric_vector, threshold_metrics
from qcnn.models import load_model, predict
from qcnn.runtime import CPU
from qcnn.stats import at_matched_recall, interval, interval_method, lesion_bootstrap, mcnemar, seed_lesion_interval


def run_dir(results_dir: str | Path, kind: str, seed: int) -> Path:
    return Path(results_dir) / paths.RUNS_DIR / paths.run_name(kind, seed)


def trained_runs(results_dir: str | Path) -> list[tuple[str, int]]:
    """(kind, seed) of every run of the reproduction's pair with a training history, sorted."""
    runs = []
    for history in sorted((Path(results_dir) / paths.RUNS_DIR).glob("*_seed*/history.csv")):
        kind, _, seed = history.parent.name.rpartition("_seed")
        if kind in MODEL_KINDS and seed.isdigit():
            runs.append((kind, int(seed)))
    return sorted(runs, key=lambda r: (r[1], r[0]))


def evaluate_run(
    spec: RunSpec,
    split: pd.DataFrame,
    data_dir: str | Path,
    run_dir: str | Path,
    weights_path: str | Path,
    checkpoint_dir: str | Path,
    precision: str = "fp32",
    device: torch.device = CPU,
    cache_dir: str | Path | None = None,
) -> dict:
    """Score one run's best weights on the val and test pools; write its predictions and metrics.json.

    float32 by default, so the committed probabilities are what the app computes for the same image.
    """
    run_dir = Path(run_dir)
    model = load_model(
        model_path=weights_path, checkpoint_dir=checkpoint_dir, device=device, backbone_file=spec.backbone
    )
    scored = {}
    for pool, file in (("val", "val_predictions.csv"), ("test", "predictions.csv")):
        rows = split[split.pool == pool].reset_index(drop=True)
        features = cached_features(
            split,
            pool,
            1,
            data_dir,
            checkpoint_dir,
            stage=model.cached_stage,
            precision=precision,
            device=device,
            cache_dir=cache_dir,
            backbone_file=spec.backbone,
        )[0]
        probabilities = predict(model, features, precision)
        write_csv(
            rows[["image_id", "lesion_id", "dx", "label"]].assign(probability=probabilities.round(7)), run_dir / file
        )
        scored[pool] = (rows.label.to_numpy(), probabilities)
    history = pd.read_csv(run_dir / "history.csv")
    labels, probabilities = scored["test"]
    metrics = {
        "threshold": THRESHOLD,
        "precision_policy": precision,
        "device": str(device),
        "best_epoch": int(history.loc[history.val_auc.idxmax(), "epoch"]),
        "n": len(labels),
        "n_malignant": int(labels.sum()),
        **threshold_metrics(labels, probabilities),
        "confusion": confusion(labels, probabilities),
        **curves(labels, probabilities),
    }
    write_json(run_dir / "metrics.json", metrics)
    return metrics


def _as_dict(values: np.ndarray) -> dict[str, float]:
    return {m: round(float(v), 6) for m, v in zip(METRICS, values, strict=True)}


def _as_intervals(values: np.ndarray) -> dict[str, list[float]]:
    return {m: [round(float(lo), 6), round(float(hi), 6)] for m, (lo, hi) in zip(METRICS, values, strict=True)}


def summarize(results_dir: str | Path, n_bootstrap: int = 2000, seed: int = 0) -> dict:
    """results/summary.json over the seeds for which both models have predictions."""
    results_dir = Path(results_dir)

    def predictions(kind: str, s: int) -> pd.DataFrame:
        return pd.read_csv(run_dir(results_dir, kind, s) / "predictions.csv", dtype={"image_id": str})

    seeds = sorted(
        {
            s
            for _, s in trained_runs(results_dir)
            if all((run_dir(results_dir, k, s) / "predictions.csv").is_file() for k in MODEL_KINDS)
        }
    )
    if APP_SEED not in seeds:
        raise MissingFileError(
            f"No evaluated pair of runs for seed {APP_SEED} under {results_dir}: run "
            "`qcnn reproduce` (or `qcnn train` for both models, then `qcnn evaluate`) first."
        )
    frames = {(k, s): predictions(k, s) for k in MODEL_KINDS for s in seeds}
    base = frames[("qcnn", APP_SEED)]
    for frame in frames.values():
        if not frame.image_id.equals(base.image_id):
            raise ValueError("Runs were scored on different test images; re-run `qcnn evaluate`.")
    labels, lesions = base.label.to_numpy(), base.lesion_id.to_numpy()
    probs = np.stack([frames[(k, s)].probability.to_numpy() for k in MODEL_KINDS for s in seeds])
    point = np.stack([metric_vector(labels, p) for p in probs])
    point = point.reshape(len(MODEL_KINDS), len(seeds), len(METRICS))
    boot = lesion_bootstrap(labels, lesions, probs, n_bootstrap, seed)
    boot = boot.reshape(n_bootstrap, len(MODEL_KINDS), len(seeds), len(METRICS))
    s0 = seeds.index(APP_SEED)

    def block(pt: np.ndarray, bs: np.ndarray, bounds: tuple[float, float]) -> dict:
        """pt: (seeds, metrics); bs: (bootstrap, seeds, metrics); bounds: the values' range (clips ``ci95``).

        ``ci95`` (seeds and lesions, ``qcnn.stats.seed_lesion_interval``) is the interval the app and
        README show; ``seed0`` keeps seed 0's lesion-only interval as a secondary view.
        """
        return {
            "per_seed": {str(s): _as_dict(pt[i]) for i, s in enumerate(seeds)},
            "mean": _as_dict(pt.mean(0)),
            "sd": _as_dict(pt.std(0, ddof=1) if len(seeds) > 1 else 0 * pt[0]),
            "seed0": {
                m: {"value": round(float(pt[s0, j]), 6), "ci95": [round(float(x), 6) for x in ci]}
                for j, (m, ci) in enumerate(zip(METRICS, interval(bs[:, s0]), strict=True))
            },
            "ci95": _as_intervals(np.clip(seed_lesion_interval(pt, bs, lesions_if_one_seed=True), *bounds)),
            "interval_method": interval_method(len(seeds)),
        }

    q, c = MODEL_KINDS.index("qcnn"), MODEL_KINDS.index("classical")
    p_q, p_c = probs[q * len(seeds) + s0], probs[c * len(seeds) + s0]
    recall_q, recall_c = point[q, s0, METRICS.index("recall")], point[c, s0, METRICS.index("recall")]
    configs = {k: json.loads((run_dir(results_dir, k, APP_SEED) / "config.json").read_text()) for k in MODEL_KINDS}
    timing = {
        k: {
            "seconds_per_epoch_median": round(
                float(
                    np.median(
                        np.concatenate(
                            [pd.read_csv(run_dir(results_dir, k, s) / "history.csv").seconds.to_numpy() for s in seeds]
                        )
                    )
                ),
                2,
            )
        }
        for k in MODEL_KINDS
    }
    summary = {
        "metrics": list(METRICS),
        "seeds": seeds,
        "app_seed": APP_SEED,
        "n_test": len(labels),
        "n_test_malignant": int(labels.sum()),
        "n_bootstrap": n_bootstrap,
        "bootstrap_unit": "lesion",
        "bootstrap_seed": seed,
        "models": {k: block(point[i], boot[:, i], (0, 1)) for i, k in enumerate(MODEL_KINDS)},
        "difference": block(point[q] - point[c], boot[:, q] - boot[:, c], (-1, 1)),
        "mcnemar": {"seed": APP_SEED, **mcnemar(labels, p_q, p_c)},
        "matched_recall": {
            "seed": APP_SEED,
            "qcnn_at_classical_recall": at_matched_recall(labels, p_q, float(recall_c)),
            "classical_at_qcnn_recall": at_matched_recall(labels, p_c, float(recall_q)),
        },
        "parameters": {k: configs[k]["parameters"] for k in MODEL_KINDS},
        # runs evaluated before evaluation moved to float32 and whose weights are gone keep their bf16 scores
        "evaluation_precision": {
            f"{k}_seed{s}": json.loads((run_dir(results_dir, k, s) / "metrics.json").read_text()).get(
                "precision_policy", "bf16"
            )
            for k in MODEL_KINDS
            for s in seeds
        },
        "timing": timing,
    }
    write_json(results_dir / paths.SUMMARY_FILE, summary)
    return summary
