"""Synthetic, schema-valid result files for developing and testing the app (never real results).

``write_synthetic_results(tmp_dir)`` writes everything the pipeline writes into ``results/`` —
split.csv, backbone_history.csv/json, runs/{kind}_seed{S}/{history.csv, config.json, metrics.json,
predictions.csv}, map.csv/json and summary.json (by the real ``qcnn.evaluate.summarize``) — from made-up
probabilities, so the pages can be exercised before (or without) a real reproduction. Point the app
at it with ``QCNN_RESULTS_DIR``. It refuses to write into the project's own results/ folder.
``write_synthetic_experiment`` does the same for an experiment file's runs and summary.
"""

from __future__ import annotations

import json
from typing import Any
from pathlib import Path

import numpy as np
import pandas as pd

from qcnn import paths

DX_MIX = {"nv": 0.67, "bkl": 0.11, "vasc": 0.014, "df": 0.012, "mel": 0.11, "bcc": 0.05, "akiec": 0.034}
MALIGNANT = ("mel", "bcc", "akiec")


def _synthetic_split(rng: np.random.Generator, n_test: int) -> pd.DataFrame:
    sizes = {"pretrain": n_test, "train": n_test // 3, "val": n_test // 12, "test": n_test, "excluded": n_test // 10}
    rows, lesion = [], 0
    for pool, n in sizes.items():
        dx = rng.choice(list(DX_MIX), size=n, p=np.array(list(DX_MIX.values())) / sum(DX_MIX.values()))
        if pool == "pretrain":
            dx = np.where(np.isin(dx, MALIGNANT), "nv", dx)
        i = 0
        while i < n:
            k = min(int(rng.choice([1, 1, 1, 2, 3])), n - i)  # several images per lesion
            for _ in range(k):
                rows.append((f"SYN_{len(rows):07d}", f"LES_{lesion:07d}", dx[i], pool))
            lesion += 1
            i += k
    split = pd.DataFrame(rows, columns=["image_id", "lesion_id", "dx", "pool"])
    split["label"] = split.dx.isin(MALIGNANT).astype(int)
    return split[["image_id", "lesion_id", "dx", "label", "pool"]]


def _history(rng: np.random.Generator, kind: str, epochs: int) -> pd.DataFrame:
    e = np.arange(1, epochs + 1)
    if kind == "classical":  # overfits: train loss falls far, val loss turns up
        train = 0.65 * np.exp(-e / 3.0) + 0.05
        val = 0.50 + 0.012 * (e - 4) ** 2
    else:
        train = 0.55 * np.exp(-e / 5.0) + 0.22
        val = 0.52 + 0.004 * (e - 5) ** 2
    train = train + rng.normal(0, 0.01, epochs)
    val = val + rng.normal(0, 0.015, epochs)
    auc = np.clip(
        0.80 + 0.06 * (1 - np.exp(-e / 2.5)) - 0.003 * np.maximum(e - 6, 0) + rng.normal(0, 0.005, epochs), 0, 1
    )
    history = pd.DataFrame(
        {
            "epoch": e,
            "train_loss": train,
            "val_loss": val,
            "val_auc": auc,
            "val_accuracy": np.clip(auc - 0.08 + rng.normal(0, 0.01, epochs), 0, 1),
            "lr": 1e-3 * 0.5 * (1 + np.cos(np.pi * (e - 1) / epochs)),
            "seconds": rng.normal(40.0 if kind == "qcnn" else 9.0, 1.0, epochs).round(2),
        }
    )
    history["best"] = history.val_auc == history.val_auc.max()
    return history


def _probabilities(rng: np.random.Generator, labels: np.ndarray, latent: np.ndarray, kind: str) -> np.ndarray:
    noise = rng.normal(0, 0.6, len(labels))
    bias = 0.0 if kind == "qcnn" else 0.5  # the classical model calls more lesions malignant
    logit = 1.45 * latent + bias + noise - 1.4
    return (1 / (1 + np.exp(-logit))).round(6)


def write_synthetic_results(
    directory: str | Path,
    n_test: int = 800,
    seeds: tuple[int, ...] = (0, 1, 2),
    epochs: int = 10,
    n_bootstrap: int = 100,
    seed: int = 0,
    with_summary: bool = True,
    split: pd.DataFrame | None = None,
    val_seeds: tuple[int, ...] = (0,),
) -> Path:
    """Write a complete synthetic results folder; returns its path.

    ``val_seeds``: the seeds whose runs also wrote validation predictions (the committed reproduction:
    only seed 0's evaluation wrote them).

    ``split`` (optional, a real split.csv frame): use its pools and image ids — ``n_test`` of its test
    images — so that a gallery can show real images next to made-up probabilities.
    """
    from qcnn.config import MODEL_PRESETS, RunSpec, TrainConfig
    from qcnn.evaluate import summarize
    from qcnn.metrics import confusion, curves, threshold_metrics

    directory = Path(directory)
    if directory.resolve() == (paths.REPO_ROOT / "results").resolve():
        raise ValueError("Synthetic results must never be written into the project's results/ folder")
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    if split is None:
        split = _synthetic_split(rng, n_test)
    else:
        test_ids = rng.choice(split.image_id[split.pool == "test"].to_numpy(), size=n_test, replace=False)
        split = split[(split.pool != "test") | split.image_id.isin(test_ids)].reset_index(drop=True)
    split.to_csv(directory / paths.SPLIT_FILE, index=False)

    bb_epochs = 6
    e = np.arange(1, bb_epochs + 1)
    backbone = pd.DataFrame(
        {
            "epoch": e,
            "train_loss": 1.2 * np.exp(-e / 2.5) + 0.3,
            "val_loss": 1.1 * np.exp(-e / 3) + 0.45,
            "val_accuracy": 0.5 + 0.3 * (1 - np.exp(-e / 2)),
            "val_balanced_accuracy": 0.45 + 0.3 * (1 - np.exp(-e / 2)),
            "lr": 2e-3 * np.ones(bb_epochs),
            "seconds": 60.0 + rng.normal(0, 2, bb_epochs),
        }
    )
    backbone["selected"] = backbone.val_balanced_accuracy == backbone.val_balanced_accuracy.max()
    backbone.to_csv(directory / paths.BACKBONE_HISTORY_FILE, index=False)
    (directory / "backbone_history.json").write_text(json.dumps({"synthetic": True, "epochs": bb_epochs}))

    test = split[split.pool == "test"].reset_index(drop=True)
    labels = test.label.to_numpy()
    lesion_effect = dict(zip(test.lesion_id.unique(), rng.normal(0, 1, test.lesion_id.nunique()), strict=True))
    base_latent = 1.6 * labels + test.lesion_id.map(lesion_effect).to_numpy()
    n_split = {pool: int((split.pool == pool).sum()) for pool in ("train", "val")}
    for s in seeds:
        seed_rng = np.random.default_rng(seed * 1000 + s + 1)
        latent = base_latent + seed_rng.normal(0, 0.35, len(labels))
        for kind in paths.MODEL_KINDS:
            run = directory / paths.RUNS_DIR / paths.run_name(kind, s)
            run.mkdir(parents=True, exist_ok=True)
            history = _history(seed_rng, kind, epochs)
            history.to_csv(run / "history.csv", index=False)
            parameters = {
                "backbone": {"total": 2_782_784, "trainable": 2_099_712},
                "head": {
                    "total": 12_345 if kind == "qcnn" else 6_529,
                    "trainable": 12_345 if kind == "qcnn" else 6_529,
                },
            }
            spec = RunSpec(kind, s, MODEL_PRESETS[kind], TrainConfig(epochs=epochs))
            config = {
                **spec.to_json(),
                "epochs_run": epochs,
                "n_train": n_split["train"],
                "n_val": n_split["val"],
                "device": "synthetic",
                "parameters": parameters,
                "synthetic": True,
            }
            (run / "config.json").write_text(json.dumps(config, indent=1))
            p = _probabilities(seed_rng, labels, latent, kind)
            test[["image_id", "lesion_id", "dx", "label"]].assign(probability=p).to_csv(
                run / "predictions.csv", index=False
            )
            metrics = {
                "threshold": 0.5,
                "precision_policy": "fp32",
                "best_epoch": int(history.loc[history.val_auc.idxmax(), "epoch"]),
                "n": len(test),
                "n_malignant": int(labels.sum()),
                **threshold_metrics(labels, p),
                "confusion": confusion(labels, p),
                **curves(labels, p, max_points=120),
            }
            (run / "metrics.json").write_text(json.dumps(metrics))
            if s in val_seeds:
                _write_val_predictions(split, run, np.random.default_rng([seed, s, len(kind)]), kind)
    _write_map(directory, test, base_latent, np.random.default_rng([seed, 1]))
    if with_summary:
        summarize(directory, n_bootstrap, seed)
        _write_referee_and_ledger(directory, split, rng, n_bootstrap)
    return directory


def _write_val_predictions(split: pd.DataFrame, run: Path, rng: np.random.Generator, kind: str) -> None:
    """The run's validation-pool predictions, from their own generator so the test pool's stay as they were."""
    val = split[split.pool == "val"].reset_index(drop=True)
    labels = val.label.to_numpy()
    p = _probabilities(rng, labels, 1.6 * labels + rng.normal(0, 1, len(labels)), kind)
    val[["image_id", "lesion_id", "dx", "label"]].assign(probability=p).to_csv(run / "val_predictions.csv", index=False)


def _write_map(directory: Path, test: pd.DataFrame, latent: np.ndarray, rng: np.random.Generator) -> None:
    """map.csv and map.json as ``qcnn map`` writes them, with made-up coordinates that follow the latent score."""
    frames, models = [], {}
    for kind in paths.MODEL_KINDS:
        n = len(test)
        frames.append(
            pd.DataFrame(
                {
                    "image_id": test.image_id,
                    "model": kind,
                    "pc1": latent + rng.normal(0, 0.5, n),
                    "pc2": rng.normal(0, 0.4, n),
                    "umap1": 3 * test.label + rng.normal(0, 1, n),
                    "umap2": rng.normal(0, 1, n),
                }
            ).round(5)
        )
        models[kind] = {"file": f"checkpoints/{kind}.safetensors", "sha256_16": "synthetic", "seed": 0}
        models[kind]["pca_explained_variance_ratio"] = [0.62, 0.11] if kind == "qcnn" else [0.55, 0.17]
    pd.concat(frames).to_csv(directory / paths.MAP_CSV, index=False)
    info = {"command": "qcnn map", "n_test": len(test), "models": models, "synthetic": True}
    info["method"] = {"umap": {"n_neighbors": 15, "random_state": 0}}
    (directory / paths.MAP_JSON).write_text(json.dumps(info))


def _write_referee_and_ledger(directory: Path, split: pd.DataFrame, rng: np.random.Generator, n_bootstrap: int) -> None:
    """referee.json (with made-up sex, age and body site per image) and ledger.json, by the real commands' code."""
    from qcnn.ledger import write_ledger
    from qcnn.referee import referee

    metadata = split[["image_id"]].assign(
        sex=rng.choice(["male", "female", "unknown"], len(split), p=[0.5, 0.47, 0.03]),
        age=rng.choice([np.nan, *range(5, 90, 5)], len(split)),
        localization=rng.choice(
            ["back", "trunk", "face", "lower extremity", "acral"], len(split), p=[0.3, 0.3, 0.2, 0.18, 0.02]
        ),
    )
    referee(directory, n_bootstrap=n_bootstrap, metadata=metadata)
    write_ledger(directory, readme=None)


if __name__ == "__main__":
    import sys

    real_split = pd.read_csv(sys.argv[2], dtype=str).astype({"label": int}) if len(sys.argv) > 2 else None
    target = sys.argv[1] if len(sys.argv) > 1 else "/tmp/qcnn_synthetic_results"
    print(write_synthetic_results(target, split=real_split))


def write_synthetic_experiment(
    directory: str | Path,
    experiment_file: str | Path,
    seeds: tuple[int, ...] = (0, 1, 2),
    n_test: int = 300,
    strength: dict[str | tuple[str, float | str], float] | None = None,
    seed: int = 0,
    leak_boost: float = 1.0,
) -> Path:
    """Runs of an experiment file from made-up probabilities, summarised by the real ``summarize_experiment``.

    ``strength`` shifts a variant's separation of the classes (0 = as good as the others), so a test can
    make a variant clearly worse or better and see the words follow: keyed by the variant's name, or by
    (variant, fraction) or (variant, split) for one setting; matching entries add up. An experiment on the
    image split also gets ``split_image.csv`` (the real ``make_split(unit="image")`` of the synthetic
    images), and there a test image whose lesion is in train or val is separated ``leak_boost`` better:
    the near-duplicate a leaky split lets a model recognise.
    """
    from dataclasses import replace

    from qcnn.leakage import leak_free_mask
    from qcnn.runs import RECORD_FILE, Workspace, run_paths
    from qcnn.split import make_split
    from qcnn.summary import summarize_experiment
    from qcnn.sweep import load_experiment

    directory = Path(directory)
    if directory.resolve() == (paths.REPO_ROOT / "results").resolve():
        raise ValueError("Synthetic results must never be written into the project's results/ folder")
    experiment = replace(load_experiment(experiment_file), seeds=tuple(seeds))
    rng = np.random.default_rng(seed)
    split = _synthetic_split(rng, n_test)
    directory.mkdir(parents=True, exist_ok=True)
    split.to_csv(directory / paths.SPLIT_FILE, index=False)
    splits = {"lesion": split}
    if "image" in experiment.splits:
        splits["image"] = make_split(split.drop(columns="pool"), seed=seed, unit="image")
        splits["image"].to_csv(directory / paths.IMAGE_SPLIT_FILE, index=False)
    tests = {unit: s[s.pool == "test"].reset_index(drop=True) for unit, s in splits.items()}
    ws = Workspace(directory, directory / "checkpoints")
    strength = strength or {}
    for spec in experiment.specs():
        run, _ = run_paths(spec, ws, experiment.name)
        run.mkdir(parents=True, exist_ok=True)
        test = tests[spec.split]
        labels = test.label.to_numpy()
        setting = [] if (spec.fraction, spec.split) == (1, "lesion") else [int(1000 * spec.fraction), len(spec.split)]
        run_rng = np.random.default_rng([seed, spec.seed, sum(map(ord, spec.variant)), *setting])
        keys = (spec.variant, (spec.variant, spec.fraction), (spec.variant, spec.split))
        separation = 1.6 + sum(strength.get(k, 0.0) for k in keys)
        leaky = ~leak_free_mask(splits[spec.split], test.image_id)
        logit = separation * labels + leak_boost * leaky * (2 * labels - 1) + run_rng.normal(0, 1, len(labels)) - 1.0
        test[["image_id", "lesion_id", "dx", "label"]].assign(probability=(1 / (1 + np.exp(-logit))).round(6)).to_csv(
            run / "predictions.csv", index=False
        )
        history = _history(run_rng, "qcnn", 4)
        history.to_csv(run / "history.csv", index=False)
        config = {
            **spec.to_json(),
            "epochs_run": 4,
            # the real train pool's size, scaled, and like a real subset's a little different per seed: made up
            "n_train": int(round(1269 * spec.fraction)) - (2 * spec.seed if spec.fraction < 1 else 0),
            "n_val": 319,
            "device": "synthetic",
            "parameters": {"all": {"total": 2_785_193, "trainable": 2_102_121}},
            "synthetic": True,
        }
        (run / "config.json").write_text(json.dumps(config))
        record = {"spec": spec.to_json(), "train_seconds": float(history.seconds.sum()), "eval_seconds": 20.0}
        (run / RECORD_FILE).write_text(json.dumps(record | {"synthetic": True}))
    summary = summarize_experiment(experiment, ws, n_bootstrap=50)
    summary["synthetic"] = True
    path = Path(summary["path"])
    path.write_text(json.dumps(summary))
    return directory


# --- AppTest helpers shared by the page tests ----------------------------------------------------


def assert_no_exception(at: Any) -> None:
    """An AppTest run showed no exception (the message lists them all)."""
    assert not at.exception, "\n".join(str(e.value) for e in at.exception)


def chart_spec(at: Any, key: str) -> dict:
    """The plotly figure (as JSON) of the one chart an AppTest run created with ``key``."""
    matches = [c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert len(matches) == 1, f"no single chart with key {key!r}"
    return json.loads(matches[0].proto.spec)
