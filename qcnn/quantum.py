"""The 8-qubit data re-uploading circuit with a 256-outcome projective measurement.

In PennyLane terms, for ``b`` in ``range(reuploads)``::

    qml.AngleEmbedding(angles, wires=range(n), rotation="Y")
    qml.StronglyEntanglingLayers(weights[b], wires=range(n))

then ``qml.probs(wires=range(n))`` (wire 0 is the most significant bit of the outcome index).

``backend="torch"`` simulates it as a batched state vector in plain PyTorch: the first embedding
acts on |0...0>, so it is a real product state; each entangling block does not depend on the data,
so it is built once per forward pass as a 2^n x 2^n unitary and applied to every circuit with
one GEMM; later embeddings are per-sample 2 x 2 rotations applied in place. Real and imaginary
parts stay separate real tensors, so every product is a real GEMM. ``backend="pennylane"`` runs
the same circuit as a QNode on any PennyLane device (hardware plugins included); the tests hold
the two equal.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import torch
from torch import nn

BACKENDS = ("torch", "pennylane")
ENTANGLING = ("strong", "none")  # StronglyEntanglingLayers, or its Rot gates without the CNOT ring


@cache
def _cnot_ring_permutation(n_qubits: int, layer: int) -> torch.Tensor:
    """Basis-index permutation of StronglyEntanglingLayers' CNOT ring in layer ``layer``."""
    basis = torch.arange(2**n_qubits)
    index = basis.clone()
    if n_qubits < 2:
        return index
    r = layer % (n_qubits - 1) + 1
    bit = lambda wire: 1 << (n_qubits - 1 - wire)  # noqa: E731 - wire 0 is the MSB
    for control in range(n_qubits):
        target = (control + r) % n_qubits
        flipped = torch.where(basis & bit(control) != 0, basis ^ bit(target), basis)
        index = index[flipped]  # state'[j] = state[flipped[j]], composed with what came before
    return index


def _rot_matrices(weights: torch.Tensor) -> torch.Tensor:
    """Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi) for (..., 3) angles -> (..., 2, 2)."""
    phi, theta, omega = weights.unbind(-1)
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    one = torch.ones_like(phi)
    plus, minus = torch.polar(one, -(phi + omega) / 2), torch.polar(one, (phi - omega) / 2)
    row0 = torch.stack([plus * c, -minus * s], -1)
    row1 = torch.stack([minus.conj() * s, plus.conj() * c], -1)
    return torch.stack([row0, row1], -2)


def _kron(rotations: torch.Tensor) -> torch.Tensor:
    """Per-sample tensor product of (B, k, 2, 2) single-qubit gates -> (B, 2^k, 2^k)."""
    out = rotations[:, 0]
    for wire in range(1, rotations.shape[1]):
        gate, size = rotations[:, wire], 2 * out.shape[-1]
        out = (out[:, :, None, :, None] * gate[:, None, :, None, :]).reshape(out.shape[0], size, size)
    return out


def entangling_block_matrix(weights: torch.Tensor, entangling: str = "strong") -> torch.Tensor:
    """M = U^T of StronglyEntanglingLayers(weights), weights (n_layers, n, 3): psi' = psi @ M.

    Each layer is a tensor product of Rot gates followed by a fixed CNOT ring, i.e. a column
    permutation: M = R_1^T P_1 R_2^T P_2 ... with R_l the 2^n x 2^n Kronecker product of the Rots.
    """
    n_layers, n_qubits, _ = weights.shape
    layers = _kron(_rot_matrices(weights))  # (n_layers, 2^n, 2^n), one Kronecker product per layer
    matrix = None
    for layer in range(n_layers):
        step = layers[layer].T
        if entangling == "strong":
            step = step[:, _cnot_ring_permutation(n_qubits, layer).to(weights.device)]
        matrix = step if matrix is None else matrix @ step
    return matrix


def _product_state(cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RY embedding of |0...0>: the real product state, wire 0 most significant. (B, n) -> (B, 2^n)."""
    state = torch.stack([cos[:, 0], sin[:, 0]], -1)
    for wire in range(1, cos.shape[1]):
        amp = torch.stack([cos[:, wire], sin[:, wire]], -1)
        state = (state[:, :, None] * amp[:, None, :]).reshape(state.shape[0], -1)
    return state


@cache
def _interleaved_layout(n_qubits: int) -> torch.Tensor:
    """State layout (high wires, real/imaginary, low wires): entry q holds [real | imaginary][order[q]].

    With the real/imaginary axis between the two halves of the wires, both per-sample embedding
    factors act on a plain (B, rows, cols) view of the state: no broadcast copies.
    """
    high, low = 2 ** (n_qubits // 2), 2 ** (n_qubits - n_qubits // 2)
    h, c, lo = torch.meshgrid(torch.arange(high), torch.arange(2), torch.arange(low), indexing="ij")
    return (c * 2**n_qubits + h * low + lo).reshape(-1)


def _apply_ry_embedding(state: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Per-sample RY(x_w) on every wire of (B, 2 * 2^n) states in the interleaved layout.

    RY is real, so real and imaginary parts rotate alike, and the product of the n rotations
    factors as (high wires) x (low wires): with the state as a 2^h x 2 x 2^(n-h) array X it is
    A X B^T for per-sample 16 x 16 matrices A, B at n = 8, i.e. two batched GEMMs.
    """
    batch, n_qubits = cos.shape
    rotations = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, n, 2, 2)
    high = n_qubits // 2
    rows, cols = 2**high, 2 ** (n_qubits - high)
    x = state.reshape(batch, 2 * rows, cols) @ _kron(rotations[:, high:]).transpose(1, 2)
    if high:
        x = _kron(rotations[:, :high]) @ x.reshape(batch, rows, 2 * cols)
    return x.reshape(batch, -1)


