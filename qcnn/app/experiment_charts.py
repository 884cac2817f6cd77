"""Figures of an experiment's summary: a forest plot of paired differences, per-seed points."""

from __future__ import annotations

import plotly.graph_objects as go

from qcnn.app.style import METRIC_LABELS, MODEL_COLOURS

COMPARISONS = {
    "vs_qcnn": ("against the full QCNN", MODEL_COLOURS["qcnn"]),
    "vs_classical": ("against the classical control", MODEL_COLOURS["classical"]),
}


def forest(summary: dict, metric: str, order: list[str]) -> go.Figure:
    """Each variant's mean difference (points) with its interval, against the QCNN and the control.

    A variant measured on one seed has no interval: its point is drawn hollow.
    """
    fig = go.Figure()
    for offset, (key, (label, colour)) in zip((-0.17, 0.17), COMPARISONS.items(), strict=True):
        ys, xs, lo, hi, hollow = [], [], [], [], []
        for i, variant in enumerate(order):
            block = summary["variants"].get(variant, {}).get(key)
            if not block:
                continue
            mean = 100 * block["mean"][metric]
            low, high = block["ci95"][metric]
            ys.append(i + offset)
            xs.append(mean)
            defined = low is not None and high is not None
            lo.append(mean - 100 * low if defined else 0)
            hi.append(100 * high - mean if defined else 0)
            hollow.append(not defined)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                name=label,
                marker=dict(color=colour, size=10, symbol=["circle-open" if h else "circle" for h in hollow]),
                error_x=dict(type="data", symmetric=False, array=hi, arrayminus=lo, color=colour, thickness=2),
                hovertemplate="%{x:+.2f} points<extra>" + label + "</extra>",
            )
        )
    fig.add_vline(x=0, line=dict(color="#444", dash="dash", width=1))
    fig.update_yaxes(tickvals=list(range(len(order))), ticktext=order, autorange="reversed")
    fig.update_xaxes(title=f"{METRIC_LABELS[metric]}: variant − reference (points, 95 % interval)", zeroline=False)
    fig.update_layout(
        height=80 + 38 * len(order),
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0),
    )
    return fig


def seed_points(summary: dict, metric: str, order: list[str]) -> go.Figure:
    """Every seed's value of ``metric`` per variant: the spread behind the means."""
    fig = go.Figure()
    for i, variant in enumerate(order):
        block = summary["variants"].get(variant)
        if not block:
            continue
        values = list(block["per_seed"].items())
        fig.add_trace(
            go.Scatter(
                x=[100 * v[metric] for _, v in values],
                y=[i + 0.12 * (j - (len(values) - 1) / 2) for j in range(len(values))],  # jittered: no overlap
                mode="markers",
                marker=dict(color="#555", size=8, opacity=0.75),
                showlegend=False,
                text=[f"seed {s}" for s, _ in values],
                hovertemplate="%{text}: %{x:.2f}<extra>" + variant + "</extra>",
            )
        )
    fig.update_yaxes(tickvals=list(range(len(order))), ticktext=order, autorange="reversed")
    fig.update_xaxes(title=f"{METRIC_LABELS[metric]} (×100), each seed")
    fig.update_layout(height=80 + 30 * len(order), margin=dict(l=10, r=10, t=10, b=10))
    return fig
