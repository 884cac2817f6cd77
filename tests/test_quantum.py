"""The quantum layer: the fast torch backend must be the PennyLane circuit, not an approximation of it.

PennyLane ``default.qubit`` (``backend="pennylane"``) is the reference; every equality test runs
both backends on the same weights. A gate-by-gate simulator below (pure torch, autograd for its
gradients) holds the dense formulation and its analytic backward equal at 1..8 qubits without
PennyLane. Hand-derived basis-state cases pin down the conventions (wire 0 is the most significant
bit, RY embedding, the CNOT ring of StronglyEntanglingLayers) independently of all three.
"""

from __future__ import annotations

import math

import pytest
import torch

from qcnn import quantum
from qcnn.quantum import QuantumLayer, block_matrices

N_QUBITS = 8
N_OUTCOMES = 2**N_QUBITS


def _gate_by_gate(angles: torch.Tensor, weights: torch.Tensor, entangling: str = "strong") -> torch.Tensor:
    """The circuit one gate at a time on a (B, 2, ..., 2) complex128 state; autograd gives its gradients."""
    batch, n = angles.shape
    state = torch.zeros(batch, 2**n, dtype=torch.complex128)
    state[:, 0] = 1
    state = state.reshape(batch, *[2] * n)

    def apply(state: torch.Tensor, gate: torch.Tensor, wire: int) -> torch.Tensor:
        moved = state.movedim(wire + 1, 1).reshape(batch, 2, -1)
        return (gate.to(torch.complex128).expand(batch, 2, 2) @ moved).reshape(batch, *[2] * n).movedim(1, wire + 1)

    def ry(x: torch.Tensor) -> torch.Tensor:
        c, s = torch.cos(x / 2), torch.sin(x / 2)
        return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)

    def rz(x: torch.Tensor) -> torch.Tensor:
        return torch.diag_embed(torch.stack([torch.exp(-0.5j * x), torch.exp(0.5j * x)], -1))

    def cnot(state: torch.Tensor, control: int, target: int) -> torch.Tensor:
        control_is_one = (torch.arange(2) == 1).reshape([1] * (control + 1) + [2] + [1] * (n - control - 1))
        return torch.where(control_is_one, state.flip(target + 1), state)

    for block in range(weights.shape[0]):
        for wire in range(n):
            state = apply(state, ry(angles[:, wire]), wire)
        for layer in range(weights.shape[1]):
            for wire in range(n):
                phi, theta, omega = weights[block, layer, wire]
                state = apply(state, rz(omega) @ ry(theta).to(torch.complex128) @ rz(phi), wire)
            if entangling == "strong" and n > 1:
                for wire in range(n):
                    state = cnot(state, wire, (wire + layer % (n - 1) + 1) % n)
    return torch.view_as_real(state.reshape(batch, -1)).square().sum(-1)


def _pair(
    n_layers: int,
    reuploads: int,
    dtype: torch.dtype,
    seed: int = 0,
    n_qubits: int = N_QUBITS,
    entangling: str = "strong",
) -> tuple[QuantumLayer, QuantumLayer]:
    """A torch and a PennyLane layer sharing one random weight tensor."""
    torch.manual_seed(seed)
    fast = QuantumLayer(n_qubits, n_layers, reuploads, backend="torch", entangling=entangling).to(dtype)
    reference = QuantumLayer(n_qubits, n_layers, reuploads, backend="pennylane", entangling=entangling)
    reference.weights = fast.weights
    return fast, reference


def _random_angles(*shape: int, dtype: torch.dtype, seed: int = 1) -> torch.Tensor:
    """Angles over two full turns, so sign and periodicity mistakes show."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=generator, dtype=torch.float64) * 4 * math.pi - 2 * math.pi).to(dtype)


def _probs_and_grads(simulate, angles: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Probabilities, and the gradients of a random linear functional of them w.r.t. angles and weights."""
    angles, weights = angles.detach().requires_grad_(), weights.detach().requires_grad_()
    probs = simulate(angles, weights)
    coefficients = torch.randn(probs.shape, generator=torch.Generator().manual_seed(7), dtype=probs.dtype)
    return (probs.detach(), *torch.autograd.grad((probs * coefficients).sum(), [angles, weights]))


def _assert_close(
    got: tuple[torch.Tensor, ...], want: tuple[torch.Tensor, ...], probs_atol: float, grad_rtol: float
) -> None:
    assert (got[0] - want[0]).abs().max().item() < probs_atol
    for g, w in zip(got[1:], want[1:], strict=True):
        assert w.abs().max().item() > 1e-3  # the functional really depends on them
        assert ((g - w).norm() / w.norm()).item() < grad_rtol


