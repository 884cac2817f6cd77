"""The regime where an advantage could live, in words: data size, the study's split, the backbone (torch-free).

Every sentence is derived from result files: the learning curves from
``results/experiments/lowdata/summary.json``, the split from ``results/leakage.json`` (``qcnn leakage``),
the backbone from the pretraining histories and the models trained on each backbone. A difference
counts as a win or a loss only when its interval (seeds and test lesions) excludes zero
(``qcnn.app.controls.Effect``); anything not yet run is said to be missing, with the command that runs it.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from qcnn import paths, study
from qcnn.app.controls import Effect
from qcnn.app.style import METRIC_LABELS, fmt_value
from qcnn.config import TrainConfig
from qcnn.constants import MODEL_KINDS

LOWDATA, IMAGESPLIT = "lowdata", "imagesplit"
STUDY_TRAIN_IMAGES = study.EXPERIMENT_3_TEST["n_train"]  # Experiment 3's 2,400 training images
# The stronger backbone: its pretraining writes checkpoints/backbone24.safetensors and results/backbone24_history.csv;
# both models trained on it are read from results/experiments/backbone24/summary.json.
STRONG_BACKBONE = "backbone24"
PRETRAIN_COMMAND = f"qcnn pretrain-backbone --output {STRONG_BACKBONE}.safetensors --epochs 24"
COMMITTED_BACKBONE = "backbone"  # checkpoints/backbone.safetensors, history results/backbone_history.csv
# The models on the committed backbone to set against the stronger one's: the controls' baseline pair, trained in
# float32 like the backbone24 runs (the reproduction's own runs are bf16, so they would mix in the precision).
COMMITTED_BACKBONE_MODELS = "controls"
LEAKAGE_COMMAND = "qcnn leakage"
BACKBONES_COMMAND = "qcnn backbones"
# Each backbone, weakest first: its pretraining history (in the results folder) and the experiment that trained
# both models on it.
BACKBONES = {
    COMMITTED_BACKBONE: (paths.BACKBONE_HISTORY_FILE, COMMITTED_BACKBONE_MODELS),
    STRONG_BACKBONE: (f"{STRONG_BACKBONE}_history.csv", STRONG_BACKBONE),
}


SENTENCE_NAMES = {"auc": "AUC", "balanced_accuracy": "balanced accuracy", "f1": "F1"}


def _name(metric: str) -> str:
    """A metric's name inside a sentence."""
    return SENTENCE_NAMES.get(metric, METRIC_LABELS[metric])


def sweep_command(name: str, summary_only: bool = False) -> str:
    return f"qcnn sweep experiments/{name}.toml" + (" --summary-only" if summary_only else "")


# --- how far an experiment has got ---------------------------------------------------------------


def plan(name: str) -> dict | None:
    """An experiment file's seeds, fractions, splits and variants (None when the file is missing)."""
    path = paths.REPO_ROOT / "experiments" / f"{name}.toml"
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return {
        "seeds": list(data.get("seeds", [])),
        "fractions": [float(f) for f in data.get("fractions", [1.0])],
        "splits": list(data.get("splits", ["lesion"])),
        "variants": list(data.get("variants", {})),
        "backbone": data.get("backbone", paths.BACKBONE_FILE),
        "precision": data.get("base", {}).get("train", {}).get("precision", TrainConfig.precision),
    }


def planned_runs(name: str) -> int:
    p = plan(name)
    return len(p["seeds"]) * len(p["fractions"]) * len(p["splits"]) * len(p["variants"]) if p else 0


def finished_runs(results: Path, name: str) -> int:
    """Runs with a completion record: in the experiment's folder, plus the full-data runs it reuses.

    The sweep reuses a full-data, lesion-split run of the reproduction's model on the committed backbone,
    trained in the same precision, from the reproduction's folder or another experiment's (the controls'
    baseline pair), and trains it only when neither has it (``qcnn.runs.run_paths``).
    """
    experiments = results / paths.EXPERIMENTS_DIR
    own = experiments / name / paths.RUNS_DIR
    count = len(list(own.glob("*/complete.json"))) if own.is_dir() else 0
    p = plan(name)
    if not p or 1.0 not in p["fractions"] or "lesion" not in p["splits"] or p["backbone"] != paths.BACKBONE_FILE:
        return count
    homes = [results / paths.RUNS_DIR] + [
        folder / paths.RUNS_DIR for folder in sorted(experiments.glob("*")) if folder.name != name
    ]
    for variant in set(p["variants"]) & set(MODEL_KINDS):
        for seed in p["seeds"]:
            run = paths.run_name(variant, seed)
            if not (own / run / "complete.json").is_file():
                count += any(_full_data_run(home / run, p["precision"]) for home in homes)
    return count


