"""Disagreements: which test images one model gets right and the other wrong, and McNemar's test."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from qcnn.app import analysis, charts, results, ui
from qcnn.constants import DEFAULT_CAM_METHOD, THRESHOLD
from qcnn.data import DX_NAMES, DataError, data_dir_available, image_path, load_image_file

TITLE = "Disagreements: image by image"
KEY = "disagree_"
GALLERY_COLUMNS = 4
DEFAULT_CELLS = ["only QCNN right", "only classical right"]
LABELS = ["malignant", "benign"]


def _controls(seeds: list[int], default: int) -> tuple[int, float]:
    c1, c2 = st.columns([1, 3], gap="large")
    ui.from_url(KEY + "seed", "seed", default, int, lambda v: v in seeds)
    ui.from_url(KEY + "threshold", "t", THRESHOLD, lambda t: round(float(t), 2), lambda v: 0.01 <= v <= 0.99)
    seed = c1.selectbox(
        "Seed",
        seeds,
        key=KEY + "seed",
        help="The training seed whose test predictions are compared (seed 0 is fixed in advance).",
    )
    threshold = c2.slider(
        "Decision threshold (both models)",
        0.01,
        0.99,
        step=0.01,
        key=KEY + "threshold",
        help="One threshold for both, as in the study (0.5). A prediction is right when "
        "probability ≥ threshold matches the label (1 = malignant).",
    )
    ui.to_url("seed", seed, default)
    ui.to_url("t", threshold, THRESHOLD, "{:.2f}".format)
    return seed, threshold


def _mcnemar(frame: pd.DataFrame, test: dict, threshold: float) -> None:
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.plotly_chart(charts.disagreement_figure(test), key="mcnemar_table", config={"displayModeBar": False})
    with right:
        only_q, only_c = test["only_qcnn_correct"], test["only_classical_correct"]
        st.metric(
            "McNemar's exact test, p-value",
            f"{test['p_value']:.3g}",
            border=True,
            help="Two-sided exact binomial test on the discordant images: under 'no difference', an image "
            "that only one model gets right is equally likely to favour either (scipy binomtest).",
        )
        n = len(frame)
        accuracy_q = (test["both_correct"] + only_q) / n
        accuracy_c = (test["both_correct"] + only_c) / n
        st.markdown(
            f"At threshold **{threshold:.2f}** the models disagree on **{only_q + only_c:,}** of {n:,} "
            f"images: **{only_q:,}** only the QCNN gets right, **{only_c:,}** only the classical model. "
            f"Accuracy {100 * accuracy_q:.2f} % vs {100 * accuracy_c:.2f} % "
            f"({100 * (accuracy_q - accuracy_c):+.2f} pts)."
        )
        verdict = (
            "The difference in accuracy is unlikely to be chance alone (p < 0.05)."
            if test["p_value"] < 0.05
            else "This split of the discordant images is compatible with chance (p ≥ 0.05)."
        )
        st.caption(
            verdict + " McNemar's test treats images as independent; images of one lesion are not, so read "
            "p-values near 0.05 with care (the Results page's intervals resample whole lesions)."
        )


def _filters(frame: pd.DataFrame) -> pd.DataFrame:
    st.subheader("Filter the images")
    st.caption("An empty filter keeps everything.")
    c1, c2, c3, c4 = st.columns([3, 2, 3, 2], gap="medium")
    diagnoses = sorted(frame.dx.unique())
    ui.from_url(KEY + "cells", "cell", DEFAULT_CELLS, valid=lambda v: set(v) <= set(analysis.CELLS), many=True)
    ui.from_url(KEY + "labels", "label", [], valid=lambda v: set(v) <= set(LABELS), many=True)
    ui.from_url(KEY + "dx", "dx", [], valid=lambda v: set(v) <= set(diagnoses), many=True)
    ui.from_url(KEY + "gap", "gap", 0.0, lambda g: round(float(g), 2), lambda v: 0.0 <= v <= 1.0)
    cells = c1.multiselect("Cell", analysis.CELLS, key=KEY + "cells", placeholder="all cells")
    labels = c2.multiselect("Label", LABELS, key=KEY + "labels", placeholder="both labels")
    dx = c3.multiselect(
        "Diagnosis",
        diagnoses,
        key=KEY + "dx",
        placeholder="all diagnoses",
        format_func=lambda d: f"{d} · {DX_NAMES.get(d, d)}",
    )
    gap = c4.slider(
        "Min. probability gap", 0.0, 1.0, step=0.05, key=KEY + "gap", help="|QCNN probability − classical probability|"
    )
    ui.to_url("cell", cells, DEFAULT_CELLS)
    ui.to_url("label", labels, [])
    ui.to_url("dx", dx, [])
    ui.to_url("gap", gap, 0.0, "{:.2f}".format)
    keep = frame.gap.abs() >= gap
    if cells:
        keep &= frame.cell.isin(cells)
    if labels:
        keep &= frame.label.isin([1 if x == "malignant" else 0 for x in labels])
    if dx:
        keep &= frame.dx.isin(dx)
    chosen = frame[keep]
    return chosen.sort_values("gap", key=np.abs, ascending=False)


def _on_table_select() -> None:
    """Callback of a click on a table row: select its image for Grad-CAM (runs before the rerun)."""
    rows = st.session_state[KEY + "table"].selection.rows
    picked = st.session_state[KEY + "table_ids"][rows[0]] if rows else None
    if picked is not None and picked != st.session_state.get(KEY + "table_picked"):  # a new click, not a replay
        st.session_state[KEY + "cam_image"] = picked
    st.session_state[KEY + "table_picked"] = picked


def _on_point_select(chart: str) -> None:
    """Callback of a click on a point of the chart with key ``chart`` (its customdata[0] is the image id)."""
    points = st.session_state[chart].selection.points
    picked = points[0]["customdata"][0] if points and points[0].get("customdata") else None
    if picked is not None and picked != st.session_state.get(chart + "_picked"):
        st.session_state[KEY + "cam_image"] = picked
    st.session_state[chart + "_picked"] = picked


def _pick(image_id: str) -> None:
    """A gallery button's callback: runs before the rerun, so the Grad-CAM panel opens on this image."""
    st.session_state[KEY + "cam_image"] = image_id


