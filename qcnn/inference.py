"""Try one image on both models: safe decoding, probabilities, Grad-CAMs, per-patch distributions.

``load_image(bytes)`` turns an upload into an RGB ``PIL.Image`` or raises ``ImageError`` with a
message a person can act on. ``Predictor`` holds the QCNN and its classical control (loaded once)
and, for one image, returns both malignancy probabilities, a class-activation map per model and
the 196 per-patch 256-outcome distributions each model's head computed.

``predict(image, cam_method=None)`` is the prediction alone: one forward pass per model under
``no_grad``, without pytorch-grad-cam (``qcnn.cams``, imported on the first map), so a freshly
started app can show probabilities before that library has loaded. With a ``cam_method`` the
CAM's own forward pass is the prediction (see ``qcnn.cams``): probability, distributions and map
cost one forward (and, for the gradient methods, one backward through the head).

- conv1..layer2 is frozen and loaded from the same backbone file in both models, so it runs once
  per image (under ``no_grad``) and both models reuse the result;
- each model has a lock, held for its whole call, so concurrent calls on one model run one after
  the other (on a 2-core CPU nothing is lost).

The same forward pass also gives the out-of-distribution check (``qcnn.ood``): the QCNN's layer3
output, averaged over the grid, against the train pool's statistics in ``ood_reference.safetensors``.
ScoreCAM's batches report to an optional ``progress`` callback.
"""

from __future__ import annotations

import io
import math
import struct
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from qcnn import paths
from qcnn.backbone import normalize, pil_to_uint8
from qcnn.constants import (
    CAM_METHODS,
    DEFAULT_CAM_METHOD,
    FEATURE_CHANNELS,
    GRID,
    IMAGE_SIZE,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_PIXELS,
    MIN_UPLOAD_SIDE,
    MODEL_KINDS,
    N_QUBITS,
    THRESHOLD,
    UPLOAD_EXTENSIONS,
)
from qcnn.config import MODEL_PRESETS
from qcnn.models import LesionClassifier, load_model, model_file
from qcnn.ood import OodReference, OodReferenceError, load_reference

# ----------------------------------------------------------------------------------------------
# Decoding an upload
# ----------------------------------------------------------------------------------------------

MAX_BYTES, MAX_PIXELS, MIN_SIDE = MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, MIN_UPLOAD_SIDE
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
ACCEPTED_EXTENSIONS = UPLOAD_EXTENSIONS
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_ACCEPTED_TEXT = "JPEG, PNG, WebP, BMP, TIFF or GIF"
# warnings.catch_warnings swaps a process-wide filter list: two threads interleaving it could leave
# the other's filter behind, so decoding holds this lock (a typical upload decodes in milliseconds).
_DECODE_LOCK = threading.Lock()

# Signatures of formats people upload by mistake, to name them in the message.
_KNOWN_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF", "a PDF document"),
    (0, b"%!PS", "a PostScript/EPS file"),
    (0, b"8BPS", "a Photoshop (PSD) file"),
    (0, b"\x00\x00\x01\x00", "an icon (ICO) file"),
    (0, b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (0, b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (0, b"\xff\x4f\xff\x51", "a JPEG 2000 codestream"),
    (128, b"DICM", "a DICOM file"),
)
_FTYP_BRANDS = {
    b"heic": "a HEIC image",
    b"heix": "a HEIC image",
    b"mif1": "a HEIF image",
    b"msf1": "a HEIF image",
    b"avif": "an AVIF image",
    b"avis": "an AVIF image",
}


class ImageError(ValueError):
    """An upload that cannot be used as an image; the message is meant for the person uploading."""


def _sniff_unsupported(data: bytes) -> str | None:
    """What a file Pillow was not allowed to (or could not) open looks like, if recognisable."""
    for offset, magic, name in _KNOWN_SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return name
    if data[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(data[8:12], "an ISO media file (HEIC/AVIF/MP4)")
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096].lower()):
        return "an SVG drawing"
    return None


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is composited on white, deep greys are rescaled."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        has_alpha = "transparency" in image.info or (image.palette is not None and image.palette.mode == "RGBA")
        image = image.convert("RGBA" if has_alpha else "RGB")
        mode = image.mode
    elif mode in ("L", "RGB") and "transparency" in image.info:  # a PNG tRNS colour key
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        return Image.fromarray(_deep_grey_to_uint8(image), mode="L").convert("RGB")
    return image.convert("RGB")  # 1, L, CMYK, YCbCr, LAB, HSV


