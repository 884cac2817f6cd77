"""Cache the frozen stage's outputs (conv1..layer2, or ..layer3 when layer3 is frozen too).

Training then never recomputes them. One file per pool, stage, precision and augmentation variant,
keyed by the backbone's digest, the image list and the images' bytes: a new backbone, another split
or a changed or corrupt data folder can never reuse stale features. Files are written atomically.
Where: ``--cache-dir``, else $QCNN_CACHE_DIR, else ~/.cache/qcnn (``paths.cache_dir``).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file
from torch import nn
from tqdm import tqdm

from qcnn import paths
from qcnn.augment import dihedral
from qcnn.backbone import BACKBONE_FILE, file_digest, load_backbone, normalize
from qcnn.data import image_path
from qcnn.images import load_images
from qcnn.io import save_safetensors
from qcnn.runtime import CPU, autocast, storage_dtype

STAGES = ("layer2", "layer3")


@cache
def images_digest(data_dir: Path, image_ids: tuple[str, ...]) -> str:
    """SHA-256 over the ids and bytes of the images, in order; read once per process and image list."""
    h = hashlib.sha256()
    for image_id in image_ids:
        h.update(image_id.encode())
        h.update(hashlib.sha256(image_path(data_dir, image_id).read_bytes()).digest())
    return h.hexdigest()[:16]


def frozen_stage(checkpoint_dir: str | Path, stage: str, backbone_file: str = BACKBONE_FILE) -> nn.Module:
    backbone = load_backbone(Path(checkpoint_dir) / backbone_file)
    return backbone.prefix if stage == "layer2" else nn.Sequential(backbone.prefix, backbone.layer3).eval()


@torch.no_grad()
def compute_features(
    module: nn.Module,
    images: torch.Tensor,
    variant: int = 0,
    precision: str = "bf16",
    device: torch.device = CPU,
    batch_size: int = 64,
    desc: str = "features",
) -> torch.Tensor:
    """uint8 (N, 3, 224, 224) -> the stage's output for one dihedral variant, stored at the precision's dtype."""
    module = module.eval().to(device, memory_format=torch.channels_last)
    out = []
    for i in tqdm(range(0, len(images), batch_size), desc=desc, leave=False, disable=None):
        x = normalize(dihedral(images[i : i + batch_size], variant)).to(device)
        with autocast(device, precision):
            out.append(module(x.contiguous(memory_format=torch.channels_last)).to(storage_dtype(precision)).cpu())
    return torch.cat(out).contiguous()


def cached_features(
    split: pd.DataFrame,
    pool: str,
    variants: int,
    data_dir: str | Path,
    checkpoint_dir: str | Path,
    *,
    stage: str = "layer2",
    precision: str = "bf16",
    device: torch.device = CPU,
    cache_dir: str | Path | None = None,
    backbone_file: str = BACKBONE_FILE,
) -> torch.Tensor:
    """(variants, N, C, H, W) features of ``pool``'s images in split order, from ``backbone_file``'s frozen stages."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    image_ids = split.loc[split.pool == pool, "image_id"].tolist()
    key = hashlib.sha256(("\n".join(image_ids) + images_digest(Path(data_dir), tuple(image_ids))).encode()).hexdigest()[
        :12
    ]
    folder = paths.cache_dir(cache_dir) / "features" / file_digest(Path(checkpoint_dir) / backbone_file)
    files = [folder / f"{pool}-{key}-{stage}-{precision}-v{v}.safetensors" for v in range(variants)]
    missing = [v for v, f in enumerate(files) if not f.is_file()]
    if missing:
        module = frozen_stage(checkpoint_dir, stage, backbone_file)
        images = load_images(data_dir, image_ids, desc=pool)
        for v in missing:
            features = compute_features(module, images, v, precision, device, desc=f"{pool} {stage} variant {v}")
            save_safetensors({"features": features}, files[v])
    return torch.stack([load_file(str(f))["features"] for f in files])
