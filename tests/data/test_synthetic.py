"""Tests for the seeded synthetic building scene generator."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.features import rasterize

from geounet.data.synthetic import SceneInfo, make_building_scene


def _scene(tmp_path, name="scene", **kwargs) -> SceneInfo:
    return make_building_scene(tmp_path / f"{name}.tif", tmp_path / f"{name}.geojson", **kwargs)


def _read(info: SceneInfo) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    with rasterio.open(info.image_path) as src:
        img = src.read()
    return img, gpd.read_file(info.labels_path)


def _burn(info: SceneInfo, geoms) -> np.ndarray:
    pairs = [(g, k + 1) for k, g in enumerate(geoms)]
    return rasterize(pairs, out_shape=info.shape, transform=info.transform, all_touched=False)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> list[SceneInfo]:
    root = tmp_path_factory.mktemp("synthetic")
    return [_scene(root, f"s{seed}", size=(512, 512), seed=seed) for seed in range(3)]


def test_geotiff_profile(tmp_path):
    origin = (452000.0, 38000.0)
    info = _scene(tmp_path, size=(256, 320), resolution=0.5, origin=origin)
    assert info.shape == (256, 320)
    assert info.transform == Affine(0.5, 0.0, origin[0], 0.0, -0.5, origin[1])
    assert info.image_path.exists() and info.labels_path.exists()
    with rasterio.open(info.image_path) as src:
        assert src.count == 3
        assert src.dtypes == ("uint8", "uint8", "uint8")
        assert (src.height, src.width) == (256, 320)
        assert CRS.from_user_input(src.crs) == CRS.from_epsg(32636)
        assert src.transform.almost_equals(info.transform)
        assert src.descriptions == ("red", "green", "blue")
        assert src.profile["tiled"] and src.block_shapes[0] == (256, 256)
        assert src.compression.name.lower() == "deflate"
        img = src.read()
    assert img.std() > 10  # not a flat image
    leftovers = [p.name for p in tmp_path.iterdir() if ".partial" in p.name]
    assert leftovers == []


def test_same_seed_is_deterministic_and_seeds_differ(tmp_path):
    a = _scene(tmp_path, "a", size=(256, 256), seed=7)
    b = _scene(tmp_path, "b", size=(256, 256), seed=7)
    c = _scene(tmp_path, "c", size=(256, 256), seed=8)
    img_a, gdf_a = _read(a)
    img_b, gdf_b = _read(b)
    img_c, _ = _read(c)
    assert img_a.tobytes() == img_b.tobytes()
    assert len(gdf_a) == len(gdf_b) == a.n_buildings == b.n_buildings
    for ga, gb in zip(gdf_a.geometry, gdf_b.geometry, strict=True):
        assert ga.equals_exact(gb, tolerance=0)
    assert np.abs(img_a.astype(int) - img_c.astype(int)).mean() > 10


def test_labels_are_valid_wgs84_inside_scene(scenes):
    for info in scenes:
        _, gdf = _read(info)
        assert gdf.crs is not None and gdf.crs.to_epsg() == 4326
        assert len(gdf) == info.n_buildings > 0
        assert set(gdf["class"]) == {"building"}
        assert gdf["building_id"].tolist() == list(range(1, info.n_buildings + 1))
        assert gdf.geometry.is_valid.all()
        assert (gdf.geom_type == "Polygon").all()
        h, w = info.shape
        left, top = info.transform * (0, 0)
        right, bottom = info.transform * (w, h)
        to_ll = Transformer.from_crs(info.crs, "EPSG:4326", always_xy=True)
        lon, lat = to_ll.transform([left, right, left, right], [top, top, bottom, bottom])
        minx, miny, maxx, maxy = gdf.total_bounds
        assert min(lon) <= minx < maxx <= max(lon)
        assert min(lat) <= miny < maxy <= max(lat)
        assert 30 <= lon[0] <= 35 and -1 <= lat[0] <= 2  # UTM 36N near Kampala
        # Buildings never overlap each other.
        utm = gdf.to_crs(info.crs)
        assert utm.union_all().area == pytest.approx(utm.area.sum(), rel=1e-6)
        sides = utm.geometry.minimum_rotated_rectangle().boundary.length / 2
        assert ((sides > 2 * 5.5) & (sides < 2 * 30)).all()  # half-perimeters in metres


def test_density_scales_with_area(tmp_path, scenes):
    big = _scene(tmp_path, size=(1024, 1024), seed=0)
    small = np.mean([s.n_buildings for s in scenes])  # 512x512 scenes
    assert 30 <= big.n_buildings <= 60
    assert 0.15 < small / big.n_buildings < 0.45


def test_labels_match_roofs_not_shadows(scenes):
    wins = total = 0
    for info in scenes:
        img, gdf = _read(info)
        utm = gdf.to_crs(info.crs).geometry
        ids = _burn(info, utm)
        roof = ids > 0
        assert 0.03 < roof.mean() < 0.40
        pix = img.astype(float)
        # Roofs differ in colour from everything else.
        diff = np.abs(pix[:, roof].mean(axis=1) - pix[:, ~roof].mean(axis=1)).mean()
        assert diff > 5
        # A footprint is more homogeneous than the same footprint shifted 4 px onto its
        # surroundings when the label sits exactly on the drawn roof.
        for k in range(len(utm)):
            inside = ids == k + 1
            moved = np.roll(inside, (4, 4), axis=(0, 1))
            wins += pix[:, inside].std(axis=1).mean() < pix[:, moved].std(axis=1).mean()
            total += 1
        # Shadows lie just outside the footprints and are not labelled.
        lum = pix.mean(axis=0)
        ring = (_burn(info, utm.buffer(1.5)) > 0) & ~roof
        background = _burn(info, utm.buffer(4.0)) == 0
        dark = 0.6 * np.median(lum[background])
        ring_dark, bg_dark = (lum[ring] < dark).mean(), (lum[background] < dark).mean()
        assert ring_dark > 0.15 and ring_dark > 3 * bg_dark
    assert wins >= 0.7 * total


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError):
        _scene(tmp_path, size=(0, 64))
    with pytest.raises(ValueError):
        _scene(tmp_path, resolution=0.0)


def test_scene_too_small_for_buildings_still_writes(tmp_path):
    info = make_building_scene(tmp_path / "s.tif", tmp_path / "s.geojson", size=(96, 96), seed=1)
    assert info.image_path.exists() and info.labels_path.exists()
