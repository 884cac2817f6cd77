"""The referee's calculations, checked against independent ones (numerical integration, scikit-learn, loops)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.stats import norm
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, roc_curve

from qcnn import study
from qcnn.metrics import threshold_metrics
from qcnn.referee import (
    COUNT_METRICS,
    REPORTED_PREVALENCE,
    binormal_fpr,
    binormal_tpr,
    brier_and_ece,
    count_metrics,
    rates_to_metrics,
    reliability,
    reported_operating_point,
    reported_threshold_analysis,
    subgroups,
    threshold_for_fpr,
    youden_threshold,
)


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    labels = (rng.random(600) < 0.25).astype(int)
    probs = np.clip(0.35 * labels + rng.beta(2, 4, 600), 0, 1).round(3)
    return labels, probs


# --- binormal ROC ------------------------------------------------------------------------------------


def _integrated_point(auc: float, fpr: float) -> float:
    """TPR at ``fpr`` by integrating the two score densities directly (no closed form)."""
    a = np.sqrt(2) * norm.ppf(auc)
    # the threshold t where the negatives' upper tail holds fpr of their mass, found by root search on the integral
    from scipy.optimize import brentq

    t = brentq(lambda x: integrate.quad(norm.pdf, x, np.inf)[0] - fpr, -10, 10)
    return integrate.quad(lambda x: norm.pdf(x - a), t, np.inf)[0]


@pytest.mark.parametrize("auc", [0.6, 0.8858, 0.8906, 0.97])
def test_binormal_tpr_matches_numerical_integration(auc):
    for fpr in (0.01, 0.2436, 0.5, 0.9):
        assert binormal_tpr(auc, fpr) == pytest.approx(_integrated_point(auc, fpr), abs=1e-7)
    # the curve's area is the AUC it was fitted to
    area = integrate.quad(lambda f: binormal_tpr(auc, f), 0, 1, limit=200)[0]
    assert area == pytest.approx(auc, abs=1e-6)
    # fpr at a tpr inverts tpr at an fpr
    assert binormal_tpr(auc, binormal_fpr(auc, 0.85)) == pytest.approx(0.85, abs=1e-9)


def test_reported_operating_points_reproduce_the_reported_numbers():
    """The FPR derived from recall and precision gives back the reported precision and accuracy."""
    for kind in ("qcnn", "classical"):
        reported = study.EXPERIMENT_4[kind]
        point = reported_operating_point(reported)
        again = rates_to_metrics(point["recall"], point["fpr"], REPORTED_PREVALENCE)
        assert again["precision"] == pytest.approx(reported["precision"], abs=1e-9)
        assert point["implied_accuracy"] == pytest.approx(reported["accuracy"], abs=5e-4)
        assert again["f1"] == pytest.approx(reported["f1"], abs=5e-4)


def test_threshold_analysis_applies_its_rule():
    analysis = reported_threshold_analysis()
    q = study.EXPERIMENT_4["qcnn"]
    at = analysis["classical_at_qcnn_fpr"]
    assert at["specificity"] == pytest.approx(analysis["operating_points"]["qcnn"]["specificity"])
    gaps = [q[m] - at[m] for m in study.HEADLINE_METRICS]
    assert analysis["explainable_by_threshold"] == all(g <= 0.01 for g in gaps)
    # at a much higher prevalence the same reported recall/precision imply a different FPR: the rule is live
    assert (
        reported_threshold_analysis(0.4)["operating_points"]["qcnn"]["fpr"]
        != analysis["operating_points"]["qcnn"]["fpr"]
    )


# --- thresholds and counts ----------------------------------------------------------------------------


def test_count_metrics_match_threshold_metrics(scores):
    labels, probs = scores
    values = dict(zip(COUNT_METRICS, count_metrics(np.ones(len(labels)), labels, probs >= 0.5), strict=True))
    plain = threshold_metrics(labels, probs, 0.5)
    for m in ("accuracy", "precision", "recall", "specificity", "f1"):
        assert values[m] == pytest.approx(plain[m], abs=1e-12)
    assert values["positive_rate"] == pytest.approx(np.mean(probs >= 0.5))
    # integer weights are repeated images
    w = np.random.default_rng(1).integers(0, 3, len(labels))
    weighted = count_metrics(w.astype(float), labels, probs >= 0.5)
    repeated = count_metrics(np.ones(w.sum()), np.repeat(labels, w), np.repeat(probs, w) >= 0.5)
    assert np.allclose(weighted, repeated)


def test_threshold_for_fpr_is_the_lowest_threshold_within_the_target(scores):
    labels, probs = scores
    for target in (0.05, 0.2, 0.5):
        t = threshold_for_fpr(labels, probs, target)
        fpr = np.mean(probs[labels == 0] >= t)
        assert fpr <= target
        lower = np.max(probs[(labels == 0) & (probs < t)])  # the next threshold down lets one more negative in
        assert np.mean(probs[labels == 0] >= lower) > target


def test_youden_threshold_maximises_j(scores):
    labels, probs = scores
    t = youden_threshold(labels, probs)
    j = lambda th: np.mean(probs[labels == 1] >= th) - np.mean(probs[labels == 0] >= th)  # noqa: E731
    assert j(t) == pytest.approx(max(j(th) for th in np.unique(probs)), abs=1e-12)
    fpr, tpr, _ = roc_curve(labels, probs)
    assert j(t) == pytest.approx(np.max(tpr - fpr), abs=1e-12)


# --- calibration --------------------------------------------------------------------------------------


def test_brier_and_reliability_match_scikit_learn(scores):
    labels, probs = scores
    brier, ece = brier_and_ece(np.ones(len(labels)), labels, probs)
    assert brier == pytest.approx(brier_score_loss(labels, probs), abs=1e-12)
    observed, predicted = calibration_curve(labels, probs, n_bins=10, strategy="uniform")
    r = reliability(labels, probs)
    assert np.allclose(r["observed"], observed, atol=1e-6) and np.allclose(r["predicted"], predicted, atol=1e-6)
    # ECE as the textbook loop over equal-width bins
    edges = np.linspace(0, 1, 11)
    expected = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (probs > lo) & (probs <= hi) if lo > 0 else (probs >= lo) & (probs <= hi)
        if inside.any():
            expected += inside.mean() * abs(probs[inside].mean() - labels[inside].mean())
    assert ece == pytest.approx(expected, abs=1e-12)
    assert sum(r["count"]) == len(labels)


def test_weighted_calibration_equals_repeated_images(scores):
    labels, probs = scores
    w = np.random.default_rng(2).integers(0, 3, len(labels)).astype(float)
    weighted = brier_and_ece(w[None], labels, probs)
    repeated = brier_and_ece(
        np.ones((1, int(w.sum()))), np.repeat(labels, w.astype(int)), np.repeat(probs, w.astype(int))
    )
    assert np.allclose(weighted, repeated)


# --- subgroups ----------------------------------------------------------------------------------------


def test_subgroups_count_groups_flag_small_ones_and_leave_undefined_metrics_empty():
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame(
        {
            "image_id": [f"I{i}" for i in range(n)],
            "lesion_id": [f"L{i // 2}" for i in range(n)],
            "dx": np.where(np.arange(n) < 100, "mel", np.where(np.arange(n) < 390, "nv", "df")),
        }
    )
    frame["label"] = (frame.dx == "mel").astype(int)
    metadata = frame[["image_id"]].assign(
        sex=np.where(np.arange(n) % 2, "male", "female"),
        age=np.where(np.arange(n) % 3, 50.0, np.nan),
        localization="back",
    )
    p = {
        (k, s): np.clip(0.5 * frame.label.to_numpy() + rng.random(n) * 0.6, 0, 1)
        for k in ("qcnn", "classical")
        for s in (0, 1, 2)
    }
    weights = np.random.default_rng(0).multinomial(n, np.ones(n) / n, size=50).astype(float)
    out = subgroups(frame, metadata, weights, [0, 1, 2], p)
    by_dx = {g["group"]: g for g in out["by"]["diagnosis"]}
    assert {k: g["images"] for k, g in by_dx.items()} == {"mel": 100, "nv": 290, "df": 10}
    assert by_dx["df"]["small_sample"] and not by_dx["nv"]["small_sample"]  # 5 lesions vs 145
    assert by_dx["nv"]["qcnn"]["mean"]["recall"] is None and by_dx["mel"]["qcnn"]["mean"]["specificity"] is None
    mel_recall = np.mean([np.mean(p[("qcnn", s)][:100] >= 0.5) for s in (0, 1, 2)])
    assert by_dx["mel"]["qcnn"]["mean"]["recall"] == pytest.approx(mel_recall, abs=1e-6)
    assert {g["group"] for g in out["by"]["age_band"]} == {"45–59", "unknown"}
    lo, hi = by_dx["mel"]["difference"]["ci95"]["accuracy"]
    assert -1 <= lo <= hi <= 1


def test_validation_thresholds_use_the_seeds_that_have_validation_predictions(tmp_path):
    """Two seeds with validation predictions: seeds-and-lesions intervals; one: lesion-only; none: not measured."""
    from qcnn.referee import load_predictions, validation_thresholds
    from qcnn.stats import INTERVAL_METHOD, LESION_ONLY_METHOD, lesion_weights
    from qcnn.testing import write_synthetic_results

    def measured(val_seeds: tuple[int, ...]) -> dict:
        folder = write_synthetic_results(
            tmp_path / str(len(val_seeds)), n_test=300, val_seeds=val_seeds, with_summary=False
        )
        test = load_predictions(folder, [0, 1, 2])
        labels = test["frame"].label.to_numpy()
        weights = lesion_weights(test["frame"].lesion_id.to_numpy(), 200).astype(float)
        return validation_thresholds(folder, labels, weights, [0, 1, 2], test["p"])

    assert measured(())["status"] == "not yet measured"
    one = measured((0,))
    assert one["seeds"] == [0] and one["seeds_without_validation_predictions"] == [1, 2]
    assert one["interval_method"] == LESION_ONLY_METHOD and len(one["youden"]["qcnn"]["thresholds"]) == 1
    two = measured((0, 2))
    assert two["seeds"] == [0, 2] and two["interval_method"] == INTERVAL_METHOD
    lo, hi = two["recall_85"]["difference"]["ci95"]["recall"]
    assert lo <= two["recall_85"]["difference"]["mean"]["recall"] <= hi
