"""Augmentations that suit dermoscopy: lesions have no canonical orientation, colour varies by site."""

from __future__ import annotations

import torch

import qcnn.compat  # noqa: F401  (must precede torchvision)
from torchvision.transforms import v2

from qcnn.backbone import IMAGE_SIZE

N_DIHEDRAL = 8  # 4 rotations x {identity, flip}


def dihedral(images: torch.Tensor, variant: int) -> torch.Tensor:
    """One of the 8 symmetries of the square: variant 0 is the identity."""
    if not 0 <= variant < N_DIHEDRAL:
        raise ValueError(f"variant must be in [0, {N_DIHEDRAL}), got {variant}")
    out = torch.rot90(images, k=variant % 4, dims=(-2, -1))
    return out.flip(-1) if variant >= 4 else out


class RandomDihedral(torch.nn.Module):
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return dihedral(image, int(torch.randint(N_DIHEDRAL, ())))


def pretrain_augmentation() -> v2.Compose:
    """For the backbone's pretraining on uint8 (3, 224, 224) tensors."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(IMAGE_SIZE, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
            RandomDihedral(),
            v2.ColorJitter(brightness=0.15, contrast=0.15, saturation=0.1, hue=0.02),
        ]
    )
