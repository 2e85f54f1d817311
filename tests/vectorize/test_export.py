"""Tests for geounet.vectorize.export.write_vectors."""

from __future__ import annotations

import importlib.util
import json
import os

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from affine import Affine
from rasterio.transform import array_bounds
from rasterio.warp import transform_bounds

from geounet.errors import GeounetError, InvalidVectorError
from geounet.vectorize import polygonize, write_vectors

UTM = "EPSG:32636"
TRANSFORM = Affine(0.5, 0, 500_000.0, 0, -0.5, 6_650_000.0)
SHAPE = (60, 80)


@pytest.fixture
def gdf() -> gpd.GeoDataFrame:
    m = np.zeros(SHAPE, np.uint8)
    m[5:25, 5:40] = 1
    m[10:15, 10:15] = 0  # hole
    m[30:55, 45:75] = 2
    return polygonize(m, TRANSFORM, UTM, class_names=["background", "building", "road"])


def scene_lonlat_bounds() -> tuple[float, float, float, float]:
    return transform_bounds(UTM, "EPSG:4326", *array_bounds(*SHAPE, TRANSFORM))


def rings(geometry: dict) -> list[list[list[list[float]]]]:
    polys = geometry["coordinates"]
    return [polys] if geometry["type"] == "Polygon" else polys


@pytest.mark.parametrize("name", ["out.geojson", "out.json"])
def test_geojson_is_rfc7946(gdf, tmp_path, name):
    path = write_vectors(gdf, tmp_path / name)
    assert path == tmp_path / name
    doc = json.loads(path.read_text())
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    assert len(doc["features"]) == len(gdf) == 2
    west, south, east, north = scene_lonlat_bounds()
    eps = 1e-6
    n_holes = 0
    for feature in doc["features"]:
        for poly in rings(feature["geometry"]):
            coords = np.array([c for ring in poly for c in ring])
            assert (coords[:, 0] >= west - eps).all() and (coords[:, 0] <= east + eps).all()
            assert (coords[:, 1] >= south - eps).all() and (coords[:, 1] <= north + eps).all()
            assert shapely.is_ccw(shapely.LinearRing(poly[0]))
            for hole in poly[1:]:
                n_holes += 1
                assert not shapely.is_ccw(shapely.LinearRing(hole))
    assert n_holes == 1
    back = pyogrio.read_dataframe(path)
    assert len(back) == 2 and back.crs.to_epsg() == 4326
    assert sorted(back.class_name) == ["building", "road"]
    np.testing.assert_allclose(back.to_crs(UTM).area.sum(), gdf.area.sum(), rtol=1e-4)


def test_gpkg_keeps_native_crs_or_given_crs(gdf, tmp_path):
    back = pyogrio.read_dataframe(write_vectors(gdf, tmp_path / "out.gpkg"))
    assert back.crs.to_epsg() == 32636
    assert list(back.columns) == [
        "class_id",
        "class_name",
        "area_m2",
        "area_ha",
        "perimeter_m",
        "geometry",
    ]
    np.testing.assert_allclose(back.area_m2, gdf.area_m2)
    assert pyogrio.list_layers(tmp_path / "out.gpkg")[0][0] == "out"  # not the temp name
    back = pyogrio.read_dataframe(write_vectors(gdf, tmp_path / "m.gpkg", crs="EPSG:3857"))
    assert back.crs.to_epsg() == 3857


def test_fgb_and_shapefile_round_trip(gdf, tmp_path):
    for name in ("out.fgb", "out.shp"):
        back = pyogrio.read_dataframe(write_vectors(gdf, tmp_path / name))
        back = back.sort_values("class_id").reset_index(drop=True)  # FGB reorders spatially
        assert back.crs.to_epsg() == 32636
        assert list(back.class_id) == list(gdf.class_id)
        assert list(back.class_name) == list(gdf.class_name)
        assert shapely.equals(back.geometry.values, gdf.geometry.values).all()
    assert not [p for p in os.listdir(tmp_path) if "partial" in p]
    assert {p for p in os.listdir(tmp_path) if p.startswith("out.")} >= {
        "out.fgb",
        "out.shp",
        "out.shx",
        "out.dbf",
        "out.prj",
    }


def test_unknown_extension(gdf, tmp_path):
    with pytest.raises(GeounetError, match=r"\.gpkg") as exc:
        write_vectors(gdf, tmp_path / "out.kml")
    assert isinstance(exc.value, ValueError)
    assert not os.listdir(tmp_path)


def test_geojson_rejects_other_crs_and_missing_crs(gdf, tmp_path):
    with pytest.raises(GeounetError, match="RFC 7946"):
        write_vectors(gdf, tmp_path / "out.geojson", crs="EPSG:3857")
    with pytest.raises(InvalidVectorError, match="no CRS"):
        write_vectors(gdf.set_crs(None, allow_override=True), tmp_path / "out.gpkg")


