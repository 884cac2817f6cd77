"""Issue 11: lesion leakage of the study's split, the models on its leak-free part, and the Regime page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from qcnn import paths
from qcnn.app import regime
from qcnn.app.controls import Effect
from qcnn.backbones import backbone_change, write_backbones
from qcnn.constants import MODEL_KINDS
from qcnn.leakage import leak_free_mask, leak_free_metrics, leakage_counts, write_leakage
from qcnn.metrics import threshold_metrics
from qcnn.runs import Workspace, finished_predictions
from qcnn.split import read_split
from qcnn.sweep import load_experiment
from qcnn.testing import write_synthetic_experiment

EXPERIMENTS = paths.REPO_ROOT / "experiments"
PAGE = paths.REPO_ROOT / "pages" / "regime.py"


def hand_split() -> pd.DataFrame:
    """Six lesions whose leakage is known: L1 and L2 straddle train/val and test, L4 straddles train and val."""
    rows = [
        ("a", "L1", "train", 0),
        ("b", "L1", "test", 0),  # sibling in train
        ("c", "L2", "val", 1),
        ("d", "L2", "test", 1),  # sibling in val
        ("e", "L2", "test", 1),  # sibling in val
        ("f", "L3", "test", 0),  # leak-free
        ("g", "L4", "train", 0),
        ("h", "L4", "val", 0),
        ("i", "L5", "pretrain", 0),
        ("j", "L6", "excluded", 1),
        ("k", "L6", "test", 1),  # its sibling is excluded, never seen: leak-free
    ]
    split = pd.DataFrame(rows, columns=["image_id", "lesion_id", "pool", "label"])
    return split.assign(dx=np.where(split.label == 1, "mel", "nv"))


def test_leakage_counts_on_a_hand_made_split():
    counts = leakage_counts(hand_split())
    assert counts == {
        "n_test": 5,
        "n_test_malignant": 3,
        "n_test_lesions": 4,
        "test_images_with_sibling_in_train": 1,
        "test_images_with_sibling_in_val": 2,
        "test_images_with_sibling_in_train_or_val": 3,
        "leaky_test_malignant": 2,
        "test_lesions_also_in_train_or_val": 2,
        "lesions_in_both_train_and_val": 1,
        "leak_free_test_images": 2,
        "leak_free_test_malignant": 1,
    }
    assert leak_free_mask(hand_split(), pd.Series(["b", "d", "f", "k"])).tolist() == [False, False, True, True]


def test_committed_splits_leak_only_at_image_level():
    """The study's image-level split puts lesions on both sides; the lesion split never does. The committed
    leakage.json holds exactly what `qcnn leakage` computes from the committed splits."""
    lesion = leakage_counts(read_split(paths.RESULTS_DIR / paths.SPLIT_FILE))
    image = leakage_counts(read_split(paths.RESULTS_DIR / paths.IMAGE_SPLIT_FILE))
    assert lesion["test_images_with_sibling_in_train_or_val"] == 0 and lesion["lesions_in_both_train_and_val"] == 0
    assert image["test_images_with_sibling_in_train_or_val"] > 0 and image["test_lesions_also_in_train_or_val"] > 0
    assert image["n_test"] == lesion["n_test"] and image["n_test_malignant"] == lesion["n_test_malignant"]
    committed = json.loads((paths.RESULTS_DIR / paths.LEAKAGE_FILE).read_text())
    assert {k: v for k, v in committed["splits"]["image"].items() if k != "file"} == image
    assert {k: v for k, v in committed["splits"]["lesion"].items() if k != "file"} == lesion


def _predictions(split: pd.DataFrame, probability: np.ndarray) -> pd.DataFrame:
    test = split[split.pool == "test"].reset_index(drop=True)
    return test[["image_id", "lesion_id", "dx", "label"]].assign(probability=probability)


def test_leak_free_metrics_separate_the_leaky_part():
    """Models that recognise leaky images perfectly and guess on the rest: the whole test set is inflated,
    the leak-free part is scored on exactly its own images, and equal models favour neither."""
    rng = np.random.default_rng(0)
    n = 400
    lesion_ids = [f"L{i // 2}" for i in range(n)]  # two images per lesion
    pools = np.where(np.arange(n) % 2 == 0, "test", rng.choice(["train", "test"], n, p=[0.4, 0.6]))
    split = pd.DataFrame({"image_id": [f"I{i}" for i in range(n)], "lesion_id": lesion_ids, "pool": pools})
    lesion_label = {f"L{i}": int(rng.random() < 0.3) for i in range(n // 2)}
    split["label"] = split.lesion_id.map(lesion_label)
    split["dx"] = np.where(split.label == 1, "mel", "nv")
    free = leak_free_mask(split, split.image_id[split.pool == "test"])
    test = split[split.pool == "test"].reset_index(drop=True)
    image_runs, lesion_runs = {}, {}
    for kind in ("qcnn", "classical"):
        for seed in (0, 1, 2):
            guess = np.random.default_rng([seed, len(kind)]).random(len(test))
            p = np.where(free, guess, 0.1 + 0.8 * test.label)  # leaky: right; leak-free: a coin
            image_runs[(kind, seed)] = _predictions(split, p)
            lesion_runs[(kind, seed)] = _predictions(split, guess)
    models = leak_free_metrics(image_runs, lesion_runs, split, n_bootstrap=200)
    assert models["seeds"] == [0, 1, 2]
    assert models["parts"]["leak_free"]["n"] == int(free.sum()) < models["parts"]["image"]["n"] == len(test)
    by_hand = threshold_metrics(test.label[free], image_runs[("qcnn", 1)].probability[free])["auc"]
    assert models["metrics"]["qcnn"]["leak_free"]["per_seed"]["1"]["auc"] == pytest.approx(by_hand, abs=1e-6)
    for kind in ("qcnn", "classical"):
        inflation = models["inflation"][kind]["image_minus_leak_free"]
        assert inflation["ci95"]["auc"][0] > 0.1, kind  # clearly inflated
    favour = models["inflation"]["difference"]["image_minus_leak_free"]["ci95"]["auc"]
    assert favour[0] < 0 < favour[1]
    one_seed = leak_free_metrics({k: v for k, v in image_runs.items() if k[1] == 0}, lesion_runs, split, 50)
    assert one_seed["seeds"] == [0] and one_seed["metrics"]["qcnn"]["image"]["ci95"]["auc"] == [None, None]
    assert leak_free_metrics({}, lesion_runs, split) is None


def test_leakage_command_writes_the_counts_and_names_a_missing_split(tmp_path):
    def qcnn(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "qcnn", "leakage", "--results-dir", str(tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=os.environ,
            cwd=paths.REPO_ROOT,
        )

    missing = qcnn()
    assert missing.returncode == 2 and "qcnn split" in missing.stderr and "Traceback" not in missing.stderr
    for name in (paths.SPLIT_FILE, paths.IMAGE_SPLIT_FILE):
        (tmp_path / name).write_text((paths.RESULTS_DIR / name).read_text())
    done = qcnn()
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / paths.LEAKAGE_FILE).read_text())
    image = written["splits"]["image"]["test_images_with_sibling_in_train_or_val"]
    assert f"{image:,} of 4,159 test images" in done.stdout and written["models"] is None


def test_backbone_change_is_paired_by_seed_on_one_test_set():
    """The QCNN sharpens on the stronger backbone, the classical control's predictions do not change at all: its
    change is exactly zero with no uncertainty, and the gap moves by the QCNN's change, seed by seed."""
    n = 600
    split = pd.DataFrame({"image_id": [f"I{i}" for i in range(n)], "lesion_id": [f"L{i // 3}" for i in range(n)]})
    split["pool"] = "test"
    split["label"] = (np.arange(n) // 3 % 4 == 0).astype(int)  # labels per lesion
    split["dx"] = np.where(split.label == 1, "mel", "nv")
    weak, strong = {}, {}
    for kind in MODEL_KINDS:
        for seed in (0, 1, 2):
            noise = np.random.default_rng([seed, len(kind)]).random(n)
            weak[(kind, seed)] = _predictions(split, (0.3 * split.label + noise) / 1.3)
            sharper = 0.9 if kind == "qcnn" else 0.3
            strong[(kind, seed)] = _predictions(split, (sharper * split.label + noise) / (1 + sharper))
    models = backbone_change(weak, strong, n_bootstrap=200)
    assert models["seeds"] == [0, 1, 2] and models["n_test"] == n
    qcnn, classical, gap = (models["change"][k] for k in ("qcnn", "classical", "difference"))
    assert qcnn["ci95"]["auc"][0] > 0.05  # clearly better
    assert classical["mean"]["auc"] == 0 and classical["ci95"]["auc"] == [0.0, 0.0]
    assert gap["per_seed"] == qcnn["per_seed"]
    by_hand = (
        threshold_metrics(split.label, strong[("qcnn", 1)].probability)["auc"]
        - threshold_metrics(split.label, weak[("qcnn", 1)].probability)["auc"]
    )
    assert qcnn["per_seed"]["1"]["auc"] == pytest.approx(by_hand, abs=1e-6)
    assert models["metrics"]["strong"]["qcnn"]["mean"]["auc"] > models["metrics"]["weak"]["qcnn"]["mean"]["auc"]
    del strong[("classical", 2)]
    assert backbone_change(weak, strong, n_bootstrap=20)["seeds"] == [0, 1]
    assert backbone_change(weak, {}, n_bootstrap=20) is None
    strong[("qcnn", 0)] = strong[("qcnn", 0)].iloc[::-1].reset_index(drop=True)
    with pytest.raises(ValueError, match="same images"):
        backbone_change(weak, strong, n_bootstrap=20)


def test_committed_backbone_comparison_is_what_qcnn_backbones_computes():
    """results/backbones.json: the controls' baseline pair (committed backbone) against the backbone24 runs."""
    committed = json.loads((paths.RESULTS_DIR / paths.BACKBONES_FILE).read_text())
    ws = Workspace(paths.RESULTS_DIR, paths.CHECKPOINT_DIR)
    runs = [
        finished_predictions(load_experiment(EXPERIMENTS / f"{committed[side]['experiment']}.toml"), ws, 1.0, "lesion")
        for side in ("weak", "strong")
    ]
    assert (committed["weak"]["backbone"], committed["strong"]["backbone"]) == tuple(regime.BACKBONES)
    assert json.loads(json.dumps(backbone_change(*runs, committed["models"]["n_bootstrap"]))) == committed["models"]


def test_backbones_command_refuses_one_backbone_twice(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "qcnn",
            "backbones",
            "--results-dir",
            str(tmp_path),
            "--strong",
            "experiments/controls.toml",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
        cwd=paths.REPO_ROOT,
    )
    assert done.returncode == 2 and "no change to measure" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / paths.BACKBONES_FILE).exists()


