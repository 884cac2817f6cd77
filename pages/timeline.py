"""Timeline: the study's four experiments."""

from qcnn.app.page_timeline import render

render()
