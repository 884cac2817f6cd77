"""Plotly figure builders for the app, in the model colours of ``qcnn.app.style`` (defined once there).

Builders take plain data (dicts, dataframes) and return a ``go.Figure``; they never read files.
Metric values are fractions in [0, 1]; differences are shown in percentage points (×100), as the
study prints them (its AUC delta "+0.5 %" is 0.005 AUC units, i.e. 0.5 points on the same scale).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from qcnn.constants import N_QUBITS, THRESHOLD
from qcnn.app.style import (  # noqa: F401  (re-exported: the colours and labels live in style.py)
    CELL_COLOURS,
    KINDS,
    METRIC_LABELS,
    MODEL_COLOURS,
    MODEL_LABELS,
    REPORTED_COLOUR,
    REPRODUCED_COLOUR,
    STATUS_COLOURS,
    fmt_value,
)

SEED_OPACITY = 0.35
# Paul Tol's "muted" qualitative palette (colour-blind safe) for categories such as outcomes; grey = other.
OUTCOME_PALETTE = ("#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933", "#AA4499")
OTHER_OUTCOME_COLOUR = "#DDDDDD"
PHOTO_JPEG_QUALITY = 90  # a 224 x 224 photo as ~20 kB of JPEG; as a z array it was ~200 kB of JSON


def _finish(fig: go.Figure, height: int = 380, title: str | None = None, **layout) -> go.Figure:
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=50 if title else 20, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        **({"title": dict(text=title, x=0, xanchor="left")} if title else {}),
        **layout,
    )
    return fig


def rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


# --- timeline -----------------------------------------------------------------------------------


def timeline_figure(experiments: Iterable[Mapping]) -> go.Figure:
    """The four experiments in order, each a marker coloured by its status."""
    experiments = list(experiments)
    fig = go.Figure()
    xs = [e["number"] for e in experiments]
    fig.add_trace(
        go.Scatter(
            x=xs, y=[0] * len(xs), mode="lines", line=dict(color="#CCCCCC", width=4), hoverinfo="skip", showlegend=False
        )
    )
    for status, colour in STATUS_COLOURS.items():
        chosen = [e for e in experiments if e["status"] == status]
        if not chosen:
            continue
        fig.add_trace(
            go.Scatter(
                x=[e["number"] for e in chosen],
                y=[0] * len(chosen),
                mode="markers+text",
                name=status,
                marker=dict(size=34, color=colour, line=dict(color="white", width=3)),
                text=[str(e["number"]) for e in chosen],
                textfont=dict(color="white", size=15),
                textposition="middle center",
                customdata=[[e["name"], e["tried"], e["outcome"]] for e in chosen],
                hovertemplate="<b>Experiment %{x}: %{customdata[0]}</b><br>tried: %{customdata[1]}"
                "<br>outcome: %{customdata[2]}<extra>" + status + "</extra>",
            )
        )
    for e in experiments:
        fig.add_annotation(x=e["number"], y=0.55, text=f"<b>{e['name']}</b>", showarrow=False, font=dict(size=14))
        fig.add_annotation(
            x=e["number"],
            y=-0.55,
            text=e["status"].upper(),
            showarrow=False,
            font=dict(size=12, color=STATUS_COLOURS[e["status"]]),
        )
    fig.update_xaxes(visible=False, range=[min(xs) - 0.6, max(xs) + 0.6])
    fig.update_yaxes(visible=False, range=[-1, 1])
    fig.update_traces(hoverlabel=dict(align="left"))
    return _finish(fig, height=230, hovermode="closest")


# --- results ------------------------------------------------------------------------------------


def metric_bars(
    values: Mapping[str, Mapping[str, float]],
    errors: Mapping[str, Mapping[str, tuple[float, float]]],
    metrics: Iterable[str],
    reported: Mapping[str, Mapping[str, float]] | None = None,
    error_label: str = "",
) -> go.Figure:
    """Grouped bars per metric for both models; ``errors[kind][metric] = (lo, hi)`` as absolute bounds.

    Reported values (the study) are drawn as open diamonds over the matching model's bar.
    """
    metrics = list(metrics)
    labels = [METRIC_LABELS.get(m, m) for m in metrics]
    fig = go.Figure()
    for kind in KINDS:
        y = np.array([values[kind][m] for m in metrics], dtype=float)
        # A score lives in [0, 1]: mean ± SD can run past 1 (or below 0), the data cannot.
        lo = np.clip(np.array([errors[kind][m][0] for m in metrics], dtype=float), 0.0, 1.0)
        hi = np.clip(np.array([errors[kind][m][1] for m in metrics], dtype=float), 0.0, 1.0)
        fig.add_trace(
            go.Bar(
                x=labels,
                y=y,
                name=f"{MODEL_LABELS[kind]} · reproduced",
                marker_color=MODEL_COLOURS[kind],
                offsetgroup=kind,
                legendgroup=kind,
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=np.maximum(hi - y, 0),
                    arrayminus=np.maximum(y - lo, 0),
                    color="#222222",
                    thickness=1.5,
                    width=5,
                ),
                customdata=np.stack([lo, hi], axis=-1),
                hovertemplate="%{x}: %{y:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}]<extra>"
                + MODEL_LABELS[kind]
                + " · "
                + error_label
                + "</extra>",
            )
        )
    if reported:
        for kind in KINDS:
            ry = [reported[kind].get(m) for m in metrics]
            fig.add_trace(
                go.Scatter(
                    x=labels,
                    y=ry,
                    mode="markers",
                    name=f"{MODEL_LABELS[kind]} · reported (study)",
                    offsetgroup=kind,
                    legendgroup=kind,
                    marker=dict(symbol="diamond-open", size=13, color=MODEL_COLOURS[kind], line=dict(width=2.5)),
                    hovertemplate="%{x}: %{y:.4f}<extra>" + MODEL_LABELS[kind] + " · reported (study)</extra>",
                )
            )
    fig.update_yaxes(range=[0, 1.05], title="score (0–1)")
    return _finish(fig, height=420, barmode="group", scattermode="group", bargap=0.25)


def delta_figure(rows: pd.DataFrame) -> go.Figure:
    """QCNN minus classical per metric, in points (×100).

    ``rows``: metric, reported, seed0, seed0_lo, seed0_hi, mean, mean_lo, mean_hi (fractions; NaN allowed).
    """
    labels = [METRIC_LABELS.get(m, m) for m in rows.metric]
    fig = go.Figure()
    fig.add_vline(x=0, line=dict(color="#888888", width=1.5))
    y = np.arange(len(rows))

    def points(col: str) -> np.ndarray:
        return 100 * rows[col].to_numpy(dtype=float)

    if {"mean", "mean_lo", "mean_hi"} <= set(rows):
        v, lo, hi = points("mean"), points("mean_lo"), points("mean_hi")
        fig.add_trace(
            go.Scatter(
                x=v,
                y=y + 0.18,
                mode="markers",
                name="reproduced · mean over seeds (95% CI: seeds and lesions)",
                marker=dict(symbol="square", size=11, color=REPRODUCED_COLOUR),
                error_x=dict(
                    type="data",
                    symmetric=False,
                    array=hi - v,
                    arrayminus=v - lo,
                    color=REPRODUCED_COLOUR,
                    thickness=2,
                    width=4,
                ),
                customdata=np.stack([lo, hi], -1),
                text=labels,
                hovertemplate="%{text}: %{x:+.2f} pts [%{customdata[0]:+.2f}, %{customdata[1]:+.2f}]"
                "<extra>reproduced · seed mean</extra>",
            )
        )
    v, lo, hi = points("seed0"), points("seed0_lo"), points("seed0_hi")
    fig.add_trace(
        go.Scatter(
            x=v,
            y=y,
            mode="markers",
            name="reproduced · seed 0 only (lesion-only 95% CI)",
            marker=dict(symbol="circle", size=10, color="#666666"),
            error_x=dict(
                type="data", symmetric=False, array=hi - v, arrayminus=v - lo, color="#666666", thickness=1.5, width=4
            ),
            customdata=np.stack([lo, hi], -1),
            text=labels,
            hovertemplate="%{text}: %{x:+.2f} pts [%{customdata[0]:+.2f}, %{customdata[1]:+.2f}]"
            "<extra>reproduced · seed 0</extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=points("reported"),
            y=y - 0.18,
            mode="markers",
            name="reported (study)",
            text=labels,
            marker=dict(symbol="diamond", size=13, color=REPORTED_COLOUR, line=dict(color="#555555", width=1)),
            hovertemplate="%{text}: %{x:+.2f} pts<extra>reported (study)</extra>",
        )
    )
    fig.update_yaxes(tickvals=y, ticktext=labels, autorange="reversed")
    fig.update_xaxes(title="QCNN − classical (points; AUC × 100)", zeroline=False)
    return _finish(fig, height=80 + 62 * len(rows))


def curve_figure(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    kind_of_curve: str,
    points: Mapping[str, tuple[float, float]] | None = None,
    prevalence: float | None = None,
    areas: Mapping[str, float] | None = None,
) -> go.Figure:
    """ROC (x = FPR, y = TPR) or precision-recall (x = recall, y = precision) of both models.

    ``points[kind] = (x, y)`` marks each model's operating point at the chosen threshold.
    """
    roc = kind_of_curve == "roc"
    fig = go.Figure()
    if roc:
        fig.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[0, 1],
                mode="lines",
                line=dict(color="#BBBBBB", dash="dot"),
                name="chance",
                hoverinfo="skip",
            )
        )
    elif prevalence is not None:
        fig.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[prevalence, prevalence],
                mode="lines",
                name="chance (prevalence)",
                line=dict(color="#BBBBBB", dash="dot"),
                hoverinfo="skip",
            )
        )
    for kind in KINDS:
        if kind not in curves:
            continue
        x, y = curves[kind]
        name = MODEL_LABELS[kind] + (f" (AUC {areas[kind]:.3f})" if areas and kind in areas else "")
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                name=name,
                legendgroup=kind,
                line=dict(color=MODEL_COLOURS[kind], width=2.5, shape="hv" if not roc else None),
                hovertemplate=("FPR %{x:.3f}, TPR %{y:.3f}" if roc else "recall %{x:.3f}, precision %{y:.3f}")
                + "<extra></extra>",
            )
        )
        if points and kind in points:
            px_, py_ = points[kind]
            fig.add_trace(
                go.Scatter(
                    x=[px_],
                    y=[py_],
                    mode="markers",
                    legendgroup=kind,
                    showlegend=False,
                    marker=dict(size=13, color=MODEL_COLOURS[kind], line=dict(color="white", width=2)),
                    hovertemplate=MODEL_LABELS[kind] + " at the chosen threshold<extra></extra>",
                )
            )
    fig.update_xaxes(
        title="false positive rate (1 − specificity)" if roc else "recall (sensitivity)", range=[-0.01, 1.01]
    )
    fig.update_yaxes(title="true positive rate (recall)" if roc else "precision", range=[-0.01, 1.02])
    fig = _finish(fig, height=400)
    # Where the curves leave room: bottom right of a ROC plot, top right of a PR plot.
    fig.update_layout(
        legend=dict(
            orientation="v",
            x=0.98,
            xanchor="right",
            y=0.03 if roc else 0.98,
            yanchor="bottom" if roc else "top",
            bgcolor="rgba(255,255,255,0.75)",
        )
    )
    return fig


CONFUSION_CELLS = (("tp", "true positive"), ("fn", "false negative"), ("fp", "false positive"), ("tn", "true negative"))


def confusion_html(conf: Mapping[str, int], kind: str, threshold: float) -> str:
    """2 × 2 counts as a small HTML table (rows = actual, columns = predicted), shaded by count.

    Plain HTML rather than a plotly heatmap: a threshold slider redraws it on every step, and two
    extra plotly charts cost the browser more than everything else the step changes.
    """
    top = max(max(conf[k] for k, _ in CONFUSION_CELLS), 1)
    cells = []
    for key, name in CONFUSION_CELLS:
        alpha = 0.12 + 0.63 * conf[key] / top
        colour = "white" if alpha > 0.45 else "#111"
        cells.append(
            f"<td style='background:{rgba(MODEL_COLOURS[kind], alpha)};color:{colour};text-align:center;"
            f"padding:10px 6px'><b>{conf[key]:,}</b><br><small>{name}</small></td>"
        )
    head = (
        "<th></th><th style='font-weight:normal'>predicted malignant</th>"
        "<th style='font-weight:normal'>predicted benign</th>"
    )
    return (
        f"<div style='font-weight:600;margin-bottom:4px'>{MODEL_LABELS[kind]} · threshold {threshold:.2f}</div>"
        f"<table style='width:100%;border-collapse:collapse;table-layout:fixed' data-kind='{kind}'><tr>{head}</tr>"
        f"<tr><th style='font-weight:normal;text-align:left'>actual malignant</th>{cells[0]}{cells[1]}</tr>"
        f"<tr><th style='font-weight:normal;text-align:left'>actual benign</th>{cells[2]}{cells[3]}</tr></table>"
    )


SEED_STRIP_OFFSET = 0.22  # each model's column sits this far left/right of its metric
SEED_STRIP_SPREAD = 0.3  # the seeds of one column spread over this width, so no two points overlap


def seed_jitter(n: int) -> np.ndarray:
    """Evenly spaced horizontal offsets for ``n`` seeds, centred on 0 (deterministic: no random jitter)."""
    return np.linspace(-SEED_STRIP_SPREAD / 2, SEED_STRIP_SPREAD / 2, n) if n > 1 else np.zeros(n)


def seed_strip(
    per_seed: Mapping[str, Mapping[str, Mapping[str, float]]], metrics: Iterable[str], app_seed: int | None = None
) -> go.Figure:
    """Per-seed values as points, one column per metric and model; ``per_seed[kind][seed][metric]``.

    Seeds are spread sideways within their column (same order in every column), the mean is a bar.
    """
    metrics = list(metrics)
    labels = [METRIC_LABELS.get(m, m) for m in metrics]
    centres = np.arange(len(metrics), dtype=float)
    fig = go.Figure()
    everything = [v[m] for kind in KINDS for v in per_seed[kind].values() for m in metrics]
    for side, kind in zip((-1, 1), KINDS, strict=True):
        seeds = sorted(per_seed[kind], key=int)
        column = centres + side * SEED_STRIP_OFFSET
        xs, ys, texts, sizes = [], [], [], []
        for s, dx in zip(seeds, seed_jitter(len(seeds)), strict=True):
            for x, m, label in zip(column, metrics, labels, strict=True):
                xs.append(x + dx)
                ys.append(per_seed[kind][s][m])
                texts.append(f"{label} · seed {s}")
                sizes.append(13 if app_seed is not None and int(s) == app_seed else 9)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                name=MODEL_LABELS[kind],
                marker=dict(color=MODEL_COLOURS[kind], size=sizes, opacity=0.85, line=dict(color="white", width=1)),
                text=texts,
                hovertemplate="%{text}: %{y:.4f}<extra>" + MODEL_LABELS[kind] + "</extra>",
            )
        )
        means = [float(np.mean([per_seed[kind][s][m] for s in seeds])) for m in metrics]
        fig.add_trace(
            go.Scatter(
                x=column,
                y=means,
                mode="markers",
                name=f"{MODEL_LABELS[kind]} · mean",
                showlegend=False,
                text=labels,
                marker=dict(symbol="line-ew", size=30, line=dict(color=MODEL_COLOURS[kind], width=3)),
                hovertemplate="%{text} · mean: %{y:.4f}<extra>" + MODEL_LABELS[kind] + "</extra>",
            )
        )
    pad = 0.05 * (max(everything) - min(everything)) + 0.01
    fig.update_xaxes(tickvals=centres, ticktext=labels, range=[-0.6, len(metrics) - 0.4], showgrid=False)
    fig.update_yaxes(title="score (0–1)", range=[min(everything) - pad, max(everything) + pad])
    return _finish(fig, height=360)


# --- training -----------------------------------------------------------------------------------


def _seed_style(seed: int, highlight: int) -> dict:
    return dict(width=3.2, opacity=1.0) if seed == highlight else dict(width=1.2, opacity=SEED_OPACITY)


def _add_runs(
    fig: go.Figure,
    histories: pd.DataFrame,
    column: str,
    highlight: int,
    row: int | None = None,
    col: int | None = None,
    legend: bool = True,
    mark_best: bool = True,
) -> None:
    where = dict(row=row, col=col) if row else {}
    for kind in KINDS:
        runs = histories[histories.kind == kind]
        for seed, run in sorted(runs.groupby("seed"), key=lambda kv: (kv[0] != highlight, kv[0])):
            style = _seed_style(int(seed), highlight)
            fig.add_trace(
                go.Scatter(
                    x=run.epoch,
                    y=run[column],
                    mode="lines",
                    legendgroup=kind,
                    opacity=style["opacity"],
                    name=f"{MODEL_LABELS[kind]}" + (f" · seed {seed}" if seed == highlight else " · other seeds"),
                    showlegend=bool(
                        legend
                        and (
                            seed == highlight
                            or seed == min((s for s in runs.seed.unique() if s != highlight), default=None)
                        )
                    ),
                    line=dict(color=MODEL_COLOURS[kind], width=style["width"]),
                    hovertemplate=f"seed {seed} · epoch %{{x}}: %{{y:.4f}}<extra>{MODEL_LABELS[kind]}</extra>",
                ),
                **where,
            )
            best = run[run.best]
            if mark_best and len(best):
                b = best.iloc[0]
                fig.add_trace(
                    go.Scatter(
                        x=[b.epoch],
                        y=[b[column]],
                        mode="markers",
                        legendgroup=kind,
                        showlegend=False,
                        opacity=style["opacity"],
                        marker=dict(
                            symbol="star",
                            size=16 if seed == highlight else 9,
                            color=MODEL_COLOURS[kind],
                            line=dict(color="white", width=1),
                        ),
                        hovertemplate=f"best epoch (val AUC) · seed {seed}: epoch %{{x}}<extra>{MODEL_LABELS[kind]}"
                        "</extra>",
                    ),
                    **where,
                )


def loss_figure(
    histories: pd.DataFrame, highlight: int, reported_train: float | None = None, reported_val: float | None = None
) -> go.Figure:
    """Train and validation loss per epoch, side by side; the study's classical end points as dashed lines."""
    fig = make_subplots(
        rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04, subplot_titles=("training loss", "validation loss")
    )
    _add_runs(fig, histories, "train_loss", highlight, 1, 1, legend=True)
    _add_runs(fig, histories, "val_loss", highlight, 1, 2, legend=False)
    for value, col, what in ((reported_train, 1, "train"), (reported_val, 2, "val")):
        if value is not None:
            fig.add_hline(
                y=value,
                row=1,
                col=col,
                line=dict(color=MODEL_COLOURS["classical"], dash="dash", width=1.5),
                annotation_text=f"reported (study): classical end {what} loss {value:.2f}",
                annotation_position="top left",
                annotation_font=dict(size=11, color=MODEL_COLOURS["classical"]),
            )
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="cross-entropy loss", row=1, col=1)
    fig = _finish(fig, height=450)
    fig.update_layout(margin=dict(t=80), legend=dict(y=1.1))
    return fig


