"""One optimisation step of 16 images from cached prefix features: QCNN against the classical control.

Both models are timed alternately in one process, so machine noise hits both alike; the ratio is
what to quote (the study's QCNN was about 200x slower per epoch than its control).
Target on the 2-core CPU: QCNN / classical <= 1.6.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import qcnn  # noqa: F401  (first: sets the OpenMP wait policy before torch loads)
import torch

from qcnn.benchmark import save_result
from qcnn.models import build_model
from qcnn.paths import results_dir
from qcnn.train import TrainConfig, make_optimizer, train_step

TARGET_RATIO = 1.6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=TrainConfig.bf16,
                        help="layer3 under bfloat16 autocast, as training does by default")
    parser.add_argument("--out", type=Path, default=results_dir() / "bench_training.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    models = {kind: build_model(kind).train() for kind in ("qcnn", "classical")}
    optimizers = {kind: make_optimizer(model, TrainConfig()) for kind, model in models.items()}
    features = torch.randn(args.batch, 128, 28, 28).to(torch.bfloat16)  # what the cache holds
    labels = (torch.rand(args.batch) > 0.5).float()
    times: dict[str, list[float]] = {kind: [] for kind in models}
    for i in range(args.warmup + args.repeats):
        for kind, model in models.items():  # alternate: noise hits both
            start = time.perf_counter()
            train_step(model, optimizers[kind], features, labels, args.bf16)
            if i >= args.warmup:
                times[kind].append(time.perf_counter() - start)

    median = {kind: statistics.median(t) for kind, t in times.items()}
    ratio = median["qcnn"] / median["classical"]
    for kind, seconds in median.items():
        print(f"{kind:9s} {seconds * 1000:8.1f} ms per step of {args.batch} images (layer3 in "
              f"{'bfloat16' if args.bf16 else 'float32'})")
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"ratio QCNN / classical: {ratio:.2f}  (target <= {TARGET_RATIO}: {verdict}; the study's was ~200)")
    save_result({
        "batch": args.batch, "layer3_bf16": args.bf16, "repeats": args.repeats, "threads": torch.get_num_threads(),
        "median_seconds": median, "ratio_qcnn_over_classical": ratio, "target_ratio": TARGET_RATIO,
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, args.out)


if __name__ == "__main__":
    main()
