"""The demo behind ``make demo``, shrunk: every step runs and its outputs exist."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio

from geounet.demo import run_demo


def test_demo_end_to_end_small(tmp_path: Path) -> None:
    lines: list[str] = []
    demo = run_demo(
        tmp_path, minutes=0.1, progress=False, echo=lines.append, train_size=320, test_size=256
    )
    assert demo.model.exists() and demo.mask.exists() and demo.polygons.exists()
    with rasterio.open(tmp_path / "test_instances.tif") as src:
        ids = src.read(1)
        assert src.tags()["GEOUNET_INSTANCES"] == "building"
    features = json.loads(demo.polygons.read_text())["features"]
    assert len(features) == demo.n_pred <= len(np.unique(ids[ids > 0]))
    assert demo.n_true > 0 and 0.0 <= demo.test_iou <= 1.0
    assert any("test-scene building IoU" in line for line in lines)