def _full_data_run(run_dir: Path, precision: str) -> bool:
    """Whether ``run_dir`` holds a finished full-data, lesion-split run on the committed backbone in ``precision``."""
    try:
        spec = json.loads((run_dir / "complete.json").read_text())["spec"]
    except (OSError, ValueError, KeyError):
        return False
    return (
        spec.get("fraction") == 1.0
        and spec.get("split") == "lesion"
        and spec.get("backbone", paths.BACKBONE_FILE) == paths.BACKBONE_FILE
        and spec["train"]["precision"] == precision
    )


def progress(name: str, summary: dict | None, results: Path) -> tuple[int, int]:
    """(finished, planned) runs: the summary's own count when there is one, else the completion records."""
    if summary is not None:
        return int(summary.get("n_complete", 0)), int(summary.get("n_runs", 0))
    return finished_runs(results, name), planned_runs(name)


def progress_text(name: str, done: int, total: int, summarised: bool) -> str | None:
    """What exists of an experiment and which command makes the rest; None once it is complete."""
    if summarised and done >= total:
        return None
    rest = f"`{sweep_command(name)}` makes the other {total - done} (resumable)"
    if done == 0:
        return (
            f"**No run of the {name} experiment yet (0 of {total}).** `{sweep_command(name)}` makes them (resumable)."
        )
    if not summarised:
        return (
            f"**{done} of {total} runs of the {name} experiment finished, not yet summarised.** "
            f"`{sweep_command(name, summary_only=True)}` summarises them; {rest}."
        )
    return f"**{done} of {total} runs of the {name} experiment finished.** {rest}, then rewrites the summary."


# --- learning curves -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CurvePoint:
    """One training-set size: both models' mean (with interval and seeds) and their difference."""

    fraction: float
    n_train: int  # the mean over seeds: each seed draws its own subset, of a slightly different size
    models: dict  # kind -> {"mean": float, "ci": (lo, hi) | None, "seeds": {seed: value}}
    difference: Effect
    n_seeds: int
    train_sizes: tuple[int, int]  # smallest and largest subset over the seeds
    epochs: tuple[int, int] | None  # fewest and most epochs run (None: not recorded)

    @property
    def size_text(self) -> str:
        low, high = self.train_sizes
        return f"{low:,}" if low == high else f"{low:,}–{high:,}"

    @property
    def epochs_text(self) -> str:
        if self.epochs is None:
            return "–"
        low, high = self.epochs
        return f"{low}" if low == high else f"{low}–{high}"


def _span(per_seed: dict | None) -> tuple[int, int] | None:
    return (min(per_seed.values()), max(per_seed.values())) if per_seed else None


def _interval(block: dict, metric: str) -> tuple[float, float] | None:
    ci = block.get("ci95", {}).get(metric)
    if not ci or ci[0] is None or ci[1] is None or math.isnan(ci[0]):
        return None
    return float(ci[0]), float(ci[1])


def curve_points(summary: dict | None, metric: str) -> list[CurvePoint]:
    """The lesion-split settings where both models have at least one finished run, by training-set size."""
    points = []
    for setting in (summary or {}).get("settings", []):
        variants = setting.get("variants", {})
        if setting.get("split") != "lesion" or not all(k in variants for k in MODEL_KINDS):
            continue
        models = {
            k: {
                "mean": variants[k]["mean"][metric],
                "ci": _interval(variants[k], metric),
                "seeds": {int(s): v[metric] for s, v in variants[k]["per_seed"].items()},
            }
            for k in MODEL_KINDS
        }
        diff = variants["qcnn"].get("vs_classical")
        effect = (
            Effect("qcnn", diff["mean"][metric], *(_interval(diff, metric) or (None, None)))
            if diff
            else Effect("qcnn", None, None, None)
        )
        n_seeds = len(diff["seeds"]) if diff else 0
        qcnn = variants["qcnn"]  # both models of a seed train on the same subset
        n_train = int(qcnn["n_train"])
        sizes = _span(qcnn.get("n_train_per_seed")) or (n_train, n_train)  # older summaries: one size
        epochs = _span(qcnn.get("epochs_run_per_seed"))
        points.append(CurvePoint(setting["fraction"], n_train, models, effect, n_seeds, sizes, epochs))
    return sorted(points, key=lambda p: p.n_train)


