"""Finite shots: the QCNN as a quantum computer would run it, and what that would cost.

On hardware the 256 outcome probabilities of a patch circuit are not read out; they are estimated
from S repeated measurements (shots). Here each patch's exact distribution is replaced by the
relative frequencies of a seeded multinomial sample of S shots from it, and the rest of the model
(mean over the 196 patches, x 256, the linear classifier) runs unchanged.

Every image needs 196 circuits, so S shots per circuit cost 196 x S shots per image. Training with
gradients estimated on hardware needs more circuits again (``parameter_shift_circuits``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from qcnn.constants import GRID, N_OUTCOMES, N_QUBITS, THRESHOLD
from qcnn.io import write_json
from qcnn.metrics import score_ranks, metric_vector
from qcnn.stats import interval

SHOT_COUNTS = (1, 10, 100, 1_000, 10_000)  # fixed before any run
N_DRAWS = 10  # repeated shot draws per shot count (the intervals' shot component)
N_BOOTSTRAP = 2000  # lesion resamples, as in the main evaluation
SEED = 0
REPORTED_METRICS = ("auc", "balanced_accuracy", "f1", "accuracy", "recall", "specificity", "precision")
SHOTS_FILE = "shots.json"
PATCHES = GRID * GRID
_CHUNK = 16_384  # patch circuits sampled at a time


# --- sampling -----------------------------------------------------------------------------------


def sample_counts(probabilities: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """(M, K) exact distributions -> (M, K) int64 outcome counts of ``shots`` measurements each.

    A multinomial sample per row. With fewer shots than outcomes, drawing the shots themselves
    (inverse CDF) is cheaper than numpy's per-outcome conditional binomials; both are exact.
    """
    if shots < 1:
        raise ValueError(f"shots must be a positive integer, got {shots}")
    p = np.asarray(probabilities, dtype=np.float64)
    p = np.clip(p, 0.0, None)
    p /= p.sum(axis=1, keepdims=True)
    m, k = p.shape
    if shots >= k:
        return rng.multinomial(shots, p)
    cdf = np.cumsum(p, axis=1)
    cdf[:, -1] = 1.0  # rounding can leave the last entry a hair below 1
    u = rng.random((m, shots))
    outcome = np.minimum(torch.searchsorted(torch.from_numpy(cdf), torch.from_numpy(u), right=True).numpy(), k - 1)
    return np.bincount((outcome + k * np.arange(m)[:, None]).ravel(), minlength=m * k).reshape(m, k)


def estimate_probabilities(probabilities: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """Relative frequencies of ``shots`` measurements per row: what hardware would report."""
    return sample_counts(probabilities, shots, rng) / shots


def shot_logits(
    patch_probs: np.ndarray, readout: np.ndarray, bias: float, shots: int, rng: np.random.Generator
) -> np.ndarray:
    """(N, 196, 256) exact patch distributions -> (N,) logits with every patch estimated from ``shots``.

    logit = bias + readout . (N_OUTCOMES x mean over patches of the estimated distributions); only
    readout . counts of each patch is kept, so memory stays at one chunk of counts.
    """
    n, patches, k = patch_probs.shape
    flat = patch_probs.reshape(-1, k)
    per_patch = np.empty(len(flat))
    for start in range(0, len(flat), _CHUNK):
        per_patch[start : start + _CHUNK] = sample_counts(flat[start : start + _CHUNK], shots, rng) @ readout
    return bias + N_OUTCOMES * per_patch.reshape(n, patches).mean(1) / shots


def exact_logits(patch_probs: np.ndarray, readout: np.ndarray, bias: float) -> np.ndarray:
    return bias + N_OUTCOMES * patch_probs.astype(np.float64).mean(1) @ readout


def sigmoid(x: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(x)


def draw_rng(seed: int, shots: int, draw: int) -> np.random.Generator:
    """One independent, reproducible stream per (seed, shot count, draw)."""
    return np.random.default_rng([seed, shots, draw])


# --- the shot budget ----------------------------------------------------------------------------


def parameter_shift_circuits(n_weights: int, n_angles: int, uploads: int) -> dict:
    """Circuit executions per patch for one forward pass and its gradient by the parameter-shift rule.

    Every gate parameter here (Rot's three Euler angles, the RY embedding angles) enters one gate
    whose generator has eigenvalues +-1/2, so the two-term rule applies: two shifted circuits per
    occurrence. Each angle is encoded ``uploads`` times, so it needs 2 x uploads circuits.
    """
    weight_circuits, angle_circuits = 2 * n_weights, 2 * uploads * n_angles
    return {
        "formula": "1 + 2 * n_weights + 2 * uploads * n_angles",
        "forward": 1,
        "weight_gradient": weight_circuits,
        "angle_gradient": angle_circuits,
        "per_patch": 1 + weight_circuits + angle_circuits,
    }


def shot_budget(shots: int, n_test: int, n_train: int, n_weights: int, uploads: int) -> dict:
    """Shots for one image, the test pool, and one training epoch with parameter-shift gradients."""
    per_patch_training = parameter_shift_circuits(n_weights, N_QUBITS, uploads)["per_patch"]
    return {
        "shots": shots,
        "circuits_per_image": PATCHES,
        "per_image": PATCHES * shots,
        "test_pool": n_test * PATCHES * shots,
        "training_epoch_circuits": n_train * PATCHES * per_patch_training,
        "training_epoch": n_train * PATCHES * per_patch_training * shots,
    }


# --- the evaluation -----------------------------------------------------------------------------


@dataclass
class PatchDistributions:
    """The seed-0 QCNN's exact per-patch distributions on the test pool, and what reads them."""

    probs: np.ndarray  # (N, 196, 256) float32
    angles: np.ndarray  # (N, 196, 8) float32
    readout: np.ndarray  # (256,) float64: classifier weights
    bias: float
    test: pd.DataFrame  # image_id, lesion_id, label in split order
    weights: np.ndarray  # the quantum layer's weights (reuploads, layers, 8, 3)
    entangling: str = "strong"  # the quantum layer's entangling blocks


def load_test_features(
    split: pd.DataFrame, data_dir: str | Path, checkpoint_dir: str | Path, stage: str, positions: np.ndarray | None
) -> torch.Tensor:
    """The test pool's float32 features at ``stage`` (the main evaluation's): the one place that reads them.

    With ``positions`` (a sample of the pool), only those images are computed, the way the cache computes them.
    """
    from qcnn.features import cached_features, compute_features, frozen_stage
    from qcnn.images import load_images

    if positions is None:
        return cached_features(split, "test", 1, data_dir, checkpoint_dir, stage=stage, precision="fp32")[0]
    ids = split[split.pool == "test"].image_id.iloc[positions].tolist()
    return compute_features(frozen_stage(checkpoint_dir, stage), load_images(data_dir, ids), 0, "fp32")


@torch.no_grad()
def patch_distributions(
    split: pd.DataFrame,
    data_dir: str | Path,
    checkpoint_dir: str | Path,
    positions: np.ndarray | None = None,
    batch_size: int = 64,
) -> PatchDistributions:
    """Run the seed-0 QCNN (checkpoints/qcnn.safetensors) in float32 up to its 256 probabilities per patch.

    The whole test pool, or the images at ``positions`` in it.
    """
    from qcnn.models import load_model

    model = load_model("qcnn", checkpoint_dir)
    head = model.head
    features = load_test_features(split, data_dir, checkpoint_dir, model.cached_stage, positions)
    test = split[split.pool == "test"].reset_index(drop=True)[["image_id", "lesion_id", "label"]]
    if positions is not None:
        test = test.iloc[positions].reset_index(drop=True)
    probs, angles = [], []
    for i in range(0, len(features), batch_size):
        x = features[i : i + batch_size].float()
        layer3 = model.layer3_features(x)
        a = math.pi * torch.tanh(head.projection(head.patches(layer3))).flatten(2).transpose(1, 2)
        angles.append(a)
        probs.append(head.outcome_map(a))
    return PatchDistributions(
        probs=torch.cat(probs).numpy(),
        angles=torch.cat(angles).numpy(),
        readout=head.classifier.weight.detach().double().numpy()[0],
        bias=float(head.classifier.bias),
        test=test,
        weights=head.outcome_map.weights.detach().numpy(),
        entangling=head.outcome_map.entangling,
    )


def _metrics_block(labels: np.ndarray, lesions: np.ndarray, draws: np.ndarray, n_bootstrap: int, seed: int) -> dict:
    """Point values (mean over draws), the spread over draws, and a 95 % interval over draws and lesions.

    ``draws`` is (n_draws, N) probabilities. Bootstrap replicate b resamples lesions and uses draw
    b mod n_draws, so the interval counts both the shot noise and the test-set sampling.
    """
    from qcnn.metrics import METRICS

    per_draw = np.array([metric_vector(labels, p, THRESHOLD) for p in draws])
    rng = np.random.default_rng(seed)  # lesion resamples as in qcnn.stats.lesion_bootstrap
    _, lesion_index = np.unique(lesions, return_inverse=True)
    n_lesions = lesion_index.max() + 1
    ranks = [score_ranks(p) for p in draws]
    combined = np.empty((n_bootstrap, len(METRICS)))
    for b in range(n_bootstrap):
        weights = np.bincount(rng.integers(n_lesions, size=n_lesions), minlength=n_lesions)[lesion_index]
        d = b % len(draws)
        combined[b] = metric_vector(labels, draws[d], THRESHOLD, weights, ranks[d])
    ci, shot_range = interval(combined), interval(per_draw) if len(draws) > 1 else None
    out = {}
    for j, m in enumerate(METRICS):
        if m not in REPORTED_METRICS:
            continue
        out[m] = {
            "mean": round(float(per_draw[:, j].mean()), 6),
            "sd_over_draws": round(float(per_draw[:, j].std(ddof=1)) if len(draws) > 1 else 0.0, 6),
            "ci95_draws_and_lesions": [round(float(x), 6) for x in ci[j]],
        }
        if shot_range is not None:
            out[m]["range95_over_draws"] = [round(float(x), 6) for x in shot_range[j]]
    return out


def shots_experiment(
    dists: PatchDistributions,
    n_train: int,
    shot_counts: tuple[int, ...] = SHOT_COUNTS,
    n_draws: int = N_DRAWS,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = SEED,
    log=print,
    save=None,
    previous: dict | None = None,
) -> dict:
    """Test-pool metrics at each shot count; ``save`` (if given) receives the payload after each.

    ``previous`` is an earlier, interrupted payload: its shot counts are kept, not sampled again,
    when it was made from the same model, pool and settings (its exact entry is identical).
    """
    labels, lesions = dists.test.label.to_numpy(), dists.test.lesion_id.to_numpy()
    exact = sigmoid(exact_logits(dists.probs, dists.readout, dists.bias))
    n_weights = int(np.prod(dists.weights.shape))
    uploads = int(dists.weights.shape[0])
    entries = [
        {
            "shots": None,
            "label": "exact",
            "n_draws": 1,
            "seconds": 0.0,
            "metrics": _metrics_block(labels, lesions, exact[None], n_bootstrap, seed),
            "mean_abs_probability_change": 0.0,
        }
    ]
    log(f"exact: AUC {entries[0]['metrics']['auc']['mean']:.4f}")
    payload = {
        "model": "qcnn seed 0 (checkpoints/qcnn.safetensors), float32",
        "pool": "test",
        "n_test": len(labels),
        "n_test_malignant": int(labels.sum()),
        "threshold": THRESHOLD,
        "seed": seed,
        "n_draws": n_draws,
        "n_bootstrap": n_bootstrap,
        "bootstrap_unit": "lesion",
        "method": (
            "Each patch circuit's 256 probabilities are replaced by the relative frequencies of a "
            "multinomial sample of S shots from its exact distribution (numpy Generator, stream "
            "[seed, S, draw]); mean over the 196 patches, x 256 and the classifier run unchanged. "
            "Metric values are means over the draws; ci95 resamples lesions (bootstrap replicate b "
            "uses draw b mod n_draws)."
        ),
        "entries": entries,
        "parameter_shift": {
            **parameter_shift_circuits(n_weights, N_QUBITS, uploads),
            "n_weights": n_weights,
            "n_angles": N_QUBITS,
            "uploads": uploads,
        },
        "budget": [shot_budget(s, len(labels), n_train, n_weights, uploads) for s in shot_counts],
        "n_train": n_train,
        "exact_probabilities": exact.round(6).tolist(),
        "shot_counts": list(shot_counts),
        "complete": False,
    }
    done = _resumable_entries(previous, payload)
    for shots in shot_counts:
        if shots in done:
            entries.append(done[shots])
            log(f"{shots:>6} shots: kept from the earlier run")
        else:
            entry = _shots_entry(dists, labels, lesions, exact, shots, n_draws, n_bootstrap, seed)
            entries.append(entry)
            log(f"{shots:>6} shots: AUC {entry['metrics']['auc']['mean']:.4f} ({entry['seconds']:.0f} s sampling)")
        payload["complete"] = shots == shot_counts[-1]
        if save:
            save(payload)
    return payload


def _shots_entry(
    dists: PatchDistributions,
    labels: np.ndarray,
    lesions: np.ndarray,
    exact: np.ndarray,
    shots: int,
    n_draws: int,
    n_bootstrap: int,
    seed: int,
) -> dict:
    """Metrics at ``shots`` per circuit over ``n_draws`` independent draws."""
    t0 = time.perf_counter()
    draws = np.stack(
        [
            sigmoid(shot_logits(dists.probs, dists.readout, dists.bias, shots, draw_rng(seed, shots, d)))
            for d in range(n_draws)
        ]
    )
    seconds = time.perf_counter() - t0
    return {
        "shots": shots,
        "label": f"{shots:,} shots",
        "n_draws": n_draws,
        "seconds": round(seconds, 1),
        "metrics": _metrics_block(labels, lesions, draws, n_bootstrap, seed),
        "mean_abs_probability_change": round(float(np.abs(draws - exact).mean()), 6),
    }


def _resumable_entries(previous: dict | None, payload: dict) -> dict[int, dict]:
    """Shot-count entries of an earlier payload made with exactly this model and these settings."""
    same = ("model", "n_test", "n_test_malignant", "threshold", "seed", "n_draws", "n_bootstrap", "method")
    if not previous or any(previous.get(k) != payload[k] for k in same):
        return {}
    if previous["entries"][0] != payload["entries"][0]:
        return {}
    return {e["shots"]: e for e in previous["entries"][1:]}


def check_against_evaluation(exact: np.ndarray, image_ids: pd.Series, predictions_csv: Path) -> dict:
    """How far the float32 exact probabilities are from the main evaluation's committed predictions."""
    committed = pd.read_csv(predictions_csv, dtype={"image_id": str})
    if not committed.image_id.equals(image_ids.reset_index(drop=True)):
        raise ValueError(f"{predictions_csv} scores different test images than the split")
    metrics = predictions_csv.parent / "metrics.json"
    policy = json.loads(metrics.read_text()).get("precision_policy", "bf16") if metrics.is_file() else None
    diff = np.abs(committed.probability.to_numpy() - exact)
    return {
        "predictions_file": str(predictions_csv.name),
        "evaluation_precision": policy,
        "max_abs_difference": round(float(diff.max()), 8),
        "mean_abs_difference": round(float(diff.mean()), 8),
    }


def run(
    split: pd.DataFrame,
    data_dir: str | Path,
    results_dir: Path,
    checkpoint_dir: Path,
    n_draws: int = N_DRAWS,
    n_bootstrap: int = N_BOOTSTRAP,
    log=print,
) -> dict:
    """results/shots.json for the seed-0 QCNN."""
    dists = patch_distributions(split, data_dir, checkpoint_dir)
    predictions = results_dir / "runs" / "qcnn_seed0" / "predictions.csv"

    def save(payload: dict) -> None:
        out = {k: v for k, v in payload.items() if k != "exact_probabilities"}
        if predictions.is_file():
            out["exact_vs_evaluation"] = check_against_evaluation(
                np.asarray(payload["exact_probabilities"]), dists.test.image_id, predictions
            )
        write_json(results_dir / SHOTS_FILE, out)

    path = results_dir / SHOTS_FILE
    previous = json.loads(path.read_text()) if path.is_file() else None
    return shots_experiment(
        dists,
        int((split.pool == "train").sum()),
        n_draws=n_draws,
        n_bootstrap=n_bootstrap,
        log=log,
        save=save,
        previous=previous,
    )
