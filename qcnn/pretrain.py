"""Pretrain the backbone (conv1..layer3) on the benign-only pretrain pool.

ImageNet weights cannot be downloaded here, so the backbone learns its features from the four
benign diagnoses (nv, bkl, df, vasc), class-balanced; it never sees a malignant lesion. A
temporary 4-class head is dropped afterwards. The epoch is chosen on 10% of the pool's lesions.

Resumable: after every epoch the whole training state (weights, optimiser, schedule, random
generators, the best weights so far) goes to ``<checkpoint>.resume.pt``; the backbone checkpoint
itself is written once, at the end, so an interrupted pretraining is never taken as final.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from qcnn.augment import pretrain_augmentation
from qcnn.backbone import FEATURE_CHANNELS, Backbone, normalize, save_backbone
from qcnn.config import PretrainConfig
from qcnn.images import load_images
from qcnn.io import load_resume, resume_path, save_resume, write_csv, write_json
from qcnn.runtime import CPU, autocast
from qcnn.split import stratified_lesions


class PretrainNet(nn.Module):
    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.backbone = Backbone()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(FEATURE_CHANNELS, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    recalls = [np.mean(pred[y == c] == c) for c in range(n_classes) if np.any(y == c)]
    return float(np.mean(recalls))


def _evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: PretrainConfig,
    n_classes: int,
    device: torch.device,
) -> tuple[float, float, float]:
    model.eval()
    logits = []
    with torch.no_grad(), autocast(device, cfg.precision):
        for i in range(0, len(images), 64):
            x = normalize(images[i : i + 64]).to(device).contiguous(memory_format=torch.channels_last)
            logits.append(model(x).float().cpu())
    logits = torch.cat(logits)
    loss = nn.functional.cross_entropy(logits, labels).item()
    pred = logits.argmax(1).numpy()
    y = labels.numpy()
    return loss, float(np.mean(pred == y)), _balanced_accuracy(y, pred, n_classes)


def pretrain_backbone(
    split: pd.DataFrame,
    data_dir: str | Path,
    checkpoint_path: str | Path,
    history_path: str | Path,
    cfg: PretrainConfig,
    device: torch.device = CPU,
) -> pd.DataFrame:
    checkpoint_path = Path(checkpoint_path)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    pool = split[split.pool == "pretrain"].reset_index(drop=True)
    classes = sorted(pool.dx.unique())
    lesions = pool.drop_duplicates("lesion_id")
    holdout = stratified_lesions(lesions, cfg.holdout_fraction, rng)
    is_val = pool.lesion_id.isin(holdout).to_numpy()

    images = load_images(data_dir, pool.image_id.tolist(), desc="pretrain pool")
    labels = torch.tensor(pool.dx.map({c: i for i, c in enumerate(classes)}).to_numpy())
    train_x, train_y = images[~is_val], labels[~is_val]
    val_x, val_y = images[is_val], labels[is_val]

    class_counts = torch.bincount(train_y, minlength=len(classes)).float()
    generator = torch.Generator().manual_seed(cfg.seed)
    sampler = torch.utils.data.WeightedRandomSampler(
        (1.0 / class_counts)[train_y], num_samples=len(train_y), replacement=True, generator=generator
    )
    augment = pretrain_augmentation()

    model = PretrainNet(len(classes)).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * (len(train_y) // cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=steps, pct_start=0.15)

    rows, best, best_state, first_epoch = [], -1.0, None, 1
    state = load_resume(checkpoint_path, str(asdict(cfg)))
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        generator.set_state(state["sampler_rng"])
        rows, best, best_state = list(state["rows"]), float(state["best"]), state["best_state"]
        first_epoch = len(rows) + 1
        print(f"resuming the pretraining after epoch {len(rows)} ({resume_path(checkpoint_path)})")

    for epoch in range(first_epoch, cfg.epochs + 1):
        start, model = time.perf_counter(), model.train()
        order = torch.tensor(list(sampler))
        total, seen = 0.0, 0
        bar = tqdm(range(len(order) // cfg.batch_size), desc=f"pretrain {epoch}/{cfg.epochs}", disable=None)
        for b in bar:
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            x = torch.stack([augment(img) for img in train_x[idx]])
            x = normalize(x).to(device).contiguous(memory_format=torch.channels_last)
            with autocast(device, cfg.precision):
                loss = nn.functional.cross_entropy(model(x).float(), train_y[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total, seen = total + loss.item() * len(idx), seen + len(idx)
            bar.set_postfix(loss=f"{total / seen:.3f}")
        val_loss, val_acc, val_bacc = _evaluate(model, val_x, val_y, cfg, len(classes), device)
        rows.append(
            {
                "epoch": epoch,
                "train_loss": total / seen,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
                "val_balanced_accuracy": val_bacc,
                "lr": scheduler.get_last_lr()[0],
                "seconds": time.perf_counter() - start,
            }
        )
        print(f"epoch {epoch}: train {total / seen:.4f} val {val_loss:.4f} bal.acc {val_bacc:.3f}")
        if val_bacc > best:
            best = val_bacc
            best_state = {k: v.detach().cpu().clone() for k, v in model.backbone.state_dict().items()}
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "sampler_rng": generator.get_state(),
            "rows": rows,
            "best": best,
            "best_state": best_state,
        }
        save_resume(checkpoint_path, str(asdict(cfg)), state)

    backbone = Backbone()
    backbone.load_state_dict(best_state)
    save_backbone(backbone, checkpoint_path, source="domain")
    history = pd.DataFrame(rows)
    history["selected"] = history.val_balanced_accuracy == best
    write_csv(history, history_path)
    write_json(
        Path(history_path).with_suffix(".json"),
        {**asdict(cfg), "classes": classes, "n_train": int((~is_val).sum()), "n_holdout": int(is_val.sum())},
    )
    resume_path(checkpoint_path).unlink()
    return history
