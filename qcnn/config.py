"""What a run is: the model (`ModelConfig`), how it is trained (`TrainConfig`), and on what (`RunSpec`).

Each field is a CLI flag (``qcnn train --help``), is written to the run's ``config.json`` and to its
checkpoint's metadata, and is what ``load_model`` rebuilds the model from. The defaults are the
reproduction's QCNN; ``MODEL_PRESETS`` names the reproduction's pair.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from qcnn.errors import ConfigError
from qcnn.paths import BACKBONE_FILE

OUTCOME_MAPS = ("quantum", "classical", "fourier", "gap")
ENTANGLING = ("strong", "none")
MEASUREMENTS = ("probs", "expval")
GRIDS = (14, 7, 1)
BACKENDS = ("torch", "pennylane")
PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda", "mps")
EXECUTORS = ("local", "ray")  # how a sweep runs: in this process, or each run a Ray task
SPLIT_UNITS = ("lesion", "image")


def _choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, allowed))}; got {value!r}")


def _positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """The architecture; every "move" of the study and every sceptic's control is one field."""

    outcome_map: str = field(
        default="quantum", metadata={"help": "quantum | classical (softmax(Linear(8->256))) | fourier | gap"}
    )
    n_layers: int = field(default=2, metadata={"help": "StronglyEntanglingLayers per block"})
    reuploads: int = field(default=2, metadata={"help": "how often the angles are encoded (each followed by a block)"})
    entangling: str = field(default="strong", metadata={"help": "strong (CNOT ring) | none (a product circuit)"})
    measurement: str = field(
        default="probs", metadata={"help": "probs (256 outcome probabilities) | expval (8 <Z> values)"}
    )
    train_circuit: bool = field(
        default=True, metadata={"help": "false keeps the circuit at its seeded initial weights"}
    )
    backend: str = field(default="torch", metadata={"help": "torch (the project's simulator) | pennylane"})
    pennylane_device: str = field(
        default="default.qubit", metadata={"help": "the PennyLane device of backend pennylane"}
    )
    grid: int = field(
        default=14, metadata={"help": "14 (196 patches) | 7 (2x2 average pooling, 49) | 1 (one global patch)"}
    )
    train_layer3: bool = field(
        default=True, metadata={"help": "false freezes the whole backbone (layer3's outputs are cached)"}
    )
    fourier_features: int = field(
        default=128, metadata={"help": "D integer frequency vectors of the fourier surrogate"}
    )

    def __post_init__(self) -> None:
        _choice("outcome_map", self.outcome_map, OUTCOME_MAPS)
        _choice("entangling", self.entangling, ENTANGLING)
        _choice("measurement", self.measurement, MEASUREMENTS)
        _choice("backend", self.backend, BACKENDS)
        _choice("grid", self.grid, GRIDS)
        _positive("n_layers", self.n_layers)
        _positive("reuploads", self.reuploads)
        _positive("fourier_features", self.fourier_features)
        if self.measurement == "expval" and self.outcome_map not in ("quantum", "classical"):
            raise ConfigError(
                f"measurement 'expval' needs an outcome distribution; outcome_map {self.outcome_map!r} has none"
            )

    @property
    def is_quantum(self) -> bool:
        return self.outcome_map == "quantum"


