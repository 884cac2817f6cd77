"""The "Try it" page: one image (an upload or a test-pool image) through both models.

The page script (``pages/try_it.py``) only calls ``render()``. Its figures are built by
``qcnn.app.charts`` from numpy arrays; torch is imported when the models are first used (on the
background loader's thread, see ``qcnn.app.model_cache``).
Model colours and labels come from ``qcnn.app.charts`` (``MODEL_COLOURS``, ``MODEL_LABELS``).

After a prediction the page always shows the subheader ``PREDICTIONS_HEADER`` ("Predictions"),
the element a browser test can wait on. Everything but the maps comes from a prediction without
them (``Predictor.predict(image, cam_method=None)``); the maps are computed last, into a section
placed second, so on a freshly started app nothing else waits for pytorch-grad-cam's import.
"""

from __future__ import annotations

import hashlib
import io
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from qcnn.app.charts import (
    MODEL_COLOURS,
    MODEL_LABELS,
    distribution_figure,
    fmt_probability,
    outcome_categories,
    patch_map_figure,
    probability_figure,
    verdict,
)
from qcnn.app.model_cache import ModelsUnavailable, check_available, get_predictor, start_loading
from qcnn.app.shots_panel import show_shot_spread
from qcnn.app.ui import not_clinical_notice, page_header, to_url
from qcnn.constants import (
    CAM_METHODS,
    DEFAULT_CAM_METHOD,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_PIXELS,
    MIN_UPLOAD_SIDE,
    MODEL_KINDS,
    N_QUBITS,
    SLOW_CAM_METHODS,
    THRESHOLD,
    UPLOAD_EXTENSIONS,
)
from qcnn.data import DX_NAMES, DataError, data_dir_available, image_path

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from qcnn.inference import ModelOutput, Prediction, Predictor

KINDS = MODEL_KINDS
UPLOAD_TYPES = list(UPLOAD_EXTENSIONS)
PATCH_VIEWS = {"Entropy (bits)": "entropy", "Most likely outcome": "argmax"}
SOURCES = ("Upload an image", "Pick from the test pool")
PREDICTIONS_HEADER = "Predictions"
# What each map shows, in words (all on layer3's 14 x 14 output; the target, where there is one, is the
# malignancy logit). EigenCAM has no target: it cannot say what raises the malignancy score.
CAM_CAPTIONS = {
    "GradCAM": "each layer3 channel weighted by the mean gradient of the malignancy logit; warm colours are where "
    "the features raise that logit.",
    "GradCAM++": "like GradCAM, with per-location weights from higher-order gradients of the malignancy logit; "
    "spreads over several regions that raise it.",
    "HiResCAM": "gradient × activation of the malignancy logit at every location (no averaging), so the map is "
    "faithful to what the head computes.",
    "XGradCAM": "gradients of the malignancy logit scaled by normalised activations; close to GradCAM.",
    "LayerCAM": "positive gradients × activations of the malignancy logit per location; fine-grained.",
    "EigenCAM": "the first principal component of layer3's activations. Class-agnostic: it shows what dominates "
    "the features (often the surrounding skin), not what raises the malignancy score.",
    "ScoreCAM": "gradient-free: each of the 256 layer3 channels masks the image, weighted by how much the masked "
    "image raises the malignancy logit. Runs each model 256 more times.",
}
KEY = "try_it_"  # session-state and widget key prefix


@dataclass(frozen=True)
class ChosenImage:
    """What the user chose: the raw bytes, a name, and the truth when it comes from the test pool."""

    data: bytes
    name: str
    truth: dict | None = None  # {"image_id", "dx", "label"}

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


# --- input --------------------------------------------------------------------------------------


def decode_upload(data: bytes) -> tuple[Image.Image | None, str | None]:
    """The page's handler for uploaded bytes: (RGB image, None) or (None, a message for st.error)."""
    from qcnn.inference import ImageError, load_image

    try:
        return load_image(data), None
    except ImageError as err:
        return None, str(err)


def test_pool() -> pd.DataFrame | None:
    """Rows of results/split.csv with pool == "test" (image_id, dx, label), or None."""
    from qcnn.app.results import load_split

    split = load_split()
    if split is None or not {"image_id", "dx", "label", "pool"} <= set(split.columns):
        return None
    pool = split[split["pool"] == "test"][["image_id", "dx", "label"]]
    return pool.sort_values("image_id", ignore_index=True) if len(pool) else None


def truth_text(truth: dict) -> str:
    label = "malignant" if int(truth["label"]) == 1 else "benign"
    return f"**{label}** — {DX_NAMES.get(truth['dx'], truth['dx'])} (`{truth['dx']}`)"


