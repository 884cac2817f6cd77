"""The results explorer: every page under streamlit's AppTest, on synthetic, empty and real results.

The synthetic results folder is schema-valid (``qcnn.testing``) and deterministic, so the
tests can check the numbers a page shows against the pipeline's own functions.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from qcnn import paths, study
from qcnn.app import page_disagreements, page_overview, page_results, page_timeline, page_training
from qcnn.testing import assert_no_exception as no_exception
from qcnn.testing import chart_spec as chart
from qcnn.testing import write_synthetic_results
from qcnn.app.verdict import CONTRADICTED, INCONCLUSIVE, SUPPORTED, metric_verdict, verdict
from qcnn.metrics import confusion
from qcnn.stats import mcnemar

APP = paths.REPO_ROOT / "streamlit_app.py"
TITLES = {
    "overview": page_overview.TITLE,
    "timeline": page_timeline.TITLE,
    "results": page_results.TITLE,
    "training": page_training.TITLE,
    "disagreements": page_disagreements.TITLE,
}
RESULT_PAGES = ("overview", "results", "training", "disagreements")  # pages that read results/
TIMEOUT = 60


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    return write_synthetic_results(
        tmp_path_factory.mktemp("results"), n_test=300, seeds=(0, 1, 2), epochs=6, n_bootstrap=40
    )


@pytest.fixture
def synthetic(synthetic_dir, monkeypatch) -> Path:
    monkeypatch.setenv("QCNN_RESULTS_DIR", str(synthetic_dir))
    monkeypatch.delenv("QCNN_DATA_DIR", raising=False)
    return synthetic_dir


@pytest.fixture
def fake_data_dir(synthetic, tmp_path, monkeypatch) -> Path:
    """A tiny HAM10000-shaped folder holding a JPEG for every synthetic test image."""
    split = pd.read_csv(synthetic / paths.SPLIT_FILE)
    test = split[split.pool == "test"]
    (tmp_path / "images").mkdir()
    rng = np.random.default_rng(0)
    for image_id in test.image_id:
        pixels = rng.integers(0, 255, (15, 20, 3), dtype=np.uint8)
        Image.fromarray(pixels).resize((200, 150)).save(tmp_path / "images" / f"{image_id}.jpg")
    test[["lesion_id", "image_id", "dx"]].to_csv(tmp_path / "HAM10000_metadata.csv", index=False)
    monkeypatch.setenv("QCNN_DATA_DIR", str(tmp_path))
    return tmp_path


def open_page(page: str) -> AppTest:
    """Run the app's entry point, then switch to ``pages/{page}.py`` (as a browser would)."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page(f"pages/{page}.py").run()
    return at


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    """The single dataframe on the page that has ``column`` (st.dataframe keys are not exposed)."""
    frames = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(frames) == 1, f"{len(frames)} dataframes with a {column!r} column"
    return frames[0]


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [x.value for x in (*at.info, *at.warning, *at.success, *at.error)]
    return "\n".join(parts)


# --- every page, synthetic results ---------------------------------------------------------------


@pytest.mark.parametrize("page", list(TITLES))
def test_page_renders_with_its_title(synthetic, page):
    at = open_page(page)
    no_exception(at)
    assert [t.value for t in at.title] == [TITLES[page]]


def test_try_it_is_in_the_navigation(synthetic):
    """The teammate's page (tested in depth in test_try_it_page.py) opens inside the app."""
    at = open_page("try_it")
    no_exception(at)
    assert [t.value for t in at.title] == ["Try it"]


