"""Results: reported vs reproduced, curves, a live threshold, matched recall, every seed."""

from qcnn.app.page_results import render

render()