MAP_COLOURINGS = {"label": "label", "diagnosis": "diagnosis", "correct": "correct at the threshold"}
MAP_METHODS = {"pca": "PCA", "umap": "UMAP"}


def _map(frame: pd.DataFrame, chosen: pd.DataFrame, seed: int, threshold: float) -> None:
    """Each model's pooled 256-D outcome vectors in 2-D (``qcnn map``), side by side; a click selects the image."""
    st.subheader("Map: where each model puts the images")
    loaded = results.load_map()
    if loaded is None:
        ui.missing("map of the models' outcome vectors", "map.csv", "qcnn map")
        return
    coords, info = loaded
    map_seed = analysis.map_seed(info)
    cells = frame
    if map_seed != seed:  # colours and hover read the predictions of the weights the map was made from
        paired = results.load_paired_predictions(map_seed)
        if paired is None or not len(paired):
            st.caption(f"The map was made from seed {map_seed}'s models, whose test predictions are not readable.")
            return
        cells = analysis.disagreement_cells(paired, threshold)
    methods = [m for m in MAP_METHODS if set(analysis.MAP_AXES[m]) <= set(coords.columns)]
    colourings = list(MAP_COLOURINGS)  # label first: the default
    c1, c2 = st.columns([1, 2], gap="large")
    ui.from_url(KEY + "map_method", "proj", methods[0], valid=lambda v: v in methods)
    ui.from_url(KEY + "map_colour", "colour", colourings[0], valid=lambda v: v in colourings)
    method = c1.radio("Projection", methods, format_func=MAP_METHODS.get, horizontal=True, key=KEY + "map_method")
    colour_by = c2.radio(
        "Colour by", colourings, format_func=MAP_COLOURINGS.get, horizontal=True, key=KEY + "map_colour"
    )
    ui.to_url("proj", method, methods[0])
    ui.to_url("colour", colour_by, colourings[0])
    highlight = set(chosen.image_id)
    for col, kind in zip(st.container(key="wide_map").columns(2, gap="large"), charts.KINDS, strict=True):
        points = analysis.map_points(coords, cells, kind, method)
        with col:
            st.plotly_chart(
                charts.map_scatter(
                    points,
                    colour_by,
                    kind,
                    analysis.map_axis_titles(info, kind, method),
                    threshold,
                    highlight,
                ),
                key=KEY + f"map_{kind}",
                on_select=partial(_on_point_select, KEY + f"map_{kind}"),
                selection_mode="points",
            )
    st.caption(analysis.map_caption(info, method, seed, map_seed, threshold, len(points)))


