"""The lesion classifier: a ResNet18 backbone and a patch head, every part chosen by a ``ModelConfig``.

    image (3, 224, 224)
      -> prefix: conv1..layer2 (frozen, BatchNorm in eval mode)          128 x 28 x 28
      -> layer3 (trainable unless train_layer3 is false)                 256 x 14 x 14
      -> grid: 14 x 14 patches, or 2 x 2 average pooled to 7 x 7, or one global patch
      -> 1x1 projection 256 -> 8, angles = pi * tanh(.)                  8 per patch
      -> outcome map per patch:
           quantum:   the circuit (qcnn.quantum), 256 probabilities (or 8 <Z> with measurement=expval)
           classical: softmax(Linear(8 -> 256)), a classical map into the same outcome space
           fourier:   [cos(w.x), sin(w.x)] for D fixed integer frequency vectors w in {-2..2}^8
      -> mean over patches -> Linear(. -> 1)                             malignancy logit
    gap: global average pool of layer3 -> Linear(256 -> 1), the plain transfer-learning head.

Training, evaluation, Try it and Grad-CAM all run this one forward pass. The head always runs in
float32 (``runtime.full_precision``), whatever autocast the caller's precision policy sets.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from qcnn import paths
from qcnn.backbone import BACKBONE_FILE, Backbone, file_digest, load_backbone
from qcnn.config import MODEL_PRESETS, ModelConfig, config_from
from qcnn.constants import FEATURE_CHANNELS, MODEL_KINDS, N_OUTCOMES, N_QUBITS
from qcnn.errors import ConfigError, MissingFileError
from qcnn.io import save_safetensors
from qcnn.quantum import QuantumLayer
from qcnn.runtime import autocast, full_precision

FOURIER_SEED = 0  # the surrogate's frequency set is drawn once, from this seed, for every run
MAX_FREQUENCY = 2  # two RY re-uploads of an angle give integer frequencies in {-2..2} (Schuld et al. 2021)


class ClassicalMap(nn.Module):
    """The control for the quantum layer: 8 angles -> a distribution over 256 outcomes."""

    def __init__(self, n_inputs: int = N_QUBITS, n_outcomes: int = N_OUTCOMES) -> None:
        super().__init__()
        self.linear = nn.Linear(n_inputs, n_outcomes)

    def forward(self, angles: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.linear(angles), dim=-1)


class FourierFeatures(nn.Module):
    """The dequantised surrogate: [cos(w.x), sin(w.x)] for D integer frequency vectors w in {-2..2}^8.

    That set is the spectrum a two-upload RY encoding can reach; a linear readout of these features
    is the classical model class the circuit's output belongs to (with D far below its 5^8 terms).
    """

    def __init__(self, n_features: int, n_inputs: int = N_QUBITS) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(FOURIER_SEED)
        frequencies = torch.randint(-MAX_FREQUENCY, MAX_FREQUENCY + 1, (n_features, n_inputs), generator=generator)
        self.register_buffer("frequencies", frequencies.float())

    def forward(self, angles: torch.Tensor) -> torch.Tensor:
        phases = angles @ self.frequencies.T
        return torch.cat([torch.cos(phases), torch.sin(phases)], dim=-1)


def z_signs(n_qubits: int = N_QUBITS) -> torch.Tensor:
    """(2^n, n): the eigenvalue of Z on wire w (wire 0 the most significant bit) in each basis state."""
    basis = torch.arange(2**n_qubits)[:, None]
    bits = (basis >> torch.arange(n_qubits - 1, -1, -1)) & 1
    return 1.0 - 2.0 * bits.float()


class HeadOutput(NamedTuple):
    logits: torch.Tensor  # (N,)
    patch_outcomes: torch.Tensor | None  # (N, patches, K) what the outcome map gave each patch; None for gap


class PatchHead(nn.Module):
    """Layer3 features -> per-patch angles -> outcome map -> readout -> mean over patches -> logit."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        if config.outcome_map == "gap":
            self.classifier = nn.Linear(FEATURE_CHANNELS, 1)
            return
        self.projection = nn.Conv2d(FEATURE_CHANNELS, N_QUBITS, kernel_size=1)
        if config.outcome_map == "quantum":
            self.outcome_map = QuantumLayer(
                n_qubits=N_QUBITS,
                n_layers=config.n_layers,
                reuploads=config.reuploads,
                backend=config.backend,
                device=config.pennylane_device,
                entangling=config.entangling,
            )
            self.outcome_map.weights.requires_grad_(config.train_circuit)
        elif config.outcome_map == "classical":
            self.outcome_map = ClassicalMap()
        else:
            self.outcome_map = FourierFeatures(config.fourier_features)
        if config.outcome_map == "fourier":
            readout_size = 2 * config.fourier_features
        else:
            readout_size = N_QUBITS if config.measurement == "expval" else N_OUTCOMES
        self.register_buffer("z_signs", z_signs(), persistent=False)
        self.classifier = nn.Linear(readout_size, 1)

    def patches(self, features: torch.Tensor) -> torch.Tensor:
        """(N, 256, 14, 14) -> (N, 256, g, g) for the configured grid."""
        grid = self.config.grid
        return features if grid == features.shape[-1] else F.adaptive_avg_pool2d(features, grid)

    def outputs(self, features: torch.Tensor) -> HeadOutput:
        """Logits and the per-patch outcomes behind them, from (N, 256, 14, 14) layer3 features."""
        with full_precision(features.device):
            features = self.patches(features.float())
            if self.config.outcome_map == "gap":
                return HeadOutput(self.classifier(features.mean(dim=(2, 3))).squeeze(-1), None)
            angles = math.pi * torch.tanh(self.projection(features))
            outcomes = self.outcome_map(angles.flatten(2).transpose(1, 2))
            return HeadOutput(self.classifier(self.readout(outcomes).mean(dim=1)).squeeze(-1), outcomes)

    def readout(self, outcomes: torch.Tensor) -> torch.Tensor:
        """What the classifier reads per patch: probabilities x 256 (1 = uniform), 8 <Z>, or Fourier features."""
        if self.config.outcome_map == "fourier":
            return outcomes
        if self.config.measurement == "expval":
            return outcomes @ self.z_signs
        return outcomes * N_OUTCOMES

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.outputs(features).logits


