"""Timeline: the study's four experiments — what was tried, what broke, what survived."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from qcnn import study
from qcnn.app import charts, controls, results, ui


def _title(experiments: tuple[dict, ...]) -> str:
    """The page title, counted from the study's experiments (a partial result is not a dead end)."""
    count = {status: sum(e["status"] == status for e in experiments) for status in ("failed", "partial", "success")}
    words = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
    parts = [f"{words.get(count['failed'], count['failed'])} dead end{'s' if count['failed'] != 1 else ''}"]
    if count["partial"]:
        parts.append(
            f"{words.get(count['partial'], count['partial'])} partial success" + ("es" if count["partial"] != 1 else "")
        )
    return f"Timeline: {words.get(len(experiments), len(experiments))} experiments, " + ", ".join(parts)


TITLE = _title(study.EXPERIMENTS)
STATUS_ICONS = {"failed": "✖", "partial": "◐", "success": "✔"}


def reported_table(results: dict, with_delta: dict | None = None) -> pd.DataFrame:
    """A reported results table (metric rows; QCNN, classical, and Δ or winner columns), for display."""
    rows = []
    for m in study.REPORTED_METRICS:
        q, c = results["qcnn"][m], results["classical"][m]
        fmt = (lambda v: f"{v:.4f}") if m == "auc" else (lambda v: f"{100 * v:.2f} %")
        row = {"metric": charts.METRIC_LABELS[m], "QCNN": fmt(q), "classical": fmt(c)}
        if with_delta is not None:
            d = with_delta[m]
            row["Δ"] = f"{100 * d:+.2f} %" if m != "auc" else f"{100 * d:+.1f} %"  # as the study prints it
        else:
            row["winner"] = "QCNN" if q > c else "classical"
        rows.append(row)
    return pd.DataFrame(rows)


def _experiment(e: dict, controls_summary: dict | None) -> None:
    colour = charts.STATUS_COLOURS[e["status"]]
    label = f"{STATUS_ICONS[e['status']]} Experiment {e['number']} · {e['name']} — {e['status']}"
    with st.expander(label, expanded=e["number"] == 4):
        st.markdown(
            f"<span style='color:{colour};font-weight:600'>{e['status'].upper()}</span>", unsafe_allow_html=True
        )
        st.markdown(f"**What was tried.** {e['tried']}")
        st.markdown(f"**Architecture.** {e['architecture']}")
        st.markdown(f"**What happened.** {e['outcome']}")
        st.markdown(
            "**Nearest reproduced analogue** (this project's runs): "
            f"{controls.analogue_text(controls_summary, e['number'])}."
        )
        if e["results"] == "EXPERIMENT_3":
            t = study.EXPERIMENT_3_TEST
            st.markdown(
                f"**As the study reports it** (test set of {t['n']:,} unseen images, {t['n_malignant']:,} malignant):"
            )
            st.table(reported_table(study.EXPERIMENT_3), hide_index=True, width="content")
            st.caption(
                f"Training cost: about {study.SECONDS_PER_EPOCH['qcnn']:.0f} s per epoch for the QCNN "
                f"(PennyLane default.qubit on a GPU) against about {study.SECONDS_PER_EPOCH['classical']:.0f} s "
                f"for the classical control — {study.SLOWDOWN} slower."
            )
        elif e["results"] == "EXPERIMENT_4":
            st.markdown("**The four moves.**")
            for i, (move, detail) in enumerate(study.FOUR_MOVES, 1):
                st.markdown(f"{i}. **{move}** — {detail}")
            st.markdown("**As the study reports it** (held-out test set):")
            st.table(reported_table(study.EXPERIMENT_4, study.EXPERIMENT_4_DELTA), hide_index=True, width="content")
            st.caption("The Results page sets these numbers beside the reproduction, with confidence intervals.")


def render() -> None:
    ui.page_header(
        TITLE,
        "What the study tried, what broke and what survived — as the study reports it. "
        "Hover a point for details; open an experiment below for its architecture and numbers.",
    )
    st.plotly_chart(charts.timeline_figure(study.EXPERIMENTS), key="timeline", config={"displayModeBar": False})
    controls_summary = results.load_controls_summary()
    for e in study.EXPERIMENTS:
        _experiment(e, controls_summary)
    st.subheader("Reported findings of Experiment 4")
    for i, (name, text) in enumerate(study.FINDINGS, 1):
        st.markdown(f"{i}. **{name}.** {text}")
    st.subheader("What a careful reader asks")
    st.markdown("\n".join(f"- {q}" for q in study.OPEN_QUESTIONS))
    st.caption(
        "The Results, Training curves and Disagreements pages take up the first two and the generalisation "
        "claim with this project's reproduction."
    )
