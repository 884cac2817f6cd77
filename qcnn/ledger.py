"""The claim ledger: every claim of the study, what it reports, what this project measured, a status.

``build_ledger(results_dir)`` reads only result files (summary.json, referee.json, the runs'
history.csv, the controls experiment's summary.json when it exists) and returns the ledger;
``write_ledger`` writes results/ledger.json and the README's Markdown tables between marker
comments. Each claim is split into *parts*, each a signed difference with a 95 % interval:

- a part **supports** the claim when its interval lies entirely on the claimed side of its
  reference value, **opposes** it when it lies entirely on the other side, is **undefined** when it has
  no interval (fewer than 2 seeds finished: no evidence either way), else is **inconclusive**;
- the claim's status is ``not yet measured`` when the files it needs do not exist or any part is
  undefined, else ``reproduced`` when every part supports it, ``partly`` when some but not all do,
  ``contradicted`` when none does and at least one opposes, and ``not reproduced`` when all parts are
  inconclusive.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from qcnn import paths, study
from qcnn.constants import MODEL_KINDS
from qcnn.errors import ConfigError, MissingFileError, QcnnError
from qcnn.stats import seed_lesion_interval

LEDGER_FILE = "ledger.json"
CONTROLS_SUMMARY = Path("experiments") / "controls" / "summary.json"
LOWDATA_SUMMARY = Path("experiments") / "lowdata" / "summary.json"
EXPRESSIVITY_VARIANT = "expval-8"
README = paths.REPO_ROOT / "README.md"

REPRODUCED, PARTLY, NOT_REPRODUCED, CONTRADICTED, NOT_MEASURED = (
    "reproduced",
    "partly",
    "not reproduced",
    "contradicted",
    "not yet measured",
)
STATUSES = (REPRODUCED, PARTLY, NOT_REPRODUCED, CONTRADICTED, NOT_MEASURED)
SUPPORTS, OPPOSES, INCONCLUSIVE, UNDEFINED = "supports", "opposes", "inconclusive", "undefined"
MIN_SEEDS = 2  # an interval over seeds needs at least two

PART_RULE = (
    "a part supports the claim when its 95 % interval lies entirely on the claimed side of its reference "
    "value, opposes it when it lies entirely on the other side, is undefined when it has no interval (fewer "
    "than 2 seeds finished), and is inconclusive otherwise"
)
STATUS_RULE = (
    "reproduced: every part supports the claim; partly: some but not all do; contradicted: none does and "
    "at least one opposes; not reproduced: every part is inconclusive; not yet measured: the result files "
    "it needs do not exist, or a part is undefined"
)
# Finding 1's size: the classical model's end-of-training gap counts as the study's "overfitting" when it
# is at least half the reported one (0.79 − 0.06 = 0.73).
REPORTED_CLASSICAL_GAP = study.CLASSICAL_END_VAL_LOSS - study.CLASSICAL_END_TRAIN_LOSS
OVERFIT_GAP = REPORTED_CLASSICAL_GAP / 2
NAMES = {
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "auc": "AUC",
    "specificity": "specificity",
    "positive_rate": "positive-prediction rate",
    "balanced_accuracy": "balanced accuracy",
}


# --- the rules -----------------------------------------------------------------------------------------


def part_outcome(sign: int, ci: list[float] | tuple[float, float] | None, reference: float = 0.0) -> str:
    """supports / opposes / inconclusive for a claim that the value lies on the ``sign`` side of ``reference``.

    Undefined when there is no interval (fewer than 2 seeds): too little evidence is not an inconclusive result.
    """
    if ci is None or any(v is None or np.isnan(v) for v in ci):
        return UNDEFINED
    lo, hi = (sign * (min(ci) - reference), sign * (max(ci) - reference))
    lo, hi = min(lo, hi), max(lo, hi)
    return SUPPORTS if lo > 0 else OPPOSES if hi < 0 else INCONCLUSIVE


def claim_status(outcomes: list[str] | None) -> str:
    """The claim's status from its parts' outcomes (None: the files it needs are missing)."""
    if not outcomes or UNDEFINED in outcomes:
        return NOT_MEASURED
    if all(o == SUPPORTS for o in outcomes):
        return REPRODUCED
    if SUPPORTS in outcomes:
        return PARTLY
    if OPPOSES in outcomes:
        return CONTRADICTED
    return NOT_REPRODUCED


def part(
    name: str, sign: int, value: float | None, ci: list[float] | None, reference: float = 0.0, unit: str = "pts"
) -> dict:
    return {
        "name": name,
        "claimed": ("> " if sign > 0 else "< ") + _fmt(reference, unit),
        "value": value,
        "ci95": ci,
        "unit": unit,
        "outcome": part_outcome(sign, ci, reference),
    }


def _fmt(x: float | None, unit: str, signed: bool = False) -> str:
    if x is None:
        return "–"
    if unit == "pts":
        return f"{100 * x:+.1f}" if signed or x < 0 else f"{100 * x:.1f}"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _measured_text(parts: list[dict]) -> str:
    return "; ".join(
        f"{p['name']} {_fmt(p['value'], p['unit'], True)} [{_fmt(p['ci95'][0], p['unit'], True)}, "
        f"{_fmt(p['ci95'][1], p['unit'], True)}]" + (" pts" if p["unit"] == "pts" else "")
        for p in parts
    )


def _too_few_seeds(finished: int, planned: int | None = None, needs: str = "an interval") -> str:
    """The measured text of a claim with an undefined part: how many seeds exist, and how many it needs."""
    done = f"{finished} of {planned}" if planned else str(finished)
    return f"{done} seed{'s' if (planned or finished) != 1 else ''} finished; {needs} needs at least {MIN_SEEDS}"


def _row(
    claim_id: str, claim: str, reported: str, parts: list[dict] | None, note: str = "", measured: str | None = None
) -> dict:
    """One ledger row; ``measured`` overrides the parts' text (a claim with undefined parts says why)."""
    status = claim_status([p["outcome"] for p in parts] if parts else None)
    if measured is None:
        measured = _measured_text(parts) if status != NOT_MEASURED else NOT_MEASURED
    return {
        "id": claim_id,
        "claim": claim,
        "reported": reported,
        "measured": measured,
        "note": note,
        "status": status,
        "parts": parts or [],
    }


