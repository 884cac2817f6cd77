"""Quantum hardware: the seed-0 QCNN under finite shots and gate noise, its cost, and its Fourier spectrum.

Reads results/shots.json, noise.json and fourier.json (``qcnn hardware shots|noise|fourier``).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from qcnn.app import ui
from qcnn.app.charts import _finish, rgba
from qcnn.app.results import read_json, results_dir
from qcnn.app.style import METRIC_LABELS, MODEL_COLOURS, fmt_value

TITLE = "Quantum hardware: shots, noise, cost, and the function the circuit computes"
METRICS = ("auc", "balanced_accuracy", "f1")
DEFAULT_SHOT_RATE = 1_000.0  # shots per second
RATE_ASSUMPTION = (
    "1,000 shots per second: the order of a superconducting device's repetition rate "
    "(about 1 ms per shot with reset and readout), with no queueing, compilation or "
    "circuit-loading overhead."
)
EXACT_COLOUR = "#222222"
RANDOM_COLOUR = "#9A9A9A"


def _metric_figure(series: dict[str, list[tuple[float, dict]]], exact: dict, metric: str, x_title: str) -> go.Figure:
    """``metric`` against a log-scaled x for each named series of (x, metrics), the exact value as a line."""
    fig = go.Figure()
    fig.add_hline(
        y=exact[metric]["mean"],
        line=dict(color=EXACT_COLOUR, dash="dash"),
        annotation_text=f"exact {fmt_value(metric, exact[metric]['mean'])}",
        annotation_position="bottom right",
    )
    for name, rows in series.items():
        ys = [m[metric]["mean"] for _, m in rows]
        lo, hi = zip(*(m[metric]["ci95_draws_and_lesions"] for _, m in rows), strict=True)
        fig.add_trace(
            go.Scatter(
                x=[x for x, _ in rows],
                y=ys,
                name=name,
                mode="lines+markers",
                error_y=dict(
                    type="data",
                    array=[h - y for h, y in zip(hi, ys, strict=True)],
                    arrayminus=[y - low for y, low in zip(ys, lo, strict=True)],
                ),
            )
        )
    fig.update_xaxes(title=x_title, type="log")
    fig.update_yaxes(title=METRIC_LABELS[metric])
    return _finish(fig, height=320, title=METRIC_LABELS[metric])


def show_shots(shots: dict) -> None:
    st.subheader("Finite shots")
    st.markdown(
        f"On hardware each patch circuit's 256 probabilities are estimated from S measurements. "
        f"Here they are drawn from the exact distribution ({shots['n_draws']} seeded draws per S), and "
        f"the rest of the model runs unchanged, on all {shots['n_test']:,} test images. Bars: 95 % "
        f"interval over shot draws and lesion resamples. Dashed: the exact model."
    )
    exact = next(e for e in shots["entries"] if e["shots"] is None)["metrics"]
    finite = [e for e in shots["entries"] if e["shots"] is not None]
    cols = st.columns(len(METRICS))
    for col, metric in zip(cols, METRICS, strict=True):
        col.plotly_chart(
            _metric_figure({"QCNN": [(e["shots"], e["metrics"]) for e in finite]}, exact, metric, "shots per circuit"),
            width="stretch",
        )
    rows = [
        {
            "shots per circuit": e["label"],
            **{
                METRIC_LABELS[m]: f"{fmt_value(m, e['metrics'][m]['mean'])} "
                f"[{fmt_value(m, e['metrics'][m]['ci95_draws_and_lesions'][0])}, "
                f"{fmt_value(m, e['metrics'][m]['ci95_draws_and_lesions'][1])}]"
                for m in METRICS
            },
            "mean |Δ probability|": f"{e['mean_abs_probability_change']:.4f}",
        }
        for e in shots["entries"]
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    check = shots.get("exact_vs_evaluation")
    if check:
        st.caption(
            f"The exact row is the float32 model; its probabilities differ from the main evaluation's "
            f"`{check['predictions_file']}` by at most {check['max_abs_difference']:.1e}."
        )


def _duration(seconds: float) -> str:
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.1f} s"


def show_budget(shots: dict) -> None:
    st.subheader("What it would cost on a device")
    ps = shots["parameter_shift"]
    st.markdown(
        f"One image is {shots['budget'][0]['circuits_per_image']} circuits (one per patch), so **196 × S shots**. "
        f"Training with gradients estimated on the device by the parameter-shift rule needs, per patch, "
        f"`{ps['formula']}` = 1 + 2·{ps['n_weights']} + 2·{ps['uploads']}·{ps['n_angles']} = "
        f"**{ps['per_patch']} circuits** (two shifted circuits per gate parameter; each angle is encoded "
        f"{ps['uploads']} times), for the {shots['n_train']:,} training images of one epoch."
    )
    rate = st.number_input(
        "Device rate (shots per second)",
        min_value=1.0,
        value=DEFAULT_SHOT_RATE,
        step=100.0,
        key="hardware_rate",
        help=RATE_ASSUMPTION,
    )
    st.caption(f"Default assumption: {RATE_ASSUMPTION}")
    rows = [
        {
            "shots per circuit": f"{b['shots']:,}",
            "shots per image": f"{b['per_image']:,}",
            "time per image": _duration(b["per_image"] / rate),
            f"test pool ({shots['n_test']:,} images)": f"{b['test_pool']:,}",
            "time, test pool": _duration(b["test_pool"] / rate),
            "one training epoch": f"{b['training_epoch']:,}",
            "time, one epoch": _duration(b["training_epoch"] / rate),
        }
        for b in shots["budget"]
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def show_noise(noise: dict) -> None:
    st.subheader("Gate and readout noise")
    st.markdown(
        f"**Noise model.** {noise['noise_model']} Per circuit: {noise['gates_per_circuit']['single_qubit']} "
        f"single-qubit gates and {noise['gates_per_circuit']['cnot']} CNOTs, so "
        f"{noise['depolarizing_channels_per_circuit']} depolarizing channels. Exact density-matrix "
        f"simulation (infinitely many shots) of a fixed, seeded sample of {noise['n_images']} test images "
        f"({noise['n_malignant']} malignant); bars: 95 % lesion-bootstrap interval of that sample."
    )
    exact = noise["exact"]["metrics"]
    by_readout: dict[str, list] = {}
    for e in noise["entries"]:
        if e["gate_error"] == 0:
            continue
        r = e["readout_error"]
        name = (
            "no readout error"
            if not (r["p_read1_given0"] or r["p_read0_given1"])
            else f"readout error {100 * r['p_read1_given0']:g} % / {100 * r['p_read0_given1']:g} %"
        )
        by_readout.setdefault(name, []).append((e["gate_error"], e["metrics"]))
    cols = st.columns(len(METRICS))
    for col, metric in zip(cols, METRICS, strict=True):
        col.plotly_chart(
            _metric_figure(by_readout, exact, metric, "depolarizing probability per gate"), width="stretch"
        )
    rows = [
        {
            "gate error p": f"{e['gate_error']:g}",
            "readout P(1|0) / P(0|1)": f"{e['readout_error']['p_read1_given0']:g} / "
            f"{e['readout_error']['p_read0_given1']:g}",
            **{METRIC_LABELS[m]: fmt_value(m, e["metrics"][m]["mean"]) for m in METRICS},
            "mean |Δ probability|": f"{e['mean_abs_probability_change']:.4f}",
        }
        for e in noise["entries"]
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _spectrum_figure(fourier: dict) -> go.Figure:
    fig = go.Figure()
    for name, colour in (("trained", MODEL_COLOURS["qcnn"]), ("random_weights", RANDOM_COLOUR)):
        s = fourier[name]
        share = [p / s["variance"] for p in s["power_by_order"][1:]]
        fig.add_trace(go.Bar(x=s["orders"][1:], y=share, name=name.replace("_", " "), marker_color=rgba(colour, 0.8)))
    fig.update_xaxes(title="frequency order |ω|₁", dtick=1)
    fig.update_yaxes(title="share of variance")
    return _finish(fig, height=340, title="Power by frequency order", barmode="group")


def _cumulative_figure(fourier: dict) -> go.Figure:
    fig = go.Figure()
    for name, colour in (("trained", MODEL_COLOURS["qcnn"]), ("random_weights", RANDOM_COLOUR)):
        s = fourier[name]
        fig.add_trace(
            go.Scatter(
                x=s["orders"],
                y=s["variance_share_up_to_order"],
                name=name.replace("_", " "),
                mode="lines+markers",
                line=dict(color=colour),
            )
        )
    fig.update_xaxes(title="frequency order up to", dtick=1)
    fig.update_yaxes(title="cumulative share of variance", range=[0, 1.02])
    return _finish(fig, height=340, title="Share of variance below each order")


def show_fourier(fourier: dict) -> None:
    st.subheader("The function the circuit computes")
    trained = fourier["trained"]
    st.markdown(
        "Each angle enters through one RY gate per upload, so the circuit's readout r·p(x) (r = 256 × the "
        "classifier's weights: the logit is the bias plus its mean over the patches) is a trigonometric "
        "polynomial with integer frequencies ω ∈ {−2,…,2}⁸. Its exact spectrum comes from the 5⁸ = 390,625-point "
        f"grid and an FFT (reconstruction error {trained['reconstruction_max_abs_error']:.1e}). "
        f"The trained circuit puts **{100 * trained['variance_share_up_to_order'][2]:.1f} %** of its variance in "
        f"orders 1–2 (a random-weight circuit: {100 * fourier['random_weights']['variance_share_up_to_order'][2]:.1f}"
        " %)."
    )
    c1, c2 = st.columns(2)
    c1.plotly_chart(_spectrum_figure(fourier), width="stretch")
    c2.plotly_chart(_cumulative_figure(fourier), width="stretch")
    rows = [
        {
            "ω": str(t["frequency"]),
            "order": t["order"],
            "amplitude (cosine term)": f"{t['amplitude']:.4f}",
            "share of variance": f"{100 * t['variance_share']:.2f} %",
        }
        for t in trained["largest"][:12]
    ]
    st.markdown("**Largest terms of the trained circuit** (each ±ω pair once)")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    _surrogate_reach(fourier.get("surrogate"), trained)


def _surrogate_reach(reach: dict | None, trained: dict) -> None:
    """How much of the circuit's function the controls' dequantised surrogate could imitate at best."""
    if not isinstance(reach, dict):
        st.caption("The `fourier` surrogate's reach is not in this fourier.json: run `qcnn hardware fourier` again.")
        return
    lowest = next(order for order, n in enumerate(reach["n_frequencies_by_order"]) if n)
    below = trained["variance_share_up_to_order"][lowest - 1] if lowest > 0 else 0.0
    st.markdown(
        f"**A classical Fourier model on the same angles.** The controls' `fourier` surrogate reads "
        f"cos(ω·x) and sin(ω·x) for {reach['n_features']} seeded random ω ∈ {{−2,…,2}}⁸: "
        f"{reach['distinct_nonzero_frequencies']:,} of the circuit's {sum(trained['n_frequencies_by_order']) - 1:,} "
        f"non-zero frequencies (±ω), none of order below {lowest}, where the trained circuit keeps "
        f"{100 * below:.1f} % of its variance. The best linear readout of those features (least squares under "
        f"uniform angles) keeps **{100 * reach['trained_variance_captured']:.2f} %** of the trained circuit's "
        f"variance ({100 * reach['random_weights_variance_captured']:.2f} % of a random-weight circuit's): an "
        "upper bound on how closely the surrogate can imitate this circuit's function, before any training. "
        "What it learns instead is its own function of the same angles; the Controls page measures how well "
        "that classifies."
    )


def render() -> None:
    ui.page_header(
        TITLE,
        "Every number in the study comes from exact simulation. What if the circuit ran on a "
        "quantum computer: measured with finitely many shots, with noisy gates?",
    )
    folder = results_dir()
    for file, what, part, show in (
        ("shots.json", "finite-shot results", "shots", (show_shots, show_budget)),
        ("noise.json", "noise results", "noise", (show_noise,)),
        ("fourier.json", "Fourier spectrum", "fourier", (show_fourier,)),
    ):
        data = read_json(folder / file)
        if data is None:
            ui.missing(what, file, f"qcnn hardware {part}")
            continue
        if not data.get("complete", True):
            st.warning(
                f"`{file}` is partial: the run that writes it (`qcnn hardware {part}`) had not finished "
                "every setting when it was saved; what is shown is what it had computed.",
                icon=":material/hourglass_empty:",
            )
        for section in show:
            section(data)