def _table(chosen: pd.DataFrame, seed: int, threshold: float) -> None:
    shown = chosen[["image_id", "lesion_id", "dx", "label", "p_qcnn", "p_classical", "gap", "cell"]].copy()
    shown["label"] = np.where(shown.label == 1, "malignant", "benign")
    st.session_state[KEY + "table_ids"] = shown.image_id.tolist()  # row positions -> images, for the callback
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        height=320,
        key=KEY + "table",
        on_select=_on_table_select,
        selection_mode="single-row",
        column_config={
            "image_id": "image",
            "lesion_id": "lesion",
            "p_qcnn": st.column_config.ProgressColumn(
                "QCNN p(malignant)", min_value=0.0, max_value=1.0, format="%.3f", color=charts.MODEL_COLOURS["qcnn"]
            ),
            "p_classical": st.column_config.ProgressColumn(
                "classical p(malignant)",
                min_value=0.0,
                max_value=1.0,
                format="%.3f",
                color=charts.MODEL_COLOURS["classical"],
            ),
            "gap": st.column_config.NumberColumn("gap (QCNN − classical)", format="%+.3f"),
        },
    )
    st.download_button(
        "Download these rows (CSV)",
        shown.to_csv(index=False).encode(),
        file_name=f"disagreements_seed{seed}_t{threshold:.2f}.csv",
        mime="text/csv",
        key=KEY + "download",
        icon=":material/download:",
    )


@st.cache_data(show_spinner=False, max_entries=256)
def _thumbnail(path: str):
    return load_image_file(path)


def _gallery(chosen: pd.DataFrame, data_dir) -> None:
    st.subheader("Gallery")
    n = st.columns([1, 2])[0].slider("Images to show (largest gap first)", 4, 32, 8, 4, key=KEY + "n_images")
    rows = chosen.head(n)
    cols = st.columns(GALLERY_COLUMNS)
    for i, row in enumerate(rows.itertuples()):
        with cols[i % GALLERY_COLUMNS]:
            try:
                image = _thumbnail(str(image_path(data_dir, row.image_id)))
            except DataError as err:
                st.caption(f"{row.image_id}: {err}")
                continue
            truth = "malignant" if row.label == 1 else "benign"
            st.image(
                image,
                width="stretch",
                caption=f"{row.image_id} · {row.dx} ({truth}) · QCNN {row.p_qcnn:.2f} · "
                f"classical {row.p_classical:.2f}",
            )
            st.button(
                "Grad-CAM",
                key=KEY + f"pick_{row.image_id}",
                icon=":material/visibility:",
                width="stretch",
                help=f"Show where both models look on {row.image_id}",
                on_click=_pick,
                args=(row.image_id,),
            )


def weights_seed() -> int | None:
    """The training seed of the weights in the checkpoint folder (both models'), or None if unknown or mixed."""
    from qcnn.paths import checkpoint_dir

    seeds = set()
    for kind in charts.KINDS:
        path = checkpoint_dir() / f"{kind}.safetensors"
        seeds.add(_checkpoint_seed(str(path), results.stamp(path)))
    return seeds.pop() if len(seeds) == 1 else None


@st.cache_data(show_spinner=False, max_entries=8)
def _checkpoint_seed(path: str, mtime: int | None) -> int | None:
    """The seed recorded in a model checkpoint's metadata (safetensors header only, no tensors read)."""
    if mtime is None:
        return None
    from safetensors import safe_open

    try:
        with safe_open(path, "np") as f:
            extra = json.loads((f.metadata() or {}).get("extra", "{}"))
    except (OSError, ValueError):
        return None
    return extra.get("seed") if isinstance(extra.get("seed"), int) else None


