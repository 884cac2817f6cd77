"""What every benchmark script shares: where and how it records its measurements."""

from __future__ import annotations

import json
from pathlib import Path


def save_result(result: dict, out: Path) -> None:
    """Write one benchmark's numbers as JSON (results/bench_*.json) and say where."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
