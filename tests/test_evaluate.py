"""geounet evaluate: metrics.json, report.md and figures, from an image + labels or a config."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fixtures_ml import building_scene

from geounet.cli import cli
from geounet.models.bundle import ModelMeta, save_bundle
from geounet.models.segmenter import Segmenter


class _Threshold(nn.Module):
    """Logit = band 1 - 128: bright squares are buildings (a known, perfect model)."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(-128.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] + self.bias


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("eval")
    img, labels, truth = building_scene(tmp, size=192, squares=9, square=16)
    return img, labels, truth


def _perfect_model(path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import geounet.models.bundle as bundle

    meta = ModelMeta(
        architecture="threshold",
        arguments={},
        in_channels=3,
        out_channels=1,
        classes=["background", "building"],
        colors=[[0, 0, 0], [255, 0, 0]],
        bands=["b1", "b2", "b3"],
        mean=[0.0] * 3,
        std=[1.0] * 3,
        tile_size=64,
    )
    monkeypatch.setattr(bundle, "build_model", lambda *a, **k: _Threshold())
    return save_bundle(Segmenter(_Threshold(), meta.mean, meta.std), meta, path)


def test_evaluate_image_and_labels(scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    img, labels, _ = scene
    model = _perfect_model(tmp_path / "m.safetensors", monkeypatch)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        cli,
        ["evaluate", str(model), "--image", str(img), "--labels", str(labels), "-o", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    building = metrics["building"]
    assert building["iou"] == pytest.approx(1.0)
    assert building["support"] > 0
    assert metrics["objects"]["building"]["f1"] == pytest.approx(1.0)
    assert metrics["objects"]["building"]["tp"] == 9
    assert metrics["boundary"]["building"]["hd95_px"] == pytest.approx(0.0)
    report = (out / "report.md").read_text()
    assert "| building | 1.0000 |" in report
    assert "Confusion matrix" in report
    assert (out / "windows.png").stat().st_size > 1000


def test_evaluate_counts_errors(scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Labels with one extra building the model cannot see: one missed object."""
    import geopandas as gpd
    import shapely

    img, labels, truth = scene
    import rasterio

    gdf = gpd.read_file(labels)
    with rasterio.open(img) as src:
        # an 8x8 px building on background, two pixels away from any true building
        free = np.argwhere(
            np.lib.stride_tricks.sliding_window_view(truth == 0, (12, 12)).all(axis=(2, 3))
        )
        row, col = free[len(free) // 2] + 2
        x0, y1 = src.transform * (col, row)
        x1, y0 = src.transform * (col + 8, row + 8)
    extra = gpd.GeoSeries([shapely.box(x0, y0, x1, y1)], crs=src.crs).to_crs(gdf.crs)[0]
    gdf = gpd.GeoDataFrame(geometry=[*gdf.geometry, extra], crs=gdf.crs)
    more = tmp_path / "more.geojson"
    gdf.to_file(more)
    model = _perfect_model(tmp_path / "m.safetensors", monkeypatch)
    from geounet.evaluate import evaluate

    result = evaluate(model, tmp_path / "r", image=img, labels=more)
    objects = result.metrics["objects"]["building"]
    assert (objects["tp"], objects["fn"], objects["fp"]) == (9, 1, 0)
    assert result.metrics["building"]["recall"] < 1.0
    assert result.metrics["building"]["precision"] == pytest.approx(1.0)
    assert np.isfinite(result.metrics["boundary"]["building"]["hd_m"])


def test_evaluate_needs_data(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["evaluate", "m.safetensors"])
    assert result.exit_code != 0
    assert "--image and --labels, or --config" in result.output
