"""Train one run (a ``RunSpec``) from cached frozen-stage features; knows nothing of sweeps.

Runs every epoch and records it; keeps the weights of the epoch with the best validation AUC, as
the study did. Writes ``history.csv`` and ``config.json`` into the run's folder and the weights to
``weights_path``, all atomically. After every epoch the loop's whole state (weights, optimiser,
schedule, generators) goes to ``<weights>.resume.pt``, so an interrupted run continues exactly where
it stopped: the same epochs, batches and augmentations as an uninterrupted one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from qcnn.augment import N_DIHEDRAL
from qcnn.backbone import file_digest, load_backbone
from qcnn.config import RunSpec, TrainConfig
from qcnn.features import cached_features
from qcnn.io import load_resume, resume_path, save_resume, write_csv, write_json
from qcnn.metrics import threshold_metrics
from qcnn.models import LesionClassifier, build_model, predict, save_model
from qcnn.runtime import CPU, autocast
from qcnn.split import pools_digest, train_subset


def train_step(
    model: LesionClassifier,
    optimizer: torch.optim.Optimizer,
    features: torch.Tensor,
    labels: torch.Tensor,
    precision: str,
) -> float:
    """One optimisation step from cached features, under the run's precision policy."""
    device = labels.device
    with autocast(device, precision):
        logits = model.forward_from_features(features)
    loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def make_optimizer(model: LesionClassifier, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on layer3 and the head's matrices, none on biases and circuit angles."""

    def decays(name: str, p: torch.Tensor) -> bool:
        return p.ndim > 1 and "outcome_map.weights" not in name

    head = [(n, p) for n, p in model.head.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in head if decays(n, p)], "lr": cfg.lr_head, "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in head if not decays(n, p)], "lr": cfg.lr_head, "weight_decay": 0.0},
    ]
    if model.config.train_layer3:
        groups.insert(
            0, {"params": list(model.layer3.parameters()), "lr": cfg.lr_layer3, "weight_decay": cfg.weight_decay}
        )
    return torch.optim.AdamW([g for g in groups if g["params"]])


def train_run(
    spec: RunSpec,
    split: pd.DataFrame,
    data_dir: str | Path,
    run_dir: str | Path,
    weights_path: str | Path,
    checkpoint_dir: str | Path,
    device: torch.device = CPU,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    cfg, run_dir = spec.train, Path(run_dir)
    torch.manual_seed(spec.seed)
    rng = np.random.default_rng(spec.seed)
    backbone_path = Path(checkpoint_dir) / spec.backbone
    model = build_model(spec.model, load_backbone(backbone_path)).to(device)
    stage = model.cached_stage
    variants = N_DIHEDRAL if cfg.augment else 1
    features = dict(
        stage=stage, precision=cfg.precision, device=device, cache_dir=cache_dir, backbone_file=spec.backbone
    )
    subset = torch.tensor(train_subset(split, spec.fraction, spec.seed))  # a copy: pandas may hand out read-only arrays
    train_x = cached_features(split, "train", variants, data_dir, checkpoint_dir, **features)[:, subset]
    val_x = cached_features(split, "val", 1, data_dir, checkpoint_dir, **features)[0]
    train_y = torch.tensor(split.loc[split.pool == "train", "label"].to_numpy()[subset.numpy()], dtype=torch.float32)
    val_y = split.loc[split.pool == "val", "label"].to_numpy()

    optimizer = make_optimizer(model, cfg)
    steps_per_epoch = int(np.ceil(len(train_y) / cfg.batch_size))
    epochs = cfg.epochs_for(steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=epochs * steps_per_epoch, pct_start=0.1
    )
    write_json(
        run_dir / "config.json",
        {
            **spec.to_json(),
            "epochs_run": epochs,
            "steps_per_epoch": steps_per_epoch,
            "n_train": len(train_y),
            "n_train_lesions": int(split[split.pool == "train"].lesion_id[subset.numpy()].nunique()),
            "n_val": len(val_y),
            "device": str(device),
            "parameters": model.parameter_counts(),
        },
        indent=2,
    )

    rows, best_auc = [], -np.inf
    identity = json.dumps({**spec.to_json(), "backbone": file_digest(backbone_path), "split": pools_digest(split)})
    state = load_resume(weights_path, identity)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = json.loads(state["numpy_rng"])
        rows, best_auc = list(state["rows"]), float(state["best_auc"])
        print(f"{spec.name}: resuming after epoch {len(rows)} of {epochs}")
    bar = tqdm(range(len(rows) + 1, epochs + 1), desc=spec.name, disable=None)
    for epoch in bar:
        start = time.perf_counter()
        model.train()
        order = torch.from_numpy(rng.permutation(len(train_y)))
        variant = torch.from_numpy(rng.integers(variants, size=len(train_y)))
        total = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            batch = train_x[variant[idx], idx].to(device)
            total += train_step(model, optimizer, batch, train_y[idx].to(device), cfg.precision) * len(idx)
            scheduler.step()
        probs = predict(model, val_x, cfg.precision)
        logits = torch.logit(torch.tensor(probs).clamp(1e-7, 1 - 1e-7))
        val_loss = float(
            nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor(val_y, dtype=torch.float64))
        )
        val = threshold_metrics(val_y, probs)
        rows.append(
            {
                "epoch": epoch,
                "train_loss": total / len(train_y),
                "val_loss": val_loss,
                "val_auc": float(val["auc"]),
                "val_accuracy": float(val["accuracy"]),
                "lr": optimizer.param_groups[-1]["lr"],
                "seconds": time.perf_counter() - start,
            }
        )
        if val["auc"] > best_auc:
            best_auc = val["auc"]
            save_model(model, weights_path, backbone_path, extra={"seed": spec.seed, "epoch": epoch})
        bar.set_postfix(loss=f"{rows[-1]['train_loss']:.3f}", val_loss=f"{val_loss:.3f}", val_auc=f"{val['auc']:.3f}")
        history = pd.DataFrame(rows)
        history["best"] = history.val_auc == best_auc
        write_csv(history, run_dir / "history.csv")
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": json.dumps(rng.bit_generator.state),
            "rows": rows,
            "best_auc": best_auc,
        }
        save_resume(weights_path, identity, state)
    resume_path(weights_path).unlink(missing_ok=True)
    history = pd.DataFrame(rows)
    history["best"] = history.val_auc == best_auc
    return history
