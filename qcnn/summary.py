"""An experiment's ``summary.json``: each variant's metrics, and its paired difference against the full
QCNN and against the classical control, with intervals that count seeds and test lesions, plus the main
summary's per-image statistics on the first paired seed (McNemar's exact test, matched recall).

Read by the app's experiment pages and by the claim ledger; written only by ``qcnn sweep``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from qcnn import paths
from qcnn.config import RunSpec
from qcnn.errors import MissingFileError
from qcnn.io import write_json
from qcnn.metrics import METRICS, metric_vector, threshold_metrics
from qcnn.runs import Workspace, canonical, load_split, read_record, run_paths
from qcnn.runtime import describe_machine
from qcnn.stats import INTERVAL_METHOD, at_matched_recall, interval, lesion_bootstrap, mcnemar, seed_lesion_interval
from qcnn.sweep import BASELINE, CONTROL, Experiment


def _metrics(values: np.ndarray) -> dict[str, float]:
    return {m: round(float(v), 6) for m, v in zip(METRICS, values, strict=True)}


def _intervals(values: np.ndarray) -> dict[str, list[float | None]]:
    return {m: [None if np.isnan(x) else round(float(x), 6) for x in v] for m, v in zip(METRICS, values, strict=True)}


def _comparison(seeds: list[int], point: np.ndarray, boot: np.ndarray) -> dict[str, Any]:
    """Paired differences over ``seeds``: point (S, M), boot (B, S, M). ``first_seed`` is a secondary view
    while seeds are missing: the first seed alone with its lesion-only interval (test sampling, no verdict)."""
    return {
        "seeds": seeds,
        "per_seed": {str(s): _metrics(point[i]) for i, s in enumerate(seeds)},
        "mean": _metrics(point.mean(0)),
        "ci95": _intervals(seed_lesion_interval(point, boot)),
        "first_seed": {
            "seed": seeds[0],
            "difference": _metrics(point[0]),
            "ci95_lesions_only": _intervals(interval(boot[:, 0])),
        },
    }


def _per_image(labels: np.ndarray, variant: np.ndarray, other: np.ndarray, seed: int) -> dict[str, Any]:
    """McNemar's exact test and each model at the other's recall, on one seed's test probabilities."""
    test = mcnemar(labels, variant, other)
    recall = {name: threshold_metrics(labels, p)["recall"] for name, p in (("variant", variant), ("other", other))}
    return {
        "mcnemar": {
            "seed": seed,
            "threshold": test["threshold"],
            "both_correct": test["both_correct"],
            "only_variant_correct": test["only_qcnn_correct"],
            "only_other_correct": test["only_classical_correct"],
            "both_wrong": test["both_wrong"],
            "p_value": test["p_value"],
            "test": test["test"],
        },
        "matched_recall": {
            "seed": seed,
            "variant_at_other_recall": at_matched_recall(labels, variant, recall["other"]),
            "other_at_variant_recall": at_matched_recall(labels, other, recall["variant"]),
        },
    }


def _setting(experiment: Experiment, specs: list[RunSpec], ws: Workspace, n_bootstrap: int) -> dict[str, Any]:
    """Every variant of one (fraction, split) setting, over the seeds whose runs are complete."""
    folders = {(s.variant, s.seed): run_paths(s, ws, experiment.name)[0] for s in specs}
    records = {key: read_record(folder) for key, folder in folders.items()}
    done = {key: folder for key, folder in folders.items() if records[key] is not None}
    if not done:
        return {"variants": {}}
    frames = {key: pd.read_csv(folder / "predictions.csv", dtype={"image_id": str}) for key, folder in done.items()}
    base = next(iter(frames.values()))
    for key, frame in frames.items():
        if not frame.image_id.equals(base.image_id):
            raise ValueError(f"{done[key]} was scored on other test images than {next(iter(done.values()))}")
    keys = list(frames)
    labels, lesions = base.label.to_numpy(), base.lesion_id.to_numpy()
    probs = np.stack([frames[k].probability.to_numpy() for k in keys])
    point = np.array([metric_vector(labels, p) for p in probs])
    boot = lesion_bootstrap(labels, lesions, probs, n_bootstrap, seed=0)
    index = {k: i for i, k in enumerate(keys)}

    variants = {}
    for v in experiment.variants:
        seeds = [s for s in experiment.seeds if (v.name, s) in index]
        if not seeds:
            continue
        rows = [index[(v.name, s)] for s in seeds]
        configs = {s: json.loads((done[(v.name, s)] / "config.json").read_text()) for s in seeds}
        config = configs[seeds[0]]  # model, train and parameters: the same for every seed of a variant
        seconds = np.concatenate([pd.read_csv(done[(v.name, s)] / "history.csv").seconds.to_numpy() for s in seeds])
        # reused: another experiment's (or the reproduction's) finished run of the very same spec, read here
        own_dir = ws.results_dir / paths.EXPERIMENTS_DIR / experiment.name / paths.RUNS_DIR
        reused = [s for s in seeds if done[(v.name, s)].parent != own_dir]
        times = {s: _wall_seconds(records[(v.name, s)]) for s in seeds}
        timed = [t for t in times.values() if t is not None]  # the reproduction's oldest records kept no time
        block = {
            "description": v.description,
            "model": config["model"],
            "train": config["train"],
            "seeds": seeds,
            # each seed draws its own subset of a fraction of the pool (so its own size and, with min_steps, epochs)
            "n_train": round(float(np.mean([c["n_train"] for c in configs.values()]))),
            "n_train_per_seed": {str(s): c["n_train"] for s, c in configs.items()},
            "epochs_run_per_seed": {str(s): c["epochs_run"] for s, c in configs.items()},
            "per_seed": {str(s): _metrics(point[r]) for s, r in zip(seeds, rows, strict=True)},
            "mean": _metrics(point[rows].mean(0)),
            "sd": _metrics(point[rows].std(0, ddof=1) if len(rows) > 1 else np.full(len(METRICS), np.nan)),
            "ci95": _intervals(seed_lesion_interval(point[rows], boot[:, rows])),  # the model's own metric
            "parameters": config["parameters"],
            "seconds_per_epoch_median": round(float(np.median(seconds)), 2),
            "wall_seconds": round(sum(timed), 1),  # training and evaluation of its runs that recorded their time
            "runs_timed": len(timed),
            "runs_reused": len(reused),
            "wall_seconds_reused": round(sum(times[s] for s in reused if times[s] is not None), 1),
            # seconds compare only on one machine: the matrix may span several
            "machines": {str(s): describe_machine(records[(v.name, s)].get("machine")) for s in seeds},
        }
        for label, other in (("vs_qcnn", BASELINE), ("vs_classical", CONTROL)):
            paired = [s for s in seeds if (other, s) in index]
            if other == v.name or not paired:
                continue
            a = [index[(v.name, s)] for s in paired]
            b = [index[(other, s)] for s in paired]
            block[label] = _comparison(paired, point[a] - point[b], boot[:, a] - boot[:, b])
            block[label] |= _per_image(labels, probs[a[0]], probs[b[0]], paired[0])
        if v.name in (BASELINE, CONTROL):
            check = _against_reproduction(v.name, {s: done[(v.name, s)] for s in seeds}, ws, labels, point, rows)
            if check:
                block["vs_reproduction"] = check
        variants[v.name] = block
    return {"n_test": len(labels), "n_test_malignant": int(labels.sum()), "variants": variants}


