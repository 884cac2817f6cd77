"""One optimisation step of 16 images from cached features, for every variant of an experiment file.

All variants are timed round-robin in one process, so machine noise hits them alike; the ratio to
the classical control is what to quote (the study's QCNN was about 200x slower per epoch than its
control). The epoch estimate is the step time x 80 steps (1,269 training images). Target on the
2-core CPU: QCNN / classical <= 1.6.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import qcnn  # noqa: F401  (first: sets the OpenMP wait policy before torch loads)
import torch

from qcnn.benchmark import save_result
from qcnn.config import PRECISIONS
from qcnn.models import build_model
from qcnn.paths import REPO_ROOT, results_dir
from qcnn.runtime import machine, storage_dtype
from qcnn.sweep import load_experiment
from qcnn.train import make_optimizer, train_step

TARGET_RATIO = 1.6
STEPS_PER_EPOCH = 80  # 1,269 training images in batches of 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--experiment", type=Path, default=REPO_ROOT / "experiments" / "controls.toml")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="override every variant's training precision (default: the experiment's)",
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=results_dir() / "bench_training.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    variants = load_experiment(args.experiment).variants
    precision = {v.name: args.precision or v.train.precision for v in variants}
    models = {v.name: build_model(v.model).train() for v in variants}
    optimizers = {
        name: make_optimizer(model, v.train) for (name, model), v in zip(models.items(), variants, strict=True)
    }
    shapes = {"layer2": (128, 28, 28), "layer3": (256, 14, 14)}
    features = {
        name: torch.randn(args.batch, *shapes[m.cached_stage]).to(storage_dtype(precision[name]))
        for name, m in models.items()
    }
    labels = (torch.rand(args.batch) > 0.5).float()
    times: dict[str, list[float]] = {name: [] for name in models}
    for i in range(args.warmup + args.repeats):
        for name, model in models.items():  # round-robin: noise hits all alike
            start = time.perf_counter()
            train_step(model, optimizers[name], features[name], labels, precision[name])
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)

    median = {name: statistics.median(t) for name, t in times.items()}
    for name, seconds in median.items():
        print(
            f"{name:18s} {seconds * 1000:8.1f} ms per step ({precision[name]}), "
            f"~{seconds * STEPS_PER_EPOCH:6.1f} s per epoch, {seconds / median['classical']:5.2f}x classical"
        )
    ratio = median["qcnn"] / median["classical"]
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"ratio QCNN / classical: {ratio:.2f}  (target <= {TARGET_RATIO}: {verdict}; the study's was ~200)")
    save_result(
        {
            "experiment": args.experiment.name,
            "batch": args.batch,
            "precision": precision,
            "repeats": args.repeats,
            "threads": torch.get_num_threads(),
            "median_seconds_per_step": median,
            "epoch_seconds_estimate": {k: v * STEPS_PER_EPOCH for k, v in median.items()},
            "ratio_qcnn_over_classical": ratio,
            "target_ratio": TARGET_RATIO,
            "torch": torch.__version__,
            "machine": machine(torch.device("cpu")),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
