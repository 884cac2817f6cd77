"""What one image through both models gives (``Prediction``, one ``ModelOutput`` per model), and the
numpy helpers the app reads it with: outcome bitstrings, entropies, the heatmap overlay.

No torch here: predictions cross from the models' process to the app's as these plain arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np

from qcnn.constants import GRID, MODEL_KINDS, N_QUBITS, THRESHOLD


class State(NamedTuple):
    index: int
    bits: str
    probability: float


def bitstring(index: int, n_qubits: int = N_QUBITS) -> str:
    """The basis state ``index`` as bits, wire 0 first (the most significant bit, as PennyLane)."""
    if not 0 <= int(index) < 2**n_qubits:
        raise ValueError(f"index {index} is outside 0..{2**n_qubits - 1}")
    return format(int(index), f"0{n_qubits}b")


def entropy_bits(distribution: np.ndarray) -> np.ndarray | float:
    """Shannon entropy in bits over the last axis (a float for one distribution)."""
    p = np.asarray(distribution, dtype=np.float64)
    terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    result = terms.sum(axis=-1)
    return float(result) if np.ndim(result) == 0 else result


def top_states(distribution: np.ndarray, k: int = 5) -> list[State]:
    """The ``k`` most likely outcomes, most likely first."""
    p = np.asarray(distribution, dtype=np.float64).ravel()
    n_qubits = max(1, int(round(math.log2(p.size))))
    order = np.argsort(-p, kind="stable")[:k]
    return [State(int(i), bitstring(int(i), n_qubits), float(p[i])) for i in order]


def overlay(image_uint8: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The heatmap in jet colours blended over the image: ``alpha`` 0 is the image, 1 the heatmap alone.

    The colours are pytorch-grad-cam's (``show_cam_on_image``: OpenCV's JET map), but the blend is
    plain ``(1 - alpha) * image + alpha * colours``, without its rescaling to the brightest pixel,
    so the photograph keeps its own brightness at every opacity.
    """
    image = np.asarray(image_uint8)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be an (H, W, 3) uint8 array, got {image.dtype} {image.shape}")
    heat = np.nan_to_num(np.asarray(heatmap, dtype=np.float32), nan=0.0).clip(0.0, 1.0)
    if heat.shape != image.shape[:2]:
        raise ValueError(f"heatmap shape {heat.shape} does not match the image {image.shape[:2]}")
    alpha = float(np.clip(alpha, 0.0, 1.0))
    colours = cv2.cvtColor(cv2.applyColorMap(np.uint8(np.round(255 * heat)), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colours.astype(np.float32)
    return np.round(blended).clip(0, 255).astype(np.uint8)


@dataclass(frozen=True)
class ModelOutput:
    """One model on one image."""

    probability: float  # of malignancy, sigmoid of the logit
    logit: float
    heatmap: np.ndarray  # (224, 224) float32 in [0, 1], over ``Prediction.image``
    patch_distributions: np.ndarray  # (196, 256) float64: per-patch outcome probabilities, row-major 14 x 14
    mean_distribution: np.ndarray  # (256,) their mean, what the classifier reads (x 256)
    pooled_features: np.ndarray  # (256,) float64: layer3's output averaged over the 14 x 14 grid

    @property
    def malignant(self) -> bool:
        return self.probability >= THRESHOLD

    def patch_entropy_map(self) -> np.ndarray:
        """(14, 14) entropy in bits of each patch's distribution."""
        return np.asarray(entropy_bits(self.patch_distributions)).reshape(GRID, GRID)

    def patch_argmax_map(self) -> np.ndarray:
        """(14, 14) most likely outcome index of each patch."""
        return self.patch_distributions.argmax(axis=1).reshape(GRID, GRID)


@dataclass(frozen=True)
class Prediction:
    image: np.ndarray  # (224, 224, 3) uint8: what the models saw
    qcnn: ModelOutput
    classical: ModelOutput
    cam_method: str
    timings: dict[str, float] = field(default_factory=dict)  # seconds per part, and "total"
    ood_distance: float | None = None  # Mahalanobis distance of the QCNN's pooled layer3 features; None: no check
    ood_threshold: float | None = None  # the test pool's 99th percentile of that distance

    @property
    def agree(self) -> bool:
        return self.qcnn.malignant == self.classical.malignant

    @property
    def unusual(self) -> bool:
        """Unlike the training images: the distance is above the threshold (False when there is no reference)."""
        return self.ood_distance is not None and self.ood_distance > self.ood_threshold

    def output(self, kind: str) -> ModelOutput:
        if kind not in MODEL_KINDS:
            raise ValueError(f"kind must be one of {MODEL_KINDS}, got {kind!r}")
        return getattr(self, kind)