# --- the claims ----------------------------------------------------------------------------------------


def _diff_part(summary: dict, metric: str, sign: int) -> dict:
    d = summary["difference"]
    return part(f"Δ {NAMES[metric]}", sign, d["mean"][metric], d["ci95"][metric])


def headline_claim(summary: dict | None) -> dict:
    reported = ", ".join(f"{NAMES[m]} {100 * study.EXPERIMENT_4_DELTA[m]:+.2f}" for m in study.HEADLINE_METRICS)
    parts = [_diff_part(summary, m, +1) for m in study.HEADLINE_METRICS] if summary else None
    return _row(
        "headline",
        "The QCNN beats the classical control on accuracy, precision and F1 (Experiment 4)",
        f"{reported} pts, one run",
        parts,
        "QCNN − classical, mean over seeds; interval counts seeds and test lesions",
    )


def four_of_five_claim(summary: dict | None) -> dict:
    parts = None
    if summary:
        parts = [_diff_part(summary, m, 1 if study.EXPERIMENT_4_DELTA[m] > 0 else -1) for m in study.REPORTED_METRICS]
    wins = sum(d > 0 for d in study.EXPERIMENT_4_DELTA.values())
    note = ""
    if parts:
        q = sum(part_outcome(+1, p["ci95"]) == SUPPORTS for p in parts)
        c = sum(part_outcome(+1, p["ci95"]) == OPPOSES for p in parts)
        note = f"measured: QCNN better on {q}, classical better on {c}, inconclusive on {len(parts) - q - c} of 5"
    return _row(
        "four_of_five", "QCNN wins four of five metrics", f"QCNN ahead on {wins} of 5 (all but recall)", parts, note
    )


