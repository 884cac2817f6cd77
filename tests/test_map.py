"""The Map: pooled outcome vectors, their 2-D projections, and the Disagreements page's map view."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

from qcnn import embedding, paths
from qcnn.app import page_disagreements
from qcnn.testing import assert_no_exception as no_exception
from qcnn.testing import chart_spec as chart
from qcnn.testing import write_synthetic_results

PAGE = paths.REPO_ROOT / "pages" / "disagreements.py"
KEY = page_disagreements.KEY


def dirichlet_vectors(n: int = 300, seed: int = 0) -> np.ndarray:
    """Distributions over 256 outcomes with a few dominant directions, like pooled outcome vectors."""
    rng = np.random.default_rng(seed)
    mix = rng.dirichlet(np.full(4, 0.5), size=n)
    bases = rng.dirichlet(np.full(256, 0.2), size=4)
    return (mix @ bases + rng.dirichlet(np.full(256, 5.0), size=n) * 0.05).astype(np.float32)


def test_pca_matches_scikit_learn_up_to_sign():
    from sklearn.decomposition import PCA

    vectors = dirichlet_vectors()
    coords, ratio = embedding.pca_2d(vectors)
    reference = PCA(n_components=2, svd_solver="full").fit(vectors.astype(np.float64))
    expected = reference.transform(vectors.astype(np.float64))
    signs = np.sign((coords * expected).sum(axis=0))
    np.testing.assert_allclose(coords, expected * signs, atol=1e-9)
    np.testing.assert_allclose(ratio, reference.explained_variance_ratio_, rtol=1e-9)
    assert ratio[0] >= ratio[1] > 0.05


def test_pca_signs_do_not_depend_on_the_row_order():
    """The sign convention comes from the loadings, so a shuffled input gives the same picture."""
    vectors = dirichlet_vectors(seed=1)
    order = np.random.default_rng(0).permutation(len(vectors))
    coords, _ = embedding.pca_2d(vectors)
    shuffled, _ = embedding.pca_2d(vectors[order])
    np.testing.assert_allclose(shuffled, coords[order], atol=1e-9)
    mirrored, _ = embedding.pca_2d(vectors[::-1])
    np.testing.assert_allclose(mirrored, coords[::-1], atol=1e-9)


def test_projection_frame_has_both_models_and_rounded_coordinates():
    test = pd.DataFrame({"image_id": [f"ISIC_{i:07d}" for i in range(120)]})
    vectors = {"qcnn": dirichlet_vectors(120, 2), "classical": dirichlet_vectors(120, 3)}
    frame, explained = embedding.project(test, vectors, with_umap=False)
    assert list(frame.columns) == ["image_id", "model", "pc1", "pc2"]
    assert frame.groupby("model").size().to_dict() == {"classical": 120, "qcnn": 120}
    qcnn = frame[frame.model == "qcnn"]
    np.testing.assert_allclose(qcnn[["pc1", "pc2"]], embedding.pca_2d(vectors["qcnn"])[0], atol=5e-6)
    assert set(explained) == {"qcnn", "classical"} and all(0 < r[1] <= r[0] < 1 for r in explained.values())


# --- the command's vectors on real test images -------------------------------------------------------

HAVE_MODELS = all((paths.CHECKPOINT_DIR / f"{f}.safetensors").is_file() for f in ("backbone", "qcnn", "classical"))


@pytest.mark.skipif(not HAVE_MODELS, reason="no trained checkpoints: run `qcnn reproduce`")
def test_pooled_vectors_are_the_mean_of_the_head_outputs_on_real_images(data_dir):
    """What `qcnn map` projects is the mean over patches of head.outputs, and the classifier's input."""
    from qcnn.backbone import normalize
    from qcnn.images import load_images
    from qcnn.models import load_model
    from qcnn.runs import Workspace, load_split

    split = load_split(Workspace(paths.RESULTS_DIR, paths.CHECKPOINT_DIR, data_dir), "lesion")
    positions = np.array([0, 17, 1000])
    test = split[split.pool == "test"].reset_index(drop=True).iloc[positions]
    vectors = embedding.pool_vectors(split, data_dir, paths.CHECKPOINT_DIR, positions)
    images = normalize(load_images(data_dir, test.image_id.tolist()))
    for kind in ("qcnn", "classical"):
        model = load_model(kind, paths.CHECKPOINT_DIR)
        with torch.no_grad():  # independently: images -> prefix -> layer3 -> head, no feature pipeline
            out = model.head.outputs(model.layer3(model.prefix(images)))
        assert vectors[kind].shape == (3, 256) and vectors[kind].dtype == np.float32
        np.testing.assert_allclose(vectors[kind], out.patch_outcomes.mean(dim=1).numpy(), rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(vectors[kind].sum(axis=1), 1.0, atol=1e-5)  # each a distribution
        logits = model.head.classifier(model.head.readout(torch.from_numpy(vectors[kind]))).squeeze(-1)
        np.testing.assert_allclose(logits.detach().numpy(), out.logits.numpy(), atol=1e-4)


# --- the page ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory) -> Path:
    return write_synthetic_results(tmp_path_factory.mktemp("map_results"), n_test=300, seeds=(0, 1), n_bootstrap=20)


@pytest.fixture
def synthetic(synthetic_dir, monkeypatch) -> Path:
    monkeypatch.setenv("QCNN_RESULTS_DIR", str(synthetic_dir))
    monkeypatch.delenv("QCNN_DATA_DIR", raising=False)
    return synthetic_dir


def open_page(**query: str) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    no_exception(at)
    return at


def points_per_colour(figure: dict) -> dict[str, int]:
    """Image points per legend entry (the legend's own swatch traces hold no image)."""
    counts: dict[str, int] = {}
    for trace in figure["data"]:
        counts[trace["name"]] = counts.get(trace["name"], 0) + len(trace.get("customdata", []))
    return counts


def texts(at: AppTest) -> str:
    return "\n".join(x.value for x in (*at.markdown, *at.caption, *at.info, *at.warning))


def test_disagreements_page_draws_both_maps_and_follows_the_url(synthetic):
    at = open_page()
    coords = pd.read_csv(synthetic / "map.csv")
    for kind in ("qcnn", "classical"):
        figure = chart(at, f"{KEY}map_{kind}")
        assert set(points_per_colour(figure)) == {"malignant", "benign"}  # coloured by label by default
        assert sum(points_per_colour(figure).values()) == (coords.model == kind).sum()
        assert "% of variance" in figure["layout"]["xaxis"]["title"]["text"]
    info = json.loads((synthetic / paths.MAP_JSON).read_text())
    assert f"{100 * info['models']['qcnn']['pca_explained_variance_ratio'][0]:.1f} %" in texts(at)

    at.radio(key=KEY + "map_colour").set_value("correct").run()
    no_exception(at)
    assert at.query_params["colour"] == "correct"  # shareable
    figure = chart(at, f"{KEY}map_qcnn")
    right = points_per_colour(figure)
    predictions = pd.read_csv(synthetic / "runs" / "qcnn_seed0" / "predictions.csv")
    correct = ((predictions.probability >= 0.5) == (predictions.label == 1)).sum()
    assert right == {"right": correct, "wrong": len(predictions) - correct}

    at.selectbox(key=KEY + "seed").set_value(1).run()  # the map stays seed 0's
    no_exception(at)
    assert "colours and probabilities are seed 0's" in texts(at)

    at = open_page(proj="umap", colour="diagnosis")  # a shared link
    figure = chart(at, f"{KEY}map_classical")
    assert figure["layout"]["xaxis"]["title"]["text"] == "UMAP 1"
    assert set(points_per_colour(figure)) == set(coords.merge(predictions, on="image_id").dx)


def test_disagreements_page_says_to_run_qcnn_map_without_map_files(synthetic_dir, tmp_path, monkeypatch):
    shutil.copytree(synthetic_dir, tmp_path / "r")
    (tmp_path / "r" / "map.csv").unlink()
    monkeypatch.setenv("QCNN_RESULTS_DIR", str(tmp_path / "r"))
    monkeypatch.delenv("QCNN_DATA_DIR", raising=False)
    at = open_page()
    assert [c for c in at.get("plotly_chart") if "map_" in c.proto.id] == []
    notes = [i.value for i in at.info if "map.csv" in i.value]
    assert len(notes) == 1 and "`qcnn map`" in notes[0]
    assert chart(at, KEY + "scatter")  # the rest of the page is unchanged


def test_map_without_checkpoints_says_what_to_run(tmp_path, data_dir):
    import subprocess
    import sys

    (tmp_path / paths.SPLIT_FILE).write_text((paths.RESULTS_DIR / paths.SPLIT_FILE).read_text())
    result = subprocess.run(
        [sys.executable, "-m", "qcnn", "map", "--results-dir", str(tmp_path), "--checkpoint-dir", str(tmp_path / "no")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QCNN_DATA_DIR": str(data_dir)},
        cwd=paths.REPO_ROOT,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "qcnn reproduce" in result.stderr
    assert not (tmp_path / paths.MAP_CSV).exists()
