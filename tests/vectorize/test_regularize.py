"""Tests for geounet.vectorize.regularize: staircase footprints to clean outlines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio.features
import shapely
import shapely.affinity
from affine import Affine

from geounet.vectorize.regularize import dominant_angle, regularize_polygon

PIX = 0.3


def staircase(truth: shapely.Polygon, pix: float = PIX) -> shapely.Polygon:
    """What a segmentation mask at ``pix`` metres gives back for ``truth``: a staircase."""
    x0, y0, x1, y1 = truth.bounds
    transform = Affine(pix, 0, x0 - 2 * pix, 0, -pix, y1 + 2 * pix)
    shape = (int((y1 - y0) / pix) + 5, int((x1 - x0) / pix) + 5)
    mask = rasterio.features.rasterize([truth], out_shape=shape, transform=transform, dtype="uint8")
    (geom, _), *_ = rasterio.features.shapes(mask, mask=mask > 0, transform=transform)
    return shapely.geometry.shape(geom)


def corner_angles(poly: shapely.Polygon) -> np.ndarray:
    ring = np.asarray(poly.exterior.coords)[:-1]
    a = np.roll(ring, 1, axis=0) - ring
    b = np.roll(ring, -1, axis=0) - ring
    cos = (a * b).sum(1) / np.hypot(*a.T) / np.hypot(*b.T)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def iou(a, b) -> float:
    return a.intersection(b).area / a.union(b).area


@pytest.mark.parametrize("angle", [0, 17, 33, 45, 71])
def test_rotated_rectangle_becomes_a_rectangle(angle: float) -> None:
    truth = shapely.affinity.rotate(shapely.box(0, 0, 12, 7), angle, origin="centroid")
    raw = staircase(truth)
    out = regularize_polygon(raw, PIX)
    assert out.is_valid and len(out.exterior.coords) == 5
    np.testing.assert_allclose(corner_angles(out), 90, atol=1e-6)
    assert iou(out, truth) > 0.95
    assert iou(out, truth) >= iou(raw, truth) - 0.01
    # The outline keeps the building's direction (modulo 90 degrees).
    turn = math.degrees(dominant_angle(out)) - angle
    assert abs((turn + 45) % 90 - 45) < 3


def test_l_shape_keeps_its_six_right_angled_corners() -> None:
    l_shape = shapely.Polygon([(0, 0), (14, 0), (14, 5), (6, 5), (6, 11), (0, 11)])
    truth = shapely.affinity.rotate(l_shape, 23, origin="centroid")
    out = regularize_polygon(staircase(truth), PIX)
    assert len(out.exterior.coords) == 7
    np.testing.assert_allclose(corner_angles(out), 90, atol=1e-6)  # reflex corner too
    assert iou(out, truth) > 0.93


def test_courtyard_is_kept() -> None:
    truth = shapely.box(0, 0, 20, 20).difference(shapely.box(7, 7, 13, 13))
    truth = shapely.affinity.rotate(truth, 10, origin="centroid")
    out = regularize_polygon(staircase(truth), PIX)
    assert out.is_valid and len(out.interiors) == 1
    assert iou(out, truth) > 0.93


def test_round_shape_falls_back_to_a_simplified_outline() -> None:
    truth = shapely.Point(0, 0).buffer(6, quad_segs=32)
    raw = staircase(truth)
    out = regularize_polygon(raw, PIX)
    assert out.is_valid and iou(out, raw) >= 0.8
    assert len(out.exterior.coords) < len(raw.exterior.coords)


def test_trapezoid_keeps_its_slanted_side() -> None:
    truth = shapely.Polygon([(0, 0), (16, 0), (16, 8), (4, 12), (0, 12)])
    out = regularize_polygon(staircase(truth), PIX)
    assert iou(out, truth) > 0.94


def test_multipolygon_and_empty() -> None:
    parts = [staircase(shapely.box(0, 0, 5, 4)), staircase(shapely.box(10, 0, 16, 6))]
    out = regularize_polygon(shapely.MultiPolygon(parts), PIX)
    assert out.geom_type == "MultiPolygon" and len(out.geoms) == 2 and out.is_valid
    assert regularize_polygon(shapely.Polygon(), PIX).is_empty


def test_random_l_shapes_come_out_as_clean_single_polygons() -> None:
    rng = np.random.default_rng(0)
    clean, ious = 0, []
    for _ in range(40):
        a, b, c, d = rng.uniform(5, 25, 4)
        c, d = min(c, 0.7 * a), min(d, 0.7 * b)
        shape = shapely.Polygon([(0, 0), (a, 0), (a, d), (c, d), (c, b), (0, b)])
        truth = shapely.affinity.rotate(shape, rng.uniform(0, 90), origin="centroid")
        out = regularize_polygon(staircase(truth), PIX)
        assert out.geom_type == "Polygon" and out.is_valid
        clean += len(out.exterior.coords) == 7
        ious.append(iou(out, truth))
    assert clean >= 34
    assert np.median(ious) > 0.98 and min(ious) > 0.9