def test_overview_shows_both_headlines_and_a_verdict(synthetic):
    at = open_page("overview")
    no_exception(at)
    summary = json.loads((synthetic / paths.SUMMARY_FILE).read_text())
    values = [m.value for m in at.metric]
    for m in study.HEADLINE_METRICS:
        assert f"{100 * study.EXPERIMENT_4_DELTA[m]:+.2f}" in values  # reported
        assert f"{100 * summary['difference']['mean'][m]:+.2f}" in values  # reproduced
    expected = verdict(summary)
    boxes = [b.value for b in (*at.success, *at.warning, *at.error)]
    assert any(expected.headline in b for b in boxes)
    assert "Not a clinical tool" in texts(at)
    setting = texts(at)
    assert "lesion-disjoint" in setting and "| test |" in setting  # the setting comparison, the pool counts


def test_timeline_has_the_four_experiments(synthetic):
    at = open_page("timeline")
    no_exception(at)
    fig = chart(at, "timeline")
    statuses = [t["name"] for t in fig["data"] if t.get("mode") == "markers+text"]
    assert statuses == ["failed", "partial", "success"]
    labels = [e.label for e in at.expander]
    assert len(labels) == 4 and all(f"Experiment {i}" in label for i, label in zip(range(1, 5), labels, strict=True))
    assert len(at.table) == 2  # Experiment 3's and Experiment 4's reported tables


def test_results_page_has_tables_and_charts(synthetic):
    at = open_page("results")
    no_exception(at)
    keys = {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}
    assert {"bars", "deltas", "roc", "pr", "strip"} <= keys
    assert len(at.table) >= 4  # reported, reproduced, live metrics, matched recall
    reported = at.table[0].value
    assert list(reported.columns) == ["metric", "QCNN", "classical", "Δ"]
    at.radio(key="results_view").set_value("seed0").run()
    no_exception(at)


def test_threshold_slider_recomputes_the_confusion_matrix(synthetic):
    at = open_page("results")
    predictions = pd.read_csv(synthetic / "runs" / "qcnn_seed0" / "predictions.csv")

    def shown(kind: str = "qcnn") -> list[int]:
        html = next(h.proto.body for h in at.get("html") if f"data-kind='{kind}'" in h.proto.body)
        return [int(b.replace(",", "")) for b in re.findall(r"<b>([\d,]+)</b>", html)]

    def expected(threshold: float) -> list[int]:
        c = confusion(predictions.label.to_numpy(), predictions.probability.to_numpy(), threshold)
        return [c["tp"], c["fn"], c["fp"], c["tn"]]

    assert shown() == expected(0.5)
    at.slider(key="threshold_qcnn").set_value(0.2).run()
    no_exception(at)
    assert shown() == expected(0.2)
    assert shown() != expected(0.5)
    assert shown("classical") != shown()  # the other model keeps its own
    live = next(t.value for t in at.table if "Δ QCNN − classical" in t.value.columns).set_index("metric")
    assert live.loc["threshold", "QCNN"] == "0.20" and live.loc["threshold", "Classical CNN"] == "0.50"


def test_training_page_has_curves_and_reported_end_points(synthetic):
    at = open_page("training")
    no_exception(at)
    keys = {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}
    assert {"losses", "gap", "auc", "timing"} <= keys
    losses = chart(at, "losses")
    annotations = " ".join(a.get("text", "") for a in losses["layout"].get("annotations", []))
    for value in (study.CLASSICAL_END_TRAIN_LOSS, study.CLASSICAL_END_VAL_LOSS):
        assert f"{value:.2f}" in annotations
    stars = [t for t in losses["data"] if t.get("marker", {}).get("symbol") == "star"]
    assert stars, "the kept epoch is marked"


def test_disagreements_mcnemar_follows_the_threshold(synthetic):
    at = open_page("disagreements")
    no_exception(at)
    q = pd.read_csv(synthetic / "runs" / "qcnn_seed0" / "predictions.csv")
    c = pd.read_csv(synthetic / "runs" / "classical_seed0" / "predictions.csv")
    for threshold in (0.5, 0.3):
        if threshold != 0.5:
            at.slider(key="disagree_threshold").set_value(threshold).run()
            no_exception(at)
        test = mcnemar(q.label.to_numpy(), q.probability.to_numpy(), c.probability.to_numpy(), threshold)
        assert at.metric[0].value == f"{test['p_value']:.3g}"
        cells = chart(at, "mcnemar_table")["layout"]["annotations"]
        counts = [int(a["text"].split("</b>")[0].replace("<b>", "").replace(",", "")) for a in cells]
        assert counts == [
            test["both_correct"],
            test["only_qcnn_correct"],
            test["only_classical_correct"],
            test["both_wrong"],
        ]