def _sizes(points: list[CurvePoint]) -> str:
    names = [p.size_text for p in points]
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{joined} training images"


def size_answer(points: list[CurvePoint], metric: str) -> str:
    """'Is there a data size at which the QCNN wins?', from the difference's interval at each size."""
    label = _name(metric)
    if not points:
        return "**Not yet measured**: no training-set size has finished runs of both models."
    by_kind = {k: [p for p in points if p.difference.kind == k] for k in ("better", "worse", "no clear difference")}
    unmeasured = [p for p in points if p.difference.kind == "not yet measured"]
    sentences = []
    if by_kind["better"]:
        wins = "; ".join(f"{p.size_text} images: {p.difference.text()}" for p in by_kind["better"])
        sentences.append(f"**Yes**: the QCNN's {label} is higher than the classical control's at {wins}.")
    elif by_kind["worse"] or by_kind["no clear difference"]:
        parts = []
        if by_kind["worse"]:
            parts.append(f"the classical control is better with {_sizes(by_kind['worse'])}")
        if by_kind["no clear difference"]:
            parts.append(f"there is no clear difference with {_sizes(by_kind['no clear difference'])}")
        sentences.append(f"**No** size measured gives the QCNN a higher {label}: " + "; ".join(parts) + ".")
    else:
        sentences.append("**Not yet measured**: no size has two or more seeds of both models, so no interval.")
    if by_kind["better"] and (by_kind["worse"] or by_kind["no clear difference"]):
        others = [p for p in points if p.difference.kind in ("worse", "no clear difference")]
        sentences.append(f"Elsewhere ({_sizes(others)}) it does not win.")
    measured = [p for p in points if p.difference.mean is not None]
    if len(measured) >= 2:
        first, last = measured[0], measured[-1]

        def value(p: CurvePoint) -> str:
            alone = " (one seed)" if p.n_seeds == 1 else ""
            return f"{100 * p.difference.mean:+.1f}{alone}"

        sentences.append(
            f"From {first.size_text} to {last.size_text} training images the QCNN − classical difference goes from "
            f"{value(first)} to {value(last)} points."
        )
    if unmeasured:
        sentences.append(f"Not yet measured with two or more seeds: {_sizes(unmeasured)}.")
    largest = max(points, key=lambda p: p.n_train)
    sentences.append(
        f"The study trained on {STUDY_TRAIN_IMAGES:,} images; the largest size here is {largest.size_text} "
        "(this project's whole lesion-disjoint train pool)."
    )
    return " ".join(sentences)


# --- the study's split -----------------------------------------------------------------------------


def counts_text(leakage: dict) -> str:
    """How leaky each split protocol is, from leakage.json's counts."""
    image, lesion = leakage["splits"]["image"], leakage["splits"]["lesion"]
    leaky, n = image["test_images_with_sibling_in_train_or_val"], image["n_test"]
    in_train, in_val = image["test_images_with_sibling_in_train"], image["test_images_with_sibling_in_val"]
    return (
        f"In the study's image-level split, **{leaky:,} of {n:,} test images ({100 * leaky / n:.1f} %)** have a "
        f"lesion sibling (another image of the same lesion) in train or val: {in_train:,} in train, {in_val:,} in "
        f"val; {image['leaky_test_malignant']:,} of them malignant. {image['test_lesions_also_in_train_or_val']:,} "
        f"of its {image['n_test_lesions']:,} test lesions have images on both sides. In the lesion-disjoint split "
        f"the count is {lesion['test_images_with_sibling_in_train_or_val']:,}."
    )


