"""The controls matrix in words: what each variant's interval against the full QCNN says (torch-free).

Every sentence is derived from ``results/experiments/controls/summary.json``: a variant is "worse" or
"better" than the QCNN only when its interval (seeds and test lesions) excludes zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qcnn.constants import MACHINE_NOT_RECORDED

EXPERIMENT = "controls"
MOVES = {  # variant -> the move it removes (the study's "four moves")
    "frozen-backbone": "the partially unfrozen ResNet18",
    "grid-7": "the 14 × 14 grid",
    "no-reupload": "data re-uploading",
    "expval-8": "the 256-D projective measurement",
}
QUANTUM_INGREDIENTS = {"separable": "entanglement", "untrained-circuit": "training the circuit"}
CLASSICAL_STAND_INS = {
    "classical": "the classical 8 → 256 map",
    "fourier": "the Fourier surrogate",
    "gap-linear": "the plain pooled linear head",
}
DEAD_ENDS = {"bottleneck": "the Experiment 1 bottleneck (one global patch, 8 ⟨Z⟩)"}
FIRST_SEED_COLUMNS = {"vs_qcnn": "vs QCNN", "vs_classical": "vs classical"}
EFFECTS = ("worse", "better", "no clear difference", "not yet measured")


@dataclass(frozen=True)
class Effect:
    variant: str
    mean: float | None
    low: float | None
    high: float | None

    @property
    def kind(self) -> str:
        if self.mean is None or self.low is None or self.high is None or math.isnan(self.low):
            return "not yet measured"
        if self.high < 0:
            return "worse"
        if self.low > 0:
            return "better"
        return "no clear difference"

    def text(self) -> str:
        """The difference in percentage points (x 100, AUC included, as the study prints its deltas)."""
        if self.kind == "not yet measured":
            return "not yet measured (an interval needs at least two seeds)"
        return f"{100 * self.mean:+.1f} points [{100 * self.low:+.1f}, {100 * self.high:+.1f}]"


def effect(summary: dict, variant: str, metric: str, against: str = "vs_qcnn") -> Effect:
    block = summary.get("variants", {}).get(variant, {}).get(against)
    if not block:
        return Effect(variant, None, None, None)
    low, high = block["ci95"][metric]
    return Effect(variant, block["mean"][metric], low, high)


def first_seed_rows(summary: dict, order: list[str], metric: str) -> list[dict[str, str | int]]:
    """Per variant, its first seed's difference against the QCNN and the control with a lesion-only interval."""
    rows = []
    for variant in order:
        block = summary.get("variants", {}).get(variant, {})
        firsts = {label: block.get(key, {}).get("first_seed") for key, label in FIRST_SEED_COLUMNS.items()}
        seeds = [f["seed"] for f in firsts.values() if f]
        if not seeds:
            continue
        cells = {
            label: "—"
            if f is None
            else Effect(variant, f["difference"][metric], *f["ci95_lesions_only"][metric]).text()
            for label, f in firsts.items()
        }
        rows.append({"variant": variant, "seed": seeds[0], **cells})
    return rows


def join_names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def moves_answer(summary: dict, metric: str) -> str:
    """'Which of the four moves matter?', from the intervals of the move-removing variants."""
    groups: dict[str, list[str]] = {k: [] for k in EFFECTS}
    for variant, move in MOVES.items():
        groups[effect(summary, variant, metric).kind].append(move)
    parts = []
    if groups["worse"]:
        verb = "it matters" if len(groups["worse"]) == 1 else "they matter"
        parts.append(f"removing {join_names(groups['worse'])} makes the QCNN worse: {verb}")
    if groups["no clear difference"]:
        parts.append(f"removing {join_names(groups['no clear difference'])} makes no clear difference")
    if groups["better"]:
        parts.append(f"removing {join_names(groups['better'])} makes it better")
    if groups["not yet measured"]:
        parts.append(f"{join_names(groups['not yet measured'])}: not yet measured with two or more seeds")
    return "; ".join(parts) + "."


