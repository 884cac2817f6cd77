"""Binary classification metrics at a threshold, and the curves behind them (numpy only)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "balanced_accuracy", "auc")


def confusion(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict[str, int]:
    pred = np.asarray(probabilities) >= threshold
    labels = np.asarray(labels).astype(bool)
    return {
        "tp": int(np.sum(pred & labels)),
        "fp": int(np.sum(pred & ~labels)),
        "tn": int(np.sum(~pred & ~labels)),
        "fn": int(np.sum(~pred & labels)),
    }


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def threshold_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Everything in METRICS at ``threshold`` (AUC is threshold-free)."""
    c = confusion(labels, probabilities, threshold)
    precision = _ratio(c["tp"], c["tp"] + c["fp"])
    recall = _ratio(c["tp"], c["tp"] + c["fn"])
    specificity = _ratio(c["tn"], c["tn"] + c["fp"])
    labels = np.asarray(labels)
    return {
        "accuracy": _ratio(c["tp"] + c["tn"], len(labels)),
        "precision": precision,
        "recall": recall,
        "specificity": specificity,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "balanced_accuracy": (recall + specificity) / 2,
        "auc": float(roc_auc_score(labels, probabilities)) if 0 < labels.sum() < len(labels) else float("nan"),
    }


def curves(labels: np.ndarray, probabilities: np.ndarray, max_points: int = 400) -> dict[str, dict[str, list]]:
    """ROC and precision-recall points, thinned to at most ``max_points`` for the app."""
    fpr, tpr, roc_t = roc_curve(labels, probabilities)
    precision, recall, pr_t = precision_recall_curve(labels, probabilities)

    def thin(*arrays: np.ndarray) -> list[list[float]]:
        keep = np.unique(np.linspace(0, len(arrays[0]) - 1, min(max_points, len(arrays[0]))).round().astype(int))
        return [np.nan_to_num(a[keep], posinf=1.0).round(6).tolist() for a in arrays]

    fpr, tpr, roc_t = thin(fpr, tpr, roc_t)
    precision, recall, pr_t = thin(precision[:-1], recall[:-1], pr_t)
    return {
        "roc": {"fpr": fpr, "tpr": tpr, "threshold": roc_t},
        "pr": {"precision": precision, "recall": recall, "threshold": pr_t},
    }


def threshold_for_recall(labels: np.ndarray, probabilities: np.ndarray, target_recall: float) -> float:
    """The highest threshold whose recall reaches ``target_recall``."""
    positives = np.sort(np.asarray(probabilities)[np.asarray(labels) == 1])[::-1]
    if len(positives) == 0:
        return 0.5
    k = int(np.ceil(target_recall * len(positives) - 1e-9))
    return float(positives[max(k, 1) - 1])