def _choose_from_pool(pool: pd.DataFrame, data_dir) -> ChosenImage | None:
    dx_options = ["any"] + sorted(pool["dx"].unique())
    c1, c2, c3 = st.columns([2, 3, 1], vertical_alignment="bottom")
    dx = c1.selectbox(
        "Diagnosis",
        dx_options,
        key=KEY + "dx",
        format_func=lambda d: "any diagnosis" if d == "any" else f"{DX_NAMES.get(d, d)} ({d})",
    )
    rows = pool if dx == "any" else pool[pool["dx"] == dx]
    ids = rows["image_id"].tolist()
    if c3.button("Random", key=KEY + "random", help="Pick a random image of this diagnosis"):
        st.session_state[KEY + "image_id"] = ids[np.random.default_rng().integers(len(ids))]
    if st.session_state.get(KEY + "image_id") not in ids:
        st.session_state[KEY + "image_id"] = ids[0]
    image_id = c2.selectbox(f"Test-pool image ({len(ids):,})", ids, key=KEY + "image_id")
    to_url("image", image_id, None)
    row = rows[rows["image_id"] == image_id].iloc[0]
    truth = {"image_id": image_id, "dx": str(row["dx"]), "label": int(row["label"])}
    try:
        data = image_path(data_dir, image_id).read_bytes()
    except (DataError, OSError) as err:
        st.error(f"Cannot read {image_id} from the data folder: {err}")
        return None
    st.caption(f"Ground truth for `{image_id}`: {truth_text(truth)}. The test pool is never used in training.")
    return ChosenImage(data, image_id, truth)


def choose_image() -> ChosenImage | None:
    """The upload widget, or the test-pool picker when the data set is available."""
    data_dir = data_dir_available()
    pool = test_pool() if data_dir is not None else None
    source = SOURCES[0]
    if pool is not None:
        shared = st.query_params.get("image")  # a shared link to a test-pool image opens on it
        if KEY + "source" not in st.session_state and shared in set(pool["image_id"]):
            st.session_state[KEY + "source"], st.session_state[KEY + "image_id"] = SOURCES[1], shared
        source = st.radio("Image", SOURCES, horizontal=True, key=KEY + "source", label_visibility="collapsed")
    if source == SOURCES[1]:
        return _choose_from_pool(pool, data_dir)
    to_url("image", None, None)
    uploaded = st.file_uploader(
        # Streamlit's own limit, in the drop zone, sits above ours so that load_image can say why a file is refused
        f"A dermoscopic image of a skin lesion (up to {MAX_UPLOAD_BYTES / 1e6:.0f} MB)",
        type=UPLOAD_TYPES,
        key=KEY + "upload",
        help=f"JPEG, PNG, WebP, BMP, TIFF or GIF; at least {MIN_UPLOAD_SIDE} px a side, at most "
        f"{MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels and {MAX_UPLOAD_BYTES / 1e6:.0f} MB. It stays in this "
        "session's memory only.",
    )
    if pool is None:
        st.caption(
            "Set `QCNN_DATA_DIR` to the HAM10000 folder (and run `qcnn split`) to pick images "
            "from the held-out test pool instead."
        )
    if uploaded is None:
        return None
    return ChosenImage(uploaded.getvalue(), uploaded.name)


# --- prediction (one per session, kept while only display controls change) ----------------------


def decode_once(chosen: ChosenImage) -> tuple[Image.Image | None, str | None]:
    """``decode_upload``, or (None, None) when these bytes decoded before in this session.

    A display rerun (opacity, view, shots) reuses the cached prediction, so decoding a 12-megapixel
    photo again (~0.1 s) would be wasted; ``predict_cached`` decodes on a miss.
    """
    if st.session_state.get(KEY + "decoded") == chosen.digest:
        return None, None
    image, error = decode_upload(chosen.data)
    if error is None:
        st.session_state[KEY + "decoded"] = chosen.digest
    return image, error


