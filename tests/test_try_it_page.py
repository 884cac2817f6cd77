"""The "Try it" page through Streamlit's AppTest: uploads (valid and not), the test-pool picker, no models."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import qcnn.compat  # noqa: F401
from qcnn import paths

PAGE = Path(__file__).resolve().parents[1] / "pages" / "try_it.py"
TIMEOUT = 300  # seconds per run: the first one loads both models


def have_checkpoints() -> bool:
    return all((paths.CHECKPOINT_DIR / f"{f}.safetensors").is_file() for f in ("backbone", "qcnn", "classical"))


needs_models = pytest.mark.skipif(
    not have_checkpoints(),
    reason=f"trained checkpoints not in {paths.CHECKPOINT_DIR}: run `qcnn reproduce` (CI has them committed)",
)


def app(monkeypatch: pytest.MonkeyPatch, data_dir: Path | None = None):
    from streamlit.testing.v1 import AppTest

    if data_dir is None:
        monkeypatch.delenv("QCNN_DATA_DIR", raising=False)
    else:
        monkeypatch.setenv("QCNN_DATA_DIR", str(data_dir))
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def jpeg_bytes(data_dir: Path) -> bytes:
    from qcnn.data import image_path

    return image_path(data_dir, "ISIC_0024306").read_bytes()


def test_no_models_shows_a_warning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QCNN_CHECKPOINT_DIR", str(tmp_path))
    at = app(monkeypatch)
    assert any("qcnn reproduce" in w for w in texts(at.warning))
    assert not at.file_uploader and not at.error


def test_decode_upload_handler() -> None:
    from qcnn.app.try_it import decode_upload

    buffer = io.BytesIO()
    Image.new("RGBA", (64, 48), (10, 20, 30, 255)).save(buffer, "PNG")
    image, error = decode_upload(buffer.getvalue())
    assert error is None and image.mode == "RGB" and image.size == (64, 48)
    for bad, message in ((b"", "empty"), (b"not an image at all" * 10, "not an image"), (buffer.getvalue()[:60], "")):
        image, error = decode_upload(bad)
        assert image is None and message in error


@needs_models
def test_upload_valid_then_invalid(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    at = app(monkeypatch)  # no data folder: upload only
    assert len(at.file_uploader) == 1 and not at.radio
    assert not any(s == "Predictions" for s in texts(at.subheader))
    assert any("Upload an image" in i for i in texts(at.info))  # the empty state: a prompt, no chart to load
    assert not at.get("plotly_chart")

    at.file_uploader(key="try_it_upload").set_value(("lesion.jpg", jpeg_bytes(data_dir), "image/jpeg"))
    at.run()
    assert not at.exception, texts(at.exception)
    assert not at.error
    headers = texts(at.subheader)
    # the maps are computed last (a fresh app's wait for pytorch-grad-cam) but shown second
    assert headers[:3] == ["Predictions", "Where each model looks", "The measurement: 256 outcomes"]
    assert "Patch by patch" in headers
    timing = next(c for c in texts(at.caption) if c.startswith("Time on this machine"))
    assert "prediction preprocess" in timing and "GradCAM maps: QCNN" in timing
    labels = [m.label for m in at.metric]
    assert "QCNN · P(malignant)" in labels and "Classical CNN · P(malignant)" in labels
    assert at.success or at.warning  # agreement or disagreement is spelled out
    assert any("agree" in s for s in texts(at.success) + texts(at.warning))
    if (paths.CHECKPOINT_DIR / "ood_reference.safetensors").is_file():  # a real lesion: within the test pool's range
        assert any(c.startswith("Out-of-distribution check:") for c in texts(at.caption))
        assert not any("unlike the dermoscopy images" in w for w in texts(at.warning))
    assert len([m for m in at.metric if m.label.endswith("P(malignant)")]) == 2

    # display controls rerun without recomputing; a new CAM method recomputes
    at.slider(key="try_it_alpha").set_value(0.8).run()
    at.selectbox(key="try_it_cam_method").set_value("HiResCAM").run()
    at.radio(key="try_it_patch_view").set_value("Most likely outcome").run()
    assert not at.exception, texts(at.exception)
    assert texts(at.subheader)[0] == "Predictions"

    # a text file renamed .jpg: one clear error, nothing else
    at.file_uploader(key="try_it_upload").set_value(("notes.jpg", b"these are my notes\n" * 30, "image/jpeg"))
    at.run()
    assert not at.exception, texts(at.exception)
    assert len(at.error) == 1 and "not an image" in at.error[0].value and "notes.jpg" in at.error[0].value
    assert "Predictions" not in texts(at.subheader)

    # a truncated JPEG, then a tiny PNG
    data = jpeg_bytes(data_dir)
    at.file_uploader(key="try_it_upload").set_value(("cut.jpg", data[: len(data) // 3], "image/jpeg")).run()
    assert len(at.error) == 1 and "truncated" in at.error[0].value
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    at.file_uploader(key="try_it_upload").set_value(("dot.png", buffer.getvalue(), "image/png")).run()
    assert len(at.error) == 1 and "too small" in at.error[0].value
    assert not at.exception


@needs_models
def test_pick_from_the_test_pool(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    if not (paths.RESULTS_DIR / paths.SPLIT_FILE).is_file():
        pytest.skip("results/split.csv missing: run `qcnn split`")
    at = app(monkeypatch, data_dir)
    at.radio(key="try_it_source").set_value("Pick from the test pool").run()
    assert not at.exception, texts(at.exception)
    image_id = at.selectbox(key="try_it_image_id").value
    assert image_id.startswith("ISIC_")
    assert texts(at.subheader)[0] == "Predictions"
    assert any("Ground truth" in c and image_id in c for c in texts(at.caption))
    assert any("Ground truth" in m for m in texts(at.markdown))

    at.selectbox(key="try_it_dx").set_value("mel").run()
    picked = at.selectbox(key="try_it_image_id").value
    assert picked != image_id
    assert any("melanoma" in m and "malignant" in m for m in texts(at.markdown))
    at.button(key="try_it_random").click().run()
    assert not at.exception, texts(at.exception)
    assert texts(at.subheader)[0] == "Predictions"


@needs_models
def test_a_shared_link_opens_its_test_pool_image(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    from streamlit.testing.v1 import AppTest

    if not (paths.RESULTS_DIR / paths.SPLIT_FILE).is_file():
        pytest.skip("results/split.csv missing: run `qcnn split`")
    from qcnn.app.try_it import SOURCES, test_pool

    monkeypatch.setenv("QCNN_DATA_DIR", str(data_dir))
    shared = test_pool()["image_id"].iloc[7]
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params["image"] = shared
    at.run()
    assert not at.exception, texts(at.exception)
    assert at.radio(key="try_it_source").value == SOURCES[1]
    assert at.selectbox(key="try_it_image_id").value == shared
    assert texts(at.subheader)[0] == "Predictions"
    at.selectbox(key="try_it_image_id").set_value(test_pool()["image_id"].iloc[3]).run()
    assert at.query_params["image"] == test_pool()["image_id"].iloc[3]  # the URL follows the selection


@needs_models
def test_circuit_expander(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    """The circuit is drawn only when its expander is opened (PennyLane is slow to import)."""
    at = app(monkeypatch, data_dir)
    at.file_uploader(key="try_it_upload").set_value(("lesion.jpg", jpeg_bytes(data_dir), "image/jpeg")).run()
    assert not at.code
    at.session_state["try_it_circuit"] = True
    at.run()
    assert not at.exception, texts(at.exception)
    drawing = "\n".join(c.value for c in at.code)
    assert "0:" in drawing and "Probs" in drawing


def test_fmt_probability() -> None:
    from qcnn.app.charts import fmt_probability

    assert fmt_probability(0.4567) == "45.7%"
    assert fmt_probability(0.0003) == "3.0e-04" and fmt_probability(0.0) == "0"
    assert fmt_probability(0.99995) == "1 − 5.0e-05" and fmt_probability(1.0) == "1"


def test_figures() -> None:
    from qcnn.app.charts import distribution_figure, outcome_categories, patch_map_figure, probability_figure
    from qcnn.app.try_it import top_states_table

    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(256))
    fig = distribution_figure(p, "qcnn")
    assert len(fig.data[0].y) == 256 and fig.data[0].customdata[128] == "10000000"
    table = top_states_table(p, 4)
    assert len(table) == 4 and table["probability"].is_monotonic_decreasing
    image = rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)
    for view, values in (("entropy", rng.random((14, 14)) * 8), ("argmax", rng.integers(0, 256, (14, 14)))):
        fig = patch_map_figure(image, values, "classical", view)
        assert fig.data[1].z.shape == (14, 14)
    maps = [rng.integers(0, 4, (14, 14)), np.full((14, 14), 3)]
    categories = outcome_categories(maps, k=2)
    assert categories[0] == 3  # the most frequent first
    fig = patch_map_figure(image, maps[0], "qcnn", "argmax", categories=categories)
    codes = np.asarray(fig.data[1].z)
    assert set(np.unique(codes)) <= {0, 1, 2}  # two named categories and "other"
    assert (codes[maps[0] == 3] == 0).all() and (codes[~np.isin(maps[0], categories)] == 2).all()
    assert list(fig.data[1].colorbar.ticktext)[-1] == "other"
    assert len(probability_figure({"qcnn": 0.3, "classical": 0.7}).data[0].x) == 2


def test_the_patch_map_carries_the_photo_as_a_jpeg() -> None:
    """The photo under a patch map is a compressed image, not a (224, 224, 3) array of numbers in the JSON."""
    import base64

    from qcnn.app.charts import patch_map_figure

    rows = np.linspace(60, 200, 224)[:, None, None]
    image = np.broadcast_to(rows + np.array([0, 10, 20]), (224, 224, 3)).astype(np.uint8)  # a smooth photo
    fig = patch_map_figure(image, np.random.default_rng(0).random((14, 14)) * 8, "qcnn", "entropy")
    photo = fig.data[0]
    assert photo.z is None and photo.source.startswith("data:image/jpeg;base64,")
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(photo.source.split(",", 1)[1]))))
    assert decoded.shape == image.shape and np.abs(decoded.astype(int) - image).mean() < 2
    assert len(fig.to_json()) < 40_000  # as a z array the figure was ~215 kB


def test_reference_lines_match_plotlys_own() -> None:
    """``reference_line`` draws what ``add_vline`` / ``add_hline`` would, at a fraction of the cost."""
    import plotly.graph_objects as go

    from qcnn.app.charts import reference_line

    line = dict(color="#444444", dash="dash")
    for axis, add, label, position in (
        ("x", "add_vline", dict(y=1, xanchor="center", yanchor="bottom"), "top"),
        ("y", "add_hline", dict(x=1, xanchor="right", yanchor="bottom"), "top right"),
    ):
        plotly = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]))
        getattr(plotly, add)(0.5, line=line, annotation_text="t", annotation_position=position)
        shape, annotation = reference_line(axis, 0.5, line, "t", **label)
        ours = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]), layout=dict(shapes=[shape], annotations=[annotation]))
        assert ours.layout.shapes == plotly.layout.shapes and ours.layout.annotations == plotly.layout.annotations


def test_every_cam_method_has_a_caption_and_eigencam_names_no_target() -> None:
    from qcnn.app.try_it import CAM_CAPTIONS
    from qcnn.constants import CAM_METHODS

    assert set(CAM_CAPTIONS) == set(CAM_METHODS)
    assert "class-agnostic" in CAM_CAPTIONS["EigenCAM"].lower() and "gradient" not in CAM_CAPTIONS["EigenCAM"]
    assert all("malignancy logit" in text for method, text in CAM_CAPTIONS.items() if method != "EigenCAM")


def test_streamlit_lets_oversized_uploads_reach_load_image() -> None:
    """Streamlit's own limit must sit above the project's, or a 25 MB file gets only a red icon."""
    import tomllib

    from qcnn.constants import MAX_UPLOAD_BYTES

    config = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 1e6 > 2 * MAX_UPLOAD_BYTES


@needs_models
def test_models_load_in_the_background() -> None:
    from qcnn.app import model_cache

    model_cache.start_loading()  # returns at once
    model_cache.start_loading()  # and only one load runs
    predictor = model_cache._future().result(timeout=TIMEOUT)
    assert model_cache.is_loaded() and model_cache.get_predictor() is predictor


@needs_models
def test_preload_holds_the_first_page_until_the_models_and_grad_cam_are_loaded() -> None:
    """`qcnn app --preload`: the first page run returns only once everything is warm; later runs do not wait."""
    code = f"""
