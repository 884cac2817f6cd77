"""What a referee asks of the comparison: the threshold question, calibration, subgroups.

``referee(results_dir, data_dir)`` writes ``results/referee.json`` from the committed per-run files
(``predictions.csv``; ``val_predictions.csv`` where present) and, for subgroups, HAM10000's
metadata. Every interval over seeds is ``qcnn.stats.seed_lesion_interval`` (seeds and test lesions);
per-seed intervals are lesion-bootstrap percentiles. Thresholds picked on the test set itself (matched
FPR, matched recall) are held fixed in the bootstrap: their own selection noise is not counted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from qcnn import paths, study
from qcnn.constants import MODEL_KINDS, THRESHOLD
from qcnn.errors import MissingFileError, QcnnError
from qcnn.io import write_json
from qcnn.metrics import threshold_for_recall
from qcnn.stats import interval, interval_method, lesion_weights, seed_lesion_interval

REFEREE_FILE = "referee.json"
VAL_PREDICTIONS_FILE = "val_predictions.csv"
COUNT_METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "positive_rate")
METRIC_INDEX = {m: i for i, m in enumerate(COUNT_METRICS)}
N_CALIBRATION_BINS = 10
FIXED_RECALL = 0.85
SMALL_GROUP_LESIONS = 30  # below this many lesions a subgroup's interval is flagged as unreliable
SMALL_GROUP_CLASS = 10  # ... or fewer images than this of the class a metric is computed on
AGE_BANDS = ((0, 30, "< 30"), (30, 45, "30–44"), (45, 60, "45–59"), (60, 75, "60–74"), (75, 200, "≥ 75"))
# Malignant at 22.25 % (2,212 / 9,942): both reported accuracies reproduce exactly at this prevalence.
REPORTED_PREVALENCE = study.EXPERIMENT_3_TEST["n_malignant"] / study.EXPERIMENT_3_TEST["n"]
EXPLAINED_WITHIN = 0.01  # "explainable by threshold alone": each headline gap within 1 point at matched FPR


# --- the study's reported numbers under a binormal ROC ---------------------------------------------


def reported_operating_point(metrics: dict, prevalence: float = REPORTED_PREVALENCE) -> dict:
    """FPR, positive rate and accuracy implied by a reported recall and precision at ``prevalence``.

    precision = πR / (πR + (1 − π)·FPR), solved for FPR. The accuracy this implies is returned as a check
    against the reported accuracy.
    """
    recall, precision = metrics["recall"], metrics["precision"]
    fpr = prevalence * recall * (1 - precision) / (precision * (1 - prevalence))
    return {
        "recall": recall,
        "fpr": fpr,
        "specificity": 1 - fpr,
        "positive_rate": prevalence * recall + (1 - prevalence) * fpr,
        "implied_accuracy": prevalence * recall + (1 - prevalence) * (1 - fpr),
    }


def binormal_separation(auc: float) -> float:
    """Equal-variance binormal ROC: positives ~ N(a, 1), negatives ~ N(0, 1), AUC = Φ(a / √2)."""
    return float(np.sqrt(2) * norm.ppf(auc))


def binormal_tpr(auc: float, fpr: float) -> float:
    """TPR of the equal-variance binormal ROC with area ``auc`` at false-positive rate ``fpr``."""
    return float(norm.cdf(binormal_separation(auc) + norm.ppf(fpr)))


def binormal_fpr(auc: float, tpr: float) -> float:
    """FPR of the same curve at true-positive rate ``tpr``."""
    return float(norm.cdf(norm.ppf(tpr) - binormal_separation(auc)))


def rates_to_metrics(tpr: float, fpr: float, prevalence: float) -> dict:
    """Threshold metrics of an operating point (TPR, FPR) on a population with ``prevalence``."""
    tp, fp = prevalence * tpr, (1 - prevalence) * fpr
    precision = tp / (tp + fp) if tp + fp else 0.0
    return {
        "accuracy": tp + (1 - prevalence) * (1 - fpr),
        "precision": precision,
        "recall": tpr,
        "specificity": 1 - fpr,
        "f1": 2 * precision * tpr / (precision + tpr) if precision + tpr else 0.0,
        "positive_rate": tp + fp,
    }


def reported_threshold_analysis(prevalence: float = REPORTED_PREVALENCE) -> dict:
    """Could the study's headline come from threshold choice alone, on two near-identical ROC curves?

    Each model's reported recall and precision give its FPR. A binormal ROC with the model's reported
    AUC then says what the classical model would score if operated at the QCNN's FPR (and at its recall).
    The headline is "explainable by threshold alone" when, at the QCNN's FPR, the classical model's
    accuracy, precision and F1 all come within ``EXPLAINED_WITHIN`` of the QCNN's (or above).
    """
    reported = study.EXPERIMENT_4
    points = {k: reported_operating_point(reported[k], prevalence) for k in MODEL_KINDS}
    for k in MODEL_KINDS:  # how well one binormal curve fits the reported point
        p = points[k]
        p["auc"] = reported[k]["auc"]
        p["binormal_tpr_at_fpr"] = binormal_tpr(reported[k]["auc"], p["fpr"])
        p["auc_implied_by_point"] = float(norm.cdf((norm.ppf(p["recall"]) - norm.ppf(p["fpr"])) / np.sqrt(2)))
    auc_c, q = reported["classical"]["auc"], points["qcnn"]
    at_fpr = rates_to_metrics(binormal_tpr(auc_c, q["fpr"]), q["fpr"], prevalence)
    at_recall = rates_to_metrics(q["recall"], binormal_fpr(auc_c, q["recall"]), prevalence)
    headline = study.HEADLINE_METRICS
    gap = {m: reported["qcnn"][m] - at_fpr[m] for m in headline}
    explained = all(g <= EXPLAINED_WITHIN for g in gap.values())
    return {
        "prevalence": prevalence,
        "assumptions": [
            f"test prevalence {100 * prevalence:.2f} % (2,212 of 9,942, Experiment 3's test set; both reported "
            "accuracies reproduce at it)",
            "each model's ROC is equal-variance binormal (scores of negatives N(0, 1), of positives N(a, 1)) with "
            "its reported AUC: a = √2·Φ⁻¹(AUC), TPR = Φ(a + Φ⁻¹(FPR))",
            "the reported recall and precision are exact (4 digits); FPR = πR(1 − P) / (P(1 − π))",
        ],
        "operating_points": points,
        "classical_at_qcnn_fpr": at_fpr,
        "classical_at_qcnn_recall": at_recall,
        "qcnn_minus_classical_at_qcnn_fpr": gap,
        "rule": f"explainable by threshold alone when, at the QCNN's FPR, the classical model's accuracy, "
        f"precision and F1 are each within {100 * EXPLAINED_WITHIN:.0f} point of the QCNN's or above",
        "explainable_by_threshold": explained,
        "binormal_roc": {k: binormal_curve(reported[k]["auc"]) for k in MODEL_KINDS},
    }


def binormal_curve(auc: float, n_points: int = 101) -> dict[str, list[float]]:
    """Points of the equal-variance binormal ROC with area ``auc`` (for drawing it)."""
    fpr = np.concatenate([[0.0], np.logspace(-4, 0, n_points - 1)])
    tpr = norm.cdf(binormal_separation(auc) + norm.ppf(fpr))
    return {"fpr": fpr.round(6).tolist(), "tpr": tpr.round(6).tolist()}


# --- vectorised bootstrap of count-based metrics ----------------------------------------------------


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def count_metrics(weights: np.ndarray, labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(..., len(COUNT_METRICS)) metrics of binary ``predicted`` under per-image ``weights`` (..., n)."""
    pos, pred = labels == 1, predicted.astype(bool)
    tp, fp = weights @ (pred & pos), weights @ (pred & ~pos)
    fn, tn = weights @ (~pred & pos), weights @ (~pred & ~pos)
    total = tp + fp + fn + tn
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    values = {
        "accuracy": _ratio(tp + tn, total),
        "precision": precision,
        "recall": recall,
        "specificity": _ratio(tn, tn + fp),
        "f1": _ratio(2 * precision * recall, precision + recall),
        "positive_rate": _ratio(tp + fp, total),
    }
    return np.stack([np.asarray(values[m], dtype=float) for m in COUNT_METRICS], axis=-1)