def line_figure(
    histories: pd.DataFrame, column: str, highlight: int, y_title: str, zero_line: bool = False, mark_best: bool = True
) -> go.Figure:
    fig = go.Figure()
    if zero_line:
        fig.add_hline(y=0, line=dict(color="#888888", width=1))
    _add_runs(fig, histories, column, highlight, mark_best=mark_best)
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title=y_title)
    return _finish(fig, height=360)


def backbone_figure(history: pd.DataFrame) -> go.Figure:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for col, dash, name in (("train_loss", None, "train loss"), ("val_loss", "dash", "val loss")):
        fig.add_trace(
            go.Scatter(
                x=history.epoch, y=history[col], name=name, mode="lines+markers", line=dict(color="#555555", dash=dash)
            ),
            secondary_y=False,
        )
    if "val_balanced_accuracy" in history:
        fig.add_trace(
            go.Scatter(
                x=history.epoch,
                y=history.val_balanced_accuracy,
                name="val balanced accuracy",
                mode="lines+markers",
                line=dict(color="#009988"),
            ),
            secondary_y=True,
        )
    selected = history[history["selected"].astype(str).str.lower().eq("true")] if "selected" in history else []
    if len(selected):
        fig.add_vline(
            x=float(selected.epoch.iloc[0]),
            line=dict(color="#009988", dash="dot"),
            annotation_text="kept epoch",
            annotation_position="top",
        )
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(
        title="loss (log scale)", type="log", secondary_y=False, tickvals=[0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20]
    )
    fig.update_yaxes(
        title="balanced accuracy", secondary_y=True, range=[0, 1], dtick=0.2, tickformat=".1f", showgrid=False
    )
    return _finish(fig, height=340)