def _end_gaps(results_dir: Path, seeds: list[int]) -> dict[str, np.ndarray] | None:
    """Validation minus training loss at the last epoch, per model and seed."""
    gaps = {}
    for kind in MODEL_KINDS:
        values = []
        for seed in seeds:
            path = results_dir / paths.RUNS_DIR / paths.run_name(kind, seed) / "history.csv"
            if not path.is_file():
                return None
            last = pd.read_csv(path).iloc[-1]
            values.append(float(last.val_loss - last.train_loss))
        gaps[kind] = np.array(values)
    return gaps


def _t_part(name: str, sign: int, values: np.ndarray, reference: float = 0.0) -> dict:
    """A t-interval over seeds; null bounds (not NaN, which JSON lacks) with fewer than 2 seeds."""
    ci = [None if np.isnan(x) else round(float(x), 6) for x in seed_lesion_interval(values[:, None], None)[0]]
    return part(name, sign, round(float(values.mean()), 6), ci, reference, unit="loss")


def generalisation_claim(results_dir: Path, seeds: list[int] | None) -> dict:
    gaps = _end_gaps(results_dir, seeds) if seeds else None
    parts = None
    if gaps:
        parts = [
            _t_part("QCNN gap − classical gap", -1, gaps["qcnn"] - gaps["classical"]),
            _t_part("classical gap", +1, gaps["classical"], OVERFIT_GAP),
        ]
    measured = _too_few_seeds(len(seeds)) if gaps and len(seeds) < MIN_SEEDS else None
    return _row(
        "finding_1",
        "Finding 1, anti-overfitting: the classical model overfits (train loss 0.06, validation "
        "0.79) while the QCNN stays balanced",
        f"classical gap {REPORTED_CLASSICAL_GAP:.2f} (val − train loss at the end); QCNN balanced",
        parts,
        f"validation − training loss at the last epoch, mean over seeds, t-interval over seeds (the "
        f"validation pool is fixed, so only training randomness counts); the classical part asks for at "
        f"least half the reported gap ({OVERFIT_GAP:.3f})",
        measured,
    )


def recall_trap_claim(summary: dict | None, referee: dict | None) -> dict:
    parts = None
    if summary and referee and "matched" in referee:
        d = referee["matched"]["at_0.5"]["difference"]
        parts = [
            part(f"Δ {NAMES[m]}", sign, d["mean"][m], d["ci95"][m])
            for m, sign in (("positive_rate", -1), ("specificity", +1), ("precision", +1))
        ]
    from qcnn.referee import reported_operating_point

    q, c = (reported_operating_point(study.EXPERIMENT_4[k]) for k in ("qcnn", "classical"))
    reported = (
        f"positive-prediction rate {100 * q['positive_rate']:.1f} vs {100 * c['positive_rate']:.1f} %, "
        f"specificity {100 * q['specificity']:.1f} vs {100 * c['specificity']:.1f} % (QCNN vs classical, "
        "derived at 22.25 % prevalence)"
    )
    return _row(
        "finding_2",
        "Finding 2, the recall trap: the classical model calls almost everything positive; the "
        "QCNN keeps recall while raising precision",
        reported,
        parts,
        "QCNN − classical at threshold 0.5, mean over seeds; interval counts seeds and test lesions",
    )