def _rounded(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else round(x, 6)


def _over_seeds(per_seed: np.ndarray, boot: np.ndarray, names: tuple[str, ...], lower: float = 0.0) -> dict:
    """Mean over seeds with the seeds-and-lesions interval; per_seed (S, M), boot (B, S, M).

    With one seed the interval is the lesion-only one (``interval_method`` in referee.json says so).
    Intervals are clipped to the values' range: [0, 1] for a model's rates, [``lower`` = −1, 1] for differences.
    """
    ci = np.clip(seed_lesion_interval(per_seed, boot, lesions_if_one_seed=True), lower, 1.0)
    return {
        "mean": {m: _rounded(v) for m, v in zip(names, per_seed.mean(0), strict=True)},
        "ci95": {m: [_rounded(lo), _rounded(hi)] for m, (lo, hi) in zip(names, ci, strict=True)},
        "per_seed": [{m: _rounded(v) for m, v in zip(names, row, strict=True)} for row in per_seed],
    }


def threshold_for_fpr(labels: np.ndarray, probabilities: np.ndarray, target_fpr: float) -> float:
    """The lowest threshold whose false-positive rate does not exceed ``target_fpr``."""
    negatives = np.sort(np.asarray(probabilities)[np.asarray(labels) == 0])[::-1]
    k = int(np.floor(target_fpr * len(negatives) + 1e-9))  # negatives allowed above the threshold
    if k >= len(negatives):
        return float(negatives[-1])
    return float(np.nextafter(negatives[k], np.inf))


def youden_threshold(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The threshold maximising Youden's J = recall + specificity − 1."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(labels, probabilities)
    best = int(np.argmax(tpr - fpr))
    return float(min(thresholds[best], 1.0))


# --- reading the runs --------------------------------------------------------------------------------


def _run_file(results_dir: Path, kind: str, seed: int, file: str) -> Path:
    return results_dir / paths.RUNS_DIR / paths.run_name(kind, seed) / file


def load_predictions(results_dir: Path, seeds: list[int], file: str = "predictions.csv") -> dict | None:
    """{"frame": first run's image rows, "p": {(kind, seed): probabilities}}; None if any file is missing."""
    frames = {}
    for kind in MODEL_KINDS:
        for seed in seeds:
            path = _run_file(results_dir, kind, seed, file)
            if not path.is_file():
                return None
            frames[(kind, seed)] = pd.read_csv(path, dtype={"image_id": str, "lesion_id": str})
    base = next(iter(frames.values()))
    for frame in frames.values():
        if not frame.image_id.equals(base.image_id):
            raise QcnnError(f"Runs were scored on different images in {file}; re-run `qcnn evaluate`.")
    return {
        "frame": base[["image_id", "lesion_id", "dx", "label"]],
        "p": {key: f.probability.to_numpy() for key, f in frames.items()},
    }


# --- matched operating points and validation-chosen thresholds ---------------------------------------


def _paired_block(
    labels: np.ndarray,
    weights: np.ndarray,
    seeds: list[int],
    predicted: dict[tuple[str, int], np.ndarray],
    thresholds: dict[tuple[str, int], float],
) -> dict:
    """Both models and their difference over seeds, for per-run binary predictions."""
    ones = np.ones(len(labels))
    point = {k: np.stack([count_metrics(ones, labels, predicted[(k, s)]) for s in seeds]) for k in MODEL_KINDS}
    boot = {
        k: np.stack([count_metrics(weights, labels, predicted[(k, s)]) for s in seeds], axis=1) for k in MODEL_KINDS
    }
    out = {
        k: {
            **_over_seeds(point[k], boot[k], COUNT_METRICS),
            "thresholds": [round(thresholds[(k, s)], 6) for s in seeds],
        }
        for k in MODEL_KINDS
    }
    out["difference"] = _over_seeds(
        point["qcnn"] - point["classical"], boot["qcnn"] - boot["classical"], COUNT_METRICS, lower=-1.0
    )
    return out


def matched_operating_points(labels: np.ndarray, weights: np.ndarray, seeds: list[int], p: dict) -> dict:
    """At 0.5; and each model moved to the other's FPR / recall at 0.5, per seed."""

    def at(thresholds: dict) -> dict:
        predicted = {key: p[key] >= t for key, t in thresholds.items()}
        return _paired_block(labels, weights, seeds, predicted, thresholds)

    half = {(k, s): THRESHOLD for k in MODEL_KINDS for s in seeds}
    out = {"at_0.5": at(half)}
    for moved, anchor in (("classical", "qcnn"), ("qcnn", "classical")):
        fpr_t, rec_t = dict(half), dict(half)
        for s in seeds:
            anchor_pred = p[(anchor, s)] >= THRESHOLD
            fpr = float(np.mean(anchor_pred[labels == 0]))
            recall = float(np.mean(anchor_pred[labels == 1]))
            fpr_t[(moved, s)] = threshold_for_fpr(labels, p[(moved, s)], fpr)
            rec_t[(moved, s)] = threshold_for_recall(labels, p[(moved, s)], recall)
        out[f"{moved}_at_{anchor}_fpr"] = at(fpr_t)
        out[f"{moved}_at_{anchor}_recall"] = at(rec_t)
    return out


def validation_thresholds(
    results_dir: Path, labels: np.ndarray, weights: np.ndarray, seeds: list[int], p: dict
) -> dict:
    """Thresholds chosen on each run's validation predictions (Youden's J; recall 85 %), applied to test.

    Over the seeds whose runs wrote validation predictions (older evaluations did not); the interval
    says what it counts: seeds and lesions with two or more such seeds, test lesions only with one.
    """
    with_val = [
        s for s in seeds if all(_run_file(results_dir, k, s, VAL_PREDICTIONS_FILE).is_file() for k in MODEL_KINDS)
    ]
    val = load_predictions(results_dir, with_val, VAL_PREDICTIONS_FILE) if with_val else None
    if val is None:
        return {
            "status": "not yet measured",
            "reason": f"the runs' {VAL_PREDICTIONS_FILE} (validation-pool predictions) are not in the results; "
            "`qcnn evaluate` has to write them",
        }
    val_labels = val["frame"].label.to_numpy()
    missing = [s for s in seeds if s not in with_val]
    out = {
        "status": "measured",
        "seeds": with_val,
        "interval_method": interval_method(len(with_val)),
        "seeds_without_validation_predictions": missing,
    }
    for rule, choose in (
        ("youden", lambda y, q: youden_threshold(y, q)),
        ("recall_85", lambda y, q: threshold_for_recall(y, q, FIXED_RECALL)),
    ):
        thresholds = {key: choose(val_labels, val["p"][key]) for key in val["p"]}
        predicted = {key: p[key] >= t for key, t in thresholds.items()}
        out[rule] = _paired_block(labels, weights, with_val, predicted, thresholds)
    return out


# --- calibration -------------------------------------------------------------------------------------


def calibration_bins(probabilities: np.ndarray, n_bins: int = N_CALIBRATION_BINS) -> np.ndarray:
    """Equal-width bin index of each probability (the binning of sklearn's ``calibration_curve``)."""
    return np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], probabilities)