@pytest.mark.parametrize("entangling", ["strong", "none"])
@pytest.mark.parametrize("reuploads", [1, 2, 3])
@pytest.mark.parametrize("n_layers", [1, 2])
def test_torch_matches_pennylane_float64(n_layers: int, reuploads: int, entangling: str) -> None:
    """Probabilities to 1e-10 and gradients (angles and weights) to 1e-6 relative."""
    fast, reference = _pair(n_layers, reuploads, torch.float64, seed=10 * n_layers + reuploads, entangling=entangling)
    angles = _random_angles(5, N_QUBITS, dtype=torch.float64, seed=reuploads).requires_grad_()
    coefficients = torch.randn(5, N_OUTCOMES, dtype=torch.float64)  # a random linear functional

    grads = {}
    for name, layer in (("torch", fast), ("pennylane", reference)):
        probs = layer(angles)
        grads[name] = (probs.detach(), *torch.autograd.grad((probs * coefficients).sum(), [angles, layer.weights]))
    _assert_close(grads["torch"], grads["pennylane"], probs_atol=1e-10, grad_rtol=1e-6)


@pytest.mark.parametrize("entangling", ["strong", "none"])
@pytest.mark.parametrize(("n_layers", "reuploads"), [(1, 1), (2, 2), (2, 3)])
def test_torch_matches_pennylane_float32(n_layers: int, reuploads: int, entangling: str) -> None:
    fast, reference = _pair(n_layers, reuploads, torch.float32, seed=3, entangling=entangling)
    angles = _random_angles(6, N_QUBITS, dtype=torch.float32, seed=4)
    with torch.no_grad():
        probs_fast, probs_ref = fast(angles), reference(angles)
    assert probs_fast.dtype == probs_ref.dtype == torch.float32
    assert (probs_fast - probs_ref).abs().max().item() < 1e-5


@pytest.mark.parametrize("entangling", ["strong", "none"])
@pytest.mark.parametrize(
    ("n_qubits", "path"), [*((n, "dense") for n in range(1, N_QUBITS + 1)), *((n, "layerwise") for n in (1, 3, 6))]
)
def test_fast_paths_match_gate_by_gate(n_qubits: int, path: str, entangling: str, monkeypatch) -> None:
    """The dense blocks with the analytic backward at every width they serve, and the formulation used
    above DENSE_MAX_QUBITS forced at small widths (3 layers: three CNOT rings)."""
    if path == "layerwise":
        monkeypatch.setattr(quantum, "DENSE_MAX_QUBITS", 0)
    torch.manual_seed(n_qubits)
    weights = torch.rand(2, 3, n_qubits, 3, dtype=torch.float64) * 2 * math.pi
    angles = _random_angles(3, n_qubits, dtype=torch.float64, seed=n_qubits)
    simulate = lambda a, w: quantum.simulate(a, w, entangling)  # noqa: E731
    reference = lambda a, w: _gate_by_gate(a, w, entangling)  # noqa: E731
    _assert_close(
        _probs_and_grads(simulate, angles, weights),
        _probs_and_grads(reference, angles, weights),
        probs_atol=1e-12,
        grad_rtol=1e-9,
    )


@pytest.mark.parametrize(("n_qubits", "entangling"), [(10, "strong"), (10, "none"), (12, "strong")])
def test_wide_circuits_match_pennylane(n_qubits: int, entangling: str) -> None:
    """Above DENSE_MAX_QUBITS the layer applies the layers directly; still the PennyLane circuit."""
    assert n_qubits > quantum.DENSE_MAX_QUBITS
    fast, reference = _pair(2, 2, torch.float64, seed=n_qubits, n_qubits=n_qubits, entangling=entangling)
    angles = _random_angles(2, n_qubits, dtype=torch.float64, seed=n_qubits)
    got = _probs_and_grads(lambda a, w: quantum.simulate(a, w, entangling), angles, fast.weights)
    want = _probs_and_grads(lambda a, w: reference.qnode(a, w), angles, fast.weights)
    _assert_close(got, want, probs_atol=1e-10, grad_rtol=1e-6)
    assert fast(angles.float()).shape == (2, 2**n_qubits)


