"""A plain-language verdict on the study's claim, derived only from the reproduced intervals.

Each metric's reproduced difference (QCNN minus classical) gets a direction from its 95 % interval
(``ci95`` in summary.json: seeds and test lesions both counted, ``qcnn.stats.seed_lesion_interval``):
"QCNN better" when the interval lies above 0, "classical better" when below, "inconclusive" when
it includes 0. Against the study's reported difference that direction *supports* it (same side),
*contradicts* it (other side) or is *inconclusive*. Nothing here is hard-coded about the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qcnn import study

SUPPORTED, INCONCLUSIVE, CONTRADICTED = "supported", "inconclusive", "contradicted"
QCNN_BETTER, CLASSICAL_BETTER = "QCNN better", "classical better"


def direction(ci: tuple[float, float] | list[float]) -> str:
    """Which model the interval of QCNN − classical favours: QCNN better, classical better or inconclusive."""
    lo, hi = float(min(ci)), float(max(ci))
    return QCNN_BETTER if lo > 0 else CLASSICAL_BETTER if hi < 0 else INCONCLUSIVE


@dataclass(frozen=True)
class MetricVerdict:
    metric: str
    reported: float  # the study's difference (fraction)
    value: float  # the reproduced difference (fraction)
    ci: tuple[float, float]  # its 95 % interval
    status: str
    sentence: str

    @property
    def direction(self) -> str:
        return direction(self.ci)


@dataclass(frozen=True)
class Verdict:
    level: str  # "supported" | "partly supported" | "not supported" | "contradicted"
    headline: str
    basis: str  # which interval the verdict rests on
    metrics: list[MetricVerdict] = field(default_factory=list)

    @property
    def tone(self) -> str:
        """success / warning / error: for the colour of the box that shows it."""
        return {"supported": "success", "partly supported": "warning"}.get(self.level, "error")


def _name(metric: str) -> str:
    return {"f1": "F1", "auc": "AUC"}.get(metric, metric.replace("_", " "))


def _pts(x: float) -> str:
    return f"{100 * x:+.2f} pts"


def _interval(ci: tuple[float, float]) -> str:
    return f"[{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}] pts"


def metric_verdict(metric: str, reported: float, value: float, ci: tuple[float, float]) -> MetricVerdict:
    lo, hi = float(min(ci)), float(max(ci))
    sign = 1.0 if reported >= 0 else -1.0
    name = f"{_name(metric)}: {direction((lo, hi))}"
    if sign * lo > 0 and sign * hi > 0:
        status = SUPPORTED
        if lo <= reported <= hi:
            size = "the reported size lies inside the interval"
        elif abs(reported) > max(abs(lo), abs(hi)):
            size = "but smaller than reported: the reported size lies outside the interval"
        else:
            size = "and larger than reported"
        sentence = (
            f"{name} — reproduced {_pts(value)}, 95% interval {_interval((lo, hi))} excludes 0 in the "
            f"study's direction ({_pts(reported)} reported), {size}."
        )
    elif sign * hi < 0:
        status = CONTRADICTED
        sentence = (
            f"{name} — reproduced {_pts(value)}, 95% interval {_interval((lo, hi))} lies on the opposite "
            f"side of 0 from the study's {_pts(reported)}."
        )
    else:
        status = INCONCLUSIVE
        sentence = (
            f"{name} — reproduced {_pts(value)}, 95% interval {_interval((lo, hi))} includes 0: no "
            f"detectable difference (study: {_pts(reported)})."
        )
    return MetricVerdict(metric, reported, float(value), (lo, hi), status, sentence)


def interval_basis(summary: dict) -> tuple[str, str]:
    """The summary key of the interval the verdict uses, and how to say it.

    ``ci95`` (seeds and lesions) when the summary has it; an older summary's seed-0 lesion interval otherwise.
    """
    n = len(summary.get("seeds", []))
    if "ci95" in summary["difference"]:
        counted = "training seeds and test lesions" if n > 1 else "test lesions only (one seed)"
        return "ci95", f"95% interval of the mean over {n} seed{'s' if n != 1 else ''}, counting {counted}"
    return "seed0", f"95% lesion-bootstrap interval of seed {summary.get('app_seed', 0)} (test lesions only)"


def difference_interval(summary: dict, metric: str) -> tuple[float, tuple[float, float]]:
    """(value, 95 % interval) of QCNN − classical on ``metric`` as the verdict uses them."""
    key, _ = interval_basis(summary)
    diff = summary["difference"]
    if key == "ci95":
        return diff["mean"][metric], tuple(diff["ci95"][metric])
    return diff["seed0"][metric]["value"], tuple(diff["seed0"][metric]["ci95"])


def metric_verdicts(summary: dict, metrics: tuple[str, ...] = study.REPORTED_METRICS) -> list[MetricVerdict]:
    out = []
    for m in metrics:
        if m not in study.EXPERIMENT_4_DELTA or m not in summary["difference"].get("mean", {}):
            continue
        value, ci = difference_interval(summary, m)
        out.append(metric_verdict(m, study.EXPERIMENT_4_DELTA[m], value, ci))
    return out


def verdict(summary: dict) -> Verdict:
    """The verdict on the headline claim (accuracy, precision and F1 better for the QCNN)."""
    _, basis = interval_basis(summary)
    all_metrics = metric_verdicts(summary)
    headline = [v for v in all_metrics if v.metric in study.HEADLINE_METRICS]
    statuses = [v.status for v in headline]
    if not headline:
        return Verdict("not supported", "No reproduced differences to judge yet.", basis, all_metrics)
    if all(s == SUPPORTED for s in statuses):
        level = "supported"
        text = (
            "Supported: the 95% intervals of the accuracy, precision and F1 differences all lie above 0, "
            "as the study reports."
        )
    elif all(s == CONTRADICTED for s in statuses):
        level = "contradicted"
        text = (
            "Contradicted: the 95% intervals of the accuracy, precision and F1 differences all lie below 0 — "
            "the classical control is better here."
        )
    elif SUPPORTED in statuses:
        level = "partly supported"
        held = " and ".join(_name(v.metric) for v in headline if v.status == SUPPORTED)
        failed = "; ".join(
            f"{_name(v.metric)}: reproduced {_pts(v.value)}, 95% interval {_interval(v.ci)} "
            + ("includes 0" if v.status == INCONCLUSIVE else "lies below 0")
            for v in headline
            if v.status != SUPPORTED
        )
        text = f"Partly supported: the advantage holds for {held} (95% intervals above 0), but not for {failed}."
    else:
        level = "not supported"
        parts = [
            f"the 95% interval of the {_name(v.metric)} difference {_interval(v.ci)} "
            + ("includes 0" if v.status == INCONCLUSIVE else "is negative")
            for v in headline
        ]
        text = "Not supported: " + "; ".join(parts) + "."
    return Verdict(level, text, basis, all_metrics)