# --- the page ---------------------------------------------------------------------------------------


def synthetic_regime(directory: Path, strength: dict, leak_boost: float, seeds: tuple[int, ...] = (0, 1, 2)) -> Path:
    write_synthetic_experiment(directory, EXPERIMENTS / "lowdata.toml", strength=strength)
    write_synthetic_experiment(directory, EXPERIMENTS / "imagesplit.toml", seeds=seeds, leak_boost=leak_boost)
    write_leakage(
        Workspace(directory, directory / "checkpoints"),
        EXPERIMENTS / "imagesplit.toml",
        EXPERIMENTS / "lowdata.toml",
        n_bootstrap=100,
    )
    return directory


def regime_page(monkeypatch, results_dir: Path, metric: str | None = None) -> AppTest:
    monkeypatch.setenv("QCNN_RESULTS_DIR", str(results_dir))
    app = AppTest.from_file(str(PAGE), default_timeout=60)
    if metric:
        app.query_params["metric"] = metric
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def page_text(app: AppTest) -> str:
    return "\n".join(x.value for x in (*app.markdown, *app.caption, *app.info, *app.warning))


def test_regime_page_answers_from_a_synthetic_experiment_and_the_words_follow_the_numbers(tmp_path, monkeypatch):
    wins = synthetic_regime(tmp_path / "wins", {("qcnn", 0.0625): 1.5}, leak_boost=2.0)
    app = regime_page(monkeypatch, wins)
    text = page_text(app)
    assert "**Yes**: the QCNN's AUC is higher than the classical control's at 75–79 images" in text
    assert "it inflates the QCNN's AUC by" in text and "it inflates the classical control's AUC by" in text
    assert "Against the lesion split (the same pool sizes and class balance, drawn by lesion), the image split" in text
    assert "have a lesion sibling" in text and "runs of the" not in text  # complete: no progress note
    assert len(app.dataframe) == 3  # curve table, leakage counts, leakage metrics (no backbone history here)
    curve = app.dataframe[0].value  # each seed's subset has its own size: a range, and the epochs each run used
    assert list(curve["training images"])[0] == "75–79" and list(curve["training images"])[-1] == "1,269"
    assert set(curve["epochs"]) == {"4"}
    assert {c.proto.id.rsplit("-", 1)[-1] for c in app.get("plotly_chart")} == {"regime_curves", "regime_difference"}
    assert "synthetic demo data" in text

    loses = synthetic_regime(tmp_path / "loses", {"qcnn": -1.2}, leak_boost=0.0)
    text = page_text(regime_page(monkeypatch, loses))
    assert "**No** size measured gives the QCNN a higher AUC: the classical control is better with" in text
    assert "it inflates" not in text and "**No clear inflation**" in text

    one_seed = synthetic_regime(tmp_path / "one", {"qcnn": -1.2}, leak_boost=2.0, seeds=(0,))
    text = page_text(regime_page(monkeypatch, one_seed))  # no interval from one seed: no verdict either
    assert "**Not yet measured**: scored on the image split's whole test set" in text and "it inflates" not in text

    f1 = regime_page(monkeypatch, wins, metric="f1")  # a shared link opens on its metric
    assert f1.query_params["metric"] == ["f1"] or f1.query_params["metric"] == "f1"
    assert "F1" in page_text(f1) and any("qcnn F1" in d.value.columns for d in f1.dataframe)


