"""QCNN vs CNN on HAM10000: the study, its reproduction, and a place to try both models."""

import streamlit as st

st.set_page_config(page_title="QCNN vs CNN · melanoma", page_icon="⚛️", layout="wide")
st.title("Quantum vs classical CNN for melanoma classification")
st.info("The app's pages are being built; run `qcnn --help` for the pipeline.")
