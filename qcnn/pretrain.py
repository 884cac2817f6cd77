"""Pretrain the backbone (conv1..layer3) on the benign-only pretrain pool.

ImageNet weights cannot be downloaded here, so the backbone learns its features from the four
benign diagnoses (nv, bkl, df, vasc), class-balanced; it never sees a malignant lesion. A
temporary 4-class head is dropped afterwards. The epoch is chosen on 10% of the pool's lesions.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from qcnn.augment import pretrain_augmentation
from qcnn.backbone import FEATURE_CHANNELS, Backbone, normalize, save_backbone
from qcnn.images import load_images
from qcnn.split import stratified_lesions


@dataclass
class PretrainConfig:
    epochs: int = 8
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    holdout_fraction: float = 0.1
    seed: int = 0
    bf16: bool = True


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


def _evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, cfg: PretrainConfig,
              n_classes: int) -> tuple[float, float, float]:
    model.eval()
    logits = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        for i in range(0, len(images), 64):
            x = normalize(images[i:i + 64]).contiguous(memory_format=torch.channels_last)
            logits.append(model(x).float())
    logits = torch.cat(logits)
    loss = nn.functional.cross_entropy(logits, labels).item()
    pred = logits.argmax(1).numpy()
    y = labels.numpy()
    return loss, float(np.mean(pred == y)), _balanced_accuracy(y, pred, n_classes)


def pretrain_backbone(split: pd.DataFrame, data_dir: str | Path, checkpoint_path: str | Path,
                      history_path: str | Path, cfg: PretrainConfig) -> pd.DataFrame:
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
    sampler = torch.utils.data.WeightedRandomSampler(
        (1.0 / class_counts)[train_y], num_samples=len(train_y), replacement=True,
        generator=torch.Generator().manual_seed(cfg.seed))
    augment = pretrain_augmentation()

    model = PretrainNet(len(classes)).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * (len(train_y) // cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=steps, pct_start=0.15)

    rows, best = [], -1.0
    for epoch in range(1, cfg.epochs + 1):
        start, model = time.perf_counter(), model.train()
        order = torch.tensor(list(sampler))
        total, seen = 0.0, 0
        bar = tqdm(range(len(order) // cfg.batch_size), desc=f"pretrain {epoch}/{cfg.epochs}", disable=None)
        for b in bar:
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x = torch.stack([augment(img) for img in train_x[idx]])
            x = normalize(x).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                loss = nn.functional.cross_entropy(model(x).float(), train_y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total, seen = total + loss.item() * len(idx), seen + len(idx)
            bar.set_postfix(loss=f"{total / seen:.3f}")
        val_loss, val_acc, val_bacc = _evaluate(model, val_x, val_y, cfg, len(classes))
        rows.append({"epoch": epoch, "train_loss": total / seen, "val_loss": val_loss,
                     "val_accuracy": val_acc, "val_balanced_accuracy": val_bacc,
                     "lr": scheduler.get_last_lr()[0], "seconds": time.perf_counter() - start})
        print(f"epoch {epoch}: train {total / seen:.4f} val {val_loss:.4f} bal.acc {val_bacc:.3f}")
        if val_bacc > best:
            best = val_bacc
            save_backbone(model.backbone, checkpoint_path, source="domain")
        history = pd.DataFrame(rows)
        history["selected"] = history.val_balanced_accuracy == best
        Path(history_path).parent.mkdir(parents=True, exist_ok=True)
        history.to_csv(history_path, index=False)
    Path(history_path).with_suffix(".json").write_text(
        pd.Series({**asdict(cfg), "classes": classes, "n_train": int((~is_val).sum()),
                   "n_holdout": int(is_val.sum())}).to_json(indent=2))
    return history
