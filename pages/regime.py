"""Regime: learning curves in the low-data regime, the study's image-level split, a stronger backbone."""

from qcnn.app.page_regime import render

render()
