"""Plain 2D images and masks from folders (no georeferencing): microscopy, medical slices.

The same models, losses, metrics, training task and sliding window as for geodata apply;
this module only supplies samples. Images are small enough to hold in memory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from geounet.errors import DataError, InputFileNotFoundError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


def _read(path: Path) -> np.ndarray:
    """(C, H, W) array of an image file."""
    from PIL import Image

    with Image.open(path) as img:
        array = np.asarray(img)
    return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)


def image_mask_pairs(
    images: str | os.PathLike[str], masks: str | os.PathLike[str]
) -> list[tuple[Path, Path]]:
    """Image and mask files matched by file stem, sorted by name.

    Raises:
        InputFileNotFoundError: If a folder is missing.
        DataError: If no pair matches or an image has no mask.
    """
    images, masks = Path(images), Path(masks)
    for folder in (images, masks):
        if not folder.is_dir():
            raise InputFileNotFoundError(f"{folder}: folder not found")
    found = {p.stem: p for p in masks.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    pairs = []
    for image in sorted(images.iterdir(), key=lambda p: (len(p.stem), p.stem)):
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if image.stem not in found:
            raise DataError(f"{image}: no mask named {image.stem}.* in {masks}")
        pairs.append((image, found[image.stem]))
    if not pairs:
        raise DataError(f"{images}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return pairs


class ImageMaskCrops(Dataset):
    """Random (or, with ``length=None``, whole) crops of in-memory image/mask pairs.

    With ``length``, item ``i`` is a crop whose image and position derive from ``i``: pair
    the dataset with :class:`CropSampler`, which draws fresh indices every epoch.

    Args:
        pairs: ``(image, mask)`` files.
        size: Crop size in pixels; ``None`` returns whole images.
        length: Crops per epoch (random positions); ``None`` = one item per image.
        label_map: Raw mask value -> class id (e.g. ``{0: 1, 255: 0}``); unmapped values
            are an error.
        seed: Seed of the crop positions.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        *,
        size: int | None = None,
        length: int | None = None,
        label_map: Mapping[int, int] | None = None,
        seed: int = 0,
    ) -> None:
        self.images = [_read(i).astype(np.float32) for i, _ in pairs]
        self.masks = [self._classes(_read(m)[0], label_map, m) for _, m in pairs]
        self.size, self.length, self.seed = size, length, seed

    @staticmethod
    def _classes(raw: np.ndarray, label_map: Mapping[int, int] | None, path: Path) -> np.ndarray:
        if label_map is None:
            return raw.astype(np.int64)
        out = np.full(raw.shape, -1, dtype=np.int64)
        for value, class_id in label_map.items():
            out[raw == value] = class_id
        if (out < 0).any():
            bad = np.unique(raw[out < 0])[:5].tolist()
            raise DataError(f"{path}: mask values {bad} are not in the label map")
        return out

    def __len__(self) -> int:
        return self.length if self.length is not None else len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self.length is None:
            image, mask = self.images[index], self.masks[index]
        else:
            rng = np.random.default_rng((self.seed, index))  # see CropSampler
            k = int(rng.integers(len(self.images)))
            image, mask = self.images[k], self.masks[k]
            if self.size is not None:
                h, w = mask.shape
                r = int(rng.integers(max(1, h - self.size + 1)))
                c = int(rng.integers(max(1, w - self.size + 1)))
                image = image[:, r : r + self.size, c : c + self.size]
                mask = mask[r : r + self.size, c : c + self.size]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image)),
            "mask": torch.from_numpy(np.ascontiguousarray(mask)),
        }


class CropSampler(torch.utils.data.Sampler):
    """``length`` random crop indices per epoch, a function of ``seed`` and the epoch."""

    def __init__(self, length: int, seed: int = 0) -> None:
        self.length, self.seed, self.epoch = length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at each epoch start."""
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randint(0, 2**62, (self.length,), generator=g).tolist())

    def __len__(self) -> int:
        return self.length


def band_statistics(images: Sequence[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-band mean and standard deviation of (C, H, W) images."""
    stacked = np.concatenate([i.reshape(i.shape[0], -1) for i in images], axis=1)
    std = stacked.std(axis=1)
    return stacked.mean(axis=1).tolist(), np.where(std > 0, std, 1.0).tolist()
