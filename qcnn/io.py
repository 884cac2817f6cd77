"""Atomic writes: a result or checkpoint is either the old file or the complete new one, never half."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


_UMASK = os.umask(0)  # read once: setting the umask is process-wide, not safe to toggle per write
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would make shared results unreadable to others
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | Path, data: Any, indent: int | None = 1) -> Path:
    return write_text(path, json.dumps(data, indent=indent) + "\n")


def write_csv(frame: Any, path: str | Path) -> Path:
    """A pandas DataFrame, without its index."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def save_safetensors(
    tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> Path:
    from safetensors.torch import save_file

    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def resume_path(checkpoint_path: str | Path) -> Path:
    """Where a training loop keeps the state it needs to continue after an interruption."""
    path = Path(checkpoint_path)
    return path.with_name(path.name + ".resume.pt")


def save_resume(checkpoint_path: str | Path, identity: str, state: dict[str, Any]) -> Path:
    """Write the loop's state after an epoch, tagged with what it was made for, atomically."""
    payload = {"identity": identity, **state}
    return atomic_write(resume_path(checkpoint_path), lambda tmp: torch.save(payload, tmp))


def load_resume(checkpoint_path: str | Path, identity: str) -> dict[str, Any] | None:
    """The saved state if it was made for ``identity``; None (and the stale file kept aside) otherwise."""
    path = resume_path(checkpoint_path)
    if not path.is_file():
        return None
    state = torch.load(path, weights_only=True, map_location="cpu")
    if state.get("identity") != identity:
        print(f"{path} was made with other settings: starting over")
        return None
    return state
