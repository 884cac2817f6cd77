"""Quantum layer throughput: the project's simulator against its previous formulation, the GEMM floor and peers.

The study's QCNN trained about 200x slower than its classical control, almost all of it in the
PennyLane simulation. This times, in one process with all repeats interleaved so machine noise hits
every case alike, float32, forward (no_grad) and forward+backward (gradients to angles and weights):

- ``layer``: ``QuantumLayer(backend="torch")``, the analytic backward with cached blocks;
- ``previous``: the formulation before it (autograd through broadcasts, blocks rebuilt per call),
  frozen below;
- ``gemm``: the plain float32 GEMMs of the formulation's shapes, a floor no formulation of it beats;
- ``pennylane``: PennyLane ``default.qubit`` with torch (backprop, parameter broadcasting);
- ``pennylane_jax`` and ``torchquantum``: PennyLane with JAX ``jit``, and TorchQuantum, each only
  when its package is installed (optional peers, never project requirements).

at B = 3,136 circuits (a training batch: 16 images x 196 patches) and B = 196 (one image). Each
batch size is timed in its own interleaved loop (so one image's cases never follow PennyLane's
seconds-long backward at the training batch), in a fresh seeded order every repeat, after a
garbage collection. ``--profile`` adds torch.profiler's self-time table of the layer's
forward+backward at the training batch: where the time beyond the GEMM floor goes.

    python benchmarks/quantum_layer.py          # or: qcnn bench quantum
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, UTC
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/...` puts benchmarks/, not the repo, on the path
    sys.path.insert(0, str(REPO_ROOT))

import qcnn  # noqa: F401  (first: sets the OpenMP wait policy before torch loads)
import pennylane as qml
import torch

from qcnn.runtime import machine
from qcnn.benchmark import run_benchmark
from qcnn.paths import results_dir
from qcnn.quantum import QuantumLayer, _cnot_ring_permutation, _interleaved_layout, _rot_matrices, make_qnode

N_QUBITS, N_LAYERS, REUPLOADS = 8, 2, 2
TARGETS = {  # judged on the medians of the forward+backward at the training batch, and per circuit at one image
    "training_batch": 3136,
    "speedup_over_previous_at_least": 1.4,
    "percent_of_gemm_floor_at_least": 70.0,
    "one_image": 196,
    "one_image_speedup_over_previous_at_least": 1.0,
}
KINDS = ("forward", "forward_backward")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed repeats per case, after one warm-up")
    parser.add_argument("--batches", type=int, nargs="+", default=[3136, 196], help="circuits per call")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    parser.add_argument(
        "--profile", action="store_true", help="add a torch.profiler table of the layer's forward+backward"
    )
    parser.add_argument("--out", type=Path, default=results_dir() / "bench_quantum.json")
    args = parser.parse_args(argv)
    if args.repeats < 1 or min(args.batches) < 1:
        parser.error("--repeats and --batches must be positive")
    return args


# The previous formulation, frozen as it was before the analytic backward (autograd through all of it).
def _previous_kron(rotations: torch.Tensor) -> torch.Tensor:
    out = rotations[:, 0]
    for wire in range(1, rotations.shape[1]):
        gate, size = rotations[:, wire], 2 * out.shape[-1]
        out = (out[:, :, None, :, None] * gate[:, None, :, None, :]).reshape(out.shape[0], size, size)
    return out


def _previous_block_matrix(weights: torch.Tensor) -> torch.Tensor:
    n_layers, n_qubits, _ = weights.shape
    layers = _previous_kron(_rot_matrices(weights))
    matrix = None
    for layer in range(n_layers):
        step = layers[layer].T[:, _cnot_ring_permutation(n_qubits, layer)]
        matrix = step if matrix is None else matrix @ step
    return matrix


def _previous_product_state(cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    state = torch.stack([cos[:, 0], sin[:, 0]], -1)
    for wire in range(1, cos.shape[1]):
        amp = torch.stack([cos[:, wire], sin[:, wire]], -1)
        state = (state[:, :, None] * amp[:, None, :]).reshape(state.shape[0], -1)
    return state


def _previous_embedding(state: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    batch, n_qubits = cos.shape
    rotations = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    high = n_qubits // 2
    rows, cols = 2**high, 2 ** (n_qubits - high)
    x = state.reshape(batch, 2 * rows, cols) @ _previous_kron(rotations[:, high:]).transpose(1, 2)
    x = _previous_kron(rotations[:, :high]) @ x.reshape(batch, rows, 2 * cols)
    return x.reshape(batch, -1)


def previous_simulate(angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    batch, n_qubits = angles.shape
    cos, sin = torch.cos(angles / 2), torch.sin(angles / 2)
    layout = _interleaved_layout(n_qubits)
    state = None
    for block in range(weights.shape[0]):
        matrix = _previous_block_matrix(weights[block])
        mr, mi = matrix.real, matrix.imag
        top = torch.cat([mr, mi], 1)
        if block == 0:
            state = _previous_product_state(cos, sin) @ top[:, layout]
        else:
            full = torch.cat([top, torch.cat([-mi, mr], 1)], 0)[layout][:, layout]
            state = _previous_embedding(state, cos, sin) @ full
    rows = 2 ** (n_qubits // 2)
    return state.reshape(batch, rows, 2, -1).square().sum(2).reshape(batch, -1)


Case = tuple[Callable[[], object], Callable[[], object], Callable[[], torch.Tensor] | None]


def _torch_case(
    probs_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    weights: torch.Tensor,
    angles: torch.Tensor,
    grad_out: torch.Tensor,
) -> Case:
    """(forward, forward+backward, probabilities) of a torch implementation with gradients to angles and weights."""

    def forward() -> torch.Tensor:
        with torch.no_grad():
            return probs_of(angles, weights)

    def forward_backward() -> None:
        weights.grad = None
        probs_of(angles.detach().requires_grad_(), weights).backward(grad_out)

    return forward, forward_backward, forward


def _gemm_case(circuits: int) -> Case:
    """The formulation's GEMMs on random float32 data: block 0 (N,256)@(256,512) from the real
    product state, block 1 (N,512)@(512,512) on [re, im]; backward adds dX = dY W^T and dW = X^T dY."""
    x0, w0 = torch.randn(circuits, 256), torch.randn(256, 512)
    x1, w1 = torch.randn(circuits, 512), torch.randn(512, 512)
    dy0, dy1 = torch.randn(circuits, 512), torch.randn(circuits, 512)

    def forward() -> None:
        x0 @ w0
        x1 @ w1

    def forward_backward() -> None:
        forward()
        dy1 @ w1.T
        x1.T @ dy1
        dy0 @ w0.T
        x0.T @ dy0

    return forward, forward_backward, None


def _jax_case(weights: torch.Tensor, angles: torch.Tensor, grad_out: torch.Tensor) -> Case:
    """PennyLane default.qubit with the JAX interface, forward and its vector-Jacobian product under jit."""
    import warnings

    import jax
    import jax.numpy as jnp

    warnings.filterwarnings("ignore", message="Explicitly requested dtype complex128")  # float32 run, as intended

    circuit = make_qnode(N_QUBITS, interface="jax")
    w, a, g = (jnp.asarray(t.detach().numpy()) for t in (weights, angles, grad_out))
    forward = jax.jit(circuit)

    @jax.jit
    def vjp(a: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jax.vjp(circuit, a, w)[1](g)

    return (
        lambda: forward(a, w).block_until_ready(),
        lambda: jax.block_until_ready(vjp(a, w)),
        lambda: torch.from_numpy(jax.device_get(forward(a, w)).copy()),
    )


def _torchquantum_case(weights: torch.Tensor, angles: torch.Tensor, grad_out: torch.Tensor) -> Case:
    """TorchQuantum's state-vector device, gate by gate, the same circuit."""
    import qcnn.compat  # noqa: F401  (torchquantum imports torchvision)
    import torchquantum as tq
    import torchquantum.functional as tqf

    def probs_of(angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        batch = angles.shape[0]
        device = tq.QuantumDevice(n_wires=N_QUBITS, bsz=batch)
        for block in range(weights.shape[0]):
            for wire in range(N_QUBITS):
                tqf.ry(device, wires=wire, params=angles[:, wire : wire + 1])
            for layer in range(weights.shape[1]):
                for wire in range(N_QUBITS):
                    tqf.rot(device, wires=wire, params=weights[block, layer, wire].expand(batch, 3))
                r = layer % (N_QUBITS - 1) + 1
                for wire in range(N_QUBITS):
                    tqf.cnot(device, wires=[wire, (wire + r) % N_QUBITS])
        return device.get_states_1d().abs().square()

    return _torch_case(probs_of, weights, angles, grad_out)


def _cases(circuits: int, peers: list[str]) -> dict[str, Case]:
    """Every implementation at one batch size, on shared weights, angles and output gradient."""
    torch.manual_seed(0)
    layer = QuantumLayer(N_QUBITS, N_LAYERS, REUPLOADS)
    pennylane = QuantumLayer(N_QUBITS, N_LAYERS, REUPLOADS, backend="pennylane")
    pennylane.weights = layer.weights
    angles = torch.rand(circuits, N_QUBITS) * 2 * torch.pi - torch.pi
    grad_out = torch.randn(circuits, 2**N_QUBITS)
    previous_weights = layer.weights.detach().clone().requires_grad_()
    cases = {
        "layer": _torch_case(lambda a, w: layer(a), layer.weights, angles, grad_out),
        "previous": _torch_case(previous_simulate, previous_weights, angles, grad_out),
        "gemm": _gemm_case(circuits),
        "pennylane": _torch_case(lambda a, w: pennylane(a), layer.weights, angles, grad_out),
    }
    if "jax" in peers:
        cases["pennylane_jax"] = _jax_case(layer.weights, angles, grad_out)
    if "torchquantum" in peers:
        tq_weights = layer.weights.detach().clone().requires_grad_()
        cases["torchquantum"] = _torchquantum_case(tq_weights, angles, grad_out)
    return cases


def _seconds(fn: Callable[[], object]) -> float:
    gc.collect()  # no case pays for another's garbage
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _installed_peers() -> list[str]:
    return [name for name in ("jax", "torchquantum") if importlib.util.find_spec(name) is not None]


def _time_interleaved(timed: dict[str, Callable[[], object]], repeats: int, seed: int) -> dict[str, list[float]]:
    """One warm-up each (QNode and device construction, jit compilation, block caches), then ``repeats``
    rounds over every case in a fresh seeded order, so no case always follows the same one."""
    for fn in timed.values():
        fn()
    times: dict[str, list[float]] = {key: [] for key in timed}
    order, rng = list(timed), random.Random(seed)
    for _ in range(repeats):
        rng.shuffle(order)
        for key in order:
            times[key].append(_seconds(timed[key]))
    return times


def _profile(forward_backward: Callable[[], object], rows: int = 15) -> list[dict[str, float | str]]:
    """The ops taking the most self CPU time over 5 calls of one case (after the warm-up)."""
    from torch.profiler import ProfilerActivity, profile

    forward_backward()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            forward_backward()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [
        {
            "op": e.key,
            "calls_per_step": e.count / 5,
            "self_ms_per_step": e.self_cpu_time_total / 5e3,
            "self_percent": 100 * e.self_cpu_time_total / total,
        }
        for e in events[:rows]
    ]


def run(args: argparse.Namespace) -> dict:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    peers = _installed_peers()
    times: dict[str, list[float]] = {}
    max_abs_diff: dict[str, dict[str, float]] = {}
    profile_rows = None
    for index, circuits in enumerate(args.batches):
        cases = _cases(circuits, peers)
        reference = cases["layer"][2]()
        max_abs_diff[str(circuits)] = {
            name: (probs() - reference).abs().max().item()
            for name, (_, _, probs) in cases.items()
            if probs is not None and name != "layer"
        }
        timed = {}
        for name, (forward, forward_backward, _) in cases.items():
            timed[f"{name}|forward|{circuits}"] = forward
            timed[f"{name}|forward_backward|{circuits}"] = forward_backward
        times.update(_time_interleaved(timed, args.repeats, seed=index))
        if args.profile and circuits == TARGETS["training_batch"]:
            profile_rows = _profile(cases["layer"][1])
        del cases, timed

    batches = {}
    for circuits in args.batches:
        names = list(dict.fromkeys(key.split("|")[0] for key in times if key.endswith(f"|{circuits}")))
        batches[str(circuits)] = {
            statistic: _summary(
                {name: {kind: reduce(times[f"{name}|{kind}|{circuits}"]) for kind in KINDS} for name in names}, circuits
            )
            for statistic, reduce in (("median", statistics.median), ("best", min))
        }
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
        "pennylane_version": qml.__version__,
        "peers_installed": {name: _version(name) for name in peers},
        "threads": torch.get_num_threads(),
        "machine": machine(torch.device("cpu")),
        "dtype": "float32",
        "circuit": {"n_qubits": N_QUBITS, "n_layers": N_LAYERS, "reuploads": REUPLOADS},
        "repeats": args.repeats,
        "max_abs_diff_probabilities_vs_layer": max_abs_diff,
        "all_s": {key: values for key, values in times.items()},
        "batches": batches,
        "targets": TARGETS,
        "targets_met": _targets_met(batches),
        "profile_layer_forward_backward": profile_rows,
    }


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def _summary(seconds: dict[str, dict[str, float]], circuits: int) -> dict:
    """Per implementation and kind: seconds, circuits/s, % of the GEMM floor, time relative to the layer."""
    return {
        "seconds": seconds,
        "circuits_per_s": {name: {kind: circuits / s[kind] for kind in KINDS} for name, s in seconds.items()},
        "percent_of_gemm_floor": {
            name: {kind: 100 * seconds["gemm"][kind] / s[kind] for kind in KINDS}
            for name, s in seconds.items()
            if name != "gemm"
        },
        "times_slower_than_layer": {
            name: {kind: s[kind] / seconds["layer"][kind] for kind in KINDS}
            for name, s in seconds.items()
            if name not in ("layer", "gemm")
        },
    }


