"""Land-cover data as users have it: band files stacked, code rasters in another CRS,
nodata borders, sparse polygons and points, crop attributes grouped into classes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_landcover import (
    CODES,
    ORIGIN,
    RES,
    landcover_scene,
    parcels_scene,
    pixel_box,
    pixel_point,
    write_vector,
)

from geounet.data.datasets import labelled_scenes
from geounet.data.stats import band_statistics
from geounet.io.labelmap import IGNORE, LabelSpec, resolve_label_map
from geounet.io.stack import stack_rasters

CLASSES = ["water", "developed", "forest", "cropland"]


def _spec() -> LabelSpec:
    return LabelSpec(4, label_map=resolve_label_map(CODES, CLASSES), names=tuple(CLASSES))


def _whole(ds, size: int) -> dict:
    x0, y0 = ORIGIN
    return ds[x0 : x0 + size * RES : RES, y0 - size * RES : y0 : RES]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("landcover")
    s = landcover_scene(tmp)
    stack = stack_rasters(s.bands, tmp / "stack.vrt", kind="bands")
    return s, stack


def test_code_raster_in_another_crs_is_reprojected_nearest_with_nodata_unlabelled(scene):
    s, stack = scene
    ds = labelled_scenes([stack], s.labels, classes=CLASSES, spec=_spec())
    mask = _whole(ds, 160)["mask"].numpy()
    # classes only: nearest neighbour never invents a value between two codes
    assert set(np.unique(mask)) <= {0, 1, 2, 3, IGNORE}
    lut = {code: CLASSES.index(name) for code, name in CODES.items()}
    expected = np.vectorize(lambda c: lut.get(c, IGNORE))(s.truth)
    labelled = (mask != IGNORE) & s.valid
    assert labelled.mean() > 0.7
    assert (mask[labelled] == expected[labelled]).mean() > 0.97  # class edges may move 1 px
    # the nodata border (no image, no label) is not labelled, hence not trained on
    assert (mask[~s.valid] == IGNORE).all()


def test_image_nodata_of_each_band_stays_out_of_statistics_and_samples(scene):
    s, stack = scene
    ds = labelled_scenes([stack], s.labels, classes=CLASSES, spec=_spec())
    images = ds.datasets[0]
    assert images.per_band_nodata  # -99999 float bands beside a -32768 int16 band
    mean, std = band_statistics(
        images,
        [pixel_box(0, 0, 160, 160)],
        size=160,
        samples=1,
        nodata=images.nodata,
        per_band=True,
    )
    assert max(std) < 100 and min(mean) > 0  # no -99999 or -32768 fill in the figures
    ds.transforms.fill = torch.tensor(mean)
    image = _whole(ds, 160)["image"].numpy()
    assert image.min() > -1000  # filled with the band means, not the nodata values
    band6_gap = s.valid & (np.arange(160)[:, None] >= 140)  # int16 band's own gap
    np.testing.assert_allclose(image[5][band6_gap], mean[5], rtol=1e-5)


def test_sparse_polygons_and_points_leave_the_rest_unlabelled(tmp_path: Path, scene):
    _, stack = scene
    polygons = write_vector(
        tmp_path / "training.shp",
        [pixel_box(40, 40, 50, 60), pixel_box(120, 10, 130, 30)],
        label=["forest", "cropland"],
    )
    ds = labelled_scenes([stack], polygons, classes=CLASSES, class_attribute="label", sparse=True)
    mask = _whole(ds, 160)["mask"].numpy()
    assert (mask[40:50, 40:60] == 2).all() and (mask[120:130, 10:30] == 3).all()
    assert (mask == IGNORE).sum() == 160 * 160 - 200 - 200  # not background: unlabelled
    points = write_vector(
        tmp_path / "points.gpkg",
        [pixel_point(20, 30), pixel_point(100, 100)],
        label=["water", "developed"],
    )
    ds = labelled_scenes([stack], points, classes=CLASSES, class_attribute="label", sparse=True)
    mask = _whole(ds, 160)["mask"].numpy()
    assert mask[20, 30] == 0 and mask[100, 100] == 1
    assert (mask != IGNORE).sum() == 2  # one pixel per point


def test_null_and_coded_attributes(tmp_path: Path, scene):
    _, stack = scene
    labels = write_vector(
        tmp_path / "coded.gpkg",
        [pixel_box(0, 0, 80, 80), pixel_box(80, 80, 160, 160), pixel_box(0, 80, 80, 160)],
        code=[41, None, 11],
    )
    ds = labelled_scenes(
        [stack], labels, classes=CLASSES, class_attribute="code", spec=_spec(), sparse=True
    )
    assert ds.datasets[1].null_features == 1
    mask = _whole(ds, 160)["mask"].numpy()
    assert (mask[10:70, 10:70] == 2).all()
    assert (mask[90:150, 90:150] == IGNORE).all()  # a NULL code: not labelled, no crash
    assert (mask[10:70, 90:150] == 0).all()


def test_boundary_target_separates_neighbouring_parcels_of_one_crop(tmp_path: Path):
    img, parcels, boxes = parcels_scene(tmp_path)
    classes = ["background", "barley", "maize", "other"]
    spec = LabelSpec(
        4,
        label_map=resolve_label_map({"barley": "barley", "maize": "maize"}, classes),
        other=3,
        names=tuple(classes),
    )
    ds = labelled_scenes(
        [img],
        parcels,
        classes=classes,
        class_attribute="crop",
        spec=spec,
        objects=("boundary", 1, 0),
    )
    mask = _whole(ds, 128)["mask"].numpy()
    boundary = 4  # one past the last class
    for r0, c0, r1, c1, crop in boxes:
        inner = mask[r0 + 1 : r1 - 1, c0 + 1 : c1 - 1]
        ring = np.concatenate([mask[r0, c0:c1], mask[r1 - 1, c0:c1]])
        if crop is None:  # NULL crop: not labelled
            assert (mask[r0:r1, c0:c1] == IGNORE).all()
            continue
        assert (inner == classes.index(crop if crop != "peas" else "other")).all()
        assert (ring == boundary).all()  # also between two touching barley parcels
    assert mask[0:8, :].max() == 0  # outside every parcel: background