def expressivity_claim(results_dir: Path) -> dict:
    path = results_dir / CONTROLS_SUMMARY
    parts = measured = None
    note = f"needs the controls experiment's {EXPRESSIVITY_VARIANT} variant ({CONTROLS_SUMMARY})"
    if path.is_file():
        controls = json.loads(path.read_text())
        variant = controls.get("variants", {}).get(EXPRESSIVITY_VARIANT)
        if variant and "auc" in variant.get("vs_qcnn", {}).get("mean", {}):
            vs = variant["vs_qcnn"]
            parts = [part("Δ AUC (8-D − 256-D)", -1, vs["mean"]["auc"], vs["ci95"]["auc"])]
            if parts[0]["outcome"] == UNDEFINED:
                measured = _too_few_seeds(len(vs["seeds"]), len(controls.get("seeds", [])))
            note = (
                f"{EXPRESSIVITY_VARIANT} (8 ⟨Z⟩ outputs) minus the QCNN (256 probabilities), from "
                f"{CONTROLS_SUMMARY}; the claim is finer discrimination, so AUC"
            )
    return _row(
        "finding_3",
        "Finding 3, expressivity: 256 basis-state probabilities discriminate better than 8 ⟨Z⟩ values",
        "no direct comparison reported (Experiment 3's 8-D model scored lower, with other changes)",
        parts,
        note,
        measured,
    )


def low_data_claim(results_dir: Path) -> dict:
    """The study's framing: the advantage is for learning from limited data. Its test, fixed before the runs: QCNN −
    classical AUC (threshold-free, the learning curves' first metric) at the learning curve's smallest size."""
    path = results_dir / LOWDATA_SUMMARY
    parts = measured = None
    note = f"needs the learning curves ({LOWDATA_SUMMARY}, `qcnn sweep experiments/lowdata.toml`)"
    lowdata = _read(path)
    settings = [
        s
        for s in (lowdata or {}).get("settings", [])
        if s.get("split") == "lesion" and "vs_classical" in s.get("variants", {}).get("qcnn", {})
    ]
    if settings:
        smallest = min(settings, key=lambda s: s["fraction"])
        qcnn = smallest["variants"]["qcnn"]
        vs = qcnn["vs_classical"]
        share = Fraction(smallest["fraction"]).limit_denominator(1000)
        parts = [part(f"Δ AUC at {share} of the train pool", +1, vs["mean"]["auc"], vs["ci95"]["auc"])]
        seeds, planned = len(vs["seeds"]), len(lowdata.get("seeds", []))
        if parts[0]["outcome"] == UNDEFINED:
            measured = _too_few_seeds(seeds, planned)
        note = (
            f"QCNN − classical at the smallest training set measured ({qcnn['n_train']:,} images on average over "
            f"seeds), mean over {seeds} of {planned} seeds; interval counts seeds and test lesions; "
            f"from {LOWDATA_SUMMARY}"
        )
    return _row(
        "low_data",
        "The advantage is for learning from limited data: with few training images the QCNN beats the classical CNN",
        f"framed as a low-data study ({study.EXPERIMENT_3_TEST['n_train']:,} training images); no learning curve",
        parts,
        note,
        measured,
    )


def reproducible_claim(summary: dict | None) -> dict:
    parts = None
    note = ""
    if summary:
        per_seed = summary["difference"]["per_seed"]
        ahead = [all(v[m] > 0 for m in study.HEADLINE_METRICS) for v in per_seed.values()]
        share = sum(ahead) / len(ahead)
        if len(ahead) < MIN_SEEDS:  # "every seed" of one seed says nothing about reproducibility
            outcome = UNDEFINED
        else:
            outcome = SUPPORTS if share == 1 else OPPOSES if share <= 0.5 else INCONCLUSIVE
        seeds_part = {
            "name": "seeds with the QCNN ahead on all three",
            "claimed": "every seed",
            "value": share,
            "ci95": None,
            "unit": "share",
            "outcome": outcome,
        }
        parts = [_diff_part(summary, m, +1) for m in study.HEADLINE_METRICS] + [seeds_part]
        note = (
            f"the headline's intervals, and a seed part: supports when every seed has the QCNN ahead on "
            f"accuracy, precision and F1, opposes when at most half do (here {sum(ahead)} of {len(ahead)})"
        )
    measured = None
    if parts and len(ahead) < MIN_SEEDS:
        measured = _too_few_seeds(len(ahead), needs="reproducibility over seeds")
    elif parts:
        measured = _measured_text(parts[:-1]) + f"; QCNN ahead on all three in {sum(ahead)} of {len(ahead)} seeds"
    return _row(
        "reproducible",
        '"A narrow, reproducible advantage on one real problem"',
        "one run, one split, no intervals",
        parts,
        note,
        measured,
    )


