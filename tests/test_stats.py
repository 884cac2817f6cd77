"""The statistics behind the verdict, checked against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from qcnn.metrics import METRICS, threshold_for_recall, threshold_metrics
from qcnn.stats import at_matched_recall, interval, lesion_bootstrap, mcnemar, weighted_metrics


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    probs = np.clip(0.3 * labels + rng.normal(0.4, 0.2, 500), 0, 1).round(2)  # rounding makes ties
    return labels, probs


def test_weighted_metrics_with_unit_weights_match_the_plain_ones(scores):
    labels, probs = scores
    plain = threshold_metrics(labels, probs, 0.5)
    weighted = dict(zip(METRICS, weighted_metrics(labels, probs, np.ones(len(labels)), 0.5), strict=True))
    for m in METRICS:
        assert weighted[m] == pytest.approx(plain[m], abs=1e-12), m


def test_weighted_auc_equals_sklearn_with_sample_weights(scores):
    labels, probs = scores
    weights = np.random.default_rng(1).integers(0, 4, len(labels))
    auc = weighted_metrics(labels, probs, weights)[METRICS.index("auc")]
    assert auc == pytest.approx(roc_auc_score(labels, probs, sample_weight=weights), abs=1e-12)


def test_lesion_bootstrap_resamples_whole_lesions(scores):
    labels, probs = scores
    lesions = np.repeat(np.arange(50), 10)  # 50 lesions of 10 identical-label images
    labels = np.repeat(labels[:50], 10)
    boot = lesion_bootstrap(labels, lesions, np.stack([probs, probs[::-1]]), n_bootstrap=200, seed=0)
    assert boot.shape == (200, 2, len(METRICS))
    lo, hi = interval(boot[:, 0, METRICS.index("accuracy")])
    point = threshold_metrics(labels, probs)["accuracy"]
    assert lo < point < hi
    # same seed, same resamples: the bootstrap is reproducible
    again = lesion_bootstrap(labels, lesions, np.stack([probs, probs[::-1]]), n_bootstrap=200, seed=0)
    assert np.array_equal(boot, again)


def test_mcnemar_counts_and_exact_p_value():
    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    qcnn = np.array([0.9, 0.9, 0.1, 0.1, 0.1, 0.9, 0.9, 0.1])  # right on all but #2 and #5
    classical = np.array([0.9, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9, 0.1])  # wrong on #1 #2 #3 #4 #5
    result = mcnemar(labels, qcnn, classical)
    assert (result["both_correct"], result["only_qcnn_correct"], result["only_classical_correct"],
            result["both_wrong"]) == (3, 3, 0, 2)
    assert result["p_value"] == pytest.approx(0.25)  # two-sided exact: 2 * 0.5**3


def test_matched_recall_reaches_the_target(scores):
    labels, probs = scores
    for target in (0.5, 0.8, 0.95):
        threshold = threshold_for_recall(labels, probs, target)
        assert threshold_metrics(labels, probs, threshold)["recall"] >= target
        matched = at_matched_recall(labels, probs, target)
        assert matched["recall"] >= target and matched["threshold"] == threshold