def predict_cached(
    predictor: Predictor, chosen: ChosenImage, image: Image.Image | None, cam_method: str | None
) -> Prediction:
    """The prediction for these bytes (and maps of ``cam_method``; None: none), computed once per session.

    ``image``: the decoded upload, if at hand. The prediction alone and the maps are cached apart, so
    a new method recomputes only the maps and a fresh app shows predictions before pytorch-grad-cam
    has loaded.
    """
    key = (id(predictor), chosen.digest, cam_method)
    slot = KEY + ("scores" if cam_method is None else "prediction")
    cached = st.session_state.get(slot)
    if cached is not None and cached[0] == key:
        return cached[1]
    if image is None:
        image, _ = decode_upload(chosen.data)  # decoded fine before (decode_once)
    if cam_method is None:
        with st.spinner("Running the QCNN and the classical control…"):
            prediction = predictor.predict(image, cam_method=None)
    elif cam_method in SLOW_CAM_METHODS:  # a real progress bar: the CAM's batches advance it
        bar = st.progress(0.0, text=f"{cam_method} runs each model on 256 masked copies of the image…")

        def report(fraction: float, text: str) -> None:
            bar.progress(min(max(fraction, 0.0), 1.0), text=text)

        try:
            prediction = predictor.predict(image, cam_method=cam_method, progress=report)
        finally:
            bar.empty()
    else:
        loading = "" if "qcnn.cams" in sys.modules else "Loading pytorch-grad-cam, then "
        with st.spinner(f"{loading}{cam_method} on both models…"):
            prediction = predictor.predict(image, cam_method=cam_method)
    st.session_state[slot] = (key, prediction)
    return prediction


def ood_message(prediction: Prediction, note: str) -> tuple[str, str]:
    """("warning" | "caption", text): the out-of-distribution check in plain words."""
    if prediction.ood_distance is None:
        return "caption", f"No out-of-distribution check for this image: {note}."
    distance, threshold = prediction.ood_distance, prediction.ood_threshold
    if prediction.unusual:
        return "warning", (
            f"This image is unlike the dermoscopy images these models were trained on (Mahalanobis "
            f"distance {distance:.1f} of the QCNN's pooled layer3 features, above the 99th percentile "
            f"{threshold:.1f} of the test pool); treat both predictions with caution."
        )
    return "caption", (
        f"Out-of-distribution check: the QCNN's pooled layer3 features lie at Mahalanobis distance "
        f"{distance:.1f} from the training images, within the test pool's 99th percentile "
        f"({threshold:.1f})."
    )


# --- figures --------------------------------------------------------------------------------------


def top_states_table(distribution: np.ndarray, k: int = 5) -> pd.DataFrame:
    from qcnn.inference import top_states

    uniform = 1.0 / np.asarray(distribution).size
    return pd.DataFrame(
        [
            {
                "outcome": f"|{s.bits}⟩",
                "index": s.index,
                "probability": s.probability,
                "× uniform": s.probability / uniform,
            }
            for s in top_states(distribution, k)
        ]
    )


def patch_values(output: ModelOutput, view: str) -> np.ndarray:
    """(14, 14) per-patch entropy (bits) or most likely outcome index."""
    return output.patch_entropy_map() if view == "entropy" else output.patch_argmax_map()


@st.cache_data(show_spinner="Drawing the circuit (imports PennyLane)…", max_entries=2)
def circuit_drawings(weights_digest: str, _layer) -> tuple[str, bytes | None]:
    """The trained circuit as text and as a PNG (matplotlib), cached per set of weights."""
    text = _layer.draw_text()
    png = None
    try:
        import matplotlib.pyplot as plt

        fig = _layer.draw_figure()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        png = buffer.getvalue()
    except Exception:  # noqa: BLE001 - the text drawing is enough when matplotlib fails
        png = None
    return text, png


# --- the page -------------------------------------------------------------------------------------


def _chip(kind: str) -> str:
    return (
        f"<span style='display:inline-block;padding:1px 9px;border-radius:9px;background:{MODEL_COLOURS[kind]};"
        f"color:white;font-size:0.85em'>{MODEL_LABELS[kind]}</span>"
    )


def show_predictions(prediction: Prediction, truth: dict | None, ood_note: str) -> None:
    st.subheader(PREDICTIONS_HEADER)
    ood_level, ood_text = ood_message(prediction, ood_note)
    if ood_level == "warning":
        st.warning(ood_text, icon=":material/travel_explore:")
    columns = st.columns(2)
    for column, kind in zip(columns, KINDS, strict=True):
        out = prediction.output(kind)
        with column:
            st.markdown(_chip(kind), unsafe_allow_html=True)
            st.metric(
                f"{MODEL_LABELS[kind]} · P(malignant)",
                fmt_probability(out.probability),
                help=f"sigmoid of the logit {out.logit:+.3f}; threshold {THRESHOLD}",
            )
            right = "" if truth is None else (" ✓ right" if int(out.malignant) == int(truth["label"]) else " ✗ wrong")
            st.markdown(f"calls it **{verdict(out.probability)}**{right}")
    q, c = prediction.qcnn, prediction.classical
    if prediction.agree:
        st.success(
            f"The two models **agree**: both call it {verdict(q.probability)} "
            f"(QCNN {fmt_probability(q.probability)}, classical {fmt_probability(c.probability)}).",
            icon=":material/handshake:",
        )
    else:
        st.warning(
            f"The two models **disagree**: the QCNN says **{verdict(q.probability)}** "
            f"({fmt_probability(q.probability)}), the classical control **{verdict(c.probability)}** "
            f"({fmt_probability(c.probability)}).",
            icon=":material/balance:",
        )
    if truth is not None:
        st.markdown(f"Ground truth: {truth_text(truth)}")
    if ood_level == "caption":
        st.caption(ood_text)
    st.plotly_chart(
        probability_figure({k: prediction.output(k).probability for k in KINDS}), key=KEY + "probability_chart"
    )