def _wall_seconds(record: dict) -> float | None:
    """A finished run's training plus evaluation time, from its completion record."""
    if "train_seconds" not in record or "eval_seconds" not in record:
        return None
    return float(record["train_seconds"]) + float(record["eval_seconds"])


def _against_reproduction(
    kind: str, folders: dict[int, Any], ws: Workspace, labels: np.ndarray, point: np.ndarray, rows: list[int]
) -> dict[str, Any] | None:
    """An experiment that trained its own baseline (e.g. in another precision): each seed's metrics minus
    the reproduction's run of the same model and seed, where that run exists and was scored on the same images."""
    per_seed, settings = {}, set()
    for (seed, folder), row in zip(folders.items(), rows, strict=True):
        reproduction = ws.results_dir / paths.RUNS_DIR / paths.run_name(kind, seed)
        predictions = reproduction / "predictions.csv"
        if reproduction.resolve() == folder.resolve() or not predictions.is_file():
            continue
        frame = pd.read_csv(predictions, dtype={"image_id": str})
        if len(frame) != len(labels) or not np.array_equal(frame.label.to_numpy(), labels):
            continue
        theirs = metric_vector(labels, frame.probability.to_numpy())
        per_seed[str(seed)] = _metrics(point[row] - theirs)
        settings.add(json.loads((reproduction / "config.json").read_text())["train"]["precision"])
    if not per_seed:
        return None
    return {"reproduction_precision": sorted(settings), "per_seed_difference": per_seed}


def summarize_experiment(
    experiment: Experiment, ws: Workspace, n_bootstrap: int = 2000, require_all: bool = True
) -> dict[str, Any]:
    splits = {unit: load_split(ws, unit) for unit in experiment.splits}
    specs = [canonical(s, splits[s.split]) for s in experiment.specs()]
    complete = [s for s in specs if read_record(run_paths(s, ws, experiment.name)[0]) is not None]
    if require_all and len(complete) < len(specs):
        raise MissingFileError(
            f"{len(specs) - len(complete)} of {len(specs)} runs of {experiment.name} are not "
            f"finished: run `qcnn sweep experiments/{experiment.name}.toml` first."
        )
    settings = []
    for split in experiment.splits:
        for fraction in experiment.fractions:
            group = [s for s in specs if s.fraction == fraction and s.split == split]
            settings.append({"fraction": fraction, "split": split, **_setting(experiment, group, ws, n_bootstrap)})
    path = ws.results_dir / paths.EXPERIMENTS_DIR / experiment.name / paths.SUMMARY_FILE
    summary = {
        "experiment": experiment.name,
        "description": experiment.description,
        "seeds": list(experiment.seeds),
        "baseline": BASELINE,
        "control": CONTROL,
        "metrics": list(METRICS),
        "n_runs": len(specs),
        "n_complete": len(complete),
        "n_bootstrap": n_bootstrap,
        "bootstrap_unit": "lesion",
        "interval_method": INTERVAL_METHOD,
        "path": str(path),
    }
    blocks = [block for setting in settings for block in setting["variants"].values()]
    summary["wall_seconds"] = round(sum(b["wall_seconds"] for b in blocks), 1)
    summary["runs_timed"] = sum(b["runs_timed"] for b in blocks)
    summary["runs_reused"] = sum(b["runs_reused"] for b in blocks)
    summary["wall_seconds_reused"] = round(sum(b["wall_seconds_reused"] for b in blocks), 1)
    if len(settings) == 1:
        summary.update({k: v for k, v in settings[0].items() if k not in ("fraction", "split")})
    else:
        summary["settings"] = settings
    write_json(path, summary)
    return summary
