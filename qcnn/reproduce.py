"""The whole chain, resumable: split, backbone, both models for every seed, evaluation, summary.

Seeds run in order, both models per seed, and the evaluation and summary are refreshed after
each seed, so an interrupted reproduction still leaves complete, consistent results behind.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd

from qcnn import paths
from qcnn.backbone import BACKBONE_FILE
from qcnn.data import read_metadata, resolve_data_dir
from qcnn.evaluate import APP_SEED, evaluate_run, run_dir, summarize
from qcnn.models import model_file
from qcnn.pretrain import PretrainConfig, pretrain_backbone
from qcnn.split import make_split, read_split, write_split
from qcnn.train import TrainConfig, run_weights_path, train_run


def _trained(results_dir: Path, checkpoint_dir: Path, kind: str, seed: int, epochs: int) -> bool:
    history = run_dir(results_dir, kind, seed) / "history.csv"
    return (run_weights_path(checkpoint_dir, kind, seed).is_file() and history.is_file()
            and len(pd.read_csv(history)) >= epochs)


def _evaluated(results_dir: Path, checkpoint_dir: Path, kind: str, seed: int) -> bool:
    predictions = run_dir(results_dir, kind, seed) / "predictions.csv"
    weights = run_weights_path(checkpoint_dir, kind, seed)
    return predictions.is_file() and predictions.stat().st_mtime >= weights.stat().st_mtime


def reproduce(data_dir: str | Path | None, results_dir: Path, checkpoint_dir: Path, seeds: list[int],
              train_cfg: TrainConfig, pretrain_cfg: PretrainConfig, n_bootstrap: int = 2000) -> dict:
    start = time.perf_counter()
    data_dir = resolve_data_dir(data_dir)
    split_path = results_dir / paths.SPLIT_FILE
    split = make_split(read_metadata(data_dir))
    if split_path.is_file() and not read_split(split_path).equals(split):
        raise ValueError(f"{split_path} differs from the protocol's split; delete it to regenerate.")
    write_split(split, split_path)

    if not (checkpoint_dir / BACKBONE_FILE).is_file():
        print("[backbone] pretraining on the benign pool")
        pretrain_backbone(split, data_dir, checkpoint_dir / BACKBONE_FILE,
                          results_dir / paths.BACKBONE_HISTORY_FILE, pretrain_cfg)

    runs = [(kind, seed) for seed in seeds for kind in paths.MODEL_KINDS]
    summary: dict = {}
    for i, (kind, seed) in enumerate(runs, 1):
        label = f"[{i}/{len(runs)}] {paths.run_name(kind, seed)}"
        if _trained(results_dir, checkpoint_dir, kind, seed, train_cfg.epochs):
            print(f"{label}: trained, skipped")
        else:
            print(f"{label}: training ({time.perf_counter() - start:.0f} s elapsed)")
            train_run(kind, seed, split, data_dir, results_dir, checkpoint_dir, train_cfg)
        if not _evaluated(results_dir, checkpoint_dir, kind, seed):
            evaluate_run(kind, seed, split, data_dir, results_dir, checkpoint_dir)
        if kind == paths.MODEL_KINDS[-1]:
            if seed == APP_SEED:
                for k in paths.MODEL_KINDS:
                    shutil.copyfile(run_weights_path(checkpoint_dir, k, seed), model_file(k, checkpoint_dir))
            summary = summarize(results_dir, n_bootstrap)
    print(f"reproduce: done in {time.perf_counter() - start:.0f} s")
    return summary
