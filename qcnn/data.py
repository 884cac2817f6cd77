"""Read HAM10000: the metadata, the binary label, and the images, from a configurable folder."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError

from qcnn.errors import DataError

DATA_DIR_ENV = "QCNN_DATA_DIR"
METADATA_FILE = "HAM10000_metadata.csv"
IMAGE_FOLDERS = ("images", "HAM10000_images_part_1", "HAM10000_images_part_2")
MALIGNANT_DX = frozenset({"mel", "bcc", "akiec"})
BENIGN_DX = frozenset({"nv", "bkl", "df", "vasc"})
DX_NAMES = {
    "nv": "melanocytic nevus",
    "mel": "melanoma",
    "bkl": "benign keratosis",
    "bcc": "basal cell carcinoma",
    "akiec": "actinic keratosis / Bowen's",
    "vasc": "vascular lesion",
    "df": "dermatofibroma",
}


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data folder from the argument, else from $QCNN_DATA_DIR; checked to hold the metadata."""
    raw = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    if not raw:
        raise DataError(
            f"No data directory given. Pass --data-dir or set {DATA_DIR_ENV} to the HAM10000 "
            f"folder (the one holding {METADATA_FILE} and images/)."
        )
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise DataError(f"Data directory not found: {path}")
    if not (path / METADATA_FILE).is_file():
        raise DataError(f"{METADATA_FILE} not found in the data directory {path}")
    return path


def data_dir_available() -> Path | None:
    """The configured data folder if it is usable, else None (for optional features)."""
    try:
        return resolve_data_dir()
    except DataError:
        return None


def binary_label(dx: str) -> int:
    """1 for malignant (mel, bcc, akiec), 0 for benign (nv, bkl, df, vasc)."""
    if dx in MALIGNANT_DX:
        return 1
    if dx in BENIGN_DX:
        return 0
    raise DataError(f"Unknown diagnosis {dx!r}")


def read_metadata(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per image: image_id, lesion_id, dx, label (1 = malignant), sorted by image_id."""
    root = resolve_data_dir(data_dir)
    try:
        meta = pd.read_csv(root / METADATA_FILE, usecols=["lesion_id", "image_id", "dx"])
    except (ValueError, pd.errors.ParserError) as err:
        raise DataError(f"Cannot read {root / METADATA_FILE}: {err}") from err
    meta["label"] = meta["dx"].map(binary_label).astype(int)
    return meta.sort_values("image_id", ignore_index=True)[["image_id", "lesion_id", "dx", "label"]]


def image_path(data_dir: str | os.PathLike, image_id: str) -> Path:
    """Where an image lives: images/ or the official part_1 / part_2 folders."""
    root = Path(data_dir)
    for folder in IMAGE_FOLDERS:
        candidate = root / folder / f"{image_id}.jpg"
        if candidate.is_file():
            return candidate
    raise DataError(f"Image {image_id}.jpg not found under {root} (looked in {', '.join(IMAGE_FOLDERS)})")


def load_image_file(path: str | os.PathLike) -> Image.Image:
    """Decode one data-set image to RGB, naming the file on failure."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError) as err:
        raise DataError(f"Cannot read image {path}: {err}") from err
