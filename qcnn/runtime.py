"""Where and at what precision tensors run: the device choice and the precision context, in one place."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from pathlib import Path

import torch

from qcnn.config import DEVICES
from qcnn.constants import MACHINE_NOT_RECORDED
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


CPUINFO = Path("/proc/cpuinfo")
SIMD_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def machine(device: torch.device, cpuinfo: Path = CPUINFO) -> dict[str, object]:
    """Where a run trained, recorded with it: seconds per epoch mean little without the machine.

    ``simd``: the vector extensions that set CPU training speed (a virtual machine's CPU name can be
    as vague as "AMD EPYC"; AVX-512 BF16, for one, separates a Zen 4 from a Zen 3)."""
    name, flags = _cpu_info(cpuinfo)
    record: dict[str, object] = {
        "cpu": name,
        "simd": [f for f in SIMD_FLAGS if f in flags],
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
    return record


def _cpu_info(cpuinfo: Path) -> tuple[str, set[str]]:
    """The CPU's name and flags (Linux: /proc/cpuinfo); elsewhere what ``platform`` knows, no flags."""
    name, flags = platform.processor() or platform.machine(), set()
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    return name, flags


def describe_machine(record: dict[str, object] | None) -> str:
    """A completion record's machine in a few words, e.g. "AMD EPYC (avx2, avx512f, avx512_bf16), 2 cores"."""
    if not record:
        return MACHINE_NOT_RECORDED
    simd = f" ({', '.join(record['simd'])})" if record.get("simd") else ""
    text = f"{record['cpu']}{simd}, {record['cpu_count']} cores, {record['torch_threads']} torch threads"
    return f"{record['gpu']}; {text}" if record.get("gpu") else text
