"""The command line as a user meets it: clear messages, exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from qcnn import paths


def qcnn(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qcnn", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=paths.REPO_ROOT,
    )


def assert_clean_failure(result: subprocess.CompletedProcess, *phrases: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for phrase in phrases:
        assert phrase in result.stderr


def test_missing_data_dir_says_how_to_set_it(tmp_path):
    assert_clean_failure(
        qcnn("split", "--results-dir", str(tmp_path), env={"QCNN_DATA_DIR": ""}), "QCNN_DATA_DIR", "--data-dir"
    )
    assert_clean_failure(qcnn("split", "--data-dir", str(tmp_path / "nope")), "not found", "nope")
    assert not (tmp_path / "split.csv").exists()


def test_steps_out_of_order_name_the_command_to_run_first(tmp_path, data_dir):
    assert_clean_failure(
        qcnn("train", "--model", "qcnn", "--results-dir", str(tmp_path), "--data-dir", str(data_dir)), "qcnn split"
    )
    assert_clean_failure(qcnn("evaluate", "--results-dir", str(tmp_path), "--data-dir", str(data_dir)), "qcnn train")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / paths.SPLIT_FILE).write_text((paths.REPO_ROOT / "results" / paths.SPLIT_FILE).read_text())
    assert_clean_failure(
        qcnn(
            "train",
            "--model",
            "qcnn",
            "--results-dir",
            str(tmp_path / "results"),
            "--checkpoint-dir",
            str(tmp_path / "nothing"),
            "--data-dir",
            str(data_dir),
        ),
        "qcnn pretrain-backbone",
    )


@pytest.mark.parametrize(
    "flags, phrase",
    [
        (["--batch-size", "0"], "batch_size"),
        (["--lr-head", "-1"], "lr_head"),
        (["--fraction", "1.5"], "fraction"),
        (["--grid", "5"], "grid"),
        (["--outcome-map", "gap", "--measurement", "expval"], "expval"),
    ],
)
def test_bad_flags_get_one_line_before_any_work(tmp_path, flags, phrase):
    assert_clean_failure(qcnn("train", "--model", "qcnn", "--results-dir", str(tmp_path), *flags), phrase)


def test_sweep_names_a_bad_experiment_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("seeds = [0]\n[variants.x]\nmodel = { gird = 7 }\n")
    assert_clean_failure(qcnn("sweep", str(bad), "--results-dir", str(tmp_path)), "gird", "variants.x")
    assert_clean_failure(qcnn("sweep", str(tmp_path / "none.toml")), "not found")


@pytest.mark.parametrize("flag, value", [("--num-cpus", "-1"), ("--num-gpus", "nan")])
def test_sweep_refuses_impossible_ray_resources_before_starting_ray(tmp_path, flag, value):
    result = qcnn(
        "sweep", "experiments/controls.toml", "--executor", "ray", flag, value, "--results-dir", str(tmp_path)
    )
    assert_clean_failure(result, flag, ">= 0")
    assert not (tmp_path / "experiments").exists(), "nothing was run"


def test_imagenet_backbone_offline_fails_with_advice(tmp_path):
    result = qcnn(
        "pretrain-backbone",
        "--backbone",
        "imagenet",
        "--checkpoint-dir",
        str(tmp_path),
        env={"TORCH_HOME": str(tmp_path / "torch")},
    )
    if result.returncode == 0:
        pytest.skip("this machine can download torchvision's weights")
    assert_clean_failure(result, "--backbone domain")


def test_split_command_reproduces_the_committed_split(tmp_path, data_dir):
    committed = paths.REPO_ROOT / "results" / paths.SPLIT_FILE
    result = qcnn("split", "--data-dir", str(data_dir), "--results-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert pd.read_csv(tmp_path / paths.SPLIT_FILE).equals(pd.read_csv(committed))


def test_every_knob_is_a_flag():
    help_text = qcnn("train", "--help").stdout
    for flag in (
        "--epochs",
        "--batch-size",
        "--lr-layer3",
        "--lr-head",
        "--weight-decay",
        "--augment",
        "--precision",
        "--seed",
        "--model",
        "--device",
        "--cache-dir",
        "--outcome-map",
        "--n-layers",
        "--reuploads",
        "--entangling",
        "--measurement",
        "--train-circuit",
        "--backend",
        "--grid",
        "--train-layer3",
        "--fraction",
        "--split",
    ):
        assert flag in help_text


def test_committed_experiment_files_parse_to_their_intended_configs():
    from qcnn.config import MODEL_PRESETS, ModelConfig
    from qcnn.sweep import load_experiment

    controls = load_experiment(paths.REPO_ROOT / "experiments" / "controls.toml")
    assert controls.seeds == (0, 1, 2) and len(controls.variants) == 11 and len(controls.specs()) == 33
    model = {v.name: v.model for v in controls.variants}
    assert model["qcnn"] == MODEL_PRESETS["qcnn"] and model["classical"] == MODEL_PRESETS["classical"]
    expected = {
        "frozen-backbone": ModelConfig(train_layer3=False),
        "grid-7": ModelConfig(grid=7),
        "no-reupload": ModelConfig(reuploads=1),
        "expval-8": ModelConfig(measurement="expval"),
        "bottleneck": ModelConfig(grid=1, measurement="expval"),
        "separable": ModelConfig(entangling="none"),
        "untrained-circuit": ModelConfig(train_circuit=False),
        "fourier": ModelConfig(outcome_map="fourier"),
        "gap-linear": ModelConfig(outcome_map="gap"),
    }
    for name, config in expected.items():
        assert model[name] == config, name


def test_the_learning_curves_full_data_point_is_the_controls_baseline_pair():
    from qcnn.runs import Workspace, canonical, run_paths
    from qcnn.split import read_split
    from qcnn.sweep import load_experiment

    lowdata = load_experiment(paths.REPO_ROOT / "experiments" / "lowdata.toml")
    controls = load_experiment(paths.REPO_ROOT / "experiments" / "controls.toml")
    assert lowdata.fractions == (0.0625, 0.125, 0.25, 0.5, 1.0) and len(lowdata.specs()) == 30
    split = read_split(paths.REPO_ROOT / "results" / paths.SPLIT_FILE)
    ws = Workspace(paths.REPO_ROOT / "results", paths.REPO_ROOT / "checkpoints")
    baseline = {(s.variant, s.seed): canonical(s, split) for s in controls.specs() if s.variant in paths.MODEL_KINDS}
    for spec in lowdata.specs():
        assert spec.train.precision == "fp32"
        if spec.fraction == 1:
            assert canonical(spec, split) == baseline[(spec.variant, spec.seed)], "reused, not trained twice"
            assert "results/runs/" not in str(run_paths(canonical(spec, split), ws, "lowdata")[0]), "bf16 runs kept"
        else:
            binds = spec.fraction <= 1 / 8  # 30 epochs of 1/4 (20 steps each) already make 600 steps
            assert canonical(spec, split).train.min_steps == (600 if binds else 0)
            assert "experiments/lowdata" in str(run_paths(canonical(spec, split), ws, "lowdata")[0])
    image = load_experiment(paths.REPO_ROOT / "experiments" / "imagesplit.toml")
    assert {s.split for s in image.specs()} == {"image"} and len(image.specs()) == 6


def test_an_experiment_never_takes_over_a_reproduction_folder_trained_otherwise(tmp_path):
    """The controls train their baseline pair in fp32; the reproduction's bf16 runs keep their folders."""
    import json
    from dataclasses import replace

    from qcnn.config import MODEL_PRESETS, RunSpec
    from qcnn.runs import RECORD_FILE, Workspace, run_paths

    ws = Workspace(tmp_path / "results", tmp_path / "checkpoints")
    bf16 = RunSpec("qcnn", 1, MODEL_PRESETS["qcnn"])
    fp32 = replace(bf16, train=replace(bf16.train, precision="fp32"))
    reproduction = ws.results_dir / "runs" / "qcnn_seed1"
    assert run_paths(fp32, ws, "controls")[0] == reproduction, "an empty folder is free"

    reproduction.mkdir(parents=True)
    (reproduction / "config.json").write_text(json.dumps({**bf16.to_json(), "epochs_run": 30}))
    assert run_paths(bf16, ws, "controls")[0] == reproduction, "a run from before records counts by its config"
    assert run_paths(fp32, ws, "controls")[0] == ws.results_dir / "experiments" / "controls" / "runs" / "qcnn_seed1"

    (reproduction / RECORD_FILE).write_text(json.dumps({"spec": fp32.to_json()}))
    assert run_paths(fp32, ws, "controls")[0] == reproduction, "the record decides once there is one"
    assert "experiments" in str(run_paths(bf16, ws, "controls")[0])