import sys
from streamlit.testing.v1 import AppTest
from qcnn.app import model_cache
model_cache.preload()
at = AppTest.from_file({str(PAGE.parents[1] / "streamlit_app.py")!r}, default_timeout={TIMEOUT}).run()
assert not at.exception, at.exception
print("READY", model_cache.is_loaded(), "qcnn.cams" in sys.modules, model_cache._hold_pages)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=paths.REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "READY True True False" in out.stdout


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@needs_models
def test_noise_is_flagged_and_scorecam_states_its_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """An image of noise gets the out-of-distribution warning; ScoreCAM runs behind a progress bar and says how long."""
    if not (paths.CHECKPOINT_DIR / "ood_reference.safetensors").is_file():
        pytest.skip("checkpoints/ood_reference.safetensors missing: run `qcnn ood-reference`")
    at = app(monkeypatch)
    at.selectbox(key="try_it_cam_method").set_value("ScoreCAM").run()
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    at.file_uploader(key="try_it_upload").set_value(("noise.png", png_bytes(noise), "image/png")).run()
    assert not at.exception, texts(at.exception)
    assert texts(at.subheader)[0] == "Predictions"
    warning = next(w for w in texts(at.warning) if "unlike the dermoscopy images" in w)
    assert "above the 99th percentile" in warning and "treat both predictions with caution" in warning
    took = [c for c in texts(at.caption) if c.startswith("ScoreCAM took")]
    assert len(took) == 1 and "256 masked images each" in took[0]