# --- the per-metric verdicts -----------------------------------------------------------------------------


def metric_verdicts(summary: dict | None) -> list[dict]:
    """QCNN better / classical better / inconclusive per reported metric, from summary.json's ``ci95``."""
    if not summary:
        return []
    from qcnn.app.verdict import direction

    out = []
    for m in study.REPORTED_METRICS:
        ci = summary["difference"]["ci95"][m]
        out.append(
            {
                "metric": m,
                "qcnn": summary["models"]["qcnn"]["mean"][m],
                "classical": summary["models"]["classical"]["mean"][m],
                "difference": summary["difference"]["mean"][m],
                "ci95": ci,
                "verdict": direction(ci),
                "reported": study.EXPERIMENT_4_DELTA[m],
            }
        )
    return out


# --- building and writing --------------------------------------------------------------------------------


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def controls_table(results_dir: Path) -> dict | None:
    """The controls matrix so far, per variant: test AUC and its difference to the QCNN and the control.

    With two or more seeds the interval counts seeds and test lesions; with one, the README shows that seed
    alone with its lesion-only interval, labelled as such (no verdict is drawn from it anywhere)."""
    controls = _read(results_dir / CONTROLS_SUMMARY)
    if controls is None:
        return None

    def against(block: dict | None) -> dict | None:
        if not block:
            return None
        if len(block["seeds"]) >= 2:
            return {"seeds": block["seeds"], "mean": block["mean"]["auc"], "ci95": block["ci95"]["auc"]}
        first = block["first_seed"]
        return {"seeds": [first["seed"]], "mean": first["difference"]["auc"], "ci95": first["ci95_lesions_only"]["auc"]}

    rows = [
        {
            "variant": name,
            "seeds": variant["seeds"],
            "auc": variant["mean"]["auc"],
            "vs_qcnn": against(variant.get("vs_qcnn")),
            "vs_classical": against(variant.get("vs_classical")),
            "seconds_per_epoch_median": variant["seconds_per_epoch_median"],
        }
        for name, variant in controls["variants"].items()
    ]
    return {
        "n_complete": controls["n_complete"],
        "n_runs": controls["n_runs"],
        "wall": wall_time_text(controls),
        "variants": rows,
    }


def wall_time_text(summary: dict) -> str:
    """How long an experiment's finished runs took to train and evaluate, from their completion records."""
    timed, done = summary.get("runs_timed", 0), summary["n_complete"]
    if not timed:
        return "No finished run recorded its training time."
    which = f"the {done} finished runs" if timed == done else f"the {timed} of {done} finished runs that recorded it"
    reused, reused_s = summary.get("runs_reused", 0), summary.get("wall_seconds_reused", 0.0)
    own = (
        f", {(summary['wall_seconds'] - reused_s) / 3600:.1f} h of it for this experiment's own runs "
        f"({reused} reused from another experiment, not trained again)"
        if reused
        else ""
    )
    return (
        f"Training and evaluation of {which} took {summary['wall_seconds'] / 3600:.1f} h in all{own} "
        "(their completion records; a run resumed after a stop counts from its restart)."
    )


