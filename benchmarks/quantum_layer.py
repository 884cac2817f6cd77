"""Quantum layer throughput: the torch state-vector backend against PennyLane default.qubit.

The study's QCNN trained about 200x slower than its classical control, almost all of it in the
PennyLane simulation. This times both backends on one training batch (16 images x 196 patches =
3,136 circuits, float32) in one process, their repeats interleaved so machine noise hits both,
next to the plain float32 GEMMs the torch formulation performs: a compute bound it cannot beat.

    python benchmarks/quantum_layer.py          # or: qcnn bench quantum
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/...` puts benchmarks/, not the repo, on the path
    sys.path.insert(0, str(REPO_ROOT))

import qcnn  # noqa: F401  (first: sets the OpenMP wait policy before torch loads)
import pennylane as qml
import torch

from qcnn.benchmark import run_benchmark
from qcnn.paths import results_dir
from qcnn.quantum import QuantumLayer

TARGET_RATIO = 8.0  # torch backend at least 8x PennyLane for forward+backward


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per case, after one warm-up")
    parser.add_argument("--batch", type=int, default=16, help="images per batch")
    parser.add_argument("--patches", type=int, default=196, help="circuits per image (14 x 14 grid)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    parser.add_argument("--out", type=Path, default=results_dir() / "bench_quantum.json")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.batch < 1 or args.patches < 1:
        parser.error("--repeats, --batch and --patches must be positive")
    return args


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _layer_cases(batch: int, patches: int) -> tuple[dict[str, Callable[[], object]], float]:
    """Forward (no_grad) and forward+backward for both backends on shared weights and inputs."""
    torch.manual_seed(0)
    layers = {"torch": QuantumLayer(backend="torch"), "pennylane": QuantumLayer(backend="pennylane")}
    layers["pennylane"].weights = layers["torch"].weights
    angles = torch.rand(batch, patches, 8) * torch.pi
    grad_out = torch.randn(batch, patches, 256)

    def forward(layer: QuantumLayer) -> Callable[[], object]:
        def step() -> torch.Tensor:
            with torch.no_grad():
                return layer(angles)
        return step

    def forward_backward(layer: QuantumLayer) -> Callable[[], object]:
        def step() -> None:
            layer.zero_grad(set_to_none=True)
            layer(angles.detach().requires_grad_()).backward(grad_out)  # angles need grads in the model
        return step

    with torch.no_grad():
        max_abs_diff = (layers["torch"](angles) - layers["pennylane"](angles)).abs().max().item()
    cases = {f"{name}_forward": forward(layer) for name, layer in layers.items()}
    cases.update({f"{name}_forward_backward": forward_backward(layer) for name, layer in layers.items()})
    return cases, max_abs_diff


def _gemm_cases(circuits: int) -> dict[str, Callable[[], object]]:
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
        dy0 @ w0.T
        x0.T @ dy0
        dy1 @ w1.T
        x1.T @ dy1

    return {"gemm_forward": forward, "gemm_forward_backward": forward_backward}


def run(args: argparse.Namespace) -> dict:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    circuits = args.batch * args.patches
    cases, max_abs_diff = _layer_cases(args.batch, args.patches)
    cases.update(_gemm_cases(circuits))

    for fn in cases.values():  # warm-up: PennyLane's first call builds the QNode and device
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for repeat in range(args.repeats):  # interleaved, alternating direction against position bias
        for name in order if repeat % 2 == 0 else reversed(order):
            times[name].append(_seconds(cases[name]))

    kinds = ("forward", "forward_backward")
    return {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
        "pennylane_version": qml.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "dtype": "float32",
        "batch": args.batch,
        "patches": args.patches,
        "circuits": circuits,
        "repeats": args.repeats,
        "max_abs_diff_probabilities": max_abs_diff,
        "all_s": times,
        "median": _summary({name: statistics.median(values) for name, values in times.items()}, circuits, kinds),
        # the least disturbed repeat: a cross-check when other jobs share the machine
        "best": _summary({name: min(values) for name, values in times.items()}, circuits, kinds),
        "target": {"forward_backward_ratio_at_least": TARGET_RATIO, "statistic": "median"},
    }


def _summary(seconds: dict[str, float], circuits: int, kinds: tuple[str, ...]) -> dict:
    ratio = {kind: seconds[f"pennylane_{kind}"] / seconds[f"torch_{kind}"] for kind in kinds}
    return {
        "seconds": seconds,
        "circuits_per_s": {f"{backend}_{kind}": circuits / seconds[f"{backend}_{kind}"]
                           for backend in ("torch", "pennylane") for kind in kinds},
        "ratio_pennylane_over_torch": ratio,
        "gemm_bound_percent_of_torch": {kind: 100 * seconds[f"gemm_{kind}"] / seconds[f"torch_{kind}"]
                                        for kind in kinds},
        "target_met": ratio["forward_backward"] >= TARGET_RATIO,
    }


def report(result: dict) -> str:
    lines = [
        f"quantum layer: {result['batch']} x {result['patches']} = {result['circuits']:,} circuits, float32, "
        f"{result['threads']} threads, {result['repeats']} repeats (torch {result['torch_version']}, "
        f"pennylane {result['pennylane_version']}); backends differ by {result['max_abs_diff_probabilities']:.1e}",
    ]
    for statistic in ("median", "best"):
        summary = result[statistic]
        rate, ratio, bound = (summary[key] for key in
                              ("circuits_per_s", "ratio_pennylane_over_torch", "gemm_bound_percent_of_torch"))
        lines.append(f"{statistic:18}{'torch':>16}{'pennylane':>16}{'pennylane/torch':>17}{'GEMM bound':>12}")
        for kind, label in (("forward", "  forward"), ("forward_backward", "  forward+backward")):
            line = (f"{label:18}{rate[f'torch_{kind}']:>10,.0f} circ/s{rate[f'pennylane_{kind}']:>10,.0f} circ/s"
                    f"{ratio[kind]:>16.1f}x{bound[kind]:>11.0f}%")
            if kind == "forward_backward":
                line += f"   target >= {TARGET_RATIO:.0f}x: {'met' if summary['target_met'] else 'NOT met'}"
            lines.append(line)
    lines.append("GEMM bound = time of the formulation's plain float32 GEMMs / torch layer time; "
                 "the target is judged on the medians")
    return "\n".join(lines)


if __name__ == "__main__":
    run_benchmark(parse_args, run, report)
