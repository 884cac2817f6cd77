"""Overview: the question, the reported headline, the reproduced headline with intervals, the verdict."""

from __future__ import annotations

import streamlit as st

from qcnn import paths, study
from qcnn.app import ledger_view, regime, results, ui
from qcnn.app.verdict import difference_interval, direction, verdict

TITLE = "Overview: does the quantum layer really help?"


def _name(metric: str) -> str:
    return {"f1": "F1", "auc": "AUC"}.get(metric, metric.capitalize())


def _headline(summary: dict | None) -> None:
    """One card per headline metric: the study's difference beside the reproduced one with its interval."""
    if summary is not None:
        n_seeds = len(summary["seeds"])
        ours = (
            f"mean over {n_seeds} seed{'s' if n_seeds > 1 else ''} on {summary['n_test']:,} held-out test images "
            f"({summary['n_test_malignant']:,} malignant); 95% intervals count "
            + ("training seeds and test lesions " if n_seeds > 1 else "test lesions only (one seed) ")
            + f"({summary['bootstrap_unit']}-level bootstrap, {summary['n_bootstrap']:,} resamples)"
        )
    st.markdown(
        f"**QCNN − classical**, the study's headline metrics. Left in each card: {ui.REPORTED} — Experiment "
        "4, one run, no intervals. Right: "
        + (f"{ui.REPRODUCED} — {ours}." if summary else f"{ui.REPRODUCED} — not available yet.")
    )
    cols = st.container(key="cards_headline").columns(len(study.HEADLINE_METRICS), gap="medium")
    for col, m in zip(cols, study.HEADLINE_METRICS, strict=True):
        with col.container(border=True):
            st.markdown(f"**{_name(m)}** · QCNN − classical, in points")
            left, right = st.columns(2)
            rq, rc = study.EXPERIMENT_4["qcnn"][m], study.EXPERIMENT_4["classical"][m]
            left.metric(
                "reported",
                f"{100 * study.EXPERIMENT_4_DELTA[m]:+.2f}",
                help=f"QCNN {ui.pct(rq, 2)} vs classical {ui.pct(rc, 2)}",
            )
            left.caption(f"{ui.pct(rq)} vs {ui.pct(rc)}")
            if summary is None:
                right.metric("reproduced", "–")
                continue
            _, ci = difference_interval(summary, m)
            q, c = summary["models"]["qcnn"]["mean"][m], summary["models"]["classical"]["mean"][m]
            right.metric(
                "reproduced",
                f"{100 * summary['difference']['mean'][m]:+.2f}",
                help=f"QCNN {ui.pct(q, 2)} vs classical {ui.pct(c, 2)}; 95% interval {ui.interval_pts(ci)}",
            )
            right.caption(f"95% CI {ui.interval_pts(ci, 1)} · **{direction(ci)}**")
    rep = (
        f"recall {ui.pts(study.EXPERIMENT_4_DELTA['recall'])}, AUC {study.EXPERIMENT_4['qcnn']['auc']:.4f} vs "
        f"{study.EXPERIMENT_4['classical']['auc']:.4f}"
    )
    text = f"Also reported: {rep}."
    if summary is not None:
        auc = {k: summary["models"][k]["mean"]["auc"] for k in ("qcnn", "classical")}
        text += (
            f" Also reproduced: recall {ui.pts(summary['difference']['mean']['recall'])}, AUC "
            f"{auc['qcnn']:.4f} vs {auc['classical']:.4f}."
        )
    st.caption(text + f' The study calls its result "{study.SELF_ASSESSMENT}".')


def _verdict(summary: dict) -> None:
    v = verdict(summary)
    box = {"success": st.success, "warning": st.warning, "error": st.error}[v.tone]
    box(f"**Verdict on the headline claim.** {v.headline}", icon=":material/balance:")  # the headline names the level
    with st.expander("How the verdict is derived"):
        st.markdown(
            f"Basis: the {v.basis}. Each metric reads *QCNN better* when the interval of QCNN − classical "
            "lies above 0, *classical better* when it lies below, *inconclusive* when it includes 0. Against "
            "the study that *supports* its difference (same side), *contradicts* it (other side) or is "
            "*inconclusive*. The headline claim is accuracy, precision and F1."
        )
        for mv in v.metrics:
            st.markdown(f"- **{mv.status}** — {mv.sentence}")
        ledger_view.render_metric_verdicts(results.load_ledger())
        mc = summary.get("mcnemar")
        if mc:
            st.markdown(
                f"- McNemar's exact test (seed {mc['seed']}, threshold {mc['threshold']}): "
                f"{mc['only_qcnn_correct']:,} images only the QCNN got right vs "
                f"{mc['only_classical_correct']:,} only the classical model got right, "
                f"p = {mc['p_value']:.3g}."
            )


