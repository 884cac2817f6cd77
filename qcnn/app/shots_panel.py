"""Try it, with a finite shot budget: the uploaded image's measurement distribution, resampled.

The QCNN's 196 patch distributions of the image are measured S times each (a seeded multinomial
draw), 20 times over; the spread of the malignancy probability is what a device would show.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from qcnn.app.charts import reference_line
from qcnn.app.style import MODEL_COLOURS
from qcnn.constants import APP_SEED, GRID, THRESHOLD

SHOT_CHOICES = (1, 10, 100, 1_000, 10_000)
DEFAULT_SHOTS = 100
N_DRAWS = 20


def resampled_probabilities(
    patch_distributions: np.ndarray,
    readout: np.ndarray,
    bias: float,
    shots: int,
    n_draws: int = N_DRAWS,
    seed: int = APP_SEED,
) -> np.ndarray:
    """(n_draws,) malignancy probabilities with each patch estimated from ``shots`` measurements."""
    from qcnn.shots import draw_rng, shot_logits, sigmoid

    probs = patch_distributions[None]
    return np.array(
        [sigmoid(shot_logits(probs, readout, bias, shots, draw_rng(seed, shots, d)))[0] for d in range(n_draws)]
    )


def _spread_figure(draws: np.ndarray, exact: float) -> go.Figure:
    lines = [
        reference_line("x", exact, dict(color="#222222", dash="dash"), "exact", y=1, xanchor="left", yanchor="top"),
        reference_line(
            "x", THRESHOLD, dict(color="#999999", dash="dot"), "threshold", y=0, xanchor="center", yanchor="top"
        ),
    ]
    return go.Figure(
        go.Box(
            x=draws,
            boxpoints="all",
            jitter=0.4,
            pointpos=0,
            name="QCNN",
            marker_color=MODEL_COLOURS["qcnn"],
            hovertemplate="%{x:.3f}<extra></extra>",
        ),
        layout=dict(
            height=220,
            margin=dict(l=10, r=10, t=20, b=10),
            showlegend=False,
            xaxis=dict(title="malignancy probability", range=[0, 1]),
            shapes=[shape for shape, _ in lines],
            annotations=[label for _, label in lines],
        ),
    )


@st.cache_data(max_entries=64, show_spinner=False)
def _cached_draws(patch_distributions: np.ndarray, readout: np.ndarray, bias: float, shots: int) -> np.ndarray:
    """``resampled_probabilities`` once per image and budget (seeded, so shared by all sessions): 30-130 ms."""
    return resampled_probabilities(patch_distributions, readout, bias, shots)


@st.fragment
def show_shot_spread(prediction, predictor) -> None:
    """The section on the Try it page (``prediction`` from ``Predictor.predict``).

    A fragment: a new shot budget redraws this section only.
    """
    st.subheader("On a quantum computer: finite shots")
    output = prediction.output("qcnn")
    classifier = predictor.models["qcnn"].head.classifier
    readout = classifier.weight.detach().double().numpy()[0]
    shots = st.select_slider(
        "Shots per patch circuit",
        SHOT_CHOICES,
        value=DEFAULT_SHOTS,
        key="try_it_shots",
        help="A device estimates each of the 196 patch distributions from this many "
        "measurements; one image then costs 196 × shots.",
    )
    draws = _cached_draws(output.patch_distributions, readout, float(classifier.bias), shots)
    flips = int(np.sum((draws >= THRESHOLD) != output.malignant))
    st.plotly_chart(_spread_figure(draws, output.probability), width="stretch")
    st.caption(
        f"{N_DRAWS} draws of {shots:,} shots per patch ({GRID * GRID * shots:,} shots per image): probability "
        f"{draws.mean():.3f} ± {draws.std(ddof=1):.3f} (exact {output.probability:.3f}), range "
        f"{draws.min():.3f}–{draws.max():.3f}; the decision differs from the exact one in {flips} of "
        f"{N_DRAWS} draws."
    )