def show_cams(prediction: Prediction, alpha: float) -> None:
    from qcnn.inference import overlay

    st.subheader("Where each model looks")
    st.caption(
        f"{prediction.cam_method} on the output of layer3 (the 14 × 14 grid of patches the quantum layer, or "
        f"its classical control, sees): {CAM_CAPTIONS[prediction.cam_method]} Each map is scaled to its own "
        "maximum, so compare where, not how much."
    )
    columns = st.columns(3)
    columns[0].image(prediction.image, caption="What the models saw (224 × 224, resized)", width="stretch")
    for column, kind in zip(columns[1:], KINDS, strict=True):
        out = prediction.output(kind)
        column.image(
            overlay(prediction.image, out.heatmap, alpha),
            caption=f"{MODEL_LABELS[kind]} · {prediction.cam_method}",
            width="stretch",
        )
    if prediction.cam_method in SLOW_CAM_METHODS:
        seconds = {kind: prediction.timings[f"{kind}_cam"] for kind in KINDS}
        st.caption(
            f"{prediction.cam_method} took {sum(seconds.values()):.1f} s on this machine's CPU "
            f"(QCNN {seconds['qcnn']:.1f} s, classical {seconds['classical']:.1f} s: 256 masked images each)."
        )


def show_distributions(prediction: Prediction) -> None:
    from qcnn.inference import entropy_bits

    st.subheader("The measurement: 256 outcomes")
    st.caption(
        "Each patch's 8 angles go through the 8-qubit circuit, measured in all 2⁸ = 256 basis states "
        "(wire 0 is the leftmost bit). The classifier reads the mean over the 196 patches. The classical "
        "control maps the same 8 angles to 256 outcomes with a linear layer and a softmax."
    )
    y_max = 1.1 * max(float(prediction.output(k).mean_distribution.max()) for k in KINDS)
    columns = st.columns(2)
    for column, kind in zip(columns, KINDS, strict=True):
        out = prediction.output(kind)
        with column:
            st.plotly_chart(distribution_figure(out.mean_distribution, kind, y_max), key=KEY + f"dist_{kind}")
            h = entropy_bits(out.mean_distribution)
            h_patch = float(np.mean(entropy_bits(out.patch_distributions)))
            m1, m2 = st.columns(2)
            m1.metric(
                "Entropy of the mean",
                f"{h:.3f} bits",
                f"{h - N_QUBITS:+.3f} vs uniform",
                delta_color="off",
                help="Shannon entropy of the 256-outcome mean; uniform is 8 bits",
            )
            m2.metric(
                "Mean entropy per patch",
                f"{h_patch:.3f} bits",
                f"{h_patch - N_QUBITS:+.3f} vs uniform",
                delta_color="off",
                help="Average over the 196 patches of each patch's entropy",
            )
            st.dataframe(
                top_states_table(out.mean_distribution),
                hide_index=True,
                width="stretch",
                column_config={
                    "probability": st.column_config.NumberColumn(format="%.4f"),
                    "× uniform": st.column_config.NumberColumn(format="%.2f"),
                },
            )


