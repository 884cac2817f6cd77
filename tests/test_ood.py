"""The out-of-distribution reference: its statistics, its file, and the committed reference against the data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import qcnn.compat  # noqa: F401
from qcnn import paths
from qcnn.ood import REFERENCE_FILE, OodReference, OodReferenceError, fit_reference, load_reference, pooled_layer3

DIM = 256


def synthetic_reference(rng: np.random.Generator, n_train: int = 1269, n_test: int = 4000):
    """Correlated Gaussian features: few train images for many dimensions, as in the real train pool."""
    mixing = rng.normal(size=(DIM, DIM)) / math.sqrt(DIM)
    train = rng.normal(size=(n_train, DIM)) @ mixing + 3.0
    test = rng.normal(size=(n_test, DIM)) @ mixing + 3.0
    return fit_reference(train, test, "0123456789abcdef"), train


def test_threshold_is_the_test_pools_percentile() -> None:
    (reference, distances), train = synthetic_reference(np.random.default_rng(0))
    assert reference.n_train == 1269 and reference.n_test == 4000 and reference.percentile == 99.0
    assert distances.shape == (4000,)
    assert np.mean(distances > reference.threshold) == pytest.approx(0.01, abs=0.001)
    assert reference.distance(reference.mean) == pytest.approx(0.0, abs=1e-9)
    # a point far along the data's own directions is far; the shrunk precision keeps distances finite
    assert reference.distance(train.mean(0) + 10 * (train[0] - train.mean(0))) > reference.threshold
    assert np.isfinite(reference.precision).all()


def test_save_and_load(tmp_path: Path) -> None:
    (reference, _), _ = synthetic_reference(np.random.default_rng(1), n_test=500)
    path = reference.save(tmp_path / REFERENCE_FILE)
    loaded = OodReference.load(path)
    assert np.array_equal(loaded.mean, reference.mean) and np.array_equal(loaded.precision, reference.precision)
    assert (loaded.threshold, loaded.percentile, loaded.n_train, loaded.n_test, loaded.qcnn_digest) == (
        reference.threshold,
        99.0,
        1269,
        500,
        "0123456789abcdef",
    )
    assert [p.name for p in tmp_path.iterdir()] == [REFERENCE_FILE], "written atomically: no temporary file left"


def test_load_reference_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    checkpoint = tmp_path / "qcnn.safetensors"
    checkpoint.write_bytes(b"some weights")
    with pytest.raises(OodReferenceError, match="qcnn ood-reference"):
        load_reference(tmp_path, checkpoint)  # missing
    (reference, _), _ = synthetic_reference(np.random.default_rng(2), n_test=200)
    reference.save(tmp_path / REFERENCE_FILE)
    with pytest.raises(OodReferenceError, match="another QCNN checkpoint"):
        load_reference(tmp_path, checkpoint)
    (tmp_path / REFERENCE_FILE).write_bytes(b"\x00" * 40)
    with pytest.raises(OodReferenceError, match="not a usable"):
        load_reference(tmp_path, checkpoint)


def test_pooled_layer3_averages_the_grid() -> None:
    layer3 = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1)
    x = torch.randn(5, 4, 8, 8)
    pooled = pooled_layer3(layer3, x, batch_size=2)
    assert pooled.shape == (5, 6) and pooled.dtype == np.float64
    with torch.no_grad():
        assert np.allclose(pooled, layer3(x).mean(dim=(2, 3)).numpy(), atol=1e-6)


def test_the_command_without_models_says_what_to_run(tmp_path: Path, data_dir: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "qcnn", "ood-reference", "--checkpoint-dir", str(tmp_path), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=paths.REPO_ROOT,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "qcnn reproduce" in result.stderr and not (tmp_path / REFERENCE_FILE).exists()


# --- the committed reference, against the data and the committed checkpoints ----------------------------------


@pytest.fixture(scope="module")
def committed(data_dir: Path):
    """The committed reference, the QCNN, and the test pool's pooled layer3 features (fp32 layer2 cache)."""
    from qcnn.models import load_model
    from qcnn.ood import pool_layer2
    from qcnn.runs import Workspace, load_split

    path = paths.CHECKPOINT_DIR / REFERENCE_FILE
    if not path.is_file() or not (paths.CHECKPOINT_DIR / "qcnn.safetensors").is_file():
        pytest.skip(f"{path} or the QCNN checkpoint missing: run `qcnn reproduce`, then `qcnn ood-reference`")
    if not (paths.RESULTS_DIR / paths.SPLIT_FILE).is_file():
        pytest.skip("results/split.csv missing: run `qcnn split`")
    ws = Workspace(paths.RESULTS_DIR, paths.CHECKPOINT_DIR, data_dir)
    model = load_model("qcnn", paths.CHECKPOINT_DIR)
    split = load_split(ws, "lesion")
    pooled = pooled_layer3(model.layer3, pool_layer2(split, "test", ws, torch.device("cpu")))
    test_ids = split.loc[split.pool == "test", "image_id"].tolist()
    return OodReference.load(path), pooled, test_ids


def test_committed_reference_flags_about_one_percent_of_the_test_pool(committed) -> None:
    from qcnn.backbone import file_digest

    reference, pooled, _ = committed
    assert reference.qcnn_digest == file_digest(paths.CHECKPOINT_DIR / "qcnn.safetensors")
    assert reference.n_test == len(pooled) and reference.percentile == 99.0
    unusual = reference.distance(pooled) > reference.threshold
    assert unusual.mean() == pytest.approx(0.01, abs=0.002), f"{unusual.sum()} of {len(pooled)}"


def test_the_app_computes_the_references_distance(committed, data_dir: Path) -> None:
    """Try it's distance (from its own forward pass) equals the command's (from the cached features)."""
    from qcnn.data import image_path, load_image_file
    from qcnn.inference import Predictor

    reference, pooled, test_ids = committed
    predictor = Predictor.from_checkpoints(paths.CHECKPOINT_DIR)
    assert predictor.ood is not None and predictor.ood_note == ""
    distances = reference.distance(pooled)
    for i in (0, int(np.argmax(distances))):  # a typical image and the test pool's most unusual one
        prediction = predictor.predict(load_image_file(image_path(data_dir, test_ids[i])))
        assert prediction.ood_distance == pytest.approx(distances[i], rel=1e-4)
        assert prediction.ood_threshold == reference.threshold
        assert prediction.unusual == bool(distances[i] > reference.threshold)
