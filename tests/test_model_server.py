"""The models' own process (qcnn.model_server): same predictions as in-process, clear failures, no torch in the app."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qcnn import model_server, paths

REPO = Path(__file__).resolve().parents[1]
CHECKPOINTS = ("backbone", "qcnn", "classical")
needs_models = pytest.mark.skipif(
    not all((paths.CHECKPOINT_DIR / f"{f}.safetensors").is_file() for f in CHECKPOINTS),
    reason=f"trained checkpoints not in {paths.CHECKPOINT_DIR}: run `qcnn reproduce` (CI has them committed)",
)


def lesion_like(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(60, 200, (150, 200, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def remote():
    predictor = model_server.start(paths.CHECKPOINT_DIR)
    yield predictor
    predictor.close()


@needs_models
def test_remote_predictions_equal_the_in_process_ones(remote) -> None:
    import qcnn.compat  # noqa: F401
    from qcnn.inference import Predictor

    local = Predictor.from_checkpoints(paths.CHECKPOINT_DIR)
    image = lesion_like(0)
    reports: list[tuple[float, str]] = []
    there, here = remote.predict(image, progress=lambda f, t: reports.append((f, t))), local.predict(image)
    for kind in ("qcnn", "classical"):
        a, b = there.output(kind), here.output(kind)
        assert a.probability == pytest.approx(b.probability, abs=1e-6)
        np.testing.assert_allclose(a.patch_distributions, b.patch_distributions, atol=1e-6)
        np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-4)
    assert there.ood_distance == pytest.approx(here.ood_distance, rel=1e-6)
    assert [f for f, _ in reports] == [0.5, 1.0]  # one report per model, streamed back during the call

    info = remote.info
    classifier = local.models["qcnn"].head.classifier
    np.testing.assert_array_equal(info.readout_weights, classifier.weight.detach().double().numpy()[0])
    assert info.n_qubits == 8 and info.ood_note == local.ood_note


@needs_models
def test_a_bad_request_is_the_callers_error_and_the_worker_keeps_serving(remote) -> None:
    with pytest.raises(ValueError, match="cam_method must be one of"):
        remote.predict(lesion_like(1), cam_method="NoSuchCAM")
    with pytest.raises(ValueError, match="PIL image"):
        remote.predict(np.zeros((224, 224, 3), dtype=np.uint8))
    assert 0.0 <= remote.predict(lesion_like(1)).qcnn.probability <= 1.0
    draws = remote.probability_draws(remote.predict(lesion_like(1)).qcnn.patch_distributions, 100)
    assert draws.shape == (20,) and np.all((draws >= 0) & (draws <= 1))


def test_unreadable_checkpoints_say_what_to_run_and_the_worker_stops(tmp_path: Path) -> None:
    for name in CHECKPOINTS:
        (tmp_path / f"{name}.safetensors").write_bytes(b"not a checkpoint")
    predictor = model_server.start(tmp_path)
    with pytest.raises(model_server.ModelServerError, match="qcnn reproduce"):
        predictor.wait()
    socket_folder = Path(predictor._address).parent
    predictor.close()
    assert predictor._process.returncode == 0
    assert not socket_folder.exists()  # the worker removes its socket's private folder
    with pytest.raises(model_server.ModelServerError, match="has stopped"):
        predictor.predict(lesion_like(2))


APP_PROCESS_SCRIPT = """
import io, json, sys
import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

at = AppTest.from_file(sys.argv[1], default_timeout=300)
at.run()
buffer = io.BytesIO()
Image.fromarray(np.random.default_rng(0).integers(60, 200, (150, 200, 3), dtype=np.uint8)).save(buffer, "PNG")
at.file_uploader(key="try_it_upload").set_value(("lesion.png", buffer.getvalue(), "image/png")).run()
print(json.dumps({
    "exceptions": [e.value for e in at.exception],
    "predictions": "Predictions" in [s.value for s in at.subheader],
    "shots": any("shots per patch" in c.value for c in at.caption),
    "torch": "torch" in sys.modules,
}))
"""


@needs_models
def test_the_app_process_predicts_without_importing_torch(tmp_path: Path) -> None:
    """A Try-it prediction, its finite-shot spread and all: torch is imported only in the models' process."""
    script = tmp_path / "app_process.py"
    script.write_text(APP_PROCESS_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), str(REPO / "pages" / "try_it.py")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"exceptions": [], "predictions": True, "shots": True, "torch": False}, result
