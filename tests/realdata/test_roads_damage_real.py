"""Roads and damage on the real samples: SpaceNet Vegas centre lines, DeepGlobe masks,
the xBD Joplin tiles (each test skips when its folder in ../shared/data is absent)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio

import geounet.api as gu
from geounet.io.geodesy import geodesic_length_m
from geounet.io.labels import rasterize_labels, read_labels

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
VEGAS = DATA / "spacenet_vegas_roads"
DEEPGLOBE = DATA / "deepglobe_roads"
XBD = DATA / "xbd_joplin"


@pytest.mark.skipif(not VEGAS.exists(), reason="../shared/data/spacenet_vegas_roads absent")
def test_vegas_centre_lines_buffered_in_metres_match_spacenets_mask() -> None:
    with rasterio.open(VEGAS / "sample_road_raster_mask.tif") as src:
        published = src.read(1) > 0
        transform, shape, crs = src.transform, (src.height, src.width), src.crs
    lines = VEGAS / "sample_roads_for_masking.geojson"
    ours = rasterize_labels(read_labels(lines, crs=crs, line_width_m=4.0), shape, transform) > 0
    iou = (ours & published).sum() / (ours | published).sum()
    assert iou > 0.8, iou  # SpaceNet's mask: 2 m either side of the centre line


@pytest.mark.skipif(not VEGAS.exists(), reason="../shared/data/spacenet_vegas_roads absent")
def test_vegas_mask_vectorizes_to_the_centre_lines_length(tmp_path: Path) -> None:
    network = gu.vectorize(
        VEGAS / "sample_road_raster_mask.tif", tmp_path / "roads.gpkg", lines=True, window=256
    )
    truth = gpd.read_file(VEGAS / "sample_roads_for_masking.geojson")
    true_m = geodesic_length_m(truth.geometry.values, truth.crs).sum()
    assert network.length_m.sum() == pytest.approx(true_m, rel=0.05)
    assert set(gpd.read_file(tmp_path / "roads.gpkg").geom_type) == {"LineString"}


@pytest.mark.skipif(not DEEPGLOBE.exists(), reason="../shared/data/deepglobe_roads absent")
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_deepglobe_mask_against_itself_scores_one() -> None:
    from geounet.vectorize.network_score import RoadScores

    with rasterio.open(DEEPGLOBE / "104_mask.png") as src:
        mask = src.read(1) > 128
    roads = RoadScores({"tolerance_m": 3.0, "spur_m": 15, "gap_m": 15, "min_length_m": 20})
    roads.add(mask, mask, 0.5)
    result = roads.result()
    assert result["completeness"] == 1.0 and result["correctness"] == 1.0
    assert result["apls"] > 0.95  # the prediction side is cleaned (spurs), the truth not


@pytest.mark.skipif(not XBD.exists(), reason="../shared/data/xbd_joplin absent")
def test_joplin_tiles_are_georeferenced_onto_their_buildings(tmp_path: Path) -> None:
    from geounet.io.xbd import find_tiles, georeference, xbd_scenes

    tiles = find_tiles(XBD)
    _, residual = georeference(tiles[0].pre_labels, tiles[0].post_labels)
    assert residual < 0.05  # pixels
    scene = xbd_scenes([XBD], tmp_path)[0]
    buildings = gpd.read_file(scene.labels)
    assert {"destroyed", "minor-damage"} <= set(buildings.subtype)
    with rasterio.open(scene.post) as src:
        assert src.crs.to_epsg() == 4326
        assert src.tags()["ACQUISITIONDATETIME"] == "2011-05-29"
        inside = rasterize_labels(
            buildings.assign(class_id=1), (src.height, src.width), src.transform
        )
    assert inside.mean() > 0.05 and np.any(inside)