def brier_and_ece(
    weights: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, n_bins: int = N_CALIBRATION_BINS
) -> tuple[np.ndarray, np.ndarray]:
    """Brier score and expected calibration error under per-image ``weights`` (..., n).

    ECE = Σ_bins (n_bin / n) · |mean predicted − observed fraction| over equal-width bins.
    """
    total = weights.sum(-1)
    brier = weights @ (probabilities - labels) ** 2 / total
    onehot = np.eye(n_bins)[calibration_bins(probabilities, n_bins)]
    gap = weights @ (onehot * (probabilities - labels)[:, None])
    return brier, np.abs(gap).sum(-1) / total


def reliability(labels: np.ndarray, probabilities: np.ndarray, n_bins: int = N_CALIBRATION_BINS) -> dict:
    """Per non-empty bin: mean predicted probability, observed malignant fraction, image count."""
    bins = calibration_bins(probabilities, n_bins)
    count = np.bincount(bins, minlength=n_bins)
    keep = count > 0
    predicted = np.bincount(bins, probabilities, n_bins)[keep] / count[keep]
    observed = np.bincount(bins, labels, n_bins)[keep] / count[keep]
    return {
        "predicted": predicted.round(6).tolist(),
        "observed": observed.round(6).tolist(),
        "count": count[keep].tolist(),
    }


