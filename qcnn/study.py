"""What the study reports: the only place in the project where its numbers live.

Source: ``shared/STUDY.md`` ("Quantum vs. classical CNNs for medical imaging", an MSc research
project). Everything here is the *reported* side of a comparison; the *reproduced* side is always
read from ``results/``. Metrics are fractions in [0, 1] (the study prints Experiment 4 in percent;
the app converts for display). Plain data, no imports: cheap for every page.
"""

from __future__ import annotations

TITLE = "Quantum vs. classical CNNs for medical imaging"
QUESTION = (
    "Can a hybrid quantum-classical network beat a standard CNN at low-data melanoma "
    "(malignant vs benign) classification?"
)
STACK = "Python, PyTorch, PennyLane, ResNet18, an 8-qubit parameterised quantum circuit (PQC)"
SELF_ASSESSMENT = "not a clinical result, not a universal claim — a narrow, reproducible advantage on one real problem"

# The metrics the study reports for Experiments 3 and 4, in its order.
REPORTED_METRICS = ("accuracy", "precision", "recall", "f1", "auc")

# Experiment 4, held-out test set.
EXPERIMENT_4 = {
    "qcnn": {"accuracy": 0.7773, "precision": 0.4997, "recall": 0.8504, "f1": 0.6295, "auc": 0.8906},
    "classical": {"accuracy": 0.7137, "precision": 0.4326, "recall": 0.9195, "f1": 0.5884, "auc": 0.8858},
}
# The deltas as printed by the study (QCNN minus classical; percentage points, AUC in AUC units).
EXPERIMENT_4_DELTA = {"accuracy": 0.0636, "precision": 0.0671, "recall": -0.0691, "f1": 0.0411, "auc": 0.0048}
# The study's headline: the three metrics it claims as the quantum advantage.
HEADLINE_METRICS = ("accuracy", "precision", "f1")
HEADLINE = "+6.36 % accuracy, +6.71 % precision, +4.11 % F1 over the classical control"
EXPERIMENT_4_MALIGNANT_FRACTION = 0.22  # implied by the reported numbers (about 22 % malignant)

# Experiment 3, test set of 9,942 unseen images (2,212 malignant).
EXPERIMENT_3 = {
    "qcnn": {"auc": 0.8307, "accuracy": 0.7138, "f1": 0.5513, "recall": 0.7902, "precision": 0.4233},
    "classical": {"auc": 0.8398, "accuracy": 0.7341, "f1": 0.5675, "recall": 0.7844, "precision": 0.4446},
}
EXPERIMENT_3_TEST = {"n": 9942, "n_malignant": 2212, "n_train": 2400, "n_val": 600}

# Finding 1 (generalisation): the classical model's end points.
CLASSICAL_END_TRAIN_LOSS = 0.06
CLASSICAL_END_VAL_LOSS = 0.79

# Training cost in Experiment 3 (PennyLane default.qubit on a GPU vs the classical control).
SECONDS_PER_EPOCH = {"qcnn": 850.0, "classical": 4.0}
SLOWDOWN = "roughly 200×"

FINDINGS = (
    (
        "Superior generalisation (anti-overfitting)",
        "The classical model drove training loss down to 0.06 while validation loss climbed to 0.79; "
        "the QCNN's train and validation losses stayed balanced — the quantum layer acting as a "
        "regulariser on a small dataset.",
    ),
    (
        "Escaping the recall trap",
        "The classical model inflated recall by calling almost everything positive; the QCNN kept 85 % "
        "recall while raising precision.",
    ),
    (
        "Quantum expressivity",
        "Re-uploading plus projective measurement widened the output from 8 to 256 dimensions, allowing "
        "finer discrimination between similar-looking lesions.",
    ),
)

FOUR_MOVES = (
    ("ResNet18", "partially unfrozen classical backbone"),
    ("14 × 14 grid", "196 feature patches, 4× the previous resolution (layer3 output: 256 × 14 × 14)"),
    ("Data re-uploading", "features encoded into the circuit twice, with trainable layers between"),
    ("256-D projective measurement", "probabilities of all 2^8 = 256 basis states, up from 8 ⟨Z⟩ values"),
)

# The timeline: four experiments, three dead ends, one reported advantage.
EXPERIMENTS = (
    {
        "number": 1,
        "name": "The Bottleneck",
        "status": "failed",
        "tried": "ConvNeXtBase (frozen) → 8-qubit circuit as the final classifier",
        "architecture": "Frozen ConvNeXtBase features (1024-D) fed to an 8-qubit circuit that acts as "
        "the classifier head.",
        "outcome": "Information bottleneck: 1024 features crushed into 8 qubits; no better than a linear layer.",
        "results": None,
    },
    {
        "number": 2,
        "name": "Quanvolutional Layer",
        "status": "failed",
        "tried": 'a PQC as a 1×1 "quantum filter" inside a shallow CNN, vs an identical CNN with a '
        "classical 1×1 conv; 3,000 balanced images",
        "architecture": "Shallow CNN with a parameterised quantum circuit applied as a 1×1 convolution "
        '("quanvolution"); the control swaps it for a classical 1×1 conv.',
        "outcome": "2.1: 2-layer StronglyEntangling — identical to the classical control. "
        "2.2: 4-layer — worse, overfit. 2.3: 16 qubits — simulation (2^16) far too slow.",
        "results": None,
    },
    {
        "number": 3,
        "name": "Recall-Focused",
        "status": "partial",
        "tried": "simplified circuit (BasicEntanglerLayers, 4 layers, 8 qubits, 8 ⟨Z⟩ outputs); trained on "
        "3,000 balanced images (2,400 train / 600 val), tested on 9,942 unseen images (2,212 malignant)",
        "architecture": "Classical feature extractor → 8-qubit BasicEntanglerLayers circuit (4 layers) → "
        "8 ⟨Z⟩ expectation values → classifier.",
        "outcome": "High recall (79 %) bought with poor precision (42 %); the 8-dimensional output pushed the "
        "model toward one class.",
        "results": "EXPERIMENT_3",
    },
    {
        "number": 4,
        "name": "High-Resolution",
        "status": "success",
        "tried": "ResNet18 + data re-uploading + projective measurement",
        "architecture": "ResNet18 (partially unfrozen) → layer3 output 256 × 14 × 14 = 196 patches → "
        "8-qubit circuit with data re-uploading → probabilities of all 256 basis states.",
        "outcome": "Reported advantage: +6.4 % accuracy, +6.7 % precision, better generalisation on the held-out set.",
        "results": "EXPERIMENT_4",
    },
)
STATUSES = ("failed", "partial", "success")

# What a careful reader asks (what this project adds).
OPEN_QUESTIONS = (
    "One run, one split, no confidence intervals: is +6.4 % accuracy outside the noise?",
    "Accuracy and precision at a 0.5 threshold depend on calibration; AUC differs by only 0.005. "
    "How do the models compare at matched recall, or over all thresholds?",
    "Which of the four moves matter?",
    "The quantum layer was ~200× slower to train. Does it have to be?",
)
