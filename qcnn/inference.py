"""Try one image on both models: probabilities, Grad-CAMs, per-patch distributions.

``Predictor`` holds the QCNN and its classical control (loaded once) and, for one image (decoded by
``qcnn.upload.load_image``), returns a ``qcnn.prediction.Prediction``: both malignancy probabilities,
a class-activation map per model and the 196 per-patch 256-outcome distributions each model's head
computed.

The CAMs come from pytorch-grad-cam, on the same layer for both models: the output of
``model.layer3``, the 14 x 14 grid of 256-channel patches the quantum layer (or its classical
control) sees, targeting the malignancy logit. How one call avoids duplicate work and stays safe
when several users share the cached models:

- conv1..layer2 is frozen and loaded from the same backbone file in both models, so it runs once
  per image (under ``no_grad``) and both models reuse the result;
- layer3 runs under ``no_grad`` inside a small per-call module (``_Layer3Output``) whose output is
  a fresh leaf tensor that requires grad: gradients flow from the logit back to the layer3 output
  and stop there (nothing is computed for weights), and pytorch-grad-cam's hooks are registered
  on that per-call module, never on the shared model, so one user's CAM cannot see another's
  activations. The CAM object is created per call and released by its context manager;
- the CAM's own forward pass is the prediction: it records the logit and the per-patch
  distributions on the way, so probability, distributions and CAM cost one forward (and, for the
  gradient methods, one backward through the head);
- each model also has a lock, held for its whole CAM, so concurrent calls on one model run one
  after the other (on a 2-core CPU nothing is lost) and nothing depends on pytorch-grad-cam
  being re-entrant.

The same forward pass also gives the out-of-distribution check (``qcnn.ood``): the QCNN's layer3
output, averaged over the grid, against the train pool's statistics in ``ood_reference.safetensors``.
ScoreCAM's batches report to an optional ``progress`` callback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

import qcnn.compat  # noqa: F401  (must precede pytorch_grad_cam, which imports torchvision)
from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam import score_cam as score_cam_module
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from qcnn import paths
from qcnn.backbone import normalize, pil_to_uint8
from qcnn.config import MODEL_PRESETS
from qcnn.constants import CAM_METHODS, FEATURE_CHANNELS, IMAGE_SIZE, MODEL_KINDS
from qcnn.models import LesionClassifier, load_model, model_file
from qcnn.ood import OodReference, OodReferenceError, load_reference
from qcnn.prediction import ModelOutput, Prediction

# ----------------------------------------------------------------------------------------------
# The predictor
# ----------------------------------------------------------------------------------------------

CAM_CLASSES = {
    "GradCAM": GradCAM,
    "GradCAM++": GradCAMPlusPlus,
    "HiResCAM": HiResCAM,
    "XGradCAM": XGradCAM,
    "LayerCAM": LayerCAM,
    "EigenCAM": EigenCAM,
    "ScoreCAM": ScoreCAM,
}
# EigenCAM's SVD (NumPy, 196 x 256) takes ~10 ms on one thread, but over a second when OpenBLAS's
# threads compete with torch's on a busy 2-core machine: it runs with one BLAS thread. The limit
# is process-wide, so a lock keeps two calls from restoring each other's setting out of order.
SINGLE_BLAS_THREAD_METHODS = ("EigenCAM",)
_BLAS_LOCK = threading.Lock()


@contextmanager
def _single_blas_thread(active: bool) -> Iterator[None]:
    if not active:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        yield
        return
    with _BLAS_LOCK, threadpool_limits(limits=1, user_api="blas"):
        yield


# Gradient-free methods: ScoreCAM runs the model once per layer3 channel (256 masked images).
SCORECAM_BATCH = 64
Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is running), called on predict's thread
_PROGRESS = threading.local()  # .report: Callable[[float], None] | None, the current call's, on its own thread


class _ProgressTqdm:
    """ScoreCAM wraps its batches in ``tqdm.tqdm``: instead of a bar in the server's log, each batch done
    reports the fraction of this model's batches to the calling thread's ``_PROGRESS.report``, if any."""

    @staticmethod
    def tqdm(iterable, *args, **kwargs):
        report = getattr(_PROGRESS, "report", None)
        items = list(iterable)  # a range of batch starts
        for done, item in enumerate(items, 1):
            yield item
            if report is not None:
                report(done / len(items))


score_cam_module.tqdm = _ProgressTqdm
_MODEL_NAMES = {"qcnn": "QCNN", "classical": "classical control"}


class _Layer3Output(nn.Module):
    """layer3 of a shared model, its output returned as a fresh leaf that requires grad.

    The CAM's target layer: its output is exactly ``model.layer3``'s, but gradients stop here
    and the CAM's hooks live on this per-call module instead of on the shared model.
    """

    def __init__(self, layer3: nn.Module) -> None:
        super().__init__()
        self.layer3 = layer3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.layer3(x)
        return out.requires_grad_(torch.is_grad_enabled())


class _CamModel(nn.Module):
    """One model as the CAM sees it: images -> (N, 1) malignancy logits.

    The first call (the CAM's own forward pass on the image) records the logit and the per-patch
    distributions; when its input is the image whose prefix features were computed already, it
    reuses them. Later calls (ScoreCAM's masked images) run the whole model.
    """

    def __init__(self, model: LesionClassifier, image: torch.Tensor, prefix_features: torch.Tensor | None) -> None:
        super().__init__()
        self.prefix, self.head = model.prefix, model.head
        self.target = _Layer3Output(model.layer3)
        self._image, self._prefix_features = image, prefix_features
        self.logits: torch.Tensor | None = None
        self.distributions: torch.Tensor | None = None
        self.pooled: torch.Tensor | None = None
        self.forward_seconds = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.logits is None
        start = time.perf_counter()
        if x is self._image and self._prefix_features is not None:
            prefix_features = self._prefix_features
        else:
            with torch.no_grad():
                prefix_features = self.prefix(x)
        features = self.target(prefix_features)
        logits, distributions = self.head.outputs(features)
        logits = logits[:, None]
        if first:
            self.logits, self.distributions = logits.detach(), distributions.detach()
            self.pooled = features.detach().mean(dim=(2, 3))
            self.forward_seconds = time.perf_counter() - start
        return logits  # (N, 1): the malignancy logit is category 0


class Predictor:
    """The QCNN and the classical control, loaded once; ``predict`` is safe to call from threads.

    ``ood``: the out-of-distribution reference for this QCNN, or None (no check; ``ood_note`` says why).
    """

    def __init__(
        self,
        qcnn: LesionClassifier,
        classical: LesionClassifier,
        ood: OodReference | None = None,
        ood_note: str = "no out-of-distribution reference given",
    ) -> None:
        self.models = {"qcnn": qcnn.eval(), "classical": classical.eval()}
        self.ood, self.ood_note = ood, ("" if ood is not None else ood_note)
        self.device = next(qcnn.parameters()).device
        for kind, model in self.models.items():
            if model.config != MODEL_PRESETS[kind]:
                raise ValueError(f"expected the {kind} model, got one of another configuration")
            model.requires_grad_(False)  # inference only: no weight gradients, ever
            # channels_last convolutions: ~1.5x faster on this CPU for ScoreCAM's batches, equal to 1e-6
            model.to(memory_format=torch.channels_last)
        self._locks = {kind: threading.Lock() for kind in self.models}
        q_state, c_state = qcnn.prefix.state_dict(), classical.prefix.state_dict()
        self.shared_prefix = q_state.keys() == c_state.keys() and all(
            torch.equal(q_state[k], c_state[k]) for k in q_state
        )

    @classmethod
    def from_checkpoints(cls, checkpoint_dir: str | Path | None = None, device: str = "cpu") -> Predictor:
        """Both app models on ``device`` (auto | cpu | cuda | mps; see ``qcnn.runtime``)."""
        from qcnn.runtime import resolve_device

        target = resolve_device(device)
        qcnn = load_model("qcnn", checkpoint_dir, device=target)
        classical = load_model("classical", checkpoint_dir, device=target)
        try:
            ood, note = load_reference(checkpoint_dir or paths.checkpoint_dir(), model_file("qcnn", checkpoint_dir)), ""
        except OodReferenceError as err:  # no check, and the page says why
            ood, note = None, str(err)
        return cls(qcnn, classical, ood, note)

    def warm_up(self) -> None:
        """One prediction on a blank image: the first call is several times slower than the next."""
        self.predict(Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (128, 128, 128)))

    def _run_model(
        self,
        kind: str,
        x: torch.Tensor,
        prefix_features: torch.Tensor | None,
        cam_method: str,
        report: Callable[[float], None] | None = None,
    ) -> tuple[ModelOutput, float, float]:
        model = self.models[kind]
        wrapper = _CamModel(model, x, prefix_features)
        with self._locks[kind]:
            start = time.perf_counter()
            _PROGRESS.report = report
            try:
                with (
                    _single_blas_thread(cam_method in SINGLE_BLAS_THREAD_METHODS),
                    CAM_CLASSES[cam_method](model=wrapper, target_layers=[wrapper.target]) as cam,
                ):
                    if isinstance(cam, ScoreCAM):
                        cam.batch_size = SCORECAM_BATCH
                    heatmap = cam(input_tensor=x, targets=[ClassifierOutputTarget(0)])[0]
            finally:
                _PROGRESS.report = None
            total = time.perf_counter() - start
        if wrapper.logits is None or wrapper.distributions is None or wrapper.pooled is None:  # pragma: no cover
            raise RuntimeError(f"{cam_method} did not run the {kind} model")
        logit = float(wrapper.logits.reshape(-1)[0])
        distributions = wrapper.distributions[0].double().cpu().numpy()
        heatmap = np.nan_to_num(np.asarray(heatmap, dtype=np.float32), nan=0.0).clip(0.0, 1.0)
        output = ModelOutput(
            probability=float(torch.sigmoid(torch.tensor(logit, dtype=torch.float64))),
            logit=logit,
            heatmap=heatmap,
            patch_distributions=distributions,
            mean_distribution=distributions.mean(axis=0),
            pooled_features=wrapper.pooled[0].double().cpu().numpy(),
        )
        return output, wrapper.forward_seconds, total - wrapper.forward_seconds

    def predict(self, image: Image.Image, cam_method: str = "GradCAM", progress: Progress | None = None) -> Prediction:
        """Both models on one image: probabilities, ``cam_method`` heatmaps, outcome distributions, OOD distance.

        ``progress(fraction, message)`` is called after each of ScoreCAM's batches and after each model,
        the last time with 1.0.
        """
        if cam_method not in CAM_CLASSES:
            raise ValueError(f"cam_method must be one of {CAM_METHODS}, got {cam_method!r}")
        if not isinstance(image, Image.Image):
            raise TypeError(f"predict takes a PIL image (see load_image), got {type(image).__name__}")
        timings: dict[str, float] = {}
        start = time.perf_counter()
        pixels = pil_to_uint8(image)  # (3, 224, 224) uint8: what the models see
        x = normalize(pixels.unsqueeze(0)).to(self.device)  # = backbone.preprocess(image), without resizing twice
        timings["preprocess"] = time.perf_counter() - start

        prefix_features = None
        if self.shared_prefix:
            t = time.perf_counter()
            with torch.no_grad():
                prefix_features = self.models["qcnn"].prefix(x)
            timings["prefix"] = time.perf_counter() - t
        outputs = {}
        for i, kind in enumerate(MODEL_KINDS):
            outputs[kind], timings[f"{kind}_forward"], timings[f"{kind}_cam"] = self._run_model(
                kind, x, prefix_features, cam_method, self._model_progress(progress, i, kind, cam_method)
            )
            if progress is not None:
                progress((i + 1) / len(MODEL_KINDS), f"{cam_method}: the {_MODEL_NAMES[kind]} is done")
        timings["total"] = time.perf_counter() - start
        distance = None if self.ood is None else float(self.ood.distance(outputs["qcnn"].pooled_features))
        return Prediction(
            image=pixels.permute(1, 2, 0).numpy().copy(),
            qcnn=outputs["qcnn"],
            classical=outputs["classical"],
            cam_method=cam_method,
            timings=timings,
            ood_distance=distance,
            ood_threshold=None if self.ood is None else self.ood.threshold,
        )

    @staticmethod
    def _model_progress(
        progress: Progress | None, index: int, kind: str, cam_method: str
    ) -> Callable[[float], None] | None:
        """Model ``index``'s share of the overall progress: a fraction of its batches -> the whole call's."""
        if progress is None:
            return None
        n_masked = FEATURE_CHANNELS  # ScoreCAM masks the image with each of layer3's channels
        n_models = len(MODEL_KINDS)

        def report(fraction: float) -> None:
            progress(
                (index + fraction) / n_models,
                f"{cam_method} on the {_MODEL_NAMES[kind]}: {round(fraction * n_masked)} of {n_masked} masked images",
            )

        return report


__all__ = ["CAM_CLASSES", "CAM_METHODS", "IMAGE_SIZE", "ModelOutput", "Prediction", "Predictor"]
