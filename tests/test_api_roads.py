"""Roads end to end: centre lines in EPSG:4326 buffered in metres, a road model, its
class map vectorized as a network with lengths, and the road scores of evaluation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

import geounet.api as gu
from geounet.cli import cli
from geounet.data.datasets import labelled_scenes
from geounet.io.geodesy import pixel_size_m
from geounet.io.labels import read_labels
from geounet.io.write import LINES_TAG
from geounet.models.bundle import read_meta

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fixtures_ml import TINY_TRAIN, TINY_UNET, tiny_unet_bundle
from _fixtures_roads import road_scene

TINY = [TINY_UNET, *TINY_TRAIN, "train.loss={bce: 1, dice: 1, cldice: 0.5}"]


def test_centre_lines_in_degrees_are_buffered_in_metres(tmp_path: Path) -> None:
    scene = road_scene(tmp_path)
    for width in (4.0, 10.0):
        gdf = read_labels(scene.lines, line_width_m=width, crs="EPSG:32611")
        lengths = gdf.geometry.apply(lambda g: g.exterior.length / 2)  # ~ length of the road
        widths = gdf.area / lengths
        # round ends add a little area; the width is metres, not degrees (1e-5)
        assert np.allclose(widths, width, rtol=0.12), widths
    with pytest.raises(Exception, match=r"lines\.width_m"):
        read_labels(scene.lines)


def test_rasterized_road_is_width_m_wide_on_the_degree_grid(tmp_path: Path) -> None:
    scene = road_scene(tmp_path)
    ds = labelled_scenes(
        [str(scene.image)], str(scene.lines), classes=["background", "road"], line_width_m=8.0
    )
    bounds = ds.bounds
    sample = ds[bounds[0], bounds[1], slice(None)]
    mask = sample["mask"].numpy().squeeze()
    # the horizontal road: rows covered in a column away from the other roads
    column = mask[:, 120]
    rows_m = column.sum() * 1.0  # 9e-6 degrees of latitude are ~1.0 m
    assert rows_m == pytest.approx(8.0, abs=1.5)


@pytest.fixture(scope="module")
def road_run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("roads")
    scene = road_scene(tmp)
    overrides = [
        f"data.images={json.dumps([str(scene.image)])}",
        f"data.labels={scene.lines}",
        "data.classes=[background, road]",
        "data.val_fraction=0.3",
        "lines.enabled=true",
        "lines.width_m=6",
        "lines.spur_m=5",
        "lines.gap_m=5",
        "lines.min_length_m=5",
        *TINY,
        f"run_dir={tmp / 'run'}",
    ]
    run = gu.train(None, overrides, progress=False)
    return tmp, scene, run


def test_road_model_records_its_network_settings(road_run) -> None:
    _, _, run = road_run
    meta = read_meta(run.model_path)
    assert meta.lines["width_m"] == 6 and meta.lines["spur_m"] == 5
    assert meta.classes == ["background", "road"]


def test_predict_vector_writes_a_network_with_lengths(road_run, tmp_path: Path) -> None:
    _, scene, run = road_run
    out = tmp_path / "roads.tif"
    result = CliRunner().invoke(
        cli,
        [
            "-q",
            "predict",
            str(run.model_path),
            str(scene.image),
            "-o",
            str(out),
            "--vector",
            str(tmp_path / "roads.gpkg"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "lines" in result.output and "km" in result.output
    with rasterio.open(out) as src:
        assert json.loads(src.tags()[LINES_TAG])["spur_m"] == 5
    gdf = gpd.read_file(tmp_path / "roads.gpkg")
    assert list(gdf.columns) == ["class_id", "class_name", "length_m", "geometry"]
    assert set(gdf.geom_type) <= {"LineString"}


def test_vectorize_lines_of_a_known_mask_in_degrees(tmp_path: Path) -> None:
    scene = road_scene(tmp_path)
    mask = np.zeros((scene.size, scene.size), np.uint8)
    mask[60:66, 10:110] = 1  # a road 100 px long east-west
    path = tmp_path / "mask.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=scene.size,
        height=scene.size,
        count=1,
        dtype="uint8",
        crs="EPSG:4326",
        transform=scene.transform,
    ) as dst:
        dst.write(mask[None])
    gdf = gu.vectorize(path, tmp_path / "roads.geojson", lines=True, spur_m=1, min_length_m=1)
    with rasterio.open(path) as src:
        px_x = pixel_size_m(src.crs, src.transform, tuple(src.bounds))
    assert len(gdf) == 1
    east_west_m = 100 * 9e-6 * 111320 * np.cos(np.radians(36.14))  # ~81 m
    assert gdf.length_m.iloc[0] == pytest.approx(east_west_m, rel=0.08)
    assert px_x > 0
    polygons = gu.vectorize(path, None, lines=False)
    assert "area_m2" in polygons.columns and len(polygons) == 1


def test_evaluate_reports_road_scores(road_run, tmp_path: Path) -> None:
    _, scene, run = road_run
    result = gu.evaluate(run.model_path, tmp_path / "eval", image=scene.image, labels=scene.lines)
    roads = result.metrics["roads"]
    for key in ("iou", "f1", "completeness", "correctness", "quality", "apls"):
        assert key in roads
    assert roads["true_px"] > 100  # the true centre lines were found
    assert "Road network" in result.report_path.read_text()
    assert result.metrics["objects"] == {}


def test_roads_presets_load() -> None:
    from geounet.config import load_config

    root = Path(__file__).resolve().parents[1] / "configs"
    roads = load_config(root / "roads.yaml")
    assert roads.lines.enabled and roads.lines.width_m == 4
    assert roads.train.loss == {"bce": 1, "dice": 1, "cldice": 0.5}
    deepglobe = load_config(root / "deepglobe_roads.yaml")
    assert deepglobe.data.source == "folders" and deepglobe.data.mask_threshold == 128
    assert deepglobe.lines.enabled and deepglobe.data.resolution == 0.5


def test_lines_config_is_checked() -> None:
    from geounet.config import load_config
    from geounet.errors import ConfigError

    with pytest.raises(ConfigError, match=r"lines\.gap_m"):
        load_config(None, ["lines.gap_m=-1"])
    with pytest.raises(ConfigError, match="exclude each other"):
        load_config(None, ["lines.enabled=true", "objects.enabled=true"])


def test_predict_vector_refuses_chip_models_before_predicting(tmp_path: Path) -> None:
    model = tiny_unet_bundle(tmp_path / "chips.safetensors", source="folders")
    chip = tmp_path / "chip.png"
    chip.write_bytes(b"")
    result = CliRunner().invoke(
        cli,
        [
            "predict",
            str(model),
            str(chip),
            "-o",
            str(tmp_path / "out.png"),
            "--vector",
            str(tmp_path / "roads.geojson"),
        ],
    )
    assert result.exit_code == 2 and "needs georeferenced output" in result.output
    assert not (tmp_path / "out.png").exists()
