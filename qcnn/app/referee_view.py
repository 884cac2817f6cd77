"""The Results page's referee sections: the threshold question, calibration, subgroups.

Everything shown is read from results/referee.json (``qcnn referee``); nothing is computed here.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from qcnn import study
from qcnn.app import ui
from qcnn.app.style import MODEL_COLOURS, MODEL_LABELS
from qcnn.constants import MODEL_KINDS

LABELS = {
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "specificity": "specificity",
    "f1": "F1",
    "positive_rate": "positive rate",
    "brier": "Brier score",
    "ece": "ECE",
}
COMPARISONS = {
    "at_0.5": "both at threshold 0.5 (the study's setting)",
    "classical_at_qcnn_fpr": "classical moved to the QCNN's false-positive rate",
    "classical_at_qcnn_recall": "classical moved to the QCNN's recall",
    "qcnn_at_classical_fpr": "QCNN moved to the classical model's false-positive rate",
    "qcnn_at_classical_recall": "QCNN moved to the classical model's recall",
}
GROUPINGS = {"diagnosis": "diagnosis", "sex": "sex", "age_band": "age band", "body_site": "body site"}


def _pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}"


def _ci(ci: list | None, digits: int = 1, signed: bool = True) -> str:
    if ci is None or ci[0] is None:
        return "–"
    f = f"{{:+.{digits}f}}" if signed else f"{{:.{digits}f}}"
    return "[" + f.format(100 * ci[0]) + ", " + f.format(100 * ci[1]) + "]"


def _verdict(ci: list | None) -> str:
    if ci is None or ci[0] is None:
        return "–"
    return "QCNN better" if ci[0] > 0 else "classical better" if ci[1] < 0 else "inconclusive"


# --- the threshold question -------------------------------------------------------------------------


def _reported(analysis: dict) -> None:
    st.markdown(f"**{ui.REPORTED}: could the headline come from the threshold alone?**")
    points, at_fpr = analysis["operating_points"], analysis["classical_at_qcnn_fpr"]
    rows = []
    for k in MODEL_KINDS:
        p, r = points[k], study.EXPERIMENT_4[k]
        rows.append(
            {
                "model": MODEL_LABELS[k],
                "recall (reported)": _pct(p["recall"], 2),
                "precision (reported)": _pct(r["precision"], 2),
                "→ false-positive rate": _pct(p["fpr"], 2),
                "→ positive-prediction rate": _pct(p["positive_rate"], 2),
                "→ accuracy (check; reported)": f"{_pct(p['implied_accuracy'], 2)} ({_pct(r['accuracy'], 2)})",
                "AUC (reported)": f"{p['auc']:.4f}",
                "binormal AUC through the point": f"{p['auc_implied_by_point']:.4f}",
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="referee_reported_points")
    left, right = st.columns([3, 2], gap="large")
    with left:
        q = study.EXPERIMENT_4["qcnn"]
        table = pd.DataFrame(
            [
                {
                    "": "QCNN as reported",
                    **{LABELS[m]: _pct(q[m], 2) for m in ("accuracy", "precision", "recall", "f1")},
                },
                {
                    "": "classical on its binormal ROC at the QCNN's FPR",
                    **{LABELS[m]: _pct(at_fpr[m], 2) for m in ("accuracy", "precision", "recall", "f1")},
                },
                {
                    "": "QCNN − that",
                    **{
                        LABELS[m]: f"{100 * (q[m] - at_fpr[m]):+.2f} pts"
                        for m in ("accuracy", "precision", "recall", "f1")
                    },
                },
            ]
        )
        st.dataframe(table, hide_index=True, width="stretch", key="referee_at_fpr")
        explained = analysis["explainable_by_threshold"]
        box = st.success if explained else st.info
        box(
            (
                "**Explainable by threshold choice alone.** "
                if explained
                else "**Not explainable by threshold choice alone.** "
            )
            + f"Rule: {analysis['rule']}.",
            icon=":material/tune:",
        )
        st.markdown("Assumptions: " + "; ".join(analysis["assumptions"]) + ".")
    with right:
        st.plotly_chart(_binormal_figure(analysis), key="referee_binormal")


def _binormal_figure(analysis: dict) -> go.Figure:
    fig = go.Figure()
    for k in MODEL_KINDS:
        curve, point = analysis["binormal_roc"][k], analysis["operating_points"][k]
        fig.add_scatter(
            x=curve["fpr"],
            y=curve["tpr"],
            mode="lines",
            line={"color": MODEL_COLOURS[k]},
            name=f"{MODEL_LABELS[k]} binormal ROC (AUC {point['auc']:.4f})",
        )
        fig.add_scatter(
            x=[point["fpr"]],
            y=[point["recall"]],
            mode="markers",
            marker={"color": MODEL_COLOURS[k], "size": 11, "symbol": "diamond"},
            name=f"{MODEL_LABELS[k]} reported point",
        )
    fig.update_layout(
        height=440,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"font": {"size": 10}, "orientation": "h", "y": -0.2},
        xaxis_title="false-positive rate",
        yaxis_title="recall (TPR)",
    )
    return fig


def _matched(matched: dict) -> None:
    st.markdown(f"**{ui.REPRODUCED}: both models at matched operating points, over seeds**")
    metrics = ("accuracy", "precision", "recall", "specificity", "f1")
    rows = []
    for key, label in COMPARISONS.items():
        if key not in matched:
            continue
        d = matched[key]["difference"]
        row = {"comparison": label}
        for m in metrics:
            row[f"Δ {LABELS[m]}"] = f"{100 * d['mean'][m]:+.1f} {_ci(d['ci95'][m])}"
        row["accuracy verdict"] = _verdict(d["ci95"]["accuracy"])
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="referee_matched")
    st.caption(
        "QCNN − classical in points, mean over seeds [95% interval over seeds and test lesions]. The moved "
        "model's threshold is set per seed on the test set itself, to the other model's rate at 0.5; the "
        "bootstrap holds that threshold fixed."
    )


def _validation(validation: dict) -> None:
    st.markdown("**Thresholds chosen on the validation pool, applied to test**")
    if validation.get("status") != "measured":
        st.info(f"**Not yet measured.** {validation.get('reason', '')}.", icon=":material/info:")
        return
    rows = []
    for rule, label in (("youden", "Youden's J on validation"), ("recall_85", "85 % recall on validation")):
        block = validation[rule]
        for k in MODEL_KINDS:
            row = {"rule": label, "model": MODEL_LABELS[k]}
            row.update(
                {
                    LABELS[m]: f"{_pct(block[k]['mean'][m])} {_ci(block[k]['ci95'][m], signed=False)}"
                    for m in ("accuracy", "precision", "recall", "specificity", "f1")
                }
            )
            rows.append(row)
        d = block["difference"]
        rows.append(
            {
                "rule": label,
                "model": "Δ QCNN − classical",
                **{
                    LABELS[m]: f"{100 * d['mean'][m]:+.1f} {_ci(d['ci95'][m])}"
                    for m in ("accuracy", "precision", "recall", "specificity", "f1")
                },
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="referee_validation")
    st.caption(_validation_caption(validation))


def _validation_caption(validation: dict) -> str:
    """What the validation-threshold intervals count, and which seeds they leave out."""
    seeds = validation.get("seeds", [])
    missing = validation.get("seeds_without_validation_predictions", [])
    text = (
        f"Each run's threshold is chosen on its own validation predictions, then applied to test. "
        f"Seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}; "
    )
    if len(seeds) > 1:
        text += "mean over seeds [95% interval over seeds and test lesions]."
    else:
        text += (
            "**one seed only: the interval counts test lesions, not training randomness**, so it is narrower "
            "than an interval over seeds would be and carries no verdict."
        )
    if missing:
        text += (
            f" Seeds {', '.join(map(str, missing))} are left out: their evaluations predate validation "
            "predictions and their weights were not kept."
        )
    return text


def render_threshold(referee: dict | None) -> None:
    st.header("The threshold question")
    if referee is None:
        ui.missing("threshold analysis", "referee.json")
        return
    _reported(referee["reported_threshold"])
    _matched(referee["matched"])
    _validation(referee["validation_thresholds"])


# --- calibration --------------------------------------------------------------------------------------


def _reliability_figure(calibration: dict) -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"color": "#999999", "dash": "dot"}, name="perfect")
    for k in MODEL_KINDS:
        for i, r in enumerate(calibration[k]["reliability_per_seed"]):
            fig.add_scatter(
                x=r["predicted"],
                y=r["observed"],
                mode="lines",
                line={"color": MODEL_COLOURS[k], "width": 1},
                opacity=0.3,
                showlegend=False,
                name=f"{MODEL_LABELS[k]} seed {calibration['seeds'][i]}",
            )
        pooled = calibration[k]["reliability_pooled"]
        fig.add_scatter(
            x=pooled["predicted"],
            y=pooled["observed"],
            mode="lines+markers",
            line={"color": MODEL_COLOURS[k], "width": 3},
            name=f"{MODEL_LABELS[k]} (all seeds)",
            customdata=pooled["count"],
            hovertemplate="predicted %{x:.2f} · observed %{y:.2f} · %{customdata} images",
        )
    fig.update_layout(
        height=440,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "y": -0.2},
        xaxis_title="mean predicted probability (bin)",
        yaxis_title="observed malignant fraction",
    )
    return fig


def render_calibration(referee: dict | None) -> None:
    st.header("Calibration")
    if referee is None:
        ui.missing("calibration", "referee.json")
        return
    cal = referee["calibration"]
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.markdown(f"**Reliability diagram** · {cal['n_bins']} bins, {cal['binning']}; thin lines: one per seed")
        st.plotly_chart(_reliability_figure(cal), key="referee_reliability")
    with right:
        rows = []
        for k in MODEL_KINDS:
            block = cal[k]
            rows.append(
                {
                    "": f"{MODEL_LABELS[k]}, mean over seeds",
                    **{
                        LABELS[m]: f"{block['mean'][m]:.4f} [{block['ci95'][m][0]:.4f}, {block['ci95'][m][1]:.4f}]"
                        for m in ("brier", "ece")
                    },
                }
            )
        d = cal["difference"]
        rows.append(
            {
                "": "Δ QCNN − classical",
                **{
                    LABELS[m]: f"{d['mean'][m]:+.4f} [{d['ci95'][m][0]:+.4f}, {d['ci95'][m][1]:+.4f}]"
                    for m in ("brier", "ece")
                },
            }
        )
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="referee_calibration")
        per_seed = []
        for k in MODEL_KINDS:
            for s, values, ci in zip(cal["seeds"], cal[k]["per_seed"], cal[k]["per_seed_ci95"], strict=True):
                per_seed.append(
                    {
                        "model": MODEL_LABELS[k],
                        "seed": s,
                        **{LABELS[m]: f"{values[m]:.4f} [{ci[m][0]:.4f}, {ci[m][1]:.4f}]" for m in ("brier", "ece")},
                    }
                )
        with st.expander("Per seed (95% lesion-bootstrap intervals, one training run each)"):
            st.dataframe(pd.DataFrame(per_seed), hide_index=True, width="stretch", key="referee_calibration_seeds")
        st.caption(
            "Lower is better for both. Brier: mean squared error of the probability. ECE: the image-weighted "
            "mean gap between predicted probability and observed malignant fraction over the bins. Mean-over-"
            "seed intervals count seeds and test lesions."
        )


# --- subgroups ----------------------------------------------------------------------------------------


def render_subgroups(referee: dict | None) -> None:
    st.header("Subgroups")
    if referee is None:
        ui.missing("subgroup results", "referee.json")
        return
    sub = referee["subgroups"]
    if sub.get("status") == "not yet measured":
        st.info(f"**Not yet measured.** {sub.get('reason', '')} and run `qcnn referee`.", icon=":material/info:")
        return
    left, right = st.columns(2)
    grouping = left.radio(
        "Group by", list(GROUPINGS), format_func=GROUPINGS.get, horizontal=True, key="referee_grouping"
    )
    metric = right.radio(
        "Metric", list(sub["metrics"]), format_func=LABELS.get, horizontal=True, key="referee_subgroup_metric"
    )
    rows = []
    for g in sub["by"][grouping]:
        row = {"group": g["group"], "images": g["images"], "lesions": g["lesions"], "malignant": g["malignant"]}
        for k in MODEL_KINDS:
            value = g[k]["mean"][metric]
            row[MODEL_LABELS[k]] = "–" if value is None else f"{_pct(value)} {_ci(g[k]['ci95'][metric], signed=False)}"
        d = g["difference"]
        row["Δ QCNN − classical"] = (
            "–" if d["mean"][metric] is None else f"{100 * d['mean'][metric]:+.1f} {_ci(d['ci95'][metric])}"
        )
        row["verdict"] = _verdict(d["ci95"][metric])
        row["sample"] = "⚠ small" if g["small_sample"] else ""
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="referee_subgroups")
    small = [g["group"] for g in sub["by"][grouping] if g["small_sample"]]
    if small:
        st.warning(
            f"Small samples ({sub['small_sample_rule']}): {', '.join(small)}. Their intervals rest on few "
            "lesions; read them as rough.",
            icon=":material/warning:",
        )
    st.caption(
        "Threshold 0.5, percent, mean over seeds [95% interval over seeds and test lesions]. Recall is "
        "undefined for a group without malignant images, specificity for one without benign images. With many "
        "groups, a few intervals exclude 0 by chance alone (about 1 in 20)."
    )