def regime_answers(results_dir: Path) -> dict:
    """The Regime page's three answers in AUC, in its own words, with the learning-curve and backbone tables."""
    from qcnn.app import regime
    from qcnn.app.style import fmt_value

    def summary(name: str) -> dict | None:
        return _read(results_dir / paths.EXPERIMENTS_DIR / name / paths.SUMMARY_FILE)

    points = regime.curve_points(summary(regime.LOWDATA), "auc")
    leakage = _read(results_dir / paths.LEAKAGE_FILE)
    counted = bool(leakage and "splits" in leakage)
    backbones = []
    for name, (history_file, experiment) in regime.BACKBONES.items():
        history = pd.read_csv(results_dir / history_file) if (results_dir / history_file).is_file() else None
        backbones.append(regime.backbone(name, history, summary(experiment), "auc"))
    backbones = [b for b in backbones if b is not None]
    return {
        "size": regime.size_answer(points, "auc"),
        "curve": [
            {
                "training images": p.size_text,
                "QCNN − classical AUC": p.difference.text(),
                **{f"{k} AUC": fmt_value("auc", p.models[k]["mean"]) for k in MODEL_KINDS},
                "seeds": str(p.n_seeds),
                "epochs": p.epochs_text,
            }
            for p in points
        ],
        "split": (
            regime.counts_text(leakage) + " " + regime.leakage_answer(leakage, "auc")
            if counted
            else f"Not yet counted: `{regime.LEAKAGE_COMMAND}` writes {paths.LEAKAGE_FILE}."
        ),
        "backbone": regime.backbone_answer(backbones, "auc", _read(results_dir / paths.BACKBONES_FILE)),
        "backbones": regime.backbone_table(backbones, "auc"),
    }


