"""Uncertainty for the comparison: lesion-level bootstrap, McNemar's exact test, matched recall.

Resampling is by lesion, not image: images of one lesion are correlated, and resampling them
independently would understate the intervals.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import binomtest

from qcnn.metrics import METRICS, score_ranks, threshold_for_recall, metric_vector, threshold_metrics

if TYPE_CHECKING:
    import pandas as pd


def lesion_bootstrap(
    labels: np.ndarray,
    lesion_ids: np.ndarray,
    probabilities: np.ndarray,
    n_bootstrap: int = 2000,
    seed: int = 0,
    threshold: float = 0.5,
) -> np.ndarray:
    """(n_bootstrap, n_runs, n_metrics) metrics over lesion resamples shared by all runs (paired).

    ``probabilities`` is (n_runs, n_images), all runs scored on the same images.
    """
    rng = np.random.default_rng(seed)
    _, lesion_index = np.unique(lesion_ids, return_inverse=True)
    n_lesions = lesion_index.max() + 1
    ranks = [score_ranks(p) for p in probabilities]
    out = np.empty((n_bootstrap, len(probabilities), len(METRICS)))
    for b in range(n_bootstrap):
        weights = np.bincount(rng.integers(n_lesions, size=n_lesions), minlength=n_lesions)[lesion_index]
        for r, p in enumerate(probabilities):
            out[b, r] = metric_vector(labels, p, threshold, weights, ranks[r])
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
    return {
        "threshold": threshold,
        "both_correct": int(np.sum(right_a & right_b)),
        "only_qcnn_correct": only_a,
        "only_classical_correct": only_b,
        "both_wrong": int(np.sum(~right_a & ~right_b)),
        "p_value": float(p_value),
        "test": "exact binomial, two-sided",
    }


def at_matched_recall(labels: np.ndarray, probabilities: np.ndarray, target_recall: float) -> dict:
    """Precision and specificity of a model at the threshold where its recall reaches ``target_recall``."""
    threshold = threshold_for_recall(labels, probabilities, target_recall)
    m = threshold_metrics(labels, probabilities, threshold)
    return {
        "target_recall": target_recall,
        "threshold": threshold,
        "recall": m["recall"],
        "precision": m["precision"],
        "specificity": m["specificity"],
    }


INTERVAL_METHOD = (
    "95 % interval of the mean paired difference over seeds that counts both sources of variation: "
    "a t-interval whose variance is the seed-to-seed variance of the per-seed differences divided by the "
    "number of seeds plus the lesion-bootstrap variance of their mean (test-set sampling), with "
    "Welch-Satterthwaite degrees of freedom; undefined (inconclusive) with fewer than 2 seeds."
)
LESION_ONLY_METHOD = (
    "one seed: normal interval from the lesion-bootstrap variance alone; seed-to-seed variation cannot be "
    "estimated from one run and is not counted"
)


def seed_lesion_interval(
    per_seed: np.ndarray, bootstrap: np.ndarray | None, level: float = 0.95, lesions_if_one_seed: bool = False
) -> np.ndarray:
    """(M, 2) interval of the mean over seeds that counts both seeds and test lesions.

    ``per_seed`` is (S, M): one value per training seed and metric (e.g. a paired QCNN − classical
    difference, or any other pair of configurations scored on the same test images).
    ``bootstrap`` is (B, S, M): the same values on B lesion resamples shared by all seeds.

    Training randomness moves the per-seed values; their sample variance s² estimates it, s²/S the
    part that reaches the mean. The test set is shared by all seeds, so its sampling error does
    not average out over seeds: the bootstrap variance of the seed mean, v, adds it. The quantile is
    Student's t with Welch–Satterthwaite degrees of freedom, (s²/S + v)² / ((s²/S)² / (S − 1)), v
    counted as known (it rests on thousands of resamples): S − 1 when seeds dominate, as in a plain
    t-interval over seeds, towards the normal quantile when test-set sampling dominates. A simulation
    with a known truth (tests/test_stats.py) shows about 95 % coverage.

    ``bootstrap=None`` (values with no test set to resample, e.g. training losses) leaves v = 0: a
    plain t-interval over seeds. With one seed s² is not estimable: the interval is undefined (NaN),
    or with ``lesions_if_one_seed`` the normal one from v alone (``LESION_ONLY_METHOD``).
    """
    from scipy.stats import norm, t

    per_seed = np.atleast_2d(np.asarray(per_seed, dtype=float))
    n_seeds = per_seed.shape[0]
    mean = per_seed.mean(0)
    if bootstrap is None:
        boot_var = np.zeros_like(mean)
    else:
        bootstrap = np.asarray(bootstrap, dtype=float).reshape(-1, *per_seed.shape)
        with warnings.catch_warnings():  # a metric undefined on every resample (a subgroup's class) stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            boot_var = np.nanvar(bootstrap.mean(1), axis=0, ddof=1)
    if n_seeds > 1:
        seed_var = per_seed.var(0, ddof=1) / n_seeds
        variance = seed_var + boot_var
        with np.errstate(divide="ignore", invalid="ignore"):  # no seed spread: infinite df, the normal quantile
            df = np.where(seed_var > 0, variance**2 / (seed_var**2 / (n_seeds - 1)), np.inf)
        quantile = t.ppf(0.5 + level / 2, np.maximum(df, n_seeds - 1))
    elif lesions_if_one_seed:
        variance, quantile = boot_var, norm.ppf(0.5 + level / 2)
    else:
        return np.full((per_seed.shape[1], 2), np.nan)
    half = quantile * np.sqrt(variance)
    return np.stack([mean - half, mean + half], axis=-1)


def paired_predictions(frames: list[pd.DataFrame]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, lesion ids and (R, N) probabilities of R runs' predictions.csv frames, which a paired comparison
    needs scored on the same images in the same order."""
    base = frames[0]
    for frame in frames[1:]:
        if not frame.image_id.equals(base.image_id):
            raise ValueError("runs compared on one test set must be scored on the same images, in the same order")
    return base.label.to_numpy(), base.lesion_id.to_numpy(), np.stack([f.probability.to_numpy() for f in frames])


