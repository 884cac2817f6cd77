"""The app's colours and labels, defined once (no heavy imports: every page loads this).

``qcnn.app.charts`` re-exports them for the figure builders; pages and teammates may import
either module.
"""

from __future__ import annotations

import math

from qcnn.constants import MODEL_KINDS as KINDS  # noqa: F401  (re-exported for the charts)

# One colour per model, on every chart (Paul Tol's colour-blind-safe purple and blue).
MODEL_COLOURS = {"qcnn": "#AA3377", "classical": "#4477AA"}
MODEL_LABELS = {"qcnn": "QCNN", "classical": "Classical CNN"}
# Reported (study) vs reproduced (this project) on charts that show a difference, not a model.
REPORTED_COLOUR = "#9A9A9A"
REPRODUCED_COLOUR = "#222222"
STATUS_COLOURS = {"failed": "#CC3311", "partial": "#EE7733", "success": "#009988"}
# Disagreement cells: the model that alone was right gets its colour.
CELL_COLOURS = {
    "both right": "#BBBBBB",
    "only QCNN right": MODEL_COLOURS["qcnn"],
    "only classical right": MODEL_COLOURS["classical"],
    "both wrong": "#333333",
}
METRIC_LABELS = {
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "specificity": "Specificity",
    "f1": "F1",
    "balanced_accuracy": "Balanced acc.",
    "auc": "AUC",
}


def fmt_value(metric: str, value: float | None) -> str:
    """A metric as the study prints it: percent, except AUC on 0-1."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.3f}" if metric == "auc" else f"{100 * value:.1f} %"


# Layout rules Streamlit has no option for, so that nothing is cut at 1024 x 768 (a projector) or on a phone:
# - less side padding below 1400 px (the wide layout's 5 rem margins eat a small screen);
# - metric values scale with the viewport and labels wrap instead of ending in "…";
# - every row of columns wraps when a column would get narrower than 12 rem (a wrapped column takes the
#   whole row); rows in containers keyed "wide_…" (tables, charts side by side) wrap below 24 rem and
#   rows of cards ("cards_…") below 15 rem;
# - static tables keep each cell on one line and scroll sideways inside their own box when too wide.
APP_CSS = """
<style>
@media (max-width: 1400px) {
  [data-testid="stMainBlockContainer"] { padding-left: 2rem; padding-right: 2rem; }
}
@media (max-width: 640px) {
  [data-testid="stMainBlockContainer"] { padding-left: 0.8rem; padding-right: 0.8rem; }
}
[data-testid="stMetricValue"] { font-size: clamp(1.5rem, 2.3vw, 2.25rem); }
[data-testid="stMetricLabel"] p, [data-testid="stMetricLabel"] div { white-space: normal; overflow: visible; }
[data-testid="stHorizontalBlock"] { flex-wrap: wrap; }
[data-testid="stColumn"] { min-width: min(100%, 12rem); flex-grow: 1; }
[class*="st-key-wide"] [data-testid="stColumn"] { min-width: min(100%, 24rem); }
[class*="st-key-cards"] [data-testid="stColumn"] { min-width: min(100%, 15rem); }
[class*="st-key-cards"] [data-testid="stColumn"] [data-testid="stColumn"] { min-width: 6rem; }
[data-testid="stTableStyledTable"] th, [data-testid="stTableStyledTable"] td { white-space: nowrap; }
</style>
"""