def _deep_grey_to_uint8(image: Image.Image) -> np.ndarray:
    """16-bit, 32-bit integer or float greys to 0..255: by bit depth where it is clear, else min-max."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        scaled = values / 257.0
    else:
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        if image.mode == "F" and lo >= 0.0 and hi <= 1.0:
            scaled = values * 255.0
        elif lo >= 0.0 and hi <= 255.0:
            scaled = values
        elif lo >= 0.0 and hi <= 65535.0:
            scaled = values / 257.0
        else:
            scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
    return np.nan_to_num(scaled, nan=0.0).clip(0, 255).round().astype(np.uint8)


def load_image(data: bytes) -> Image.Image:
    """Decode an uploaded file to an RGB image, or raise ``ImageError`` saying why not.

    Accepts JPEG, PNG, WebP, BMP, TIFF and GIF (first frame); applies the EXIF orientation;
    converts every mode to RGB. The size limits are checked on the header, before any pixel is
    decoded, so a decompression bomb costs nothing.
    """
    if data is None or len(data) == 0:
        raise ImageError("The file is empty (0 bytes). Choose an image file.")
    if len(data) > MAX_BYTES:
        raise ImageError(
            f"The file is too large ({len(data) / 1e6:.1f} MB); the limit is "
            f"{MAX_BYTES / 1e6:.0f} MB. Save it as a JPEG or resize it, then upload it again."
        )
    try:
        with _DECODE_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
            width, height = image.size  # from the header: nothing decoded yet
            if width * height > MAX_PIXELS:
                raise ImageError(
                    f"The image is too large ({width} x {height} = {width * height / 1e6:.0f} "
                    f"megapixels); the limit is {MAX_PIXELS / 1e6:.0f} megapixels."
                )
            if min(width, height) < MIN_SIDE:
                raise ImageError(
                    f"The image is too small ({width} x {height} pixels); each side needs at least {MIN_SIDE} pixels."
                )
            image.load()  # a freshly opened file is on its first frame (GIF, MPO) or page (TIFF)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # Pillow refuses before our own header check can run; its message talks of "DOS attacks".
        raise ImageError(
            f"The image is too large to decode safely: it has more pixels than the limit of "
            f"{MAX_PIXELS / 1e6:.0f} megapixels. Resize it (for example to 1,000 pixels a side) "
            "and upload it again."
        ) from err
    except UnidentifiedImageError as err:
        what = _sniff_unsupported(data)
        if what:
            raise ImageError(
                f"This looks like {what}, which is not supported. Upload a {_ACCEPTED_TEXT} image."
            ) from err
        raise ImageError(f"This file is not an image this app can read. Upload a {_ACCEPTED_TEXT} image.") from err
    except MemoryError as err:
        raise ImageError("The image is too large to decode.") from err
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        struct.error,
        IndexError,
        TypeError,
        KeyError,
        ZeroDivisionError,
    ) as err:
        if "truncated" in str(err).lower():
            raise ImageError(
                "The image file is truncated (incomplete): it may not have finished "
                "uploading or saving. Try the file again."
            ) from err
        raise ImageError(f"The image file is corrupt and cannot be decoded ({err}).") from err

    try:
        oriented = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a malformed EXIF block should not lose the image
        oriented = image
    try:
        rgb = _to_rgb(oriented if oriented is not None else image)
    except (OSError, ValueError) as err:
        raise ImageError(f"The image's colour mode ({image.mode}) cannot be converted to RGB ({err}).") from err
    rgb.load()
    if rgb is image:  # detach from the file object and its format plugin
        rgb = rgb.copy()
    return rgb


# ----------------------------------------------------------------------------------------------
# Small helpers on distributions and heatmaps
# ----------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------
# The predictor
# ----------------------------------------------------------------------------------------------

Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is running), called on predict's thread
_MODEL_NAMES = {"qcnn": "QCNN", "classical": "classical control"}


def _cams() -> ModuleType:
    """``qcnn.cams``, imported on first use: predictions alone never load pytorch-grad-cam."""
    from qcnn import cams

    return cams


@dataclass(frozen=True)
class ModelOutput:
    """One model on one image."""

    probability: float  # of malignancy, sigmoid of the logit
    logit: float
    heatmap: np.ndarray | None  # (224, 224) float32 in [0, 1], over ``Prediction.image``; None: no map asked for
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
    cam_method: str | None  # None: a prediction without maps
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

    def warm_up(self, cam_method: str | None = None) -> None:
        """One prediction on a blank image (the first call is several times slower than the next); with
        ``cam_method``, its map too, which imports pytorch-grad-cam."""
        self.predict(Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (128, 128, 128)), cam_method=cam_method)

    def _run_model(
        self,
        kind: str,
        x: torch.Tensor,
        prefix_features: torch.Tensor | None,
        cam_method: str | None,
        report: Callable[[float], None] | None = None,
    ) -> tuple[ModelOutput, dict[str, float]]:
        model = self.models[kind]
        cams = None if cam_method is None else _cams()  # imported before the lock: it can take seconds
        with self._locks[kind]:
            if cams is None:
                start = time.perf_counter()
                with torch.no_grad():
                    features = model.layer3(model.prefix(x) if prefix_features is None else prefix_features)
                    logits, distributions = model.head.outputs(features)
                    pooled = features.mean(dim=(2, 3))
                heatmap, timings = None, {f"{kind}_forward": time.perf_counter() - start}
            else:
                result = cams.class_activation_map(model, x, prefix_features, cam_method, report)
                heatmap, logits, distributions, pooled = result[:4]
                timings = {f"{kind}_forward": result.forward_seconds, f"{kind}_cam": result.cam_seconds}
        logit = float(logits.reshape(-1)[0])
        patch_distributions = distributions[0].double().cpu().numpy()
        output = ModelOutput(
            probability=float(torch.sigmoid(torch.tensor(logit, dtype=torch.float64))),
            logit=logit,
            heatmap=heatmap,
            patch_distributions=patch_distributions,
            mean_distribution=patch_distributions.mean(axis=0),
            pooled_features=pooled[0].double().cpu().numpy(),
        )
        return output, timings

    def predict(
        self, image: Image.Image, cam_method: str | None = DEFAULT_CAM_METHOD, progress: Progress | None = None
    ) -> Prediction:
        """Both models on one image: probabilities, outcome distributions, OOD distance and ``cam_method``'s maps.

        ``cam_method=None``: no maps (``ModelOutput.heatmap`` is None), one plain forward pass per model,
        and pytorch-grad-cam is not needed. ``progress(fraction, message)`` is called after each of
        ScoreCAM's batches and after each model, the last time with 1.0.
        """
        if cam_method is not None and cam_method not in CAM_METHODS:
            raise ValueError(f"cam_method must be one of {CAM_METHODS} or None, got {cam_method!r}")
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
        label = cam_method or "Prediction"
        for i, kind in enumerate(MODEL_KINDS):
            outputs[kind], model_timings = self._run_model(
                kind, x, prefix_features, cam_method, self._model_progress(progress, i, kind, label)
            )
            timings |= model_timings
            if progress is not None:
                progress((i + 1) / len(MODEL_KINDS), f"{label}: the {_MODEL_NAMES[kind]} is done")
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


__all__ = [
    "ACCEPTED_EXTENSIONS",
    "CAM_METHODS",
    "IMAGE_SIZE",
    "ImageError",
    "ModelOutput",
    "Prediction",
    "Predictor",
    "State",
    "bitstring",
    "entropy_bits",
    "load_image",
    "overlay",
    "top_states",
]