def quantum_answer(summary: dict, metric: str) -> str:
    """'Is it the quantum part?', from the quantum ingredients and the classical stand-ins."""
    stand_ins = {v: effect(summary, v, metric) for v in CLASSICAL_STAND_INS}
    ingredients = {v: effect(summary, v, metric) for v in QUANTUM_INGREDIENTS}
    measured = {v: e for v, e in stand_ins.items() if e.kind != "not yet measured"}
    sentences = []
    better = [CLASSICAL_STAND_INS[v] for v, e in measured.items() if e.kind == "better"]
    level = [CLASSICAL_STAND_INS[v] for v, e in measured.items() if e.kind == "no clear difference"]
    worse = [CLASSICAL_STAND_INS[v] for v, e in measured.items() if e.kind == "worse"]
    if better:
        sentences.append(f"No: {join_names(better)} {'does' if len(better) == 1 else 'do'} better than the circuit.")
    elif level and not worse:
        sentences.append(
            f"No evidence that it is: {join_names(level)} {'does' if len(level) == 1 else 'do'} as well "
            "as the circuit (no clear difference)."
        )
    elif worse and not level:
        sentences.append(f"The circuit beats every classical stand-in measured ({join_names(worse)}).")
    elif worse:
        sentences.append(f"Mixed: the circuit beats {join_names(worse)} but not {join_names(level)}.")
    else:
        sentences.append("The classical stand-ins are not yet measured with two or more seeds.")
    for variant, ingredient in QUANTUM_INGREDIENTS.items():
        kind = ingredients[variant].kind
        if kind == "worse":
            sentences.append(f"Without {ingredient} the QCNN is worse: {ingredient} matters.")
        elif kind == "no clear difference":
            sentences.append(f"Without {ingredient} the QCNN is not clearly worse: no clear difference.")
        elif kind == "better":
            sentences.append(f"Without {ingredient} it does better.")
    return " ".join(sentences)


def machines(summary: dict, order: list[str]) -> tuple[list[dict[str, str | int]], str]:
    """Where each run trained (variant, seed, machine) and a sentence on what that allows for the cost column."""
    rows = [
        {"variant": v, "seed": int(seed), "machine": machine}
        for v in order
        for seed, machine in summary["variants"][v].get("machines", {}).items()
    ]
    if not rows:
        return rows, ""
    known = {r["machine"] for r in rows} - {MACHINE_NOT_RECORDED}
    unknown = sum(r["machine"] == MACHINE_NOT_RECORDED for r in rows)
    if unknown:
        note = (
            f"{unknown} of {len(rows)} runs finished before runs recorded their machine, so whether they all "
            "trained on one is not known: compare seconds per epoch with care."
        )
    elif len(known) > 1:
        note = f"These runs trained on {len(known)} machines: compare seconds per epoch within one machine only."
    else:
        note = "Every run trained on the same machine: seconds per epoch compare directly."
    return rows, note


def progress(summary: dict) -> tuple[int, int]:
    return int(summary.get("n_complete", 0)), int(summary.get("n_runs", 0))


ANALOGUES = {  # the study's experiment -> its nearest variant in the controls matrix
    1: "bottleneck",
    2: None,
    3: "expval-8",
    4: "qcnn",
}
NOT_REPRODUCED = {
    2: "a quanvolutional 1 × 1 filter inside a shallow CNN is a different architecture from this "
    "project's ResNet18 head, and the study itself found it identical to its control (2.1) or "
    "worse (2.2, 2.3): not reproduced"
}


def analogue_text(summary: dict | None, number: int) -> str:
    """The nearest reproduced analogue of one of the study's experiments, with its measured AUC."""
    variant = ANALOGUES.get(number)
    if variant is None:
        return NOT_REPRODUCED.get(number, "not reproduced")
    block = (summary or {}).get("variants", {}).get(variant)
    if not block:
        return f"`{variant}` in the controls matrix: not yet measured"
    seeds = len(block["seeds"])
    text = (
        f"`{variant}` in the controls matrix: test AUC {block['mean']['auc']:.3f} "
        f"({seeds} seed{'s' if seeds > 1 else ''})"
    )
    if variant != "qcnn":
        text += f"; against the full QCNN {effect(summary, variant, 'auc').text()}"
    return text