def test_an_identical_run_finished_by_another_experiment_is_reused(tmp_path):
    import json
    from dataclasses import replace

    from qcnn.config import MODEL_PRESETS, RunSpec
    from qcnn.runs import RECORD_FILE, Workspace, run_paths

    ws = Workspace(tmp_path / "results", tmp_path / "checkpoints")
    bf16 = RunSpec("qcnn", 0, MODEL_PRESETS["qcnn"])
    fp32 = replace(bf16, train=replace(bf16.train, precision="fp32"))
    (ws.results_dir / "runs" / "qcnn_seed0").mkdir(parents=True)
    (ws.results_dir / "runs" / "qcnn_seed0" / RECORD_FILE).write_text(json.dumps({"spec": bf16.to_json()}))
    controls = ws.results_dir / "experiments" / "controls" / "runs" / "qcnn_seed0"
    assert run_paths(fp32, ws, "lowdata")[0] == ws.results_dir / "experiments" / "lowdata" / "runs" / "qcnn_seed0"

    controls.mkdir(parents=True)  # training, not finished: not reused
    assert "lowdata" in str(run_paths(fp32, ws, "lowdata")[0])
    (controls / RECORD_FILE).write_text(json.dumps({"spec": fp32.to_json()}))
    assert run_paths(fp32, ws, "lowdata") == (
        controls,
        ws.checkpoint_dir / "experiments" / "controls" / "runs" / "qcnn_seed0.safetensors",
    )
    grid7 = replace(fp32, variant="grid-7", model=replace(fp32.model, grid=7))
    assert "lowdata" in str(run_paths(grid7, ws, "lowdata")[0]), "only the very same spec is reused"


def test_the_command_line_answers_without_importing_torch():
    """`qcnn --help`, a mistyped flag and `qcnn app`'s start-up must not wait seconds for torch's import."""
    code = "import sys; from qcnn.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=paths.REPO_ROOT
    )
    assert result.stdout.strip() == "False", result.stderr


def test_an_experiment_names_its_backbone(tmp_path):
    from qcnn.errors import ConfigError
    from qcnn.sweep import load_experiment

    path = tmp_path / "backbone24.toml"
    path.write_text('backbone = "backbone24.safetensors"\nseeds = [0]\n[variants.qcnn]\n')
    (spec,) = load_experiment(path).specs()
    assert spec.backbone == "backbone24.safetensors" and spec.name == "qcnn_seed0_backbone24"
    path.write_text('backbone = "backbone24.pt"\nseeds = [0]\n[variants.qcnn]\n')
    with pytest.raises(ConfigError, match="backbone24.toml: backbone must be a .safetensors file"):
        load_experiment(path)
