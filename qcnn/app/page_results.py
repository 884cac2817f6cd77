"""Results: reported vs reproduced tables and charts, ROC/PR curves, a live threshold, matched recall."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from qcnn import study
from qcnn.app import analysis, charts, referee_view, results, ui
from qcnn.app.page_timeline import reported_table
from qcnn.constants import THRESHOLD

TITLE = "Results: reported vs reproduced"
BAR_METRICS = ("accuracy", "precision", "recall", "f1", "auc")
TABLE_METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "balanced_accuracy", "auc")
VIEW_OPTIONS = {
    "mean": "mean over seeds (± SD), Δ with 95% intervals over seeds and lesions",
    "seed0": "seed 0 alone, with its lesion-only 95% interval",
}


def _tables(summary: dict, mode: str) -> None:
    left, right = st.container(key="wide_tables").columns([4, 7], gap="large")
    with left:
        st.markdown(f"**{ui.REPORTED}** · Experiment 4, one run")
        st.table(reported_table(study.EXPERIMENT_4, study.EXPERIMENT_4_DELTA), hide_index=True)
        st.caption("No intervals reported. Δ = QCNN − classical, as printed by the study.")
    with right:
        n = len(summary["seeds"])
        st.markdown(f"**{ui.REPRODUCED}** · {VIEW_OPTIONS[mode]}, {n} seed{'s' if n > 1 else ''}")
        st.table(analysis.reproduced_table(summary, mode, TABLE_METRICS), hide_index=True)
        st.caption(
            f"Test pool: {summary['n_test']:,} images, {summary['n_test_malignant']:,} malignant "
            f"({100 * summary['n_test_malignant'] / summary['n_test']:.1f} %). "
            + (
                f"Δ intervals: 95 %, {summary['difference'].get('interval_method', '')}; "
                f"{summary['bootstrap_unit']}-level bootstrap, {summary['n_bootstrap']:,} resamples."
                if mode == "mean"
                else f"Intervals: 95 %, seed 0 alone, {summary['bootstrap_unit']}-level bootstrap "
                f"({summary['n_bootstrap']:,} resamples): test-set sampling only, no training randomness."
            )
        )


def _charts(summary: dict, mode: str) -> None:
    values, errors, label = analysis.bar_inputs(summary, mode, BAR_METRICS)
    left, right = st.container(key="wide_charts").columns(2, gap="large")
    with left:
        st.markdown(f"**Both models, per metric** · bars: {ui.REPRODUCED} ({label}); ◇ {ui.REPORTED}")
        st.plotly_chart(charts.metric_bars(values, errors, BAR_METRICS, study.EXPERIMENT_4, label), key="bars")
    with right:
        st.markdown("**QCNN − classical** · ◆ reported vs reproduced with 95% intervals")
        st.plotly_chart(charts.delta_figure(analysis.delta_rows(summary)), key="deltas")
        st.caption("A difference is distinguishable from noise only if its interval stays clear of the 0 line.")


def _threshold(text: str) -> float:
    return round(float(text), 2)


def _valid_threshold(value: float) -> bool:
    return 0.01 <= value <= 0.99


UNDEFINED = "—"
UNDEFINED_PRECISION = (
    'Precision = true positives / images called malignant. "—": no image is called malignant at '
    "this threshold, so precision is undefined (not 0)."
)


def positives(conf: dict) -> int:
    """How many images a model calls malignant: precision is undefined when there are none."""
    return conf["tp"] + conf["fp"]


DELTA_COLUMN = "Δ QCNN − classical"


def live_table(thresholds: dict, confs: dict, metrics: dict) -> pd.DataFrame:
    """One row per metric (the thresholds first), one column per model and the difference.

    Metrics as rows keep the table four columns wide, so it fits a phone. Undefined precision is "—".
    """

    def shown(kind: str, m: str) -> str:
        if m == "precision" and not positives(confs[kind]):
            return UNDEFINED
        return charts.fmt_value(m, metrics[kind][m])

    def delta(m: str) -> str:
        if m == "precision" and not all(positives(confs[k]) for k in charts.KINDS):
            return UNDEFINED
        d = metrics["qcnn"][m] - metrics["classical"][m]
        return f"{d:+.4f}" if m == "auc" else f"{100 * d:+.2f} pts"

    rows = [["threshold"] + [f"{thresholds[k]:.2f}" for k in charts.KINDS] + [""]]
    rows += [[charts.METRIC_LABELS[m]] + [shown(k, m) for k in charts.KINDS] + [delta(m)] for m in TABLE_METRICS]
    return pd.DataFrame(rows, columns=["metric"] + [charts.MODEL_LABELS[k] for k in charts.KINDS] + [DELTA_COLUMN])


@st.fragment
def _threshold_explorer(summary: dict | None) -> None:
    """A fragment: moving a slider reruns this section only, not the page's tables and charts above."""
    st.header("Curves and a live threshold")
    seeds = results.available_seeds("predictions.csv")
    if not seeds:
        ui.missing("test-set predictions of both models", results.missing_run_file("predictions.csv"))
        return
    default = results.default_seed(seeds, summary)
    left, right = st.columns([1, 4], gap="large", vertical_alignment="center")
    ui.from_url("results_seed", "seed", default, int, lambda v: v in seeds)
    seed = left.selectbox(
        "Seed",
        seeds,
        key="results_seed",
        help="Which training seed's test predictions to explore (seed 0 is fixed in advance).",
    )
    ui.to_url("seed", seed, default)
    paired = results.load_paired_predictions(seed)
    if paired is None or not len(paired):  # a file being rewritten by the pipeline right now
        ui.missing(f"readable test-set predictions for seed {seed}", results.missing_run_file("predictions.csv", seed))
        return
    labels = paired.label.to_numpy()
    right.caption(
        "Each model gets its own threshold slider: the two are calibrated differently, so the same "
        "probability cut-off does not mean the same trade-off for both. 0.5 is the study's setting; "
        "the matched-recall table below compares them at equal recall instead. Everything in this "
        "section is recomputed live from predictions.csv."
    )
    thresholds, confs, metrics = {}, {}, {}
    cols = st.container(key="wide_thresholds").columns(2, gap="large")
    for col, kind in zip(cols, charts.KINDS, strict=True):
        with col:
            ui.from_url(f"threshold_{kind}", f"t_{kind}", THRESHOLD, _threshold, _valid_threshold)
            thresholds[kind] = st.slider(
                f"{charts.MODEL_LABELS[kind]} threshold", 0.01, 0.99, step=0.01, key=f"threshold_{kind}"
            )
            ui.to_url(f"t_{kind}", thresholds[kind], THRESHOLD, "{:.2f}".format)
            probs = paired[f"p_{kind}"].to_numpy()
            confs[kind], metrics[kind] = analysis.at_threshold(labels, probs, thresholds[kind])
            st.html(charts.confusion_html(confs[kind], kind, thresholds[kind]))
    live = live_table(thresholds, confs, metrics)
    st.markdown(f"**At these thresholds** · seed {seed}, {len(paired):,} test images")
    st.table(live, hide_index=True)
    if (live == UNDEFINED).any(axis=None):
        st.caption("— : precision undefined at this threshold.", help=UNDEFINED_PRECISION)
    curves = {k: analysis.model_curves(k, seed) for k in charts.KINDS}
    curves = {k: v for k, v in curves.items() if v}
    areas = {k: v["auc"] if v.get("auc") is not None else metrics[k]["auc"] for k, v in curves.items()}
    mid, right = st.container(key="wide_curves").columns(2, gap="large")
    with mid:
        st.markdown("**ROC curve**")
        roc = {k: (v["roc"]["fpr"], v["roc"]["tpr"]) for k, v in curves.items()}
        points = {k: (1 - metrics[k]["specificity"], metrics[k]["recall"]) for k in charts.KINDS}
        st.plotly_chart(charts.curve_figure(roc, "roc", points, areas=areas), key="roc")
    with right:
        st.markdown("**Precision–recall curve**")
        pr = {k: (v["pr"]["recall"], v["pr"]["precision"]) for k, v in curves.items()}
        points = {k: (metrics[k]["recall"], metrics[k]["precision"]) for k in charts.KINDS if positives(confs[k])}
        st.plotly_chart(charts.curve_figure(pr, "pr", points, prevalence=float(labels.mean())), key="pr")
    st.caption(
        "The dots mark each model at its slider's threshold. The curves cover every threshold at once: "
        "where they cross or overlap, neither model dominates."
    )