def _json_number(x: float) -> float | None:
    return None if np.isnan(x) else round(float(x), 6)


def metric_values(values: np.ndarray) -> dict[str, float | None]:
    """One value per metric, rounded for JSON; NaN (undefined) as None."""
    return {m: _json_number(v) for m, v in zip(METRICS, values, strict=True)}


def seed_estimate(per_seed: np.ndarray, boot: np.ndarray, seeds: list[int]) -> dict[str, Any]:
    """Per seed, the mean over seeds and its seed-and-lesion interval: per_seed (S, M), boot (B, S, M)."""
    ci = seed_lesion_interval(per_seed, boot)
    return {
        "per_seed": {str(s): metric_values(per_seed[i]) for i, s in enumerate(seeds)},
        "mean": metric_values(per_seed.mean(0)),
        "ci95": {m: [_json_number(x) for x in ci[j]] for j, m in enumerate(METRICS)},
    }


def interval_method(n_seeds: int) -> str:
    """The sentence that says what ``seed_lesion_interval`` counted for ``n_seeds`` seeds."""
    return INTERVAL_METHOD if n_seeds > 1 else LESION_ONLY_METHOD


def lesion_weights(lesion_ids: np.ndarray, n_bootstrap: int, seed: int = 0) -> np.ndarray:
    """(n_bootstrap, n_images) per-image counts of lesion resamples, for vectorised bootstraps of means."""
    rng = np.random.default_rng(seed)
    _, lesion_index = np.unique(lesion_ids, return_inverse=True)
    n_lesions = lesion_index.max() + 1
    draws = rng.integers(n_lesions, size=(n_bootstrap, n_lesions))
    counts = np.stack([np.bincount(d, minlength=n_lesions) for d in draws])
    return counts[:, lesion_index].astype(np.float32)
