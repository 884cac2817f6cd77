"""Do the committed test predictions equal what the app computes? Every test image, both app models.

The app (Try it, Grad-CAM) runs ``Predictor``'s models in float32 on ``backbone.preprocess(image)``;
evaluation scores cached features through the same forward pass. Prints and records the largest
|app - table| probability difference and how many images sit on opposite sides of 0.5.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import qcnn  # noqa: F401  (first: sets the OpenMP wait policy before torch loads)
import numpy as np
import pandas as pd
import torch

from qcnn.backbone import preprocess
from qcnn.benchmark import save_result
from qcnn.constants import MODEL_KINDS, THRESHOLD
from qcnn.data import image_path, load_image_file, resolve_data_dir
from qcnn.inference import Predictor
from qcnn.paths import CHECKPOINT_DIR, RESULTS_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "bench_agreement.json")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    predictor = Predictor.from_checkpoints(CHECKPOINT_DIR)
    start, result = time.perf_counter(), {}
    for kind in MODEL_KINDS:
        table = pd.read_csv(RESULTS_DIR / "runs" / f"{kind}_seed0" / "predictions.csv", dtype={"image_id": str})
        model, app = predictor.models[kind], []
        for i in range(0, len(table), args.batch):
            images = [load_image_file(image_path(data_dir, x)) for x in table.image_id[i : i + args.batch]]
            x = torch.cat([preprocess(im) for im in images]).contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                app.append(torch.sigmoid(model(x)).double().numpy())
        app_p, committed = np.concatenate(app), table.probability.to_numpy()
        diff = np.abs(app_p - committed)
        flips = int(np.sum((app_p >= THRESHOLD) != (committed >= THRESHOLD)))
        result[kind] = {
            "n": len(table),
            "max_abs_difference": float(diff.max()),
            "mean_abs_difference": float(diff.mean()),
            "opposite_sides_of_threshold": flips,
        }
        print(
            f"{kind}: {len(table)} images, max |app - table| = {diff.max():.2e}, mean {diff.mean():.2e}, "
            f"{flips} on opposite sides of {THRESHOLD}"
        )
    save_result(
        {**result, "seconds": time.perf_counter() - start, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S")}, args.out
    )


if __name__ == "__main__":
    main()