class LesionClassifier(nn.Module):
    """Backbone + head. ``forward`` takes normalised images; ``forward_from_features`` the cached stage.

    The cached stage is what no parameter of the run changes: conv1..layer2's output when layer3
    trains, layer3's output when it is frozen too (then a run costs only the head).
    """

    def __init__(self, config: ModelConfig | None = None, backbone: Backbone | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        backbone = backbone or Backbone()
        self.prefix, self.layer3 = backbone.prefix, backbone.layer3
        self.prefix.requires_grad_(False)
        self.layer3.requires_grad_(self.config.train_layer3)
        self.head = PatchHead(self.config)

    @property
    def cached_stage(self) -> str:
        return "layer2" if self.config.train_layer3 else "layer3"

    def train(self, mode: bool = True) -> LesionClassifier:
        super().train(mode)
        self.prefix.eval()  # frozen, BatchNorm statistics included
        if not self.config.train_layer3:
            self.layer3.eval()
        return self

    def frozen_features(self, images: torch.Tensor) -> torch.Tensor:
        """The cached stage's output for normalised images."""
        x = self.prefix(images)
        return x if self.config.train_layer3 else self.layer3(x)

    def layer3_features(self, features: torch.Tensor) -> torch.Tensor:
        """Layer3's output from the cached stage's features (layer3 runs only when it is not that stage)."""
        return self.layer3(features.float()) if self.config.train_layer3 else features

    def forward_from_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer3_features(features))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_from_features(self.frozen_features(images))

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """What training can change (layer3 and head): the prefix lives in the backbone checkpoint."""
        return {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items() if not k.startswith("prefix.")}

    def parameter_counts(self) -> dict[str, dict[str, int]]:
        head = self.head
        parts = {"prefix (conv1..layer2)": self.prefix, "layer3": self.layer3}
        if self.config.outcome_map != "gap":
            parts["projection 256->8"] = head.projection
            parts[
                {"quantum": "quantum layer", "classical": "classical map 8->256", "fourier": "fourier features"}[
                    self.config.outcome_map
                ]
            ] = head.outcome_map
        parts[f"classifier {head.classifier.in_features}->1"] = head.classifier
        counts = {
            name: {
                "total": sum(p.numel() for p in m.parameters()),
                "trainable": sum(p.numel() for p in m.parameters() if p.requires_grad),
            }
            for name, m in parts.items()
        }
        counts["all"] = {k: sum(c[k] for c in counts.values()) for k in ("total", "trainable")}
        return counts