def build_ledger(results_dir: str | Path) -> dict:
    from qcnn.referee import REFEREE_FILE

    results_dir = Path(results_dir)
    summary = _read(results_dir / paths.SUMMARY_FILE)
    if summary is not None and "ci95" not in summary["difference"]:
        raise QcnnError(
            f"{results_dir / paths.SUMMARY_FILE} predates the seed-and-lesion intervals: run `qcnn summarize`."
        )
    referee = _read(results_dir / REFEREE_FILE)
    seeds = summary["seeds"] if summary else None
    return {
        "part_rule": PART_RULE,
        "status_rule": STATUS_RULE,
        "interval_method": summary["difference"]["interval_method"] if summary else None,
        "seeds": seeds,
        "metrics": metric_verdicts(summary),
        "claims": [
            headline_claim(summary),
            four_of_five_claim(summary),
            generalisation_claim(results_dir, seeds),
            recall_trap_claim(summary, referee),
            expressivity_claim(results_dir),
            low_data_claim(results_dir),
            reproducible_claim(summary),
        ],
        "controls": controls_table(results_dir),
        "regime": regime_answers(results_dir),
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def metrics_markdown(ledger: dict) -> str:
    rows = [
        "| metric | QCNN | classical | QCNN − classical [95 % CI] | verdict | reported Δ |",
        "|---|---|---|---|---|---|",
    ]
    for v in ledger["metrics"]:
        lo, hi = v["ci95"]
        rows.append(
            f"| {NAMES[v['metric']]} | {100 * v['qcnn']:.2f} | {100 * v['classical']:.2f} | "
            f"{100 * v['difference']:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}] | {v['verdict']} | "
            f"{100 * v['reported']:+.2f} |"
        )
    n = len(ledger["seeds"] or [])
    rows.append("")
    rows.append(f"Percent, mean over {n} seeds. Interval: {ledger['interval_method'].rstrip('.')}.")
    return "\n".join(rows)


def claims_markdown(ledger: dict) -> str:
    rows = ["| claim (study) | reported | measured (mean [95 % CI]) | status |", "|---|---|---|---|"]
    for c in ledger["claims"]:
        measured = c["measured"] + (f" ({c['note']})" if c["note"] and c["status"] != NOT_MEASURED else "")
        rows.append(f"| {_cell(c['claim'])} | {_cell(c['reported'])} | {_cell(measured)} | **{c['status']}** |")
    rows.append("")
    rows.append(f"Status rules: {PART_RULE}. {STATUS_RULE}.")
    return "\n".join(rows)


def controls_markdown(ledger: dict) -> str:
    table = ledger.get("controls")
    if table is None:
        return f"No controls matrix yet: `qcnn sweep experiments/controls.toml` writes {CONTROLS_SUMMARY}."

    def cell(d: dict | None) -> str:
        if d is None:
            return "—"
        lo, hi = d["ci95"]
        where = f"seed {d['seeds'][0]} alone, lesions only" if len(d["seeds"]) == 1 else f"{len(d['seeds'])} seeds"
        return f"{100 * d['mean']:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}] ({where})"

    rows = [
        "| variant | seeds | test AUC | Δ AUC vs QCNN [95 % CI] | Δ AUC vs classical [95 % CI] | s / epoch |",
        "|---|---|---|---|---|---|",
    ]
    for v in table["variants"]:
        rows.append(
            f"| `{v['variant']}` | {', '.join(map(str, v['seeds']))} | {100 * v['auc']:.2f} | {cell(v['vs_qcnn'])} | "
            f"{cell(v['vs_classical'])} | {v['seconds_per_epoch_median']:.1f} |"
        )
    rows.append("")
    rows.append(
        f"{table['n_complete']} of {table['n_runs']} runs finished. AUC in points, mean over the seeds finished; "
        "an interval over two or more seeds counts seeds and test lesions, one seed's counts test lesions only "
        "(training randomness, which the seeds show to be larger, is not in it) and carries no verdict. "
        "s / epoch: median wall time of an epoch, validation included, on the machine and load each run met. "
        + table["wall"]
    )
    return "\n".join(rows)


def _table(rows: list[dict]) -> list[str]:
    return [
        "| " + " | ".join(rows[0]) + " |",
        "|" + "---|" * len(rows[0]),
        *("| " + " | ".join(_cell(str(v)) for v in row.values()) + " |" for row in rows),
    ]


def regime_markdown(ledger: dict) -> str:
    answers = ledger["regime"]
    lines = ["**Is there a data size at which the QCNN wins?** " + answers["size"]]
    if answers["curve"]:
        lines += ["", *_table(answers["curve"])]
    lines += ["", "**Does the study's split inflate the numbers, and whom does it favour?** " + answers["split"]]
    lines += ["", "**Does a better backbone close the gap?** " + answers["backbone"]]
    if answers["backbones"]:
        lines += ["", *_table(answers["backbones"])]
    lines += [
        "",
        "Differences in AUC points (×100); intervals count seeds and test lesions (none from one seed); a size is "
        "the range of the seeds' subsets. The Regime page shows the same answers for balanced accuracy and F1, "
        "with the charts.",
    ]
    return "\n".join(lines)


BLOCKS = {
    "verdicts": metrics_markdown,
    "ledger": claims_markdown,
    "controls": controls_markdown,
    "regime": regime_markdown,
}


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin (written by `qcnn ledger`) -->", f"<!-- {name}:end -->"


def embed(readme: str, ledger: dict) -> str:
    """``readme`` with each generated block replaced between its markers; a missing marker pair is an error."""
    for name, render in BLOCKS.items():
        begin, end = _markers(name)
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if not pattern.search(readme):
            raise ConfigError(f"README has no {begin} … {end} block")
        block = f"{begin}\n{render(ledger)}\n{end}"
        readme = pattern.sub(lambda _, block=block: block, readme)
    return readme


def write_ledger(results_dir: str | Path, readme: Path | None = README) -> dict:
    """results/ledger.json, and the README's generated blocks (when ``readme`` is given)."""
    from qcnn.io import write_json, write_text

    results_dir = Path(results_dir)
    ledger = build_ledger(results_dir)
    text = None
    if readme is not None:
        if not readme.is_file():
            raise MissingFileError(f"{readme} not found: pass --readme, or --no-readme to write ledger.json only.")
        text = embed(readme.read_text(), ledger)  # before writing anything: a README without markers changes nothing
    write_json(results_dir / LEDGER_FILE, ledger)
    if text is not None:
        write_text(readme, text)
    return ledger
