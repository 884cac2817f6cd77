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
CELL_COLOURS = {"both right": "#BBBBBB", "only QCNN right": MODEL_COLOURS["qcnn"],
                "only classical right": MODEL_COLOURS["classical"], "both wrong": "#333333"}
METRIC_LABELS = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "specificity": "Specificity",
                 "f1": "F1", "balanced_accuracy": "Balanced acc.", "auc": "AUC"}


def fmt_value(metric: str, value: float | None) -> str:
    """A metric as the study prints it: percent, except AUC on 0-1."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.3f}" if metric == "auc" else f"{100 * value:.1f} %"