def build_model(config: ModelConfig | None = None, backbone: Backbone | None = None) -> LesionClassifier:
    return LesionClassifier(config, backbone)


def model_file(kind: str, checkpoint_dir: str | Path | None = None) -> Path:
    """The app's checkpoint of one model of the reproduction's pair."""
    return Path(checkpoint_dir or paths.checkpoint_dir()) / f"{kind}.safetensors"


def save_model(model: LesionClassifier, path: str | Path, backbone_path: str | Path, extra: dict | None = None) -> None:
    """Weights plus the ``ModelConfig`` that rebuilds them and the backbone they were trained on (atomic)."""
    metadata = {
        "model_config": json.dumps(asdict(model.config)),
        "backbone_sha256_16": file_digest(backbone_path),
        "extra": json.dumps(extra or {}),
    }
    save_safetensors(model.trainable_state(), path, metadata)


def checkpoint_config(path: str | Path) -> ModelConfig:
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    if "model_config" not in metadata:
        raise ConfigError(f"{path} has no model_config in its metadata: it was not written by qcnn.models.save_model")
    return config_from(ModelConfig, json.loads(metadata["model_config"]))


def load_model(
    kind: str | None = None,
    checkpoint_dir: str | Path | None = None,
    model_path: str | Path | None = None,
    device: torch.device | str = "cpu",
    backbone_file: str = BACKBONE_FILE,
) -> LesionClassifier:
    """An eval-mode model rebuilt from its checkpoint's ``ModelConfig``, with its backbone.

    ``kind`` (qcnn or classical) loads the app's checkpoint of that model and checks that it is one.
    """
    checkpoint_dir = Path(checkpoint_dir or paths.checkpoint_dir())
    backbone_path = checkpoint_dir / backbone_file
    if model_path is None:
        if kind not in MODEL_KINDS:
            raise ConfigError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")
        model_path = model_file(kind, checkpoint_dir)
    path = Path(model_path)
    if not path.is_file():
        raise MissingFileError(
            f"Model checkpoint {path} not found: run `qcnn reproduce` (it trains both models "
            "and copies seed 0's weights there) first."
        )
    config = checkpoint_config(path)
    if kind is not None and config != MODEL_PRESETS[kind]:
        raise ConfigError(f"{path} holds a model of another configuration than the {kind!r} preset")
    with safe_open(str(path), framework="pt") as f:
        trained_on = (f.metadata() or {}).get("backbone_sha256_16")
    if trained_on != file_digest(backbone_path):
        raise ConfigError(f"{path} was trained on a different backbone than {backbone_path}")
    model = build_model(config, load_backbone(backbone_path))
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    if unexpected or any(not k.startswith("prefix.") for k in missing):
        raise ConfigError(f"{path} does not match its recorded architecture")
    return model.to(device).eval()


@torch.no_grad()
def predict(
    model: LesionClassifier, features: torch.Tensor, precision: str = "fp32", batch_size: int = 64
) -> np.ndarray:
    """Malignancy probabilities (float64) from cached-stage features, batch by batch on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(features), batch_size):
        with autocast(device, precision):
            out.append(torch.sigmoid(model.forward_from_features(features[i : i + batch_size].to(device))).cpu())
    return torch.cat(out).double().numpy()
