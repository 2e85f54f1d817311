"""Tests for scene-level prediction."""

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_ml import UTM, write_geotiff

from geounet.errors import DataError
from geounet.infer.scene import PredictOptions, predict_scene
from geounet.models.bundle import ModelMeta, build_segmenter
from geounet.models.segmenter import Segmenter

CPU = PredictOptions(device="cpu", precision="fp32", tile=64, overlap=8, batch_size=2)


def _meta(bands: int = 3, classes: int = 2, resolution: float = 1.0, **changes) -> ModelMeta:
    values = {
        "architecture": "unet",
        "arguments": {"width": 4, "depth": 2},
        "in_channels": bands,
        "out_channels": 1 if classes == 2 else classes,
        "classes": ["background", "building", "road", "water"][:classes],
        "colors": [[0, 0, 0], [255, 0, 0], [0, 0, 255], [0, 255, 255]][:classes],
        "bands": [f"b{i}" for i in range(bands)],
        "mean": [0.0] * bands,
        "std": [1.0] * bands,
        "tile_size": 64,
        "resolution": [resolution, resolution],
        "ground_resolution_m": resolution,
        "crs": rasterio.crs.CRS.from_string(UTM).to_wkt(),
    }
    values.update(changes)
    return ModelMeta(**values)


def _threshold_model(bands: int = 3, threshold: float = 100.0) -> Segmenter:
    """A 1x1 convolution whose logit is ``band1 - threshold``: a known class map."""
    conv = nn.Conv2d(bands, 1, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = 1.0
        conv.bias.fill_(-threshold)
    return Segmenter(conv, [0.0] * bands, [1.0] * bands)


def _three_class_model() -> Segmenter:
    """Logits (50, band1 - 50, band2 - 50): class 1 where band 1 is bright, 2 for band 2."""
    conv = nn.Conv2d(2, 3, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[1, 0] = 1.0
        conv.weight[2, 1] = 1.0
        conv.bias.copy_(torch.tensor([50.0, -50.0, -50.0]))
    return Segmenter(conv, [0.0, 0.0], [1.0, 1.0])


def _scene(tmp_path: Path, height: int = 150, width: int = 200, **kwargs):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 80, size=(3, height, width)).astype(np.uint8)
    truth = np.zeros((height, width), dtype=np.uint8)
    for r, c, h, w in [(10, 10, 20, 30), (60, 100, 40, 16), (120, 150, 24, 40)]:
        h, w = min(h, height - r), min(w, width - c)
        if h > 0 and w > 0:
            data[0, r : r + h, c : c + w] = rng.integers(150, 255, size=(h, w))
            truth[r : r + h, c : c + w] = 1
    path = write_geotiff(tmp_path / "scene.tif", data, **kwargs)
    return path, data, truth


def _read(path: Path):
    with rasterio.open(path) as src:
        return src.read(1), src.profile, src.crs, src.transform


def test_known_class_map_on_the_input_grid(tmp_path: Path) -> None:
    scene, _, truth = _scene(tmp_path, res=0.5, origin=(500_123.5, 5_000_321.0))
    out = tmp_path / "out.tif"
    result = predict_scene(_threshold_model(), _meta(resolution=0.5), scene, out, CPU)
    classes, profile, crs, transform = _read(out)
    with rasterio.open(scene) as src:
        assert crs == src.crs
        assert transform == src.transform
        assert (profile["height"], profile["width"]) == (src.height, src.width)
    np.testing.assert_array_equal(classes, truth)
    assert result.scale == 1.0
    assert result.class_pixels == {
        "background": int((truth == 0).sum()),
        "building": int(truth.sum()),
    }


def test_multiclass_argmax(tmp_path: Path) -> None:
    data = np.zeros((2, 40, 60), dtype=np.uint8)
    data[0, :20, :30] = 200
    data[1, 25:, 40:] = 200
    scene = write_geotiff(tmp_path / "scene.tif", data)
    out = tmp_path / "out.tif"
    predict_scene(_three_class_model(), _meta(bands=2, classes=3), scene, out, CPU)
    expected = np.zeros((40, 60), dtype=np.uint8)
    expected[:20, :30] = 1
    expected[25:, 40:] = 2
    np.testing.assert_array_equal(_read(out)[0], expected)


def test_nodata_pixels_become_nodata(tmp_path: Path) -> None:
    scene, data, truth = _scene(tmp_path)
    data[:, :, :25] = 0
    data[:, 100:, :] = 0
    scene = write_geotiff(tmp_path / "nodata.tif", data, nodata=0)
    out = tmp_path / "out.tif"
    result = predict_scene(_threshold_model(), _meta(), scene, out, CPU)
    classes, profile, _, _ = _read(out)
    assert profile["nodata"] == 255
    invalid = (data == 0).all(axis=0)
    assert (classes[invalid] == 255).all()
    np.testing.assert_array_equal(classes[~invalid], truth[~invalid])
    assert sum(result.class_pixels.values()) == int((~invalid).sum())


def test_scene_smaller_than_a_tile(tmp_path: Path) -> None:
    scene, _, truth = _scene(tmp_path, height=37, width=45)
    out = tmp_path / "small.tif"
    predict_scene(_threshold_model(), _meta(), scene, out, PredictOptions(device="cpu"))
    np.testing.assert_array_equal(_read(out)[0], truth)
    # a real (random) U-Net: any scene size works and the output has the scene's shape
    torch.manual_seed(0)
    model = build_segmenter(_meta())
    out2 = tmp_path / "unet.tif"
    predict_scene(model, _meta(), scene, out2, CPU)
    classes = _read(out2)[0]
    assert classes.shape == (37, 45)
    assert set(np.unique(classes)) <= {0, 1}


def test_wrong_band_count(tmp_path: Path) -> None:
    scene = write_geotiff(tmp_path / "two.tif", np.zeros((2, 32, 32), dtype=np.uint8))
    with pytest.raises(DataError, match="has 2 bands but the model expects 3"):
        predict_scene(_threshold_model(), _meta(), scene, tmp_path / "out.tif", CPU)
    assert not (tmp_path / "out.tif").exists()


def test_band_name_mismatch_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    scene = write_geotiff(
        tmp_path / "named.tif",
        np.zeros((3, 32, 32), dtype=np.uint8),
        descriptions=["nir", "red", "green"],
    )
    meta = _meta()
    meta.bands = ["red", "green", "blue"]
    with caplog.at_level(logging.WARNING, logger="geounet"):
        predict_scene(_threshold_model(), meta, scene, tmp_path / "out.tif", CPU)
    assert "band names ['nir', 'red', 'green'] differ" in caplog.text


def test_coarser_model_resolution_triggers_resampling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import geounet.infer.scene as scene_module

    scene, _, truth = _scene(tmp_path, height=160, width=200)
    out = tmp_path / "out.tif"
    seen: list[tuple[int, ...]] = []
    original = scene_module.SceneReader.read

    def spy(self, row, n):
        band = original(self, row, n)
        seen.append((row, *band.shape))
        return band

    monkeypatch.setattr(scene_module.SceneReader, "read", spy)
    result = predict_scene(_threshold_model(), _meta(resolution=2.0), scene, out, CPU)
    assert result.scale == pytest.approx(2.0, rel=1e-3)  # UTM scale factor 0.9996
    # the model saw the scene at its 2 m training resolution: 80 x 100 pixels, in bands
    assert {(c, w) for _, c, _, w in seen} == {(3, 100)}
    assert max(row + n for row, _, n, _ in seen) == 80
    classes, _, crs, transform = _read(out)
    with rasterio.open(scene) as src:
        assert crs == src.crs and transform == src.transform
        assert classes.shape == (src.height, src.width)
    # up-sampled back, the buildings are found except on a thin border
    assert (classes == truth).mean() > 0.97
    assert classes[15:25, 15:35].all() and not classes[40:55, 50:90].any()


def test_resampling_can_be_disabled(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    scene, _, truth = _scene(tmp_path)
    out = tmp_path / "out.tif"
    options = PredictOptions(device="cpu", precision="fp32", tile=64, resample=False)
    with caplog.at_level(logging.WARNING, logger="geounet"):
        result = predict_scene(_threshold_model(), _meta(resolution=2.0), scene, out, options)
    assert "trained at 2 m; predicting without resampling" in caplog.text
    assert result.scale == 1.0
    np.testing.assert_array_equal(_read(out)[0], truth)


def test_geographic_scene_against_metric_model(tmp_path: Path) -> None:
    """A lon/lat scene at ~1 m per pixel with a 1 m UTM model needs no resampling."""
    data = np.zeros((3, 40, 40), dtype=np.uint8)
    data[0, 10:20, 10:30] = 200
    scene = write_geotiff(
        tmp_path / "geo.tif", data, crs="EPSG:4326", res=1 / 111_320, origin=(15.0, 0.0)
    )
    result = predict_scene(_threshold_model(), _meta(), scene, tmp_path / "out.tif", CPU)
    assert result.scale == 1.0
    assert _read(tmp_path / "out.tif")[0][10:20, 10:30].all()


def test_two_runs_to_one_output_never_corrupt_it(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    scene, _, truth = _scene(tmp_path)
    out = tmp_path / "out" / "mask.tif"
    options = PredictOptions(device="cpu", precision="fp32", tile=64)

    def run(_: int) -> None:
        predict_scene(_threshold_model(), _meta(), scene, out, options)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(run, range(2)))
    np.testing.assert_array_equal(_read(out)[0], truth)  # one whole run's file
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "mask.qml",
        "mask.tif",
        "mask.tif.aux.xml",
    ]