def _effect(block: dict, metric: str) -> Effect:
    return Effect("", block["mean"][metric], *(_interval(block, metric) or (None, None)))


MOVE_VERBS = {"better": "raises", "worse": "lowers", "no clear difference": "does not clearly change"}


def _moves_text(cause: str, moves: dict[str, Effect], label: str) -> str:
    """'CAUSE raises the QCNN's AUC (…) and does not clearly change the classical control's (…).'"""
    q, c = moves["qcnn"], moves["classical"]
    return (
        f"{cause} {MOVE_VERBS[q.kind]} the QCNN's {label} ({q.text()}) and {MOVE_VERBS[c.kind]} the classical "
        f"control's ({c.text()})."
    )


def leakage_answer(leakage: dict | None, metric: str) -> str:
    """'Does the study's split inflate the numbers, and whom does it favour?', from the leak-free comparison
    (the same models on two parts of one test set); then the image split against the lesion split."""
    models = (leakage or {}).get("models")
    if not models:
        return "**Not yet measured**: no seed has both models trained on both splits."
    label = _name(metric)
    inflation = models["inflation"]
    sentences, inflated, measured = [], [], False
    for kind, name in (("qcnn", "the QCNN's"), ("classical", "the classical control's")):
        e = _effect(inflation[kind]["image_minus_leak_free"], metric)
        measured |= e.kind in ("better", "worse", "no clear difference")
        if e.kind == "better":
            inflated.append(name)
            sentences.append(f"it inflates {name} {label} by {e.text()}")
        elif e.kind == "worse":
            sentences.append(f"{name} {label} is lower, not higher, on the whole set ({e.text()})")
        elif e.kind == "no clear difference":
            sentences.append(f"{name} {label} is not clearly changed ({e.text()})")
        else:
            sentences.append(f"{name} {label}: not yet measured with two or more seeds")
    verdict = "**Yes**" if inflated else "**No clear inflation**" if measured else "**Not yet measured**"
    text = (
        f"{verdict}: scored on the image split's whole test set against its leak-free part, "
        + "; ".join(sentences)
        + "."
    )
    favour = _effect(inflation["difference"]["image_minus_leak_free"], metric)
    if favour.kind == "better":
        text += f" It favours the QCNN: the QCNN − classical difference grows by {favour.text()} on the leaky set."
    elif favour.kind == "worse":
        text += f" It favours the classical control: the QCNN − classical difference moves by {favour.text()}."
    elif favour.kind == "no clear difference":
        text += f" It favours neither clearly: the QCNN − classical difference moves by {favour.text()}."
    moves = {kind: _effect(inflation[kind]["image_minus_lesion"], metric) for kind in MODEL_KINDS}
    if all(e.kind in MOVE_VERBS for e in moves.values()):
        text += " Against the lesion split (the same pool sizes and class balance, drawn by lesion), " + _moves_text(
            "the image split", moves, label
        )
    diff = {part: _effect(models["metrics"]["difference"][part], metric) for part in ("lesion", "image")}
    if diff["lesion"].mean is not None and diff["image"].mean is not None:
        text += (
            f" QCNN − classical is {diff['lesion'].text()} on the lesion split and {diff['image'].text()} on the "
            f"image split ({len(models['seeds'])} seed{'s' if len(models['seeds']) > 1 else ''})."
        )
    return text


# --- the backbone ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backbone:
    """A pretrained backbone: its held-out balanced accuracy and the models trained on it (if any)."""

    name: str
    epochs: int
    selected_epoch: int
    balanced_accuracy: float
    models: dict | None  # kind -> {"mean": float, "ci": (lo, hi) | None}
    difference: Effect | None
    n_seeds: int

    @property
    def still_improving(self) -> bool:
        return self.selected_epoch == self.epochs


