"""What every benchmark script shares: where and how it records its measurements."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from qcnn.io import write_json


def save_result(result: dict, out: Path) -> None:
    """Write one benchmark's numbers as JSON (results/bench_*.json), atomically, and say where."""
    write_json(out, result, indent=2)
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