@st.fragment
def show_patches(prediction: Prediction, alpha: float) -> None:
    """A fragment: switching the view redraws these two maps only."""
    st.subheader("Patch by patch")
    label = st.radio("Show", list(PATCH_VIEWS), horizontal=True, key=KEY + "patch_view")
    view = PATCH_VIEWS[label]
    maps = {k: patch_values(prediction.output(k), view) for k in KINDS}
    z_range, categories = None, None
    if view == "entropy":
        z_range = (min(float(m.min()) for m in maps.values()), max(float(m.max()) for m in maps.values()))
        st.caption(
            f"Both maps share one colour scale ({z_range[0]:.2f}–{z_range[1]:.2f} bits; a uniform "
            "distribution has 8). Low entropy: the patch concentrates on few outcomes."
        )
    else:
        categories = outcome_categories(maps.values())
        st.caption(
            f"The basis state each patch is most likely to be measured in: a category, so each of the "
            f"{len(categories)} most frequent outcomes (over both maps) has its own colour, the same in both "
            "maps, and any other outcome is grey. Hover for the bitstring."
        )
    columns = st.columns(2)
    for column, kind in zip(columns, KINDS, strict=True):
        column.plotly_chart(
            patch_map_figure(prediction.image, maps[kind], kind, view, max(alpha, 0.15), z_range, categories),
            key=KEY + f"patch_{kind}",
        )


def show_circuit(predictor: Predictor) -> None:
    with st.expander("The quantum circuit", key=KEY + "circuit", on_change="rerun") as expander:
        if not expander.open:
            return
        layer = predictor.models["qcnn"].head.outcome_map
        digest = hashlib.sha256(layer.weights.detach().cpu().numpy().tobytes()).hexdigest()
        st.caption(
            f"{layer.n_qubits} qubits; the angles are embedded {layer.reuploads} times (data re-uploading), "
            f"each followed by {layer.n_layers} trained StronglyEntanglingLayers; measured as probabilities "
            "of all 256 basis states. Drawn by PennyLane with the trained weights."
        )
        text, png = circuit_drawings(digest, layer)
        if png is not None:
            st.image(png, width=640)
        st.code(text, language=None)


def show_timings(scores: Prediction, prediction: Prediction) -> None:
    """The prediction's parts, then the maps' (each map's call runs its model's forward pass again)."""
    names = {
        "preprocess": "preprocess",
        "prefix": "conv1..layer2 (shared)",
        "qcnn_forward": "QCNN forward",
        "classical_forward": "classical forward",
        "total": "in all",
    }
    parts = " · ".join(f"{names[k]} {1000 * v:.0f} ms" for k, v in scores.timings.items() if k in names)
    seconds = {kind: prediction.timings[f"{kind}_forward"] + prediction.timings[f"{kind}_cam"] for kind in KINDS}
    maps = ", ".join(f"{MODEL_LABELS[kind]} {1000 * seconds[kind]:.0f} ms" for kind in KINDS)
    st.caption(f"Time on this machine's CPU: prediction {parts}; {prediction.cam_method} maps: {maps}.")


def render() -> None:
    page_header(
        "Try it",
        "One image through both models: the malignancy probabilities, where each model looks, "
        "and what the quantum layer measured.",
    )
    not_clinical_notice()
    try:
        check_available()
    except ModelsUnavailable as err:
        st.warning(str(err), icon=":material/hourglass_empty:")
        return
    start_loading()  # normally started by the app's first page view already
    show_analysis()


@st.fragment
def show_analysis() -> None:
    """The image picker, the CAM controls and everything they drive.

    A fragment, so an upload, a new image, method or opacity reruns this part only, not the app's
    navigation and header; the shot and patch-view controls rerun their own sections only.
    """
    chosen = choose_image()
    c1, c2 = st.columns(2)
    cam_method = c1.selectbox(
        "Class-activation method",
        CAM_METHODS,
        index=CAM_METHODS.index(DEFAULT_CAM_METHOD),
        key=KEY + "cam_method",
        help="pytorch-grad-cam methods on layer3's output. ScoreCAM is gradient-free and "
        "slow (it runs each model on 256 masked copies of the image).",
    )
    alpha = c2.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key=KEY + "alpha")
    st.caption(f"**{cam_method}:** {CAM_CAPTIONS[cam_method]}")
    if chosen is None:
        st.info("Upload an image (or pick one from the test pool) to run both models.", icon=":material/image:")
        return
    image, error = decode_once(chosen)
    if error is not None:
        st.error(f"**{chosen.name}** cannot be used: {error}", icon=":material/block:")
        return
    try:
        predictor = get_predictor()
    except ModelsUnavailable as err:
        st.warning(str(err), icon=":material/hourglass_empty:")
        return
    scores = predict_cached(predictor, chosen, image, None)
    show_predictions(scores, chosen.truth, predictor.ood_note)
    maps = st.container()  # filled last: on a fresh app the maps wait for pytorch-grad-cam, nothing else does
    show_distributions(scores)
    show_shot_spread(scores, predictor)
    show_patches(scores, alpha)
    show_circuit(predictor)
    with maps:
        prediction = predict_cached(predictor, chosen, image, cam_method)
        show_cams(prediction, alpha)
    show_timings(scores, prediction)