def models_on_backbone(summary: dict | None, metric: str) -> tuple[dict | None, Effect | None, int]:
    """Both models' metric and their difference, from the reproduction's summary or an experiment's."""
    if not summary:
        return None, None, 0
    if "models" in summary and "difference" in summary:  # results/summary.json (qcnn reproduce)
        blocks, diff = summary["models"], summary["difference"]
        n_seeds = len(summary.get("seeds", []))
    else:  # an experiment's summary.json (qcnn sweep)
        blocks = summary.get("variants", {})
        diff = blocks.get("qcnn", {}).get("vs_classical")
        n_seeds = len(diff["seeds"]) if diff else 0
    if not all(k in blocks for k in MODEL_KINDS):
        return None, None, 0
    models = {k: {"mean": blocks[k]["mean"][metric], "ci": _interval(blocks[k], metric)} for k in MODEL_KINDS}
    effect = _effect(diff, metric) if diff else None
    return models, effect, n_seeds


def backbone(name: str, history, summary: dict | None, metric: str) -> Backbone | None:
    """A backbone from its pretraining history (a DataFrame) and the summary of the models trained on it."""
    if history is None or "val_balanced_accuracy" not in history or not len(history):
        return None
    selected = history[history["selected"].astype(str).str.lower().eq("true")] if "selected" in history else []
    row = selected.iloc[0] if len(selected) else history.loc[history.val_balanced_accuracy.idxmax()]
    models, effect, n_seeds = models_on_backbone(summary, metric)
    return Backbone(
        name, int(history.epoch.max()), int(row.epoch), float(row.val_balanced_accuracy), models, effect, n_seeds
    )


def _change(comparison: dict | None, weak: Backbone, strong: Backbone, metric: str) -> dict[str, Effect] | None:
    """From backbones.json (``qcnn backbones``): strong − weak for each model and for their difference, paired by
    seed on one test set; None when it compares other backbones or has no seed with all four runs."""
    models = (comparison or {}).get("models")
    if not models or (comparison["weak"]["backbone"], comparison["strong"]["backbone"]) != (weak.name, strong.name):
        return None
    return {kind: _effect(block, metric) for kind, block in models["change"].items()}


def backbone_answer(backbones: list[Backbone], metric: str, comparison: dict | None = None) -> str:
    """'Does a better backbone close the gap?', from the difference's interval on each backbone and, from
    ``comparison`` (backbones.json), the interval of the change itself."""
    label = _name(metric)
    if not backbones:
        return "**Not yet measured**: no backbone pretraining history was found."
    ranked = sorted(backbones, key=lambda b: b.balanced_accuracy)
    measured = [b for b in ranked if b.difference is not None and b.difference.kind != "not yet measured"]

    def describe(b: Backbone) -> str:
        trend = ", its best epoch the last: still improving" if b.still_improving else ""
        return (
            f"`{b.name}` (held-out balanced accuracy {b.balanced_accuracy:.3f}, kept epoch {b.selected_epoch} of "
            f"{b.epochs}{trend})"
        )

    def gap(b: Backbone) -> str:
        return f"QCNN − classical {label} {b.difference.text()} ({b.difference.kind}; {b.n_seeds} seeds)"

    def so_far(b: Backbone) -> str:
        """A backbone without an interval yet: its one seed's difference, or that nothing is trained on it."""
        if b.difference is None or b.difference.mean is None:
            return "both models not yet trained on it."
        return (
            f"{b.n_seeds} seed so far, QCNN − classical {label} {100 * b.difference.mean:+.1f} points "
            f"(an interval needs at least two)."
        )

    if len(measured) < 2:
        text = "**Not yet measured**: only one backbone has models from two or more seeds. " if measured else ""
        text += " ".join(f"On {describe(b)}: " + (gap(b) + "." if b in measured else so_far(b)) for b in ranked)
        if len(ranked) < 2:
            text += f" A stronger backbone comes from `{PRETRAIN_COMMAND}`."
        return text
    weak, strong = measured[0], measured[-1]
    before, after = weak.difference.kind, strong.difference.kind
    moves = _change(comparison, weak, strong, metric)
    noise = moves is not None and moves["difference"].kind == "no clear difference"
    if before == "worse" and after == "worse":
        head = "**No**: the classical control stays ahead on the better backbone"
    elif before == "worse" and after == "better":
        head = "**Yes, and more**: on the better backbone the QCNN overtakes the classical control"
    elif before == "worse" and noise:
        head = (
            "**Not clearly**: on the better backbone there is no clear difference any more, but the change "
            "itself is within the noise"
        )
    elif before == "worse":
        head = "**The gap closes**: on the better backbone there is no clear difference any more"
    elif after == "better" and before != "better":
        head = "**The QCNN gains**: on the better backbone it becomes better than the classical control"
    elif after == "worse" and before != "worse":
        head = "**The gap opens**: on the better backbone the classical control becomes better"
    else:
        head = f"**No change in the verdict** ({after} on both)"
    if noise and before != after and not head.startswith("**Not clearly**"):
        head += ", though the change itself is within the noise"
    text = f"{head}. On {describe(weak)}: {gap(weak)}. On {describe(strong)}: {gap(strong)}."
    if moves is None:
        change = 100 * (strong.difference.mean - weak.difference.mean)
        return text + f" The change is {change:+.1f} points (`{BACKBONES_COMMAND}` gives its interval)."
    return (
        text
        + f" The gap moves by {moves['difference'].text()} (paired by seed on one test set). "
        + _moves_text("The better backbone", moves, label)
    )


