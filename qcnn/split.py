"""The lesion-disjoint protocol: pretrain / train / val / test pools, fixed by one seed.

- pretrain: half of the benign lesions (stratified by dx), all their images. Stands in for
  ImageNet: the backbone is pretrained on benign diagnoses only and never sees a malignant lesion.
- train / val: 40% of the malignant lesions (stratified by dx) with all their images, plus as
  many benign images from the other benign lesions, one image per lesion; split 80/20 by lesion,
  stratified by label.
- excluded: the other images of those benign lesions (their lesion is already in train/val).
- test: every other image.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

POOLS = ("pretrain", "train", "val", "test", "excluded")
SPLIT_SEED = 0
PRETRAIN_BENIGN_FRACTION = 0.5
MALIGNANT_FRACTION = 0.4
VAL_FRACTION = 0.2


def take_fraction(ids: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    ids = rng.permutation(np.sort(ids))
    return ids[: int(round(fraction * len(ids)))]


def stratified_lesions(lesions: pd.DataFrame, fraction: float, rng: np.random.Generator) -> set:
    """A fraction of the lesions within each diagnosis."""
    chosen: set = set()
    for _, group in sorted(lesions.groupby("dx"), key=lambda kv: kv[0]):
        chosen.update(take_fraction(group["lesion_id"].to_numpy(), fraction, rng))
    return chosen


def make_split(meta: pd.DataFrame, seed: int = SPLIT_SEED, unit: str = "lesion") -> pd.DataFrame:
    """Assign every image of ``meta`` (image_id, lesion_id, dx, label) to one pool, by lesion or by image."""
    if unit == "image":
        return image_level_split(meta, seed)
    if unit != "lesion":
        raise ValueError(f"unit must be lesion or image, got {unit!r}")
    rng = np.random.default_rng(seed)
    meta = meta.sort_values("image_id", ignore_index=True)
    lesions = meta.drop_duplicates("lesion_id")[["lesion_id", "dx", "label"]]
    benign, malignant = lesions[lesions.label == 0], lesions[lesions.label == 1]

    pretrain = stratified_lesions(benign, PRETRAIN_BENIGN_FRACTION, rng)
    chosen_malignant = stratified_lesions(malignant, MALIGNANT_FRACTION, rng)
    n_malignant_images = int(meta.lesion_id.isin(chosen_malignant).sum())

    remaining_benign = np.sort(benign.lesion_id[~benign.lesion_id.isin(pretrain)].to_numpy())
    chosen_benign = rng.permutation(remaining_benign)[:n_malignant_images]
    benign_images = meta[meta.lesion_id.isin(chosen_benign)]
    one_per_lesion = benign_images.groupby("lesion_id")["image_id"].apply(
        lambda ids: ids.to_numpy()[rng.integers(len(ids))]
    )

    val = set(take_fraction(np.array(sorted(chosen_malignant)), VAL_FRACTION, rng))
    val |= set(take_fraction(np.asarray(chosen_benign), VAL_FRACTION, rng))

    pool = np.full(len(meta), "test", dtype=object)
    pool[meta.lesion_id.isin(pretrain)] = "pretrain"
    in_model_pools = meta.lesion_id.isin(chosen_malignant) | meta.image_id.isin(one_per_lesion)
    pool[meta.lesion_id.isin(chosen_benign) & ~in_model_pools] = "excluded"
    pool[in_model_pools] = np.where(meta.lesion_id[in_model_pools].isin(val), "val", "train")
    return meta.assign(pool=pool)[["image_id", "lesion_id", "dx", "label", "pool"]]


def image_level_split(meta: pd.DataFrame, seed: int = SPLIT_SEED) -> pd.DataFrame:
    """The study's protocol: the lesion split's pool sizes per label, but drawn image by image.

    The pretrain pool is kept (the backbone is shared); every other image is shuffled and dealt to
    train, val, test and excluded in the lesion split's per-label counts, so images of one lesion
    can fall on both sides, as with ``random_split`` over a folder.
    """
    lesion_split = make_split(meta, seed)
    rng = np.random.default_rng(seed + 1)
    pool = lesion_split.pool.to_numpy().copy()
    for label in (0, 1):
        rows = np.flatnonzero((pool != "pretrain") & (lesion_split.label.to_numpy() == label))
        counts = pd.Series(pool[rows]).value_counts()
        pools = ("train", "val", "test", "excluded")
        dealt = np.concatenate([np.full(counts.get(p, 0), p, dtype=object) for p in pools])
        pool[rng.permutation(rows)] = dealt
    return lesion_split.assign(pool=pool)


def write_split(split: pd.DataFrame, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    split.to_csv(path, index=False)


def read_split(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"image_id": str, "lesion_id": str, "dx": str, "pool": str})


def pools_digest(split: pd.DataFrame) -> str:
    """Which images are in which pool, in 16 hex digits: two runs on the same digest saw the same pools."""
    return hashlib.sha256(split[["image_id", "pool"]].to_csv(index=False).encode()).hexdigest()[:16]


def train_subset(split: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask over the train pool's rows (split order): a ``fraction`` of its lesions per label.

    Nested: one seeded permutation of the lesions per label, of which every fraction takes a prefix,
    so each smaller subset lies inside every larger one. Drawn by lesion (all of a lesion's images
    or none), so the subsets stay lesion-disjoint from val and test like the pool itself.
    """
    train = split[split.pool == "train"]
    if fraction == 1:
        return np.ones(len(train), dtype=bool)
    rng = np.random.default_rng(seed)
    chosen: set = set()
    for label in (0, 1):
        lesions = np.sort(train.loc[train.label == label, "lesion_id"].unique())
        order = rng.permutation(lesions)
        chosen.update(order[: max(1, int(round(fraction * len(order))))])
    return train.lesion_id.isin(chosen).to_numpy()
