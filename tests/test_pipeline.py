"""The pipeline end to end on a small real slice of HAM10000 (seconds, random backbone)."""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
import torch

from qcnn import cli, paths
from qcnn.backbone import BACKBONE_FILE, Backbone, load_backbone, save_backbone
from qcnn.config import MODEL_PRESETS, ModelConfig, RunSpec, TrainConfig
from qcnn.data import DataError, image_path, load_image_file, read_metadata, resolve_data_dir
from qcnn.errors import ConfigError, RunMismatchError
from qcnn.evaluate import summarize
from qcnn.io import write_csv
from qcnn.metrics import METRICS
from qcnn.models import build_model, load_model, save_model
from qcnn.runs import RECORD_FILE, Workspace, execute_run, run_paths
from qcnn.split import POOLS, image_level_split, make_split, train_subset


@pytest.fixture(scope="module")
def meta(data_dir):
    return read_metadata(data_dir)


@pytest.fixture(scope="module")
def split(meta):
    return make_split(meta)


def test_split_is_lesion_disjoint_and_reproducible(meta, split):
    assert split.image_id.tolist() == sorted(meta.image_id) and set(split.pool) == set(POOLS)
    used = split[split.pool != "excluded"]
    assert (used.groupby("lesion_id").pool.nunique() == 1).all(), "a lesion appears in two pools"
    excluded = split[split.pool == "excluded"]
    assert excluded.lesion_id.isin(split[split.pool.isin(["train", "val"])].lesion_id).all()
    assert split.equals(make_split(meta)), "same seed, different split"
    assert not split.equals(make_split(meta, seed=1))
    assert split[split.pool == "pretrain"].label.sum() == 0, "the backbone must never see a malignant lesion"
    assert set(split[split.pool == "pretrain"].dx) <= {"nv", "bkl", "df", "vasc"}
    train_val = split[split.pool.isin(["train", "val"])]
    assert abs(train_val.label.mean() - 0.5) < 0.01, "train/val must be balanced"
    benign = train_val[train_val.label == 0]
    assert benign.lesion_id.is_unique, "one benign image per lesion"
    test = split[split.pool == "test"]
    assert 0.2 < test.label.mean() < 0.35 and len(test) > 3000
    val_fraction = (split.pool == "val").sum() / len(train_val)
    assert 0.15 < val_fraction < 0.25