def _matched_recall(summary: dict) -> None:
    table = analysis.matched_recall_table(summary)
    if table is None:
        return
    st.header("At matched recall")
    seed = summary["matched_recall"].get("seed", summary.get("app_seed", 0))
    st.caption(
        f"Seed {seed}. Accuracy and precision at 0.5 depend on calibration. Here one model's threshold is "
        "moved until its recall equals the other's at 0.5; then precision and specificity compare like "
        "with like."
    )
    shown = table.copy()
    for col in shown.columns[1:]:
        shown[col] = [f"{v:.3f}" if "threshold" in col else f"{100 * v:.1f} %" for v in table[col]]
    st.table(shown, hide_index=True)


def _seeds(summary: dict) -> None:
    st.header("Every seed")
    per_seed = {k: summary["models"][k]["per_seed"] for k in charts.KINDS}
    st.plotly_chart(charts.seed_strip(per_seed, BAR_METRICS, summary.get("app_seed")), key="strip")
    st.caption(
        f"One point per training seed ({len(summary['seeds'])} seeds; the larger point is seed "
        f"{summary.get('app_seed', 0)}). The spread is how much a single run — like the study's — can move "
        "by chance alone."
    )


@st.fragment
def _reproduced(summary: dict) -> None:
    """Tables and charts of the summary; a fragment, so switching the view reruns this part only."""
    if len(summary["seeds"]) > 1:
        ui.from_url("results_view", "view", "mean", valid=lambda v: v in VIEW_OPTIONS)
        mode = st.radio(
            "Reproduced numbers", list(VIEW_OPTIONS), format_func=VIEW_OPTIONS.get, horizontal=True, key="results_view"
        )
        ui.to_url("view", mode, "mean")
    else:
        mode = "seed0"
        st.caption("Only one seed is summarised so far: its values with their lesion-bootstrap intervals.")
    _tables(summary, mode)
    _charts(summary, mode)


def render() -> None:
    ui.page_header(
        TITLE,
        "Experiment 4 of the study next to this project's reproduction: same metrics, same "
        "0.5 threshold, plus what one run cannot show — intervals, seeds, all thresholds.",
    )
    ui.model_legend()
    summary = results.load_summary()
    ui.synthetic_notice(summary)
    if summary is None:
        ui.missing("summary of the reproduced runs", "summary.json")
    else:
        _reproduced(summary)
    _threshold_explorer(summary)
    if summary is not None:
        _matched_recall(summary)
        _seeds(summary)
    referee = results.load_referee()
    referee_view.render_threshold(referee)
    referee_view.render_calibration(referee)
    referee_view.render_subgroups(referee)
