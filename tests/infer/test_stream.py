"""Streaming scene prediction: exactness, no seams, probabilities, COG, TTA, CLI options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from click.testing import CliRunner
from conftest import make_geotiff
from torch import nn

from geounet.cli import cli
from geounet.infer.scene import PredictOptions, predict_scene
from geounet.models.bundle import ModelMeta, save_bundle
from geounet.models.segmenter import Segmenter


class Pointwise(nn.Module):
    """A translation-equivariant (pointwise) model: a fixed 1x1 convolution."""

    def __init__(self, bands: int, classes: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(bands, classes, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(classes, bands, 1, 1, generator=g) / 50)
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _meta(classes: int, bands: int = 3) -> ModelMeta:
    return ModelMeta(
        architecture="pointwise",
        arguments={},
        in_channels=bands,
        out_channels=1 if classes == 2 else classes,
        classes=[f"c{i}" for i in range(classes)],
        colors=[[i * 40, i * 40, i * 40] for i in range(classes)],
        bands=[f"b{i}" for i in range(bands)],
        mean=[0.0] * bands,
        std=[1.0] * bands,
        tile_size=64,
    )


def _scene(tmp_path: Path, height: int = 300, width: int = 410, bands: int = 3) -> Path:
    data = np.random.default_rng(0).integers(0, 250, (bands, height, width)).astype(np.uint8)
    return make_geotiff(tmp_path / "scene.tif", data)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_identity_model_returns_the_input_exactly(tmp_path: Path) -> None:
    """Logits = the bands: the class map is their argmax, probabilities their softmax."""
    scene = _scene(tmp_path)
    identity = Segmenter(nn.Identity(), [0.0] * 3, [10.0] * 3)
    out, proba = tmp_path / "classes.tif", tmp_path / "proba.tif"
    options = PredictOptions(
        device="cpu", precision="fp32", tile=96, overlap=20, probabilities=proba
    )
    predict_scene(identity, _meta(3), scene, out, options)
    data = _read(scene).astype(np.float64)
    np.testing.assert_array_equal(_read(out)[0], data.argmax(0))
    softmax = np.exp(data / 10 - (data / 10).max(0)) / np.exp(data / 10 - (data / 10).max(0)).sum(0)
    assert np.abs(_read(proba).astype(int) - np.rint(softmax * 255)).max() <= 1


@pytest.mark.parametrize(("tile", "overlap"), [(64, 0), (100, 13), (256, 64), (512, 0)])
def test_no_seams_whatever_the_tiling(tmp_path: Path, tile: int, overlap: int) -> None:
    scene = _scene(tmp_path)
    model = Segmenter(Pointwise(3, 4), [0.0] * 3, [1.0] * 3)
    reference, out = tmp_path / "ref.tif", tmp_path / "out.tif"
    whole = PredictOptions(
        device="cpu", precision="fp32", tile=1024, probabilities=tmp_path / "p0.tif"
    )
    predict_scene(model, _meta(4), scene, reference, whole)
    tiled = PredictOptions(
        device="cpu",
        precision="fp32",
        tile=tile,
        overlap=overlap,
        probabilities=tmp_path / "p1.tif",
    )
    predict_scene(model, _meta(4), scene, out, tiled)
    np.testing.assert_array_equal(_read(out), _read(reference))
    assert np.abs(_read(tmp_path / "p1.tif").astype(int) - _read(tmp_path / "p0.tif")).max() <= 1


def test_outputs_are_styled_cogs_on_the_grid(tmp_path: Path) -> None:
    scene = _scene(tmp_path, height=1100, width=1300)
    out, proba = tmp_path / "c.tif", tmp_path / "p.tif"
    model = Segmenter(Pointwise(3, 3), [0.0] * 3, [1.0] * 3)
    options = PredictOptions(device="cpu", precision="fp32", tile=256, probabilities=proba)
    predict_scene(model, _meta(3), scene, out, options)
    with rasterio.open(scene) as src, rasterio.open(out) as c, rasterio.open(proba) as p:
        for dst in (c, p):
            assert (dst.crs, dst.transform, dst.shape) == (src.crs, src.transform, src.shape)
            assert dst.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert dst.overviews(1)  # overviews for GIS viewers
        assert c.colormap(1)[1][:3] == (40, 40, 40)
        assert p.count == 3 and p.descriptions == ("p(c0)", "p(c1)", "p(c2)")
        total = p.read().astype(int).sum(0)
        assert np.abs(total - 255).max() <= 2  # probabilities sum to one
    from rio_cogeo.cogeo import cog_validate

    for path in (out, proba):
        valid, errors, _ = cog_validate(str(path), quiet=True)
        assert valid, errors
    assert sorted(x.name for x in tmp_path.iterdir()) == [
        "c.qml",  # QGIS styles: paletted classes, graduated probabilities
        "c.tif",
        "c.tif.aux.xml",  # GDAL: the classes' colour table and names
        "p.qml",
        "p.tif",
        "scene.tif",
    ]


def test_tta_is_invariant_for_pointwise_models(tmp_path: Path) -> None:
    scene = _scene(tmp_path, 130, 150)
    model = Segmenter(Pointwise(3, 2), [0.0] * 3, [1.0] * 3)
    meta = _meta(3)
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    predict_scene(model, meta, scene, a, PredictOptions(device="cpu", precision="fp32", tile=64))
    predict_scene(
        model, meta, scene, b, PredictOptions(device="cpu", precision="fp32", tile=64, tta=True)
    )
    assert (_read(a) == _read(b)).mean() > 0.999


def test_cli_probabilities_tta_and_vector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import geounet.models.bundle as bundle

    monkeypatch.setattr(bundle, "build_model", lambda *a, **k: Pointwise(3, 1))
    scene = _scene(tmp_path, 120, 140)
    meta = _meta(2)
    model = save_bundle(
        Segmenter(Pointwise(3, 1), meta.mean, meta.std), meta, tmp_path / "m.safetensors"
    )
    out = tmp_path / "mask.tif"
    result = CliRunner().invoke(
        cli,
        [
            "-q",
            "predict",
            str(model),
            str(scene),
            "-o",
            str(out),
            "--tta",
            "--probabilities",
            "--vector",
            str(tmp_path / "shapes.gpkg"),
            "--device",
            "cpu",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mask_proba.tif").exists()
    assert (tmp_path / "shapes.gpkg").exists()
    assert "polygons" in result.output
