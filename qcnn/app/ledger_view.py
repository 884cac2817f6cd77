"""The claim ledger and the per-metric verdicts, as written by ``qcnn ledger`` (no computation here)."""

from __future__ import annotations

import streamlit as st

from qcnn.app import ui

STATUS_COLOURS = {
    "reproduced": "green",
    "partly": "orange",
    "not reproduced": "gray",
    "contradicted": "red",
    "not yet measured": "blue",
}
VERDICT_COLOURS = {"QCNN better": "violet", "classical better": "blue", "inconclusive": "gray"}


def badge(text: str, colours: dict[str, str]) -> str:
    return f":{colours.get(text, 'gray')}-badge[{text}]"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_ledger(ledger: dict | None) -> None:
    """One row per claim of the study: reported, measured with its interval, status by a stated rule."""
    st.subheader("Claim by claim")
    if ledger is None:
        ui.missing("claim ledger", "ledger.json")
        return
    counts = {s: sum(c["status"] == s for c in ledger["claims"]) for s in STATUS_COLOURS}
    st.markdown(" ".join(f"{badge(s, STATUS_COLOURS)} {n}" for s, n in counts.items() if n))
    rows = ["| claim (study) | reported | measured (mean [95% CI]) | status |", "|---|---|---|---|"]
    for c in ledger["claims"]:
        rows.append(
            f"| {_cell(c['claim'])} | {_cell(c['reported'])} | {_cell(c['measured'])} | "
            f"{badge(c['status'], STATUS_COLOURS)} |"
        )
    st.markdown("\n".join(rows))
    with st.expander("How each status is decided"):
        st.markdown(
            f"Every claim is split into parts, each a difference with a 95% interval. {ledger['part_rule']}. "
            f"Then: {ledger['status_rule']}."
        )
        if ledger.get("interval_method"):
            st.markdown(f"Intervals of differences between the models: {ledger['interval_method'].rstrip('.')}.")
        for c in ledger["claims"]:
            parts = "; ".join(f"{p['name']}: {p['outcome']}" for p in c["parts"])
            st.markdown(
                f"- **{_cell(c['claim'])}** — {c['note'] or 'no parts yet'}." + (f" Parts: {parts}." if parts else "")
            )


def render_metric_verdicts(ledger: dict | None) -> None:
    """The reproduced difference per reported metric with its interval and verdict."""
    if ledger is None or not ledger.get("metrics"):
        return
    rows = [
        "| metric | QCNN − classical (mean over seeds) | 95% interval (seeds and lesions) | verdict | reported Δ |",
        "|---|---|---|---|---|",
    ]
    for v in ledger["metrics"]:
        lo, hi = v["ci95"]
        rows.append(
            f"| {v['metric'] if v['metric'] not in ('f1', 'auc') else v['metric'].upper()} | "
            f"{ui.pts(v['difference'])} | [{100 * lo:+.2f}, {100 * hi:+.2f}] | "
            f"{badge(v['verdict'], VERDICT_COLOURS)} | {ui.pts(v['reported'])} |"
        )
    st.markdown("\n".join(rows))
