"""The "Try it" page: one image (an upload or a test-pool image) through both models.

The page script (``pages/try_it.py``) only calls ``render()``. Figures are plain builders that
take numpy arrays and return plotly figures; torch is imported when the models are first used.
Model colours and labels come from ``qcnn.app.charts`` (``MODEL_COLOURS``, ``MODEL_LABELS``).

After a prediction the page always shows the subheader ``PREDICTIONS_HEADER`` ("Predictions"),
the element a browser test can wait on.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from qcnn.app.charts import MODEL_COLOURS, MODEL_LABELS
from qcnn.app.model_cache import ModelsUnavailable, get_predictor
from qcnn.app.ui import not_clinical_notice, page_header, to_url
from qcnn.constants import (CAM_METHODS, MODEL_KINDS, N_OUTCOMES, N_QUBITS, SLOW_CAM_METHODS, THRESHOLD,
                            UPLOAD_EXTENSIONS)
from qcnn.data import DX_NAMES, DataError, data_dir_available, image_path

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from qcnn.inference import ModelOutput, Prediction, Predictor

KINDS = MODEL_KINDS
UPLOAD_TYPES = list(UPLOAD_EXTENSIONS)
PATCH_VIEWS = {"Entropy (bits)": "entropy", "Most likely outcome": "argmax"}
SOURCES = ("Upload an image", "Pick from the test pool")
PREDICTIONS_HEADER = "Predictions"
KEY = "try_it_"  # session-state and widget key prefix


@dataclass(frozen=True)
class ChosenImage:
    """What the user chose: the raw bytes, a name, and the truth when it comes from the test pool."""

    data: bytes
    name: str
    truth: dict | None = None  # {"image_id", "dx", "label"}

    @property
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
    dx = c1.selectbox("Diagnosis", dx_options, key=KEY + "dx",
                      format_func=lambda d: "any diagnosis" if d == "any" else f"{DX_NAMES.get(d, d)} ({d})")
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
    uploaded = st.file_uploader("A dermoscopic image of a skin lesion", type=UPLOAD_TYPES, key=KEY + "upload",
                                help="JPEG, PNG, WebP, BMP, TIFF or GIF; at least 32 px a side, at most "
                                     "40 megapixels and 20 MB. It stays in this session's memory only.")
    if pool is None:
        st.caption("Set `QCNN_DATA_DIR` to the HAM10000 folder (and run `qcnn split`) to pick images "
                   "from the held-out test pool instead.")
    if uploaded is None:
        return None
    return ChosenImage(uploaded.getvalue(), uploaded.name)


# --- prediction (one per session, kept while only display controls change) ----------------------


def predict_cached(predictor: Predictor, chosen: ChosenImage, image: Image.Image, cam_method: str) -> Prediction:
    key = (id(predictor), chosen.digest, cam_method)
    cached = st.session_state.get(KEY + "prediction")
    if cached is not None and cached[0] == key:
        return cached[1]
    slow = ""
    if cam_method in SLOW_CAM_METHODS:
        slow = " (ScoreCAM runs each model 256 more times: expect several seconds)"
    with st.spinner(f"Running the QCNN and the classical control with {cam_method}…{slow}"):
        prediction = predictor.predict(image, cam_method=cam_method)
    st.session_state[KEY + "prediction"] = (key, prediction)
    return prediction


# --- figures --------------------------------------------------------------------------------------


def fmt_probability(p: float) -> str:
    """A probability as a percentage that never rounds a confident call to a flat 0 or 100."""
    if p < 0.001:
        return f"{p:.1e}" if p > 0 else "0"
    if p > 0.999:
        return f"1 − {1 - p:.1e}" if p < 1 else "1"
    return f"{p:.1%}"


def verdict(probability: float) -> str:
    return "malignant" if probability >= THRESHOLD else "benign"


def probability_figure(probabilities: dict[str, float]) -> go.Figure:
    """Both malignancy probabilities as bars against the 0.5 threshold."""
    kinds = [k for k in KINDS if k in probabilities][::-1]  # QCNN on top
    fig = go.Figure(go.Bar(
        x=[probabilities[k] for k in kinds], y=[MODEL_LABELS[k] for k in kinds], orientation="h",
        marker_color=[MODEL_COLOURS[k] for k in kinds],
        text=[f"{fmt_probability(probabilities[k])} · {verdict(probabilities[k])}" for k in kinds],
        textposition="outside",
        hovertemplate="%{y}: P(malignant) = %{x:.3f}<extra></extra>"))
    fig.add_vline(x=THRESHOLD, line=dict(color="#444444", dash="dash", width=1.5),
                  annotation_text="threshold 0.5", annotation_position="top")
    fig.update_layout(height=170, margin=dict(l=10, r=10, t=30, b=10), showlegend=False,
                      xaxis=dict(range=[0, 1.18], tickformat=".0%", title="P(malignant)",
                                 tickvals=[0, 0.25, 0.5, 0.75, 1]))
    return fig


def distribution_figure(distribution: np.ndarray, kind: str, y_max: float | None = None) -> go.Figure:
    """The 256 outcome probabilities as bars labelled by bitstring (wire 0 first), uniform dashed."""
    from qcnn.inference import bitstring

    p = np.asarray(distribution, dtype=float)
    n_qubits = int(round(np.log2(p.size)))
    bits = [bitstring(i, n_qubits) for i in range(p.size)]
    ticks = list(range(0, p.size, max(1, p.size // 8)))
    fig = go.Figure(go.Bar(x=np.arange(p.size), y=p, marker_color=MODEL_COLOURS[kind], customdata=bits,
                           name=MODEL_LABELS[kind],
                           hovertemplate="|%{customdata}⟩ (index %{x}): %{y:.4f}<extra></extra>"))
    fig.add_hline(y=1.0 / p.size, line=dict(color="#444444", dash="dash", width=1),
                  annotation_text=f"uniform 1/{p.size}", annotation_position="top right")
    fig.update_layout(
        height=300, margin=dict(l=10, r=10, t=40, b=10), showlegend=False, bargap=0.05,
        title=dict(text=f"{MODEL_LABELS[kind]} · mean over the 196 patches", x=0,
                   font=dict(size=14)),
        xaxis=dict(title="outcome (bitstring, wire 0 first)", tickmode="array", tickvals=ticks,
                   ticktext=[bits[t] for t in ticks], tickangle=-45, range=[-1, p.size]),
        yaxis=dict(title="probability", range=[0, y_max] if y_max else None))
    return fig


def top_states_table(distribution: np.ndarray, k: int = 5) -> pd.DataFrame:
    from qcnn.inference import top_states

    uniform = 1.0 / np.asarray(distribution).size
    return pd.DataFrame([{"outcome": f"|{s.bits}⟩", "index": s.index, "probability": s.probability,
                          "× uniform": s.probability / uniform} for s in top_states(distribution, k)])


def patch_values(output: ModelOutput, view: str) -> np.ndarray:
    """(14, 14) per-patch entropy (bits) or most likely outcome index."""
    return output.patch_entropy_map() if view == "entropy" else output.patch_argmax_map()


def patch_map_figure(image: np.ndarray, values: np.ndarray, kind: str, view: str, opacity: float = 0.55,
                     z_range: tuple[float, float] | None = None) -> go.Figure:
    """A 14 x 14 map over the 224 x 224 image: one cell per layer3 patch (16 x 16 pixels)."""
    from qcnn.inference import bitstring

    size = image.shape[0]
    cell = size / values.shape[0]
    rows, cols = values.shape
    where = "patch row %{customdata[0]}, column %{customdata[1]}<br>"
    if view == "entropy":
        colorscale, colorbar = "Viridis", dict(title="bits")
        custom = [[[r, c, ""] for c in range(cols)] for r in range(rows)]
        hover = where + "entropy %{z:.3f} bits<extra></extra>"
    else:
        ticks = [0, 64, 128, 192, 255]
        colorscale, colorbar = "Turbo", dict(title="outcome", tickvals=ticks, ticktext=[bitstring(t) for t in ticks])
        custom = [[[r, c, bitstring(int(values[r, c]))] for c in range(cols)] for r in range(rows)]
        hover = where + "most likely |%{customdata[2]}⟩ (index %{z})<extra></extra>"
        z_range = z_range or (0, N_OUTCOMES - 1)
    fig = go.Figure(go.Image(z=image, hoverinfo="skip"))
    fig.add_trace(go.Heatmap(
        z=values, x0=cell / 2, dx=cell, y0=cell / 2, dy=cell, opacity=opacity, colorscale=colorscale,
        zmin=z_range[0] if z_range else None, zmax=z_range[1] if z_range else None, customdata=custom,
        hovertemplate=hover, colorbar=colorbar, xgap=1, ygap=1))
    fig.update_xaxes(showticklabels=False, showgrid=False, ticks="")
    fig.update_yaxes(showticklabels=False, showgrid=False, ticks="")
    title = "entropy per patch" if view == "entropy" else "most likely outcome per patch"
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10),
                      title=dict(text=f"{MODEL_LABELS[kind]} · {title}", x=0, font=dict(size=14)))
    return fig


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
    return (f"<span style='display:inline-block;padding:1px 9px;border-radius:9px;background:{MODEL_COLOURS[kind]};"
            f"color:white;font-size:0.85em'>{MODEL_LABELS[kind]}</span>")


def show_predictions(prediction: Prediction, truth: dict | None) -> None:
    st.subheader(PREDICTIONS_HEADER)
    columns = st.columns(2)
    for column, kind in zip(columns, KINDS, strict=True):
        out = prediction.output(kind)
        with column:
            st.markdown(_chip(kind), unsafe_allow_html=True)
            st.metric(f"{MODEL_LABELS[kind]} · P(malignant)", fmt_probability(out.probability),
                      help=f"sigmoid of the logit {out.logit:+.3f}; threshold {THRESHOLD}")
            right = "" if truth is None else (" ✓ right" if int(out.malignant) == int(truth["label"]) else " ✗ wrong")
            st.markdown(f"calls it **{verdict(out.probability)}**{right}")
    q, c = prediction.qcnn, prediction.classical
    if prediction.agree:
        st.success(f"The two models **agree**: both call it {verdict(q.probability)} "
                   f"(QCNN {fmt_probability(q.probability)}, classical {fmt_probability(c.probability)}).",
                   icon=":material/handshake:")
    else:
        st.warning(f"The two models **disagree**: the QCNN says **{verdict(q.probability)}** "
                   f"({fmt_probability(q.probability)}), the classical control **{verdict(c.probability)}** "
                   f"({fmt_probability(c.probability)}).",
                   icon=":material/balance:")
    if truth is not None:
        st.markdown(f"Ground truth: {truth_text(truth)}")
    st.plotly_chart(probability_figure({k: prediction.output(k).probability for k in KINDS}),
                    key=KEY + "probability_chart")


def show_cams(prediction: Prediction, alpha: float) -> None:
    from qcnn.inference import overlay

    st.subheader("Where each model looks")
    st.caption(f"{prediction.cam_method} on the output of layer3 (the 14 × 14 grid of patches the quantum layer, or "
               "its classical control, sees), targeting the malignancy logit; warm colours raise it. Each map is "
               "scaled to its own maximum, so compare where, not how much.")
    columns = st.columns(3)
    columns[0].image(prediction.image, caption="What the models saw (224 × 224, resized)", width="stretch")
    for column, kind in zip(columns[1:], KINDS, strict=True):
        out = prediction.output(kind)
        column.image(overlay(prediction.image, out.heatmap, alpha),
                     caption=f"{MODEL_LABELS[kind]} · {prediction.cam_method}", width="stretch")


def show_distributions(prediction: Prediction) -> None:
    from qcnn.inference import entropy_bits

    st.subheader("The measurement: 256 outcomes")
    st.caption("Each patch's 8 angles go through the 8-qubit circuit, measured in all 2⁸ = 256 basis states "
               "(wire 0 is the leftmost bit). The classifier reads the mean over the 196 patches. The classical "
               "control maps the same 8 angles to 256 outcomes with a linear layer and a softmax.")
    y_max = 1.1 * max(float(prediction.output(k).mean_distribution.max()) for k in KINDS)
    columns = st.columns(2)
    for column, kind in zip(columns, KINDS, strict=True):
        out = prediction.output(kind)
        with column:
            st.plotly_chart(distribution_figure(out.mean_distribution, kind, y_max), key=KEY + f"dist_{kind}")
            h = entropy_bits(out.mean_distribution)
            h_patch = float(np.mean(entropy_bits(out.patch_distributions)))
            m1, m2 = st.columns(2)
            m1.metric("Entropy of the mean", f"{h:.3f} bits", f"{h - N_QUBITS:+.3f} vs uniform",
                      delta_color="off", help="Shannon entropy of the 256-outcome mean; uniform is 8 bits")
            m2.metric("Mean entropy per patch", f"{h_patch:.3f} bits", f"{h_patch - N_QUBITS:+.3f} vs uniform",
                      delta_color="off", help="Average over the 196 patches of each patch's entropy")
            st.dataframe(top_states_table(out.mean_distribution), hide_index=True, width="stretch",
                         column_config={"probability": st.column_config.NumberColumn(format="%.4f"),
                                        "× uniform": st.column_config.NumberColumn(format="%.2f")})


def show_patches(prediction: Prediction, alpha: float) -> None:
    st.subheader("Patch by patch")
    label = st.radio("Show", list(PATCH_VIEWS), horizontal=True, key=KEY + "patch_view")
    view = PATCH_VIEWS[label]
    maps = {k: patch_values(prediction.output(k), view) for k in KINDS}
    z_range = None
    if view == "entropy":
        z_range = (min(float(m.min()) for m in maps.values()), max(float(m.max()) for m in maps.values()))
        st.caption(f"Both maps share one colour scale ({z_range[0]:.2f}–{z_range[1]:.2f} bits; a uniform "
                   "distribution has 8). Low entropy: the patch concentrates on few outcomes.")
    else:
        st.caption("The basis state each patch is most likely to be measured in; hover for its bitstring.")
    columns = st.columns(2)
    for column, kind in zip(columns, KINDS, strict=True):
        column.plotly_chart(patch_map_figure(prediction.image, maps[kind], kind, view, max(alpha, 0.15), z_range),
                            key=KEY + f"patch_{kind}")


def show_circuit(predictor: Predictor) -> None:
    with st.expander("The quantum circuit", key=KEY + "circuit", on_change="rerun") as expander:
        if not expander.open:
            return
        layer = predictor.models["qcnn"].head.outcome_map
        digest = hashlib.sha256(layer.weights.detach().cpu().numpy().tobytes()).hexdigest()
        st.caption(f"{layer.n_qubits} qubits; the angles are embedded {layer.reuploads} times (data re-uploading), "
                   f"each followed by {layer.n_layers} trained StronglyEntanglingLayers; measured as probabilities "
                   "of all 256 basis states. Drawn by PennyLane with the trained weights.")
        text, png = circuit_drawings(digest, layer)
        if png is not None:
            st.image(png, width=640)
        st.code(text, language=None)


def show_timings(prediction: Prediction) -> None:
    names = {"preprocess": "preprocess", "prefix": "conv1..layer2 (shared)", "qcnn_forward": "QCNN forward",
             "qcnn_cam": f"QCNN {prediction.cam_method}", "classical_forward": "classical forward",
             "classical_cam": f"classical {prediction.cam_method}", "total": "total"}
    parts = " · ".join(f"{names.get(k, k)} {1000 * v:.0f} ms" for k, v in prediction.timings.items())
    st.caption(f"Time on this machine's CPU: {parts}.")


def render() -> None:
    page_header("Try it", "One image through both models: the malignancy probabilities, where each model looks, "
                          "and what the quantum layer measured.")
    not_clinical_notice()
    try:
        predictor = get_predictor()
    except ModelsUnavailable as err:
        st.warning(str(err), icon=":material/hourglass_empty:")
        return
    chosen = choose_image()
    show_analysis(predictor, chosen)


@st.fragment
def show_analysis(predictor: Predictor, chosen: ChosenImage | None) -> None:
    """The CAM controls and everything they drive: a fragment, so a new method or opacity reruns this part only."""
    c1, c2 = st.columns(2)
    cam_method = c1.selectbox("Class-activation method", CAM_METHODS, key=KEY + "cam_method",
                              help="pytorch-grad-cam methods on layer3's output. ScoreCAM is gradient-free and "
                                   "slow (it runs each model on 256 masked copies of the image).")
    alpha = c2.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key=KEY + "alpha")
    if chosen is None:
        st.info("Upload an image (or pick one from the test pool) to run both models.", icon=":material/image:")
        return
    image, error = decode_upload(chosen.data)
    if error is not None:
        st.error(f"**{chosen.name}** cannot be used: {error}", icon=":material/block:")
        return
    prediction = predict_cached(predictor, chosen, image, cam_method)
    show_predictions(prediction, chosen.truth)
    show_cams(prediction, alpha)
    show_distributions(prediction)
    show_patches(prediction, alpha)
    show_circuit(predictor)
    show_timings(prediction)
