"""geounet.api, the single orchestrator: scenes in and out, the model zoo, bundle info."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fixtures_ml import tiny_unet_bundle

import geounet.api as gu
from geounet.data.synthetic import make_building_scene


@pytest.fixture(scope="module")
def scene_and_model(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("api")
    scene = make_building_scene(root / "s.tif", root / "s.geojson", size=(200, 232), seed=4)
    return scene, tiny_unet_bundle(root / "m.safetensors")


def test_predict_many_names_outputs_and_probabilities(scene_and_model, tmp_path: Path) -> None:
    import shutil

    scene, model = scene_and_model
    second = shutil.copy(scene.image_path, tmp_path / "t.tif")
    results = gu.predict_many(
        model, [scene.image_path, second], tmp_path / "out", probabilities=True
    )
    assert [r.path.name for r in results] == ["s_mask.tif", "t_mask.tif"]
    with pytest.raises(ValueError, match="would both write"):
        gu.predict_many(model, [scene.image_path, scene.image_path], tmp_path / "dup")
    proba = gu.probabilities_path(results[0].path)
    assert proba.name == "s_mask_proba.tif" and proba.exists()
    with rasterio.open(results[0].path) as out, rasterio.open(scene.image_path) as src:
        assert out.transform == src.transform and out.crs == src.crs
    one = gu.predict_many(model, [scene.image_path], tmp_path / "single.tif")
    assert [r.path for r in one] == [tmp_path / "single.tif"]


def test_vectorize_and_evaluate_through_the_api(scene_and_model, tmp_path: Path) -> None:
    scene, model = scene_and_model
    mask = gu.predict(model, scene.image_path, tmp_path / "m.tif").path
    gdf = gu.vectorize(mask, tmp_path / "v.gpkg", min_area_m2=0.0)
    assert (tmp_path / "v.gpkg").exists() and {"class_id", "area_m2"} <= set(gdf.columns)
    result = gu.evaluate(model, tmp_path / "eval", image=scene.image_path, labels=scene.labels_path)
    assert 0 <= result.metrics["pixel_accuracy"] <= 1 and result.report_path.exists()


def test_model_zoo_and_info(scene_and_model) -> None:
    _, model = scene_and_model
    names = {row["name"]: row for row in gu.list_models()}
    assert {"unet", "unet3d", "vnet", "deeplabv3plus"} <= set(names)
    assert names["unet3d"]["dims"] == 3 and names["unet"]["params"] > 1e6
    info = gu.model_info(model)
    assert info["source"] == "geotiff" and info["classes"] == ["background", "building"]


def test_cli_commands_call_only_the_api() -> None:
    root = Path(__file__).resolve().parents[1] / "geounet" / "cli"
    allowed = ("geounet.api", "geounet.cli", "geounet import __version__", "geounet.errors")
    for module in root.glob("*.py"):
        for line in module.read_text().splitlines():
            text = line.strip()
            if text.startswith(("from geounet", "import geounet")):
                assert any(a in text for a in allowed), f"{module.name}: {text}"
