"""The n-qubit data re-uploading circuit with a 2^n-outcome projective measurement, and a fast simulator.

In PennyLane terms, for ``b`` in ``range(reuploads)``::

    qml.AngleEmbedding(angles, wires=range(n), rotation="Y")
    qml.StronglyEntanglingLayers(weights[b], wires=range(n))

then ``qml.probs(wires=range(n))`` (wire 0 is the most significant bit of the outcome index).
``entangling="none"`` keeps the same Rot gates per wire and layer but drops the CNOT rings: a
product circuit, the control for what the entanglement adds.

``backend="torch"`` simulates it in plain PyTorch. The tricks:

- States are row vectors. A trainable block does not depend on the data, so it is one matrix M
  (psi' = psi @ M) and a batch of circuits is one GEMM. M is the block run on the basis states:
  a layer's Rot gates are a Kronecker product, applied as two per-half factors (the first layer's
  M is just their outer product); the CNOT ring is a fixed permutation of the basis, an index.
- Real and imaginary parts are separate real numbers in an interleaved layout (high wires,
  real/imaginary, low wires): complex products become real GEMMs, and the per-sample RY embedding
  (a Kronecker product of 2 x 2 rotations, gathered from the per-half product states) is two
  small batched GEMMs on plain views of the state. The first embedding acts on |0...0>, so it
  gives a real product state and block 0 needs half a GEMM.
- The backward pass is analytic (adjoint method): dL/dpsi goes back through the transposed GEMMs;
  d RY(x)/dx = J RY(x) / 2 with J = [[0, -1], [1, 0]], so each angle's gradient is a sum of pair
  products of backward and forward states, read off two per-sample Gram matrices (of rank one at
  the product state); dL/dM = psi_in^T @ dL/dpsi_out, and autograd takes it to the weights through
  the cheap construction of M.
- Without a gradient to the weights (eval mode, no_grad) the matrices are cached until the weights
  change.

Above ``DENSE_MAX_QUBITS`` a dense block costs more than its layers (its GEMM grows as 4^n), so the
layers are applied to the batch directly, with autograd. ``backend="pennylane"`` runs the same
circuit as a QNode on any PennyLane device (hardware plugins included); the tests hold the two equal.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import torch
from torch import nn

from qcnn.config import BACKENDS, ENTANGLING

# Dense blocks up to here. Above, a block's GEMM (4^(n+1) multiply-adds per circuit: 16 M at 10 qubits)
# outgrows applying its layers (about 2^(n+3) 2^(n/2) per layer: 1 M), and its matrix memory.
DENSE_MAX_QUBITS = 8


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
    """Per-sample tensor product of (B, k, 2, 2) single-qubit gates -> (B, 2^k, 2^k) (k = 0: ones)."""
    out = rotations.new_ones(rotations.shape[0], 1, 1)
    for wire in range(rotations.shape[1]):
        gate, size = rotations[:, wire], 2 * out.shape[-1]
        out = (out[:, :, None, :, None] * gate[:, None, :, None, :]).reshape(out.shape[0], size, size)
    return out


def _halves(n_qubits: int) -> tuple[int, int]:
    """Basis sizes of the high wires (0 .. n/2 - 1) and the low wires: a state is a rows x cols matrix."""
    return 2 ** (n_qubits // 2), 2 ** (n_qubits - n_qubits // 2)


@cache
def _interleaved_layout(n_qubits: int) -> torch.Tensor:
    """State layout (high wires, real/imaginary, low wires): entry q holds [real | imaginary][order[q]].

    With the real/imaginary axis between the two halves of the wires, a complex factor over either
    half, and a per-sample real one, acts on a plain (B, rows, cols) view of the state.
    """
    high, low = _halves(n_qubits)
    h, c, lo = torch.meshgrid(torch.arange(high), torch.arange(2), torch.arange(low), indexing="ij")
    return (c * 2**n_qubits + h * low + lo).reshape(-1)


@cache
def _interleaved_ring(n_qubits: int, layer: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The CNOT ring's permutation of interleaved states (both parts of an amplitude move alike), and its inverse."""
    layout = _interleaved_layout(n_qubits)
    size = 2**n_qubits
    source = torch.argsort(layout)[_cnot_ring_permutation(n_qubits, layer)[layout % size] + (layout // size) * size]
    return source.to(device), torch.argsort(source).to(device)


class _Permute(torch.autograd.Function):
    """x[:, index] for a permutation: its backward gathers with the inverse (autograd's would scatter-add)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, index: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
        ctx.inverse = inverse
        return x.index_select(1, index)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return grad.index_select(1, ctx.inverse), None, None


def _realify(matrix: torch.Tensor, imaginary_axis: int) -> torch.Tensor:
    """(L, k, k) complex -> (L, 2k, 2k) real acting alike on real column vectors indexed (k, re/im)
    (imaginary_axis=1) or (re/im, k) (imaginary_axis=0)."""
    re, im = matrix.real, matrix.imag
    blocks = torch.stack([torch.stack([re, -im], -1), torch.stack([im, re], -1)], -2)  # (L, k, k, 2, 2)
    blocks = blocks.permute(0, 1, 3, 2, 4) if imaginary_axis == 1 else blocks.permute(0, 3, 1, 4, 2)
    k = matrix.shape[-1]
    return blocks.reshape(matrix.shape[0], 2 * k, 2 * k)


def _layer_factors(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each layer's Rot gates U = A_high (x) A_low as real factors on interleaved states, weights (..., n, 3):
    A_high acting on (high wires, re/im) (..., 2 rows, 2 rows), A_low^T on (re/im, low wires) (..., 2 cols, 2 cols)."""
    n_qubits = weights.shape[-2]
    rotations = _rot_matrices(weights.reshape(-1, n_qubits, 3))  # complex (layers, n, 2, 2)
    high = _realify(_kron(rotations[:, : n_qubits // 2]), imaginary_axis=1)
    low = _realify(_kron(rotations[:, n_qubits // 2 :]), imaginary_axis=0).transpose(1, 2)
    return high.reshape(*weights.shape[:-2], *high.shape[1:]), low.reshape(*weights.shape[:-2], *low.shape[1:])


def _apply_layers(
    states: torch.Tensor, high: torch.Tensor, low: torch.Tensor, entangling: str, first_layer: int = 0
) -> torch.Tensor:
    """Layers ``first_layer``, ... of a block (their ``_layer_factors``) on (B, 2^(n+1)) interleaved row states.

    The Rot gates act on a state seen as a rows x cols complex matrix X as A_high X A_low^T: two real
    GEMMs, the real/imaginary axis joining the low wires for the first and the high wires for the
    second. The CNOT ring then permutes the basis.
    """
    batch, rows, cols = states.shape[0], high.shape[-1] // 2, low.shape[-1] // 2
    n_qubits = (rows * cols).bit_length() - 1
    for layer in range(high.shape[0]):
        x = states.reshape(batch * rows, 2 * cols) @ low[layer]
        states = (high[layer] @ x.reshape(batch, 2 * rows, cols)).reshape(batch, -1)
        states = _ring(states, n_qubits, first_layer + layer, entangling)
    return states


def _ring(states: torch.Tensor, n_qubits: int, layer: int, entangling: str) -> torch.Tensor:
    """Layer ``layer``'s CNOT ring on interleaved row states (columns), if the circuit has one."""
    if entangling != "strong" or n_qubits < 2:
        return states
    return _Permute.apply(states, *_interleaved_ring(n_qubits, layer, states.device))


def block_matrices(weights: torch.Tensor, entangling: str = "strong") -> list[torch.Tensor]:
    """Every block as a real matrix on interleaved row-vector states, weights (reuploads, n_layers, n, 3):
    the block applied to the basis states. Block 0 acts on the real product state: (2^n, 2^(n+1));
    later blocks (2^(n+1), 2^(n+1)).

    On the basis states the first layer is the outer product of its two factors (no GEMM): entry
    [(h, c, l), (h', c'', l')] = sum over c' of A_high[(h', c''), (h, c')] A_low^T[(c, l), (c', l')].
    """
    rows, cols = _halves(weights.shape[2])
    high, low = _layer_factors(weights)
    matrices = []
    for block in range(weights.shape[0]):
        first_high = high[block, 0].reshape(rows, 2, rows, 2)
        first_low = low[block, 0].reshape(2, cols, 2, cols)[: 1 if block == 0 else 2]  # block 0: real inputs
        first = torch.einsum("pqhd,cldr->hclpqr", first_high, first_low).reshape(-1, 2 * rows * cols)
        first = _ring(first, weights.shape[2], 0, entangling)
        matrices.append(_apply_layers(first, high[block, 1:], low[block, 1:], entangling, first_layer=1))
    return matrices


def _product_state(cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RY embedding of |0...0>: the real product state, wire 0 most significant. (B, n) -> (B, 2^n)."""
    state = cos.new_ones(cos.shape[0], 1)
    for wire in range(cos.shape[1]):
        amp = torch.stack([cos[:, wire], sin[:, wire]], -1)
        state = (state[:, :, None] * amp[:, None, :]).reshape(state.shape[0], -1)
    return state


@cache
def _ry_kron_pattern(size: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """For a Kronecker product of RY rotations, entry [i, j] = sign[i, j] * amplitude[i XOR j]: (index, sign)."""
    i, j = torch.arange(size)[:, None], torch.arange(size)[None, :]
    ones_above = torch.tensor([bin(k).count("1") for k in range(size)])[~i & j & (size - 1)]  # -sin entries
    sign = 1 - 2 * (ones_above % 2)
    return (i ^ j).reshape(-1).to(device), sign.reshape(-1).to(dtype=dtype, device=device)


def _ry_kron(amplitudes: torch.Tensor) -> torch.Tensor:
    """RY(x_1) (x) ... (x) RY(x_k) per sample from its product state (B, 2^k) = (cos, sin) (x) ...: (B, 2^k, 2^k).

    The entry [i, j] is the product over wires of cos (bits equal) or +-sin (bits differ), i.e. the
    product-state amplitude at i XOR j with a fixed sign: one gather and one multiply.
    """
    batch, size = amplitudes.shape
    index, sign = _ry_kron_pattern(size, amplitudes.dtype, amplitudes.device)
    return (amplitudes.index_select(1, index) * sign).reshape(batch, size, size)


def _embed(states: torch.Tensor, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """A_high X A_low^T per sample, X the state as a (rows, k * cols) / (rows * k, cols) matrix (k = 1, 2)."""
    batch, rows, cols = states.shape[0], high.shape[-1], low.shape[-1]
    x = states.reshape(batch, -1, cols) @ low.transpose(1, 2)
    return (high @ x.reshape(batch, rows, -1)).reshape(batch, -1)


@cache
def _wire_pairs(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Basis pairs (i, i|bit_w) of log2(size) wires, wire 0 the most significant: two (wires, size / 2) indices."""
    bits = size.bit_length() - 1
    lower = [[i for i in range(size) if not i & 1 << (bits - 1 - wire)] for wire in range(bits)]
    upper = [[i | 1 << (bits - 1 - wire) for i in row] for wire, row in enumerate(lower)]
    as_index = lambda rows: torch.tensor(rows, dtype=torch.long, device=device).reshape(bits, size // 2)  # noqa: E731
    return as_index(lower), as_index(upper)


def _pair_sum(gram: torch.Tensor) -> torch.Tensor:
    """1/2 sum over the pairs (i, i|bit_w) of G[i|bit, i] - G[i, i|bit] of (B, size, size) -> (B, wires)."""
    batch, size = gram.shape[:2]
    lower, upper = _wire_pairs(size, gram.device)
    flat = gram.reshape(batch, -1)
    below, above = (upper * size + lower).flatten(), (lower * size + upper).flatten()  # G[i|bit, i], G[i, i|bit]
    pairs = flat.index_select(1, below) - flat.index_select(1, above)
    return pairs.reshape(batch, *lower.shape).sum(-1) / 2


def _rank_one_pair_sum(back: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """``_pair_sum`` of the outer product back state^T, (B, size) vectors, without forming it."""
    lower, upper = _wire_pairs(back.shape[1], back.device)
    low, up = lower.flatten(), upper.flatten()
    pairs = back.index_select(1, up) * state.index_select(1, low)
    pairs -= back.index_select(1, low) * state.index_select(1, up)
    return pairs.reshape(back.shape[0], *lower.shape).sum(-1) / 2


def _angle_gradient(back: torch.Tensor, state: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """dL/dx_w = <back, J_w state> / 2 for every wire w, where an RY embedding of x has just produced
    ``state`` and back = dL/dstate: a sum over basis pairs (i, i|bit_w) of back[i|bit] state[i] -
    back[i] state[i|bit], read off per-sample Gram matrices of the rows (high wires) and of the
    columns (low wires)."""
    batch = back.shape[0]
    gram_high = back.reshape(batch, rows, -1) @ state.reshape(batch, rows, -1).transpose(1, 2)
    gram_low = back.reshape(batch, -1, cols).transpose(1, 2) @ state.reshape(batch, -1, cols)
    return torch.cat([_pair_sum(gram_high), _pair_sum(gram_low)], 1)


def _product_angle_gradient(back: torch.Tensor, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """``_angle_gradient`` at the product state high (x) low: the Gram matrices have rank one."""
    batch, rows, cols = back.shape[0], high.shape[1], low.shape[1]
    back = back.reshape(batch, rows, cols)
    back_high = (back * low[:, None, :]).sum(2)  # the low wires contracted
    back_low = (back * high[:, :, None]).sum(1)
    return torch.cat([_rank_one_pair_sum(back_high, high), _rank_one_pair_sum(back_low, low)], 1)


def _probabilities(state: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """|amplitude|^2 of (B, 2^(n+1)) interleaved states, in the basis order."""
    parts = state.reshape(state.shape[0], rows, 2, cols)
    real, imaginary = parts[:, :, 0], parts[:, :, 1]
    return torch.addcmul(real * real, imaginary, imaginary).reshape(state.shape[0], -1)


class _DenseCircuit(torch.autograd.Function):
    """Probabilities of (B, n) angles through the dense blocks of ``block_matrices``, analytic backward."""

    @staticmethod
    def forward(ctx: Any, angles: torch.Tensor, *matrices: torch.Tensor) -> torch.Tensor:
        batch, n_qubits = angles.shape
        rows, cols = _halves(n_qubits)
        cos, sin = torch.cos(angles / 2), torch.sin(angles / 2)
        half = n_qubits // 2
        high = _product_state(cos[:, :half], sin[:, :half])
        low = _product_state(cos[:, half:], sin[:, half:])
        inputs = [(high[:, :, None] * low[:, None, :]).reshape(batch, -1)]  # what each block's GEMM multiplies
        state = inputs[0] @ matrices[0]
        factors = (_ry_kron(high), _ry_kron(low)) if len(matrices) > 1 else ()
        for matrix in matrices[1:]:
            inputs.append(_embed(state, *factors))
            state = inputs[-1] @ matrix
        ctx.save_for_backward(*matrices)
        ctx.intermediates = (state, inputs, factors, high, low)
        return _probabilities(state, rows, cols)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_probs: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        matrices = ctx.saved_tensors
        state, inputs, factors, high, low = ctx.intermediates
        del ctx.intermediates
        batch, size = grad_probs.shape
        n_qubits = size.bit_length() - 1
        rows, cols = _halves(n_qubits)
        wants_angles, wants_matrices = ctx.needs_input_grad[0], ctx.needs_input_grad[1:]
        back = (state.reshape(batch, rows, 2, cols) * (2 * grad_probs).reshape(batch, rows, 1, cols)).reshape(batch, -1)
        grad_angles = grad_probs.new_zeros(batch, n_qubits) if wants_angles else None
        grad_matrices: list[torch.Tensor | None] = [None] * len(matrices)
        for block in range(len(matrices) - 1, 0, -1):
            if wants_matrices[block]:
                grad_matrices[block] = inputs[block].T @ back
            back = back @ matrices[block].T  # dL/d(the state the block multiplied)
            if wants_angles:
                grad_angles += _angle_gradient(back, inputs[block], rows, cols)
            back = _embed(back, factors[0].transpose(1, 2), factors[1].transpose(1, 2))  # RY^T = RY(-x)
        if wants_matrices[0]:
            grad_matrices[0] = inputs[0].T @ back
        if wants_angles:
            grad_angles += _product_angle_gradient(back @ matrices[0].T, high, low)
        return grad_angles, *grad_matrices


def _simulate_layerwise(angles: torch.Tensor, weights: torch.Tensor, entangling: str) -> torch.Tensor:
    """The circuit layer by layer on the batch, with autograd: for circuits too wide for dense blocks."""
    batch, n_qubits = angles.shape
    rows, cols = _halves(n_qubits)
    cos, sin = torch.cos(angles / 2), torch.sin(angles / 2)
    high, low = (
        _product_state(cos[:, : n_qubits // 2], sin[:, : n_qubits // 2]),
        _product_state(cos[:, n_qubits // 2 :], sin[:, n_qubits // 2 :]),
    )
    real = (high[:, :, None] * low[:, None, :]).reshape(batch, rows, 1, cols)
    state = torch.cat([real, torch.zeros_like(real)], 2).reshape(batch, -1)
    factors = _ry_kron(high), _ry_kron(low)
    layer_high, layer_low = _layer_factors(weights)
    for block in range(weights.shape[0]):
        if block:
            state = _embed(state, *factors)
        state = _apply_layers(state, layer_high[block], layer_low[block], entangling)
    return _probabilities(state, rows, cols)


def simulate(
    angles: torch.Tensor, weights: torch.Tensor, entangling: str = "strong", matrices: list[torch.Tensor] | None = None
) -> torch.Tensor:
    """Outcome probabilities for (B, n) angles and (reuploads, layers, n, 3) weights, in the angles' dtype.

    ``matrices``: ``block_matrices(weights, entangling)`` when the caller already has them (a cache).
    """
    weights = weights.to(angles.dtype)
    if angles.shape[1] > DENSE_MAX_QUBITS:
        return _simulate_layerwise(angles, weights, entangling)
    if matrices is None:
        matrices = block_matrices(weights, entangling)
    return _DenseCircuit.apply(angles, *matrices)


class QuantumLayer(nn.Module):
    """(..., n_qubits) angles -> (..., 2**n_qubits) outcome probabilities, trainable ``weights``."""

    def __init__(
        self,
        n_qubits: int = 8,
        n_layers: int = 2,
        reuploads: int = 2,
        backend: str = "torch",
        device: str = "default.qubit",
        entangling: str = "strong",
    ) -> None:
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
        self._matrix_cache: tuple[tuple, list[torch.Tensor]] | None = None

    @property
    def n_outcomes(self) -> int:
        return 2**self.n_qubits

    def extra_repr(self) -> str:
        return (
            f"n_qubits={self.n_qubits}, n_layers={self.n_layers}, reuploads={self.reuploads}, "
            f"backend={self.backend!r}, entangling={self.entangling!r}"
        )

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
            probs = simulate(flat, self.weights, self.entangling, self._cached_matrices(dtype))
        else:
            probs = self.qnode(flat, self.weights.to(dtype)).to(dtype)
        return probs.reshape(*angles.shape[:-1], self.n_outcomes)

    def _cached_matrices(self, dtype: torch.dtype) -> list[torch.Tensor] | None:
        """The block matrices while the weights need no gradient, rebuilt only when the weights change."""
        weights = self.weights
        if self.n_qubits > DENSE_MAX_QUBITS or (torch.is_grad_enabled() and weights.requires_grad):
            return None  # built inside simulate, on the autograd graph
        key = (
            id(weights),
            weights.data_ptr(),
            weights._version,
            weights.device,
            dtype,
            self.entangling,
            torch.is_inference_mode_enabled(),
        )
        if self._matrix_cache is None or self._matrix_cache[0] != key:
            with torch.no_grad():
                self._matrix_cache = (key, block_matrices(weights.to(dtype), self.entangling))
        return self._matrix_cache[1]

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


def make_qnode(
    n_qubits: int, device: str = "default.qubit", entangling: str = "strong", interface: str = "torch"
) -> Any:
    """The circuit as a PennyLane QNode taking (B, n) angles and (reuploads, n_layers, n, 3) weights."""
    import pennylane as qml

    if entangling not in ENTANGLING:
        raise ValueError(f"entangling must be one of {ENTANGLING}, got {entangling!r}")
    wires = range(n_qubits)
    dev = qml.device(device, wires=n_qubits)
    diff_method = "backprop" if device == "default.qubit" else "best"

    @qml.qnode(dev, interface=interface, diff_method=diff_method)
    def circuit(angles: Any, weights: Any):
        for block in range(weights.shape[0]):
            qml.AngleEmbedding(angles, wires=wires, rotation="Y")
            if entangling == "strong":
                qml.StronglyEntanglingLayers(weights[block], wires=wires)
            else:  # the same Rot gates without the CNOT rings
                for layer in range(weights.shape[1]):
                    for wire in wires:
                        qml.Rot(*weights[block, layer, wire], wires=wire)
        return qml.probs(wires=wires)

    return circuit
