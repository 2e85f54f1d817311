"""Footprint / border / contact targets built from instance maps and label polygons."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from geounet.data.datasets import labelled_scenes
from geounet.data.objects import BORDER, CONTACT, FOOTPRINT, disk, metres_to_px, object_target

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_ml import ORIGIN, pixel_box, write_geojson, write_geotiff


def _squares(gap: int) -> np.ndarray:
    inst = np.zeros((40, 70), np.int32)
    inst[10:30, 5:25] = 1
    inst[10:30, 25 + gap : 45 + gap] = 2
    return inst


def test_touching_squares_have_a_contact_zone_between_them():
    target = object_target(_squares(0), border_px=2, contact_px=3)
    contact = (target & CONTACT) > 0
    assert contact.any()
    cols = np.flatnonzero(contact.any(axis=0))
    assert cols.min() >= 25 - 4 and cols.max() <= 25 + 3  # around the shared edge
    assert ((target & FOOTPRINT) > 0).sum() == 800


def test_isolated_squares_have_no_contact_but_a_border():
    target = object_target(_squares(20), border_px=2, contact_px=3)
    assert not ((target & CONTACT) > 0).any()
    border = (target & BORDER) > 0
    # a 2-px ring inside each 20 x 20 square: 400 - 16 * 16 pixels each
    assert border.sum() == 2 * (400 - 256)
    assert not (border & ~((target & FOOTPRINT) > 0)).any()


def test_close_but_separate_squares_share_a_contact_gap():
    target = object_target(_squares(2), border_px=1, contact_px=3)
    gap = target[10:30, 25:27]
    assert (gap == CONTACT).all()  # background pixels between the two, contact only


def test_window_edges_are_not_borders():
    inst = np.ones((10, 10), np.int32)  # an object filling the window
    assert not ((object_target(inst, 2, 2) & BORDER) > 0).any()


def test_disk_and_metres():
    assert disk(1).sum() == 9 and disk(0).sum() == 1
    assert metres_to_px(0.6, 0.3) == 2 and metres_to_px(0.1, 0.3) == 1 and metres_to_px(0, 1) == 0
    with pytest.raises(ValueError, match="2-D"):
        object_target(np.zeros((2, 2, 2)), 1, 1)


def test_vector_labels_burn_each_polygon_as_its_own_object(tmp_path):
    image = write_geotiff(tmp_path / "scene.tif", np.zeros((3, 64, 64), np.uint8))
    # two buildings sharing an edge, a third alone
    polys = [pixel_box(10, 10, 30, 30), pixel_box(10, 30, 30, 50), pixel_box(40, 40, 55, 55)]
    labels = write_geojson(tmp_path / "b.geojson", polys)
    ds = labelled_scenes([image], labels, classes=["background", "building"], objects=(2, 2))
    x0, y0 = ORIGIN
    sample = ds[x0 : x0 + 64 : 1.0, y0 - 64 : y0 : 1.0]
    mask = sample["mask"].squeeze().numpy()
    assert mask.dtype == np.int64 and torch.is_tensor(sample["mask"])
    assert ((mask & FOOTPRINT) > 0).sum() == 400 + 400 + 225
    contact = (mask & CONTACT) > 0
    assert contact[10:30, 26:34].any() and not contact[40:55, 40:55].any()
