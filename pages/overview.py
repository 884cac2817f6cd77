"""Overview: the question, the reported and the reproduced headline, the verdict."""

from qcnn.app.page_overview import render

render()
