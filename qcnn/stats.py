"""Uncertainty for the comparison: lesion-level bootstrap, McNemar's exact test, matched recall.

Resampling is by lesion, not image: images of one lesion are correlated, and resampling them
independently would understate the intervals.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

from qcnn.metrics import METRICS, threshold_for_recall, threshold_metrics


def _weighted_auc(labels: np.ndarray, groups: np.ndarray, n_groups: int, weights: np.ndarray) -> float:
    """Mann-Whitney AUC with per-image weights; ``groups`` are the ranks of the distinct scores."""
    pos = np.bincount(groups, weights * labels, n_groups)
    neg = np.bincount(groups, weights * (1 - labels), n_groups)
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    denom = pos.sum() * neg.sum()
    return float(np.sum(pos * (below + 0.5 * neg)) / denom) if denom else float("nan")


def weighted_metrics(labels: np.ndarray, probabilities: np.ndarray, weights: np.ndarray,
                     threshold: float = 0.5, rank: tuple[np.ndarray, int] | None = None) -> np.ndarray:
    """The METRICS vector with per-image weights (bootstrap counts)."""
    pred = probabilities >= threshold
    tp = np.sum(weights * (pred & (labels == 1)))
    fp = np.sum(weights * (pred & (labels == 0)))
    tn = np.sum(weights * (~pred & (labels == 0)))
    fn = np.sum(weights * (~pred & (labels == 1)))
    div = lambda a, b: a / b if b else 0.0  # noqa: E731
    precision, recall, specificity = div(tp, tp + fp), div(tp, tp + fn), div(tn, tn + fp)
    groups, n_groups = rank if rank is not None else _rank(probabilities)
    values = {
        "accuracy": div(tp + tn, tp + fp + tn + fn), "precision": precision, "recall": recall,
        "specificity": specificity, "f1": div(2 * precision * recall, precision + recall),
        "balanced_accuracy": (recall + specificity) / 2,
        "auc": _weighted_auc(labels, groups, n_groups, weights),
    }
    return np.array([values[m] for m in METRICS])


def _rank(probabilities: np.ndarray) -> tuple[np.ndarray, int]:
    unique, groups = np.unique(probabilities, return_inverse=True)
    return groups, len(unique)


def lesion_bootstrap(labels: np.ndarray, lesion_ids: np.ndarray, probabilities: np.ndarray,
                     n_bootstrap: int = 2000, seed: int = 0, threshold: float = 0.5) -> np.ndarray:
    """(n_bootstrap, n_runs, n_metrics) metrics over lesion resamples shared by all runs (paired).

    ``probabilities`` is (n_runs, n_images), all runs scored on the same images.
    """
    rng = np.random.default_rng(seed)
    _, lesion_index = np.unique(lesion_ids, return_inverse=True)
    n_lesions = lesion_index.max() + 1
    ranks = [_rank(p) for p in probabilities]
    out = np.empty((n_bootstrap, len(probabilities), len(METRICS)))
    for b in range(n_bootstrap):
        weights = np.bincount(rng.integers(n_lesions, size=n_lesions), minlength=n_lesions)[lesion_index]
        for r, p in enumerate(probabilities):
            out[b, r] = weighted_metrics(labels, p, weights, threshold, ranks[r])
    return out


def interval(samples: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Percentile interval along axis 0: (..., 2)."""
    lo, hi = np.nanpercentile(samples, [50 * (1 - level), 50 * (1 + level)], axis=0)
    return np.stack([lo, hi], axis=-1)


def mcnemar(labels: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray, threshold: float = 0.5) -> dict:
    """Exact McNemar test on per-image correctness of model a (QCNN) vs model b (classical)."""
    right_a = (prob_a >= threshold) == (labels == 1)
    right_b = (prob_b >= threshold) == (labels == 1)
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    p_value = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"threshold": threshold, "both_correct": int(np.sum(right_a & right_b)), "only_qcnn_correct": only_a,
            "only_classical_correct": only_b, "both_wrong": int(np.sum(~right_a & ~right_b)),
            "p_value": float(p_value), "test": "exact binomial, two-sided"}


def at_matched_recall(labels: np.ndarray, probabilities: np.ndarray, target_recall: float) -> dict:
    """Precision and specificity of a model at the threshold where its recall reaches ``target_recall``."""
    threshold = threshold_for_recall(labels, probabilities, target_recall)
    m = threshold_metrics(labels, probabilities, threshold)
    return {"target_recall": target_recall, "threshold": threshold, "recall": m["recall"],
            "precision": m["precision"], "specificity": m["specificity"]}


INTERVAL_METHOD = (
    "95 % interval of the mean paired difference over seeds that counts both sources of variation: "
    "a t-interval whose variance is the seed-to-seed variance of the per-seed differences divided by the "
    "number of seeds plus the lesion-bootstrap variance of their mean (test-set sampling), with "
    "Welch-Satterthwaite degrees of freedom; undefined (inconclusive) with fewer than 2 seeds."
)


def seed_lesion_interval(per_seed: np.ndarray, bootstrap: np.ndarray, level: float = 0.95) -> np.ndarray:
    """(M, 2) interval of the mean over seeds of ``per_seed`` (S, M), with ``bootstrap`` (B, S, M) resamples.

    Seeds and test lesions are independent sources of variation: their variances of the mean add.
    """
    from scipy.stats import t

    per_seed, bootstrap = np.asarray(per_seed, float), np.asarray(bootstrap, float)
    n_seeds = per_seed.shape[0]
    mean = per_seed.mean(axis=0)
    if n_seeds < 2:
        return np.full((per_seed.shape[1], 2), np.nan)
    seed_var = per_seed.var(axis=0, ddof=1) / n_seeds
    lesion_var = np.nanvar(bootstrap.mean(axis=1), axis=0, ddof=1)
    total = seed_var + lesion_var
    with np.errstate(divide="ignore", invalid="ignore"):
        dof = np.where(seed_var > 0, total**2 / (seed_var**2 / (n_seeds - 1)), np.inf)
    half = t.ppf(0.5 + level / 2, np.maximum(dof, n_seeds - 1)) * np.sqrt(total)
    return np.stack([mean - half, mean + half], axis=-1)