@needs_models
def test_without_a_reference_the_page_says_there_is_no_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_dir: Path
) -> None:
    for name in ("backbone", "qcnn", "classical"):
        (tmp_path / f"{name}.safetensors").symlink_to(paths.CHECKPOINT_DIR / f"{name}.safetensors")
    monkeypatch.setenv("QCNN_CHECKPOINT_DIR", str(tmp_path))
    at = app(monkeypatch)
    at.file_uploader(key="try_it_upload").set_value(("lesion.jpg", jpeg_bytes(data_dir), "image/jpeg")).run()
    assert not at.exception, texts(at.exception)
    assert texts(at.subheader)[0] == "Predictions" and not at.error
    assert any("No out-of-distribution check" in c and "qcnn ood-reference" in c for c in texts(at.caption))
    assert not any("unlike the dermoscopy images" in w for w in texts(at.warning))


def test_a_new_out_of_distribution_reference_counts_as_new_checkpoints(tmp_path: Path) -> None:
    """`qcnn ood-reference` while the app runs: the next Try-it load picks the reference up, no restart."""
    from qcnn.app import model_cache

    for name in model_cache.CHECKPOINT_FILES:
        (tmp_path / name).write_bytes(b"")
    before = model_cache._stamps(tmp_path)
    (tmp_path / paths.OOD_REFERENCE_FILE).write_bytes(b"")
    assert model_cache._stamps(tmp_path) != before