def test_data_errors_name_the_problem(tmp_path, monkeypatch):
    monkeypatch.delenv("QCNN_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="QCNN_DATA_DIR"):
        resolve_data_dir()
    with pytest.raises(DataError, match="not found"):
        resolve_data_dir(tmp_path / "nowhere")
    (tmp_path / "HAM10000_metadata.csv").write_text("lesion_id,image_id,dx\nL1,ISIC_1,mel\n")
    with pytest.raises(DataError, match="ISIC_1"):
        image_path(tmp_path, "ISIC_1")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "ISIC_1.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="ISIC_1.jpg"):
        load_image_file(image_path(tmp_path, "ISIC_1"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, split, data_dir):
    """A random backbone and a small slice: 24 train, 8 val, 16 test images."""
    root = tmp_path_factory.mktemp("pipeline")
    torch.manual_seed(0)
    save_backbone(Backbone(), root / "checkpoints" / BACKBONE_FILE, source="random")
    parts = [
        split[(split.pool == pool) & (split.label == y)].head(n // 2)
        for pool, n in (("train", 24), ("val", 8), ("test", 16))
        for y in (0, 1)
    ]
    small = pd.concat(parts, ignore_index=True)
    write_csv(small, root / "results" / paths.SPLIT_FILE)
    yield Workspace(root / "results", root / "checkpoints", data_dir, root / "cache", "cpu")


ONE_EPOCH = TrainConfig(epochs=1, batch_size=8, precision="fp32")  # bf16 is 8x slower on CPUs without native BF16


def _run(ws: Workspace, variant: str, model: ModelConfig, train: TrainConfig = ONE_EPOCH, **kw) -> tuple:
    spec = RunSpec(variant, 0, model, train, **kw)
    record = execute_run(spec, ws, experiment="switches")
    return spec, record, run_paths(spec, ws, "switches")


def test_the_reproductions_pair_trains_evaluates_and_summarises(workspace):
    for kind in paths.MODEL_KINDS:
        spec, record, (run, weights) = _run(
            workspace, kind, MODEL_PRESETS[kind], TrainConfig(epochs=2, batch_size=8, precision="fp32")
        )
        assert run == workspace.results_dir / "runs" / f"{kind}_seed0", "the pair lives in the reproduction's folder"
        history = pd.read_csv(run / "history.csv")
        assert list(history.columns) == [
            "epoch",
            "train_loss",
            "val_loss",
            "val_auc",
            "val_accuracy",
            "lr",
            "seconds",
            "best",
        ]
        assert len(history) == 2 and history.best.sum() >= 1
        metrics = json.loads((run / "metrics.json").read_text())
        assert set(METRICS) <= metrics.keys() and metrics["n"] == 16 and metrics["precision_policy"] == "fp32"
        predictions = pd.read_csv(run / "predictions.csv")
        assert list(predictions.columns) == ["image_id", "lesion_id", "dx", "label", "probability"]
        assert predictions.probability.between(0, 1).all() and len(pd.read_csv(run / "val_predictions.csv")) == 8
        config = json.loads((run / "config.json").read_text())
        assert RunSpec.from_json(config) == spec and record["spec"] == spec.to_json()
        assert config["parameters"]["all"]["trainable"] < config["parameters"]["all"]["total"]
    summary = summarize(workspace.results_dir, n_bootstrap=50)
    assert summary["seeds"] == [0]
    for m in METRICS:
        lo, hi = summary["difference"]["ci95"][m]  # the interval the app shows; one seed: lesions only
        assert -1 <= lo <= hi <= 1
    assert "one seed" in summary["difference"]["interval_method"]
    mc = summary["mcnemar"]
    assert mc["both_correct"] + mc["only_qcnn_correct"] + mc["only_classical_correct"] + mc["both_wrong"] == 16


SWITCHES = {  # name: (the architecture, extra training flags)
    "fourier": (ModelConfig(outcome_map="fourier"), []),
    "gap": (ModelConfig(outcome_map="gap"), []),
    "frozen": (ModelConfig(train_layer3=False), []),
    "grid7": (ModelConfig(grid=7), []),
    "bottleneck": (ModelConfig(grid=1, measurement="expval"), []),
    "separable": (ModelConfig(entangling="none"), []),
    "deep-once": (ModelConfig(n_layers=3, reuploads=1), []),
    "untrained": (ModelConfig(train_circuit=False), []),
    "pennylane": (ModelConfig(backend="pennylane", grid=1), []),
    "bf16": (ModelConfig(outcome_map="classical"), ["--precision", "bf16"]),
}


def _model_flags(config: ModelConfig) -> list[str]:
    """The `qcnn train` flags that turn the QCNN preset into ``config``: one per field that differs."""
    flags = []
    for f in fields(ModelConfig):
        value, default = getattr(config, f.name), getattr(MODEL_PRESETS["qcnn"], f.name)
        if value != default:
            name = f.name.replace("_", "-")
            flags += (
                [f"--{name}" if value else f"--no-{name}"] if isinstance(value, bool) else [f"--{name}", str(value)]
            )
    return flags


@pytest.mark.parametrize("name", SWITCHES)
def test_every_switch_trains_for_one_epoch_from_the_cli(workspace, name, capsys):
    config, train_flags = SWITCHES[name]
    torch.manual_seed(0)  # train_run seeds the same way: the model's initial weights
    initial = build_model(config, load_backbone(workspace.checkpoint_dir / BACKBONE_FILE)).trainable_state()
    where = ["--results-dir", str(workspace.results_dir), "--checkpoint-dir", str(workspace.checkpoint_dir)]
    where += ["--data-dir", str(workspace.data_dir), "--cache-dir", str(workspace.cache_dir), "--device", "cpu"]
    training = ["--epochs", "1", "--batch-size", "8", "--precision", "fp32", *train_flags]
    argv = ["train", *where, "--model", "qcnn", "--name", f"switch-{name}", *_model_flags(config), *training]
    assert cli.main(argv) == 0, capsys.readouterr().err
    spec = RunSpec.from_json(
        json.loads(
            (workspace.results_dir / "experiments" / "adhoc" / "runs")
            .joinpath(f"switch-{name}_seed0", "config.json")
            .read_text()
        )
    )
    assert spec.model == config, "every switch reaches the run through its flag"
    assert spec.train.precision == ("bf16" if "bf16" in train_flags else "fp32")
    run, weights = run_paths(spec, workspace, "adhoc")
    record = json.loads((run / RECORD_FILE).read_text())
    assert record["spec"] == spec.to_json()
    assert record["machine"]["cpu_count"] >= 1 and record["machine"]["cpu"], "the record says where it trained"
    model = load_model(model_path=weights, checkpoint_dir=workspace.checkpoint_dir)
    assert model.config == config, "the checkpoint rebuilds its own configuration"
    trained = model.trainable_state()
    changed = {k for k in initial if not torch.equal(initial[k], trained[k])}
    assert any(k.startswith("head.classifier") for k in changed)
    assert any(k.startswith("layer3.") for k in changed) == config.train_layer3
    if config.outcome_map == "quantum":
        assert ("head.outcome_map.weights" in changed) == config.train_circuit
    pooled = {14: 196, 7: 49, 1: 1}[config.grid]
    with torch.no_grad():
        out = model.head.outputs(torch.randn(2, 256, 14, 14))
    if config.outcome_map != "gap":
        assert out.patch_outcomes.shape[:2] == (2, pooled)


def test_a_finished_run_is_skipped_refused_when_different_and_rerun_with_force(workspace):
    spec, first, (run, _) = _run(workspace, "guard", ModelConfig(outcome_map="gap"))
    again = execute_run(spec, workspace, experiment="switches")
    assert again == first, "an equal finished run is skipped"
    other = RunSpec(
        "guard", 0, ModelConfig(outcome_map="gap"), TrainConfig(epochs=1, batch_size=8, lr_head=1e-3, precision="fp32")
    )
    with pytest.raises(RunMismatchError, match="lr_head"):
        execute_run(other, workspace, experiment="switches")
    assert json.loads((run / RECORD_FILE).read_text()) == first, "a refusal changes nothing"
    redone = execute_run(other, workspace, experiment="switches", force=True)
    assert redone["spec"]["train"]["lr_head"] == 1e-3


def test_a_changed_data_folder_is_never_served_stale_features(tmp_path, data_dir):
    """The cache key covers the images' bytes: the same ids with one image changed give new features."""
    import shutil

    from PIL import Image

    from qcnn.features import cached_features, images_digest

    ids = ["ISIC_0024306", "ISIC_0024307", "ISIC_0024308"]
    (tmp_path / "data" / "images").mkdir(parents=True)
    for image_id in ids:
        shutil.copy(image_path(data_dir, image_id), tmp_path / "data" / "images" / f"{image_id}.jpg")
    torch.manual_seed(0)
    save_backbone(Backbone(), tmp_path / "checkpoints" / BACKBONE_FILE, source="random")
    split = pd.DataFrame({"image_id": ids, "pool": "test"})

    def features() -> torch.Tensor:
        images_digest.cache_clear()  # a new process: the digest is read once per process
        return cached_features(
            split, "test", 1, tmp_path / "data", tmp_path / "checkpoints", precision="fp32", cache_dir=tmp_path / "c"
        )

    before = features()
    assert torch.equal(features(), before), "an unchanged folder is served from the cache"
    flipped = tmp_path / "data" / "images" / f"{ids[1]}.jpg"
    Image.open(flipped).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(flipped, quality=95)
    after = features()
    assert len(list((tmp_path / "c").rglob("*.safetensors"))) == 2, "the changed folder got its own cache file"
    assert torch.equal(after[:, 0], before[:, 0]) and not torch.equal(after[:, 1], before[:, 1])


def test_a_finished_run_without_a_record_is_refused_until_forced(workspace):
    spec, record, (run, _) = _run(workspace, "pre-record", ModelConfig(outcome_map="gap"))
    (run / RECORD_FILE).unlink()  # as the reproduction's seeds 1-4: evaluated before completion records existed
    before = (run / "predictions.csv").read_bytes()
    with pytest.raises(RunMismatchError, match="before completion records"):
        execute_run(spec, workspace, experiment="switches")
    assert (run / "predictions.csv").read_bytes() == before and not (run / RECORD_FILE).exists(), "nothing lost"
    assert execute_run(spec, workspace, experiment="switches", force=True)["spec"] == record["spec"]


def test_an_interrupted_run_is_not_done(workspace):
    spec, record, (run, _) = _run(workspace, "interrupted", ModelConfig(outcome_map="gap"))
    (run / RECORD_FILE).unlink()  # as if killed before the record: the run is trained again
    (run / "predictions.csv").unlink()
    assert execute_run(spec, workspace, experiment="switches")["spec"] == record["spec"]
    assert (run / "predictions.csv").is_file()


def _interrupted_on_call(n: int, real):
    """``real``, except that its ``n``-th call raises KeyboardInterrupt: a run killed at that point."""
    calls = []

    def wrapped(*args):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*args)

    return wrapped


def test_a_run_killed_mid_training_resumes_exactly_where_it_stopped(workspace, tmp_path, monkeypatch):
    """Same epochs, batches, augmentations and weights as a run that was never interrupted."""
    from qcnn import train
    from qcnn.io import resume_path
    from qcnn.runs import load_split

    spec = RunSpec("resumed", 0, MODEL_PRESETS["qcnn"], TrainConfig(epochs=3, batch_size=8, precision="fp32"))
    split, ws = load_split(workspace, "lesion"), workspace.with_data()

    def train_into(folder):
        weights = tmp_path / folder / "weights.safetensors"
        args = (split, ws.data_dir, tmp_path / folder, weights, ws.checkpoint_dir)
        return train.train_run(spec, *args, cache_dir=ws.cache_dir), weights

    straight, straight_weights = train_into("straight")
    real_metrics = train.threshold_metrics
    monkeypatch.setattr(train, "threshold_metrics", _interrupted_on_call(3, real_metrics))  # in the third epoch
    with pytest.raises(KeyboardInterrupt):
        train_into("resumed")
    assert resume_path(tmp_path / "resumed" / "weights.safetensors").is_file()
    scored_after_resuming = []
    monkeypatch.setattr(train, "threshold_metrics", lambda *a: scored_after_resuming.append(1) or real_metrics(*a))
    resumed, resumed_weights = train_into("resumed")
    assert len(scored_after_resuming) == 1, "only the third epoch is trained again"

    columns = ["epoch", "train_loss", "val_loss", "val_auc", "best"]
    pd.testing.assert_frame_equal(resumed[columns], straight[columns])
    assert not resume_path(resumed_weights).exists()
    models = [load_model(model_path=w, checkpoint_dir=ws.checkpoint_dir) for w in (straight_weights, resumed_weights)]
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_an_interrupted_pretraining_resumes_and_is_never_taken_as_final(split, data_dir, tmp_path, monkeypatch):
    """Killed in its second epoch: no backbone is written; the rerun trains only that epoch and ends where an
    uninterrupted pretraining ends, history and weights bit for bit."""
    from safetensors.torch import load_file

    from qcnn import pretrain
    from qcnn.config import PretrainConfig
    from qcnn.io import resume_path

    pool = split[split.pool == "pretrain"]
    small = pd.concat([g.drop_duplicates("lesion_id").head(6) for _, g in pool.groupby("dx")], ignore_index=True)
    cfg = PretrainConfig(epochs=2, batch_size=8, holdout_fraction=0.3, precision="fp32")

    def pretrain_into(folder: str) -> pd.DataFrame:
        out = tmp_path / folder
        return pretrain.pretrain_backbone(small, data_dir, out / BACKBONE_FILE, out / "history.csv", cfg)

    straight = pretrain_into("straight")
    real_evaluate = pretrain._evaluate
    monkeypatch.setattr(pretrain, "_evaluate", _interrupted_on_call(2, real_evaluate))  # in the second epoch
    with pytest.raises(KeyboardInterrupt):
        pretrain_into("resumed")
    checkpoint = tmp_path / "resumed" / BACKBONE_FILE
    assert not checkpoint.exists() and resume_path(checkpoint).is_file(), "an unfinished pretraining is not final"
    again = []
    monkeypatch.setattr(pretrain, "_evaluate", lambda *a: again.append(1) or real_evaluate(*a))
    resumed = pretrain_into("resumed")
    assert len(again) == 1, "only the second epoch is trained again"
    columns = ["epoch", "train_loss", "val_loss", "val_balanced_accuracy", "selected"]
    pd.testing.assert_frame_equal(resumed[columns], straight[columns])
    assert not resume_path(checkpoint).exists()
    a, b = load_file(str(tmp_path / "straight" / BACKBONE_FILE)), load_file(str(checkpoint))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_reproduce_skips_equal_runs_refuses_other_settings_and_reruns_them_with_force(workspace, tmp_path, monkeypatch):
    import shutil
    from dataclasses import replace

    from qcnn import reproduce as reproduce_module
    from qcnn.config import PretrainConfig
    from qcnn.split import read_split

    small = read_split(workspace.results_dir / paths.SPLIT_FILE)
    monkeypatch.setattr(reproduce_module, "make_split", lambda meta: small)  # the protocol, on the small slice
    ws = replace(workspace, results_dir=tmp_path / "results", checkpoint_dir=tmp_path / "checkpoints")
    shutil.copytree(workspace.checkpoint_dir, ws.checkpoint_dir, ignore=shutil.ignore_patterns("runs", "experiments"))
    one_epoch = TrainConfig(epochs=1, batch_size=8, precision="fp32")

    def run(train: TrainConfig, force: bool = False) -> dict:
        return reproduce_module.reproduce(ws, [0], train, PretrainConfig(), n_bootstrap=20, force=force)

    run(one_epoch)
    record = ws.results_dir / "runs" / "qcnn_seed0" / RECORD_FILE
    first = record.read_text()
    assert (ws.checkpoint_dir / "qcnn.safetensors").is_file(), "seed 0's weights are the app's"
    run(one_epoch)
    assert record.read_text() == first, "an equal finished run is skipped"
    with pytest.raises(RunMismatchError, match="lr_head"):
        run(replace(one_epoch, lr_head=1e-3))
    assert record.read_text() == first, "a refusal changes nothing"
    run(replace(one_epoch, lr_head=1e-3), force=True)
    assert json.loads(record.read_text())["spec"]["train"]["lr_head"] == 1e-3


def test_a_run_can_build_on_another_backbone(workspace):
    """Issue 11's stronger backbone: the run, its record, its features and its weights all follow the file."""
    from qcnn.backbone import file_digest
    from qcnn.features import cached_features

    torch.manual_seed(1)
    save_backbone(Backbone(), workspace.checkpoint_dir / "other.safetensors", source="random")
    spec, record, (run, weights) = _run(
        workspace, "gap", ModelConfig(outcome_map="gap"), ONE_EPOCH, backbone="other.safetensors"
    )
    assert run.name == "gap_seed0_other" and record["spec"]["backbone"] == "other.safetensors"
    assert record["backbone_digest"] == file_digest(workspace.checkpoint_dir / "other.safetensors")
    assert "backbone" not in RunSpec("gap", 0).to_json(), "records from before the switch still match"
    model = load_model(model_path=weights, checkpoint_dir=workspace.checkpoint_dir, backbone_file="other.safetensors")
    with pytest.raises(ConfigError, match="different backbone"):
        load_model(model_path=weights, checkpoint_dir=workspace.checkpoint_dir)
    split, ws = pd.read_csv(workspace.results_dir / paths.SPLIT_FILE), workspace.with_data()
    features = [
        cached_features(split, "val", 1, ws.data_dir, ws.checkpoint_dir, cache_dir=ws.cache_dir, backbone_file=f)
        for f in (BACKBONE_FILE, "other.safetensors")
    ]
    assert not torch.equal(*features), "each backbone has its own cached features"
    predictions = pd.read_csv(run / "predictions.csv")
    assert len(predictions) == 16 and model.config == ModelConfig(outcome_map="gap")
    with pytest.raises(ConfigError, match="backbone"):
        RunSpec("gap", 0, backbone="../elsewhere.pt")


def test_bad_configurations_are_named():
    with pytest.raises(ConfigError, match="grid"):
        ModelConfig(grid=5)
    with pytest.raises(ConfigError, match="expval"):
        ModelConfig(outcome_map="gap", measurement="expval")
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="lr_head"):
        TrainConfig(lr_head=-1)
    with pytest.raises(ConfigError, match="fraction"):
        RunSpec("x", fraction=1.5)


def test_checkpoint_round_trip_gives_identical_outputs(workspace, tmp_path):
    backbone_path = workspace.checkpoint_dir / BACKBONE_FILE
    torch.manual_seed(1)
    model = build_model(ModelConfig(), load_backbone(backbone_path)).eval()
    save_model(model, tmp_path / "qcnn.safetensors", backbone_path)
    (tmp_path / BACKBONE_FILE).write_bytes(backbone_path.read_bytes())
    loaded = load_model("qcnn", tmp_path)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    (tmp_path / "classical.safetensors").write_bytes((tmp_path / "qcnn.safetensors").read_bytes())
    with pytest.raises(ConfigError, match="classical"):
        load_model("classical", tmp_path)


def test_train_subsets_are_nested_lesion_whole_and_stratified(split):
    train = split[split.pool == "train"]
    masks = {f: train_subset(split, f, seed=3) for f in (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)}
    fractions = sorted(masks)
    for small, large in zip(fractions, fractions[1:], strict=False):
        assert not (masks[small] & ~masks[large]).any(), f"{small} not inside {large}"
    for f, mask in masks.items():
        chosen = train[mask]
        assert not train[~mask].lesion_id.isin(chosen.lesion_id).any(), "a lesion split across the subset"
        assert abs(chosen.label.mean() - train.label.mean()) < 0.06
        assert abs(len(chosen) / len(train) - f) < 0.05 + 2 / len(train)
    assert not np.array_equal(masks[1 / 4], train_subset(split, 1 / 4, seed=4)), "seeded"


def test_image_level_split_leaks_lesions_but_keeps_the_pool_sizes(meta, split):
    image = image_level_split(meta)
    for pool in ("train", "val", "test"):
        for label in (0, 1):
            assert ((image.pool == pool) & (image.label == label)).sum() == (
                (split.pool == pool) & (split.label == label)
            ).sum()
    model_pools = image[image.pool.isin(["train", "val", "test"])]
    assert (model_pools.groupby("lesion_id").pool.nunique() > 1).any(), "the study's split puts lesions on both sides"
    lesion_pools = split[split.pool.isin(["train", "val", "test"])]
    assert (lesion_pools.groupby("lesion_id").pool.nunique() == 1).all()
    assert image[image.pool == "pretrain"].equals(split[split.pool == "pretrain"])


def test_a_sweep_runs_locally_and_on_ray_with_the_same_results(workspace, tmp_path):
    """Two variants, one seed, one epoch, through both executors: the engine, not the code, schedules."""
    from dataclasses import replace

    from qcnn.summary import summarize_experiment
    from qcnn.sweep import load_experiment, run_experiment

    text = """seeds = [0]
[base.train]
epochs = 1
batch_size = 8
precision = "fp32"
[variants.qcnn-lite]
model = { grid = 7 }
[variants.gap]
model = { outcome_map = "gap" }
"""
    probabilities = {}
    for executor in ("local", "ray"):
        ws = replace(workspace, results_dir=tmp_path / executor)
        ws.results_dir.mkdir()
        (ws.results_dir / paths.SPLIT_FILE).write_text((workspace.results_dir / paths.SPLIT_FILE).read_text())
        (tmp_path / "tiny.toml").write_text(text)
        experiment = load_experiment(tmp_path / "tiny.toml")
        options = {"num_cpus": 1} if executor == "ray" else {}
        records = run_experiment(experiment, ws, executor, **options)
        assert [r["spec"]["variant"] for r in records] == ["qcnn-lite", "gap"]
        summary = summarize_experiment(experiment, ws, n_bootstrap=20)
        assert summary["n_complete"] == 2 and set(summary["variants"]) == {"qcnn-lite", "gap"}
        runs = ws.results_dir / "experiments" / "tiny" / "runs"
        probabilities[executor] = {
            v: pd.read_csv(runs / f"{v}_seed0" / "predictions.csv").probability.to_numpy() for v in ("qcnn-lite", "gap")
        }
    for variant, local in probabilities["local"].items():
        np.testing.assert_allclose(probabilities["ray"][variant], local, atol=1e-5)


def test_the_cli_trains_switches_and_guards_finished_runs(workspace):
    import subprocess
    import sys

    def qcnn(*args: str) -> subprocess.CompletedProcess:
        base = [
            "--results-dir",
            str(workspace.results_dir),
            "--checkpoint-dir",
            str(workspace.checkpoint_dir),
            "--data-dir",
            str(workspace.data_dir),
            "--cache-dir",
            str(workspace.cache_dir),
            "--device",
            "cpu",
        ]
        return subprocess.run(
            [sys.executable, "-m", "qcnn", "train", *base, *args], capture_output=True, text=True, timeout=600
        )

    flags = [
        "--model",
        "qcnn",
        "--name",
        "cli",
        "--grid",
        "7",
        "--entangling",
        "none",
        "--reuploads",
        "1",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--precision",
        "fp32",
    ]
    first = qcnn(*flags)
    assert first.returncode == 0, first.stderr
    record = json.loads(
        (workspace.results_dir / "experiments" / "adhoc" / "runs" / "cli_seed0" / RECORD_FILE).read_text()
    )
    assert record["spec"]["model"] | {"grid": 7, "entangling": "none", "reuploads": 1} == record["spec"]["model"]
    refused = qcnn(*flags, "--lr-head", "0.001")
    assert refused.returncode == 2 and "lr_head" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert qcnn(*flags, "--lr-head", "0.001", "--force").returncode == 0