def timing_figure(rows: pd.DataFrame) -> go.Figure:
    """Seconds per epoch, log scale: rows with kind, source ("reported (study)" / "reproduced"), seconds."""
    fig = go.Figure()
    for kind in KINDS:
        sub = rows[rows.kind == kind]
        fig.add_trace(
            go.Bar(
                x=sub.source,
                y=sub.seconds,
                name=MODEL_LABELS[kind],
                marker_color=MODEL_COLOURS[kind],
                text=[f"{s:,.1f} s" for s in sub.seconds],
                textposition="outside",
                hovertemplate="%{x}: %{y:,.1f} s per epoch<extra>" + MODEL_LABELS[kind] + "</extra>",
            )
        )
    top = float(np.log10(max(rows.seconds.max(), 1.0))) + 0.35
    fig.update_yaxes(
        type="log", title="seconds per epoch (log scale)", tickvals=[1, 10, 100, 1000, 10000], range=[0, top]
    )
    return _finish(fig, height=330, barmode="group")


# --- disagreements ------------------------------------------------------------------------------


def disagreement_figure(counts: Mapping[str, int]) -> go.Figure:
    """McNemar's 2 × 2 table: rows = QCNN right/wrong, columns = classical right/wrong."""
    z = [
        [counts["both_correct"], counts["only_qcnn_correct"]],
        [counts["only_classical_correct"], counts["both_wrong"]],
    ]
    names = [["both right", "only QCNN right"], ["only classical right", "both wrong"]]
    text = [[f"<b>{z[i][j]:,}</b><br>{names[i][j]}" for j in range(2)] for i in range(2)]
    colours = [[CELL_COLOURS[names[i][j]] for j in range(2)] for i in range(2)]
    fig = go.Figure(
        go.Heatmap(
            z=[[0, 1], [2, 3]],
            x=["classical right", "classical wrong"],
            y=["QCNN right", "QCNN wrong"],
            showscale=False,
            hoverinfo="skip",
            colorscale=[[0, colours[0][0]], [1 / 3, colours[0][1]], [2 / 3, colours[1][0]], [1, colours[1][1]]],
            zmin=0,
            zmax=3,
            opacity=0.85,
        )
    )
    for i in range(2):
        for j in range(2):
            fig.add_annotation(
                x=j,
                y=i,
                text=text[i][j],
                showarrow=False,
                font=dict(size=15, color="#111111" if names[i][j] == "both right" else "white"),
            )
    fig.update_yaxes(autorange="reversed")
    return _finish(fig, height=280)


