"""Inference latency of the "Try it" page: one image through both models, with both CAMs.

Times ``Predictor.predict`` (both models, both class-activation maps, the per-patch outcome
distributions) per CAM method, and its parts: preprocess, conv1..layer2 (shared by the two models),
each model's forward (layer3 + head) and each model's CAM; plus decoding the uploaded JPEG bytes.
Repeats are interleaved across methods so machine noise spreads over all of them. Target on the
project's 2-core CPU: a median of at most 1.0 s for one image with GradCAM.

    python benchmarks/inference.py              # or: qcnn bench inference
    python benchmarks/inference.py --methods GradCAM HiResCAM --repeats 11
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, UTC
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/...` puts benchmarks/, not the repo, on the path
    sys.path.insert(0, str(REPO_ROOT))

import qcnn.compat  # noqa: F401  (before torchvision / pytorch_grad_cam)
import torch
from PIL import Image

from qcnn.inference import CAM_METHODS, Predictor, load_image
from qcnn.runtime import machine
from qcnn.benchmark import run_benchmark
from qcnn.paths import SPLIT_FILE, checkpoint_dir, results_dir

TARGET_SECONDS = 1.0  # median predict() with GradCAM
TARGET_METHOD = "GradCAM"
SLOW_METHODS = ("ScoreCAM",)
PARTS = ("preprocess", "prefix", "qcnn_forward", "qcnn_cam", "classical_forward", "classical_cam")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed repeats per method, after one warm-up")
    parser.add_argument("--slow-repeats", type=int, default=3, help=f"repeats for {', '.join(SLOW_METHODS)}")
    parser.add_argument("--methods", nargs="+", default=list(CAM_METHODS), choices=CAM_METHODS)
    parser.add_argument("--checkpoint-dir", type=Path, default=checkpoint_dir())
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="time untrained models with the same architecture (when no checkpoints exist)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="HAM10000 folder for real test images (default: $QCNN_DATA_DIR; else a synthetic 600 x 450 image)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    parser.add_argument("--out", type=Path, default=results_dir() / "bench_inference.json")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.slow_repeats < 1:
        parser.error("--repeats and --slow-repeats must be positive")
    return args


def load_predictor(args: argparse.Namespace) -> tuple[Predictor, str]:
    if not args.random_weights:
        return Predictor.from_checkpoints(args.checkpoint_dir), str(args.checkpoint_dir)
    from qcnn.backbone import Backbone, load_backbone, save_backbone
    from qcnn.models import build_model, save_model

    tmp = Path(tempfile.mkdtemp(prefix="bench_inference_"))
    torch.manual_seed(0)
    save_backbone(Backbone(), tmp / "backbone.safetensors", source="random")
    for kind in ("qcnn", "classical"):
        save_model(
            build_model(kind, load_backbone(tmp / "backbone.safetensors")),
            tmp / f"{kind}.safetensors",
            tmp / "backbone.safetensors",
        )
    return Predictor.from_checkpoints(tmp), "random weights"


def sample_uploads(data_dir: str | None, count: int = 3) -> tuple[list[bytes], str]:
    """JPEG bytes of a few test-pool images (as an upload would arrive), else a synthetic JPEG."""
    import io

    from qcnn.data import DataError, image_path, resolve_data_dir

    try:
        root = resolve_data_dir(data_dir)
        from qcnn.split import read_split

        split = read_split(results_dir() / SPLIT_FILE)
        ids = split[split["pool"] == "test"]["image_id"].iloc[:count]
        return [image_path(root, i).read_bytes() for i in ids], f"{len(ids)} HAM10000 test-pool images"
    except (DataError, OSError, KeyError):
        import numpy as np

        rng = np.random.default_rng(0)
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (450, 600, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=90)
        return [buffer.getvalue()], "a synthetic 600 x 450 JPEG"


def run(args: argparse.Namespace) -> dict:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load_start = time.perf_counter()
    predictor, weights = load_predictor(args)
    load_seconds = time.perf_counter() - load_start
    uploads, image_source = sample_uploads(args.data_dir)
    images = [load_image(data) for data in uploads]
    load_average_start = os.getloadavg()

    for method in args.methods:  # warm-up: first calls allocate and fill caches
        predictor.predict(images[0], cam_method=method)
    totals: dict[str, list[float]] = {m: [] for m in args.methods}
    parts: dict[str, dict[str, list[float]]] = {m: {p: [] for p in PARTS} for m in args.methods}
    decode: list[float] = []
    max_repeats = max(args.repeats, args.slow_repeats)
    for repeat in range(max_repeats):
        order = args.methods if repeat % 2 == 0 else list(reversed(args.methods))
        for method in order:
            if repeat >= (args.slow_repeats if method in SLOW_METHODS else args.repeats):
                continue
            data = uploads[repeat % len(uploads)]
            start = time.perf_counter()
            image = load_image(data)
            decode.append(time.perf_counter() - start)
            start = time.perf_counter()
            prediction = predictor.predict(image, cam_method=method)
            totals[method].append(time.perf_counter() - start)
            for part in PARTS:
                parts[method][part].append(prediction.timings.get(part, 0.0))

    median = {m: statistics.median(v) for m, v in totals.items()}
    result = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": machine(torch.device("cpu")),
        "load_average_1min": {"start": load_average_start[0], "end": os.getloadavg()[0]},
        "weights": weights,
        "images": image_source,
        "shared_prefix": predictor.shared_prefix,
        "model_load_s": load_seconds,
        "repeats": {m: len(v) for m, v in totals.items()},
        "decode_jpeg_median_s": statistics.median(decode),
        "predict_median_s": median,
        "predict_best_s": {m: min(v) for m, v in totals.items()},
        "parts_median_s": {m: {p: statistics.median(v) for p, v in parts[m].items()} for m in args.methods},
        "all_predict_s": totals,
    }
    if TARGET_METHOD in median:
        result["target"] = {
            "method": TARGET_METHOD,
            "median_s_at_most": TARGET_SECONDS,
            "met": median[TARGET_METHOD] <= TARGET_SECONDS,
        }
    return result


def report(result: dict) -> str:
    lines = [
        f"inference: both models + both CAMs + distributions on {result['images']} "
        f"({result['weights']}, {result['threads']} torch threads, torch {result['torch_version']}, "
        f"load average {result['load_average_1min']['start']:.1f} -> {result['load_average_1min']['end']:.1f})",
        f"model load {result['model_load_s']:.2f} s; decoding the JPEG upload "
        f"{1000 * result['decode_jpeg_median_s']:.1f} ms (median)",
        f"{'method':12}{'n':>3}{'median':>9}{'best':>8} | " + " ".join(f"{p:>12}" for p in PARTS) + "  (ms)",
    ]
    for method, seconds in result["predict_median_s"].items():
        part = result["parts_median_s"][method]
        lines.append(
            f"{method:12}{result['repeats'][method]:>3}{seconds:>8.3f}s{result['predict_best_s'][method]:>7.3f}s"
            " | " + " ".join(f"{1000 * part[p]:>12.1f}" for p in PARTS)
        )
    if "target" in result:
        target = result["target"]
        lines.append(
            f"target: median {target['method']} predict <= {target['median_s_at_most']:.1f} s: "
            f"{'met' if target['met'] else 'NOT met'}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    run_benchmark(parse_args, run, report)
