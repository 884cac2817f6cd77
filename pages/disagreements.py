"""Disagreements: per-image correctness, McNemar's test, filters, gallery, Grad-CAM."""

from qcnn.app.page_disagreements import render

render()
