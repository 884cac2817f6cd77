"""Gate and readout noise: the QCNN's circuit as a noisy device would run it (exact density matrices).

Noise model, stated plainly:
- after every gate (each RY of the angle embedding, each Rot, each CNOT), a single-qubit
  depolarizing channel of probability p on every wire the gate touches (PennyLane's
  ``DepolarizingChannel(p)``: rho -> (1 - p) rho + p/3 (X rho X + Y rho Y + Z rho Z));
- then a classical readout error on each qubit, independently: a 0 is read as 1 with probability
  ``e01``, a 1 as 0 with probability ``e10``.
The state starts in |0...0>; no idle noise, no crosstalk, no leakage.

The simulation is exact: a density-matrix simulation in the Pauli basis (Pauli transfer matrices),
forward for the data-dependent start of the circuit and backward (Heisenberg picture) for its
data-independent end. The tests hold it equal to PennyLane's ``default.mixed`` on small circuits
(default.mixed itself needs minutes for what this does in seconds).
"""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from qcnn.constants import N_OUTCOMES
from qcnn.quantum import _rot_matrices

GATE_ERRORS = (1e-4, 1e-3, 1e-2)  # depolarizing probability per gate and wire (and 0), fixed before any run
# (P(read 1 | 0), P(read 0 | 1)): none, and rates typical of superconducting devices (1 -> 0 decays during readout)
READOUT_ERRORS = ((0.0, 0.0), (0.01, 0.02))
N_IMAGES = 200
SEED = 0
NOISE_FILE = "noise.json"
NOISE_MODEL = __doc__.split("stated plainly:\n")[1].split("\n\n")[0].replace("\n", " ")


# --- Pauli-transfer simulation -----------------------------------------------------------------
#
# A state is its Pauli vector v[s] = Tr(P_s rho) over the 4^n strings P_s (I, X, Y, Z per wire, wire
# 0 the most significant axis): 4^n real numbers. A single-qubit gate followed by depolarizing noise
# is a 4 x 4 real matrix on one axis; a CNOT maps Pauli strings to signed Pauli strings, so a whole
# CNOT ring with its noise is one gather and one multiply.