def probability_scatter(frame: pd.DataFrame, threshold: float, highlight: set[str] | None = None) -> go.Figure:
    """Each test image: classical probability (x) vs QCNN probability (y), coloured by disagreement cell.

    With ``highlight`` (image ids, e.g. those matching the filters) those points are drawn strong and
    the rest faint. ``customdata[0]`` of every point is its image id (for click-through).
    """
    fig = go.Figure()
    for cell, colour in CELL_COLOURS.items():
        sub = frame[frame.cell == cell]
        if not len(sub):
            continue
        strong = np.ones(len(sub), bool) if highlight is None else sub.image_id.isin(highlight).to_numpy()
        fig.add_trace(
            go.Scattergl(
                x=sub.p_classical,
                y=sub.p_qcnn,
                mode="markers",
                name=cell,
                marker=dict(
                    color=colour,
                    size=np.where(strong, 7, 4),
                    opacity=np.where(strong, 0.85, 0.15).tolist(),
                    symbol=np.where(sub.label == 1, "x", "circle"),
                ),
                customdata=np.stack([sub.image_id, sub.dx, np.where(sub.label == 1, "malignant", "benign")], -1),
                hovertemplate="%{customdata[0]} (%{customdata[1]}, %{customdata[2]})<br>classical %{x:.3f} · "
                "QCNN %{y:.3f}<extra>" + cell + "</extra>",
            )
        )
    for axis in (fig.add_vline, fig.add_hline):
        axis(threshold, line=dict(color="#888888", dash="dot", width=1))
    fig.update_xaxes(title="classical probability (malignant)", range=[-0.02, 1.02])
    fig.update_yaxes(title="QCNN probability (malignant)", range=[-0.02, 1.02])
    return _finish(fig, height=420, clickmode="event+select")


