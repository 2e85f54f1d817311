"""Oversampling windows that hold rare classes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_ml import pixel_box, write_geojson, write_geotiff

from geounet.data.datasets import labelled_scenes
from geounet.data.samplers import oversampling_sampler
from geounet.errors import DataError

CLASSES = ["background", "field", "rare"]
RARE = (200, 30, 212, 42)  # rows/cols of the small rare-class square
FIELD = (0, 0, 120, 256)
CORNER = (248, 248, 256, 256)  # more field, so the labels span the whole scene


def _scene(tmp_path: Path, raster_labels: bool = False):
    """A 256 x 256 px scene at 1 m: a large field (class 1) and one small rare square (2)."""
    img = write_geotiff(tmp_path / "scene.tif", np.random.default_rng(0).random((2, 256, 256)))
    if raster_labels:
        mask = np.zeros((256, 256), dtype=np.uint8)
        for r0, c0, r1, c1 in (FIELD, CORNER):
            mask[r0:r1, c0:c1] = 1
        mask[RARE[0] : RARE[2], RARE[1] : RARE[3]] = 2
        labels = write_geotiff(tmp_path / "mask.tif", mask)
        return labelled_scenes([img], labels, classes=CLASSES)
    polygons = [pixel_box(*FIELD), pixel_box(*CORNER), pixel_box(*RARE)]
    labels = write_geojson(tmp_path / "labels.geojson", polygons, cls=["field", "field", "rare"])
    return labelled_scenes([img], labels, classes=CLASSES, class_attribute="cls")


ROI = pixel_box(8, 8, 248, 248)


def _rare_share(ds, sampler) -> float:
    return float(np.mean([bool((ds[q]["mask"] == 2).any()) for q in sampler]))


def test_windows_stay_inside_the_roi_on_its_grid(tmp_path: Path) -> None:
    ds = _scene(tmp_path)
    sampler = oversampling_sampler(ds, [ROI], size=32, length=300, classes=[2], factor=8)
    assert len(sampler) == 300
    queries = list(sampler)
    assert len(queries) == 300
    xmin, ymin = ROI.bounds[:2]
    for x, y, _ in queries:
        assert x.stop - x.start == pytest.approx(32) and y.stop - y.start == pytest.approx(32)
        assert ROI.buffer(1e-6).covers(shapely.box(x.start, y.start, x.stop, y.stop))
        assert (x.start - xmin) == pytest.approx(round(x.start - xmin))  # whole pixels
        assert (y.start - ymin) == pytest.approx(round(y.start - ymin))
    sample = ds[queries[0]]
    assert sample["image"].shape[-2:] == (32, 32) and sample["mask"].shape[-2:] == (32, 32)
    # jitter moves windows off the stride-16 candidate grid
    assert len({round(x.start - xmin) % 16 for x, _, _ in queries}) > 1


def test_rare_windows_are_oversampled(tmp_path: Path) -> None:
    ds = _scene(tmp_path)
    kwargs = {"size": 32, "length": 400, "classes": [2], "seed": 3}
    plain = _rare_share(ds, oversampling_sampler(ds, [ROI], factor=1, **kwargs))
    boosted = _rare_share(ds, oversampling_sampler(ds, [ROI], factor=8, **kwargs))
    assert plain < 0.06  # 6 of 196 candidates hold the rare square
    assert boosted > 4 * plain and boosted > 0.12  # ~20% of the weight, less after jitter


def test_raster_and_vector_labels_give_the_same_weights(tmp_path: Path) -> None:
    vector = oversampling_sampler(
        _scene(tmp_path), [ROI], size=32, length=10, classes=[2], factor=8
    )
    raster = oversampling_sampler(
        _scene(tmp_path, raster_labels=True), [ROI], size=32, length=10, classes=[2], factor=8
    )
    assert torch.equal(vector.weights, raster.weights)
    assert int((vector.weights == 8).sum()) >= 4  # the rare square lies in a few candidates


def test_same_seed_same_windows(tmp_path: Path) -> None:
    ds = _scene(tmp_path)

    def windows(seed: int) -> list:
        s = oversampling_sampler(ds, [ROI], size=32, length=50, classes=[2], factor=4, seed=seed)
        return [(x.start, y.start) for x, y, _ in s]

    assert windows(1) == windows(1)
    assert windows(1) != windows(2)


def test_several_rois_and_too_small_regions(tmp_path: Path) -> None:
    ds = _scene(tmp_path)
    rois = [pixel_box(0, 0, 128, 128), pixel_box(128, 0, 256, 256), pixel_box(0, 200, 20, 220)]
    sampler = oversampling_sampler(ds, rois, size=64, length=100, classes=[2], factor=2)
    for x, y, _ in sampler:
        window = shapely.box(x.start, y.start, x.stop, y.stop)
        assert any(r.buffer(1e-6).covers(window) for r in rois[:2])
    with pytest.raises(DataError):
        oversampling_sampler(ds, [rois[2]], size=64, length=10, classes=[2], factor=2)


def test_whole_scene_roi_keeps_every_candidate(tmp_path: Path) -> None:
    ds = _scene(tmp_path)  # vector label bounds carry float noise from reprojection
    sampler = oversampling_sampler(
        ds, [pixel_box(0, 0, 256, 256)], size=32, length=10, classes=[2], factor=2
    )
    assert len(sampler.windows) == 15 * 15  # offsets 0, 16, ..., 224 on each axis