def test_regime_page_on_the_committed_results_says_what_is_missing(monkeypatch):
    app = regime_page(monkeypatch, paths.RESULTS_DIR)
    text = page_text(app)
    leakage = json.loads((paths.RESULTS_DIR / paths.LEAKAGE_FILE).read_text())
    image = leakage["splits"]["image"]
    assert f"{image['test_images_with_sibling_in_train_or_val']:,} of {image['n_test']:,} test images" in text
    for name in ("lowdata", "imagesplit"):
        summary = paths.RESULTS_DIR / "experiments" / name / "summary.json"
        if not summary.is_file() or json.loads(summary.read_text())["n_complete"] < regime.planned_runs(name):
            assert f"qcnn sweep experiments/{name}.toml" in text and f"of the {name} experiment" in text
    assert "held-out balanced accuracy 0.779, kept epoch 8 of 8" in text  # the committed backbone
    controls = json.loads((paths.RESULTS_DIR / "experiments" / "controls" / "summary.json").read_text())
    n_fp32 = len(controls["variants"]["qcnn"]["vs_classical"]["seeds"])  # its float32 pair, not the bf16 reproduction
    assert f"; {n_fp32} seeds)" in text
    if not (paths.RESULTS_DIR / f"{regime.STRONG_BACKBONE}_history.csv").is_file():
        assert "qcnn pretrain-backbone --output backbone24.safetensors --epochs 24" in text


