"""The command line as a user meets it: clear messages, exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from qcnn import paths


def qcnn(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qcnn", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, cwd=paths.REPO_ROOT)


def assert_clean_failure(result: subprocess.CompletedProcess, *phrases: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for phrase in phrases:
        assert phrase in result.stderr


def test_missing_data_dir_says_how_to_set_it(tmp_path):
    assert_clean_failure(qcnn("split", "--results-dir", str(tmp_path), env={"QCNN_DATA_DIR": ""}),
                         "QCNN_DATA_DIR", "--data-dir")
    assert_clean_failure(qcnn("split", "--data-dir", str(tmp_path / "nope")), "not found", "nope")
    assert not (tmp_path / "split.csv").exists()


def test_steps_out_of_order_name_the_command_to_run_first(tmp_path, data_dir):
    assert_clean_failure(qcnn("train", "--model", "qcnn", "--results-dir", str(tmp_path), "--data-dir",
                              str(data_dir)), "qcnn split")
    assert_clean_failure(qcnn("evaluate", "--results-dir", str(tmp_path), "--data-dir", str(data_dir)),
                         "qcnn split")


def test_imagenet_backbone_offline_fails_with_advice(tmp_path):
    result = qcnn("pretrain-backbone", "--backbone", "imagenet", "--checkpoint-dir", str(tmp_path),
                  env={"TORCH_HOME": str(tmp_path / "torch")})
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
    for flag in ("--epochs", "--batch-size", "--lr-layer3", "--lr-head", "--weight-decay", "--augment", "--bf16",
                 "--seed", "--model"):
        assert flag in help_text
