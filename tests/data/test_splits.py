"""Tests for spatial splits and the samplers over them."""

import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_ml import pixel_box, write_geojson, write_geotiff

from geounet.data.datasets import labelled_scenes
from geounet.data.splits import (
    fitting_tile,
    grid_sampler,
    random_sampler,
    spatial_split,
)
from geounet.errors import DataError


def _dataset(tmp_path: Path, height: int = 256, width: int = 256, name: str = "scene"):
    """A scene whose labels span exactly its whole extent (one polygon per corner)."""
    img = write_geotiff(tmp_path / f"{name}.tif", np.zeros((1, height, width), dtype=np.uint8))
    corners = [
        pixel_box(0, 0, 8, 8),
        pixel_box(height - 8, width - 8, height, width),
    ]
    labels = write_geojson(tmp_path / f"{name}.geojson", corners, to_crs=None)
    ds = labelled_scenes([img], labels, classes=["background", "building"])
    return ds, pixel_box(0, 0, height, width)


def _window(query) -> shapely.Polygon:
    x, y = query[0], query[1]
    return shapely.box(x.start, y.start, x.stop, y.stop)


@pytest.mark.parametrize(("height", "width"), [(256, 256), (320, 160)])
def test_strips_are_disjoint_and_inside_the_labelled_area(
    tmp_path: Path, height: int, width: int
) -> None:
    ds, area = _dataset(tmp_path, height, width)
    assert shapely.equals_exact(ds.index.geometry.iloc[0].normalize(), area.normalize(), 1e-6)
    split = spatial_split(ds, val_fraction=0.2, test_fraction=0.1)
    strips = [split.train[0], split.val[0], split.test[0]]
    for a, b in combinations(strips, 2):
        assert a.intersection(b).area == pytest.approx(0.0, abs=1e-6)
    for strip in strips:
        assert area.buffer(1e-6).contains(strip)
    assert sum(s.area for s in strips) == pytest.approx(area.area)
    long_axis = max(height, width)
    lengths = [
        (s.bounds[2] - s.bounds[0]) if width >= height else (s.bounds[3] - s.bounds[1])
        for s in strips
    ]
    # cuts sit on the pixel grid (res 1 here): within one pixel of the exact fractions
    expected = [0.7 * long_axis, 0.2 * long_axis, 0.1 * long_axis]
    assert lengths == pytest.approx(expected, abs=1.0)
    res = ds.res[0]
    x0, _, _, y1 = area.bounds
    for strip in strips:
        for value, origin in zip(strip.bounds, (x0, 0, x0, 0), strict=True):
            if origin:
                assert (value - origin) / res == pytest.approx(round((value - origin) / res))
        assert (y1 - strip.bounds[3]) / res == pytest.approx(round((y1 - strip.bounds[3]) / res))
    # strips run across the short axis completely
    short = [
        (s.bounds[3] - s.bounds[1]) if width >= height else (s.bounds[2] - s.bounds[0])
        for s in strips
    ]
    assert short == pytest.approx([min(height, width)] * 3)


def test_no_test_strip_by_default(tmp_path: Path) -> None:
    ds, _ = _dataset(tmp_path)
    split = spatial_split(ds, val_fraction=0.25)
    assert split.test == [] and len(split.train) == len(split.val) == 1
    assert split.train[0].area == pytest.approx(3 * split.val[0].area)


def test_one_split_per_scene(tmp_path: Path) -> None:
    a = write_geotiff(tmp_path / "a.tif", np.zeros((1, 128, 128), dtype=np.uint8))
    far = (500_000.0 + 10_000, 5_000_000.0)
    b = write_geotiff(tmp_path / "b.tif", np.zeros((1, 128, 128), dtype=np.uint8), origin=far)
    labels = write_geojson(
        tmp_path / "labels.geojson",
        [pixel_box(0, 0, 128, 128), pixel_box(0, 0, 128, 128, origin=far)],
        to_crs=None,
    )
    ds = labelled_scenes([a, b], labels, classes=["background", "building"])
    split = spatial_split(ds, val_fraction=0.25)
    assert len(split.train) == len(split.val) == 2
    for train in split.train:
        for val in split.val:
            assert train.intersection(val).area == pytest.approx(0.0, abs=1e-6)