def _targets_met(batches: dict) -> dict[str, bool | None]:
    """The issue's targets on the medians; None where the run did not include the batch size."""
    train, image = batches.get(str(TARGETS["training_batch"])), batches.get(str(TARGETS["one_image"]))
    met: dict[str, bool | None] = {
        "speedup_over_previous": None,
        "percent_of_gemm_floor": None,
        "one_image_not_slower": None,
    }
    if train:
        median = train["median"]
        met["speedup_over_previous"] = (
            median["times_slower_than_layer"]["previous"]["forward_backward"]
            >= TARGETS["speedup_over_previous_at_least"]
        )
        met["percent_of_gemm_floor"] = (
            median["percent_of_gemm_floor"]["layer"]["forward_backward"] >= TARGETS["percent_of_gemm_floor_at_least"]
        )
    if image:
        met["one_image_not_slower"] = all(
            image["median"]["times_slower_than_layer"]["previous"][kind]
            >= TARGETS["one_image_speedup_over_previous_at_least"]
            for kind in KINDS
        )
    return met


def report(result: dict) -> str:
    lines = [
        f"quantum layer ({N_QUBITS} qubits, {N_LAYERS} layers, {REUPLOADS} uploads), float32, "
        f"{result['threads']} threads, medians of {result['repeats']} interleaved repeats (torch "
        f"{result['torch_version']}, pennylane {result['pennylane_version']}"
        + "".join(f", {name} {version}" for name, version in result["peers_installed"].items())
        + ")",
    ]
    for circuits, summary in result["batches"].items():
        median = summary["median"]
        lines.append(f"B = {int(circuits):,} circuits{'':10}{'forward':>26}{'forward+backward':>36}")
        lines.append(
            f"{'':16}{'circuits/s':>14}{'% GEMM':>8}{'x layer':>9}{'':5}"
            f"{'circuits/s':>14}{'% GEMM':>8}{'x layer':>9}   max |p - p_layer|"
        )
        for name in median["seconds"]:
            cells = []
            for kind in KINDS:
                percent = median["percent_of_gemm_floor"].get(name, {}).get(kind)
                slower = median["times_slower_than_layer"].get(name, {}).get(kind)
                cells.append(
                    f"{median['circuits_per_s'][name][kind]:>14,.0f}"
                    f"{'' if percent is None else f'{percent:.1f}%':>8}"
                    f"{'' if slower is None else f'{slower:.2f}':>9}"
                )
            diff = result["max_abs_diff_probabilities_vs_layer"][circuits].get(name)
            lines.append(f"  {name:14}" + "     ".join(cells) + ("" if diff is None else f"   {diff:.1e}"))
    met = result["targets_met"]
    words = {True: "met", False: "NOT met", None: "not measured"}
    lines.append(
        f"targets (medians): forward+backward at B = {TARGETS['training_batch']:,} >= "
        f"{TARGETS['speedup_over_previous_at_least']}x the previous: {words[met['speedup_over_previous']]}; "
        f">= {TARGETS['percent_of_gemm_floor_at_least']:.0f}% of the GEMM floor: "
        f"{words[met['percent_of_gemm_floor']]}; B = {TARGETS['one_image']} no slower than the previous: "
        f"{words[met['one_image_not_slower']]}"
    )
    lines.append("% GEMM = time of the formulation's plain float32 GEMMs / time; x layer = time / the layer's time")
    if result.get("profile_layer_forward_backward"):
        lines.append(
            f"layer forward+backward at B = {TARGETS['training_batch']:,}, self CPU time per step (torch.profiler):"
        )
        lines += [
            f"  {row['op']:40}{row['calls_per_step']:>6.0f} calls"
            f"{row['self_ms_per_step']:>9.2f} ms{row['self_percent']:>7.1f}%"
            for row in result["profile_layer_forward_backward"]
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    run_benchmark(parse_args, run, report)
