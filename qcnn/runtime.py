"""Where and at what precision tensors run: the device choice and the precision context, in one place."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from qcnn.config import DEVICES
from qcnn.errors import ConfigError

CPU = torch.device("cpu")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an explicit device must be present."""
    if name not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}; got {name!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda: no CUDA GPU is visible to this PyTorch build (torch.cuda.is_available() is False)"
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--device mps: Apple's MPS backend is not available here")
    return torch.device(name)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The precision policy: ``bf16`` runs the backbone under bfloat16 autocast, ``fp32`` runs it in float32.

    The head (and the circuit simulation in it) always runs in float32: see ``full_precision``.
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ConfigError(f"precision must be fp32 or bf16; got {precision!r}")


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Suspend autocast: probabilities of 256 outcomes lose too much in bfloat16."""
    with torch.autocast(device.type, enabled=False):
        yield


def storage_dtype(precision: str) -> torch.dtype:
    """The dtype cached features are stored in for a precision."""
    return torch.bfloat16 if precision == "bf16" else torch.float32
