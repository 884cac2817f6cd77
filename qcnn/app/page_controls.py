"""Controls: which of the study's four moves matter, and is it the quantum part? (the controls matrix)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from qcnn.app import controls, experiment_charts, results, ui
from qcnn.app.style import METRIC_LABELS, fmt_value
from qcnn.ledger import wall_time_text

TITLE = "Controls: which of the four moves matter?"
METRIC_CHOICES = ("auc", "f1", "balanced_accuracy")


def _metric() -> str:
    """The chosen metric, kept in the URL so a view can be shared."""
    current = st.query_params.get("metric", "auc")
    metric = (
        st.segmented_control(
            "Metric",
            METRIC_CHOICES,
            default=current if current in METRIC_CHOICES else "auc",
            format_func=METRIC_LABELS.get,
            key="controls_metric",
        )
        or "auc"
    )
    st.query_params["metric"] = metric
    return metric


def _table(summary: dict, order: list[str], metric: str) -> pd.DataFrame:
    rows = []
    for variant in order:
        block = summary["variants"][variant]
        vs_q = controls.effect(summary, variant, metric)
        rows.append(
            {
                "variant": variant,
                "what it changes": block.get("description", ""),
                "seeds": len(block["seeds"]),
                METRIC_LABELS[metric]: fmt_value(metric, block["mean"][metric]),
                "vs QCNN": "—" if variant == "qcnn" else vs_q.text(),
                "trainable parameters": f"{block['parameters']['all']['trainable']:,}",
                "s / epoch": f"{block['seconds_per_epoch_median']:.1f}",
                "wall, all seeds (min)": f"{block['wall_seconds'] / 60:.0f}" if block.get("runs_timed") else "–",
            }
        )
    return pd.DataFrame(rows)


def render() -> None:
    ui.page_header(
        TITLE,
        "Each variant changes one thing of the reproduction's QCNN and is trained and evaluated like it: "
        f"{ui.REPRODUCED}. Differences count seeds and test lesions.",
    )
    summary = results.load_controls_summary()
    if summary is None:
        ui.missing(
            "controls matrix", results.CONTROLS_SUMMARY_FILE, f"qcnn sweep experiments/{controls.EXPERIMENT}.toml"
        )
        return
    ui.synthetic_notice(summary)
    done, total = controls.progress(summary)
    if done < total:
        one_seed = any(len(block["seeds"]) < 2 for block in summary["variants"].values())
        st.warning(
            f"**{done} of {total} runs finished.** The sweep resumes where it stopped "
            f"(`qcnn sweep experiments/{controls.EXPERIMENT}.toml`)"
            + ("; variants with one seed have no interval yet and are drawn hollow." if one_seed else "."),
            icon=":material/hourglass_top:",
        )
    metric = _metric()
    order = [v for v in summary["variants"]]

    st.subheader("The answers, from the numbers")
    st.markdown(
        f"**Which of the four moves matter?** On {METRIC_LABELS[metric]}: {controls.moves_answer(summary, metric)}"
    )
    st.markdown(f"**Is it the quantum part?** {controls.quantum_answer(summary, metric)}")

    st.subheader("Each variant against the full QCNN and against the classical control")
    st.plotly_chart(experiment_charts.forest(summary, metric, order), key="controls_forest")
    st.caption(summary.get("interval_method", ""))
    _first_seed(summary, order, metric)

    st.subheader("Parameters, cost and the mean over seeds")
    st.dataframe(_table(summary, order, metric), hide_index=True, width="stretch")
    rows, note = controls.machines(summary, order)
    if rows:
        with st.expander("Where each run trained"):
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(
        " ".join(filter(None, ["s / epoch: the median over all the variant's epochs.", note, wall_time_text(summary)]))
    )
    with st.expander("Every seed"):
        st.plotly_chart(experiment_charts.seed_points(summary, metric, order), key="controls_seeds")
    _precision_check(summary, metric)


def _first_seed(summary: dict, order: list[str], metric: str) -> None:
    """The first seed alone, one run as the study had, its interval counting test lesions only (no verdict)."""
    rows = controls.first_seed_rows(summary, order, metric)
    if not rows:
        return
    waiting = [v for v in order if len(summary["variants"][v]["seeds"]) < 2]
    verdicts = (
        f"The verdicts above wait for a second seed of {controls.join_names(waiting)}."
        if waiting
        else "Every variant has two or more seeds, so the verdicts above count training randomness too; this "
        "view is one run per variant, as the study had."
    )
    with st.expander(f"Seed {rows[0]['seed']} alone: test lesions only, no verdict"):
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        st.caption(
            "One training seed, its 95 % interval from the lesion bootstrap alone: it covers test-set sampling, "
            f"not training randomness, which the seeds show to be larger. {verdicts}"
        )


def _precision_check(summary: dict, metric: str) -> None:
    """The matrix trains its own baseline pair (in fp32); how far each seed lands from the reproduction's run."""
    checks = {
        k: summary["variants"][k].get("vs_reproduction") for k in ("qcnn", "classical") if k in summary["variants"]
    }
    checks = {k: c for k, c in checks.items() if c}
    if not checks:
        return
    precision = summary["variants"][next(iter(checks))]["train"]["precision"]
    st.subheader("The baseline pair against the reproduction")
    rows = [
        {"model": k, "seed": int(seed), f"Δ {METRIC_LABELS[metric]} (points)": round(100 * d[metric], 2)}
        for k, c in checks.items()
        for seed, d in c["per_seed_difference"].items()
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(
        f"This matrix trains its baseline pair in {precision} and the reproduction's runs used "
        f"{', '.join(next(iter(checks.values()))['reproduction_precision'])}: the same model, seed and data, "
        "so each row is what the change of precision (and the training randomness it reshuffles) moves. "
        "Every variant above is compared with this matrix's own pair, never across precisions."
    )
