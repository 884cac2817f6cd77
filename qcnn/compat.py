"""Make torchvision importable next to the CPU-only torch wheel.

PyPI's torchvision 0.28.0 is a CUDA build whose compiled ``_C`` library cannot load against
the CPU torch 2.13.0; ``import torchvision`` then dies registering fake kernels for ops that
were never defined. Defining the two op schemas first lets models, transforms and datasets
work (``torchvision.ops.nms`` and ``torchvision.io.decode_jpeg`` stay unavailable; the project
decodes images with Pillow). Import this module before torchvision; it is a no-op where
torchvision's own compiled ops load.
"""

from __future__ import annotations

import glob
import importlib.util
import os

import torch

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor",
)
_library: torch.library.Library | None = None  # kept alive: the schemas live as long as it does


def _op_defined(name: str) -> bool:
    try:
        getattr(torch.ops.torchvision, name)
    except (AttributeError, RuntimeError):
        return False
    return True


def _load_compiled_ops() -> bool:
    """Try torchvision's own ``_C`` library without importing torchvision itself."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    for path in glob.glob(os.path.join(spec.submodule_search_locations[0], "_C*.so")):
        try:
            torch.ops.load_library(path)
        except (OSError, RuntimeError):
            return False
        return _op_defined("nms")
    return False


def patch_torchvision() -> bool:
    """Define the missing op schemas if needed. Returns True when it had to patch."""
    global _library
    if _library is not None or _op_defined("nms") or _load_compiled_ops():
        return False
    _library = torch.library.Library("torchvision", "DEF")  # noqa: TOR901 - intentional
    for schema in _SCHEMAS:
        _library.define(schema)
    return True


patch_torchvision()