LABEL_COLOURS = {"malignant": "#CC6677", "benign": "#88CCEE"}
CORRECT_COLOURS = {"right": "#009988", "wrong": "#EE7733"}
DX_ORDER = ("nv", "mel", "bkl", "bcc", "akiec", "vasc", "df")  # HAM10000's diagnoses, most frequent first


def map_scatter(
    points: pd.DataFrame,
    colour_by: str,
    kind: str,
    axis_titles: tuple[str, str],
    threshold: float,
    highlight: set[str] | None = None,
) -> go.Figure:
    """Model ``kind``'s map (``qcnn.app.analysis.map_points``): a point per test image, × malignant, ○ benign.

    ``colour_by``: "label", "diagnosis" or "correct" (at ``threshold``). With ``highlight`` those images are
    drawn strong, the rest faint. ``customdata[0]`` of every point is its image id (for click-through).
    """
    truth = np.where(points.label == 1, "malignant", "benign")
    verdict = np.where(points.right, "right", "wrong")
    if colour_by == "label":
        category, colours = truth, LABEL_COLOURS
    elif colour_by == "correct":
        category, colours = verdict, CORRECT_COLOURS
    else:
        category = points.dx.to_numpy()
        present = [d for d in DX_ORDER if d in set(category)] + sorted(set(category) - set(DX_ORDER))
        colours = {d: OUTCOME_PALETTE[i % len(OUTCOME_PALETTE)] for i, d in enumerate(present)}
    customdata = np.stack([points.image_id, points.dx, truth, verdict, points.probability.round(3)], -1)
    fig = go.Figure()
    for name, colour in colours.items():
        mask = category == name
        if not mask.any():
            continue
        sub = points[mask]
        strong = np.ones(len(sub), bool) if highlight is None else sub.image_id.isin(highlight).to_numpy()
        fig.add_trace(  # the legend's swatch: full strength, whatever the first point's
            go.Scattergl(x=[None], y=[None], mode="markers", name=name, legendgroup=name, marker=dict(color=colour))
        )
        fig.add_trace(
            go.Scattergl(
                x=sub.x,
                y=sub.y,
                mode="markers",
                name=name,
                legendgroup=name,
                showlegend=False,
                marker=dict(
                    color=colour,
                    size=np.where(strong, 7, 4),
                    opacity=np.where(strong, 0.85, 0.15).tolist(),
                    symbol=np.where(sub.label == 1, "x", "circle"),
                ),
                customdata=customdata[mask],
                hovertemplate="%{customdata[0]} (%{customdata[1]}, %{customdata[2]})<br>p(malignant) "
                f"%{{customdata[4]}}: %{{customdata[3]}} at {threshold:.2f}<extra>{name}</extra>",
            )
        )
    fig.update_xaxes(title=axis_titles[0], zeroline=False)
    fig.update_yaxes(title=axis_titles[1], zeroline=False)
    _finish(fig, height=420, clickmode="event+select")
    return fig.update_layout(  # the model's name heads the legend, in its colour
        legend_title=dict(text=f"<b>{MODEL_LABELS[kind]}</b>", font=dict(color=MODEL_COLOURS[kind], size=15))
    )


