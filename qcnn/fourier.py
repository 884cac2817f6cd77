"""The function the circuit computes: its exact Fourier spectrum in the 8 angles.

Each angle enters the circuit through one RY gate per re-upload (generator Y/2, eigenvalues +-1/2),
so any readout r . p(x) is a trigonometric polynomial with integer frequencies in
{-uploads..uploads} per angle (Schuld, Sweke & Meyer 2021):

    r . p(x) = sum_w c_w exp(i w . x),   w in {-2..2}^8 for two uploads.

Sampling it on the grid x_j = 2 pi j / 5 (5^8 = 390,625 circuits) and taking an 8-D FFT recovers
every c_w exactly: 5 points per axis resolve 5 frequencies without aliasing.

For the QCNN the readout is r = 256 x classifier.weight: the logit is the classifier's bias plus
the mean over the 196 patches of r . p(angles of the patch).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from qcnn.quantum import QuantumLayer, simulate

FOURIER_FILE = "fourier.json"
RANDOM_SEED = 0  # the random-weight circuit: QuantumLayer's own initialisation under this seed
TOP = 20
_BATCH = 16_384


@torch.no_grad()
def circuit_spectrum(layer: QuantumLayer, readout: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer frequency vectors (K, n) and complex coefficients (K,) of x -> readout . layer(x).

    K = (2 L + 1)^n with L the number of uploads (all frequencies, zeros included), float64 throughout.
    """
    n, limit = layer.n_qubits, layer.reuploads  # one RY per upload: frequencies -L..L
    size = 2 * limit + 1
    weights = layer.weights.detach().double()
    r = torch.as_tensor(np.asarray(readout, dtype=np.float64))
    if r.shape != (layer.n_outcomes,):
        raise ValueError(f"readout must have shape ({layer.n_outcomes},), got {tuple(r.shape)}")
    grid = 2 * np.pi * np.arange(size) / size
    index = np.indices((size,) * n).reshape(n, -1).T  # (size^n, n), wire 0 the slowest axis
    values = np.empty(len(index))
    for start in range(0, len(index), _BATCH):
        angles = torch.from_numpy(grid[index[start : start + _BATCH]])
        values[start : start + _BATCH] = (simulate(angles, weights, layer.entangling) @ r).numpy()
    coefficients = np.fft.fftn(values.reshape((size,) * n)) / size**n  # c_k = mean_j f(x_j) exp(-i k.x_j)
    frequencies = np.where(index > limit, index - size, index)  # FFT bin k -> k or k - size
    return frequencies.astype(np.int64), coefficients.reshape(-1)