@pytest.mark.parametrize(("needs_angles", "needs_weights"), [(True, False), (False, True)])
def test_partial_gradients_match_gate_by_gate(needs_angles: bool, needs_weights: bool) -> None:
    """Frozen weights (Grad-CAM through a trained layer: cached blocks) or constant angles."""
    torch.manual_seed(4)
    layer = QuantumLayer(n_qubits=5).double().requires_grad_(needs_weights)
    angles = _random_angles(4, 5, dtype=torch.float64).requires_grad_(needs_angles)
    wrt = [angles] if needs_angles else [layer.weights]
    coefficients = torch.randn(4, 32, dtype=torch.float64)
    got = torch.autograd.grad((layer(angles) * coefficients).sum(), wrt)[0]
    want = torch.autograd.grad((_gate_by_gate(angles, layer.weights) * coefficients).sum(), wrt)[0]
    assert ((got - want).norm() / want.norm()).item() < 1e-9


def test_cached_blocks_follow_the_weights() -> None:
    """Eval-mode calls reuse the block matrices until an optimiser step or a state_dict load changes the weights."""
    torch.manual_seed(6)
    layer = QuantumLayer(n_qubits=4, n_layers=1).double().eval()
    angles = _random_angles(3, 4, dtype=torch.float64)

    def expected() -> torch.Tensor:
        return _gate_by_gate(angles, layer.weights.detach())

    with torch.no_grad():
        assert torch.allclose(layer(angles), expected(), atol=1e-12)
        assert torch.allclose(layer(angles), expected(), atol=1e-12)  # from the cache
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    layer.weights.sum().backward()
    optimizer.step()  # in place: same storage, new version
    with torch.no_grad():
        assert torch.allclose(layer(angles), expected(), atol=1e-12)
        layer.load_state_dict({"weights": torch.zeros_like(layer.weights)})
        assert torch.allclose(layer(angles), expected(), atol=1e-12)


@pytest.mark.parametrize(
    ("backend", "shape"),
    [
        ("torch", (N_QUBITS,)),
        ("torch", (7, N_QUBITS)),
        ("torch", (3, 196, N_QUBITS)),
        ("pennylane", (N_QUBITS,)),
        ("pennylane", (7, N_QUBITS)),
        ("pennylane", (2, 196, N_QUBITS)),
    ],
)
def test_batch_shapes(backend: str, shape: tuple[int, ...]) -> None:
    """Leading dimensions pass through; each circuit's result does not depend on its batch."""
    torch.manual_seed(0)
    layer = QuantumLayer(backend=backend)
    angles = _random_angles(*shape, dtype=torch.float32)
    with torch.no_grad():
        probs = layer(angles)
        first_alone = layer(angles.reshape(-1, N_QUBITS)[:1])
    assert probs.shape == (*shape[:-1], N_OUTCOMES)
    assert torch.allclose(probs.reshape(-1, N_OUTCOMES)[0], first_alone[0], atol=1e-6)