def test_empty_frames(gdf, tmp_path, caplog):
    empty = gdf.iloc[:0]
    with caplog.at_level("WARNING", logger="geounet"):
        path = write_vectors(empty, tmp_path / "empty.geojson")
    assert "an empty GeoJSON file has no columns" in caplog.text  # .gpkg keeps them
    doc = json.loads(path.read_text())
    assert doc["type"] == "FeatureCollection" and doc["features"] == [] and "crs" not in doc
    assert len(pyogrio.read_dataframe(path)) == 0
    info = pyogrio.read_info(write_vectors(empty, tmp_path / "empty.gpkg"))
    assert list(info["fields"]) == ["class_id", "class_name", "area_m2", "area_ha", "perimeter_m"]
    assert info["geometry_type"] == "Polygon" and info["crs"] == "EPSG:32636"


def test_missing_folders_are_created(gdf, tmp_path):
    path = write_vectors(gdf, tmp_path / "new" / "deeper" / "out.gpkg")
    assert len(pyogrio.read_dataframe(path)) == len(gdf)


def test_disk_errors_are_one_line_naming_the_file(gdf, tmp_path, monkeypatch):
    import errno

    from geounet.errors import OutputError

    def full(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gpd.GeoDataFrame, "to_file", full)
    with pytest.raises(OutputError) as info:
        write_vectors(gdf, tmp_path / "out.gpkg")
    assert str(info.value).startswith(
        f"{tmp_path / 'out.gpkg'}: could not write (the disk is full)"
    )
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_nothing(gdf, tmp_path, monkeypatch):
    target = tmp_path / "out.gpkg"

    def broken(self, path, *args, **kwargs):
        with open(path, "w") as fh:
            fh.write("half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(gpd.GeoDataFrame, "to_file", broken)
    for name in ("out.gpkg", "out.geojson", "out.shp"):
        with pytest.raises(RuntimeError, match="disk full"):
            write_vectors(gdf, tmp_path / name)
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    write_vectors(gdf, target)
    before = target.read_bytes()
    monkeypatch.setattr(gpd.GeoDataFrame, "to_file", broken)
    with pytest.raises(RuntimeError):
        write_vectors(gdf.iloc[:1], target)
    assert target.read_bytes() == before  # the old file is untouched
    assert sorted(os.listdir(tmp_path)) == ["out.gpkg", "out.qml"]  # the first write's


def test_parquet(gdf, tmp_path, caplog):
    if importlib.util.find_spec("pyarrow") is None:
        with pytest.raises(GeounetError, match="pip install pyarrow"):
            write_vectors(gdf, tmp_path / "out.parquet")
        assert not os.listdir(tmp_path)
    else:
        with caplog.at_level("INFO", logger="geounet"):
            back = gpd.read_parquet(write_vectors(gdf, tmp_path / "out.parquet"))
        assert back.crs.to_epsg() == 32636 and len(back) == len(gdf)
        # users of Debian's or Ubuntu's GDAL / QGIS learn they cannot open it there
        assert "GDAL >= 3.5; not the Debian/Ubuntu packages); .gpkg opens everywhere" in caplog.text


def test_gpkg_is_version_1_2_for_older_gdal(gdf, tmp_path):
    import sqlite3

    out = write_vectors(gdf, tmp_path / "b.gpkg")
    with sqlite3.connect(out) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # "GPKG"
        # 10200: GeoPackage 1.2, read without warnings by GDAL >= 2.2 (3.6 warns on 1.4)
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200


def test_shapefile_field_names_fit_ten_characters(tmp_path, caplog):
    from geounet.vectorize.export import shapefile_names

    assert shapefile_names(["class_id", "perimeter_m", "class_share"]) == {
        "perimeter_m": "perim_m",
        "class_share": "cls_share",
    }
    renamed = shapefile_names(["share_minor_damage", "share_minor_damaged", "s_minor_da"])
    assert renamed == {"share_minor_damage": "s_minor__1", "share_minor_damaged": "s_minor__2"}
    frame = gpd.GeoDataFrame(
        {"class_name": ["a"], "perimeter_m": [4.0], "share_no_damage": [0.5]},
        geometry=[shapely.box(500_000, 6_649_990, 500_001, 6_649_991)],
        crs=UTM,
    )
    with caplog.at_level("INFO", logger="geounet"):
        out = write_vectors(frame, tmp_path / "b.shp")
    assert list(pyogrio.read_info(out)["fields"]) == ["class_name", "perim_m", "s_no_damag"]
    assert "perimeter_m -> perim_m, share_no_damage -> s_no_damag" in caplog.text


@pytest.mark.parametrize("name", ["b.gpkg", "b.geojson", "b.shp", "b.fgb"])
def test_vector_layers_get_a_categorized_qgis_style(gdf, tmp_path, name):
    import xml.etree.ElementTree as ET

    write_vectors(gdf, tmp_path / name)
    qml = ET.parse(tmp_path / "b.qml").getroot()  # valid XML, applied by QGIS on opening
    renderer = qml.find("renderer-v2")
    assert renderer.get("type") == "categorizedSymbol"
    assert renderer.get("attr") == "class_name"
    categories = [c.get("value") for c in renderer.find("categories")]
    assert categories == ["building", "road"]  # background is transparent: not listed
    assert len(renderer.find("symbols")) == 2


def test_a_vector_beside_its_raster_leaves_the_raster_style(gdf, tmp_path, geotiff):
    (tmp_path / "b.tif").write_bytes(b"")
    (tmp_path / "b.qml").write_text("<qgis/>")
    write_vectors(gdf, tmp_path / "b.gpkg")
    assert (tmp_path / "b.qml").read_text() == "<qgis/>"
