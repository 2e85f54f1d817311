"""Plain 2D image/mask folders (no georeferencing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geounet.data.folders import CropSampler, ImageMaskCrops, band_statistics, image_mask_pairs
from geounet.errors import DataError, InputFileNotFoundError


def _folders(tmp_path: Path, n: int = 3) -> tuple[Path, Path]:
    images, masks = tmp_path / "image", tmp_path / "label"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        mask = np.where(rng.random((40, 50)) > 0.7, 0, 255).astype(np.uint8)
        image = (mask // 2 + rng.integers(0, 20, mask.shape)).astype(np.uint8)
        Image.fromarray(image).save(images / f"{i}.png")
        Image.fromarray(mask).save(masks / f"{i}.png")
    return images, masks


def test_pairs_crops_and_label_map(tmp_path: Path) -> None:
    pairs = image_mask_pairs(*_folders(tmp_path))
    assert [p[0].name for p in pairs] == ["0.png", "1.png", "2.png"]
    whole = ImageMaskCrops(pairs, label_map={0: 1, 255: 0})
    assert len(whole) == 3
    sample = whole[1]
    assert sample["image"].shape == (1, 40, 50) and sample["mask"].shape == (40, 50)
    raw = np.asarray(Image.open(pairs[1][1]))
    np.testing.assert_array_equal(sample["mask"].numpy(), (raw == 0).astype(int))
    crops = ImageMaskCrops(pairs, size=16, length=10, label_map={0: 1, 255: 0})
    sampler = CropSampler(10, seed=1)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first  # new crops every epoch
    for index in first:
        item = crops[index]
        assert item["image"].shape == (1, 16, 16)
        # the crop's image and mask stay aligned: bright pixels are cell interior (0)
        assert ((item["image"][0] >= 127) == (item["mask"] == 0)).all()
    mean, std = band_statistics(crops.images)
    assert len(mean) == 1 and std[0] > 0


def test_errors(tmp_path: Path) -> None:
    images, masks = _folders(tmp_path)
    with pytest.raises(InputFileNotFoundError):
        image_mask_pairs(tmp_path / "nope", masks)
    with pytest.raises(DataError, match=r"mask values \[255\]"):
        ImageMaskCrops(image_mask_pairs(images, masks)[:1], label_map={0: 1})
    (masks / "2.png").unlink()
    with pytest.raises(DataError, match="no mask named 2"):
        image_mask_pairs(images, masks)
