"""One run from start to finish, safely resumable: folders, the completion record, train + evaluate.

A run counts as done only when its completion record (``complete.json``: the full ``RunSpec``, the
split, data and backbone digests, the evaluation precision) is written, and that happens last.
``execute_run`` skips a run whose record equals what is asked, refuses one made with other settings
(naming the difference), and re-runs it with ``force``. It is a plain function: the local loop and
Ray tasks call it alike.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from qcnn import paths
from qcnn.backbone import BACKBONE_FILE, file_digest
from qcnn.config import MODEL_PRESETS, RunSpec, differences
from qcnn.constants import MODEL_KINDS
from qcnn.data import resolve_data_dir
from qcnn.errors import ConfigError, MissingFileError, RunMismatchError
from qcnn.features import images_digest
from qcnn.io import write_json
from qcnn.runtime import machine, resolve_device
from qcnn.split import pools_digest, read_split, train_subset

if TYPE_CHECKING:
    from qcnn.sweep import Experiment

RECORD_FILE = "complete.json"
MODEL_POOLS = ("train", "val", "test")


@dataclass(frozen=True)
class Workspace:
    """Where a run reads and writes, and on what hardware; none of it changes what a run is."""

    results_dir: Path  # holds split.csv and the reproduction's runs/; experiments live in experiments/NAME/
    checkpoint_dir: Path  # holds backbone.safetensors; run weights go to runs/ and experiments/NAME/runs/
    data_dir: Path | None = None
    cache_dir: Path | None = None
    device: str = "auto"
    eval_precision: str = "fp32"

    def with_data(self) -> Workspace:
        return replace(self, data_dir=resolve_data_dir(self.data_dir))


def preset_of(spec: RunSpec) -> str | None:
    """The reproduction's model (qcnn / classical) a spec is, on the reproduction's protocol; else None."""
    if spec.fraction != 1 or spec.split != "lesion" or spec.backbone != BACKBONE_FILE:
        return None
    return next((kind for kind, config in MODEL_PRESETS.items() if config == spec.model), None)


def _shares_reproduction_run(spec: RunSpec, reproduction_run: Path) -> bool:
    """Whether the reproduction's folder is free for ``spec`` or already holds this very run.

    A folder from before completion records (only a ``config.json``) counts by its configuration, so an
    experiment never overwrites the reproduction's earlier seeds.
    """
    if preset_of(spec) != spec.variant:
        return False
    record, config = read_record(reproduction_run), reproduction_run / "config.json"
    if record is not None:
        return record["spec"] == spec.to_json()
    if not config.is_file():
        return True
    try:
        return RunSpec.from_json(json.loads(config.read_text())) == spec
    except (KeyError, TypeError, ValueError, ConfigError):
        return False


def run_paths(spec: RunSpec, ws: Workspace, experiment: str | None = None) -> tuple[Path, Path]:
    """(results folder, weights file) of a run.

    An experiment's variant named ``qcnn`` or ``classical`` that is exactly that model on the
    reproduction's split and data lives in the reproduction's folder, unless that folder holds a
    finished run trained otherwise (e.g. in another precision): the experiment reuses the run instead
    of training it twice, and never competes with the reproduction for its folder. Likewise a run
    another experiment has already finished with exactly this spec (the learning curve's full-data
    point is the controls' baseline) is reused from that experiment's folder.
    """
    reproduction = ws.results_dir / paths.RUNS_DIR / spec.name
    if experiment is None or _shares_reproduction_run(spec, reproduction):
        return reproduction, ws.checkpoint_dir / paths.RUNS_DIR / f"{spec.name}.safetensors"
    home = experiment
    if read_record(_experiment_run(ws.results_dir, experiment, spec)) is None:
        home = next(
            (
                folder.name
                for folder in sorted((ws.results_dir / paths.EXPERIMENTS_DIR).glob("*"))
                if folder.name != experiment
                and (read_record(_experiment_run(ws.results_dir, folder.name, spec)) or {}).get("spec")
                == spec.to_json()
            ),
            experiment,
        )
    weights = ws.checkpoint_dir / paths.EXPERIMENTS_DIR / home / paths.RUNS_DIR / f"{spec.name}.safetensors"
    return _experiment_run(ws.results_dir, home, spec), weights


def _experiment_run(results_dir: Path, experiment: str, spec: RunSpec) -> Path:
    return results_dir / paths.EXPERIMENTS_DIR / experiment / paths.RUNS_DIR / spec.name


def split_path(ws: Workspace, unit: str) -> Path:
    return ws.results_dir / (paths.SPLIT_FILE if unit == "lesion" else paths.IMAGE_SPLIT_FILE)


def load_split(ws: Workspace, unit: str) -> pd.DataFrame:
    path = split_path(ws, unit)
    if not path.is_file():
        flag = "" if unit == "lesion" else " --unit image"
        raise MissingFileError(f"{path} not found: run `qcnn split{flag}` first.")
    return read_split(path)


def finished_predictions(
    experiment: Experiment, ws: Workspace, fraction: float, split: str
) -> dict[tuple[str, int], pd.DataFrame]:
    """(model, seed) -> test predictions of the experiment's finished runs of the two models at one setting."""
    pools = load_split(ws, split)
    found = {}
    for spec in experiment.specs():
        if spec.variant not in MODEL_KINDS or spec.fraction != fraction or spec.split != split:
            continue
        folder = run_paths(canonical(spec, pools), ws, experiment.name)[0]
        if read_record(folder) is not None:
            found[(spec.variant, spec.seed)] = pd.read_csv(folder / "predictions.csv", dtype={"image_id": str})
    return found


def expected_record(spec: RunSpec, ws: Workspace, split: pd.DataFrame) -> dict[str, Any]:
    """What a finished run of ``spec`` in this workspace must have recorded."""
    backbone = ws.checkpoint_dir / spec.backbone
    if not backbone.is_file():
        flag = "" if spec.backbone == BACKBONE_FILE else f" --output {spec.backbone}"
        raise MissingFileError(f"{backbone} not found: run `qcnn pretrain-backbone{flag}` first.")
    used = split[split.pool.isin(MODEL_POOLS)]
    return {
        "spec": spec.to_json(),
        "split_digest": pools_digest(used),
        "data_digest": images_digest(Path(ws.data_dir), tuple(used.image_id)),
        "backbone_digest": file_digest(backbone),
        "eval_precision": ws.eval_precision,
    }


def canonical(spec: RunSpec, split: pd.DataFrame) -> RunSpec:
    """The spec with ``min_steps`` dropped where it does not bind (``epochs`` already give that many steps).

    So a learning curve's full-data point is the reproduction's own run, and is reused as such.
    """
    if not spec.train.min_steps:
        return spec
    steps = math.ceil(int(train_subset(split, spec.fraction, spec.seed).sum()) / spec.train.batch_size)
    if spec.train.epochs * steps >= spec.train.min_steps:
        return replace(spec, train=replace(spec.train, min_steps=0))
    return spec


def read_record(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RECORD_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def record_differences(asked: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """What differs between two records, ignoring the variant's name and the run's bookkeeping."""
    keys = ("spec", "split_digest", "data_digest", "backbone_digest", "eval_precision")
    strip = lambda r: {k: ({**r[k], "variant": None} if k == "spec" else r.get(k)) for k in keys}  # noqa: E731
    return differences(strip(asked), strip(found))


def execute_run(spec: RunSpec, ws: Workspace, experiment: str | None = None, force: bool = False) -> dict[str, Any]:
    """Train and evaluate one run unless an equal one is done; returns its completion record."""
    from qcnn.evaluate import evaluate_run
    from qcnn.train import train_run

    ws = ws.with_data()
    split = load_split(ws, spec.split)
    spec = canonical(spec, split)
    run_dir, weights = run_paths(spec, ws, experiment)
    asked = expected_record(spec, ws, split)
    found = read_record(run_dir)
    if found is not None:
        diff = record_differences(asked, found)
        if not diff:
            return found
        if not force:
            raise RunMismatchError(
                f"{run_dir} holds a finished run made with other settings ({'; '.join(diff)}). "
                "Re-run it with --force, or choose another results folder."
            )
        (run_dir / RECORD_FILE).unlink()
    elif not force and _finished_before_records(run_dir):
        raise RunMismatchError(
            f"{run_dir} holds a finished run from before completion records (metrics.json and predictions.csv, "
            f"no {RECORD_FILE}), so its settings cannot be checked. Re-run it with --force, or choose another "
            "results folder."
        )
    device = resolve_device(ws.device)
    start = time.perf_counter()
    train_run(spec, split, ws.data_dir, run_dir, weights, ws.checkpoint_dir, device, ws.cache_dir)
    trained = time.perf_counter()
    evaluate_run(spec, split, ws.data_dir, run_dir, weights, ws.checkpoint_dir, ws.eval_precision, device, ws.cache_dir)
    return write_record(
        run_dir, asked, device, train_seconds=trained - start, eval_seconds=time.perf_counter() - trained
    )


def _finished_before_records(run_dir: Path) -> bool:
    """A run evaluated by an engine that wrote no completion record (the reproduction's seeds 1-4):
    never retrained silently. An interrupted run is evaluated last, so it has no predictions yet."""
    return (run_dir / "metrics.json").is_file() and (run_dir / "predictions.csv").is_file()


def write_record(run_dir: Path, asked: dict[str, Any], device: torch.device, **seconds: float) -> dict[str, Any]:
    record = {
        **asked,
        "device": str(device),
        "machine": machine(device),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **{k: round(v, 1) for k, v in seconds.items()},
    }
    write_json(run_dir / RECORD_FILE, record)
    return record
