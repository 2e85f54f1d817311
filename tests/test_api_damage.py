"""Disaster damage end to end: an xBD folder -> georeferenced pre/post pairs -> a
siamese model of building damage -> per-building polygons with damage and shares, and
the xView2 score."""

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
from geounet.evaluate import majority_map
from geounet.io.write import CLASS_MAP_TAG, CLASSES_TAG, INSTANCES_TAG
from geounet.models.bundle import read_meta

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fixtures_ml import TINY_TRAIN
from _fixtures_xbd import TRANSFORM, xbd_folder

CLASSES = ["background", "no-damage", "minor-damage", "major-damage", "destroyed"]
TINY = [
    "model.arguments={encoder: resnet18, decoder_channels: [32, 16, 8, 8, 8]}",
    *TINY_TRAIN,
    "train.samples_per_epoch=8",  # a siamese ResNet-18: fewer windows
]


def test_majority_map_gives_each_building_its_most_frequent_damage() -> None:
    instances = np.zeros((6, 10), np.int32)
    instances[1:5, 1:4] = 1  # 12 px
    instances[1:5, 6:9] = 2  # 12 px
    classes = np.zeros((6, 10), np.int64)
    classes[1:5, 1:4] = 4
    classes[1:3, 1:4] = 2
    classes[2, 1] = 4  # building 1: 5 minor, 7 destroyed
    classes[1:5, 6:9] = 1
    classes[1, 6] = 0  # a background pixel inside building 2 does not vote
    classes[0, 0] = 3  # outside every building: background after the vote
    voted = majority_map(instances, classes, 5)
    assert np.all(voted[instances == 1] == 4) and np.all(voted[instances == 2] == 1)
    assert voted[0, 0] == 0 and np.all(voted[instances == 0] == 0)


def test_vectorized_buildings_carry_damage_shares(tmp_path: Path) -> None:
    instances = np.zeros((40, 40), np.int32)
    instances[5:15, 5:15] = 1
    instances[20:30, 20:30] = 2
    classes = np.zeros((40, 40), np.uint8)
    classes[5:15, 5:15] = 4
    classes[5:8, 5:15] = 2  # 30 % minor damage, 70 % destroyed
    classes[20:30, 20:30] = 1
    profile = {
        "driver": "GTiff",
        "width": 40,
        "height": 40,
        "count": 1,
        "crs": "EPSG:4326",
        "transform": TRANSFORM,
    }
    with rasterio.open(tmp_path / "damage.tif", "w", dtype="uint8", **profile) as dst:
        dst.write(classes[None])
        dst.update_tags(**{CLASSES_TAG: json.dumps(CLASSES)})
    with rasterio.open(tmp_path / "damage_instances.tif", "w", dtype="int32", **profile) as dst:
        dst.write(instances[None])
        dst.update_tags(**{INSTANCES_TAG: "building", CLASS_MAP_TAG: "damage.tif"})
    gdf = gu.vectorize(tmp_path / "damage_instances.tif").sort_values("class_id")
    assert list(gdf.class_name) == ["no-damage", "destroyed"]
    destroyed = gdf.iloc[1]
    assert destroyed.class_share == pytest.approx(0.7)
    assert destroyed.share_minor_damage == pytest.approx(0.3)
    assert destroyed.share_destroyed == pytest.approx(0.7)
    assert destroyed.share_no_damage == 0 and gdf.iloc[0].share_no_damage == 1


@pytest.fixture(scope="module")
def damage_run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("damage")
    root = xbd_folder(tmp)
    preset = Path(__file__).resolve().parents[1] / "configs" / "damage.yaml"
    overrides = [
        f"data.images=[{root}]",
        "data.resolution=null",
        "data.val_fraction=0.5",
        "objects.border_m=0.6",
        "objects.min_seed_m2=1",
        "objects.min_area_m2=2",
        *TINY,
        f"run_dir={tmp / 'run'}",
    ]
    run = gu.train(preset, overrides, progress=False)
    return tmp, root, run, overrides


def test_damage_preset_trains_a_siamese_model_on_xbd(damage_run) -> None:
    _, _, run, _ = damage_run
    meta = read_meta(run.model_path)
    assert meta.architecture == "siamese_unet" and meta.arguments["timesteps"] == 2
    assert meta.classes == CLASSES and meta.timesteps == 2 and meta.in_channels == 6
    assert meta.dates == [["2011-05-01", "2011-06-01"], ["2011-05-01", "2011-06-01"]]
    assert meta.boundary and meta.object_name == "building"  # one object per building


def test_predict_on_xbd_pngs_writes_georeferenced_building_damage(damage_run, tmp_path) -> None:
    _, root, run, _ = damage_run
    pre = root / "images" / "test-storm_00000000_pre_disaster.png"
    post = root / "images" / "test-storm_00000000_post_disaster.png"
    out = tmp_path / "damage.tif"
    result = CliRunner().invoke(
        cli,
        [
            "-q",
            "predict",
            str(run.model_path),
            f"{pre},{post}",
            "-o",
            str(out),
            "--probabilities",
            "--vector",
            str(tmp_path / "buildings.gpkg"),
        ],
    )
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 4326
        assert src.transform.almost_equals(TRANSFORM, precision=1e-12)
    gdf = gpd.read_file(tmp_path / "buildings.gpkg")
    for column in ("class_name", "class_share", "share_destroyed", "confidence", "area_m2"):
        assert column in gdf.columns, gdf.columns


def test_evaluate_reports_the_xview2_score(damage_run, tmp_path: Path) -> None:
    _, _, run, overrides = damage_run
    from geounet.config import load_config

    preset = Path(__file__).resolve().parents[1] / "configs" / "damage.yaml"
    config = load_config(preset, overrides)
    result = gu.evaluate(run.model_path, tmp_path / "eval", config=config)
    x = result.metrics["xview2"]
    assert 0 <= x["score"] <= 1 and len(x["damage_f1_per_class"]) == 4
    assert x["score"] == pytest.approx(0.3 * x["localization_f1"] + 0.7 * x["damage_f1"])
    assert "xview2_buildings" in result.metrics
    assert "xView2 score" in result.report_path.read_text()


def test_damage_preset_loads() -> None:
    from geounet.config import load_config

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "damage.yaml")
    assert config.data.source == "xbd" and config.model.name == "siamese_unet"
    assert config.data.classes == CLASSES and config.data.ignore_values == ["un-classified"]
    assert config.train.oversample_classes == ["minor-damage", "major-damage", "destroyed"]
