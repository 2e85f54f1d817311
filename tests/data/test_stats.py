"""Tests for per-band normalization statistics."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_ml import pixel_box, write_geotiff

from geounet.data.datasets import SceneImages
from geounet.data.stats import band_statistics
from geounet.errors import DataError


def _scene(tmp_path: Path, nodata: float | None = None) -> tuple[Path, np.ndarray]:
    """128 x 128, 3 bands: random values in the left 64 x 64 block, huge values elsewhere."""
    rng = np.random.default_rng(0)
    data = np.full((3, 128, 128), 5000, dtype=np.uint16)
    data[:, :64, :64] = np.stack(
        [
            rng.integers(0, 100, (64, 64)),
            rng.integers(200, 1000, (64, 64)),
            rng.normal(50, 3, (64, 64)).round(),
        ]
    )
    return write_geotiff(tmp_path / "scene.tif", data, nodata=nodata), data


def test_matches_numpy_over_the_training_region_only(tmp_path: Path) -> None:
    path, data = _scene(tmp_path)
    images = SceneImages([path])
    train = pixel_box(0, 0, 64, 64)
    # a window as large as the region can only be placed on the region itself
    mean, std = band_statistics(images, [train], size=64, samples=4, seed=0)
    block = data[:, :64, :64].reshape(3, -1).astype(np.float64)
    np.testing.assert_allclose(mean, block.mean(1), rtol=1e-9)
    np.testing.assert_allclose(std, block.std(1), rtol=1e-9)
    assert max(mean) < 1000  # the 5000-valued validation area was never read


def test_random_windows_stay_inside_the_region(tmp_path: Path) -> None:
    path, _ = _scene(tmp_path)
    images = SceneImages([path])
    mean, std = band_statistics(images, [pixel_box(0, 0, 64, 64)], size=16, samples=32)
    assert 0 < mean[0] < 100 and 200 < mean[1] < 1000 and 40 < mean[2] < 60
    assert all(s > 0 for s in std)


def test_nodata_pixels_are_excluded(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = rng.integers(10, 60, size=(2, 32, 32)).astype(np.uint8)
    data[:, :8, :] = 0  # nodata rows
    data[0, 20:, :5] = 0  # one band zero only: still a valid pixel
    path = write_geotiff(tmp_path / "nodata.tif", data, nodata=0)
    images = SceneImages([path])
    mean, std = band_statistics(images, [pixel_box(0, 0, 32, 32)], size=32, samples=2, nodata=0)
    valid = ~(data == 0).all(axis=0)
    pixels = data[:, valid].astype(np.float64)
    np.testing.assert_allclose(mean, pixels.mean(1), rtol=1e-9)
    np.testing.assert_allclose(std, pixels.std(1), rtol=1e-9)


def test_constant_band_gets_unit_std(tmp_path: Path) -> None:
    data = np.stack([np.full((32, 32), 7, dtype=np.uint8), np.arange(1024).reshape(32, 32) % 9])
    path = write_geotiff(tmp_path / "flat.tif", data.astype(np.uint8))
    mean, std = band_statistics(SceneImages([path]), [pixel_box(0, 0, 32, 32)], size=32)
    assert mean[0] == pytest.approx(7.0) and std[0] == 1.0


def test_all_nodata_is_a_data_error(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "empty.tif", np.zeros((1, 32, 32), dtype=np.uint8), nodata=0)
    with pytest.raises(DataError, match="no valid pixels"):
        band_statistics(SceneImages([path]), [pixel_box(0, 0, 32, 32)], size=32, nodata=0)


def test_regions_weighted_by_area(tmp_path: Path) -> None:
    data = np.zeros((1, 64, 128), dtype=np.uint8)
    data[:, :, :64] = 10
    data[:, :32, 64:96] = 40
    path = write_geotiff(tmp_path / "two.tif", data)
    rois = [pixel_box(0, 0, 64, 64), pixel_box(0, 64, 32, 96)]  # areas 4:1
    mean, _ = band_statistics(SceneImages([path]), rois, size=32, samples=50)
    assert mean[0] == pytest.approx((40 * 10 + 10 * 40) / 50)