def test_the_committed_learning_curve_counts_its_reused_runs_apart():
    """Its full-data point is the controls' fp32 pair, read rather than trained: the summary says so, and its
    time is not counted as this experiment's own."""
    from qcnn.ledger import wall_time_text

    summary = json.loads((paths.RESULTS_DIR / "experiments" / "lowdata" / "summary.json").read_text())
    for setting in summary["settings"]:
        for block in setting["variants"].values():
            assert block["runs_reused"] == (len(block["seeds"]) if setting["fraction"] == 1.0 else 0)
    reused = sum(
        len(b["seeds"]) for st in summary["settings"] if st["fraction"] == 1.0 for b in st["variants"].values()
    )
    assert summary["runs_reused"] == reused > 0
    own_hours = (summary["wall_seconds"] - summary["wall_seconds_reused"]) / 3600
    assert f"{own_hours:.1f} h of it for this experiment's own runs ({reused} reused" in wall_time_text(summary)


def test_regime_page_on_a_partial_learning_curve(tmp_path, monkeypatch):
    """Mid-sweep (`qcnn sweep --summary-only`): a size without runs is left out, a size with one seed has no
    interval, and the page counts the runs and names the command that makes the rest."""
    from dataclasses import replace

    from qcnn.runs import RECORD_FILE
    from qcnn.summary import summarize_experiment

    write_synthetic_experiment(tmp_path, EXPERIMENTS / "lowdata.toml")
    runs = tmp_path / "experiments" / "lowdata" / "runs"
    for record in [*runs.glob("*_frac0.0625/" + RECORD_FILE), *runs.glob("*_seed[12]_frac0.125/" + RECORD_FILE)]:
        record.unlink()
    experiment = replace(load_experiment(EXPERIMENTS / "lowdata.toml"), seeds=(0, 1, 2))
    summarize_experiment(experiment, Workspace(tmp_path, tmp_path / "checkpoints"), n_bootstrap=30, require_all=False)
    text = page_text(regime_page(monkeypatch, tmp_path))
    assert "20 of 30 runs of the lowdata experiment finished" in text and "makes the other 10" in text
    assert "Not yet measured with two or more seeds: 159 training images" in text
    assert "training images the QCNN − classical difference goes from" in text and "(one seed) to" in text
    assert "79 images" not in text