def test_disagreement_filters_and_download(synthetic):
    at = open_page("disagreements")
    at.multiselect(key="disagree_cells").set_value(["both wrong"]).run()
    at.multiselect(key="disagree_labels").set_value(["malignant"]).run()
    no_exception(at)
    table = frame_with(at, "cell")
    assert len(table) > 0
    assert set(table.cell) == {"both wrong"} and set(table.label) == {"malignant"}
    assert len(at.get("download_button")) == 1
    assert "QCNN_DATA_DIR" in texts(at)  # how to show the images


def test_gallery_and_grad_cam_message_with_a_data_dir(fake_data_dir, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("QCNN_CHECKPOINT_DIR", str(tmp_path_factory.mktemp("no_checkpoints")))
    at = open_page("disagreements")
    no_exception(at)
    assert len(at.image) == 8  # the default gallery size
    assert any("qcnn reproduce" in w.value for w in at.warning)  # no models: says how to get them, no button


# --- missing files -------------------------------------------------------------------------------


@pytest.mark.parametrize("page", RESULT_PAGES)
def test_page_explains_missing_results(page, tmp_path, monkeypatch):
    monkeypatch.setenv("QCNN_RESULTS_DIR", str(tmp_path))
    at = open_page(page)
    no_exception(at)
    assert [t.value for t in at.title] == [TITLES[page]]
    messages = [i.value for i in at.info]
    assert messages and all("qcnn " in m and "is missing" in m for m in messages)


def test_partial_results_without_summary(synthetic_dir, tmp_path, monkeypatch):
    """Runs written, summary not yet: pages with per-run data still show it."""
    import shutil

    shutil.copytree(synthetic_dir, tmp_path / "r")
    (tmp_path / "r" / paths.SUMMARY_FILE).unlink()
    monkeypatch.setenv("QCNN_RESULTS_DIR", str(tmp_path / "r"))
    for page in RESULT_PAGES:
        at = open_page(page)
        no_exception(at)
    at = open_page("results")
    assert any("summary.json" in i.value for i in at.info)
    assert chart(at, "roc")  # curves come from the runs themselves


def test_single_seed_summary(tmp_path, monkeypatch):
    """After the first seed the summary has one seed: no SD, the verdict rests on that seed's lesion interval."""
    monkeypatch.setenv(
        "QCNN_RESULTS_DIR", str(write_synthetic_results(tmp_path, n_test=200, seeds=(0,), epochs=4, n_bootstrap=20))
    )
    for page in RESULT_PAGES:
        no_exception(open_page(page))
    at = open_page("results")
    assert "results_view" not in [r.key for r in at.radio]  # nothing to choose between
    basis = verdict(json.loads((tmp_path / paths.SUMMARY_FILE).read_text())).basis
    assert "one seed" in basis and "test lesions only" in basis  # says that seed variation is not counted


# --- the real results, when present --------------------------------------------------------------


@pytest.mark.parametrize("page", list(TITLES))
def test_page_renders_on_the_committed_results(page, monkeypatch):
    monkeypatch.delenv("QCNN_RESULTS_DIR", raising=False)
    at = open_page(page)
    no_exception(at)
    assert [t.value for t in at.title] == [TITLES[page]]
    if (paths.RESULTS_DIR / paths.SUMMARY_FILE).is_file() and page in ("overview", "results"):
        assert not any("summary.json" in i.value for i in at.info)


# --- pieces --------------------------------------------------------------------------------------


def test_pages_without_models_never_import_torch(synthetic_dir, tmp_path):
    """No page script imports torch itself. (With checkpoints present, qcnn.app.model_cache loads the models,
    and torch, on a background thread from the first page view: here there are none, so nothing loads.)"""
    code = f"""
import sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({str(APP)!r}, default_timeout=60).run()
for page in {list(TITLES)!r}:
    at.switch_page(f"pages/{{page}}.py").run()
    assert not at.exception, page
loaded = sorted(m for m in ("torch", "torchvision", "pennylane", "pytorch_grad_cam") if m in sys.modules)
print("LOADED", loaded)
"""
    env = {**os.environ, "QCNN_RESULTS_DIR": str(synthetic_dir), "QCNN_CHECKPOINT_DIR": str(tmp_path)}
    env.pop("QCNN_DATA_DIR", None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=paths.REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "LOADED []" in out.stdout


def test_the_overview_renders_without_pandas():
    """The Overview is the cold start's first page: its "what differs" table reads JSON, never a CSV via pandas."""
    code = f"""
import sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({str(APP)!r}, default_timeout=60).run()
assert not at.exception, at.exception
print("PANDAS", "pandas" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=paths.REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "PANDAS False" in out.stdout


def test_verdict_rules():
    assert metric_verdict("accuracy", 0.06, 0.03, (0.01, 0.05)).status == SUPPORTED
    assert metric_verdict("accuracy", 0.06, 0.01, (-0.01, 0.03)).status == INCONCLUSIVE
    assert metric_verdict("accuracy", 0.06, -0.03, (-0.05, -0.01)).status == CONTRADICTED
    assert metric_verdict("recall", -0.07, -0.05, (-0.08, -0.02)).status == SUPPORTED  # same direction as the study

    def summary(intervals: dict) -> dict:
        diff = {
            "mean": {m: sum(ci) / 2 for m, ci in intervals.items()},
            "ci95": intervals,
            "seed0": {m: {"value": sum(ci) / 2, "ci95": ci} for m, ci in intervals.items()},
        }
        return {"seeds": [0, 1, 2], "app_seed": 0, "difference": diff}

    base = {"recall": [-0.1, -0.05], "auc": [-0.01, 0.01]}
    up, zero, down = [0.01, 0.05], [-0.02, 0.03], [-0.05, -0.01]
    assert verdict(summary({**base, "accuracy": up, "precision": up, "f1": up})).level == "supported"
    assert verdict(summary({**base, "accuracy": up, "precision": zero, "f1": up})).level == "partly supported"
    v = verdict(summary({**base, "accuracy": zero, "precision": zero, "f1": zero}))
    assert v.level == "not supported" and "includes 0" in v.headline and v.tone == "error"
    assert verdict(summary({**base, "accuracy": down, "precision": down, "f1": down})).level == "contradicted"


def test_reported_numbers_are_consistent():
    """The study's printed deltas are its QCNN minus classical values (to rounding)."""
    for m, delta in study.EXPERIMENT_4_DELTA.items():
        q, c = study.EXPERIMENT_4["qcnn"][m], study.EXPERIMENT_4["classical"][m]
        assert abs((q - c) - delta) < 1e-4, m
    assert [e["status"] for e in study.EXPERIMENTS] == ["failed", "failed", "partial", "success"]


def test_synthetic_results_never_go_into_results():
    with pytest.raises(ValueError):
        write_synthetic_results(paths.REPO_ROOT / "results")


# --- Controls (the controls matrix) ------------------------------------------------------------

CONTROLS_FILE = paths.REPO_ROOT / "experiments" / "controls.toml"


def _controls_page(monkeypatch, results_dir) -> AppTest:
    monkeypatch.setenv("QCNN_RESULTS_DIR", str(results_dir))
    app = AppTest.from_file(str(paths.REPO_ROOT / "pages" / "controls.py"), default_timeout=60)
    app.run()
    assert not app.exception, app.exception
    return app


def test_controls_page_renders_a_synthetic_experiment_and_its_words_follow_the_numbers(tmp_path, monkeypatch):
    from qcnn.testing import write_synthetic_experiment

    weak = write_synthetic_experiment(tmp_path / "weak", CONTROLS_FILE, strength={"grid-7": -1.2, "fourier": 0.0})
    app = _controls_page(monkeypatch, weak)
    text = " ".join(m.value for m in app.markdown)
    assert "removing the 14 × 14 grid makes the QCNN worse" in text
    strong = write_synthetic_experiment(tmp_path / "strong", CONTROLS_FILE, strength={"grid-7": 1.2})
    text = " ".join(m.value for m in _controls_page(monkeypatch, strong).markdown)
    assert "removing the 14 × 14 grid makes it better" in text
    app = _controls_page(monkeypatch, strong)
    assert len(app.dataframe) == 3  # the table, seed 0 alone, the machines
    summary = json.loads((strong / "experiments" / "controls" / "summary.json").read_text())
    table = next(d.value for d in app.dataframe if "wall, all seeds (min)" in d.value.columns)
    minutes = dict(zip(table.variant, table["wall, all seeds (min)"], strict=True))
    assert minutes["grid-7"] == f"{summary['variants']['grid-7']['wall_seconds'] / 60:.0f}"
    assert any(f"of the {summary['n_complete']} finished runs took" in c.value for c in app.caption)


def test_a_one_seed_matrix_shows_seed_0_with_lesion_only_intervals_and_no_verdict(tmp_path, monkeypatch):
    from qcnn.testing import write_synthetic_experiment

    folder = write_synthetic_experiment(tmp_path, CONTROLS_FILE, seeds=(0,), strength={"grid-7": -1.2})
    summary = json.loads((folder / "experiments" / "controls" / "summary.json").read_text())
    first = summary["variants"]["grid-7"]["vs_qcnn"]["first_seed"]
    low, high = first["ci95_lesions_only"]["auc"]
    assert summary["variants"]["grid-7"]["vs_qcnn"]["ci95"]["auc"] == [None, None], "no verdict from one seed"
    assert low < first["difference"]["auc"] < high and first["seed"] == 0
    page = _controls_page(monkeypatch, folder)
    assert "not yet measured with two or more seeds" in " ".join(m.value for m in page.markdown)
    assert [e.label for e in page.expander if e.label.startswith("Seed 0 alone")] == [
        "Seed 0 alone: test lesions only, no verdict"
    ]
    (table,) = [d.value.set_index("variant") for d in page.dataframe if "vs classical" in d.value.columns]
    assert (
        table.loc["grid-7", "vs QCNN"]
        == f"{100 * first['difference']['auc']:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}]"
    )
    assert table.loc["qcnn", "vs QCNN"] == "—", "the QCNN is not compared with itself"
    assert list(table.columns) == ["seed", "vs QCNN", "vs classical"]
    captions = " ".join(c.value for c in page.caption)
    assert "The verdicts above wait for a second seed of qcnn, classical, " in captions

    two = _controls_page(monkeypatch, write_synthetic_experiment(tmp_path / "two", CONTROLS_FILE))
    captions = " ".join(c.value for c in two.caption)
    assert "Every variant has two or more seeds" in captions and "wait for a second seed" not in captions


def test_the_quantum_answer_says_what_each_quantum_ingredient_does(tmp_path):
    from qcnn.app.controls import quantum_answer
    from qcnn.testing import write_synthetic_experiment

    folder = write_synthetic_experiment(tmp_path, CONTROLS_FILE, strength={"separable": 0.0, "untrained-circuit": -1.2})
    summary = json.loads((folder / "experiments" / "controls" / "summary.json").read_text())
    answer = quantum_answer(summary, "auc")
    assert "Without entanglement the QCNN is not clearly worse: no clear difference." in answer
    assert "Without training the circuit the QCNN is worse: training the circuit matters." in answer


def test_the_cost_caption_says_what_the_recorded_machines_allow():
    from qcnn.app.controls import machines

    zen4 = "AMD EPYC (avx2, avx512f, avx512_bf16), 2 cores, 2 torch threads"
    zen3 = "AMD EPYC (avx2), 2 cores, 2 torch threads"

    def summary(*per_variant: dict[str, str]) -> dict:
        return {"variants": {f"v{i}": {"machines": m} for i, m in enumerate(per_variant)}}

    order = ["v0", "v1"]
    rows, note = machines(summary({"0": zen4, "1": zen4}, {"0": zen4}), order)
    assert len(rows) == 3 and rows[2] == {"variant": "v1", "seed": 0, "machine": zen4}
    assert "compare directly" in note
    assert "within one machine only" in machines(summary({"0": zen4}, {"0": zen3}), order)[1]
    assert "1 of 2 runs finished before" in machines(summary({"0": zen4}, {"0": "not recorded"}), order)[1]


def test_controls_page_without_results_says_which_command_writes_them(tmp_path, monkeypatch):
    app = _controls_page(monkeypatch, tmp_path)
    assert any("qcnn sweep experiments/controls.toml" in i.value for i in app.info)


def test_controls_page_renders_the_committed_matrix(monkeypatch):
    summary = paths.REPO_ROOT / "results" / "experiments" / "controls" / "summary.json"
    if not summary.is_file():
        pytest.skip("no committed controls matrix yet")
    _controls_page(monkeypatch, paths.REPO_ROOT / "results")


def test_the_timeline_names_each_experiments_reproduced_analogue(tmp_path):
    from qcnn.app.controls import analogue_text
    from qcnn.testing import write_synthetic_experiment

    summary = json.loads(
        (write_synthetic_experiment(tmp_path, CONTROLS_FILE) / "experiments" / "controls" / "summary.json").read_text()
    )
    assert "`bottleneck`" in analogue_text(summary, 1) and "against the full QCNN" in analogue_text(summary, 1)
    assert "not reproduced" in analogue_text(summary, 2)
    assert "`expval-8`" in analogue_text(summary, 3) and "test AUC" in analogue_text(summary, 4)
    assert "not yet measured" in analogue_text({"variants": {}}, 1)


def test_an_experiment_with_its_own_baseline_is_checked_against_the_reproduction(tmp_path, monkeypatch):
    """The controls train their pair in fp32; the summary gives each seed's difference to the bf16 reproduction."""
    from qcnn.testing import write_synthetic_experiment

    reproduction = tmp_path / "reproduction.toml"
    reproduction.write_text(
        'seeds = [0, 1]\n[variants.qcnn]\n[variants.classical]\nmodel = { outcome_map = "classical" }\n'
    )
    write_synthetic_experiment(tmp_path / "results", reproduction, seeds=(0, 1))
    folder = write_synthetic_experiment(tmp_path / "results", CONTROLS_FILE, seeds=(0, 1))
    variants = json.loads((folder / "experiments" / "controls" / "summary.json").read_text())["variants"]
    check = variants["qcnn"]["vs_reproduction"]
    assert check["reproduction_precision"] == ["bf16"] and set(check["per_seed_difference"]) == {"0", "1"}
    # the made-up predictions depend on (seed, variant) only: the same run twice, so exactly no difference
    assert all(v == 0 for v in check["per_seed_difference"]["0"].values())
    assert "vs_reproduction" not in variants["grid-7"]
    page = _controls_page(monkeypatch, folder)
    assert "The baseline pair against the reproduction" in [h.value for h in page.subheader]
    assert any("trains its baseline pair in fp32" in c.value and "bf16" in c.value for c in page.caption)
