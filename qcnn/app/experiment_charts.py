"""Figures of an experiment's summary: a forest plot of paired differences, per-seed points, learning curves."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from qcnn.app.charts import rgba
from qcnn.app.style import METRIC_LABELS, MODEL_COLOURS, MODEL_LABELS

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


def _size_axis(fig: go.Figure, sizes: list[int], study_n_train: int) -> None:
    """Log-scale training-set sizes, ticked at the measured sizes, reaching the study's size (marked)."""
    fig.add_vline(x=study_n_train, line=dict(color="#777", dash="dot", width=1.5))
    fig.add_annotation(  # on a log axis an annotation's x is log10 of the value
        x=math.log10(study_n_train),
        y=1,
        yref="paper",
        text=f"the study:<br>{study_n_train:,}",
        showarrow=False,
        xanchor="right",
        yanchor="top",
        font=dict(size=11, color="#555"),
    )
    ticks = sorted({*sizes, study_n_train})
    low, high = min(ticks), max(ticks)
    fig.update_xaxes(
        title="training images (log scale)",
        type="log",
        tickvals=ticks,
        ticktext=[f"{t:,}" for t in ticks],
        range=[math.log10(low / 1.25), math.log10(high * 1.25)],
    )


def _interval_stretches(points: list, kind: str) -> list[list]:
    """Maximal runs of neighbouring sizes that all have an interval for ``kind``: a band spans only those, so it
    never bridges a size measured on one seed."""
    stretches, current = [], []
    for p in points:
        if p.models[kind]["ci"] is None:
            current = []
        else:
            if not current:
                stretches.append(current)
            current.append(p)
    return stretches


def learning_curves(points: list, metric: str, study_n_train: int) -> go.Figure:
    """Each model's mean over seeds against the number of training images (log scale), every seed as a small
    point, the study's training-set size marked. The 95 % interval is a band over neighbouring sizes that have
    one, an error bar at a size whose neighbours do not; a mean from one seed is drawn hollow.
    ``points``: ``regime.CurvePoint``s sorted by size."""
    fig = go.Figure()
    xs = [p.n_train for p in points]
    for kind in MODEL_LABELS:
        colour = MODEL_COLOURS[kind]
        stretches = _interval_stretches(points, kind)
        for stretch in (s for s in stretches if len(s) > 1):
            upper = [100 * p.models[kind]["ci"][1] for p in stretch]
            lower = [100 * p.models[kind]["ci"][0] for p in stretch]
            fig.add_trace(
                go.Scatter(
                    x=[p.n_train for p in stretch] + [p.n_train for p in reversed(stretch)],
                    y=upper + lower[::-1],
                    fill="toself",
                    fillcolor=rgba(colour, 0.15),
                    mode="lines",
                    line=dict(width=0),
                    hoverinfo="skip",
                    name=f"{MODEL_LABELS[kind]} 95 % interval",
                    showlegend=False,
                )
            )
        alone = {s[0].n_train for s in stretches if len(s) == 1}
        means = [100 * p.models[kind]["mean"] for p in points]
        above, below = [], []
        for p, mean in zip(points, means, strict=True):
            ci = p.models[kind]["ci"] if p.n_train in alone else None
            above.append(100 * ci[1] - mean if ci else 0)
            below.append(mean - 100 * ci[0] if ci else 0)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=means,
                mode="lines+markers",
                name=MODEL_LABELS[kind],
                line=dict(color=colour, width=2.5),
                marker=dict(
                    size=9, symbol=["circle" if p.models[kind]["ci"] is not None else "circle-open" for p in points]
                ),
                error_y=dict(type="data", symmetric=False, array=above, arrayminus=below, color=colour, thickness=1.5),
                hovertemplate="%{x:,} images: %{y:.2f}<extra>" + MODEL_LABELS[kind] + " (mean)</extra>",
            )
        )
        seeds = [(p.n_train, s, v) for p in points for s, v in p.models[kind]["seeds"].items()]
        fig.add_trace(
            go.Scatter(
                x=[n for n, _, _ in seeds],
                y=[100 * v for _, _, v in seeds],
                mode="markers",
                marker=dict(color=colour, size=5, opacity=0.45),
                text=[f"seed {s}" for _, s, _ in seeds],
                hovertemplate="%{text}, %{x:,} images: %{y:.2f}<extra>" + MODEL_LABELS[kind] + "</extra>",
                name=f"{MODEL_LABELS[kind]}, each seed",
                showlegend=False,
            )
        )
    _size_axis(fig, xs, study_n_train)
    fig.update_yaxes(title=f"test {METRIC_LABELS[metric]} (×100)")
    return _legend_above(fig, height=380)


