"""Experiments: a TOML file of variants x seeds (x training-set fractions x split protocols), run by an executor.

    description = "..."
    seeds = [0, 1, 2]            # fixed before any run
    fractions = [1.0]            # optional: of the train pool, nested lesion subsets
    splits = ["lesion"]          # optional: lesion | image
    backbone = "backbone.safetensors"  # optional: a pretrained backbone in the checkpoint folder
    [base.model]                 # optional overrides of ModelConfig for every variant
    [base.train]                 # optional overrides of TrainConfig for every variant
    [variants.NAME]              # one table per variant
    description = "..."
    model = { grid = 7 }         # its overrides on top of the base
    train = { epochs = 10 }

``run_experiment`` executes every run (``local``: in this process, one after the other; ``ray``: each
run a Ray task with its CPUs/GPUs, on a local instance or an existing cluster) and then writes the
experiment's ``summary.json``. Runs resume by their completion records (``qcnn.runs``).
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qcnn.config import EXECUTORS, ModelConfig, RunSpec, TrainConfig, config_from
from qcnn.errors import ConfigError, QcnnError
from qcnn.paths import BACKBONE_FILE
from qcnn.runs import Workspace, execute_run

BASELINE, CONTROL = "qcnn", "classical"  # every variant is compared against both
_TOP_KEYS = {"description", "seeds", "fractions", "splits", "backbone", "base", "variants"}


@dataclass(frozen=True)
class Variant:
    name: str
    model: ModelConfig
    train: TrainConfig
    description: str = ""


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    seeds: tuple[int, ...]
    variants: tuple[Variant, ...]
    fractions: tuple[float, ...] = (1.0,)
    splits: tuple[str, ...] = ("lesion",)
    backbone: str = BACKBONE_FILE

    def specs(self) -> list[RunSpec]:
        """Every run, seed-major: each seed's comparison is complete before the next seed starts."""
        return [
            RunSpec(v.name, seed, v.model, v.train, fraction, split, self.backbone)
            for seed in self.seeds
            for split in self.splits
            for fraction in self.fractions
            for v in self.variants
        ]

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)


def load_experiment(path: str | Path) -> Experiment:
    """Parse and validate an experiment file; every mistake is a one-line ``ConfigError``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"experiment file {path} not found (experiments live in experiments/*.toml)")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from err
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_TOP_KEYS))}")
    if not data.get("seeds") or not data.get("variants"):
        raise ConfigError(f"{path} must list seeds and at least one [variants.NAME] table")
    base = data.get("base", {})
    base_model = _section(path, "base.model", ModelConfig, base.get("model", {}), ModelConfig())
    base_train = _section(path, "base.train", TrainConfig, base.get("train", {}), TrainConfig())
    variants = []
    for name, table in data["variants"].items():
        extra = sorted(set(table) - {"description", "model", "train"})
        if extra:
            raise ConfigError(f"{path}: variant {name!r} has unknown key(s) {', '.join(extra)}")
        variants.append(
            Variant(
                name,
                _section(path, f"variants.{name}.model", ModelConfig, table.get("model", {}), base_model),
                _section(path, f"variants.{name}.train", TrainConfig, table.get("train", {}), base_train),
                table.get("description", ""),
            )
        )
    seeds = tuple(int(s) for s in data["seeds"])
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{path}: seeds repeat")
    experiment = Experiment(
        path.stem,
        data.get("description", ""),
        seeds,
        tuple(variants),
        tuple(float(f) for f in data.get("fractions", [1.0])),
        tuple(data.get("splits", ["lesion"])),
        str(data.get("backbone", BACKBONE_FILE)),
    )
    try:
        experiment.specs()  # validates fractions, splits and the backbone's name
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    return experiment


def _section(path: Path, where: str, cls: type, values: dict[str, Any], base: Any) -> Any:
    try:
        return config_from(cls, values, base)
    except ConfigError as err:
        raise ConfigError(f"{path} [{where}]: {err}") from err


def run_local(specs: list[RunSpec], ws: Workspace, experiment: str, force: bool = False) -> list[dict]:
    records, start = [], time.perf_counter()
    for i, spec in enumerate(specs, 1):
        print(f"[{i}/{len(specs)}] {spec.name} ({time.perf_counter() - start:.0f} s elapsed)", flush=True)
        records.append(execute_run(spec, ws, experiment, force))
    return records


def run_ray(
    specs: list[RunSpec],
    ws: Workspace,
    experiment: str,
    force: bool = False,
    address: str | None = None,
    num_cpus: float = 1,
    num_gpus: float = 0,
) -> list[dict]:
    """Each run a Ray task; Ray, not this code, decides where and when it runs."""
    try:
        import ray
    except ImportError as err:
        raise ConfigError("--executor ray needs Ray: pip install 'ray>=2.9'") from err
    ray.init(
        address=address, include_dashboard=False, ignore_reinit_error=True, log_to_driver=True, logging_level="WARNING"
    )
    task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(execute_run)
    refs = [task.remote(spec, ws, experiment, force) for spec in specs]
    names = {ref: spec.name for ref, spec in zip(refs, specs, strict=True)}
    pending, start = list(refs), time.perf_counter()
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done[0])
            print(
                f"[{len(refs) - len(pending)}/{len(refs)}] {names[done[0]]} finished "
                f"({time.perf_counter() - start:.0f} s elapsed)",
                flush=True,
            )
        return ray.get(refs)
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, QcnnError):
            raise err.cause from None
        raise


def run_experiment(
    experiment: Experiment, ws: Workspace, executor: str = "local", force: bool = False, **ray_options: Any
) -> list[dict]:
    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}; got {executor!r}")
    specs = experiment.specs()
    if executor == "local":
        return run_local(specs, ws, experiment.name, force)
    return run_ray(specs, ws, experiment.name, force, **ray_options)