PAULIS = torch.tensor(
    [[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=torch.complex128
)


def transfer_matrix(gate: torch.Tensor, p: float) -> torch.Tensor:
    """(..., 2, 2) unitaries -> (..., 4, 4) real Pauli transfer matrices of depolarize(p) after the gate.

    R[i, j] = Tr(P_i U P_j U^dagger) / 2; DepolarizingChannel(p) then scales X, Y, Z by 1 - 4p/3.
    """
    u = gate.to(torch.complex128)
    conj = torch.einsum("...ab,jbc,...dc->...jad", u, PAULIS, u.conj())  # U P_j U^dagger
    r = torch.einsum("iba,...jab->...ij", PAULIS, conj).real / 2
    scale = torch.tensor([1.0, 1 - 4 * p / 3, 1 - 4 * p / 3, 1 - 4 * p / 3], dtype=r.dtype)
    return r * scale[:, None]


def _kron(matrices: torch.Tensor) -> torch.Tensor:
    """(..., k, 4, 4) per-wire matrices -> (..., 4^k, 4^k) their tensor product (first wire most significant)."""
    out = matrices[..., 0, :, :]
    for wire in range(1, matrices.shape[-3]):
        m = matrices[..., wire, :, :]
        size = out.shape[-1] * 4
        out = (out[..., :, None, :, None] * m[..., None, :, None, :]).reshape(*out.shape[:-2], size, size)
    return out


def _apply_layer(v: torch.Tensor, matrices: torch.Tensor, group: int = 3) -> torch.Tensor:
    """Apply one 4 x 4 matrix per wire, (n, 4, 4) shared or (B, n, 4, 4) per sample, to (B, 4^n) vectors.

    The tensor product is applied as one GEMM per group of ``group`` wires (64 x 64 blocks that stay
    in cache): fewer flops than two 256 x 256 halves, fewer memory passes than one wire at a time.
    """
    batch, n = v.shape[0], matrices.shape[-3]
    matrices = matrices.to(v.dtype)
    for start in range(0, n, group):
        stop = min(start + group, n)
        k = _kron(matrices[..., start:stop, :, :])  # (4^g, 4^g) or (B, 4^g, 4^g)
        x = v.reshape(batch, 4**start, 4 ** (stop - start), 4 ** (n - stop))
        if stop == n:  # last group: contiguous rows of the matrix
            v = (x.reshape(batch, -1, 4 ** (stop - start)) @ k.transpose(-1, -2)).reshape(batch, -1)
        else:
            v = (k.unsqueeze(-3) @ x if k.ndim == 3 else k @ x).reshape(batch, -1)
    return v


def _cnot_pauli_map() -> tuple[np.ndarray, np.ndarray]:
    """CNOT (P_i (x) P_j) CNOT = sign * (P_k (x) P_l): for each output (k, l) its source (i, j) and sign."""
    cnot = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=torch.complex128)
    two = torch.einsum("iab,jcd->ijacbd", PAULIS, PAULIS).reshape(4, 4, 4, 4)
    source, sign = np.zeros((4, 4), dtype=np.int64), np.zeros((4, 4))
    for i in range(4):
        for j in range(4):
            image = cnot @ two[i, j] @ cnot
            overlaps = torch.einsum("klab,ba->kl", two, image).real / 4
            out = divmod(int(overlaps.abs().argmax()), 4)
            source[out], sign[out] = 4 * i + j, float(overlaps[out])
    return source, sign


@cache
def ring_map(n: int, layer: int, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """StronglyEntanglingLayers' CNOT ring of ``layer`` with depolarize(p) on both wires after each CNOT.

    Returns (source, factor) with v_out = factor * v_in[source] over the 4^n Pauli strings.
    """
    pair_source, pair_sign = _cnot_pauli_map()
    strings = np.indices((4,) * n).reshape(n, -1)  # strings[w, s]: the Pauli on wire w of string s
    source, factor = np.arange(4**n), np.ones(4**n)
    shrink = 1 - 4 * p / 3
    r = layer % (n - 1) + 1
    for control in range(n):
        target = (control + r) % n
        kl = 4 * strings[control] + strings[target]
        ij = pair_source.ravel()[kl]
        src = strings.copy()
        src[control], src[target] = ij // 4, ij % 4
        step = np.ravel_multi_index(tuple(src), (4,) * n)
        noise = shrink ** ((strings[control] != 0).astype(int) + (strings[target] != 0))
        factor = noise * pair_sign.ravel()[kl] * factor[step]
        source = source[step]
    return torch.from_numpy(source), torch.from_numpy(factor)


@cache
def _diagonal_strings(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The I/Z strings (the Pauli strings with a diagonal) and the 2^n x 2^n map from their
    coefficients to outcome probabilities (the Walsh-Hadamard transform / 2^n)."""
    iz = np.indices((2,) * n).reshape(n, -1) * 3  # 0 = I, 3 = Z per wire
    index = torch.from_numpy(np.ravel_multi_index(tuple(iz), (4,) * n))
    h = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64) / 2  # [I, Z] coefficient -> [bit 0, bit 1]
    walsh = h
    for _ in range(n - 1):
        walsh = torch.kron(walsh, h)
    return index, walsh


def noisy_expectations(angles: torch.Tensor, weights: torch.Tensor, p: float, diagonals: torch.Tensor) -> torch.Tensor:
    """Expected values sum_k d_k P(outcome k) of (K, 2^n) diagonal observables under gate noise p: (B, K).

    Exact. The state runs forward (Schroedinger) up to the last embedding and the first Rot layer after
    it, both local and per sample; the observables run backward (Heisenberg) through the rest, which does
    not depend on the data, once for all circuits. The first embedding acts on |0...0> and the first Rot
    layer is local, so the state is a product of per-wire Pauli vectors until the first CNOT ring.
    ``diagonals = eye(2^n)`` gives the probabilities.
    """
    batch, n = angles.shape
    reuploads, layers = weights.shape[:2]
    dtype = angles.dtype
    embed = transfer_matrix(_ry(angles.double()), p)  # (B, n, 4, 4)
    rots = transfer_matrix(_rot_matrices(weights.double()), p)  # (reuploads, layers, n, 4, 4)
    first = rots[0, 0] @ embed  # (B, n, 4, 4): Rot after RY on each wire of the first block
    local = (first[..., 0] + first[..., 3]).to(dtype)  # applied to |0><0|, Pauli vector (1, 0, 0, 1)
    v = local[:, 0]
    for wire in range(1, n):
        v = (v[:, :, None] * local[:, wire, None, :]).reshape(batch, -1)

    def ring(u: torch.Tensor, layer: int) -> torch.Tensor:
        source, factor = ring_map(n, layer, float(p))
        return torch.index_select(u, 1, source).mul_(factor.to(u.dtype))

    for block in range(reuploads - 1):
        if block > 0:
            v = _apply_layer(v, rots[block, 0] @ embed)
        for layer in range(layers):
            if layer > 0:
                v = _apply_layer(v, rots[block, layer])
            if n > 1:
                v = ring(v, layer)
    if reuploads > 1:
        v = _apply_layer(v, rots[-1, 0] @ embed)

    index, walsh = _diagonal_strings(n)
    obs = torch.zeros(len(diagonals), 4**n, dtype=torch.float64)
    obs[:, index] = diagonals.double() @ walsh.T  # Tr(O rho) = sum_s v_s obs_s with v_s = Tr(P_s rho)
    for layer in reversed(range(layers)):  # the adjoint of the last block after its first Rot layer
        if n > 1:
            source, factor = ring_map(n, layer, float(p))
            back = torch.empty_like(obs)
            back[:, source] = obs * factor
            obs = back
        if layer > 0:
            obs = _apply_layer(obs, rots[-1, layer].transpose(-1, -2))
    return v @ obs.T.to(dtype)


def noisy_probabilities(angles: torch.Tensor, weights: torch.Tensor, p: float) -> torch.Tensor:
    """(B, 2^n) outcome probabilities under gate noise p (no readout error), wire 0 the MSB."""
    return noisy_expectations(angles, weights, p, torch.eye(2 ** angles.shape[1], dtype=angles.dtype))


def _ry(angles: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angles / 2), torch.sin(angles / 2)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def readout_weights(diagonals: torch.Tensor, e01: float, e10: float) -> torch.Tensor:
    """Fold an independent per-qubit readout error into (K, 2^n) diagonal observables.

    With readout confusion M[read, true] per qubit, E[d(read outcome)] = sum_true (M^T d)[true] P(true).
    """
    confusion = torch.tensor([[1 - e01, e10], [e01, 1 - e10]], dtype=diagonals.dtype)  # [read, true]
    k, dim = diagonals.shape
    n = dim.bit_length() - 1
    out = diagonals.reshape(k, *([2] * n))
    for wire in range(n):
        out = torch.movedim(torch.tensordot(out, confusion, dims=([wire + 1], [0])), -1, wire + 1)
    return out.reshape(k, dim)


# --- the experiment -----------------------------------------------------------------------------


def sample_images(n_test: int, n_images: int = N_IMAGES, seed: int = SEED) -> np.ndarray:
    """A fixed, seeded sample of test-pool positions (sorted)."""
    return np.sort(np.random.default_rng(seed).choice(n_test, size=min(n_images, n_test), replace=False))


@torch.no_grad()
def noisy_patch_readouts(
    angles: np.ndarray, weights: np.ndarray, p: float, diagonals: torch.Tensor, batch_size: int = 256, log=print
) -> np.ndarray:
    """(N, 196, 8) angles -> (N, 196, K) expected diagonal observables under gate noise p (float32)."""
    flat = torch.from_numpy(angles.reshape(-1, angles.shape[-1])).float()
    w = torch.from_numpy(weights).double()
    out = np.empty((len(flat), len(diagonals)))
    t0 = time.perf_counter()
    for start in range(0, len(flat), batch_size):
        out[start : start + batch_size] = noisy_expectations(flat[start : start + batch_size], w, p, diagonals).numpy()
        if log and start and start % (batch_size * 40) == 0:
            log(f"  p={p:g}: {start:,}/{len(flat):,} circuits ({start / (time.perf_counter() - t0):.0f}/s)")
    return out.reshape(*angles.shape[:-1], len(diagonals))


def noise_experiment(
    dists,
    gate_errors=GATE_ERRORS,
    readout_errors=READOUT_ERRORS,
    seed: int = SEED,
    n_bootstrap: int = 2000,
    n_check_images: int = 8,
    log=print,
    save=None,
) -> dict:
    """Metrics of the seed-0 QCNN on ``dists`` (the seeded sample of test images) at each noise setting.

    p = 0 comes from the exact state-vector simulation; the noisy simulation at p = 0 is checked
    against it on the first ``n_check_images`` images. The noisy levels run largest first, and
    ``save`` (if given) receives the payload after each, marked ``complete: false`` until the last.
    """
    from qcnn.quantum import simulate
    from qcnn.shots import _metrics_block, sigmoid

    if dists.entangling != "strong":
        raise ValueError(f"the noisy simulation models StronglyEntanglingLayers only, not {dists.entangling!r}")
    test = dists.test
    labels, lesions = test.label.to_numpy(), test.lesion_id.to_numpy()
    readout = torch.from_numpy(dists.readout)[None]
    diagonals = torch.cat([readout_weights(readout, e01, e10) for e01, e10 in readout_errors])
    angles, weights = dists.angles, torch.from_numpy(dists.weights).double()
    exact_probs = simulate(torch.from_numpy(angles.reshape(-1, angles.shape[-1])).double(), weights)
    exact_readout = (exact_probs @ diagonals.T).numpy().reshape(len(test), -1, len(diagonals))
    exact = sigmoid(dists.bias + N_OUTCOMES * exact_readout[..., 0].mean(1))
    check = noisy_patch_readouts(angles[:n_check_images], dists.weights, 0.0, diagonals, log=None)
    gates = gate_count(tuple(dists.weights.shape))
    payload = {
        "model": "qcnn seed 0 (checkpoints/qcnn.safetensors)",
        "noise_model": NOISE_MODEL,
        "gates_per_circuit": gates,
        "depolarizing_channels_per_circuit": gates["single_qubit"] + 2 * gates["cnot"],
        "n_images": len(test),
        "n_malignant": int(labels.sum()),
        "sample_seed": seed,
        "image_ids": test.image_id.tolist(),
        "n_bootstrap": n_bootstrap,
        "bootstrap_unit": "lesion",
        "intervals": "lesion bootstrap of the sample; the noisy probabilities are exact (infinitely many shots)",
        "p0_check": {
            "images": min(n_check_images, len(test)),
            "max_abs_difference_to_statevector": float(np.abs(check - exact_readout[:n_check_images]).max()),
        },
        "exact": {"metrics": _metrics_block(labels, lesions, exact[None], n_bootstrap, seed)},
        "gate_errors": sorted({0.0, *gate_errors}),
        "complete": False,
        "entries": [],
    }

    def add(p: float, values: np.ndarray, seconds: float) -> None:
        for j, (e01, e10) in enumerate(readout_errors):
            prob = sigmoid(dists.bias + N_OUTCOMES * values[..., j].mean(1))
            payload["entries"].append(
                {
                    "gate_error": p,
                    "readout_error": {"p_read1_given0": e01, "p_read0_given1": e10},
                    "metrics": _metrics_block(labels, lesions, prob[None], n_bootstrap, seed),
                    "mean_abs_probability_change": round(float(np.abs(prob - exact).mean()), 6),
                    "simulation_seconds": round(seconds, 1),
                }
            )
            log(f"p={p:g} readout=({e01:g},{e10:g}): AUC {payload['entries'][-1]['metrics']['auc']['mean']:.4f}")
        payload["entries"].sort(key=lambda e: (e["gate_error"], e["readout_error"]["p_read1_given0"]))

    add(0.0, exact_readout, 0.0)
    for p in sorted({p for p in gate_errors if p > 0}, reverse=True):
        t0 = time.perf_counter()
        values = noisy_patch_readouts(angles, dists.weights, p, diagonals, log=log)
        add(p, values, time.perf_counter() - t0)
        payload["complete"] = {e["gate_error"] for e in payload["entries"]} == set(payload["gate_errors"])
        if save:
            save(payload)
    return payload


def gate_count(weights_shape: tuple[int, ...]) -> dict:
    reuploads, layers, n, _ = weights_shape
    return {"single_qubit": reuploads * (n + layers * n), "cnot": reuploads * layers * n}


def run(
    split: pd.DataFrame,
    data_dir: str | Path,
    results_dir: Path,
    checkpoint_dir: Path,
    n_images: int = N_IMAGES,
    log=print,
) -> dict:
    from qcnn.io import write_json
    from qcnn.shots import patch_distributions

    def save(payload: dict) -> None:
        write_json(results_dir / NOISE_FILE, payload)

    positions = sample_images(int((split.pool == "test").sum()), n_images, SEED)
    return noise_experiment(patch_distributions(split, data_dir, checkpoint_dir, positions), log=log, save=save)
