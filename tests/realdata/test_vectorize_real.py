"""Vectorizing real masks: a geographic-CRS road mask and Kampala footprints (skip if absent)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Geod
from rasterio.enums import Resampling

from geounet.vectorize import VectorizeOptions, vectorize_raster, write_vectors

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ROADS = DATA / "spacenet_vegas_roads" / "sample_road_raster_mask.tif"
KAMPALA = DATA / "kampala_buildings"


@pytest.mark.skipif(not ROADS.exists(), reason="../shared/data/spacenet_vegas_roads absent")
def test_roads_in_epsg4326_get_true_areas_in_m2(tmp_path: Path) -> None:
    with rasterio.open(ROADS) as src:
        assert src.crs.to_epsg() == 4326
        mask = src.read(1) > 0
        transform = src.transform
    # Independent reference: each row's road pixels times that row's geodesic cell area.
    geod, dx, dy = Geod(ellps="WGS84"), transform.a, -transform.e
    lon0 = transform.c
    expected = 0.0
    for row, count in enumerate(mask.sum(axis=1)):
        top = transform.f - row * dy
        cell, _ = geod.polygon_area_perimeter(
            [lon0, lon0 + dx, lon0 + dx, lon0], [top, top, top - dy, top - dy]
        )
        expected += abs(cell) * count
    gdf = vectorize_raster(ROADS)
    assert gdf.crs.to_epsg() == 4326 and len(gdf) > 0
    assert gdf.area_m2.sum() == pytest.approx(expected, rel=1e-4)
    # Simplifying by 1 m on the ground moves the area little, although the CRS is degrees.
    simple = vectorize_raster(ROADS, VectorizeOptions(simplify_m=1.0))
    assert simple.area_m2.sum() == pytest.approx(expected, rel=0.02)
    assert simple.geometry.is_valid.all()
    out = write_vectors(simple, tmp_path / "roads.geojson")
    back = gpd.read_file(out)
    assert len(back) == len(simple)


def _union_iou(a: gpd.GeoSeries, b: gpd.GeoSeries) -> float:
    ua, ub = shapely.union_all(a.values), shapely.union_all(b.values)
    return ua.intersection(ub).area / ua.union(ub).area


@pytest.mark.skipif(not KAMPALA.exists(), reason="../shared/data/kampala_buildings absent")
@pytest.mark.parametrize("factor", [1, 4])  # the 7.5 cm mask, and 0.3 m as a model sees it
def test_kampala_regularized_footprints_keep_iou(tmp_path: Path, factor: int) -> None:
    path = KAMPALA / "kampala_suburban_buildings_mask.tif"
    if factor > 1:
        with rasterio.open(path) as src:
            data = src.read(
                1,
                out_shape=(src.height // factor, src.width // factor),
                resampling=Resampling.mode,
            )
            profile = src.profile | {
                "height": data.shape[0],
                "width": data.shape[1],
                "transform": src.transform * src.transform.scale(factor),
            }
        path = tmp_path / "mask_coarse.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data, 1)
    raw = vectorize_raster(path, VectorizeOptions(min_area_m2=2.0))
    reg = vectorize_raster(path, VectorizeOptions(min_area_m2=2.0, regularize=True))
    with rasterio.open(path) as src:
        frame = shapely.box(*src.bounds)
    truth = gpd.read_file(KAMPALA / "kampala_suburban_buildings.geojson").to_crs(raw.crs)
    truth = truth.make_valid().intersection(frame)
    truth = truth[~truth.is_empty]
    raw_iou, reg_iou = _union_iou(raw.geometry, truth), _union_iou(reg.geometry, truth)
    assert raw_iou > 0.75
    assert reg_iou >= raw_iou - 0.02, (raw_iou, reg_iou)
    assert reg.geometry.is_valid.all() and len(reg) == len(raw)
    vertices = shapely.get_num_coordinates
    assert np.sum(vertices(reg.geometry.values)) < np.sum(vertices(raw.geometry.values)) / 5


LANDCOVER = DATA / "nc_landcover_landsat7" / "strata.tif"


@pytest.mark.skipif(not LANDCOVER.exists(), reason="../shared/data/nc_landcover_landsat7 absent")
def test_landcover_float_raster_streams_and_simplifies_as_a_coverage() -> None:
    # 7 classes in a float32 raster with nodata -99999, NC State Plane (metres).
    whole = vectorize_raster(LANDCOVER, VectorizeOptions(window=4096))
    streamed = vectorize_raster(LANDCOVER, VectorizeOptions(window=64))
    assert set(whole.class_id) == set(range(1, 8)) and len(whole) > 1000
    assert len(streamed) == len(whole)
    assert all(shapely.equals(a, b) for a, b in zip(streamed.geometry, whole.geometry, strict=True))
    simple = vectorize_raster(LANDCOVER, VectorizeOptions(simplify_m=30))
    assert simple.geometry.is_valid.all()
    union = shapely.union_all(simple.geometry.values)
    # Shared boundaries simplified once: no gaps, no overlaps between classes.
    assert simple.geometry.area.sum() == pytest.approx(union.area, rel=1e-9)
    assert union.area == pytest.approx(shapely.union_all(whole.geometry.values).area, rel=1e-3)
    vertices = shapely.get_num_coordinates
    assert vertices(simple.geometry.values).sum() < 0.7 * vertices(whole.geometry.values).sum()
