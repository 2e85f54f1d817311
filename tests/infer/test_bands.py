"""A scene predicted in row bands apart and assembled equals the one-process output."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_ml import tiny_unet_bundle, write_geotiff

from geounet.errors import DataError
from geounet.infer.bands import (
    assemble_bands,
    chunk_ends,
    part_record,
    predict_band,
    scene_bands,
)
from geounet.infer.scene import PredictOptions, plan_scene, predict_scene
from geounet.models.bundle import load_bundle

OBJECTS = {
    "border_px": 1,
    "contact_px": 1,
    "mask_threshold": 0.5,
    "seed_threshold": 0.6,
    "border_threshold": 0.5,
}


def _scene(tmp_path: Path, nodata: bool = True) -> Path:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, size=(3, 300, 170)).astype(np.uint8)
    image[:, 40:90, 20:70] = 240
    if nodata:
        image[:, 250:, :30] = 0  # a nodata corner
    return write_geotiff(tmp_path / "scene.tif", image, nodata=0 if nodata else None)


def _read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(), {"transform": src.transform, "crs": src.crs, "tags": src.tags()}


CASES = {
    "classes": {"out_channels": 3, "classes": ["a", "b", "c"], "colors": [[0, 0, 0]] * 3},
    "resampled": {"ground_resolution_m": 1.7},
    "objects": {"out_channels": 3, "objects": OBJECTS},
}


@pytest.mark.parametrize("case", list(CASES))
def test_bands_assemble_into_the_single_process_output(tmp_path: Path, case: str) -> None:
    net, meta = load_bundle(tiny_unet_bundle(tmp_path / "m.safetensors", **CASES[case]))
    scene = _scene(tmp_path)
    objects = meta.objects is not None
    options = PredictOptions(
        tile=64,
        overlap=16,
        device="cpu",
        precision="fp32",
        probabilities=tmp_path / "one_proba.tif",
        instances=tmp_path / "one_inst.tif" if objects else None,
    )
    one = predict_scene(net, meta, scene, tmp_path / "one.tif", options)

    plan = plan_scene(meta, scene, options)
    bands = scene_bands(plan, 60, tmp_path / "parts")
    assert len(bands) >= 3 and bands[0].start == 0 and bands[-1].stop == 300
    assert {b.stop for b in bands} <= set(chunk_ends(plan))
    for band in reversed(bands):  # any order, as workers finish
        record = predict_band(net, meta, scene, band, options, job="j1")
        assert part_record(band) == record and sum(record["chunks"]) == band.stop - band.start
    final = PredictOptions(
        **{
            **options.__dict__,
            "probabilities": tmp_path / "two_proba.tif",
            "instances": tmp_path / "two_inst.tif" if objects else None,
            "job": "j1",
        }
    )
    two = assemble_bands(meta, scene, bands, tmp_path / "two.tif", final)
    assert two.class_pixels == one.class_pixels and sum(one.class_pixels.values()) > 0
    pairs = [("one.tif", "two.tif"), ("one_proba.tif", "two_proba.tif")]
    if objects:
        pairs.append(("one_inst.tif", "two_inst.tif"))
        assert two.objects == one.objects > 1
    for a, b in pairs:
        (x, xm), (y, ym) = _read(tmp_path / a), _read(tmp_path / b)
        np.testing.assert_array_equal(x, y)
        assert xm["transform"] == ym["transform"] and xm["crs"] == ym["crs"]
    assert "GEOUNET_JOB" in _read(tmp_path / "two.tif")[1]["tags"]


def test_assembly_refuses_a_missing_or_foreign_band(tmp_path: Path) -> None:
    net, meta = load_bundle(tiny_unet_bundle(tmp_path / "m.safetensors"))
    scene = _scene(tmp_path)
    options = PredictOptions(tile=64, overlap=16, device="cpu", precision="fp32")
    bands = scene_bands(plan_scene(meta, scene, options), 100, tmp_path / "parts")
    predict_band(net, meta, scene, bands[0], options, job="old")
    with pytest.raises(DataError, match="band missing"):
        assemble_bands(meta, scene, bands, tmp_path / "out.tif", PredictOptions(job="old"))
    for band in bands[1:]:
        predict_band(net, meta, scene, band, options, job="old")
    with pytest.raises(DataError, match="another run"):
        assemble_bands(meta, scene, bands, tmp_path / "out.tif", PredictOptions(job="new"))
    assert not (tmp_path / "out.tif").exists()
