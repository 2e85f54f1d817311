"""Separate objects end to end: target -> model -> instance map -> one polygon each."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import torch
from click.testing import CliRunner

import geounet.api as gu
from geounet.cli import cli
from geounet.data.objects import BORDER, CONTACT, object_target
from geounet.errors import DataError
from geounet.models.bundle import ModelMeta
from geounet.models.segmenter import Segmenter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fixtures_ml import pixel_box, write_geojson, write_geotiff

OBJECTS = {
    "border_px": 2,
    "contact_px": 3,
    "mask_threshold": 0.5,
    "seed_threshold": 0.7,
    "border_threshold": 0.4,
    "contact_threshold": 0.4,
    "min_seed_m2": 2.0,
    "min_area_m2": 4.0,
}


def _truth() -> np.ndarray:
    inst = np.zeros((96, 128), np.int32)
    inst[10:40, 10:40] = 1  # } two roofs sharing an edge
    inst[10:40, 40:75] = 2  # }
    inst[60:85, 90:120] = 3  # a building on its own
    return inst


def _oracle_scene(path: Path) -> Path:
    """A 3-band raster holding the logits a perfect model would output for _truth()."""
    inst = _truth()
    target = object_target(inst, OBJECTS["border_px"], OBJECTS["contact_px"])
    channels = [inst > 0, (target & BORDER) > 0, (target & CONTACT) > 0]
    logits = np.stack([np.where(c, 8.0, -8.0) for c in channels]).astype(np.float32)
    return write_geotiff(path, logits, res=0.5)


def _oracle_model() -> tuple[Segmenter, ModelMeta]:
    meta = ModelMeta(
        architecture="identity",
        arguments={},
        in_channels=3,
        out_channels=3,
        classes=["background", "building"],
        colors=[[0, 0, 0], [230, 25, 75]],
        bands=["band_1", "band_2", "band_3"],
        mean=[0.0] * 3,
        std=[1.0] * 3,
        tile_size=64,
        objects=dict(OBJECTS),
    )
    return Segmenter(torch.nn.Identity(), meta.mean, meta.std), meta


def test_touching_buildings_become_one_polygon_each(tmp_path: Path) -> None:
    scene = _oracle_scene(tmp_path / "scene.tif")
    mask, inst = tmp_path / "mask.tif", tmp_path / "mask_instances.tif"
    # small windows: the touching pair spans window seams of the streamed prediction
    proba = tmp_path / "mask_proba.tif"
    options = gu.PredictOptions(tile=48, overlap=8, instances=inst, probabilities=proba)
    result = gu.predict(_oracle_model(), scene, mask, options)
    assert result.objects == 3 and result.instances == inst
    with rasterio.open(inst) as src:
        ids = src.read(1)
        assert src.tags()["GEOUNET_INSTANCES"] == "building" and src.dtypes[0] == "uint32"
    assert len(np.unique(ids[ids > 0])) == 3
    gdf = gu.vectorize(inst, tmp_path / "footprints.gpkg", probabilities=proba)
    assert len(gdf) == 3 and set(gdf["class_name"]) == {"building"}
    assert (gdf["confidence"] > 0.99).all()  # mean footprint probability of each object
    areas = sorted(gdf.area.round(2))
    assert areas == pytest.approx(sorted([30 * 30 * 0.25, 30 * 35 * 0.25, 25 * 30 * 0.25]), rel=0.1)
    pair = [g for g in gdf.geometry if g.area > 200]
    assert len(pair) == 2 and pair[0].touches(pair[1])  # adjoining, not merged
    # the class map of the same prediction merges the pair: why instances matter
    assert len(gu.vectorize(mask)) == 2
    # the footprints' QGIS style has the model's building colour, as the class map has
    qml = ET.parse(tmp_path / "footprints.qml").getroot()
    fill = qml.find("renderer-v2/symbols/symbol/layer/Option/Option[@name='color']")
    assert fill.get("value").startswith("230,25,75,")


def test_class_models_refuse_an_instance_map(tmp_path: Path) -> None:
    net, meta = _oracle_model()
    meta.objects = None
    meta.out_channels = 3
    meta.classes = ["a", "b", "c"]
    meta.colors = [[0, 0, 0]] * 3
    with pytest.raises(DataError, match="not separate objects"):
        gu.predict(
            (net, meta),
            _oracle_scene(tmp_path / "s.tif"),
            tmp_path / "m.tif",
            gu.PredictOptions(instances=tmp_path / "i.tif"),
        )


@pytest.fixture(scope="module")
def object_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny object model trained through the CLI on a scene of touching buildings."""
    root = tmp_path_factory.mktemp("objects")
    rng = np.random.default_rng(0)
    image = rng.normal(60, 10, (3, 200, 200))
    polys = []
    for r in range(8, 180, 36):
        for c in range(8, 180, 48):
            for dc in (0, 20):  # pairs of roofs sharing an edge
                image[:, r : r + 24, c + dc : c + dc + 20] = 180 + 30 * (dc > 0)
                polys.append(pixel_box(r, c + dc, r + 24, c + dc + 20))
    scene = write_geotiff(root / "scene.tif", np.clip(image, 0, 255).astype(np.uint8))
    labels = write_geojson(root / "buildings.geojson", polys)
    config = root / "config.yaml"
    config.write_text(
        f"data:\n  images: [{scene}]\n  labels: {labels}\n  val_fraction: 0.3\n"
        "model:\n  arguments: {width: 8, depth: 2}\n"
        "train:\n  tile_size: 64\n  batch_size: 4\n  samples_per_epoch: 16\n  max_epochs: 3\n"
        "  ema: 0.9\n"
        "objects:\n  enabled: true\n  border_m: 2\n  contact_m: 3\n  min_area_m2: 20\n"
    )
    run = root / "run"
    result = CliRunner().invoke(
        cli, ["-q", "train", str(config), "--set", f"run_dir={run}"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return run / "model.safetensors", scene, labels


def test_cli_trains_predicts_and_vectorizes_objects(object_run, tmp_path: Path) -> None:
    model, scene, _ = object_run
    info = gu.model_info(model)
    assert "objects" in json.dumps(info, default=str)
    meta = gu.load_model(model)[1]
    assert meta.out_channels == 3 and meta.objects["border_px"] == 2
    out, vector = tmp_path / "mask.tif", tmp_path / "footprints.geojson"
    result = CliRunner().invoke(
        cli,
        ["-q", "predict", str(model), str(scene), "-o", str(out), "--vector", str(vector)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "separate objects" in result.output
    inst = tmp_path / "mask_instances.tif"
    with rasterio.open(inst) as src:
        ids = src.read(1)
    features = json.loads(vector.read_text())["features"]
    # one polygon per object of the instance map
    assert len(features) == len(np.unique(ids[ids > 0]))
    geoms = [shapely.geometry.shape(f["geometry"]) for f in features]
    assert all(g.is_valid for g in geoms)


def test_evaluate_reports_polygon_objects_merges_and_splits(
    object_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geounet import report as report_module

    model, scene, labels = object_run
    drawn = []  # the objects figure shows the polygons that are scored
    figure = report_module.objects_figure
    monkeypatch.setattr(
        report_module,
        "objects_figure",
        lambda rgb, pred, truth, *a: (
            drawn.append((len(pred), len(truth))) or figure(rgb, pred, truth, *a)
        ),
    )
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            str(model),
            "--image",
            str(scene),
            "--labels",
            str(labels),
            "-o",
            str(tmp_path / "ev"),
            "--min-object-m2",
            "50",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "merges" in result.output and "splits" in result.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    objects = metrics["objects"]["building"]
    assert objects["n_true"] == 40 and objects["instances"] is True
    assert objects["tp"] + objects["fn"] == objects["n_true"]
    assert "50 m2" in objects["rule"]
    assert drawn == [(objects["n_pred"], objects["n_true"])]
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "merges (true inside)" in report and "objects.png" in report
    assert (tmp_path / "ev" / "objects.png").stat().st_size > 1000


def test_objects_config_is_checked(tmp_path: Path) -> None:
    from geounet.config import load_config
    from geounet.errors import ConfigError

    with pytest.raises(ConfigError, match="two-class"):
        load_config(None, ["objects.enabled=true", "data.classes=[a, b, c]"])
    with pytest.raises(ConfigError, match=r"objects\.weights"):
        load_config(None, ["objects.enabled=true", "objects.weights=[1, 1]"])
    with pytest.raises(ConfigError, match="seed_threshold"):
        load_config(None, ["objects.enabled=true", "objects.seed_threshold=2"])
    with pytest.raises(ConfigError, match=r"train\.ema"):
        load_config(None, ["train.ema=1.5"])
    with pytest.raises(ConfigError, match=r"augmentation\.hue"):
        load_config(None, ["augmentation.hue=0.7"])
    with pytest.raises(ConfigError, match="GeoTIFF scenes only"):
        load_config(None, ["objects.enabled=true", "data.source=folders"])
