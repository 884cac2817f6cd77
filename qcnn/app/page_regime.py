"""Regime: where could an advantage live? Training-set size, the study's image-level split, the backbone."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from qcnn import paths, study
from qcnn.app import experiment_charts, regime, results, ui
from qcnn.app.style import METRIC_LABELS, fmt_value
from qcnn.ledger import wall_time_text

TITLE = "Regime: where could an advantage live?"
METRIC_CHOICES = ("auc", "balanced_accuracy", "f1")


def _progress(name: str, summary: dict | None) -> None:
    """How many of the experiment's runs exist (while some are missing) and how long they took."""
    done, total = regime.progress(name, summary, results.results_dir())
    text = regime.progress_text(name, done, total, summary is not None)
    if text:
        st.warning(text, icon=":material/hourglass_top:")
    if summary is not None:
        st.caption(wall_time_text(summary))


def _metric() -> str:
    """The chosen metric, kept in the URL so a view can be shared."""
    ui.from_url("regime_metric", "metric", "auc", valid=lambda m: m in METRIC_CHOICES)
    metric = st.segmented_control("Metric", METRIC_CHOICES, format_func=METRIC_LABELS.get, key="regime_metric") or "auc"
    ui.to_url("metric", metric, "auc")
    return metric


def _learning_curves(metric: str) -> None:
    st.subheader("Is there a data size at which the QCNN wins?")
    st.caption(
        "Both models on nested, lesion-level, label-stratified subsets of the train pool (1/16 to all of it), "
        "seeds 0–2, the same validation pool for model selection; small sets get at least 600 optimisation steps."
    )
    summary = results.load_experiment_summary(regime.LOWDATA)
    ui.synthetic_notice(summary)
    _progress(regime.LOWDATA, summary)
    points = regime.curve_points(summary, metric)
    st.markdown(regime.size_answer(points, metric))
    if not points:
        return
    left, right = st.container(key="wide_curves").columns(2)
    left.plotly_chart(experiment_charts.learning_curves(points, metric, regime.STUDY_TRAIN_IMAGES), key="regime_curves")
    right.plotly_chart(
        experiment_charts.difference_curve(points, metric, regime.STUDY_TRAIN_IMAGES), key="regime_difference"
    )
    st.caption(
        "Each seed draws its own subset, so a size is a range over seeds (the table; the charts place it at the "
        "mean). Bands and error bars: 95 % intervals over seeds and test lesions; hollow points have one seed (no "
        f"interval). {summary.get('interval_method', '')}"
    )
    rows = [  # the answer's columns first: on a phone the rest scrolls
        {
            "training images": p.size_text,
            "QCNN − classical": p.difference.text(),
            **{
                f"{kind} {METRIC_LABELS[metric]}": fmt_value(metric, p.models[kind]["mean"])
                for kind in ("qcnn", "classical")
            },
            "seeds": p.n_seeds,
            "epochs": p.epochs_text,
            "fraction": f"{p.fraction:g}",
        }
        for p in points
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _cell(block: dict, metric: str, points: bool) -> str:
    mean, ci = block["mean"][metric], block["ci95"][metric]
    if mean is None:
        return "–"
    defined = ci[0] is not None and ci[1] is not None
    if points:
        return f"{100 * mean:+.1f}" + (f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if defined else "")
    return fmt_value(metric, mean) + (f" {ui.interval(metric, ci)}" if defined else "")


def _leakage_table(models: dict, metric: str) -> pd.DataFrame:
    """One row per test set and per inflation, one column per model and their difference: narrow enough
    for a projector whatever the intervals' width."""
    names = {"qcnn": "QCNN", "classical": "Classical CNN", "difference": "QCNN − classical (points)"}
    rows = [
        {"": about["label"]}
        | {name: _cell(models["metrics"][who][part], metric, who == "difference") for who, name in names.items()}
        for part, about in models["parts"].items()
    ]
    for key, label in (
        ("image_minus_leak_free", "inflation: whole − leak-free (points)"),
        ("image_minus_lesion", "image − lesion split (points)"),
    ):
        rows.append(
            {"": label} | {name: _cell(models["inflation"][who][key], metric, True) for who, name in names.items()}
        )
    return pd.DataFrame(rows)


def _counts_table(leakage: dict) -> pd.DataFrame:
    """One row per count, one column per split protocol (narrow: it fits a projector)."""
    counts = {unit: leakage["splits"][unit] for unit in ("lesion", "image")}
    rows = {
        "test images": lambda c: f"{c['n_test']:,}",
        "with a lesion sibling in train": lambda c: f"{c['test_images_with_sibling_in_train']:,}",
        "with a lesion sibling in val": lambda c: f"{c['test_images_with_sibling_in_val']:,}",
        "with a lesion sibling in train or val": lambda c: f"{c['test_images_with_sibling_in_train_or_val']:,}",
        "test lesions with images on both sides": lambda c: (
            f"{c['test_lesions_also_in_train_or_val']:,} of {c['n_test_lesions']:,}"
        ),
        "leak-free test images": lambda c: f"{c['leak_free_test_images']:,}",
        "of them malignant": lambda c: f"{c['leak_free_test_malignant']:,}",
    }
    names = {"lesion": "lesion split (this project)", "image": "image split (the study's way)"}
    return pd.DataFrame(
        [{"": label} | {names[unit]: cell(c) for unit, c in counts.items()} for label, cell in rows.items()]
    )


def _leakage(metric: str) -> None:
    st.subheader("Does the study's split inflate the numbers, and whom does it favour?")
    st.caption(
        "The study split image by image; HAM10000 holds several images of one lesion, so a test image can have "
        "a near-duplicate in training. `qcnn split --unit image` draws the same pool sizes and class balance "
        "image by image (results/split_image.csv); both models are trained on it and scored on its whole test "
        "set and on its leak-free part (test images whose lesion has no image in train or val)."
    )
    summary = results.load_experiment_summary(regime.IMAGESPLIT)
    _progress(regime.IMAGESPLIT, summary)
    leakage = results.read_json(results.results_dir() / paths.LEAKAGE_FILE)
    if not leakage or "splits" not in leakage:
        ui.missing("leakage counts", paths.LEAKAGE_FILE, regime.LEAKAGE_COMMAND)
        return
    st.markdown(regime.counts_text(leakage))
    st.dataframe(_counts_table(leakage), hide_index=True, width="stretch")
    done, _ = regime.progress(regime.IMAGESPLIT, summary, results.results_dir())
    scored = leakage.get("runs_found", {}).get("image", 0)
    if done > scored:
        st.info(
            f"`{paths.LEAKAGE_FILE}` scored {scored} image-split run{'s' if scored != 1 else ''}; {done} are finished. "
            f"`{regime.LEAKAGE_COMMAND}` scores them.",
            icon=":material/refresh:",
        )
    st.markdown(regime.leakage_answer(leakage, metric))
    models = leakage.get("models")
    if models:
        st.dataframe(_leakage_table(models, metric), hide_index=True, width="stretch")
        parts = "; ".join(
            f"{p['label']}: {p['n']:,} images ({p['n_malignant']:,} malignant)" for p in models["parts"].values()
        )
        st.caption(
            f"Seeds {', '.join(map(str, models['seeds']))}. {parts}. Accuracy-type metrics also move with the "
            f"malignant share, which differs between the parts; AUC does not. {models['interval_method']}"
        )


def _backbone(metric: str) -> None:
    st.subheader("Does a better backbone close the gap?")
    st.caption(
        "ImageNet weights cannot be fetched here: the backbone is pretrained on the benign-only pretrain pool "
        "(4 benign diagnoses), its epoch chosen on held-out lesions. The study's ImageNet backbone gave AUC "
        f"{study.EXPERIMENT_4['qcnn']['auc']:.3f} (QCNN) and {study.EXPERIMENT_4['classical']['auc']:.3f} "
        f"(classical) ({ui.REPORTED}). On each backbone both models are trained alike, in float32: on the "
        f"committed one they are the {regime.COMMITTED_BACKBONE_MODELS} experiment's baseline pair."
    )
    backbones = results.load_backbones(metric)
    if not backbones:
        ui.missing("backbone pretraining history", paths.BACKBONE_HISTORY_FILE, "qcnn pretrain-backbone")
        return
    if any(b.name == regime.STRONG_BACKBONE for b in backbones):  # pretrained: how far its models have got
        _progress(regime.STRONG_BACKBONE, results.load_experiment_summary(regime.STRONG_BACKBONE))
    comparison = results.load_backbone_comparison()
    st.markdown(regime.backbone_answer(backbones, metric, comparison))
    st.dataframe(pd.DataFrame(regime.backbone_table(backbones, metric)), hide_index=True, width="stretch")
    if sum(1 for b in backbones if b.models) >= 2:  # one backbone is a single point: the table says it all
        st.plotly_chart(experiment_charts.backbone_strength(backbones, metric), key="regime_backbone")
    if not any(b.name == regime.STRONG_BACKBONE for b in backbones):
        st.info(
            f"**No stronger backbone yet.** `{regime.PRETRAIN_COMMAND}` pretrains one (resumable) into "
            f"checkpoints/{regime.STRONG_BACKBONE}.safetensors and results/{regime.STRONG_BACKBONE}_history.csv; "
            f"both models trained on it are read from results/experiments/{regime.STRONG_BACKBONE}/summary.json.",
            icon=":material/info:",
        )


@st.fragment
def _analysis() -> None:
    metric = _metric()
    _learning_curves(metric)
    _leakage(metric)
    _backbone(metric)


def render() -> None:
    ui.page_header(
        TITLE,
        "The study claims its advantage for tasks that demand generalisation from limited data. Three things "
        f"could move the comparison: the training-set size, the split, and the backbone. All runs: {ui.REPRODUCED}.",
    )
    ui.model_legend()
    _analysis()