def evaluate_spectrum(frequencies: np.ndarray, coefficients: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """sum_k c_k exp(i w_k . x) for (B, n) angles (real part; the imaginary part is zero)."""
    return (np.exp(1j * np.asarray(angles) @ frequencies.T) @ coefficients).real


def summarize_spectrum(frequencies: np.ndarray, coefficients: np.ndarray, top: int = TOP) -> dict:
    """Power by frequency order (L1 norm of w), the share of variance up to each order, the largest terms."""
    order = np.abs(frequencies).sum(1)
    power = np.abs(coefficients) ** 2
    by_order = np.bincount(order, weights=power)
    variance = power[order > 0].sum()
    significant = np.abs(coefficients) > 1e-9 * np.abs(coefficients).max()
    positive = _first_nonzero_positive(frequencies)  # one of each (w, -w) pair: c_-w = conj(c_w)
    largest = np.argsort(-np.where(positive, power, -1))[:top]
    return {
        "mean": float(coefficients[order == 0].real[0]),
        "variance": float(variance),
        "orders": list(range(len(by_order))),
        "power_by_order": [float(p) for p in by_order],
        "n_frequencies_by_order": np.bincount(order).tolist(),
        "variance_share_up_to_order": [
            float(by_order[1 : k + 1].sum() / variance) if variance else 0.0 for k in range(len(by_order))
        ],
        "max_abs_frequency_per_angle": np.abs(frequencies[significant]).max(0).tolist(),
        "largest": [
            {
                "frequency": frequencies[i].tolist(),
                "order": int(order[i]),
                "amplitude": float(2 * np.abs(coefficients[i])),  # of the real cosine term
                "phase": float(np.angle(coefficients[i])),
                "variance_share": float(2 * power[i] / variance) if variance else 0.0,
            }
            for i in largest
        ],
    }


def _first_nonzero_positive(frequencies: np.ndarray) -> np.ndarray:
    """True where the first non-zero entry of w is positive (w = 0 excluded)."""
    nonzero = frequencies != 0
    first = np.argmax(nonzero, axis=1)
    return nonzero.any(1) & (frequencies[np.arange(len(frequencies)), first] > 0)


def random_layer(like: QuantumLayer, seed: int = RANDOM_SEED) -> QuantumLayer:
    """A circuit of the same shape with QuantumLayer's own random initialisation (uniform in [0, 2 pi))."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return QuantumLayer(like.n_qubits, like.n_layers, like.reuploads, entangling=like.entangling)


def fourier_report(
    layer: QuantumLayer, readout: np.ndarray, surrogate_frequencies: np.ndarray | None = None, log=print
) -> dict:
    """Spectra of the trained circuit and of a random-weight one, read out through the same vector, and
    (with the surrogate's frequency vectors) how much of each the ``fourier`` surrogate can reach."""
    out, spectra = {}, {}
    for name, circuit in (("trained", layer), ("random_weights", random_layer(layer))):
        t0 = time.perf_counter()
        freqs, coeffs = circuit_spectrum(circuit, readout)
        seconds = time.perf_counter() - t0
        spectra[name] = (freqs, coeffs)
        check = np.random.default_rng(0).uniform(-np.pi, np.pi, (64, layer.n_qubits))
        direct = (
            simulate(torch.from_numpy(check), circuit.weights.detach().double(), circuit.entangling).numpy() @ readout
        )
        out[name] = {
            **summarize_spectrum(freqs, coeffs),
            "seconds": round(seconds, 1),
            "reconstruction_max_abs_error": float(np.abs(evaluate_spectrum(freqs, coeffs, check) - direct).max()),
        }
        log(
            f"{name}: variance share up to order 2 = {out[name]['variance_share_up_to_order'][2]:.3f} ({seconds:.0f} s)"
        )
    if surrogate_frequencies is not None:
        out["surrogate"] = surrogate_reach(surrogate_frequencies, spectra)
        log(f"surrogate: captures at most {out['surrogate']['trained_variance_captured']:.3f} of the trained variance")
    return out


def surrogate_reach(surrogate_frequencies: np.ndarray, circuits: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """What the dequantised ``fourier`` surrogate can reach of each circuit's spectrum.

    Its features are cos(w.x) and sin(w.x) for D fixed integer vectors w; a linear readout of them is
    a trigonometric polynomial on the frequencies {+-w}. Under uniform angles these are orthogonal, so
    the best any readout of the surrogate can do (least squares) keeps exactly a circuit's power on
    {+-w}: the share of its variance captured is an upper bound for the trained surrogate.
    """
    reach = {tuple(w) for w in surrogate_frequencies.astype(int)} | {
        tuple(-w) for w in surrogate_frequencies.astype(int)
    }
    reach.discard((0,) * surrogate_frequencies.shape[1])
    pairs = np.array(sorted(reach))
    order = np.abs(pairs).sum(1)
    out = {
        "n_features": len(surrogate_frequencies),
        "distinct_nonzero_frequencies": len(pairs),  # w and -w counted separately, as in the circuit's spectrum
        "n_frequencies_by_order": np.bincount(order, minlength=len(surrogate_frequencies[0]) * 2 + 1).tolist(),
    }
    for name, (freqs, coeffs) in circuits.items():
        power = np.abs(coeffs) ** 2
        nonzero = np.abs(freqs).sum(1) > 0
        on_reach = np.array([tuple(w) in reach for w in freqs[nonzero]])
        out[f"{name}_variance_captured"] = float(power[nonzero][on_reach].sum() / power[nonzero].sum())
    return out


def run(results_dir: Path, checkpoint_dir: Path, log=print) -> dict:
    """results/fourier.json for the seed-0 QCNN's circuit, read out by its classifier (r = 256 w)."""
    from qcnn.config import ModelConfig
    from qcnn.constants import N_OUTCOMES
    from qcnn.io import write_json
    from qcnn.models import FourierFeatures, load_model

    model = load_model("qcnn", checkpoint_dir)
    readout = N_OUTCOMES * model.head.classifier.weight.detach().double().numpy()[0]
    surrogate = FourierFeatures(ModelConfig().fourier_features).frequencies.numpy()
    payload = {
        "model": "qcnn seed 0 (checkpoints/qcnn.safetensors)",
        "readout": "r = 256 x classifier.weight: logit = bias + mean over patches of r . p(angles)",
        "grid": "x_j = 2 pi j / 5 per angle, 5^8 = 390,625 circuits, float64; 8-D FFT",
        "random_seed": RANDOM_SEED,
        **fourier_report(model.head.outcome_map, readout, surrogate, log),
    }
    write_json(results_dir / FOURIER_FILE, payload)
    return payload