MODEL_PRESETS = {"qcnn": ModelConfig(), "classical": ModelConfig(outcome_map="classical")}


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation; the study's protocol with this project's schedule (see README)."""

    epochs: int = field(default=30, metadata={"help": "training epochs (the best validation AUC is kept)"})
    min_steps: int = field(
        default=0,
        metadata={"help": "at least this many optimisation steps: epochs = max(epochs, ceil(min_steps / steps))"},
    )
    batch_size: int = field(default=16, metadata={"help": "images per optimisation step"})
    lr_layer3: float = field(default=1e-4, metadata={"help": "peak learning rate of layer3 (one-cycle schedule)"})
    lr_head: float = field(default=3e-3, metadata={"help": "peak learning rate of the head"})
    weight_decay: float = field(default=1e-2, metadata={"help": "AdamW weight decay (not on biases or circuit angles)"})
    augment: bool = field(default=True, metadata={"help": "the 8 dihedral variants of every training image"})
    precision: str = field(
        default="bf16", metadata={"help": "bf16: layer3 under autocast (the head always runs in float32) | fp32"}
    )

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            _positive(name, getattr(self, name))
        for name in ("lr_layer3", "lr_head"):
            if not getattr(self, name) > 0 or not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{name} must be a positive number, got {getattr(self, name)}")
        if self.min_steps < 0:
            raise ConfigError(f"min_steps must be >= 0, got {self.min_steps}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        _choice("precision", self.precision, PRECISIONS)

    def epochs_for(self, steps_per_epoch: int) -> int:
        return max(self.epochs, math.ceil(self.min_steps / steps_per_epoch))


@dataclass(frozen=True)
class RunSpec:
    """One training run: a named variant at one seed, training-set fraction and split protocol."""

    variant: str
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    fraction: float = field(
        default=1.0, metadata={"help": "of the train pool, nested subsets drawn by lesion (qcnn.split.train_subset)"}
    )
    split: str = field(
        default="lesion", metadata={"help": "the split protocol: lesion-disjoint (results/split.csv) or image-level"}
    )
    backbone: str = field(
        default=BACKBONE_FILE, metadata={"help": "the pretrained backbone, a file in the checkpoint folder"}
    )

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ConfigError(f"fraction must be in (0, 1], got {self.fraction}")
        _choice("split", self.split, SPLIT_UNITS)
        if not self.backbone.endswith(".safetensors") or "/" in self.backbone:
            raise ConfigError(f"backbone must be a .safetensors file in the checkpoint folder, got {self.backbone!r}")

    @property
    def name(self) -> str:
        """The run's folder name: variant, seed, and the fraction/split/backbone when they are not the default."""
        name = f"{self.variant}_seed{self.seed}"
        if self.fraction != 1:
            name += f"_frac{self.fraction:g}"
        if self.split != "lesion":
            name += f"_{self.split}split"
        if self.backbone != BACKBONE_FILE:
            name += f"_{self.backbone.removesuffix('.safetensors')}"
        return name

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same run (the variant's name does not). The backbone is named only when
        it is not the default, so records written before it was a switch still describe their runs."""
        identity = {
            "seed": self.seed,
            "model": asdict(self.model),
            "train": asdict(self.train),
            "fraction": self.fraction,
            "split": self.split,
        }
        if self.backbone != BACKBONE_FILE:
            identity["backbone"] = self.backbone
        return identity

    def to_json(self) -> dict[str, Any]:
        return {"variant": self.variant, **self.identity()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSpec:
        return cls(
            variant=data["variant"],
            seed=int(data["seed"]),
            model=config_from(ModelConfig, data["model"]),
            train=config_from(TrainConfig, data["train"]),
            fraction=float(data["fraction"]),
            split=data["split"],
            backbone=data.get("backbone", BACKBONE_FILE),
        )


def config_from(cls: type, values: dict[str, Any], base: Any | None = None) -> Any:
    """A config dataclass from a dict, naming any unknown key (a typo in an experiment file)."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return replace(base, **values) if base is not None else cls(**values)


def differences(asked: dict[str, Any], found: dict[str, Any], prefix: str = "") -> list[str]:
    """Human-readable 'key: found -> asked' lines between two nested dicts."""
    out = []
    for key in sorted(set(asked) | set(found)):
        a, f = asked.get(key), found.get(key)
        if isinstance(a, dict) and isinstance(f, dict):
            out += differences(a, f, f"{prefix}{key}.")
        elif a != f:
            out.append(f"{prefix}{key}: {json.dumps(f)} -> {json.dumps(a)}")
    return out


@dataclass(frozen=True)
class PretrainConfig:
    """The domain backbone's pretraining on the benign pool (ImageNet weights cannot be fetched here)."""

    epochs: int = field(default=8, metadata={"help": "pretraining epochs"})
    batch_size: int = field(default=32, metadata={"help": "images per step"})
    lr: float = field(default=2e-3, metadata={"help": "peak learning rate (one-cycle)"})
    weight_decay: float = field(default=0.05, metadata={"help": "AdamW weight decay"})
    holdout_fraction: float = field(default=0.1, metadata={"help": "lesions held out to choose the epoch"})
    seed: int = field(default=0, metadata={"help": "the pretraining's seed"})
    precision: str = field(default="bf16", metadata={"help": "bf16 (autocast) | fp32"})

    def __post_init__(self) -> None:
        _positive("epochs", self.epochs)
        _positive("batch_size", self.batch_size)
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if not 0 < self.holdout_fraction < 1:
            raise ConfigError(f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        _choice("precision", self.precision, PRECISIONS)