def calibration(labels: np.ndarray, weights: np.ndarray, seeds: list[int], p: dict) -> dict:
    names = ("brier", "ece")
    ones = np.ones(len(labels))
    point, boot = {}, {}
    for k in MODEL_KINDS:
        point[k] = np.array([np.stack(brier_and_ece(ones, labels, p[(k, s)])) for s in seeds])  # (S, 2)
        boot[k] = np.stack([np.stack(brier_and_ece(weights, labels, p[(k, s)]), -1) for s in seeds], 1)
    out = {"n_bins": N_CALIBRATION_BINS, "binning": "equal width on [0, 1]", "seeds": seeds}
    for k in MODEL_KINDS:
        per_seed_ci = [interval(boot[k][:, i]) for i in range(len(seeds))]
        out[k] = {
            **_over_seeds(point[k], boot[k], names),
            "per_seed_ci95": [
                {m: [_rounded(lo), _rounded(hi)] for m, (lo, hi) in zip(names, ci, strict=True)} for ci in per_seed_ci
            ],
            "reliability_pooled": reliability(np.tile(labels, len(seeds)), np.concatenate([p[(k, s)] for s in seeds])),
            "reliability_per_seed": [reliability(labels, p[(k, s)]) for s in seeds],
        }
    out["difference"] = _over_seeds(
        point["qcnn"] - point["classical"], boot["qcnn"] - boot["classical"], names, lower=-1.0
    )
    return out


