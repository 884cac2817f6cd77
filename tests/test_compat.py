"""The torchvision remedy: PyPI's CUDA torchvision must import next to the CPU torch wheel.

The subprocess tests matter most: the remedy only works if it runs before torchvision's first
import, which only a fresh interpreter shows (this one imported ``qcnn.compat`` in conftest).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import torch

import qcnn.compat

REPO_ROOT = Path(__file__).resolve().parents[1]


def _run_fresh(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter from the repository root, so ``qcnn`` is importable."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def test_torchvision_models_build_after_the_remedy() -> None:
    import torchvision

    model = torchvision.models.resnet18(weights=None).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 1000)


def test_patch_is_idempotent() -> None:
    """The import already ran it; a second schema definition would raise, so it must not try."""
    assert qcnn.compat.patch_torchvision() is False
    assert qcnn.compat.patch_torchvision() is False
    assert qcnn.compat._op_defined("nms")


def test_fresh_interpreter_imports_backbone() -> None:
    result = _run_fresh("""
        import qcnn.backbone
        print(type(qcnn.backbone.Backbone()).__name__)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Backbone"


def test_no_patch_when_the_op_already_exists() -> None:
    """With nms defined beforehand (as when torchvision's compiled ops load), it defines nothing."""
    result = _run_fresh("""
        import torch

        own = torch.library.Library("torchvision", "DEF")
        own.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")

        import qcnn.compat

        assert qcnn.compat._library is None, "patched at import"
        assert qcnn.compat.patch_torchvision() is False
        assert qcnn.compat._library is None, "patched on call"
        assert not qcnn.compat._op_defined("qnms"), "defined qnms"
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
