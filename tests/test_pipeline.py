"""The pipeline end to end on a small real slice of HAM10000 (seconds, random backbone)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from qcnn import paths
from qcnn.backbone import BACKBONE_FILE, Backbone, load_backbone, preprocess, save_backbone
from qcnn.data import DataError, image_path, load_image_file, read_metadata, resolve_data_dir
from qcnn.evaluate import evaluate_run, summarize
from qcnn.metrics import METRICS
from qcnn.models import build_model, load_model, save_model
from qcnn.split import POOLS, make_split
from qcnn.train import TrainConfig, train_run


@pytest.fixture(scope="module")
def meta(data_dir):
    return read_metadata(data_dir)


@pytest.fixture(scope="module")
def split(meta):
    return make_split(meta)


def test_split_is_lesion_disjoint_and_reproducible(meta, split):
    assert split.image_id.tolist() == sorted(meta.image_id) and set(split.pool) == set(POOLS)
    used = split[split.pool != "excluded"]
    assert (used.groupby("lesion_id").pool.nunique() == 1).all(), "a lesion appears in two pools"
    excluded = split[split.pool == "excluded"]
    assert excluded.lesion_id.isin(split[split.pool.isin(["train", "val"])].lesion_id).all()
    assert split.equals(make_split(meta)), "same seed, different split"
    assert not split.equals(make_split(meta, seed=1))
    assert split[split.pool == "pretrain"].label.sum() == 0, "the backbone must never see a malignant lesion"
    assert set(split[split.pool == "pretrain"].dx) <= {"nv", "bkl", "df", "vasc"}
    train_val = split[split.pool.isin(["train", "val"])]
    assert abs(train_val.label.mean() - 0.5) < 0.01, "train/val must be balanced"
    benign = train_val[train_val.label == 0]
    assert benign.lesion_id.is_unique, "one benign image per lesion"
    test = split[split.pool == "test"]
    assert 0.2 < test.label.mean() < 0.35 and len(test) > 3000
    val_fraction = (split.pool == "val").sum() / len(train_val)
    assert 0.15 < val_fraction < 0.25


def test_data_errors_name_the_problem(tmp_path, monkeypatch):
    monkeypatch.delenv("QCNN_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="QCNN_DATA_DIR"):
        resolve_data_dir()
    with pytest.raises(DataError, match="not found"):
        resolve_data_dir(tmp_path / "nowhere")
    (tmp_path / "HAM10000_metadata.csv").write_text("lesion_id,image_id,dx\nL1,ISIC_1,mel\n")
    with pytest.raises(DataError, match="ISIC_1"):
        image_path(tmp_path, "ISIC_1")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "ISIC_1.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="ISIC_1.jpg"):
        load_image_file(image_path(tmp_path, "ISIC_1"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, split, data_dir):
    """A random backbone and a small slice: 24 train, 8 val, 16 test images."""
    root = tmp_path_factory.mktemp("pipeline")
    torch.manual_seed(0)
    save_backbone(Backbone(), root / "checkpoints" / BACKBONE_FILE, source="random")
    parts = [split[(split.pool == pool) & (split.label == y)].head(n // 2)
             for pool, n in (("train", 24), ("val", 8), ("test", 16)) for y in (0, 1)]
    small = pd.concat(parts, ignore_index=True)
    mp = pytest.MonkeyPatch()
    mp.setattr(paths, "CACHE_DIR", root / "cache")
    yield {"root": root, "split": small, "results": root / "results", "checkpoints": root / "checkpoints",
           "data": data_dir}
    mp.undo()


def test_train_evaluate_summarize_write_the_documented_schema(workspace):
    w, cfg = workspace, TrainConfig(epochs=2, batch_size=8)
    for kind in paths.MODEL_KINDS:
        history = train_run(kind, 0, w["split"], w["data"], w["results"], w["checkpoints"], cfg)
        assert list(history.columns) == ["epoch", "train_loss", "val_loss", "val_auc", "val_accuracy", "lr",
                                         "seconds", "best"]
        assert len(history) == 2 and history.best.sum() >= 1
        metrics = evaluate_run(kind, 0, w["split"], w["data"], w["results"], w["checkpoints"])
        assert set(METRICS) <= metrics.keys() and metrics["n"] == 16
        run = w["results"] / "runs" / f"{kind}_seed0"
        predictions = pd.read_csv(run / "predictions.csv")
        assert list(predictions.columns) == ["image_id", "lesion_id", "dx", "label", "probability"]
        assert predictions.probability.between(0, 1).all()
        config = json.loads((run / "config.json").read_text())
        assert config["parameters"]["all"]["trainable"] < config["parameters"]["all"]["total"]
    summary = summarize(w["results"], n_bootstrap=50)
    assert summary["seeds"] == [0]
    for m in METRICS:
        lo, hi = summary["difference"]["seed0"][m]["ci95"]
        assert lo <= hi
    mc = summary["mcnemar"]
    assert mc["both_correct"] + mc["only_qcnn_correct"] + mc["only_classical_correct"] + mc["both_wrong"] == 16
    assert 0 <= mc["p_value"] <= 1


def test_checkpoint_round_trip_gives_identical_outputs(workspace, tmp_path):
    backbone_path = workspace["checkpoints"] / BACKBONE_FILE
    torch.manual_seed(1)
    model = build_model("qcnn", load_backbone(backbone_path)).eval()
    save_model(model, tmp_path / "qcnn.safetensors", backbone_path)
    (tmp_path / BACKBONE_FILE).write_bytes(backbone_path.read_bytes())
    loaded = load_model("qcnn", tmp_path)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    with pytest.raises(ValueError, match="not 'classical'"):
        (tmp_path / "classical.safetensors").write_bytes((tmp_path / "qcnn.safetensors").read_bytes())
        load_model("classical", tmp_path)


def test_load_model_is_deterministic_on_an_image(workspace, data_dir):
    model = load_model("classical", workspace["checkpoints"],
                       model_path=workspace["checkpoints"] / "runs" / "classical_seed0.safetensors")
    image = load_image_file(image_path(data_dir, workspace["split"].image_id.iloc[0]))
    x = preprocess(image)
    assert x.shape == (1, 3, 224, 224)
    with torch.no_grad():
        first, second = model(x), model(preprocess(image))
    assert torch.equal(first, second) and first.shape == (1,)
    assert np.isfinite(first.numpy()).all()
