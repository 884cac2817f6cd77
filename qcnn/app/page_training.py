"""Training curves: losses, the generalisation gap, validation AUC, cost per epoch, the backbone."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from qcnn import study
from qcnn.app import charts, results, ui

TITLE = "Training curves: does the QCNN generalise better?"


def _end_points(histories: pd.DataFrame, highlight: int) -> pd.DataFrame:
    """Last-epoch losses (seed ``highlight`` / mean over seeds), the gap, and the kept epochs."""
    train_col, val_col = f"final train loss (seed {highlight} / mean)", f"final val loss (seed {highlight} / mean)"
    rows = []
    for kind in charts.KINDS:
        runs = histories[(histories.kind == kind) & histories.complete]
        if not len(runs):
            continue
        last = runs.sort_values("epoch").groupby("seed").tail(1).set_index("seed")
        best = runs[runs.best].groupby("seed").head(1).set_index("seed")

        def both(col: str, last=last) -> str:
            own = f"{last.loc[highlight, col]:.3f}" if highlight in last.index else "–"
            return f"{own} / {last[col].mean():.3f}"

        rows.append(
            {
                "model": charts.MODEL_LABELS[kind],
                "seeds": str(len(last)),
                train_col: both("train_loss"),
                val_col: both("val_loss"),
                "final gap (mean)": f"{(last.val_loss - last.train_loss).mean():+.3f}",
                "kept epoch (median)": f"{best.epoch.median():.0f}" if len(best) else "–",
                "val AUC, kept (mean)": f"{best.val_auc.mean():.3f}" if len(best) else "–",
            }
        )
    rows.append(
        {
            "model": f"Classical CNN · {ui.REPORTED}",
            "seeds": "1 run",
            train_col: f"{study.CLASSICAL_END_TRAIN_LOSS:.2f}",
            val_col: f"{study.CLASSICAL_END_VAL_LOSS:.2f}",
            "final gap (mean)": f"{study.CLASSICAL_END_VAL_LOSS - study.CLASSICAL_END_TRAIN_LOSS:+.2f}",
            "kept epoch (median)": "–",
            "val AUC, kept (mean)": "–",
        }
    )
    return pd.DataFrame(rows)


def generalisation_answer(histories: pd.DataFrame) -> tuple[str, str] | None:
    """The page's question answered from the complete runs: (tone, sentence), or None without both models.

    Measures, paired by seed: the final generalisation gap (validation minus training loss at the
    last epoch) and the validation AUC at the kept epoch. "Yes" needs a smaller gap in every seed
    and a mean validation AUC at least as high (a smaller gap with a worse score is underfitting,
    not better generalisation); "no" a gap larger in every seed; anything else is qualified.
    """
    done = histories[histories.complete]
    if not {"qcnn", "classical"} <= set(done.kind):
        return None
    last = done.sort_values("epoch").groupby(["kind", "seed"]).tail(1).set_index(["kind", "seed"])
    best = done[done.best].groupby(["kind", "seed"]).head(1).set_index(["kind", "seed"])
    seeds = sorted(set(last.loc["qcnn"].index) & set(last.loc["classical"].index))
    if not seeds:
        return None
    gap = {k: last.loc[k].loc[seeds].gap for k in charts.KINDS}
    smaller, n = int((gap["qcnn"].to_numpy() < gap["classical"].to_numpy()).sum()), len(seeds)
    auc = (
        {k: float(best.loc[k].val_auc.mean()) for k in charts.KINDS}
        if set(charts.KINDS) <= set(best.index.get_level_values(0))
        else None
    )
    auc_holds = auc is None or auc["qcnn"] >= auc["classical"]
    if smaller == n and auc_holds:
        tone, answer = "success", "Yes"
    elif smaller == n:
        tone, answer = "warning", "Only by the loss gap"
    elif smaller == 0:
        tone, answer = "error", "No"
    else:
        tone, answer = "warning", "Not consistently"
    text = (
        f"**{answer}.** At the last epoch the QCNN's validation − training loss gap is smaller than the classical "
        f"control's in {smaller} of {n} seed{'s' if n > 1 else ''} (mean {gap['qcnn'].mean():+.3f} vs "
        f"{gap['classical'].mean():+.3f}; the study's classical model ended at "
        f"{study.CLASSICAL_END_VAL_LOSS - study.CLASSICAL_END_TRAIN_LOSS:+.2f})."
    )
    if auc is not None:
        text += (
            f" Validation AUC at the kept epoch: QCNN {auc['qcnn']:.3f} vs classical {auc['classical']:.3f} "
            "(mean over seeds)"
            + (
                "."
                if auc_holds
                else ": the smaller gap comes with a lower validation "
                "score, so the QCNN fits less rather than generalises better."
            )
        )
    return tone, text


SETTINGS = (
    "epochs_run",
    "batch_size",
    "lr_layer3",
    "lr_head",
    "weight_decay",
    "augment",
    "precision",
    "n_train",
    "n_val",
)


def _configs(seed: int) -> None:
    """Parameter counts per part and the training settings of both models, from their config.json."""
    configs = {k: results.load_config(k, seed) for k in charts.KINDS}
    configs = {k: v for k, v in configs.items() if v}
    if not configs:
        return
    with st.expander(f"Model sizes and training settings (seed {seed}, from config.json)"):
        parts: dict[str, dict[str, str]] = {}
        for kind, config in configs.items():
            for part, counts in config.get("parameters", {}).items():
                parts.setdefault(part, {})[charts.MODEL_LABELS[kind]] = (
                    f"{counts['trainable']:,} trainable / {counts['total']:,}"
                )
        left, right = st.container(key="wide_configs").columns([3, 2], gap="large")
        with left:
            st.markdown("**Parameters per part**")
            order = [p for p in parts if p != "all"] + (["all"] if "all" in parts else [])
            st.table(pd.DataFrame(parts).T.loc[order].fillna("–").rename_axis("part"))
            st.caption(
                "The models share everything except the 8 → 256 map: the quantum circuit or its classical control."
            )
        with right:
            st.markdown("**Training settings**")
            settings = pd.DataFrame(
                {
                    charts.MODEL_LABELS[k]: [str(results.training_settings(c).get(s, "–")) for s in SETTINGS]
                    for k, c in configs.items()
                },
                index=list(SETTINGS),
            )
            st.table(settings.rename_axis("setting"))


def _timing(histories: pd.DataFrame) -> None:
    st.header("Cost per epoch")
    rows = [{"kind": k, "source": ui.REPORTED + " · Exp. 3", "seconds": s} for k, s in study.SECONDS_PER_EPOCH.items()]
    for kind in charts.KINDS:
        runs = histories[histories.kind == kind]
        if len(runs) and "seconds" in runs:
            rows.append({"kind": kind, "source": ui.REPRODUCED, "seconds": float(runs.seconds.median())})
    table = pd.DataFrame(rows)
    left, right = st.container(key="wide_timing").columns([3, 2], gap="large")
    with left:
        st.plotly_chart(charts.timing_figure(table), key="timing", config={"displayModeBar": False})
    with right:
        rep = study.SECONDS_PER_EPOCH
        st.markdown(
            f"**{ui.REPORTED}:** about {rep['qcnn']:.0f} s per epoch for the QCNN (PennyLane default.qubit "
            f"on a GPU) against about {rep['classical']:.0f} s for the classical control — {study.SLOWDOWN}."
        )
        ours = table[table.source == ui.REPRODUCED].set_index("kind").seconds
        if {"qcnn", "classical"} <= set(ours.index):
            st.markdown(
                f"**{ui.REPRODUCED}:** median {ours['qcnn']:.1f} s vs {ours['classical']:.1f} s per epoch "
                f"(×{ours['qcnn'] / ours['classical']:.1f}) on a 2-core CPU, from history.csv. Epochs here "
                "reuse cached backbone features, so the two setups' absolute times are not comparable; "
                "the ratio is the point."
            )


def render() -> None:
    ui.page_header(
        TITLE,
        "The study's first finding: the classical model overfits (train loss 0.06, val loss 0.79) "
        "while the QCNN's losses stay balanced. Here: every reproduced run, epoch by epoch.",
    )
    ui.model_legend()
    histories = results.load_histories()
    if histories is None:
        ui.missing("training histories", results.missing_run_file("history.csv"))
    else:
        summary = results.load_summary()
        ui.synthetic_notice(summary)
        seeds = sorted(histories.seed.unique().tolist())
        highlight = results.default_seed(seeds, summary)
        answer = generalisation_answer(histories)
        if answer is not None:
            tone, text = answer
            {"success": st.success, "warning": st.warning, "error": st.error}[tone](text, icon=":material/balance:")
        st.caption(
            f"Seed {highlight} bold, the other seeds faint; ★ marks the kept epoch (best validation AUC). "
            "Losses are the binary cross-entropy of each epoch."
        )
        st.plotly_chart(
            charts.loss_figure(histories, highlight, study.CLASSICAL_END_TRAIN_LOSS, study.CLASSICAL_END_VAL_LOSS),
            key="losses",
        )
        st.caption(
            "Dashed lines: the study's reported end points of its classical model (train 0.06, val 0.79), "
            "for comparison with the reproduced curves."
        )
        left, right = st.container(key="wide_curves").columns(2, gap="large")
        with left:
            st.markdown("**Generalisation gap** (validation − training loss)")
            st.plotly_chart(
                charts.line_figure(histories, "gap", highlight, "val − train loss", zero_line=True), key="gap"
            )
            st.caption(
                "Above 0: the model fits the training set better than unseen lesions. A gap that widens "
                "over epochs is overfitting."
            )
        with right:
            st.markdown("**Validation AUC**")
            st.plotly_chart(charts.line_figure(histories, "val_auc", highlight, "validation AUC"), key="auc")
            st.caption("The kept weights are those of the ★ epoch, not the last one.")
        st.markdown("**End points**")
        st.table(_end_points(histories, highlight), hide_index=True)
        running = histories[~histories.complete].groupby(["kind", "seed"]).epoch.max()
        if len(running):
            names = ", ".join(f"{charts.MODEL_LABELS[k]} seed {s} (epoch {e})" for (k, s), e in running.items())
            st.caption(f"Still training, drawn above but not counted here: {names}.")
        _configs(highlight)
        _timing(histories)

    with st.expander("The backbone's pretraining (stands in for ImageNet)"):
        backbone = results.load_backbone_history()
        if backbone is None:
            ui.missing("backbone history", "backbone_history.csv")
        else:
            st.caption(
                "ResNet18 (conv1..layer3) pretrained to tell apart the four benign diagnoses (nv, bkl, df, "
                "vasc) of the pretrain pool — it never sees a malignant lesion — since ImageNet weights cannot "
                "be downloaded here. Loss on a log scale; the kept epoch is marked."
            )
            st.plotly_chart(charts.backbone_figure(backbone), key="backbone")
            config = results.load_backbone_config()
            if config:
                st.caption("Pretraining settings (backbone_history.json):")
                st.json(config, expanded=False)
