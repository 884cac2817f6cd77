"""What the app's pages say and draw, checked on small hand-made inputs (no server, no models)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qcnn import study
from qcnn.app import charts, page_results, page_timeline, page_training


def histories(gaps: dict[str, list[float]], aucs: dict[str, float]) -> pd.DataFrame:
    """Two-epoch histories per model and seed whose last-epoch gap and kept-epoch val AUC are given."""
    rows = []
    for kind, per_seed in gaps.items():
        for seed, gap in enumerate(per_seed):
            for epoch in (1, 2):
                rows.append(
                    {
                        "kind": kind,
                        "seed": seed,
                        "epoch": epoch,
                        "train_loss": 0.3,
                        "val_loss": 0.3 + gap,
                        "gap": gap,
                        "val_auc": aucs[kind],
                        "best": epoch == 2,
                        "complete": True,
                    }
                )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("gaps", "aucs", "tone", "answer"),
    [
        ({"qcnn": [0.05, 0.06], "classical": [0.3, 0.4]}, {"qcnn": 0.85, "classical": 0.84}, "success", "**Yes.**"),
        (
            {"qcnn": [0.05, 0.06], "classical": [0.3, 0.4]},
            {"qcnn": 0.80, "classical": 0.84},
            "warning",
            "**Only by the loss gap.**",
        ),
        ({"qcnn": [0.5, 0.6], "classical": [0.3, 0.4]}, {"qcnn": 0.85, "classical": 0.84}, "error", "**No.**"),
        (
            {"qcnn": [0.05, 0.6], "classical": [0.3, 0.4]},
            {"qcnn": 0.85, "classical": 0.84},
            "warning",
            "**Not consistently.**",
        ),
    ],
)
def test_training_page_answers_its_question_from_the_histories(gaps, aucs, tone, answer) -> None:
    got_tone, text = page_training.generalisation_answer(histories(gaps, aucs))
    assert got_tone == tone and text.startswith(answer)
    smaller = sum(q < c for q, c in zip(gaps["qcnn"], gaps["classical"], strict=True))
    assert f"in {smaller} of 2 seeds" in text


def test_training_answer_needs_both_models() -> None:
    only_qcnn = histories({"qcnn": [0.1]}, {"qcnn": 0.8})
    assert page_training.generalisation_answer(only_qcnn) is None


def test_undefined_precision_is_a_dash_not_zero() -> None:
    labels = np.array([1, 0, 1, 0, 0])
    probs = {"qcnn": np.array([0.2, 0.1, 0.3, 0.4, 0.2]), "classical": np.array([0.9, 0.1, 0.8, 0.7, 0.2])}
    from qcnn.app import analysis

    thresholds = {"qcnn": 0.5, "classical": 0.5}
    confs, metrics = {}, {}
    for kind in charts.KINDS:
        confs[kind], metrics[kind] = analysis.at_threshold(labels, probs[kind], thresholds[kind])
    table = page_results.live_table(thresholds, confs, metrics).set_index("metric")
    precision = table.loc["Precision"]
    assert precision["QCNN"] == page_results.UNDEFINED  # no image called malignant
    assert precision["Classical CNN"] == "66.7 %"
    assert precision[page_results.DELTA_COLUMN] == page_results.UNDEFINED
    assert table.loc["Recall", "QCNN"] == "0.0 %"  # recall is defined (and 0)
    assert table.loc["threshold", "QCNN"] == "0.50"


def test_error_bars_stay_inside_zero_one() -> None:
    values = {k: {"recall": 0.97} for k in charts.KINDS}
    errors = {k: {"recall": (0.90, 1.04)} for k in charts.KINDS}
    fig = charts.metric_bars(values, errors, ["recall"])
    for bar in fig.data:
        assert bar.y[0] + bar.error_y.array[0] == pytest.approx(1.0)
        assert bar.y[0] - bar.error_y.arrayminus[0] == pytest.approx(0.90)


def test_seed_strip_points_do_not_overlap() -> None:
    per_seed = {k: {str(s): {"accuracy": 0.8, "auc": 0.9} for s in range(5)} for k in charts.KINDS}
    fig = charts.seed_strip(per_seed, ["accuracy", "auc"], app_seed=0)
    points = [
        (round(x, 6), y)
        for trace in fig.data
        if trace.mode == "markers" and trace.showlegend is not False
        for x, y in zip(trace.x, trace.y, strict=True)
    ]
    assert len(points) == 2 * 5 * 2 and len(set(points)) == len(points)  # same value, distinct positions


def test_timeline_title_counts_the_experiments() -> None:
    statuses = [e["status"] for e in study.EXPERIMENTS]
    assert statuses.count("failed") == 2 and statuses.count("partial") == 1  # the study's four experiments
    assert page_timeline.TITLE == "Timeline: four experiments, two dead ends, one partial success"


def test_experiment_tables_use_the_same_units() -> None:
    for table in (page_timeline.reported_table(study.EXPERIMENT_3), page_timeline.reported_table(study.EXPERIMENT_4)):
        auc = table.metric == charts.METRIC_LABELS["auc"]
        assert table.QCNN[~auc].str.endswith(" %").all() and not table.QCNN[auc].str.endswith("%").any()
