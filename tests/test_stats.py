"""The statistics behind the verdict, checked against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from qcnn.metrics import METRICS, score_ranks, threshold_for_recall, threshold_metrics
from qcnn.stats import (
    at_matched_recall,
    interval,
    interval_method,
    lesion_bootstrap,
    lesion_weights,
    mcnemar,
    seed_lesion_interval,
)


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    probs = np.clip(0.3 * labels + rng.normal(0.4, 0.2, 500), 0, 1).round(2)  # rounding makes ties
    return labels, probs


def _sklearn_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float, weights: np.ndarray | None) -> dict:
    pred = probs >= threshold
    kw = {"sample_weight": weights, "zero_division": 0.0}
    return {
        "accuracy": accuracy_score(labels, pred, sample_weight=weights),
        "precision": precision_score(labels, pred, **kw),
        "recall": recall_score(labels, pred, **kw),
        "specificity": recall_score(labels, pred, pos_label=0, **kw),
        "f1": f1_score(labels, pred, **kw),
        "balanced_accuracy": balanced_accuracy_score(labels, pred, sample_weight=weights),
        "auc": roc_auc_score(labels, probs, sample_weight=weights),
    }


@pytest.mark.parametrize("weighted", [False, True], ids=["unit weights", "resample counts"])
@pytest.mark.parametrize("threshold", [0.5, 0.7])
def test_threshold_metrics_match_sklearn(scores, weighted, threshold):
    labels, probs = scores
    weights = np.random.default_rng(1).integers(0, 4, len(labels)) if weighted else None
    ours = threshold_metrics(labels, probs, threshold, weights)
    theirs = _sklearn_metrics(labels, probs, threshold, weights)
    for m in METRICS:
        assert ours[m] == pytest.approx(theirs[m], abs=1e-12), m
    # a bootstrap's precomputed ranks change nothing
    assert threshold_metrics(labels, probs, threshold, weights, score_ranks(probs)) == ours


def test_undefined_metrics_are_zero_or_nan(scores):
    labels, probs = scores
    none_called = threshold_metrics(labels, probs, threshold=2.0)  # no positive prediction
    assert none_called["precision"] == none_called["f1"] == 0.0 and none_called["recall"] == 0.0
    assert np.isnan(threshold_metrics(np.zeros_like(labels), probs)["auc"])  # one class only
    only_benign = threshold_metrics(labels, probs, weights=(labels == 0).astype(float))  # weight 0 drops an image
    assert only_benign["recall"] == 0.0 and np.isnan(only_benign["auc"])


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
    assert (
        result["both_correct"],
        result["only_qcnn_correct"],
        result["only_classical_correct"],
        result["both_wrong"],
    ) == (3, 3, 0, 2)
    assert result["p_value"] == pytest.approx(0.25)  # two-sided exact: 2 * 0.5**3


def test_matched_recall_reaches_the_target(scores):
    labels, probs = scores
    for target in (0.5, 0.8, 0.95):
        threshold = threshold_for_recall(labels, probs, target)
        assert threshold_metrics(labels, probs, threshold)["recall"] >= target
        matched = at_matched_recall(labels, probs, target)
        assert matched["recall"] >= target and matched["threshold"] == threshold


def _simulated_study(
    rng: np.random.Generator, seed_sd: float, n_seeds: int = 5, n_images: int = 300, n_bootstrap: int = 200
) -> tuple[float, np.ndarray, np.ndarray]:
    """A paired per-image difference with a known mean: (truth, per-seed means (S, 1), bootstrap (B, S, 1)).

    Per image i and seed s: d = truth + seed effect + image effect (shared by all seeds: the one test set)
    + noise. The study's estimate is the mean over seeds of the test-set mean; its target is the truth
    (expectation over training seeds and test images). The bootstrap resamples lesions of 3 images.
    """
    truth = 0.02
    lesions = np.repeat(np.arange(n_images // 3), 3)
    image = rng.normal(0, 0.3, n_images // 3)[lesions] + rng.normal(0, 0.2, n_images)
    d = truth + rng.normal(0, seed_sd, (n_seeds, 1)) + image + rng.normal(0, 0.2, (n_seeds, n_images))
    weights = lesion_weights(lesions, n_bootstrap, seed=int(rng.integers(1 << 31)))
    per_seed = d.mean(1)[:, None]
    boot = (weights @ d.T / weights.sum(1, keepdims=True))[:, :, None]
    return truth, per_seed, boot


@pytest.mark.parametrize("seed_sd", [0.0, 0.02, 0.05])
def test_seed_lesion_interval_covers_the_truth_about_95_percent(seed_sd):
    rng = np.random.default_rng(1)
    hits = []
    for _ in range(1000):
        truth, per_seed, boot = _simulated_study(rng, seed_sd)
        lo, hi = seed_lesion_interval(per_seed, boot)[0]
        hits.append(lo <= truth <= hi)
    coverage = np.mean(hits)
    assert 0.925 <= coverage <= 0.97, coverage  # about 95 % (Monte Carlo SE 0.7 points), neither lax nor inflated


def test_lesion_only_interval_of_the_seed_mean_undercovers_when_seeds_vary():
    """The interval this method replaces: with real seed spread it misses the truth far too often."""
    rng = np.random.default_rng(2)
    hits = []
    for _ in range(300):
        truth, per_seed, boot = _simulated_study(rng, seed_sd=0.1)
        lo, hi = interval(boot.mean(1))[0]
        hits.append(lo <= truth <= hi)
    assert np.mean(hits) < 0.85


def test_seed_lesion_interval_widens_with_seed_spread():
    rng = np.random.default_rng(3)
    base = rng.normal(0, 1, (5, 1))
    boot = rng.normal(0, 0.01, (500, 5, 1))
    widths = []
    for spread in (0.0, 0.01, 0.02, 0.05):
        per_seed = 0.03 + spread * base
        lo, hi = seed_lesion_interval(per_seed, per_seed + boot)[0]
        widths.append(hi - lo)
    assert np.all(np.diff(widths) > 0), widths
    # with no seed spread, only the bootstrap variance is left, with the normal quantile (infinite df)
    assert widths[0] == pytest.approx(2 * 1.96 * np.std(boot.mean(1), ddof=1), rel=1e-3)
    # when seeds dominate, the quantile tends to Student's t with S - 1 = 4 df
    lo, hi = seed_lesion_interval(0.03 + 10 * base, 0.03 + 10 * base + boot)[0]
    assert hi - lo == pytest.approx(2 * 2.776 * 10 * np.std(base, ddof=1) / np.sqrt(5), rel=1e-3)


def test_seed_lesion_interval_with_one_seed_is_the_bootstrap_normal_interval():
    rng = np.random.default_rng(4)
    boot = rng.normal(0.1, 0.02, (4000, 1, 2))
    assert np.isnan(seed_lesion_interval(np.array([[0.1, 0.1]]), boot)).all()  # undefined unless asked for
    lo, hi = seed_lesion_interval(np.array([[0.1, 0.1]]), boot, lesions_if_one_seed=True)[0]
    assert (lo, hi) == pytest.approx((0.1 - 1.96 * 0.02, 0.1 + 1.96 * 0.02), abs=2e-3)
    assert "one seed" in interval_method(1) and "Welch-Satterthwaite" in interval_method(5)


def test_lesion_weights_count_whole_lesions():
    lesions = np.array(["a", "a", "b", "c", "c", "c"])
    w = lesion_weights(lesions, 50, seed=0)
    assert w.shape == (50, 6)
    assert np.all(w[:, 0] == w[:, 1]) and np.all(w[:, 3] == w[:, 5])  # one lesion, one count
    assert np.all(w[:, [0, 2, 3]].sum(1) == 3)  # three lesions drawn per resample
