"""Tests for geounet.vectorize.pipeline: class maps to measured, cleaned polygons."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.features
import shapely
from affine import Affine
from pyproj import Transformer

from geounet.errors import GeounetError, InputFileNotFoundError, InvalidRasterError
from geounet.vectorize import VectorizeOptions, polygonize, vectorize_raster
from geounet.vectorize.pipeline import COLUMNS

NODATA = 255
NAMES = ["background", "building", "road"]
UTM = "EPSG:32636"  # central meridian 33°E
UTM_ORIGIN = (500_000.0, 6_650_000.0)  # ~60°N on the central meridian
PIX = 0.5


def scene() -> np.ndarray:
    """200x200 class map: two buildings (one with a hole), a road block, a tiny road, nodata."""
    m = np.zeros((200, 200), np.uint8)
    m[20:60, 20:100] = 1  # 3200 px
    m[30:40, 40:50] = 0  # hole of 100 px -> 3100 px
    m[120:130, 20:30] = 1  # 100 px
    m[100:180, 120:180] = 2  # 4800 px
    m[5:7, 150:152] = 2  # 4 px (1 m² in UTM)
    m[0:10, 0:10] = NODATA
    return m


EXPECTED_PX = {(1, 3100), (1, 100), (2, 4800), (2, 4)}


def utm_transform() -> Affine:
    return Affine(PIX, 0, UTM_ORIGIN[0], 0, -PIX, UTM_ORIGIN[1])


def mercator_transform() -> Affine:
    """3857 grid at 33°E 60°N with 1 m Mercator pixels (~0.5 m on the ground)."""
    x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(33.0, 60.0)
    return Affine(1.0, 0, x, 0, -1.0, y)


def write_tif(path: Path, mask: np.ndarray, *, crs=UTM, transform=None, tags=None, nodata=NODATA):
    transform = transform or utm_transform()
    profile = dict(driver="GTiff", width=mask.shape[1], height=mask.shape[0], count=1)
    profile.update(dtype=mask.dtype, crs=crs, transform=transform, nodata=nodata)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mask, 1)
        if tags:
            dst.update_tags(**tags)
    return path


def pixel_counts(gdf) -> set[tuple[int, int]]:
    return {
        (int(c), round(a / PIX**2)) for c, a in zip(gdf.class_id, gdf.geometry.area, strict=True)
    }


# the columns of every vectorized layer, in order
SCHEMA = ["class_id", "class_name", "area_m2", "area_ha", "perimeter_m", "geometry"]


def test_utm_rectangles_counts_names_areas_holes():
    gdf = polygonize(scene(), utm_transform(), UTM, class_names=NAMES, nodata=NODATA)
    assert len(gdf) == 4
    assert list(gdf.columns) == SCHEMA
    assert gdf.crs.to_epsg() == 32636
    assert pixel_counts(gdf) == EXPECTED_PX
    assert dict(zip(gdf.class_id, gdf.class_name, strict=True)) == {1: "building", 2: "road"}
    # Geodesic vs UTM: 1/k0² = 1.0008 on the central meridian, so 0.5% is safe and tight.
    px = np.round(gdf.geometry.area / PIX**2)
    np.testing.assert_allclose(gdf.area_m2, px * PIX**2, rtol=5e-3)
    holed = gdf[np.isclose(px, 3100)].geometry.iloc[0]
    assert len(holed.interiors) == 1
    assert shapely.Polygon(holed.interiors[0]).area == pytest.approx(100 * PIX**2)
    assert gdf.geometry.is_valid.all()
    assert gdf.class_id.dtype.kind == "i" and gdf.area_m2.dtype.kind == "f"


def test_web_mercator_area_is_true_ground_area():
    mask, transform = scene(), mercator_transform()
    gdf = polygonize(mask, transform, "EPSG:3857", nodata=NODATA)
    assert len(gdf) == 4 and gdf.crs.to_epsg() == 3857
    # Independent reference: the same vertices projected to local UTM, planar area.
    reference = gdf.to_crs(UTM).geometry.area.to_numpy()
    np.testing.assert_allclose(gdf.area_m2, reference, rtol=5e-3)
    # A 1 m Mercator pixel at 60°N covers ~0.25 m²: planar 3857 area is ~4x too large.
    planar = gdf.geometry.area.to_numpy()
    assert np.all(planar / gdf.area_m2 > 3.5)
    assert np.all(np.abs(gdf.area_m2 - planar) > 0.5 * planar)


def test_geographic_crs_area():
    transform = Affine(1e-5, 0, 33.0, 0, -1e-5, 60.0)
    gdf = polygonize(scene(), transform, "EPSG:4326", nodata=NODATA)
    reference = gdf.to_crs(UTM).geometry.area.to_numpy()
    np.testing.assert_allclose(gdf.area_m2, reference, rtol=5e-3)


@pytest.mark.parametrize(
    ("crs", "transform"), [(UTM, utm_transform()), ("EPSG:3857", mercator_transform())]
)
def test_rasterize_back_iou(crs, transform):
    mask = scene()
    gdf = polygonize(mask, transform, crs, nodata=NODATA)
    for cid in (1, 2):
        shapes = gdf[gdf.class_id == cid].geometry
        back = rasterio.features.rasterize(
            [(g, 1) for g in shapes], out_shape=mask.shape, transform=transform, dtype="uint8"
        ).astype(bool)
        truth = mask == cid
        iou = (back & truth).sum() / (back | truth).sum()
        assert iou >= 0.99, (cid, iou)


def test_background_and_nodata_skipped_unless_listed():
    mask, tr = scene(), utm_transform()
    gdf = polygonize(mask, tr, UTM, nodata=NODATA)
    assert set(gdf.class_id) == {1, 2}
    gdf = polygonize(mask, tr, UTM, VectorizeOptions(classes=[0, NODATA]), nodata=NODATA)
    assert set(gdf.class_id) == {0, NODATA}
    assert gdf[gdf.class_id == NODATA].geometry.area.sum() == pytest.approx(100 * PIX**2)
    assert set(gdf[gdf.class_id == 0].class_name) == {"class_0"}


def test_classes_filter_and_min_area():
    mask, tr = scene(), utm_transform()
    gdf = polygonize(mask, tr, UTM, VectorizeOptions(classes=[2]), nodata=NODATA)
    assert set(gdf.class_id) == {2} and len(gdf) == 2
    gdf = polygonize(mask, tr, UTM, VectorizeOptions(min_area_m2=10.0), nodata=NODATA)
    assert pixel_counts(gdf) == EXPECTED_PX - {(2, 4)}
    assert (gdf.area_m2 >= 10.0).all()
    assert list(gdf.index) == list(range(len(gdf)))
    assert polygonize(mask, tr, UTM, VectorizeOptions(min_area_m2=1e9), nodata=NODATA).empty


def test_empty_result_has_schema():
    gdf = polygonize(np.zeros((5, 5), np.uint8), utm_transform(), UTM)
    assert gdf.empty and list(gdf.columns) == SCHEMA
    assert gdf.crs.to_epsg() == 32636


def test_connectivity_8_gives_valid_single_region():
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = 1
    assert len(polygonize(mask, utm_transform(), UTM)) == 3
    gdf = polygonize(mask, utm_transform(), UTM, VectorizeOptions(connectivity=8))
    assert len(gdf) == 1 and gdf.geometry.is_valid.all()
    assert gdf.area_m2.iloc[0] == pytest.approx(3 * PIX**2, rel=5e-3)


def test_other_dtypes():
    mask = scene().astype(np.int64)
    gdf = polygonize(mask, utm_transform(), UTM, nodata=NODATA)
    assert pixel_counts(gdf) == EXPECTED_PX
    fmask = scene().astype(np.float32)
    fmask[fmask == NODATA] = np.nan
    assert pixel_counts(polygonize(fmask, utm_transform(), UTM)) == EXPECTED_PX
    with pytest.raises(GeounetError):
        polygonize(fmask + 0.5, utm_transform(), UTM)


def test_raster_names_from_tag_and_nodata_from_file(tmp_path):
    path = write_tif(tmp_path / "m.tif", scene(), tags={"GEOUNET_CLASSES": json.dumps(NAMES)})
    gdf = vectorize_raster(path)
    assert pixel_counts(gdf) == EXPECTED_PX  # nodata 255 read from the file and skipped
    assert dict(zip(gdf.class_id, gdf.class_name, strict=True)) == {1: "building", 2: "road"}
    assert gdf.crs.to_epsg() == 32636
    gdf = vectorize_raster(
        path, VectorizeOptions(classes=[1], min_area_m2=100), class_names=["bg", "house"]
    )
    assert list(gdf.class_name) == ["house"] and len(gdf) == 1


def test_raster_default_names(tmp_path):
    gdf = vectorize_raster(write_tif(tmp_path / "m.tif", scene()))
    assert dict(zip(gdf.class_id, gdf.class_name, strict=True)) == {1: "class_1", 2: "class_2"}


def test_missing_file(tmp_path):
    path = tmp_path / "nope.tif"
    with pytest.raises(InputFileNotFoundError, match=re.escape(str(path))) as exc:
        vectorize_raster(path)
    assert isinstance(exc.value, FileNotFoundError)


def test_not_a_raster(tmp_path):
    path = tmp_path / "fake.tif"
    path.write_text("not a raster")
    with pytest.raises(InvalidRasterError, match=re.escape(str(path))) as exc:
        vectorize_raster(path)
    assert isinstance(exc.value, ValueError)


def test_raster_without_crs(tmp_path):
    path = write_tif(tmp_path / "nocrs.tif", scene(), crs=None)
    with pytest.raises(InvalidRasterError, match=re.escape(str(path)) + ".*no CRS"):
        vectorize_raster(path)


def test_multiband_and_bad_tag(tmp_path):
    path = tmp_path / "rgb.tif"
    profile = dict(driver="GTiff", width=4, height=4, count=3, dtype="uint8", crs=UTM)
    with rasterio.open(path, "w", transform=utm_transform(), **profile) as dst:
        dst.write(np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(InvalidRasterError, match=r"rgb\.tif.*3"):
        vectorize_raster(path)
    bad = write_tif(tmp_path / "bad.tif", scene(), tags={"GEOUNET_CLASSES": "building"})
    with pytest.raises(InvalidRasterError, match="GEOUNET_CLASSES"):
        vectorize_raster(bad)


def test_geodesic_area_subtracts_holes_whatever_their_winding():
    from geounet.vectorize import geodesic_area_m2

    x0, y0 = UTM_ORIGIN
    shell = [(x0, y0), (x0 + 10, y0), (x0 + 10, y0 + 10), (x0, y0 + 10)]  # CCW
    hole = [(x0 + 2, y0 + 2), (x0 + 4, y0 + 2), (x0 + 4, y0 + 4), (x0 + 2, y0 + 4)]  # CCW too
    area = geodesic_area_m2([shapely.Polygon(shell, [hole])], UTM)
    assert area[0] == pytest.approx(96.0, rel=5e-3)
    assert geodesic_area_m2([], UTM).shape == (0,)


def test_import_is_light():
    code = "import sys, geounet.vectorize; print('rasterio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_geojson_coordinates_fall_inside_the_scene_lonlat_bounds(tmp_path):
    from geounet.vectorize import write_vectors

    for crs, transform in ((UTM, utm_transform()), ("EPSG:3857", mercator_transform())):
        mask = scene()
        gdf = polygonize(mask, transform, crs, VectorizeOptions(simplify_m=0.5), nodata=NODATA)
        out = write_vectors(gdf, tmp_path / "out.geojson")
        doc = json.loads(out.read_text())
        h, w = mask.shape
        x0, y1 = transform * (0, 0)
        x1, y0 = transform * (w, h)
        west, south, east, north = Transformer.from_crs(crs, 4326, always_xy=True).transform_bounds(
            x0, y0, x1, y1, densify_pts=21
        )
        coords = np.concatenate(
            [np.asarray(ring) for f in doc["features"] for ring in f["geometry"]["coordinates"]]
        )
        assert len(doc["features"]) == len(gdf)
        assert (coords[:, 0] >= west - 1e-9).all() and (coords[:, 0] <= east + 1e-9).all()
        assert (coords[:, 1] >= south - 1e-9).all() and (coords[:, 1] <= north + 1e-9).all()


def test_round_trip_iou_without_simplification_for_every_option_that_keeps_pixels():
    mask = scene()
    for options in (
        VectorizeOptions(),
        VectorizeOptions(window=64),
        VectorizeOptions(connectivity=8),
    ):
        gdf = polygonize(mask, utm_transform(), UTM, options, nodata=NODATA)
        back = rasterio.features.rasterize(
            zip(gdf.geometry, gdf.class_id, strict=True),
            out_shape=mask.shape,
            transform=utm_transform(),
            dtype="uint8",
        )
        for cid in (1, 2):
            a, b = back == cid, mask == cid
            assert (a & b).sum() / (a | b).sum() >= 0.99


def test_perimeter_and_confidence_columns(tmp_path):
    mask = np.zeros((40, 40), np.uint8)
    mask[10:20, 10:30] = 1  # 5 m x 10 m at 0.5 m pixels
    probs = np.zeros((2, 40, 40), np.uint8)
    probs[1, 10:20, 10:30] = 204  # 0.8
    path = write_tif(tmp_path / "m.tif", mask)
    with rasterio.open(tmp_path / "p.tif", "w", driver="GTiff", width=40, height=40, count=2,
                       dtype="uint8", crs=UTM, transform=utm_transform()) as dst:  # fmt: skip
        dst.write(probs)
    gdf = vectorize_raster(path, probabilities=tmp_path / "p.tif")
    assert list(gdf.columns) == [*COLUMNS, "confidence", "geometry"]
    assert gdf.confidence.iloc[0] == pytest.approx(0.8)
    # 30 m of outline on the grid; ground is grid / k (k ~ 0.9996 near the meridian).
    assert gdf.perimeter_m.iloc[0] == pytest.approx(30.0, rel=2e-3)


def test_min_area_applies_to_the_final_area():
    mask = scene()
    gdf = polygonize(
        mask,
        utm_transform(),
        UTM,
        VectorizeOptions(min_area_m2=25.0, simplify_m=2.0),
        nodata=NODATA,
    )
    assert (gdf.area_m2 >= 25.0).all() and len(gdf) == 3


@pytest.mark.parametrize("settings", [{"regularize": True}, {"smooth": True}, {}])
def test_polygons_stay_inside_the_raster(settings):
    """Regularized footprints of buildings cut by the scene's edge used to reach past it."""
    transform = Affine(0.3, 0, 500_000.0, 0, -0.3, 6_650_000.0)
    yy, xx = np.mgrid[:64, :64]
    mask = np.zeros((64, 64), np.uint8)
    for cy, cx in [(0, 30), (63, 20), (30, 0), (40, 63), (0, 0)]:  # rotated, cut by an edge
        mask[(abs((yy - cy) + (xx - cx)) < 14) & (abs((yy - cy) - (xx - cx)) < 10)] = 1
    gdf = polygonize(
        mask,
        transform,
        "EPSG:32636",
        VectorizeOptions(**settings),
        class_names=["background", "building"],
    )
    extent = shapely.box(500_000, 6_650_000 - 64 * 0.3, 500_000 + 64 * 0.3, 6_650_000)
    assert len(gdf) == 5
    assert gdf.geometry.is_valid.all()
    assert set(gdf.geom_type) <= {"Polygon", "MultiPolygon"}
    assert gdf.geometry.difference(extent).area.max() < 1e-9
