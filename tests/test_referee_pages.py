"""The ledger on the Overview and the referee sections on Results, under AppTest on synthetic results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from qcnn import paths
from qcnn.ledger import LEDGER_FILE
from qcnn.referee import REFEREE_FILE
from qcnn.testing import write_synthetic_results

APP = paths.REPO_ROOT / "streamlit_app.py"


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory) -> Path:
    return write_synthetic_results(
        tmp_path_factory.mktemp("referee_results"), n_test=300, seeds=(0, 1, 2), epochs=6, n_bootstrap=40
    )


@pytest.fixture
def synthetic(synthetic_dir, monkeypatch) -> Path:
    monkeypatch.setenv("QCNN_RESULTS_DIR", str(synthetic_dir))
    monkeypatch.delenv("QCNN_DATA_DIR", raising=False)
    return synthetic_dir


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, "\n".join(str(e.value) for e in at.exception)
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    return "\n".join(parts + [x.value for x in (*at.info, *at.warning, *at.success, *at.error)])


def frame_with(at: AppTest, column: str):
    frames = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(frames) == 1, f"{len(frames)} dataframes with a {column!r} column"
    return frames[0]


def chart_keys(at: AppTest) -> set[str]:
    return {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}


def test_overview_shows_the_ledger_with_every_claim_and_status(synthetic):
    at = open_page("overview")
    ledger = json.loads((synthetic / LEDGER_FILE).read_text())
    shown = texts(at)
    assert "Claim by claim" in [s.value for s in at.subheader]
    for claim in ledger["claims"]:
        assert claim["claim"] in shown
        assert f"-badge[{claim['status']}]" in shown
    for v in ledger["metrics"]:  # the per-metric verdicts, in the verdict's expander
        assert f"-badge[{v['verdict']}]" in shown


def test_results_shows_the_threshold_question_calibration_and_subgroups(synthetic):
    at = open_page("results")
    referee = json.loads((synthetic / REFEREE_FILE).read_text())
    assert {"The threshold question", "Calibration", "Subgroups"} <= {h.value for h in at.header}
    assert {"referee_binormal", "referee_reliability"} <= chart_keys(at)
    matched = frame_with(at, "comparison")
    d = referee["matched"]["classical_at_qcnn_fpr"]["difference"]
    row = matched[matched.comparison.str.startswith("classical moved to the QCNN's false-positive")].iloc[0]
    assert row["Δ accuracy"].startswith(f"{100 * d['mean']['accuracy']:+.1f} ")
    calibration = next(d.value for d in at.dataframe if "Brier score" in d.value and "seed" not in d.value)
    assert f"{referee['calibration']['qcnn']['mean']['brier']:.4f}" in calibration.iloc[0]["Brier score"]
    shown = texts(at)
    validation = frame_with(at, "rule")  # only seed 0 wrote validation predictions, as in the committed runs
    assert set(validation.rule) == {"Youden's J on validation", "85 % recall on validation"}
    assert "one seed only: the interval counts test lesions" in shown and "Seeds 1, 2 are left out" in shown
    assert "explainable by threshold" in shown.lower()


def test_subgroups_switch_grouping_and_flag_small_groups(synthetic):
    at = open_page("results")
    referee = json.loads((synthetic / REFEREE_FILE).read_text())
    table = frame_with(at, "lesions")
    assert list(table.group) == [g["group"] for g in referee["subgroups"]["by"]["diagnosis"]]
    at.radio(key="referee_grouping").set_value("body_site").run()
    assert not at.exception
    table = frame_with(at, "lesions")
    groups = referee["subgroups"]["by"]["body_site"]
    assert list(table.group) == [g["group"] for g in groups]
    small = [g["group"] for g in groups if g["small_sample"]]
    assert small, "the synthetic acral group is small"
    assert list(table.group[table["sample"] != ""]) == small
    assert any("Small samples" in w.value for w in at.warning)
    at.radio(key="referee_subgroup_metric").set_value("recall").run()
    table = frame_with(at, "lesions")
    for value, g in zip(table["Δ QCNN − classical"], groups, strict=True):
        d = g["difference"]["mean"]["recall"]
        assert (value == "–") if d is None else value.startswith(f"{100 * d:+.1f} ")


def test_pages_say_which_command_writes_the_missing_files(synthetic_dir, tmp_path, monkeypatch):
    shutil.copytree(synthetic_dir, tmp_path / "r")
    (tmp_path / "r" / REFEREE_FILE).unlink()
    (tmp_path / "r" / LEDGER_FILE).unlink()
    monkeypatch.setenv("QCNN_RESULTS_DIR", str(tmp_path / "r"))
    at = open_page("results")
    assert sum("qcnn referee" in i.value for i in at.info) == 3
    at = open_page("overview")
    assert any("qcnn ledger" in i.value for i in at.info)
