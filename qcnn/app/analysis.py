"""The app's live computations: metrics at a chosen threshold, disagreement cells, McNemar, tables.

Thin wrappers over the pipeline's torch-free functions (``qcnn.metrics``, ``qcnn.stats``) so that
what a slider shows is computed exactly as the pipeline computes the saved results.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from qcnn import study
from qcnn.app import results
from qcnn.app.charts import METRIC_LABELS, fmt_value
from qcnn.app.verdict import direction

CELLS = ("both right", "only QCNN right", "only classical right", "both wrong")


def at_threshold(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> tuple[dict, dict]:
    """(confusion counts, metrics) of one model at ``threshold`` — the pipeline's own functions."""
    from qcnn.metrics import confusion, threshold_metrics

    return confusion(labels, probabilities, threshold), threshold_metrics(labels, probabilities, threshold)


@st.cache_data(show_spinner=False, max_entries=32)
def _curves(path: str, mtime: int) -> dict:
    from qcnn.metrics import curves

    predictions = pd.read_csv(path)
    return curves(predictions.label.to_numpy(), predictions.probability.to_numpy())


def model_curves(kind: str, seed: int) -> dict | None:
    """ROC and PR points of one run: from metrics.json when it has them, else from predictions.csv."""
    metrics = results.load_metrics(kind, seed)
    if metrics and "roc" in metrics and "pr" in metrics:
        return {"roc": metrics["roc"], "pr": metrics["pr"], "auc": metrics.get("auc")}
    path = results.run_dir(kind, seed) / "predictions.csv"
    mtime = results.stamp(path)
    if mtime is None:
        return None
    return {**_curves(str(path), mtime), "auc": None}


