"""Training curves: losses, generalisation gap, validation AUC, cost per epoch."""

from qcnn.app.page_training import render

render()
