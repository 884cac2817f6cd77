"""Cached loaders for the pipeline's result files. Every loader returns None when its file is missing.

The results folder is read from ``$QCNN_RESULTS_DIR`` at call time (falling back to
``qcnn.paths.RESULTS_DIR``), so a test or a user can point a running process elsewhere. Caches are
keyed on the file's path and modification time: a file the pipeline rewrites is picked up on the
next rerun without restarting the app.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from qcnn import paths
from qcnn.app import controls, regime
from qcnn.paths import results_dir

if TYPE_CHECKING:  # pandas is imported on first use: the Overview renders without it (cold start)
    import pandas as pd

KINDS = paths.MODEL_KINDS  # ("qcnn", "classical")
BACKBONE_CONFIG_FILE = "backbone_history.json"
POOL_ORDER = ("pretrain", "train", "val", "test", "excluded")


def run_dir(kind: str, seed: int) -> Path:
    return results_dir() / paths.RUNS_DIR / paths.run_name(kind, seed)


def stamp(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


@st.cache_data(show_spinner=False, max_entries=64)
def _read_csv(path: str, mtime: int) -> pd.DataFrame:
    import pandas as pd

    return pd.read_csv(path, dtype={"image_id": str, "lesion_id": str, "dx": str, "pool": str})


@st.cache_data(show_spinner=False, max_entries=64)
def _read_json(path: str, mtime: int) -> dict:
    return json.loads(Path(path).read_text())


def read_csv(path: Path) -> pd.DataFrame | None:
    mtime = stamp(path)
    if mtime is None:
        return None
    try:
        return _read_csv(str(path), mtime)
    except (OSError, ValueError):  # pandas' ParserError is a ValueError
        return None


def read_json(path: Path) -> dict | None:
    mtime = stamp(path)
    if mtime is None:
        return None
    try:
        return _read_json(str(path), mtime)
    except (OSError, ValueError):
        return None


# --- split --------------------------------------------------------------------------------------


def load_split() -> pd.DataFrame | None:
    return read_csv(results_dir() / paths.SPLIT_FILE)


@st.cache_data(show_spinner=False, max_entries=4)
def _split_summary(path: str, mtime: int) -> dict:
    pools: dict[str, dict] = {}
    lesions: set[str] = set()
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            pool = pools.setdefault(row["pool"], {"images": 0, "lesions": set(), "malignant": 0})
            pool["images"] += 1
            pool["lesions"].add(row["lesion_id"])
            pool["malignant"] += int(row["label"])
            lesions.add(row["lesion_id"])
    order = [p for p in POOL_ORDER if p in pools] + sorted(p for p in pools if p not in POOL_ORDER)
    return {
        "n_images": sum(p["images"] for p in pools.values()),
        "n_lesions": len(lesions),
        "pools": {
            p: {"images": pools[p]["images"], "lesions": len(pools[p]["lesions"]), "malignant": pools[p]["malignant"]}
            for p in order
        },
    }


def split_summary() -> dict | None:
    """Images, lesions and malignant images per pool of split.csv (no pandas: the Overview's cold start)."""
    path = results_dir() / paths.SPLIT_FILE
    mtime = stamp(path)
    if mtime is None:
        return None
    try:
        return _split_summary(str(path), mtime)
    except (OSError, KeyError, ValueError):
        return None


# --- summary and backbone -----------------------------------------------------------------------


def load_summary() -> dict | None:
    summary = read_json(results_dir() / paths.SUMMARY_FILE)
    if summary is None or "models" not in summary or "difference" not in summary:
        return None
    return summary


def load_ledger() -> dict | None:
    """results/ledger.json (``qcnn ledger``): the claim-by-claim ledger and the per-metric verdicts."""
    ledger = read_json(results_dir() / "ledger.json")
    return ledger if ledger and "claims" in ledger else None


def load_referee() -> dict | None:
    """results/referee.json (``qcnn referee``): threshold analysis, calibration, subgroups."""
    referee = read_json(results_dir() / "referee.json")
    return referee if referee and "reported_threshold" in referee else None


MAP_COLUMNS = {"image_id", "model", "pc1", "pc2"}


def load_map() -> tuple[pd.DataFrame, dict] | None:
    """results/map.csv and map.json (``qcnn map``): each test image's 2-D place in each model's outcome space."""
    coords, info = read_csv(results_dir() / paths.MAP_CSV), read_json(results_dir() / paths.MAP_JSON)
    if coords is None or info is None or not set(coords.columns) >= MAP_COLUMNS or "models" not in info:
        return None
    return coords, info


CONTROLS_SUMMARY_FILE = f"{paths.EXPERIMENTS_DIR}/controls/{paths.SUMMARY_FILE}"


def load_controls_summary() -> dict | None:
    """results/experiments/controls/summary.json (written by `qcnn sweep experiments/controls.toml`)."""
    summary = load_experiment_summary(controls.EXPERIMENT)
    return summary if summary and "variants" in summary else None


def load_experiment_summary(name: str) -> dict | None:
    """results/experiments/NAME/summary.json (written by `qcnn sweep experiments/NAME.toml`)."""
    summary = read_json(results_dir() / paths.EXPERIMENTS_DIR / name / paths.SUMMARY_FILE)
    return summary if summary and ("settings" in summary or "variants" in summary) else None


def load_backbone_history() -> pd.DataFrame | None:
    return read_csv(results_dir() / paths.BACKBONE_HISTORY_FILE)


def backbone_summaries() -> dict[str, dict | None]:
    """Per backbone (committed first), the summary of both models trained on it."""
    return {name: load_experiment_summary(experiment) for name, (_, experiment) in regime.BACKBONES.items()}


def load_backbones(metric: str) -> list[regime.Backbone]:
    """Each pretrained backbone that has a history, with both models trained on it (where they are)."""
    found = [
        regime.backbone(name, read_csv(results_dir() / history), load_experiment_summary(experiment), metric)
        for name, (history, experiment) in regime.BACKBONES.items()
    ]
    return [b for b in found if b is not None]


def load_backbone_comparison() -> dict | None:
    """results/backbones.json (written by `qcnn backbones`): the change from one backbone to the other."""
    return read_json(results_dir() / paths.BACKBONES_FILE)


def load_backbone_config() -> dict | None:
    return read_json(results_dir() / BACKBONE_CONFIG_FILE)


# --- runs ---------------------------------------------------------------------------------------


def available_seeds(file: str = "history.csv") -> list[int]:
    """Seeds for which both models have ``file``."""
    root = results_dir() / paths.RUNS_DIR
    if not root.is_dir():
        return []
    seeds = set()
    for path in root.glob(f"*_seed*/{file}"):
        kind, _, seed = path.parent.name.rpartition("_seed")
        if kind in KINDS and seed.isdigit():
            seeds.add(int(seed))
    return sorted(s for s in seeds if all((run_dir(k, s) / file).is_file() for k in KINDS))


def missing_run_file(file: str, seed: int = 0) -> str:
    """The first of the two runs' ``file`` that is missing, relative to the results folder (for messages)."""
    for kind in KINDS:
        if not (run_dir(kind, seed) / file).is_file():
            return f"{paths.RUNS_DIR}/{paths.run_name(kind, seed)}/{file}"
    return f"{paths.RUNS_DIR}/{paths.run_name(KINDS[0], seed)}/{file}"


def load_history(kind: str, seed: int) -> pd.DataFrame | None:
    return read_csv(run_dir(kind, seed) / "history.csv")


def load_histories() -> pd.DataFrame | None:
    """Every run's history in one long frame with ``kind``, ``seed`` and ``complete`` columns.

    ``complete`` is False for a run still training (fewer epochs than its config.json asks for).
    """
    root = results_dir() / paths.RUNS_DIR
    frames = []
    for path in sorted(root.glob("*_seed*/history.csv")) if root.is_dir() else []:
        kind, _, seed = path.parent.name.rpartition("_seed")
        if kind in KINDS and seed.isdigit():
            history = read_csv(path)
            if history is not None and len(history):
                config = load_config(kind, int(seed)) or {}
                complete = int(history.epoch.max()) >= int(config.get("epochs_run", 0))
                frames.append(history.assign(kind=kind, seed=int(seed), complete=complete))
    if not frames:
        return None
    import pandas as pd

    out = pd.concat(frames, ignore_index=True)
    out["best"] = out["best"].astype(str).str.lower().eq("true") if "best" in out else False
    out["gap"] = out.val_loss - out.train_loss
    return out


def load_metrics(kind: str, seed: int) -> dict | None:
    return read_json(run_dir(kind, seed) / "metrics.json")


def load_config(kind: str, seed: int) -> dict | None:
    return read_json(run_dir(kind, seed) / "config.json")


def training_settings(config: dict) -> dict:
    """A run's config.json as one flat table: its TrainConfig and what the run measured about itself."""
    return {
        **config.get("train", {}),
        **{k: config[k] for k in ("epochs_run", "n_train", "n_val", "device") if k in config},
    }


def load_predictions(kind: str, seed: int) -> pd.DataFrame | None:
    return read_csv(run_dir(kind, seed) / "predictions.csv")


def load_paired_predictions(seed: int) -> pd.DataFrame | None:
    """Both models' test probabilities side by side: image_id, lesion_id, dx, label, p_qcnn, p_classical."""
    q, c = load_predictions("qcnn", seed), load_predictions("classical", seed)
    if q is None or c is None:
        return None
    paired = q.rename(columns={"probability": "p_qcnn"}).merge(
        c[["image_id", "probability"]].rename(columns={"probability": "p_classical"}), on="image_id", how="inner"
    )
    return paired[["image_id", "lesion_id", "dx", "label", "p_qcnn", "p_classical"]]


def default_seed(seeds: list[int], summary: dict | None = None) -> int | None:
    """The summary's app seed (fixed in advance by the pipeline) when available, else the first seed."""
    if not seeds:
        return None
    app_seed = (summary or {}).get("app_seed", 0)
    return app_seed if app_seed in seeds else seeds[0]
