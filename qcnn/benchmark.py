"""What every benchmark script shares: where and how it records its measurements."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path


def save_result(result: dict, out: Path) -> None:
    """Write one benchmark's numbers as JSON (results/bench_*.json) and say where."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


def run_benchmark(
    parse_args: Callable[[list[str] | None], argparse.Namespace],
    run: Callable[[argparse.Namespace], dict],
    report: Callable[[dict], str],
    argv: list[str] | None = None,
) -> dict:
    """The life of a benchmark script: flags, measure, print the report, save the numbers."""
    args = parse_args(argv)
    result = run(args)
    print(report(result))
    save_result(result, args.out)
    return result
