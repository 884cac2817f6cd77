"""Is an image like the dermoscopy images the models were trained on? A Mahalanobis distance says.

The reference (``checkpoints/ood_reference.safetensors``, written by ``qcnn ood-reference``) holds
the mean of the QCNN's global-average-pooled 256-D layer3 features over the train pool, their
inverse covariance shrunk by Ledoit-Wolf (1,269 images for 256 dimensions: the plain estimate is
ill-conditioned), and a threshold: the 99th percentile of the test pool's distances, so about 1 %
of the held-out dermoscopy images count as unusual. It stores aggregate statistics only, never an
image, and names the QCNN checkpoint it was computed with: against any other it is not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from qcnn import paths
from qcnn.backbone import file_digest
from qcnn.constants import FEATURE_CHANNELS
from qcnn.errors import QcnnError

REFERENCE_FILE = paths.OOD_REFERENCE_FILE
PERCENTILE = 99.0
POOL_BATCH = 64


class OodReferenceError(QcnnError):
    """The reference file is missing, unreadable or made for another QCNN checkpoint."""


@dataclass(frozen=True)
class OodReference:
    """Train-pool statistics of the pooled layer3 features and the distance above which an image is unusual."""

    mean: np.ndarray  # (256,) float64
    precision: np.ndarray  # (256, 256) float64: the shrunk inverse covariance
    threshold: float  # the test pool's ``percentile``-th percentile of the distance
    percentile: float
    n_train: int
    n_test: int
    qcnn_digest: str  # file_digest of the QCNN checkpoint whose layer3 made the features

    def distance(self, pooled: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of (..., 256) pooled features to the train pool."""
        centred = np.asarray(pooled, dtype=np.float64) - self.mean
        squared = np.einsum("...i,ij,...j->...", centred, self.precision, centred)
        return np.sqrt(np.maximum(squared, 0.0))

    def save(self, path: str | Path) -> Path:
        from qcnn.io import save_safetensors

        tensors = {"mean": torch.from_numpy(self.mean), "precision": torch.from_numpy(self.precision)}
        metadata = {
            "threshold": repr(self.threshold),
            "percentile": repr(self.percentile),
            "n_train": str(self.n_train),
            "n_test": str(self.n_test),
            "qcnn_digest": self.qcnn_digest,
            "features": "QCNN layer3 output, mean over the 14 x 14 grid (256-D), float32 forward",
        }
        return save_safetensors(tensors, path, metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> OodReference:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                mean, precision = f.get_tensor("mean").double().numpy(), f.get_tensor("precision").double().numpy()
            reference = cls(
                mean,
                precision,
                float(meta["threshold"]),
                float(meta["percentile"]),
                int(meta["n_train"]),
                int(meta["n_test"]),
                meta["qcnn_digest"],
            )
        except (OSError, SafetensorError, KeyError, ValueError) as err:
            raise OodReferenceError(f"{path} is not a usable out-of-distribution reference ({err})") from err
        if mean.shape != (FEATURE_CHANNELS,) or precision.shape != (FEATURE_CHANNELS, FEATURE_CHANNELS):
            raise OodReferenceError(f"{path} holds statistics of the wrong shape")
        if not (np.isfinite(mean).all() and np.isfinite(precision).all() and math.isfinite(reference.threshold)):
            raise OodReferenceError(f"{path} holds non-finite statistics")
        return reference


def load_reference(checkpoint_dir: str | Path, qcnn_checkpoint: str | Path) -> OodReference:
    """The reference in ``checkpoint_dir``, checked against the QCNN checkpoint in use; raises ``OodReferenceError``."""
    path = Path(checkpoint_dir) / REFERENCE_FILE
    if not path.is_file():
        raise OodReferenceError(f"{path} not found: run `qcnn ood-reference`")
    reference = OodReference.load(path)
    if reference.qcnn_digest != file_digest(qcnn_checkpoint):
        raise OodReferenceError(f"{path} was computed for another QCNN checkpoint: run `qcnn ood-reference` again")
    return reference


@torch.no_grad()
def pooled_layer3(layer3: nn.Module, layer2_features: torch.Tensor, batch_size: int = POOL_BATCH) -> np.ndarray:
    """(N, 128, 28, 28) layer2 features -> (N, 256) float64 layer3 outputs averaged over the grid."""
    device = next(layer3.parameters()).device
    out = [
        layer3(layer2_features[i : i + batch_size].float().to(device)).mean(dim=(2, 3)).double().cpu()
        for i in range(0, len(layer2_features), batch_size)
    ]
    return torch.cat(out).numpy()


def fit_reference(
    train: np.ndarray, test: np.ndarray, qcnn_digest: str, percentile: float = PERCENTILE
) -> tuple[OodReference, np.ndarray]:
    """The reference from pooled train and test features, and the test pool's distances."""
    from sklearn.covariance import LedoitWolf

    estimate = LedoitWolf().fit(train)
    reference = OodReference(
        estimate.location_.astype(np.float64),
        estimate.precision_.astype(np.float64),
        math.nan,
        percentile,
        len(train),
        len(test),
        qcnn_digest,
    )
    distances = reference.distance(test)
    return replace(reference, threshold=float(np.percentile(distances, percentile))), distances


def pool_layer2(split, pool: str, ws, device: torch.device) -> torch.Tensor:
    """The pool's cached float32 layer2 features (the one place this module reads the feature cache)."""
    from qcnn.features import cached_features

    return cached_features(
        split,
        pool,
        1,
        ws.data_dir,
        ws.checkpoint_dir,
        stage="layer2",
        precision="fp32",
        device=device,
        cache_dir=ws.cache_dir,
    )[0]


def build_reference(ws, percentile: float = PERCENTILE) -> tuple[OodReference, np.ndarray, Path]:
    """Compute and write the reference for the app's QCNN checkpoint; also returns the test distances."""
    from qcnn.models import load_model, model_file
    from qcnn.runs import load_split
    from qcnn.runtime import resolve_device

    device = resolve_device(ws.device)
    model = load_model("qcnn", ws.checkpoint_dir, device=device)
    split = load_split(ws, "lesion")
    pooled = {pool: pooled_layer3(model.layer3, pool_layer2(split, pool, ws, device)) for pool in ("train", "test")}
    reference, distances = fit_reference(
        pooled["train"], pooled["test"], file_digest(model_file("qcnn", ws.checkpoint_dir)), percentile
    )
    return reference, distances, reference.save(Path(ws.checkpoint_dir) / REFERENCE_FILE)
