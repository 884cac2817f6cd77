"""QCNN vs CNN on HAM10000: the study, its reproduction, and a place to try both models.

Run with ``streamlit run streamlit_app.py``. Each page is a short script in pages/ calling into
``qcnn.app``; results are read from results/ (or ``$QCNN_RESULTS_DIR``).
"""

import streamlit as st

from qcnn.app.model_cache import hold_pages_until_loaded, start_loading
from qcnn.app.ui import FAVICON, apply_layout, sidebar_info

# A local file: an emoji or material icon would be fetched from a font CDN, and demos run offline.
st.set_page_config(page_title="QCNN vs CNN · melanoma", page_icon=str(FAVICON), layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("pages/timeline.py", title="Timeline", icon=":material/timeline:"),
    st.Page("pages/results.py", title="Results", icon=":material/bar_chart:"),
    st.Page("pages/controls.py", title="Controls", icon=":material/tune:"),
    st.Page("pages/regime.py", title="Regime", icon=":material/stacked_line_chart:"),
    st.Page("pages/training.py", title="Training curves", icon=":material/show_chart:"),
    st.Page("pages/disagreements.py", title="Disagreements", icon=":material/compare_arrows:"),
    st.Page("pages/try_it.py", title="Try it", icon=":material/science:"),
    st.Page("pages/hardware.py", title="Quantum hardware", icon=":material/memory:"),
]

page = st.navigation(PAGES)
apply_layout()
with st.sidebar:
    st.caption("**Reported** = the study's numbers. **Reproduced** = this project's runs. Not a clinical tool.")
sidebar_info()
hold_pages_until_loaded()  # only under `qcnn app --preload`
page.run()
# After the page, so the first view is not slowed by torch's import: from here the models load in the
# background (Try it, Grad-CAM). `qcnn app` starts them even earlier, with the server process.
start_loading()