# --- try it -------------------------------------------------------------------------------------


def bits(index: int, n_qubits: int = N_QUBITS) -> str:
    """Basis state ``index`` as bits, wire 0 first (PennyLane's order; qcnn.inference.bitstring, torch-free)."""
    return format(int(index), f"0{n_qubits}b")


def fmt_probability(p: float) -> str:
    """A probability as a percentage that never rounds a confident call to a flat 0 or 100."""
    if p < 0.001:
        return f"{p:.1e}" if p > 0 else "0"
    if p > 0.999:
        return f"1 − {1 - p:.1e}" if p < 1 else "1"
    return f"{p:.1%}"


def verdict(probability: float) -> str:
    return "malignant" if probability >= THRESHOLD else "benign"


def reference_line(axis: str, at: float, line: dict, text: str, **label) -> tuple[dict, dict]:
    """A line across the plot at ``axis`` = ``at`` and its label, as layout dicts.

    The same shape and annotation as ``fig.add_vline`` / ``add_hline`` (``axis`` "x" / "y"), which cost
    ~7 ms a call in plotly, most of a small figure's build time; ``label`` places the text.
    """
    other = "y" if axis == "x" else "x"
    span = {f"{other}ref": f"{other} domain"}
    shape = {"type": "line", "line": line, f"{axis}ref": axis, f"{axis}0": at, f"{axis}1": at, **span}
    shape.update({f"{other}0": 0, f"{other}1": 1})
    return shape, {"showarrow": False, "text": text, f"{axis}ref": axis, axis: at, **span, **label}