def backbone_table(backbones: list[Backbone], metric: str) -> list[dict]:
    rows = []
    for b in sorted(backbones, key=lambda b: b.balanced_accuracy):
        row = {
            "backbone": b.name,
            "pretraining epochs": b.epochs,
            "kept epoch": b.selected_epoch,
            "held-out balanced accuracy": f"{b.balanced_accuracy:.3f}",
        }
        for k in MODEL_KINDS:
            m = (b.models or {}).get(k)
            row[f"{k} test {METRIC_LABELS[metric]}"] = fmt_value(metric, m["mean"]) if m else "not yet trained"
        row["QCNN − classical"] = b.difference.text() if b.difference else "–"
        rows.append(row)
    return rows


# --- the Overview's "what differs" table --------------------------------------------------------------


def size_effect(summary: dict | None) -> str:
    """One line for the Overview: QCNN − classical AUC at each training-set size measured so far."""
    points = [p for p in curve_points(summary, "auc") if p.difference.kind != "not yet measured"]
    if not points:
        return f"learning curves not yet measured (`{sweep_command(LOWDATA)}`)"
    text = "QCNN − classical AUC " + "; ".join(f"{p.difference.text()} at {p.size_text} images" for p in points)
    planned = len((plan(LOWDATA) or {}).get("fractions", []))
    return text + (f" ({len(points)} of {planned} sizes measured)" if len(points) < planned else "")


def backbone_effect(summaries: dict[str, dict | None], comparison: dict | None = None) -> str:
    """One line for the Overview: QCNN − classical AUC on each backbone (name -> the summary of the models
    trained on it) and, from ``comparison`` (backbones.json), the change between them. JSON only, no pretraining
    histories: the Overview's cold start stays free of pandas."""
    effects = {name: models_on_backbone(summary, "auc")[1] for name, summary in summaries.items()}
    measured = {name: e for name, e in effects.items() if e is not None and e.kind != "not yet measured"}
    if not measured:
        return "its effect not yet measured"
    text = "; ".join(f"on `{name}` QCNN − classical AUC {e.text()}" for name, e in measured.items())
    if len(measured) >= 2:
        models = (comparison or {}).get("models")
        if not models:
            return text
        moved = _effect(models["change"]["difference"], "auc")
        noise = " (within the noise)" if moved.kind == "no clear difference" else ""
        return text + f"; the gap moves by {moved.text()}{noise}"
    started = [name for name, e in effects.items() if e is not None and name not in measured]
    if started:
        return text + "; on " + ", ".join(f"`{name}`" for name in started) + " fewer than two seeds so far"
    return text + f"; a stronger one not yet trained on (`{PRETRAIN_COMMAND}`)"


def split_effect(leakage: dict | None) -> str:
    """One line for the Overview: what the study's split does, measured."""
    if not leakage:
        return f"leakage not yet counted (`{LEAKAGE_COMMAND}`)"
    image = leakage["splits"]["image"]
    text = (
        f"drawn the study's way, {image['test_images_with_sibling_in_train_or_val']:,} of {image['n_test']:,} "
        "test images would have a lesion sibling in train/val"
    )
    models = leakage.get("models")
    if models:
        e = _effect(models["inflation"]["difference"]["image_minus_leak_free"], "auc")
        text += f"; effect on QCNN − classical AUC {e.text()}"
    return text
