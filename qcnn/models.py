"""The QCNN and its classical control: same backbone, same head, only the 8 -> 256 map differs.

    image (3, 224, 224)
      -> prefix: conv1..layer2 (frozen, BatchNorm in eval mode)     128 x 28 x 28
      -> layer3 (trainable)                                         256 x 14 x 14 = 196 patches
      -> 1x1 projection 256 -> 8, angles = pi * tanh(.)             8 per patch
      -> QCNN: QuantumLayer (8 qubits, 2 re-uploads, 256 probabilities)
         classical: softmax(Linear(8 -> 256)), a classical map into the same 256-outcome space
      -> mean over the 196 patches, x 256 (1 = uniform)              256
      -> Linear(256 -> 1)                                           malignancy logit
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from qcnn.backbone import BACKBONE_FILE, FEATURE_CHANNELS, Backbone, file_digest, load_backbone
from qcnn import paths
from qcnn.constants import MODEL_KINDS, N_OUTCOMES, N_QUBITS
from qcnn.quantum import QuantumLayer



class ClassicalMap(nn.Module):
    """The control for the quantum layer: 8 angles -> a distribution over 256 outcomes."""

    def __init__(self, n_inputs: int = N_QUBITS, n_outcomes: int = N_OUTCOMES) -> None:
        super().__init__()
        self.linear = nn.Linear(n_inputs, n_outcomes)

    def forward(self, angles: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.linear(angles), dim=-1)


class PatchHead(nn.Module):
    """Per-patch angles -> 256-outcome distribution -> mean over patches -> logit."""

    def __init__(self, outcome_map: nn.Module) -> None:
        super().__init__()
        self.projection = nn.Conv2d(FEATURE_CHANNELS, N_QUBITS, kernel_size=1)
        self.outcome_map = outcome_map
        self.classifier = nn.Linear(N_OUTCOMES, 1)

    def patch_outcomes(self, features: torch.Tensor) -> torch.Tensor:
        """(N, 256, 14, 14) layer3 features -> (N, 196, 256) per-patch outcome distributions."""
        angles = math.pi * torch.tanh(self.projection(features.float()))
        return self.outcome_map(angles.flatten(2).transpose(1, 2))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = self.patch_outcomes(features).mean(dim=1) * N_OUTCOMES
        return self.classifier(pooled).squeeze(-1)


class LesionClassifier(nn.Module):
    """Backbone + head; ``forward`` takes normalised images, ``forward_from_prefix`` cached features."""

    def __init__(self, kind: str, backbone: Backbone | None = None) -> None:
        super().__init__()
        if kind not in MODEL_KINDS:
            raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")
        self.kind = kind
        backbone = backbone or Backbone()
        self.prefix, self.layer3 = backbone.prefix, backbone.layer3
        self.prefix.requires_grad_(False)
        outcome_map = QuantumLayer(n_qubits=N_QUBITS, n_layers=2, reuploads=2) if kind == "qcnn" else ClassicalMap()
        self.head = PatchHead(outcome_map)

    def train(self, mode: bool = True) -> LesionClassifier:
        super().train(mode)
        self.prefix.eval()  # frozen, BatchNorm statistics included
        return self

    def forward_from_prefix(self, prefix_features: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer3(prefix_features))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_from_prefix(self.prefix(images))

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """What training changes (layer3 and head): the prefix lives in the backbone checkpoint."""
        return {k: v.detach().contiguous() for k, v in self.state_dict().items() if not k.startswith("prefix.")}

    def parameter_counts(self) -> dict[str, dict[str, int]]:
        parts = {"prefix (conv1..layer2)": self.prefix, "layer3": self.layer3,
                 "projection 256->8": self.head.projection,
                 ("quantum layer" if self.kind == "qcnn" else "classical map 8->256"): self.head.outcome_map,
                 "classifier 256->1": self.head.classifier}
        counts = {name: {"total": sum(p.numel() for p in m.parameters()),
                         "trainable": sum(p.numel() for p in m.parameters() if p.requires_grad)}
                  for name, m in parts.items()}
        counts["all"] = {k: sum(c[k] for c in counts.values()) for k in ("total", "trainable")}
        return counts


def build_model(kind: str, backbone: Backbone | None = None) -> LesionClassifier:
    return LesionClassifier(kind, backbone)


def model_file(kind: str, checkpoint_dir: str | Path | None = None) -> Path:
    return Path(checkpoint_dir or paths.checkpoint_dir()) / f"{kind}.safetensors"


def save_model(model: LesionClassifier, path: str | Path, backbone_path: str | Path, extra: dict | None = None) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    metadata = {"kind": model.kind, "backbone_sha256_16": file_digest(backbone_path),
                "extra": json.dumps(extra or {})}
    save_file(model.trainable_state(), str(path), metadata=metadata)


def load_model(kind: str, checkpoint_dir: str | Path | None = None, model_path: str | Path | None = None
               ) -> LesionClassifier:
    """An eval-mode model with its backbone: (N, 3, 224, 224) normalised images -> (N,) logits."""
    from safetensors import safe_open

    checkpoint_dir = Path(checkpoint_dir or paths.checkpoint_dir())
    backbone_path = checkpoint_dir / BACKBONE_FILE
    path = Path(model_path) if model_path else model_file(kind, checkpoint_dir)
    if not path.is_file():
        raise FileNotFoundError(f"Model checkpoint {path} not found: run `qcnn reproduce` "
                                "(it trains both models and copies seed 0's weights there) first.")
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    if metadata.get("kind") != kind:
        raise ValueError(f"{path} holds a {metadata.get('kind')!r} model, not {kind!r}")
    model = build_model(kind, load_backbone(backbone_path))
    if metadata.get("backbone_sha256_16") != file_digest(backbone_path):
        raise ValueError(f"{path} was trained on a different backbone than {backbone_path}")
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    if unexpected or any(not k.startswith("prefix.") for k in missing):
        raise ValueError(f"{path} does not match the {kind} architecture")
    return model.eval()
