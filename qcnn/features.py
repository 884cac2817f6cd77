"""Cache the frozen prefix's outputs (conv1..layer2) so that training never recomputes them.

One file per pool and augmentation variant, keyed by the backbone's digest and the image list,
so a new backbone or a new split can never reuse stale features. Stored as bfloat16.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from qcnn.augment import dihedral
from qcnn.backbone import BACKBONE_FILE, file_digest, load_backbone, normalize
from qcnn.images import load_images
from qcnn import paths


def _key(image_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(image_ids).encode()).hexdigest()[:12]


@torch.no_grad()
def prefix_features(prefix: torch.nn.Module, images: torch.Tensor, variant: int = 0,
                    batch_size: int = 64, desc: str = "features") -> torch.Tensor:
    """uint8 (N, 3, 224, 224) -> bfloat16 (N, 128, 28, 28) for one dihedral variant."""
    prefix = prefix.eval().to(memory_format=torch.channels_last)
    out = []
    for i in tqdm(range(0, len(images), batch_size), desc=desc, leave=False, disable=None):
        x = normalize(dihedral(images[i:i + batch_size], variant)).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out.append(prefix(x).to(torch.bfloat16).contiguous())
    return torch.cat(out)


def cached_features(split: pd.DataFrame, pool: str, variants: int, data_dir: str | Path,
                    checkpoint_dir: str | Path, cache_dir: str | Path | None = None) -> torch.Tensor:
    """(variants, N, 128, 28, 28) prefix features of ``pool``'s images in split order."""
    image_ids = split.loc[split.pool == pool, "image_id"].tolist()
    backbone_path = Path(checkpoint_dir) / BACKBONE_FILE
    folder = Path(cache_dir or paths.CACHE_DIR) / "features" / file_digest(backbone_path)
    files = [folder / f"{pool}-{_key(image_ids)}-v{v}.safetensors" for v in range(variants)]
    if all(f.is_file() for f in files):
        return torch.stack([load_file(str(f))["features"] for f in files])
    folder.mkdir(parents=True, exist_ok=True)
    prefix = load_backbone(backbone_path).prefix
    images = load_images(data_dir, image_ids, desc=pool)
    result = []
    for v, f in enumerate(files):
        if not f.is_file():
            save_file({"features": prefix_features(prefix, images, v, desc=f"{pool} variant {v}")}, str(f))
        result.append(load_file(str(f))["features"])
    return torch.stack(result)
