"""Decode many data-set images at once into one uint8 tensor."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from tqdm import tqdm

from qcnn.backbone import pil_to_uint8
from qcnn.data import image_path, load_image_file


def load_images(data_dir: str | Path, image_ids: list[str], desc: str = "images", workers: int = 2) -> torch.Tensor:
    """(N, 3, 224, 224) uint8, in the order of ``image_ids``; fails naming the first bad file."""
    paths = [image_path(data_dir, image_id) for image_id in image_ids]
    out = torch.empty((len(paths), 3, 224, 224), dtype=torch.uint8)

    def decode(i: int) -> None:
        out[i] = pil_to_uint8(load_image_file(paths[i]))

    with ThreadPoolExecutor(workers) as pool:
        list(
            tqdm(
                pool.map(decode, range(len(paths))), total=len(paths), desc=f"decode {desc}", leave=False, disable=None
            )
        )
    return out
