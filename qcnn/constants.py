"""Torch-free constants shared by the pipeline and the app: each lives here once.

Importing this module costs nothing, so the app's pages that need no model can use it.
"""

from __future__ import annotations

MODEL_KINDS = ("qcnn", "classical")  # the reproduction's pair: the QCNN and its classical control
N_QUBITS = 8
N_OUTCOMES = 2**N_QUBITS  # 256 computational-basis outcomes of the projective measurement
GRID = 14  # layer3's spatial size at a 224 x 224 input: 14 x 14 = 196 patches
IMAGE_SIZE = 224
FEATURE_CHANNELS = 256  # layer3's channels
THRESHOLD = 0.5  # the decision threshold the study reports its metrics at
MACHINE_NOT_RECORDED = "not recorded"  # a run finished before completion records named their machine
APP_SEED = 0  # fixed in advance: the seed the app shows per image, never chosen by outcome

CAM_METHODS = ("GradCAM", "GradCAM++", "HiResCAM", "XGradCAM", "LayerCAM", "EigenCAM", "ScoreCAM")
SLOW_CAM_METHODS = ("ScoreCAM",)
DEFAULT_CAM_METHOD = CAM_METHODS[0]  # what Try it starts on, Disagreements draws and the app warms up

MAX_UPLOAD_BYTES = 20_000_000  # 20 MB
MAX_UPLOAD_PIXELS = 40_000_000  # 40 megapixels
MIN_UPLOAD_SIDE = 32
UPLOAD_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif")
