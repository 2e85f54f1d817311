"""Tests for geounet.io.xbd: the xBD layout read and georeferenced from lng_lat."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from geounet.errors import DataError, InputFileNotFoundError, InvalidVectorError
from geounet.io.xbd import find_tiles, georeference, label_frame, png_pair_scene, xbd_scenes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_xbd import TRANSFORM, xbd_folder


def test_tiles_are_paired_with_their_labels(tmp_path: Path) -> None:
    root = xbd_folder(tmp_path)
    tiles = find_tiles(root)
    assert [t.key for t in tiles] == ["test-storm_00000000", "test-storm_00000001"]
    assert tiles[0].post.name == "test-storm_00000000_post_disaster.png"
    (root / "labels" / "test-storm_00000001_post_disaster.json").unlink()
    with pytest.raises(DataError, match=r"post_disaster\.json: missing"):
        find_tiles(root)
    with pytest.raises(InputFileNotFoundError, match="not an xBD folder"):
        find_tiles(tmp_path / "nowhere")


def test_georeference_recovers_the_pixel_to_lonlat_transform(tmp_path: Path) -> None:
    tiles = find_tiles(xbd_folder(tmp_path))
    transform, residual = georeference(tiles[0].pre_labels, tiles[0].post_labels)
    assert residual < 1e-6
    assert np.allclose(transform[:6], TRANSFORM[:6], rtol=1e-7, atol=1e-12)
    second, _ = georeference(tiles[1].post_labels)
    assert second * (0, 0) == pytest.approx(TRANSFORM * (96, 0), abs=1e-10)


def test_label_frame_has_damage_and_lonlat_polygons(tmp_path: Path) -> None:
    tiles = find_tiles(xbd_folder(tmp_path))
    post = label_frame(tiles[0].post_labels)
    assert post.crs.to_epsg() == 4326 and len(post) == 16
    assert set(post.subtype) == {
        "no-damage",
        "minor-damage",
        "major-damage",
        "destroyed",
        "un-classified",
    }
    assert set(label_frame(tiles[0].pre_labels).subtype) == {"building"}
    bad = tmp_path / "bad.json"
    bad.write_text('{"features": []}')
    with pytest.raises(InvalidVectorError, match="not an xBD label file"):
        label_frame(bad)


def test_scenes_are_georeferenced_geotiffs_that_land_on_the_labels(tmp_path: Path) -> None:
    root = xbd_folder(tmp_path)
    scenes = xbd_scenes([root], tmp_path / "out")
    assert len(scenes) == 2
    with rasterio.open(scenes[0].post) as src:
        assert src.crs.to_epsg() == 4326 and src.count == 3
        assert src.transform.almost_equals(TRANSFORM, precision=1e-12)
        assert src.tags()["ACQUISITIONDATETIME"] == "2011-06-01"
        image = src.read(1)
    with rasterio.open(scenes[0].pre) as src:
        assert src.tags()["ACQUISITIONDATETIME"] == "2011-05-01"
        pre = src.read(1)
    buildings = gpd.read_file(scenes[0].labels)
    # each building polygon covers the bright square of the pre image at its pixels
    with rasterio.open(scenes[0].pre) as src:
        for geom in buildings.geometry:
            row, col = src.index(geom.centroid.x, geom.centroid.y)
            assert pre[row, col] == 200
    assert image.shape == (96, 96)
    mtime = scenes[0].post.stat().st_mtime
    assert xbd_scenes([root], tmp_path / "out")[0].post.stat().st_mtime == mtime  # cached


def test_png_pair_is_georeferenced_for_prediction(tmp_path: Path) -> None:
    root = xbd_folder(tmp_path)
    images = sorted((root / "images").glob("test-storm_00000000_*.png"))[::-1]  # pre, post
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NotGeoreferencedWarning reaches users
        pair = png_pair_scene(images, tmp_path / "geo")
    assert [p.suffix for p in pair] == [".tif", ".tif"]
    assert png_pair_scene([tmp_path / "a.tif", tmp_path / "b.tif"], tmp_path) is None


def test_tile_without_buildings_is_skipped_and_bad_wkt_is_one_line(tmp_path: Path) -> None:
    import json

    root = xbd_folder(tmp_path)
    for when in ("pre", "post"):
        path = root / "labels" / f"test-storm_00000001_{when}_disaster.json"
        data = json.loads(path.read_text())
        data["features"] = {"xy": [], "lng_lat": []}
        path.write_text(json.dumps(data))
    scenes = xbd_scenes([root], tmp_path / "out")
    assert [s.key for s in scenes] == ["test-storm_00000000"]
    images = sorted((root / "images").glob("test-storm_00000001_*.png"))[::-1]
    with pytest.raises(DataError, match="no buildings"):
        png_pair_scene(images, tmp_path / "geo")
    path = root / "labels" / "test-storm_00000000_post_disaster.json"
    data = json.loads(path.read_text())
    data["features"]["lng_lat"][0]["wkt"] = "POLYGON ((1 2"
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidVectorError, match="readable 'wkt'"):
        label_frame(path)