def test_runs_a_learning_curve_reuses_are_counted_before_its_first_summary(tmp_path):
    """The full-data point is another experiment's run in the same precision (the controls' fp32 baseline),
    never the reproduction's bf16 run, and never a run on another backbone."""

    def record(folder: Path, precision: str, backbone: str | None = None) -> None:
        spec = {"fraction": 1.0, "split": "lesion", "train": {"precision": precision}}
        folder.mkdir(parents=True)
        (folder / "complete.json").write_text(json.dumps({"spec": spec | ({"backbone": backbone} if backbone else {})}))

    record(tmp_path / "experiments" / "controls" / "runs" / "qcnn_seed0", "fp32")
    record(tmp_path / "experiments" / "controls" / "runs" / "classical_seed2", "fp32")
    record(tmp_path / "experiments" / "other" / "runs" / "qcnn_seed1", "fp32", backbone="backbone24.safetensors")
    record(tmp_path / "runs" / "classical_seed0", "bf16")
    record(tmp_path / "experiments" / "lowdata" / "runs" / "qcnn_seed0_frac0.5", "fp32")
    assert regime.plan("lowdata")["precision"] == "fp32"
    assert regime.finished_runs(tmp_path, "lowdata") == 3  # its own run and the controls' two
    assert regime.finished_runs(tmp_path, "backbone24") == 0  # the committed backbone's runs are not reused
    record(tmp_path / "runs" / "classical_seed1", "fp32")
    assert regime.finished_runs(tmp_path, "lowdata") == 4  # the reproduction's folder, in the same precision


