"""The whole chain, resumable: split, backbone, both models for every seed, evaluation, summary.

Seeds run in order, both models per seed; each run is skipped when its completion record equals
what is asked (``qcnn.runs``), and the summary is refreshed after each seed, so an interrupted
reproduction still leaves complete, consistent results behind.
"""

from __future__ import annotations

import shutil
import time

from qcnn.backbone import BACKBONE_FILE
from qcnn.config import MODEL_PRESETS, PretrainConfig, RunSpec, TrainConfig
from qcnn.constants import APP_SEED, MODEL_KINDS
from qcnn.data import read_metadata
from qcnn.errors import ConfigError
from qcnn.evaluate import summarize
from qcnn import paths
from qcnn.io import atomic_write, write_csv
from qcnn.models import model_file
from qcnn.pretrain import pretrain_backbone
from qcnn.runs import Workspace, execute_run, run_paths, split_path
from qcnn.runtime import resolve_device
from qcnn.split import make_split, read_split


def reproduce(
    ws: Workspace,
    seeds: list[int],
    train_cfg: TrainConfig,
    pretrain_cfg: PretrainConfig,
    n_bootstrap: int = 2000,
    force: bool = False,
) -> dict:
    start = time.perf_counter()
    ws = ws.with_data()
    split = make_split(read_metadata(ws.data_dir))
    path = split_path(ws, "lesion")
    if path.is_file() and not read_split(path).equals(split):
        raise ConfigError(f"{path} differs from the protocol's split; delete it to regenerate.")
    write_csv(split, path)

    if not (ws.checkpoint_dir / BACKBONE_FILE).is_file():
        print("[backbone] pretraining on the benign pool")
        pretrain_backbone(
            split,
            ws.data_dir,
            ws.checkpoint_dir / BACKBONE_FILE,
            ws.results_dir / paths.BACKBONE_HISTORY_FILE,
            pretrain_cfg,
            resolve_device(ws.device),
        )

    specs = [RunSpec(kind, seed, MODEL_PRESETS[kind], train_cfg) for seed in seeds for kind in MODEL_KINDS]
    summary: dict = {}
    for i, spec in enumerate(specs, 1):
        print(f"[{i}/{len(specs)}] {spec.name} ({time.perf_counter() - start:.0f} s elapsed)", flush=True)
        execute_run(spec, ws, force=force)
        if spec.variant == MODEL_KINDS[-1]:
            if spec.seed == APP_SEED:
                for kind in MODEL_KINDS:
                    weights = run_paths(RunSpec(kind, APP_SEED, MODEL_PRESETS[kind], train_cfg), ws)[1]
                    atomic_write(model_file(kind, ws.checkpoint_dir), lambda tmp, w=weights: shutil.copyfile(w, tmp))
            summary = summarize(ws.results_dir, n_bootstrap)
    print(f"reproduce: done in {time.perf_counter() - start:.0f} s")
    return summary
