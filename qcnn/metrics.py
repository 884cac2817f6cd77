"""Binary classification metrics at a threshold, and the curves behind them (numpy only)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "balanced_accuracy", "auc")


def _counts(
    positive: np.ndarray, probabilities: np.ndarray, threshold: float, weights: np.ndarray | None = None
) -> tuple[float, float, float, float]:
    """(tp, fp, tn, fn) at ``threshold``, each image counted ``weights`` times (once by default)."""
    pred = np.asarray(probabilities) >= threshold
    w = 1 if weights is None else weights
    return tuple(float(np.sum(w * c)) for c in (pred & positive, pred & ~positive, ~pred & ~positive, ~pred & positive))


def confusion(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict[str, int]:
    counts = _counts(np.asarray(labels).astype(bool), probabilities, threshold)
    return dict(zip(("tp", "fp", "tn", "fn"), map(int, counts), strict=True))


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def score_ranks(probabilities: np.ndarray) -> tuple[np.ndarray, int]:
    """Each score's rank among the distinct scores, and their number: computed once per run by bootstraps."""
    unique, groups = np.unique(probabilities, return_inverse=True)
    return groups, len(unique)


def _auc(positive: np.ndarray, weights: np.ndarray, rank: tuple[np.ndarray, int]) -> float:
    """Mann-Whitney AUC with per-image weights, ties counting half: the ROC area, without sorting per call."""
    groups, n_groups = rank
    pos = np.bincount(groups, weights * positive, n_groups)
    neg = np.bincount(groups, weights * ~positive, n_groups)
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    denom = pos.sum() * neg.sum()
    return float(np.sum(pos * (below + 0.5 * neg)) / denom) if denom else float("nan")


def threshold_metrics(
    labels: np.ndarray,
    probabilities: np.ndarray,
    threshold: float = 0.5,
    weights: np.ndarray | None = None,
    rank: tuple[np.ndarray, int] | None = None,
) -> dict[str, float]:
    """Everything in METRICS at ``threshold`` (AUC is threshold-free), each image counted ``weights`` times.

    Unit weights by default; a lesion bootstrap passes its resample counts (0 leaves an image out) and
    ``rank`` = ``score_ranks(probabilities)`` so that scoring one run many times ranks it once. A ratio
    with nothing to divide by (precision with no positive prediction) is 0; AUC with one class is NaN.
    """
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights)
    positive = labels.astype(bool)
    tp, fp, tn, fn = _counts(positive, probabilities, threshold, weights)
    precision, recall, specificity = _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    return {
        "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
        "precision": precision,
        "recall": recall,
        "specificity": specificity,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "balanced_accuracy": (recall + specificity) / 2,
        "auc": _auc(positive, weights, rank if rank is not None else score_ranks(probabilities)),
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


def metric_vector(
    labels: np.ndarray,
    probabilities: np.ndarray,
    threshold: float = 0.5,
    weights: np.ndarray | None = None,
    rank: tuple[np.ndarray, int] | None = None,
) -> np.ndarray:
    """``threshold_metrics`` as an array in METRICS order: what the summaries and bootstraps stack."""
    values = threshold_metrics(labels, probabilities, threshold, weights, rank)
    return np.array([values[m] for m in METRICS])


def threshold_for_recall(labels: np.ndarray, probabilities: np.ndarray, target_recall: float) -> float:
    """The highest threshold whose recall reaches ``target_recall``."""
    positives = np.sort(np.asarray(probabilities)[np.asarray(labels) == 1])[::-1]
    if len(positives) == 0:
        return 0.5
    k = int(np.ceil(target_recall * len(positives) - 1e-9))
    return float(positives[max(k, 1) - 1])
