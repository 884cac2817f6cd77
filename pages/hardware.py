"""Quantum hardware: the QCNN under finite shots and gate noise, what a device would cost, its Fourier spectrum."""

from qcnn.app.page_hardware import render

render()
