"""Try it: one image (an upload or a held-out test image) through the QCNN and the classical control."""

from qcnn.app.try_it import render

render()