# --- subgroups ---------------------------------------------------------------------------------------


def age_band(age: float) -> str:
    if pd.isna(age):
        return "unknown"
    return next(name for lo, hi, name in AGE_BANDS if lo <= age < hi)


def subgroup_table(frame: pd.DataFrame, metadata: pd.DataFrame) -> pd.DataFrame:
    """The test images with their diagnosis, sex, age band and body site from HAM10000's metadata."""
    meta = metadata.set_index("image_id")
    joined = frame.join(meta[["sex", "age", "localization"]], on="image_id")
    return joined.assign(
        diagnosis=joined.dx,
        sex=joined.sex.fillna("unknown"),
        age_band=joined.age.map(age_band),
        body_site=joined.localization.fillna("unknown"),
    )


SUBGROUP_METRICS = ("accuracy", "recall", "specificity")


def subgroups(frame: pd.DataFrame, metadata: pd.DataFrame, weights: np.ndarray, seeds: list[int], p: dict) -> dict:
    """Accuracy, recall and specificity per group (diagnosis, sex, age band, body site), both models."""
    table = subgroup_table(frame, metadata)
    labels = table.label.to_numpy()
    idx = {name: METRIC_INDEX[name] for name in SUBGROUP_METRICS}
    out = {
        "small_sample_rule": f"fewer than {SMALL_GROUP_LESIONS} lesions, or fewer than {SMALL_GROUP_CLASS} "
        "images of the class a metric is computed on",
        "metrics": list(SUBGROUP_METRICS),
        "by": {},
    }
    predicted = {key: v >= THRESHOLD for key, v in p.items()}
    for column in ("diagnosis", "sex", "age_band", "body_site"):
        groups = []
        for value, rows in table.groupby(column, sort=True):
            mask = (table[column] == value).to_numpy()
            n_pos, n_neg = int(labels[mask].sum()), int((1 - labels[mask]).sum())
            w, ones = weights * mask, mask.astype(float)
            point = {k: np.stack([count_metrics(ones, labels, predicted[(k, s)]) for s in seeds]) for k in MODEL_KINDS}
            boot = {k: np.stack([count_metrics(w, labels, predicted[(k, s)]) for s in seeds], 1) for k in MODEL_KINDS}
            cols = list(idx.values())
            entry = {
                "group": str(value),
                "images": int(mask.sum()),
                "lesions": int(rows.lesion_id.nunique()),
                "malignant": n_pos,
                "benign": n_neg,
            }
            for k in MODEL_KINDS:
                entry[k] = _over_seeds(point[k][:, cols], boot[k][:, :, cols], SUBGROUP_METRICS)
            entry["difference"] = _over_seeds(
                point["qcnn"][:, cols] - point["classical"][:, cols],
                boot["qcnn"][:, :, cols] - boot["classical"][:, :, cols],
                SUBGROUP_METRICS,
                lower=-1.0,
            )
            for part in ("mean", "ci95"):  # a metric of a class the group lacks is undefined, not 0
                for block in (entry["qcnn"], entry["classical"], entry["difference"]):
                    if n_pos == 0:
                        block[part]["recall"] = None
                    if n_neg == 0:
                        block[part]["specificity"] = None
            entry["small_sample"] = bool(
                entry["lesions"] < SMALL_GROUP_LESIONS
                or (0 < n_pos < SMALL_GROUP_CLASS)
                or (0 < n_neg < SMALL_GROUP_CLASS)
            )
            groups.append(entry)
        out["by"][column] = groups
    return out


