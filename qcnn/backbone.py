"""ResNet18 cut after layer3 (256 x 14 x 14 at 224 x 224), the image transform, and safe I/O.

The backbone splits in two: ``prefix`` (conv1..layer2, frozen in both models, so its outputs
can be cached) and ``layer3`` (trainable, "partially unfrozen" as in the study).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from torch import nn

import qcnn.compat  # noqa: F401  (must precede torchvision)
import torchvision

from qcnn import paths
from qcnn.constants import FEATURE_CHANNELS, GRID, IMAGE_SIZE  # noqa: F401  (re-exported)

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
BACKBONE_FILE = paths.BACKBONE_FILE


def pil_to_uint8(image: Image.Image) -> torch.Tensor:
    """(3, 224, 224) uint8 tensor of an image, resized (not cropped) as the study did."""
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    x = torch.from_numpy(array.copy()).permute(2, 0, 1)
    if x.shape[-2:] == (IMAGE_SIZE, IMAGE_SIZE):
        return x
    x = F.interpolate(
        x[None].float(), size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", antialias=True, align_corners=False
    )[0]
    return x.round_().clamp_(0, 255).to(torch.uint8)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, 224, 224) -> float with ImageNet statistics."""
    return (images.float().div_(255.0) - IMAGENET_MEAN) / IMAGENET_STD


def preprocess(image: Image.Image) -> torch.Tensor:
    """A PIL image to the (1, 3, 224, 224) tensor the models take, exactly as evaluation does."""
    return normalize(pil_to_uint8(image).unsqueeze(0))


class Backbone(nn.Module):
    """conv1..layer3 of torchvision's ResNet18, as a frozen ``prefix`` and a trainable ``layer3``."""

    def __init__(self, resnet: torchvision.models.ResNet | None = None) -> None:
        super().__init__()
        resnet = resnet or torchvision.models.resnet18(weights=None)
        self.prefix = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1, resnet.layer2)
        self.layer3 = resnet.layer3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer3(self.prefix(x))


def imagenet_backbone() -> Backbone:
    """torchvision's IMAGENET1K_V1 weights; needs internet the first time."""
    try:
        weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
        return Backbone(torchvision.models.resnet18(weights=weights))
    except (OSError, RuntimeError) as err:  # URLError is an OSError
        from qcnn.errors import QcnnError

        raise QcnnError(
            "Could not download torchvision's ImageNet weights for ResNet18 (no internet?). "
            "Use the domain backbone instead: `qcnn pretrain-backbone` (the default, "
            f"--backbone domain) pretrains it on the data set's benign pool. Cause: {err}"
        ) from err


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def save_backbone(backbone: Backbone, path: str | Path, source: str) -> None:
    from qcnn.io import save_safetensors

    state = {k: v.detach().contiguous().cpu() for k, v in backbone.state_dict().items()}
    save_safetensors(state, path, metadata={"source": source, "architecture": "resnet18-layer3"})


def load_backbone(path: str | Path) -> Backbone:
    """Weights only, through safetensors: nothing in the file can execute code."""
    path = Path(path)
    if not path.is_file():
        from qcnn.errors import MissingFileError

        raise MissingFileError(f"Backbone checkpoint {path} not found: run `qcnn pretrain-backbone` first.")
    backbone = Backbone()
    backbone.load_state_dict(load_file(str(path)))
    return backbone.eval()