def test_experiment_comparisons_carry_mcnemar_and_matched_recall_on_the_first_paired_seed(tmp_path):
    """The main summary's per-image statistics, per variant against each baseline, from the real summarizer."""

    write_synthetic_experiment(tmp_path, EXPERIMENTS / "controls.toml")
    summary = json.loads((tmp_path / "experiments" / "controls" / "summary.json").read_text())
    runs = tmp_path / "experiments" / "controls" / "runs"
    labels = pd.read_csv(runs / "grid-7_seed0" / "predictions.csv").label.to_numpy()
    comparison = summary["variants"]["grid-7"]["vs_classical"]
    test = comparison["mcnemar"]
    assert test["seed"] == comparison["seeds"][0] == 0
    assert test["both_correct"] + test["only_variant_correct"] + test["only_other_correct"] + test["both_wrong"] == len(
        labels
    )
    variant = pd.read_csv(runs / "grid-7_seed0" / "predictions.csv").probability.to_numpy() >= 0.5
    classical = next(tmp_path.rglob("classical_seed0/predictions.csv"))  # the reproduction's folder, reused
    other = pd.read_csv(classical).probability.to_numpy() >= 0.5
    assert test["only_variant_correct"] == int(((variant == (labels == 1)) & (other != (labels == 1))).sum())
    matched = comparison["matched_recall"]
    other_recall = float(other[labels == 1].mean())
    assert matched["variant_at_other_recall"]["recall"] >= other_recall - 1e-12
    assert "mcnemar" not in summary["variants"]["qcnn"].get("vs_qcnn", {}), "no comparison with itself"
    assert load_experiment(EXPERIMENTS / "controls.toml").name == summary["experiment"]


def test_regime_page_without_results_names_the_commands(tmp_path, monkeypatch):
    text = page_text(regime_page(monkeypatch, tmp_path))
    assert "qcnn leakage" in text and "qcnn pretrain-backbone" in text
    assert "No run of the lowdata experiment yet (0 of 30)" in text


def bb(name: str, accuracy: float, mean: float, low: float, high: float) -> regime.Backbone:
    """A backbone whose models' QCNN − classical difference is ``mean`` [low, high]."""
    models = {"qcnn": {"mean": 0.8, "ci": None}, "classical": {"mean": 0.8 - mean, "ci": None}}
    return regime.Backbone(name, 24, 20, accuracy, models, Effect("qcnn", mean, low, high), 3)


def test_backbone_words_follow_the_gap():
    weak = bb("backbone", 0.78, -0.02, -0.04, -0.01)
    assert "**The gap closes**" in regime.backbone_answer([weak, bb("backbone24", 0.85, 0.0, -0.01, 0.01)], "auc")
    assert "**No**: the classical control stays ahead" in regime.backbone_answer(
        [bb("backbone24", 0.85, -0.03, -0.05, -0.01), weak], "auc"
    )
    one_seed = regime.Backbone("backbone24", 24, 20, 0.85, weak.models, Effect("qcnn", -0.01, None, None), 1)
    partial = regime.backbone_answer([weak, one_seed], "auc")
    assert "only one backbone has models from two or more seeds" in partial
    assert "1 seed so far, QCNN − classical AUC -1.0 points (an interval needs at least two)" in partial
    untrained = regime.backbone_answer([weak, regime.Backbone("backbone24", 24, 20, 0.85, None, None, 0)], "auc")
    assert "backbone24` (held-out balanced accuracy 0.850, kept epoch 20 of 24): both models not yet" in untrained
    only = regime.backbone_answer([weak], "auc")
    assert "**Not yet measured**" in only and regime.PRETRAIN_COMMAND in only


def change_file(mean: float, low: float, high: float, strong: str = "backbone24") -> dict:
    """backbones.json whose QCNN − classical AUC moves by ``mean`` [low, high]; the QCNN gains 2 points clearly."""

    def block(m: float, lo: float, hi: float) -> dict:
        return {"mean": {"auc": m}, "ci95": {"auc": [lo, hi]}}

    change = {
        "qcnn": block(0.02, 0.01, 0.03),
        "classical": block(0.02 - mean, -0.01, 0.02),
        "difference": block(mean, low, high),
    }
    return {"weak": {"backbone": "backbone"}, "strong": {"backbone": strong}, "models": {"change": change}}


