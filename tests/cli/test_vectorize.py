"""CLI tests for ``geounet vectorize`` and ``geounet predict --vector``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from geounet.cli import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_ml import tiny_unet_bundle

UTM = "EPSG:32636"
TRANSFORM = Affine(0.5, 0, 500_000.0, 0, -0.5, 40_000.0)


@pytest.fixture
def mask(tmp_path: Path) -> Path:
    m = np.zeros((200, 240), np.uint8)
    m[20:60, 20:90] = 1
    m[30:34, 30:34] = 0  # 4 m2 hole
    m[100:160, 120:200] = 2
    m[5:7, 220:222] = 1  # 1 m2 speck
    path = tmp_path / "mask.tif"
    profile = dict(driver="GTiff", width=240, height=200, count=1, dtype="uint8")
    with rasterio.open(path, "w", crs=UTM, transform=TRANSFORM, **profile) as dst:
        dst.write(m, 1)
        dst.update_tags(GEOUNET_CLASSES=json.dumps(["background", "building", "field"]))
    probs = np.zeros((3, 200, 240), np.uint8)
    probs[1][m == 1] = 230
    probs[2][m == 2] = 153
    with rasterio.open(
        tmp_path / "proba.tif", "w", crs=UTM, transform=TRANSFORM, **(profile | {"count": 3})
    ) as dst:
        dst.write(probs)
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli, ["-q", "vectorize", *args], catch_exceptions=False)


def test_all_options_and_formats(mask: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.gpkg"
    result = invoke(
        str(mask), "-o", str(out), "--min-area", "2", "--fill-holes", "5", "--simplify", "0.5",
        "--regularize", "building", "--smooth", "field", "--probabilities",
        str(tmp_path / "proba.tif"), "--crs", "EPSG:3857",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "(2 polygons)" in result.output
    gdf = gpd.read_file(out)
    assert gdf.crs.to_epsg() == 3857
    assert list(gdf.class_name) == ["building", "field"]
    building, field = gdf.geometry
    assert len(building.interiors) == 0 and len(building.exterior.coords) == 5
    assert len(field.exterior.coords) > 5
    np.testing.assert_allclose(gdf.confidence, [230 / 255, 153 / 255], atol=1e-3)
    for suffix in (".fgb", ".parquet", ".geojson", ".shp"):
        path = tmp_path / f"out{suffix}"
        assert invoke(str(mask), "-o", str(path), "--regularize").exit_code == 0
        read = gpd.read_parquet if suffix == ".parquet" else gpd.read_file
        assert len(read(path)) == 3


def test_classes_by_name_and_connectivity(mask: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.geojson"
    result = invoke(str(mask), "-o", str(out), "--classes", "field", "--connectivity", "8")
    assert result.exit_code == 0, result.output
    props = [f["properties"] for f in json.loads(out.read_text())["features"]]
    assert [p["class_name"] for p in props] == ["field"]
    assert props[0]["area_m2"] == pytest.approx(60 * 80 * 0.25, rel=2e-3)
    assert props[0]["perimeter_m"] == pytest.approx(2 * (30 + 40), rel=2e-3)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from geounet.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("extra", "output", "expected"),
    [
        ([], "out.txt", "unsupported vector extension '.txt'"),
        (["--classes", "roads"], "out.gpkg", "unknown class 'roads'"),
        (["--crs", "EPSG:3857"], "out.geojson", "GeoJSON is always EPSG:4326"),
        (["--crs", "nonsense"], "out.gpkg", "'nonsense' is not a CRS"),
        (["--min-area", "-3"], "out.gpkg", "min_area_m2 must be a number >= 0"),
        (["--probabilities", "nope.tif"], "out.gpkg", "nope.tif"),
    ],
)
def test_errors_are_one_line_and_leave_no_file(
    mask: Path, tmp_path: Path, extra: list[str], output: str, expected: str
) -> None:
    extra = [str(tmp_path / e) if e.endswith(".tif") else e for e in extra]
    target = tmp_path / output
    proc = _run("vectorize", str(mask), "-o", str(target), *extra)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("geounet: error:"), proc.stderr
    assert expected in lines[0]
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.tif", "proba.tif"]


def test_predict_vector_in_one_go(tmp_path: Path) -> None:
    from geounet.data.synthetic import make_building_scene

    scene = make_building_scene(tmp_path / "s.tif", tmp_path / "s.geojson", size=(128, 128), seed=1)
    model = tiny_unet_bundle(tmp_path / "m.safetensors")
    vectors = tmp_path / "b.gpkg"
    args = ["-q", "predict", str(model), str(scene.image_path), "-o", str(tmp_path / "p.tif")]
    args += ["--probabilities", "--vector", str(vectors), "--regularize", "--min-area", "0.5"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    gdf = gpd.read_file(vectors)
    assert "confidence" in gdf.columns and "perimeter_m" in gdf.columns
    assert (gdf.area_m2 >= 0.5).all() and gdf.geometry.is_valid.all()
    assert gdf.confidence.between(0.5, 1).all()  # pixels are of the argmax class


def test_predict_checks_the_vector_path_before_predicting(tmp_path: Path) -> None:
    proc = _run("predict", "m.safetensors", "x.tif", "-o", "y.tif", "--vector", "out.kml")
    assert proc.returncode == 1
    assert "unsupported vector extension '.kml'" in proc.stderr