def difference_curve(points: list, metric: str, study_n_train: int) -> go.Figure:
    """QCNN − classical at each training-set size with its interval (seeds and test lesions); zero dashed."""
    fig = go.Figure()
    shown = [p for p in points if p.difference.mean is not None]
    defined = [p.difference.low is not None and not math.isnan(p.difference.low) for p in shown]
    fig.add_trace(
        go.Scatter(
            x=[p.n_train for p in shown],
            y=[100 * p.difference.mean for p in shown],
            mode="lines+markers",
            name="QCNN − classical",
            line=dict(color="#222", width=2),
            marker=dict(size=10, symbol=["circle" if d else "circle-open" for d in defined]),
            error_y=dict(
                type="data",
                symmetric=False,
                array=[
                    100 * (p.difference.high - p.difference.mean) if d else 0
                    for p, d in zip(shown, defined, strict=True)
                ],
                arrayminus=[
                    100 * (p.difference.mean - p.difference.low) if d else 0
                    for p, d in zip(shown, defined, strict=True)
                ],
                color="#222",
                thickness=1.5,
            ),
            hovertemplate="%{x:,} images: %{y:+.2f} points<extra></extra>",
        )
    )
    fig.add_hline(y=0, line=dict(color="#444", dash="dash", width=1))
    _size_axis(fig, [p.n_train for p in points], study_n_train)
    fig.update_yaxes(title=f"{METRIC_LABELS[metric]}: QCNN − classical (points)")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10), showlegend=False)
    return fig


def backbone_strength(backbones: list, metric: str) -> go.Figure:
    """Each model's test metric (interval as error bars) against its backbone's held-out balanced accuracy; a mean
    from one seed (no interval) is drawn hollow."""
    fig = go.Figure()
    trained = [b for b in sorted(backbones, key=lambda b: b.balanced_accuracy) if b.models]
    for kind in MODEL_LABELS:
        cis = [b.models[kind]["ci"] for b in trained]
        means = [b.models[kind]["mean"] for b in trained]
        fig.add_trace(
            go.Scatter(
                x=[b.balanced_accuracy for b in trained],
                y=[100 * m for m in means],
                mode="lines+markers",
                name=MODEL_LABELS[kind],
                line=dict(color=MODEL_COLOURS[kind], width=2),
                marker=dict(size=10, symbol=["circle" if c else "circle-open" for c in cis]),
                text=[b.name for b in trained],
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=[100 * (c[1] - m) if c else 0 for c, m in zip(cis, means, strict=True)],
                    arrayminus=[100 * (m - c[0]) if c else 0 for c, m in zip(cis, means, strict=True)],
                    color=MODEL_COLOURS[kind],
                ),
                hovertemplate="%{text}: %{y:.2f}<extra>" + MODEL_LABELS[kind] + "</extra>",
            )
        )
    for b in backbones:
        fig.add_vline(
            x=b.balanced_accuracy,
            line=dict(color="#999", dash="dot", width=1),
            annotation_text=b.name,
            annotation_position="bottom right",
        )
    fig.update_xaxes(title="backbone's held-out balanced accuracy (benign diagnoses)")
    fig.update_yaxes(title=f"test {METRIC_LABELS[metric]} (×100)")
    return _legend_above(fig, height=340)


def _legend_above(fig: go.Figure, height: int) -> go.Figure:
    """The experiment charts' common frame: tight margins, the legend in one row above the plot."""
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
    )
    return fig