def test_backbone_words_weigh_the_change_itself():
    """A verdict that flips between backbones is 'within the noise' unless the paired change is clear."""
    weak, strong = bb("backbone", 0.78, -0.02, -0.04, -0.01), bb("backbone24", 0.85, 0.0, -0.01, 0.01)
    noisy = regime.backbone_answer([weak, strong], "auc", change_file(0.02, -0.01, 0.05))
    assert noisy.startswith("**Not clearly**") and "The gap moves by +2.0 points [-1.0, +5.0]" in noisy
    assert "The better backbone raises the QCNN's AUC (+2.0 points [+1.0, +3.0]) and does not clearly" in noisy
    clear = regime.backbone_answer([weak, strong], "auc", change_file(0.02, 0.005, 0.035))
    assert clear.startswith("**The gap closes**") and "within the noise" not in clear
    other = regime.backbone_answer([weak, strong], "auc", change_file(0.02, 0.005, 0.035, strong="backbone48"))
    assert "The change is +2.0 points (`qcnn backbones` gives its interval)." in other
    level, below = bb("backbone", 0.78, 0.0, -0.01, 0.01), bb("backbone24", 0.85, -0.02, -0.03, -0.01)
    opens = regime.backbone_answer([level, below], "auc", change_file(-0.02, -0.04, 0.01))
    assert opens.startswith("**The gap opens**") and "though the change itself is within the noise" in opens


def test_the_overview_lines_give_each_measured_effect(tmp_path):
    """The Overview's "what differs" rows state the learning curve's and the backbones' measured differences."""
    write_synthetic_experiment(tmp_path, EXPERIMENTS / "lowdata.toml")
    summary = json.loads((tmp_path / "experiments" / "lowdata" / "summary.json").read_text())
    line = regime.size_effect(summary)
    points = regime.curve_points(summary, "auc")
    assert len(points) == 5
    for p in points:
        assert f"{p.difference.text()} at {p.size_text} images" in line
    assert "sizes measured" not in line
    summary["settings"] = summary["settings"][-2:]  # mid-sweep: two sizes so far
    assert "(2 of 5 sizes measured)" in regime.size_effect(summary)
    assert "not yet measured (`qcnn sweep experiments/lowdata.toml`)" in regime.size_effect(None)

    def trained(mean: float, low: float, high: float) -> dict:
        """An experiment summary of both models whose QCNN − classical AUC is ``mean`` [low, high]."""
        diff = {"seeds": [0, 1, 2], "mean": {"auc": mean}, "ci95": {"auc": [low, high]}}
        return {"variants": {"qcnn": {"mean": {"auc": 0.8}, "vs_classical": diff}, "classical": {"mean": {"auc": 0.8}}}}

    weak, strong = trained(-0.02, -0.04, -0.01), trained(0.0, -0.01, 0.01)
    both = regime.backbone_effect({"backbone": weak, "backbone24": strong})
    assert both.index("`backbone`") < both.index("`backbone24`") and "not yet trained" not in both
    assert "-2.0 points [-4.0, -1.0]" in both and "+0.0 points [-1.0, +1.0]" in both
    moved = regime.backbone_effect({"backbone": weak, "backbone24": strong}, change_file(0.02, -0.01, 0.05))
    assert moved == both + "; the gap moves by +2.0 points [-1.0, +5.0] (within the noise)"
    assert regime.PRETRAIN_COMMAND in regime.backbone_effect({"backbone": weak, "backbone24": None})
    one_seed = trained(0.01, float("nan"), float("nan"))
    one_seed["variants"]["qcnn"]["vs_classical"]["seeds"] = [0]
    started = regime.backbone_effect({"backbone": weak, "backbone24": one_seed})
    assert started.endswith("; on `backbone24` fewer than two seeds so far") and regime.PRETRAIN_COMMAND not in started
    assert regime.backbone_effect({"backbone": None, "backbone24": None}) == "its effect not yet measured"