@st.fragment
def _grad_cam(frame: pd.DataFrame, chosen: pd.DataFrame, data_dir, seed: int) -> None:
    """A fragment: Grad-CAM of both models for the selected image (a table row, a scatter or map point, a
    gallery button or the selector), computed as soon as it is selected, with the selected seed's own weights.

    The selection is any test image: a faint point (outside the filters) clicked in a chart is shown, and
    said to be outside the filters, rather than silently replaced by the filters' first image."""
    st.subheader("Where each model looks (Grad-CAM)")
    test_ids = set(frame.image_id)
    ids = chosen.image_id.tolist()
    c1, c2 = st.columns([2, 3], vertical_alignment="bottom")
    ui.from_url(KEY + "cam_image", "image", ids[0], valid=lambda v: v in test_ids)
    if st.session_state[KEY + "cam_image"] not in test_ids:  # another seed's pool, or nothing selected yet
        st.session_state[KEY + "cam_image"] = ids[0]
    outside = st.session_state[KEY + "cam_image"] not in ids
    image_id = c1.selectbox(
        "Image",
        [st.session_state[KEY + "cam_image"], *ids] if outside else ids,
        key=KEY + "cam_image",
        help="Or click a row of the table, a point of the scatter or a map, or a gallery button.",
    )
    ui.to_url("image", image_id, None)
    if outside:
        c1.caption(f"{image_id} does not match the filters (it is drawn faint in the charts).")
    present = weights_seed()
    if present is None:
        c2.warning(
            "No trained weights with a known seed in `checkpoints/`: run `qcnn reproduce` to train and "
            "export both models, then Grad-CAM shows where they look.",
            icon=":material/info:",
        )
        return
    if present != seed:
        c2.warning(
            f"Grad-CAM needs seed {seed}'s trained weights; only seed {present}'s are in `checkpoints/`. "
            f"Choose seed {present} above to see where both models look.",
            icon=":material/info:",
        )
        return
    from qcnn.app.model_cache import ModelsUnavailable, get_predictor  # lazy: torch only from here on

    try:
        predictor = get_predictor()
    except ModelsUnavailable as err:
        st.warning(str(err), icon=":material/hourglass_empty:")
        return
    from qcnn.inference import overlay

    cached = st.session_state.get(KEY + "cam_prediction")
    if cached is not None and cached[0] == (id(predictor), image_id):
        prediction = cached[1]
    else:
        try:
            image = load_image_file(image_path(data_dir, image_id))
        except DataError as err:
            st.warning(f"Cannot read {image_id} from the data folder: {err}", icon=":material/image:")
            return
        with st.spinner("Running both models with Grad-CAM…"):
            prediction = predictor.predict(image, cam_method=DEFAULT_CAM_METHOD)
        st.session_state[KEY + "cam_prediction"] = ((id(predictor), image_id), prediction)
    alpha = st.columns([1, 2])[0].slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key=KEY + "alpha")
    row = frame[frame.image_id == image_id].iloc[0]
    cols = st.columns(3)
    cols[0].image(
        prediction.image,
        caption=f"{image_id} · {row.dx} ({'malignant' if row.label == 1 else 'benign'})",
        width="stretch",
    )
    for col, kind in zip(cols[1:], charts.KINDS, strict=True):
        out = prediction.output(kind)
        col.image(
            overlay(prediction.image, out.heatmap, alpha),
            width="stretch",
            caption=f"{charts.MODEL_LABELS[kind]} · p(malignant) {out.probability:.3f}",
        )
    st.caption(
        f"Grad-CAM on layer3's 14 × 14 output, targeting the malignancy logit, from seed {seed}'s exported "
        "models (checkpoints/). Their probabilities are recomputed from the image and agree closely with the "
        "table's (the pipeline scored the test pool at lower numerical precision)."
    )


def render() -> None:
    ui.page_header(
        TITLE,
        "Per test image: is each model right at the chosen threshold? Where they disagree, "
        "McNemar's exact test asks whether one wins more often than chance allows.",
    )
    ui.model_legend()
    seeds = results.available_seeds("predictions.csv")
    if not seeds:
        ui.missing("test-set predictions of both models", results.missing_run_file("predictions.csv"))
        return
    summary = results.load_summary()
    ui.synthetic_notice(summary)
    _explorer(seeds, results.default_seed(seeds, summary))


@st.fragment
def _explorer(seeds: list[int], default_seed: int) -> None:
    """Everything that follows the seed, the threshold and the filters: a fragment, so the page's header
    does not rerun with every change."""
    seed, threshold = _controls(seeds, default_seed)
    paired = results.load_paired_predictions(seed)
    if paired is None or not len(paired):  # a file being rewritten by the pipeline right now
        ui.missing(f"readable test-set predictions for seed {seed}", results.missing_run_file("predictions.csv", seed))
        return
    frame = analysis.disagreement_cells(paired, threshold)
    test = analysis.mcnemar_at(paired, threshold)
    _mcnemar(frame, test, threshold)
    chosen = _filters(frame)
    st.plotly_chart(
        charts.probability_scatter(frame, threshold, set(chosen.image_id)),
        key=KEY + "scatter",
        on_select=partial(_on_point_select, KEY + "scatter"),
        selection_mode="points",
    )
    st.caption(
        "Each point is a test image (× malignant, ○ benign); dotted lines mark the threshold. Points off the "
        "diagonal are images the two models score differently. Images that match the filters are drawn "
        "strong, the others faint; click a point to see its Grad-CAMs below."
    )
    _map(frame, chosen, seed, threshold)
    st.markdown(
        f"**{len(chosen):,} images** match the filters (sorted by the size of the probability gap; click a "
        "column header to sort, a row's checkbox to see its Grad-CAMs)."
    )
    _table(chosen, seed, threshold)
    data_dir = data_dir_available()
    if data_dir is None:
        st.info(
            "**Images not shown:** the HAM10000 folder is not configured. Set `QCNN_DATA_DIR` to the folder "
            "holding `HAM10000_metadata.csv` and `images/`, then restart the app, to see a gallery of the "
            "selected images and their Grad-CAMs.",
            icon=":material/image:",
        )
        return
    if not len(chosen):
        st.caption("No image matches the filters.")
        return
    _gallery(chosen, data_dir)
    _grad_cam(frame, chosen, data_dir, seed)