def disagreement_cells(paired: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per image: each model's correctness at ``threshold``, the 2 × 2 cell, and the probability gap."""
    truth = paired.label.to_numpy() == 1
    right_q = (paired.p_qcnn.to_numpy() >= threshold) == truth
    right_c = (paired.p_classical.to_numpy() >= threshold) == truth
    cell = np.select([right_q & right_c, right_q & ~right_c, ~right_q & right_c], CELLS[:3], CELLS[3])
    return paired.assign(
        qcnn_right=right_q, classical_right=right_c, cell=cell, gap=(paired.p_qcnn - paired.p_classical).round(6)
    )


MAP_AXES = {"pca": ("pc1", "pc2"), "umap": ("umap1", "umap2")}


def map_points(coords: pd.DataFrame, cells: pd.DataFrame, kind: str, method: str) -> pd.DataFrame:
    """One model's map positions (``qcnn map``) with each image's diagnosis, label, probability and correctness.

    ``cells`` is ``disagreement_cells`` of the predictions of the weights the map was made from. Columns:
    image_id, x, y, dx, label, probability, right.
    """
    x, y = MAP_AXES[method]
    mine = coords.loc[coords.model == kind, ["image_id", x, y]].rename(columns={x: "x", y: "y"})
    scored = cells[["image_id", "dx", "label", f"p_{kind}", f"{kind}_right"]].rename(
        columns={f"p_{kind}": "probability", f"{kind}_right": "right"}
    )
    return mine.merge(scored, on="image_id", how="inner")


def map_seed(info: dict) -> int:
    """The training seed of the weights ``qcnn map`` read (map.json); the app's checkpoints are seed 0."""
    seeds = {m.get("seed") for m in info["models"].values()}
    seed = seeds.pop() if len(seeds) == 1 else None
    return seed if isinstance(seed, int) else 0


def map_axis_titles(info: dict, kind: str, method: str) -> tuple[str, str]:
    if method == "umap":
        return "UMAP 1", "UMAP 2"
    ratio = info["models"][kind].get("pca_explained_variance_ratio") or [np.nan, np.nan]
    return tuple(f"PC{i + 1} ({100 * r:.1f} % of variance)" for i, r in enumerate(ratio[:2]))


def map_caption(info: dict, method: str, seed: int, map_seed: int, threshold: float, n_shown: int) -> str:
    """What the map shows, how it was made, and which seed's predictions colour it."""
    text = (
        f"Each point is a test image, placed by {method.upper()} of its pooled outcome vector: the mean over its "
        "196 patches of the model's 256 outcome probabilities (the QCNN's measurement probabilities, the classical "
        "control's softmax), which is all its linear classifier reads. Each map is fitted on its own model's "
        "vectors, so positions do not compare across the two. "
    )
    if method == "pca":
        q, c = (info["models"][k]["pca_explained_variance_ratio"] for k in ("qcnn", "classical"))
        text += (
            f"PC1 and PC2 hold {100 * q[0]:.1f} % and {100 * q[1]:.1f} % of the QCNN's variance, "
            f"{100 * c[0]:.1f} % and {100 * c[1]:.1f} % of the classical model's. "
        )
    else:
        umap = info.get("method", {}).get("umap", {})
        text += (
            f"UMAP ({umap.get('n_neighbors', '?')} neighbours, seed {umap.get('random_state', '?')}) keeps "
            "neighbourhoods; its axes and the distances between groups carry no meaning. "
        )
    text += f"Made by `{info.get('command', 'qcnn map')}` from seed {map_seed}'s models (checkpoints/). "
    if seed != map_seed:
        text += (
            f"The page shows seed {seed}, but the map's colours and probabilities are seed {map_seed}'s "
            f"(correct at {threshold:.2f} by seed {map_seed}'s predictions); the filters follow seed {seed}. "
        )
    if n_shown != info.get("n_test", n_shown):
        text += f"{n_shown:,} of its {info['n_test']:,} images have predictions here. "
    return (
        text + "Images that match the filters are drawn strong, the others faint; click a point to see its Grad-CAMs."
    )


def mcnemar_at(paired: pd.DataFrame, threshold: float) -> dict:
    """McNemar's exact test at ``threshold``: the pipeline's ``qcnn.stats.mcnemar`` (scipy binomtest)."""
    from qcnn.stats import mcnemar

    return mcnemar(paired.label.to_numpy(), paired.p_qcnn.to_numpy(), paired.p_classical.to_numpy(), threshold)


# --- tables -------------------------------------------------------------------------------------


def reproduced_table(summary: dict, mode: str, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Reproduced QCNN, classical and difference per metric.

    mode "mean": mean ± SD over seeds, difference with its 95% interval over seeds and lesions (``ci95``)
    and the verdict that interval gives; mode "seed0": the app seed's values with their lesion-only
    bootstrap 95% intervals (a secondary view: one training run's test-set uncertainty).
    """
    models, diff = summary["models"], summary["difference"]
    rows = []
    for m in metrics:
        row = {"metric": METRIC_LABELS[m]}
        for kind, name in (("qcnn", "QCNN"), ("classical", "classical")):
            block = models[kind]
            if mode == "mean":
                sd = block["sd"][m]
                row[name] = (
                    f"{block['mean'][m]:.4f} ± {sd:.4f}"
                    if m == "auc"
                    else f"{100 * block['mean'][m]:.2f} ± {100 * sd:.2f} %"
                )
            else:
                v, (lo, hi) = block["seed0"][m]["value"], block["seed0"][m]["ci95"]
                row[name] = f"{fmt_value(m, v)}  [{fmt_value(m, lo)}, {fmt_value(m, hi)}]"
        if mode == "mean":
            d, (lo, hi) = diff["mean"][m], diff["ci95"][m]
        else:
            d, (lo, hi) = diff["seed0"][m]["value"], diff["seed0"][m]["ci95"]
        if m == "auc":
            row["Δ"], row["Δ 95% interval"] = f"{d:+.4f}", f"[{lo:+.4f}, {hi:+.4f}]"
        else:
            row["Δ"], row["Δ 95% interval"] = f"{100 * d:+.2f} pts", f"[{100 * lo:+.2f}, {100 * hi:+.2f}]"
        row["verdict" if mode == "mean" else "excludes 0"] = (
            direction((lo, hi)) if mode == "mean" else "yes" if lo > 0 or hi < 0 else "no"
        )
        rows.append(row)
    return pd.DataFrame(rows)


def delta_rows(summary: dict, metrics: tuple[str, ...] = study.REPORTED_METRICS) -> pd.DataFrame:
    diff = summary["difference"]
    rows = []
    for m in metrics:
        rows.append(
            {
                "metric": m,
                "reported": study.EXPERIMENT_4_DELTA.get(m, np.nan),
                "seed0": diff["seed0"][m]["value"],
                "seed0_lo": diff["seed0"][m]["ci95"][0],
                "seed0_hi": diff["seed0"][m]["ci95"][1],
                "mean": diff["mean"][m],
                "mean_lo": diff["ci95"][m][0],
                "mean_hi": diff["ci95"][m][1],
            }
        )
    return pd.DataFrame(rows)


def bar_inputs(summary: dict, mode: str, metrics: tuple[str, ...]) -> tuple[dict, dict, str]:
    """Bar heights and (lo, hi) error bounds per model for ``metric_bars``."""
    values, errors = {}, {}
    for kind, block in summary["models"].items():
        if mode == "mean":
            values[kind] = {m: block["mean"][m] for m in metrics}
            errors[kind] = {m: (block["mean"][m] - block["sd"][m], block["mean"][m] + block["sd"][m]) for m in metrics}
        else:
            values[kind] = {m: block["seed0"][m]["value"] for m in metrics}
            errors[kind] = {m: tuple(block["seed0"][m]["ci95"]) for m in metrics}
    label = "mean ± 1 SD over seeds" if mode == "mean" else "seed 0, lesion-bootstrap 95% CI"
    return values, errors, label


def matched_recall_table(summary: dict) -> pd.DataFrame | None:
    """Both models compared at equal recall, from the summary (seed ``matched_recall.seed``)."""
    mr = summary.get("matched_recall")
    if not mr:
        return None
    seed = str(mr.get("seed", summary.get("app_seed", 0)))
    at_half = {
        k: summary["models"][k]["per_seed"].get(seed)
        or {m: summary["models"][k]["seed0"][m]["value"] for m in summary["metrics"]}
        for k in ("qcnn", "classical")
    }
    q_at_c, c_at_q = mr["qcnn_at_classical_recall"], mr["classical_at_qcnn_recall"]
    rows = [
        {
            "matched at": "the classical model's recall at 0.5",
            "recall": q_at_c["target_recall"],
            "QCNN threshold": q_at_c["threshold"],
            "classical threshold": 0.5,
            "QCNN precision": q_at_c["precision"],
            "classical precision": at_half["classical"]["precision"],
            "QCNN specificity": q_at_c["specificity"],
            "classical specificity": at_half["classical"]["specificity"],
        },
        {
            "matched at": "the QCNN's recall at 0.5",
            "recall": c_at_q["target_recall"],
            "QCNN threshold": 0.5,
            "classical threshold": c_at_q["threshold"],
            "QCNN precision": at_half["qcnn"]["precision"],
            "classical precision": c_at_q["precision"],
            "QCNN specificity": at_half["qcnn"]["specificity"],
            "classical specificity": c_at_q["specificity"],
        },
    ]
    return pd.DataFrame(rows)
