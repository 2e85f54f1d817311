"""Tests for geounet.vectorize.refine: holes, simplification, smoothing, in metres."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import shapely.affinity
from affine import Affine

from geounet.io.geodesy import to_crs
from geounet.vectorize import VectorizeOptions, polygonize
from geounet.vectorize.refine import fill_holes, refine, simplify, smooth_polygon

UTM = "EPSG:32636"
PIX = 0.5
TRANSFORM = Affine(PIX, 0, 500_000.0, 0, -PIX, 6_650_000.0)


def disc(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def test_fill_holes_below_area_and_drop_what_was_inside() -> None:
    m = np.zeros((100, 100), np.uint8)
    m[10:90, 10:90] = 1
    m[20:24, 20:24] = 0  # 16 px = 4 m2: filled
    m[40:46, 40:46] = 2  # 36 px = 9 m2 island of class 2 in a hole: filled, island dropped
    m[60:80, 60:80] = 0  # 400 px = 100 m2: kept
    options = VectorizeOptions(fill_holes_m2=10)
    gdf = polygonize(m, TRANSFORM, UTM, options)
    assert list(gdf.class_id) == [1]
    building = gdf.geometry.iloc[0]
    assert len(building.interiors) == 1
    assert shapely.Polygon(building.interiors[0]).area == pytest.approx(100)
    assert gdf.area_m2.iloc[0] == pytest.approx((6400 - 400) * PIX**2, rel=5e-3)
    plain = polygonize(m, TRANSFORM, UTM)
    assert len(plain) == 2 and len(plain.geometry.iloc[0].interiors) == 3


def test_single_class_simplify_is_douglas_peucker_within_tolerance() -> None:
    m = disc((200, 200), (100, 100), 70).astype(np.uint8)
    raw = polygonize(m, TRANSFORM, UTM).geometry.iloc[0]
    out = polygonize(m, TRANSFORM, UTM, VectorizeOptions(simplify_m=1.0)).geometry.iloc[0]
    assert len(out.exterior.coords) < len(raw.exterior.coords) / 5
    assert shapely.hausdorff_distance(out, raw) <= 1.0 + 1e-9
    assert out.is_valid


def test_several_classes_stay_edge_to_edge_after_simplify() -> None:
    m = np.ones((160, 160), np.uint8)
    m[disc(m.shape, (80, 80), 50)] = 2
    m[disc(m.shape, (80, 80), 20)] = 3
    gdf = polygonize(m, TRANSFORM, UTM, VectorizeOptions(simplify_m=1.5))
    geoms = list(gdf.geometry)
    union = shapely.union_all(geoms)
    # No overlaps and no gaps: the parts add up to the union, which is the full square.
    assert sum(g.area for g in geoms) == pytest.approx(union.area, rel=1e-9)
    assert union.area == pytest.approx(160 * 160 * PIX**2, rel=1e-9)
    raw = polygonize(m, TRANSFORM, UTM)
    assert shapely.get_num_coordinates(gdf.geometry.values).sum() < (
        shapely.get_num_coordinates(raw.geometry.values).sum() / 3
    )


def test_tolerance_is_metres_on_a_geographic_crs() -> None:
    # ~0.5 m pixels at 60N in degrees: 0.5 m is 4.5e-6 deg of latitude, 9e-6 of longitude.
    transform = Affine(9e-6, 0, 33.0, 0, -4.5e-6, 60.0)
    m = disc((200, 200), (100, 100), 70).astype(np.uint8)
    raw = polygonize(m, transform, "EPSG:4326").geometry.values
    out = polygonize(m, transform, "EPSG:4326", VectorizeOptions(simplify_m=1.0)).geometry.values
    raw_m, out_m = to_crs(raw, "EPSG:4326", UTM), to_crs(out, "EPSG:4326", UTM)
    shift = shapely.hausdorff_distance(raw_m[0], out_m[0])
    assert 0.3 < shift <= 1.0 + 1e-6
    assert out[0].is_valid


def test_smooth_rounds_a_staircase_and_stays_valid() -> None:
    m = disc((120, 120), (60, 60), 40).astype(np.uint8)
    raw = polygonize(m, TRANSFORM, UTM).geometry.iloc[0]
    out = polygonize(m, TRANSFORM, UTM, VectorizeOptions(smooth=True)).geometry.iloc[0]
    assert out.is_valid
    # Closer to the true circle than the staircase is, in outline length.
    true_perimeter = 2 * np.pi * 40 * PIX
    assert abs(out.length - true_perimeter) < abs(raw.length - true_perimeter) / 4
    assert out.symmetric_difference(raw).area < 0.05 * raw.area


def test_smooth_and_regularize_pick_classes_by_name() -> None:
    m = np.zeros((120, 200), np.uint8)
    m[20:60, 20:80] = 1
    m[disc(m.shape, (60, 140), 35)] = 2
    names = ["background", "building", "water"]
    options = VectorizeOptions(regularize=["building"], smooth=["water"])
    gdf = polygonize(m, TRANSFORM, UTM, options, class_names=names)
    building, water = gdf.geometry.iloc[0], gdf.geometry.iloc[1]
    assert len(building.exterior.coords) == 5
    assert len(water.exterior.coords) > 40  # round, many short edges
    with pytest.raises(Exception, match="unknown class 'roads'"):
        polygonize(m, TRANSFORM, UTM, VectorizeOptions(smooth=["roads"]), class_names=names)


def test_refine_is_a_no_op_without_options_and_keeps_everything_valid() -> None:
    rng = np.random.default_rng(0)
    m = (rng.random((80, 80)) < 0.4).astype(np.uint8)
    gdf = polygonize(m, TRANSFORM, UTM)
    same = refine(gdf.geometry.values, gdf.class_id.values, UTM, pixel_m=PIX)
    assert all(a is b for a, b in zip(same, gdf.geometry.values, strict=True))
    options = VectorizeOptions(
        fill_holes_m2=2, simplify_m=0.7, regularize=True, min_area_m2=1, connectivity=8
    )
    cleaned = polygonize(m, TRANSFORM, UTM, options)
    assert cleaned.geometry.is_valid.all() and not cleaned.geometry.is_empty.any()
    assert (cleaned.area_m2 >= 1).all()
    assert _overlap(cleaned.geometry.values) < 1e-6


def _overlap(geoms: np.ndarray) -> float:
    """Total area shared by pairs of polygons."""
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    return float(shapely.area(shapely.intersection(geoms[left[keep]], geoms[right[keep]])).sum())


def test_reshaped_polygons_do_not_overlap_their_neighbours() -> None:
    # A building with a shallow notch (within two pixels of its rectangle, so regularized
    # into the full rectangle) and a shed standing in the notch, a pixel away.
    m = np.zeros((80, 100), np.uint8)
    m[20:60, 20:80] = 1
    m[20:22, 40:60] = 0
    m[10:21, 42:58] = 1  # row 20 lies in the notch, touching the house only at corners
    raw = polygonize(m, TRANSFORM, UTM)
    assert len(raw) == 2 and _overlap(raw.geometry.values) == 0
    out = polygonize(m, TRANSFORM, UTM, VectorizeOptions(regularize=True))
    assert len(out) == 2 and out.geometry.is_valid.all()
    assert [len(g.exterior.coords) for g in out.geometry] == [5, 5]  # two rectangles...
    assert _overlap(out.geometry.values) < 1e-6  # ...and the shed gave way
    # The 2-px notch is folded into the wall line, which the shed now stops at.
    assert 16 * 10 * PIX**2 * 0.99 < out.area_m2.iloc[0] < 16 * 11 * PIX**2 * 0.99


def test_helpers_on_empty_input() -> None:
    empty = np.array([], dtype=object)
    assert fill_holes(empty, 1.0).size == 0
    assert simplify(empty, 1.0, several=True).size == 0
    assert smooth_polygon(shapely.Polygon(), 0.5).is_empty
