"""Tests for compiled prediction, the default windows and their edge-crop weights."""

import logging
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_ml import write_geotiff
from test_scene import _meta

from geounet.errors import GeounetError
from geounet.infer import compiled
from geounet.infer.compiled import AdaptiveForward
from geounet.infer.scene import (
    EdgeWeights,
    PredictOptions,
    batch_size,
    fit_tile,
    plan_scene,
    predict_scene,
)
from geounet.io.windows import window_starts
from geounet.models.bundle import build_segmenter


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOUNET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)


class _Spy:
    """A stand-in for torch.compile: records the batch shapes the compiled pass gets."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.shapes: list[tuple[int, ...]] = []
        self.delay, self.fail = delay, fail

    def __call__(self, fn, **kwargs):
        def run(x):
            if self.fail:
                raise RuntimeError("no C++ compiler\nsecond line")
            self.shapes.append(tuple(x.shape))
            time.sleep(self.delay)
            return x * 2  # what the eager pass computes, without its delay

        return run


def _eager(delay: float = 0.0):
    def forward(x):
        time.sleep(delay)
        return x * 2

    return forward


def test_auto_compiles_when_the_windows_left_repay_it(monkeypatch):
    spy = _Spy()
    monkeypatch.setattr(torch, "compile", spy)
    monkeypatch.setattr(compiled, "COLD_PAYBACK_S", 0.2)
    run = AdaptiveForward(_eager(0.01), mode="auto", total=100, batch=1, key="a")
    for _ in range(6):
        assert torch.equal(run(torch.ones(1, 2)), torch.full((1, 2), 2.0))
    assert run.is_compiled and len(spy.shapes) == 3  # eager for the first three windows
    assert (Path(compiled.cache_root()) / "compiled").is_dir()  # remembered as cached


def test_auto_stays_eager_on_small_scenes(monkeypatch):
    spy = _Spy()
    monkeypatch.setattr(torch, "compile", spy)
    run = AdaptiveForward(_eager(0.001), mode="auto", total=10, batch=1, key="b")
    for _ in range(10):
        run(torch.ones(1, 2))
    assert not run.is_compiled and not spy.shapes


def test_compiled_pass_gets_full_batches(monkeypatch):
    spy = _Spy()
    monkeypatch.setattr(torch, "compile", spy)
    run = AdaptiveForward(_eager(), mode="on", total=7, batch=4, key="c")
    out = run(torch.arange(8.0).view(4, 2))
    last = run(torch.arange(6.0).view(3, 2))
    assert spy.shapes == [(4, 2), (4, 2)]  # padded: one compiled shape, no recompilation
    assert torch.equal(out, torch.arange(8.0).view(4, 2) * 2)
    assert torch.equal(last, torch.arange(6.0).view(3, 2) * 2)


def test_failed_compilation_falls_back_with_one_line(monkeypatch, caplog):
    monkeypatch.setattr(torch, "compile", _Spy(fail=True))
    run = AdaptiveForward(_eager(), mode="on", total=3, batch=1, key="d")
    with caplog.at_level(logging.WARNING, logger="geounet"):
        out = run(torch.ones(1, 2))
    assert torch.equal(out, torch.full((1, 2), 2.0)) and not run.is_compiled
    (record,) = caplog.records
    assert "predicting eagerly" in record.message and "\n" not in record.message
    assert "RuntimeError: no C++ compiler" in record.message


def test_slower_compiled_pass_goes_back_to_eager(monkeypatch):
    monkeypatch.setattr(torch, "compile", _Spy(delay=0.03))
    monkeypatch.setattr(compiled, "COLD_PAYBACK_S", 0.01)
    run = AdaptiveForward(_eager(0.005), mode="auto", total=100, batch=1, key="e")
    for _ in range(8):
        run(torch.ones(1, 2))
    assert run.state == "off"


def test_unknown_mode_is_refused():
    with pytest.raises(GeounetError, match="compile mode"):
        AdaptiveForward(_eager(), mode="always")


def test_default_windows_fit_the_scene():
    # 4096 px: five windows either way; fitted to 896 px, they overlap by 96, not 256
    assert fit_tile(4096, 1024, 64) == 896
    assert len(window_starts(4096, 896, 64)) == len(window_starts(4096, 1024, 64)) == 5
    assert fit_tile(700, 1024, 64) == 700  # one window
    assert fit_tile(1100, 1024, 64) % 32 == 0
    assert batch_size(PredictOptions(), torch.device("cpu")) == 1
    assert batch_size(PredictOptions(), torch.device("cuda")) == 4
    assert batch_size(PredictOptions(batch_size=3), torch.device("cuda")) == 3


def test_plan_uses_fitted_windows_unless_given(tmp_path):
    scene = write_geotiff(tmp_path / "s.tif", np.zeros((3, 1200, 2000), np.uint8))
    plan = plan_scene(_meta(), scene, PredictOptions())
    assert plan.window == (fit_tile(1200, 1024, 64), fit_tile(2000, 1024, 64))
    assert plan.overlap == 64
    given = plan_scene(_meta(), scene, PredictOptions(tile=256, overlap=32))
    assert given.window == (256, 256) and given.overlap == 32


def test_edge_weights_crop_inner_sides_only():
    weights = EdgeWeights((64, 64), (200, 64), "cosine", overlap=16)
    top = weights.at(0, 0)  # top of the scene: keeps its top rows, crops its bottom
    assert top[0].min() > 0 and top[-4:].max() == 0
    assert top[:-4, 0].min() > 0  # the window spans the whole width: no column crop
    middle = weights.at(68, 0)
    assert middle[:4].max() == 0 and middle[-4:].max() == 0 and middle[32, 32] == 1


def test_compiled_prediction_matches_eager(tmp_path):
    """The real torch.compile (inductor, frozen weights) on a tiny U-Net."""
    meta = _meta()
    torch.manual_seed(0)
    model = build_segmenter(meta)
    rng = np.random.default_rng(0)
    scene = write_geotiff(tmp_path / "s.tif", rng.integers(0, 255, (3, 96, 96), dtype=np.uint8))
    maps = {}
    for mode in ("off", "on"):
        options = PredictOptions(device="cpu", precision="fp32", tile=64, compile=mode)
        predict_scene(model, meta, scene, tmp_path / f"{mode}.tif", options)
        with rasterio.open(tmp_path / f"{mode}.tif") as src:
            maps[mode] = src.read(1)
    assert (maps["on"] == maps["off"]).mean() > 0.999
    assert list((tmp_path / "cache" / "compiled").iterdir())  # the compiled key remembered
