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


def test_band_files_of_different_dtypes_stack_with_their_own_nodata(tmp_path: Path) -> None:
    """Landsat band files: float32 with -99999, and an int16 band with -32768."""
    a = np.array([[[1.5, -99999.0], [3.0, 4.0]]], dtype=np.float32)
    b = np.array([[[10, 20], [-32768, 40]]], dtype=np.int16)
    fa = make_geotiff(tmp_path / "lsat_10.tif", a, nodata=-99999)
    fb = make_geotiff(tmp_path / "lsat_70.tif", b, nodata=-32768)
    vrt = stack_rasters([fa, fb], tmp_path / "stack.vrt", kind="bands")
    with rasterio.open(vrt) as src:
        assert src.dtypes == ("float32", "float32")
        assert src.descriptions == ("lsat_10", "lsat_70")  # band files: named by file
        assert src.nodatavals == (-99999.0, -32768.0)
        data = src.read(masked=True)
    np.testing.assert_array_equal(data.data[1], b[0].astype(np.float32))
    assert data.mask.tolist() == [[[False, True], [False, False]], [[False, False], [True, False]]]


def test_a_vrt_of_mixed_types_is_read_through_one_type(tmp_path: Path) -> None:
    from geounet.io.raster import raster_info
    from geounet.io.stack import uniform_scene

    fa = make_geotiff(tmp_path / "a.tif", np.ones((1, 4, 4), np.float32))
    fb = make_geotiff(tmp_path / "b.tif", np.full((1, 4, 4), 7, np.int16))
    mixed = tmp_path / "mixed.vrt"
    stack_rasters([fa, fb], mixed, kind="bands")
    text = mixed.read_text().replace('dataType="Float32" band="2"', 'dataType="Int16" band="2"')
    mixed.write_text(text)  # a VRT as a user may build it: bands of different types
    assert raster_info(mixed).dtypes == ("float32", "int16")
    uniform = uniform_scene(mixed, tmp_path / "uniform.vrt")
    assert raster_info(uniform).dtypes == ("float32", "float32")
    with rasterio.open(uniform) as src:
        assert src.read(2).tolist() == [[7.0] * 4] * 4
    assert uniform_scene(fa, tmp_path / "x.vrt") == fa  # one type: used as it is


@pytest.mark.parametrize(
    ("dtypes", "common"),
    [
        (["uint8", "uint16"], "uint16"),
        (["int16", "float32"], "float32"),
        (["uint16", "int16"], "int32"),
        (["int32", "float32"], "float64"),
    ],
)
def test_common_dtype_holds_every_value(dtypes: list[str], common: str) -> None:
    from geounet.io.stack import common_dtype

    assert common_dtype(dtypes) == common


def test_acquisition_dates_from_tags_and_names(tmp_path: Path) -> None:
    from geounet.io.stack import acquisition_date

    named = make_geotiff(tmp_path / "S2A_MSIL2A_20160512T103032_B04.tif", np.zeros((1, 2, 2)))
    assert acquisition_date(named) == "2016-05-12"
    tagged = make_geotiff(tmp_path / "july.tif", np.zeros((1, 2, 2)))
    with rasterio.open(tagged, "r+") as dst:
        dst.update_tags(TIFFTAG_DATETIME="2016:07:21 10:30:00")
    assert acquisition_date(tagged) == "2016-07-21"
    assert acquisition_date(make_geotiff(tmp_path / "scene.tif", np.zeros((1, 2, 2)))) is None