def _markdown_table(header: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _setting_table(split: dict | None, summary: dict | None, leakage: dict | None) -> None:
    if split is not None:
        pools = split["pools"]
        test = pools.get("test")
        train_val = (
            f"{pools['train']['images']:,} train / {pools['val']['images']:,} val images"
            if {"train", "val"} <= set(pools)
            else "see split.csv"
        )
        data_ours = (
            f"HAM10000, all {split['n_images']:,} images of {split['n_lesions']:,} lesions at 200×150 px, "
            "resized to 224×224"
        )
        test_ours = (
            f"{test['images']:,} images ({test['malignant']:,} malignant, "
            f"{100 * test['malignant'] / test['images']:.1f} %), lesions unseen in training"
            if test
            else "–"
        )
    else:
        data_ours, train_val, test_ours = "HAM10000 at 200×150 px (split.csv missing)", "–", "–"
    n = len(summary["seeds"]) if summary else 0
    seeds = (
        f"{n} seed{'s' if n > 1 else ''} ({', '.join(map(str, summary['seeds']))}), each a full training run"
        if summary
        else "5 seeds (planned)"
    )
    rows = [
        ("Data", "HAM10000-derived melanoma set (malignant vs benign)", data_ours),
        (
            "Split",
            "one split, drawn image by image (`random_split`); Experiment 3 used 3,000 balanced images "
            "(2,400 train / 600 val)",
            "lesion-disjoint pools: pretrain / train / val / test (no lesion in two pools); "
            f"{regime.split_effect(leakage)} ([measured on Regime](regime))",
        ),
        (
            "Training set",
            "small and balanced",
            f"{train_val}; {regime.size_effect(results.load_experiment_summary(regime.LOWDATA))} "
            "([learning curves on Regime](regime))",
        ),
        ("Test set", "held-out set, about 22 % malignant (implied by the reported numbers)", test_ours),
        (
            "Backbone",
            "ResNet18, ImageNet-pretrained, partially unfrozen",
            "ResNet18 pretrained here on the benign-only pretrain pool (ImageNet weights cannot be downloaded); "
            "conv1..layer2 frozen, layer3 fine-tuned; "
            f"{regime.backbone_effect(results.backbone_summaries(), results.load_backbone_comparison())} "
            "([does a better backbone close the gap? Regime](regime))",
        ),
        (
            "Quantum layer",
            "8 qubits, data re-uploading, 256 basis-state probabilities (PennyLane)",
            "the same design (8 qubits, 2 re-uploads, StronglyEntanglingLayers, 256 probabilities per patch), "
            "simulated exactly as a batched state vector in PyTorch",
        ),
        (
            "Classical control",
            "same data, same backbone — only the quantum layer differs",
            "same network with softmax(Linear(8 → 256)) in place of the circuit",
        ),
        ("Repetitions", "one run", seeds),
        (
            "Uncertainty",
            "none reported",
            "95% intervals over training seeds and test lesions (t over seeds plus "
            "lesion-bootstrap variance); McNemar's exact test on seed 0",
        ),
    ]
    st.markdown(_markdown_table(["", ui.REPORTED, ui.REPRODUCED], [(f"**{a}**", b, c) for a, b, c in rows]))
    if split is not None:
        with st.expander("Images per pool (from results/split.csv)"):
            st.markdown(
                _markdown_table(
                    ["pool", "images", "lesions", "malignant images", "malignant %"],
                    [
                        (
                            pool,
                            f"{c['images']:,}",
                            f"{c['lesions']:,}",
                            f"{c['malignant']:,}",
                            f"{100 * c['malignant'] / c['images']:.1f}",
                        )
                        for pool, c in split["pools"].items()
                    ],
                )
            )
            st.caption(
                "pretrain: benign lesions only, used to pretrain the backbone in place of ImageNet. "
                "excluded: further images of lesions already in train/val (one image per benign lesion)."
            )


def render() -> None:
    ui.page_header(TITLE, f"The study: “{study.TITLE}” — {study.STACK}.")
    st.markdown(
        f"**The question.** {study.QUESTION} The study answers *yes*: {study.HEADLINE} (Experiment 4). "
        "This app puts that claim next to an independent reproduction with several seeds and confidence "
        "intervals."
    )
    ui.model_legend()
    summary, split = results.load_summary(), results.split_summary()
    ui.synthetic_notice(summary)

    _headline(summary)
    if summary is None:
        ui.missing("reproduced results", "summary.json")
    if summary is not None:
        _verdict(summary)
    ledger_view.render_ledger(results.load_ledger())
    st.markdown("**Go deeper.**")
    first, second = st.columns(2), st.columns(2)
    first[0].page_link("pages/controls.py", label="Which of the four moves matter? (Controls)", icon=":material/tune:")
    first[1].page_link(
        "pages/regime.py",
        label="Data size, the study's split, the backbone (Regime)",
        icon=":material/stacked_line_chart:",
    )
    second[0].page_link(
        "pages/results.py", label="Thresholds, calibration, subgroups (Results)", icon=":material/bar_chart:"
    )
    second[1].page_link("pages/hardware.py", label="Shots, noise and the circuit's spectrum", icon=":material/memory:")

    st.subheader("What differs between the study's setting and ours")
    if split is None:
        ui.missing("split", "split.csv")
    _setting_table(split, summary, results.read_json(results.results_dir() / paths.LEAKAGE_FILE))
    ui.not_clinical_notice()