def test_training_windows_never_touch_validation(tmp_path: Path) -> None:
    ds, _ = _dataset(tmp_path)
    split = spatial_split(ds, val_fraction=0.2, test_fraction=0.1)
    sampler = random_sampler(ds, split.train, size=32, length=500, seed=0)
    windows = [_window(q) for q in sampler]
    assert len(windows) == len(sampler) == 500
    held_out = shapely.union(split.val[0], split.test[0])
    for w in windows:
        assert w.area == pytest.approx(32 * 32)
        assert w.intersection(held_out).area == pytest.approx(0.0, abs=1e-6)
        assert split.train[0].buffer(1e-6).contains(w)
    # windows really are spread over the training strip, up to its edge
    xmax = max(w.bounds[2] for w in windows)
    assert split.train[0].bounds[2] - xmax < 2


def test_random_sampler_is_seeded(tmp_path: Path) -> None:
    ds, _ = _dataset(tmp_path)
    split = spatial_split(ds, val_fraction=0.2)
    a = [_window(q).bounds for q in random_sampler(ds, split.train, size=32, length=20, seed=3)]
    b = [_window(q).bounds for q in random_sampler(ds, split.train, size=32, length=20, seed=3)]
    c = [_window(q).bounds for q in random_sampler(ds, split.train, size=32, length=20, seed=4)]
    assert a == b and a != c


def test_grid_sampler_covers_the_validation_strip(tmp_path: Path) -> None:
    ds, _ = _dataset(tmp_path)
    split = spatial_split(ds, val_fraction=0.25)
    val = split.val[0]
    windows = [_window(q) for q in grid_sampler(ds, split.val, size=32)]
    assert len(windows) >= (64 // 32) * (256 // 32)
    union = shapely.union_all(windows)
    assert val.difference(union).area == pytest.approx(0.0, abs=1e-6)
    for w in windows:
        assert val.buffer(1e-6).contains(w)
        assert w.intersection(split.train[0]).area == pytest.approx(0.0, abs=1e-6)


def test_samples_from_the_windows_have_the_tile_size(tmp_path: Path) -> None:
    ds, _ = _dataset(tmp_path)
    split = spatial_split(ds, val_fraction=0.25)
    query = next(iter(random_sampler(ds, split.train, size=32, length=1, seed=0)))
    sample = ds[query]
    assert sample["image"].shape == (1, 32, 32) and sample["mask"].shape == (32, 32)


def test_too_small_strip_is_a_data_error(tmp_path: Path) -> None:
    ds, _ = _dataset(tmp_path, 128, 128)
    with pytest.raises(DataError, match="validation strip"):
        spatial_split(ds, val_fraction=0.1, min_size=32)  # 12.8 px validation strip
    with pytest.raises(DataError, match="test strip"):
        spatial_split(ds, val_fraction=0.3, test_fraction=0.05, min_size=32)
    spatial_split(ds, val_fraction=0.25, min_size=32)  # exactly one tile: fine


def test_fitting_tile() -> None:
    rois = [shapely.box(0, 0, 200, 100), shapely.box(0, 0, 70, 300)]
    assert fitting_tile(rois, 1.0, 256) == 64
    assert fitting_tile(rois, 0.5, 256) == 128
    assert fitting_tile(rois, 0.5, 100) == 100
    with pytest.raises(DataError, match="px wide"):
        fitting_tile(rois, 4.0, 256)


def test_fitting_tile_below_the_multiple() -> None:
    # train.tile_size may be as small as 16: such a tile must not be refused as too big
    rois = [shapely.box(0, 0, 200, 100)]
    assert fitting_tile(rois, 1.0, 16) == 16
    with pytest.raises(DataError, match="need at least 16"):
        fitting_tile([shapely.box(0, 0, 10, 10)], 1.0, 16)


def test_grid_windows_stay_inside_a_strip_that_is_no_multiple_of_the_tile(tmp_path: Path) -> None:
    """A 77-px validation strip at the scene's edge: no window hangs over into padding."""
    ds, _ = _dataset(tmp_path, height=300, width=300)
    split = spatial_split(ds, val_fraction=0.25)
    val = split.val[0]
    windows = [_window(q) for q in grid_sampler(ds, split.val, size=64)]
    assert val.difference(shapely.union_all(windows)).area == pytest.approx(0.0, abs=1e-6)
    for w in windows:
        assert val.buffer(1e-6).contains(w)  # no zero padding in any validation window
    assert len({w.bounds for w in windows}) == len(windows)
    sample = ds[next(iter(grid_sampler(ds, split.val, size=64)))]
    assert sample["image"].shape[-2:] == (64, 64)