# --- the command -------------------------------------------------------------------------------------


def _seeds(results_dir: Path) -> list[int]:
    summary = json.loads((results_dir / paths.SUMMARY_FILE).read_text())
    return list(summary["seeds"])


def read_metadata(data_dir: str | Path | None) -> pd.DataFrame | None:
    """HAM10000_metadata.csv from ``data_dir`` (or $QCNN_DATA_DIR); None when there is none."""
    data_dir = data_dir or os.environ.get("QCNN_DATA_DIR")
    path = Path(data_dir) / "HAM10000_metadata.csv" if data_dir else None
    if path is None or not path.is_file():
        return None
    return pd.read_csv(path, dtype={"image_id": str, "lesion_id": str})


def referee(
    results_dir: str | Path,
    data_dir: str | Path | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    metadata: pd.DataFrame | None = None,
) -> dict:
    """Write results/referee.json: threshold analysis, calibration and subgroups, from the committed runs.

    ``metadata`` (image_id, sex, age, localization) overrides the data folder's HAM10000_metadata.csv.
    """
    results_dir = Path(results_dir)
    if not (results_dir / paths.SUMMARY_FILE).is_file():
        raise MissingFileError(f"{results_dir / paths.SUMMARY_FILE} not found: run `qcnn summarize` first.")
    seeds = _seeds(results_dir)
    test = load_predictions(results_dir, seeds)
    if test is None:
        raise MissingFileError(f"predictions.csv missing for some of seeds {seeds}: run `qcnn evaluate` first.")
    frame, p = test["frame"], test["p"]
    labels = frame.label.to_numpy()
    weights = lesion_weights(frame.lesion_id.to_numpy(), n_bootstrap, seed).astype(float)
    metadata = metadata if metadata is not None else read_metadata(data_dir)
    out = {
        "seeds": seeds,
        "n_test": len(labels),
        "n_bootstrap": n_bootstrap,
        "bootstrap_unit": "lesion",
        "bootstrap_seed": seed,
        "interval_method": interval_method(len(seeds)),
        "reported_threshold": reported_threshold_analysis(),
        "matched": matched_operating_points(labels, weights, seeds, p),
        "validation_thresholds": validation_thresholds(results_dir, labels, weights, seeds, p),
        "calibration": calibration(labels, weights, seeds, p),
        "subgroups": (
            subgroups(frame, metadata, weights, seeds, p)
            if metadata is not None
            else {"status": "not yet measured", "reason": "HAM10000_metadata.csv not found: set QCNN_DATA_DIR"}
        ),
    }
    write_json(results_dir / REFEREE_FILE, out)
    return out