def simulate(angles: torch.Tensor, weights: torch.Tensor, entangling: str = "strong") -> torch.Tensor:
    """Outcome probabilities of the circuit for (B, n) angles and (reuploads, layers, n, 3) weights."""
    batch, n_qubits = angles.shape
    half = angles / 2
    cos, sin = torch.cos(half), torch.sin(half)
    weights = weights.to(angles.dtype)
    layout = _interleaved_layout(n_qubits).to(angles.device)
    state = None  # (B, 2 * 2^n), real and imaginary parts in the interleaved layout
    for block in range(weights.shape[0]):
        matrix = entangling_block_matrix(weights[block], entangling)
        mr, mi = matrix.real, matrix.imag
        top = torch.cat([mr, mi], 1)  # [real | imaginary] out for a real state in
        if block == 0:  # |0...0> after the RY embedding is real: one GEMM gives both parts
            state = _product_state(cos, sin) @ top[:, layout]
        else:
            full = torch.cat([top, torch.cat([-mi, mr], 1)], 0)[layout][:, layout]
            state = _apply_ry_embedding(state, cos, sin) @ full
    rows = 2 ** (n_qubits // 2)
    return state.reshape(batch, rows, 2, -1).square().sum(2).reshape(batch, -1)


class QuantumLayer(nn.Module):
    """(..., n_qubits) angles -> (..., 2**n_qubits) outcome probabilities, trainable ``weights``."""

    def __init__(self, n_qubits: int = 8, n_layers: int = 2, reuploads: int = 2, backend: str = "torch",
                 device: str = "default.qubit", entangling: str = "strong") -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if entangling not in ENTANGLING:
            raise ValueError(f"entangling must be one of {ENTANGLING}, got {entangling!r}")
        if n_qubits < 1 or n_layers < 1 or reuploads < 1:
            raise ValueError("n_qubits, n_layers and reuploads must be positive")
        self.n_qubits, self.n_layers, self.reuploads = n_qubits, n_layers, reuploads
        self.backend, self.device_name, self.entangling = backend, device, entangling
        self.weights = nn.Parameter(torch.empty(reuploads, n_layers, n_qubits, 3).uniform_(0, 2 * math.pi))
        self._qnode = None

    @property
    def n_outcomes(self) -> int:
        return 2**self.n_qubits

    def extra_repr(self) -> str:
        return (f"n_qubits={self.n_qubits}, n_layers={self.n_layers}, reuploads={self.reuploads}, "
                f"backend={self.backend!r}, entangling={self.entangling!r}")

    def _check(self, angles: torch.Tensor) -> None:
        if not isinstance(angles, torch.Tensor) or not angles.is_floating_point():
            raise ValueError(f"angles must be a floating-point tensor, got {getattr(angles, 'dtype', type(angles))}")
        if angles.ndim == 0 or angles.shape[-1] != self.n_qubits:
            raise ValueError(f"angles must have shape (..., {self.n_qubits}), got {tuple(angles.shape)}")

    def forward(self, angles: torch.Tensor) -> torch.Tensor:
        self._check(angles)
        dtype = torch.float64 if angles.dtype == torch.float64 else torch.float32
        flat = angles.reshape(-1, self.n_qubits).to(dtype)
        if self.backend == "torch":
            probs = simulate(flat, self.weights, self.entangling)
        else:
            probs = self.qnode(flat, self.weights.to(dtype)).to(dtype)
        return probs.reshape(*angles.shape[:-1], self.n_outcomes)

    @property
    def qnode(self) -> Any:
        """The circuit as a PennyLane QNode (built on first use: PennyLane is slow to import)."""
        if self._qnode is None:
            self._qnode = make_qnode(self.n_qubits, self.device_name, self.entangling)
        return self._qnode

    def draw_text(self) -> str:
        import pennylane as qml

        return qml.draw(self.qnode, decimals=2)(torch.zeros(self.n_qubits), self.weights.detach())

    def draw_figure(self):
        """A matplotlib figure of the circuit (StronglyEntanglingLayers shown as blocks)."""
        import pennylane as qml

        fig, _ = qml.draw_mpl(self.qnode, style="pennylane")(torch.zeros(self.n_qubits), self.weights.detach())
        return fig


def make_qnode(n_qubits: int, device: str = "default.qubit", entangling: str = "strong") -> Any:
    import pennylane as qml

    wires = range(n_qubits)
    dev = qml.device(device, wires=n_qubits)
    diff_method = "backprop" if device == "default.qubit" else "best"

    @qml.qnode(dev, interface="torch", diff_method=diff_method)
    def circuit(angles: torch.Tensor, weights: torch.Tensor):
        for block in range(weights.shape[0]):
            qml.AngleEmbedding(angles, wires=wires, rotation="Y")
            if entangling == "strong":
                qml.StronglyEntanglingLayers(weights[block], wires=wires)
            else:  # the same Rot gates, no CNOT ring: a product circuit
                for layer in weights[block]:
                    for wire in wires:
                        qml.Rot(*layer[wire], wires=wire)
        return qml.probs(wires=wires)

    return circuit
