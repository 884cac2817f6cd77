"""The Map: where each test image lands in each model's 256-D outcome space, projected to 2-D.

Both models turn each of an image's 196 patches into a distribution over 256 outcomes (the QCNN: its
circuit's measurement probabilities; the classical control: softmax(Linear(8 -> 256))), and the
classifier reads only their mean over the patches. That pooled vector is everything the linear
readout sees, so a projection of it shows how each model lays out the test pool before the readout.

PCA is fitted per model on that model's test vectors, each component's sign fixed by its loadings
(the largest-magnitude loading is positive), so a rerun draws the same picture. UMAP (umap-learn,
seeded, single-threaded so it is reproducible) keeps neighbourhoods that a linear projection flattens.
"""

from __future__ import annotations

import time
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from qcnn import paths
from qcnn.constants import MODEL_KINDS

if TYPE_CHECKING:
    from qcnn.models import LesionClassifier

DECIMALS = 5  # coordinates as written to map.csv
UMAP_SETTINGS = {"n_neighbors": 15, "min_dist": 0.1, "metric": "euclidean", "random_state": 0}


@torch.no_grad()
def pooled_outcomes(model: LesionClassifier, features: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """(N, 256) float32: the mean over patches of ``model.head.outputs``'s per-patch outcomes.

    ``features`` are the model's cached stage (``model.cached_stage``), as the evaluation reads them.
    """
    pooled = []
    for i in range(0, len(features), batch_size):
        outcomes = model.head.outputs(model.layer3_features(features[i : i + batch_size].float())).patch_outcomes
        if outcomes is None:
            raise ValueError("this model has no per-patch outcomes (a global-average-pooling head)")
        pooled.append(outcomes.float().mean(dim=1))
    return torch.cat(pooled).numpy()


def pool_vectors(
    split: pd.DataFrame,
    data_dir: str | Path,
    checkpoint_dir: str | Path,
    positions: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Each app model's pooled outcome vectors for the test pool (or the images at ``positions`` in it), in
    split order; features read once per cached stage, through the shots experiment's loader."""
    from qcnn.models import load_model
    from qcnn.shots import load_test_features

    features: dict[str, torch.Tensor] = {}
    vectors = {}
    for kind in MODEL_KINDS:
        model = load_model(kind, checkpoint_dir)
        stage = model.cached_stage
        if stage not in features:
            features[stage] = load_test_features(split, data_dir, checkpoint_dir, stage, positions)
        vectors[kind] = pooled_outcomes(model, features[stage])
    return vectors


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) coordinates on the first two principal components and their explained variance ratios.

    Centred SVD in float64. A component's sign is arbitrary; it is fixed so that its largest-magnitude
    loading is positive (scikit-learn's convention), which depends on the data, not on the solver's run.
    """
    x = np.asarray(vectors, dtype=np.float64)
    centred = x - x.mean(axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    components = components[:2]
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    components = components * signs[:, None]
    variance = singular**2
    return centred @ components.T, variance[:2] / variance.sum()


def umap_2d(vectors: np.ndarray) -> np.ndarray:
    """(N, 2) UMAP embedding with ``UMAP_SETTINGS`` (seeded: umap-learn then runs single-threaded)."""
    import umap

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)  # seeded => 1 thread
        reducer = umap.UMAP(n_components=2, n_jobs=1, **UMAP_SETTINGS)
        return reducer.fit_transform(np.asarray(vectors, dtype=np.float32)).astype(np.float64)


def project(test: pd.DataFrame, vectors: dict[str, np.ndarray], with_umap: bool = True) -> tuple[pd.DataFrame, dict]:
    """map.csv's rows (image_id, model, pc1, pc2[, umap1, umap2]) and each model's explained variance."""
    frames, explained = [], {}
    for kind, v in vectors.items():
        coords, ratio = pca_2d(v)
        frame = pd.DataFrame(
            {"image_id": test.image_id.to_numpy(), "model": kind, "pc1": coords[:, 0], "pc2": coords[:, 1]}
        )
        if with_umap:
            frame[["umap1", "umap2"]] = umap_2d(v)
        frames.append(frame)
        explained[kind] = [round(float(r), 6) for r in ratio]
    return pd.concat(frames, ignore_index=True).round(DECIMALS), explained


def run(
    split: pd.DataFrame, data_dir: str | Path, results_dir: Path, checkpoint_dir: Path, command: str, log=print
) -> dict:
    """results/map.csv and results/map.json for the app's two models (checkpoints/, the seed-0 pair)."""
    from qcnn.backbone import BACKBONE_FILE, file_digest
    from qcnn.io import write_csv, write_json

    t0 = time.perf_counter()
    test = split[split.pool == "test"].reset_index(drop=True)
    vectors = pool_vectors(split, data_dir, checkpoint_dir)
    frame, explained = project(test, vectors)
    info = {
        "command": command,
        "n_test": len(test),
        "models": {
            kind: {**_checkpoint(kind, checkpoint_dir), "pca_explained_variance_ratio": explained[kind]}
            for kind in vectors
        },
        "backbone_sha256_16": file_digest(Path(checkpoint_dir) / BACKBONE_FILE),
        "method": {
            "vector": "per test image and model: the mean over its 196 patches of the 256 outcome probabilities "
            "(the QCNN's circuit probabilities, the classical control's softmax(Linear(8->256))), float32, from "
            "the test pool's cached float32 features",
            "pca": "fitted per model on that model's test vectors (centred SVD, float64); each component's "
            "largest-magnitude loading made positive",
            "umap": {"package": f"umap-learn {version('umap-learn')}", **UMAP_SETTINGS, "n_jobs": 1},
            "decimals": DECIMALS,
        },
    }
    write_csv(frame, results_dir / paths.MAP_CSV)
    write_json(results_dir / paths.MAP_JSON, info)
    for kind, ratio in explained.items():
        log(f"{kind}: PC1 {100 * ratio[0]:.1f} %, PC2 {100 * ratio[1]:.1f} % of the variance")
    log(f"wrote {results_dir / paths.MAP_CSV} and {paths.MAP_JSON} ({time.perf_counter() - t0:.0f} s)")
    return info


def _checkpoint(kind: str, checkpoint_dir: Path) -> dict:
    """Which weights made the vectors: the file, its digest and the training seed in its metadata."""
    import json

    from safetensors import safe_open

    from qcnn.backbone import file_digest
    from qcnn.models import model_file

    path = model_file(kind, checkpoint_dir)
    with safe_open(str(path), "np") as f:
        extra = json.loads((f.metadata() or {}).get("extra", "{}"))
    return {"file": f"checkpoints/{path.name}", "sha256_16": file_digest(path), "seed": extra.get("seed")}
