"""Controls: the four moves removed one at a time, and a sceptic's controls."""

from qcnn.app.page_controls import render

render()