@pytest.mark.parametrize("backend", ["torch", "pennylane"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_probabilities_are_a_distribution(backend: str, dtype: torch.dtype) -> None:
    torch.manual_seed(2)
    layer = QuantumLayer(n_layers=2, reuploads=3, backend=backend).to(dtype)
    with torch.no_grad():
        probs = layer(_random_angles(64, N_QUBITS, dtype=dtype))
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    assert probs.min().item() >= -tolerance
    assert torch.allclose(probs.sum(-1), torch.ones(64, dtype=dtype), atol=tolerance)


@pytest.mark.parametrize("entangling", ["strong", "none"])
def test_block_matrices_are_orthogonal(entangling: str) -> None:
    """Unitary blocks on interleaved real states: block 0 has orthonormal rows, later blocks are orthogonal."""
    torch.manual_seed(5)
    first, second = block_matrices(torch.rand(2, 2, N_QUBITS, 3, dtype=torch.float64) * 2 * math.pi, entangling)
    assert first.shape == (N_OUTCOMES, 2 * N_OUTCOMES) and second.shape == (2 * N_OUTCOMES, 2 * N_OUTCOMES)
    assert torch.allclose(first @ first.T, torch.eye(N_OUTCOMES, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(second @ second.T, torch.eye(2 * N_OUTCOMES, dtype=torch.float64), atol=1e-12)


# Basis-state cases with all weights zero (every Rot is the identity, the CNOT rings still act).
# Wire w is bit (n - 1 - w) of the outcome. Layer l's ring is CNOT(i, (i + r) % n) for
# i = 0..n-1 in order, r = l % (n - 1) + 1; the layer index restarts in every re-uploaded block.
HAND_CASES = [
    # n_qubits, n_layers, reuploads, wires at angle pi, outcome
    pytest.param(8, 2, 2, [], 0, id="all-zero"),
    # |10000000>: the r=1 ring copies the 1 down to |11111111>, then CNOT(7,0) clears wire 0:
    # |01111111> = 127 (not 128: the ring acts at zero weights).
    pytest.param(8, 1, 1, [0], 127, id="pi-wire0-1layer"),
    # From |01111111> the r=2 ring of layer 1: CNOT(1,3) clears wire 3, CNOT(2,4) clears 4,
    # CNOT(5,7) clears 7, CNOT(6,0) sets 0; controls 0, 3, 4, 7 are then 0. |11100110> = 230.
    pytest.param(8, 2, 1, [0], 230, id="pi-wire0-2layers"),
    # |01111111> (block 0 as above), re-uploaded RY(pi) on wire 0 -> |11111111>; in the r=1 ring
    # CNOT(0,1), CNOT(2,3), CNOT(4,5), CNOT(6,7) clear wires 1, 3, 5, 7 and the others find their
    # control already cleared -> |10101010> = 170.
    pytest.param(8, 1, 2, [0], 170, id="pi-wire0-reupload"),
    # One qubit has no CNOTs: the embedding alone, RY(pi)|0> = |1>.
    pytest.param(1, 1, 1, [0], 1, id="embedding-only"),
    # |01>: CNOT(0,1) has control 0, then CNOT(1,0) flips wire 0 -> |11> = 3 (the ring run in the
    # opposite order would give |10> = 2).
    pytest.param(2, 1, 1, [1], 3, id="wire-order-wire1"),
    # |10>: CNOT(0,1) -> |11>, CNOT(1,0) -> |01> = 1 (2 if wire 0 were the least significant bit).
    pytest.param(2, 1, 1, [0], 1, id="wire-order-wire0"),
]


@pytest.mark.parametrize("backend", ["torch", "pennylane"])
@pytest.mark.parametrize(("n_qubits", "n_layers", "reuploads", "pi_wires", "outcome"), HAND_CASES)
def test_hand_checked_basis_states(
    backend: str, n_qubits: int, n_layers: int, reuploads: int, pi_wires: list[int], outcome: int
) -> None:
    layer = QuantumLayer(n_qubits, n_layers, reuploads, backend=backend).double()
    with torch.no_grad():
        layer.weights.zero_()
        angles = torch.zeros(n_qubits, dtype=torch.float64)
        angles[pi_wires] = math.pi
        probs = layer(angles)
    expected = torch.zeros(2**n_qubits, dtype=torch.float64)
    expected[outcome] = 1.0
    assert torch.allclose(probs, expected, atol=1e-12), f"most likely outcome {probs.argmax().item()}"


@pytest.mark.parametrize(
    ("make_angles", "message"),
    [
        (lambda: torch.zeros(4, N_QUBITS - 1), "shape"),
        (lambda: torch.zeros(4, N_QUBITS, dtype=torch.int64), "floating-point"),
        (lambda: torch.tensor(0.5), "shape"),
        (lambda: [0.0] * N_QUBITS, "floating-point"),
    ],
)
def test_invalid_angles_raise(make_angles, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QuantumLayer(backend="torch")(make_angles())


@pytest.mark.parametrize("kwargs", [{"backend": "qiskit"}, {"n_layers": 0}, {"reuploads": 0}, {"entangling": "basic"}])
def test_invalid_configuration_raises(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="backend|positive|entangling"):
        QuantumLayer(**kwargs)


def test_extra_repr_names_the_entangling() -> None:
    assert "entangling='none'" in repr(QuantumLayer(entangling="none"))
    assert "entangling='strong'" in repr(QuantumLayer())


@pytest.mark.parametrize("backend", ["torch", "pennylane"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_dtype_follows_input(backend: str, dtype: torch.dtype) -> None:
    """Float32 weights with float64 angles still compute in float64 (and vice versa)."""
    layer = QuantumLayer(backend=backend)
    with torch.no_grad():
        assert layer(torch.zeros(2, N_QUBITS, dtype=dtype)).dtype == dtype


def test_draw_text_names_every_wire() -> None:
    text = QuantumLayer(n_qubits=3, n_layers=1, reuploads=2).draw_text()
    assert isinstance(text, str)
    assert all(f"{wire}: " in text for wire in range(3))
    assert "StronglyEntanglingLayers" in text and "Probs" in text
    product = QuantumLayer(n_qubits=3, n_layers=1, reuploads=2, entangling="none").draw_text()
    assert "Rot" in product and "StronglyEntanglingLayers" not in product


def test_draw_figure_returns_a_matplotlib_figure() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    fig = QuantumLayer(n_qubits=3, n_layers=1, reuploads=2).draw_figure()
    try:
        assert isinstance(fig, Figure)
    finally:
        plt.close(fig)
