"""Stacking co-registered rasters (pre/post, dates) as channels, in training and prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import make_geotiff, make_vector, pixel_box

from geounet.errors import DataError
from geounet.io.stack import stack_rasters


def test_vrt_stacks_bands_in_order_with_date_prefixed_names(tmp_path: Path) -> None:
    pre = np.arange(2 * 8 * 10, dtype=np.uint16).reshape(2, 8, 10)
    post = pre[:1] + 1000
    a = make_geotiff(tmp_path / "pre.tif", pre, descriptions=["red", "nir"])
    b = make_geotiff(tmp_path / "post.tif", post, descriptions=["red"])
    vrt = stack_rasters([a, b], tmp_path / "stack.vrt")
    with rasterio.open(vrt) as src, rasterio.open(a) as ref:
        assert src.count == 3
        assert src.descriptions == ("t0:red", "t0:nir", "t1:red")
        assert (src.crs, src.transform, src.shape) == (ref.crs, ref.transform, ref.shape)
        np.testing.assert_array_equal(src.read(), np.concatenate([pre, post]))


def test_rasters_on_different_grids_are_refused(tmp_path: Path) -> None:
    a = make_geotiff(tmp_path / "a.tif", np.zeros((1, 8, 8), dtype=np.uint8))
    b = make_geotiff(tmp_path / "b.tif", np.zeros((1, 8, 8), dtype=np.uint8), res=1.0)
    with pytest.raises(DataError, match=r"b.tif: not on the grid of .*a.tif"):
        stack_rasters([a, b], tmp_path / "s.vrt")
    assert not (tmp_path / "s.vrt").exists()


def test_pre_post_training_and_prediction(tmp_path: Path) -> None:
    """A change detector sees both dates: buildings bright in 'post' only are the class."""
    from geounet.config import load_config
    from geounet.infer.scene import PredictOptions, predict_scene
    from geounet.models.bundle import load_bundle
    from geounet.train.fit import fit

    rng = np.random.default_rng(0)
    pre = rng.integers(0, 50, (1, 128, 128)).astype(np.uint8)
    post = pre.copy()
    post[0, 20:50, 30:60] = 220
    post[0, 100:128, 0:20] = 230
    post[0, 0:10, 110:128] = 230
    a = make_geotiff(tmp_path / "pre.tif", pre, descriptions=["pan"])
    b = make_geotiff(tmp_path / "post.tif", post, descriptions=["pan"])
    boxes = [pixel_box(20, 30, 50, 60), pixel_box(100, 0, 128, 20), pixel_box(0, 110, 10, 128)]
    labels = make_vector(tmp_path / "new.geojson", boxes)  # their extent is the whole scene
    config = load_config(
        None,
        [
            f"data.images=[[{a}, {b}]]",
            f"data.labels={labels}",
            "model.arguments={width: 4, depth: 2}",
            "train.tile_size=32",
            "data.val_fraction=0.3",
            "train.samples_per_epoch=8",
            "train.batch_size=4",
            "train.max_epochs=1",
            f"run_dir={tmp_path / 'run'}",
        ],
    )
    result = fit(config, progress=False)
    model, meta = load_bundle(result.model_path)
    assert (meta.timesteps, meta.in_channels, meta.bands) == (2, 2, ["t0:pan", "t1:pan"])

    out = predict_scene(model, meta, [a, b], tmp_path / "change.tif", PredictOptions(device="cpu"))
    with rasterio.open(out.path) as src, rasterio.open(a) as ref:
        assert (src.crs, src.transform, src.shape) == (ref.crs, ref.transform, ref.shape)
    with pytest.raises(DataError, match="2 co-registered dates stacked as channels"):
        predict_scene(model, meta, a, tmp_path / "x.tif", PredictOptions(device="cpu"))