def curve_point(n_train: int, with_interval: bool) -> regime.CurvePoint:
    model = {"mean": 0.8, "ci": (0.78, 0.82) if with_interval else None, "seeds": {0: 0.8}}
    models = {"qcnn": model, "classical": model}
    return regime.CurvePoint(n_train / 1000, n_train, models, Effect("qcnn", 0, 0, 0), 1, (n_train, n_train), None)


def test_a_learning_curve_band_never_bridges_a_size_without_an_interval():
    """Sizes 100 (interval), 200 (one seed), 400 and 800 (intervals): the band covers 400–800 only, 100 gets an
    error bar, and the one-seed mean at 200 is drawn hollow."""
    from qcnn.app.experiment_charts import learning_curves

    points = [curve_point(100, True), curve_point(200, False), curve_point(400, True), curve_point(800, True)]
    fig = learning_curves(points, "auc", 2400)
    bands = [t for t in fig.data if t.fill == "toself" and t.name.startswith("QCNN")]
    assert [list(b.x) for b in bands] == [[400, 800, 800, 400]]
    means = next(t for t in fig.data if t.name == "QCNN")
    assert list(means.error_y.array) == pytest.approx([2, 0, 0, 0])
    assert list(means.marker.symbol) == ["circle", "circle-open", "circle", "circle"]


def test_regime_page_compares_two_backbones_while_the_stronger_ones_runs_come_in(tmp_path, monkeypatch):
    """A pretrained stronger backbone with one seed of its models (`qcnn sweep --summary-only` mid-sweep): its
    progress and that seed's difference (hollow on the chart), no verdict; with all three seeds: a verdict."""
    import shutil

    from qcnn.runs import RECORD_FILE
    from qcnn.summary import summarize_experiment

    write_synthetic_experiment(tmp_path, EXPERIMENTS / "controls.toml", strength={"classical": 0.3})
    write_synthetic_experiment(tmp_path, EXPERIMENTS / "backbone24.toml")
    shutil.copy(paths.RESULTS_DIR / paths.BACKBONE_HISTORY_FILE, tmp_path / paths.BACKBONE_HISTORY_FILE)
    history = pd.DataFrame({"epoch": range(1, 25), "val_balanced_accuracy": np.linspace(0.6, 0.85, 24)})
    history.assign(selected=history.epoch == 24).to_csv(tmp_path / "backbone24_history.csv", index=False)

    app = regime_page(monkeypatch, tmp_path)
    text, charts = page_text(app), {c.proto.id.rsplit("-", 1)[-1] for c in app.get("plotly_chart")}
    assert "runs of the backbone24 experiment" not in text and "regime_backbone" in charts
    assert "held-out balanced accuracy 0.850, kept epoch 24 of 24" in text and "`qcnn backbones` gives its" in text
    ws = Workspace(tmp_path, tmp_path / "checkpoints")
    write_backbones(ws, EXPERIMENTS / "controls.toml", EXPERIMENTS / "backbone24.toml", n_bootstrap=50)
    text = page_text(regime_page(monkeypatch, tmp_path))
    assert "The gap moves by" in text and "(paired by seed on one test set)" in text and "gives its" not in text

    for record in (tmp_path / "experiments" / "backbone24" / "runs").glob("*_seed[12]_backbone24/" + RECORD_FILE):
        record.unlink()
    summarize_experiment(load_experiment(EXPERIMENTS / "backbone24.toml"), ws, n_bootstrap=30, require_all=False)
    app = regime_page(monkeypatch, tmp_path)
    text, charts = page_text(app), {c.proto.id.rsplit("-", 1)[-1] for c in app.get("plotly_chart")}
    assert "2 of 6 runs of the backbone24 experiment finished" in text and "The gap moves" not in text
    assert "1 seed so far, QCNN − classical AUC" in text and "regime_backbone" in charts
    figure = json.loads(next(c for c in app.get("plotly_chart") if c.proto.id.endswith("regime_backbone")).proto.spec)
    assert [t["marker"]["symbol"] for t in figure["data"]] == [["circle", "circle-open"]] * 2  # one seed: hollow