def probability_figure(probabilities: dict[str, float]) -> go.Figure:
    """Both malignancy probabilities as bars against the 0.5 threshold."""
    kinds = [k for k in KINDS if k in probabilities][::-1]  # QCNN on top
    line, label = reference_line(
        "x",
        THRESHOLD,
        dict(color="#444444", dash="dash", width=1.5),
        "threshold 0.5",
        y=1,
        xanchor="center",
        yanchor="bottom",
    )
    return go.Figure(
        go.Bar(
            x=[probabilities[k] for k in kinds],
            y=[MODEL_LABELS[k] for k in kinds],
            orientation="h",
            marker_color=[MODEL_COLOURS[k] for k in kinds],
            text=[f"{fmt_probability(probabilities[k])} · {verdict(probabilities[k])}" for k in kinds],
            textposition="outside",
            hovertemplate="%{y}: P(malignant) = %{x:.3f}<extra></extra>",
        ),
        layout=dict(
            height=170,
            margin=dict(l=10, r=10, t=30, b=10),
            showlegend=False,
            xaxis=dict(range=[0, 1.18], tickformat=".0%", title="P(malignant)", tickvals=[0, 0.25, 0.5, 0.75, 1]),
            shapes=[line],
            annotations=[label],
        ),
    )


def distribution_figure(distribution: np.ndarray, kind: str, y_max: float | None = None) -> go.Figure:
    """The 256 outcome probabilities as bars labelled by bitstring (wire 0 first), uniform dashed."""
    p = np.asarray(distribution, dtype=float)
    n_qubits = int(round(np.log2(p.size)))
    labels = [bits(i, n_qubits) for i in range(p.size)]
    ticks = list(range(0, p.size, max(1, p.size // 8)))
    line, label = reference_line(
        "y",
        1.0 / p.size,
        dict(color="#444444", dash="dash", width=1),
        f"uniform 1/{p.size}",
        x=1,
        xanchor="right",
        yanchor="bottom",
    )
    return go.Figure(
        go.Bar(
            x=np.arange(p.size),
            y=p,
            marker_color=MODEL_COLOURS[kind],
            customdata=labels,
            name=MODEL_LABELS[kind],
            hovertemplate="|%{customdata}⟩ (index %{x}): %{y:.4f}<extra></extra>",
        ),
        layout=dict(
            height=300,
            margin=dict(l=10, r=10, t=40, b=10),
            showlegend=False,
            bargap=0.05,
            title=dict(text=f"{MODEL_LABELS[kind]} · mean over the 196 patches", x=0, font=dict(size=14)),
            xaxis=dict(
                title="outcome (bitstring, wire 0 first)",
                tickmode="array",
                tickvals=ticks,
                ticktext=[labels[t] for t in ticks],
                tickangle=-45,
                range=[-1, p.size],
            ),
            yaxis=dict(title="probability", range=[0, y_max] if y_max else None),
            shapes=[line],
            annotations=[label],
        ),
    )


def outcome_categories(maps: Iterable[np.ndarray], k: int = len(OUTCOME_PALETTE)) -> list[int]:
    """The ``k`` outcomes most often most likely over the given per-patch maps, most frequent first."""
    values, counts = np.unique(np.concatenate([np.asarray(m).ravel() for m in maps]), return_counts=True)
    order = np.lexsort((values, -counts))  # by count, ties by index: the same order every time
    return [int(v) for v in values[order][:k]]


def jpeg_data_uri(image: np.ndarray, quality: int = PHOTO_JPEG_QUALITY) -> str:
    """An (H, W, 3) uint8 photo as a JPEG ``data:`` URI: a few kB for the browser to decode natively."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def patch_map_figure(
    image: np.ndarray,
    values: np.ndarray,
    kind: str,
    view: str,
    opacity: float = 0.55,
    z_range: tuple[float, float] | None = None,
    categories: list[int] | None = None,
) -> go.Figure:
    """A 14 x 14 map over the 224 x 224 image: one cell per layer3 patch (16 x 16 pixels).

    ``view`` "entropy": a continuous scale (bits). "argmax": the most likely outcome per patch, which is a
    category, not a quantity: each of ``categories`` (default: this map's most frequent) gets its own
    colour from a qualitative palette, every other outcome one grey. The photo travels as a JPEG
    (``go.Image(source=...)``): as ``z`` it was 10 times the bytes and plotly.js painted it pixel by pixel.
    """
    size = image.shape[0]
    cell = size / values.shape[0]
    where = "patch row %{customdata[0]}, column %{customdata[1]}<br>"
    z = values
    custom = np.full((*values.shape, 3), "", dtype=object)  # an array: plotly validates it at once, not per cell
    custom[..., 0], custom[..., 1] = np.indices(values.shape)
    if view == "entropy":
        colorscale, colorbar = "Viridis", dict(title="bits")
        hover = where + "entropy %{z:.3f} bits<extra></extra>"
    else:
        categories = list(categories if categories is not None else outcome_categories([values]))
        n = len(categories) + 1  # the last colour: any other outcome
        code = {v: i for i, v in enumerate(categories)}
        z = np.vectorize(lambda v: code.get(int(v), n - 1))(values)
        colours = [OUTCOME_PALETTE[i] for i in range(len(categories))] + [OTHER_OUTCOME_COLOUR]
        colorscale = [[edge, colours[i]] for i in range(n) for edge in (i / n, (i + 1) / n)]
        colorbar = dict(
            title="outcome", tickvals=list(range(n)), ticktext=[f"|{bits(v)}⟩" for v in categories] + ["other"]
        )
        custom[..., 2] = [[bits(int(v)) for v in row] for row in values]
        hover = where + "most likely |%{customdata[2]}⟩<extra></extra>"
        z_range = (-0.5, n - 0.5)
    title = "entropy per patch" if view == "entropy" else "most likely outcome per patch"
    bare = dict(showticklabels=False, showgrid=False, ticks="")
    return go.Figure(
        [
            go.Image(source=jpeg_data_uri(image), hoverinfo="skip"),
            go.Heatmap(
                z=z,
                x0=cell / 2,
                dx=cell,
                y0=cell / 2,
                dy=cell,
                opacity=opacity,
                colorscale=colorscale,
                zmin=z_range[0] if z_range else None,
                zmax=z_range[1] if z_range else None,
                customdata=custom,
                hovertemplate=hover,
                colorbar=colorbar,
                xgap=1,
                ygap=1,
            ),
        ],
        layout=dict(
            height=380,
            margin=dict(l=10, r=10, t=40, b=10),
            title=dict(text=f"{MODEL_LABELS[kind]} · {title}", x=0, font=dict(size=14)),
            xaxis=bare,
            yaxis=bare,
        ),
    )
