"""Shared page bits: missing-file messages, the model legend, labels, notices, number formatting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from qcnn.app.style import APP_CSS, MODEL_COLOURS, MODEL_LABELS, fmt_value
from qcnn.app.results import results_dir

FAVICON = Path(__file__).with_name("favicon.png")  # the two model colours, drawn by hand: no CDN, no data
REPORTED = "reported (study)"
REPRODUCED = "reproduced (this project)"

# Which command writes which file (the pipeline's CLI).
COMMANDS = {
    "split.csv": "qcnn split",
    "backbone_history.csv": "qcnn pretrain-backbone",
    "summary.json": "qcnn reproduce",
    "runs": "qcnn reproduce",
    "ledger.json": "qcnn ledger",
    "referee.json": "qcnn referee",
}


def missing(what: str, file: str, command: str | None = None) -> None:
    """A clear note instead of a failure: which file is missing and which command writes it."""
    command = command or COMMANDS.get(file.split("/")[0], "qcnn reproduce")
    path = results_dir() / file
    st.info(
        f"**No {what} yet.** `{_short(path)}` is missing. Run `{command}` to produce it "
        f"(or point the app at another results folder with `QCNN_RESULTS_DIR`).",
        icon=":material/info:",
    )


def ensure_app_entry() -> None:
    """Make a page script always run inside streamlit_app.py's navigation.

    With a pages/ folder beside the entry point, Streamlit starts every new server in its old
    "pages directory" mode: until some session has run streamlit_app.py (which calls
    st.navigation), a deep link such as /results runs pages/results.py on its own — no wide
    layout, no custom navigation. When a page finds itself in that mode it switches the mode off
    and reruns, so the entry point runs and opens the same page (same URL path).
    """
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager

    if config.get_option("global.appTest"):  # AppTest resets the mode on every run; a rerun would drop clicks
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


def page_header(title: str, caption: str) -> None:
    ensure_app_entry()
    st.title(title)
    st.caption(caption)


def model_legend() -> None:
    """The two models' colours, as used on every chart."""
    chips = " ".join(
        f"<span style='display:inline-block;padding:2px 10px;margin-right:6px;border-radius:10px;"
        f"background:{MODEL_COLOURS[k]};color:white;font-size:0.85em'>{MODEL_LABELS[k]}</span>"
        for k in MODEL_COLOURS
    )
    st.markdown(
        f"{chips} <span style='color:#777;font-size:0.85em'>· the same colours on every chart</span>",
        unsafe_allow_html=True,
    )


def synthetic_notice(summary_or_config: dict | None) -> None:
    if summary_or_config and summary_or_config.get("synthetic"):
        st.warning(
            "These result files are **synthetic demo data** (qcnn.testing), not a real reproduction.",
            icon=":material/science:",
        )


def not_clinical_notice() -> None:
    st.warning(
        "**Not a clinical tool.** This app re-examines a research comparison on a public data set. "
        "It must not be used to diagnose or triage skin lesions; see a dermatologist.",
        icon=":material/medical_services:",
    )


def apply_layout() -> None:
    """The app's layout rules (qcnn.app.style.APP_CSS): wrapping cards, scaled metrics, scrolling tables."""
    st.html(APP_CSS)


def sidebar_info() -> None:
    """Where the numbers come from, folded away: a presenter's sidebar shows only the navigation."""
    with st.sidebar, st.expander("About the data"):
        st.caption(
            "Images: HAM10000 (10,015 dermoscopy images of pigmented skin lesions, public). Every "
            "reproduced number is read from the project's result files, written by its `qcnn` commands."
        )
        st.caption(f"Result files: `{_short(results_dir())}` (set `QCNN_RESULTS_DIR` to use another folder).")


def _short(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --- shareable views: widget values mirrored in the URL's query string ------------------------------


def from_url(
    key: str,
    param: str,
    default: Any,
    parse: Callable[[str], Any] = str,
    valid: Callable[[Any], bool] = lambda _: True,
    many: bool = False,
) -> None:
    """Give widget ``key`` its starting value: the URL's ``param`` when valid, else ``default``.

    Call before creating the widget, and create it without a value/index/default argument (its
    value comes from session state). Runs only while the widget has no state yet, so the URL is
    read when a view is opened, and the widget owns the value afterwards.
    """
    if key in st.session_state:
        return
    value = default
    raw = st.query_params.get_all(param) if many else st.query_params.get(param)
    if raw:
        try:
            parsed = [parse(r) for r in raw] if many else parse(raw)
        except ValueError:
            parsed = None
        if parsed is not None and valid(parsed):
            value = parsed
    st.session_state[key] = value


def to_url(param: str, value: Any, default: Any, fmt: Callable[[Any], str] = str) -> None:
    """Write a widget's value into the URL (left out when it is the default, to keep links short)."""
    if value == default or value is None:
        if param in st.query_params:
            del st.query_params[param]
        return
    shown = [fmt(v) for v in value] if isinstance(value, list | tuple) else fmt(value)
    if st.query_params.get_all(param) != (shown if isinstance(shown, list) else [shown]):
        st.query_params[param] = shown


def pct(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f} %"


def pts(value: float, digits: int = 2) -> str:
    return f"{100 * value:+.{digits}f} pts"


def interval_pts(ci: list[float] | tuple[float, float], digits: int = 2) -> str:
    return f"[{100 * ci[0]:+.{digits}f}, {100 * ci[1]:+.{digits}f}]"


def value(metric: str, v: float) -> str:
    return fmt_value(metric, v)


def interval(metric: str, ci: list[float] | tuple[float, float]) -> str:
    return f"[{fmt_value(metric, ci[0])}, {fmt_value(metric, ci[1])}]"
