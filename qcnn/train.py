"""Train one model (QCNN or classical control) for one seed, from cached prefix features.

Runs every epoch and records it; keeps the weights of the epoch with the best validation AUC,
as the study did. Writes results/runs/{kind}_seed{S}/history.csv and config.json, and the
weights to checkpoints/runs/{kind}_seed{S}.safetensors.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from qcnn import paths
from qcnn.augment import N_DIHEDRAL
from qcnn.backbone import BACKBONE_FILE, load_backbone
from qcnn.features import cached_features
from qcnn.metrics import threshold_metrics
from qcnn.models import LesionClassifier, build_model, save_model


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 16
    lr_layer3: float = 1e-4
    lr_head: float = 3e-3
    weight_decay: float = 1e-2
    augment: bool = True
    bf16: bool = True


def run_weights_path(checkpoint_dir: str | Path, kind: str, seed: int) -> Path:
    return Path(checkpoint_dir) / "runs" / f"{paths.run_name(kind, seed)}.safetensors"


@torch.no_grad()
def predict_from_prefix(model: LesionClassifier, features: torch.Tensor, bf16: bool = True,
                        batch_size: int = 64) -> np.ndarray:
    """Malignancy probabilities for (N, 128, 28, 28) cached prefix features."""
    model.eval()
    out = []
    for i in range(0, len(features), batch_size):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            layer3 = model.layer3(features[i:i + batch_size].float())
        out.append(torch.sigmoid(model.head(layer3.float())))
    return torch.cat(out).numpy().astype(np.float64)


def train_step(model: LesionClassifier, optimizer: torch.optim.Optimizer, prefix_features: torch.Tensor,
               labels: torch.Tensor, bf16: bool = True) -> float:
    """One optimisation step from cached prefix features: layer3 in bfloat16, the head in float32."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        layer3 = model.layer3(prefix_features.float())
    loss = nn.functional.binary_cross_entropy_with_logits(model.head(layer3.float()), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def make_optimizer(model: LesionClassifier, cfg: TrainConfig) -> torch.optim.Optimizer:
    head_decay = [p for n, p in model.head.named_parameters() if p.ndim > 1 and "outcome_map.weights" not in n]
    head_rest = [p for n, p in model.head.named_parameters() if not (p.ndim > 1 and "outcome_map.weights" not in n)]
    return torch.optim.AdamW([
        {"params": model.layer3.parameters(), "lr": cfg.lr_layer3, "weight_decay": cfg.weight_decay},
        {"params": head_decay, "lr": cfg.lr_head, "weight_decay": cfg.weight_decay},
        {"params": head_rest, "lr": cfg.lr_head, "weight_decay": 0.0},  # biases, circuit angles
    ])


def train_run(kind: str, seed: int, split: pd.DataFrame, data_dir: str | Path, results_dir: str | Path,
              checkpoint_dir: str | Path, cfg: TrainConfig) -> pd.DataFrame:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    variants = N_DIHEDRAL if cfg.augment else 1
    train_x = cached_features(split, "train", variants, data_dir, checkpoint_dir)
    val_x = cached_features(split, "val", 1, data_dir, checkpoint_dir)[0]
    train_y = torch.tensor(split.loc[split.pool == "train", "label"].to_numpy(), dtype=torch.float32)
    val_y = split.loc[split.pool == "val", "label"].to_numpy()

    backbone_path = Path(checkpoint_dir) / BACKBONE_FILE
    model = build_model(kind, load_backbone(backbone_path))
    optimizer = make_optimizer(model, cfg)
    steps_per_epoch = int(np.ceil(len(train_y) / cfg.batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=cfg.epochs * steps_per_epoch,
        pct_start=0.1)

    run_dir = Path(results_dir) / paths.RUNS_DIR / paths.run_name(kind, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"model": kind, "seed": seed, **asdict(cfg), "n_train": len(train_y), "n_val": len(val_y),
              "parameters": model.parameter_counts()}
    (run_dir / "config.json").write_text(json.dumps(config, indent=2))
    weights_path = run_weights_path(checkpoint_dir, kind, seed)

    rows, best_auc = [], -np.inf
    bar = tqdm(range(1, cfg.epochs + 1), desc=paths.run_name(kind, seed), disable=None)
    for epoch in bar:
        start = time.perf_counter()
        model.train()
        order = torch.from_numpy(rng.permutation(len(train_y)))
        variant = torch.from_numpy(rng.integers(variants, size=len(train_y)))
        total = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            total += train_step(model, optimizer, train_x[variant[idx], idx], train_y[idx], cfg.bf16) * len(idx)
            scheduler.step()
        probs = predict_from_prefix(model, val_x, cfg.bf16)
        logits = torch.logit(torch.tensor(probs).clamp(1e-7, 1 - 1e-7))
        val_target = torch.tensor(val_y, dtype=torch.float64)
        val_loss = float(nn.functional.binary_cross_entropy_with_logits(logits, val_target))
        val = threshold_metrics(val_y, probs)
        rows.append({"epoch": epoch, "train_loss": total / len(train_y), "val_loss": val_loss,
                     "val_auc": val["auc"], "val_accuracy": val["accuracy"],
                     "lr": optimizer.param_groups[1]["lr"], "seconds": time.perf_counter() - start})
        if val["auc"] > best_auc:
            best_auc = val["auc"]
            save_model(model, weights_path, backbone_path, extra={"seed": seed, "epoch": epoch})
        bar.set_postfix(loss=f"{rows[-1]['train_loss']:.3f}", val_loss=f"{val_loss:.3f}", val_auc=f"{val['auc']:.3f}")
        history = pd.DataFrame(rows)
        history["best"] = history.val_auc == best_auc
        history.to_csv(run_dir / "history.csv", index=False)
    return history
