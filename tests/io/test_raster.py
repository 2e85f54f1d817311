"""open_raster, raster_info and read_window (boundless reads with a validity mask)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from conftest import DEFAULT_CRS, make_geotiff
from rasterio.crs import CRS
from rasterio.windows import Window

from geounet.errors import GeounetError, InputFileNotFoundError, InvalidRasterError
from geounet.io.raster import open_raster, raster_info, read_window


def _ramp(height: int = 8, width: int = 8, dtype: str = "uint16") -> np.ndarray:
    """Single band where pixel (r, c) holds r * width + c + 1 (never 0)."""
    return (np.arange(height * width).reshape(1, height, width) + 1).astype(dtype)


# --- open_raster / raster_info errors -------------------------------------------------


def test_missing_file_raises_not_found_with_path(tmp_path):
    missing = tmp_path / "nope" / "scene.tif"
    with pytest.raises(InputFileNotFoundError) as info:
        open_raster(missing)
    assert str(missing) in str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, GeounetError)
    with pytest.raises(FileNotFoundError):
        raster_info(missing)


def test_text_file_named_tif_is_invalid(tmp_path):
    fake = tmp_path / "fake.tif"
    fake.write_text("this is not a GeoTIFF\n")
    with pytest.raises(InvalidRasterError) as info:
        open_raster(fake)
    assert str(fake) in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_directory_is_invalid(tmp_path):
    folder = tmp_path / "images.tif"
    folder.mkdir()
    with pytest.raises(InvalidRasterError, match="directory"):
        open_raster(folder)
    with pytest.raises(InvalidRasterError, match="directory"):
        raster_info(folder)


def test_geotiff_without_crs_is_invalid(geotiff):
    path = geotiff(_ramp(), crs=None)
    with pytest.raises(InvalidRasterError, match="CRS") as info:
        raster_info(path)
    assert str(path) in str(info.value)
    # Allowed when the caller says so.
    info_ok = raster_info(path, require_crs=False)
    assert info_ok.crs is None
    assert info_ok.shape == (8, 8)


# --- raster_info fields ---------------------------------------------------------------


def test_raster_info_fields(scene_info, scene):
    info = scene_info
    assert info.path == scene
    assert info.shape == (64, 80)
    assert (info.height, info.width) == (64, 80)
    assert info.count == 3
    assert info.dtype == "uint16"
    assert info.res == (0.5, 0.5)
    assert info.crs == rasterio.crs.CRS.from_string(DEFAULT_CRS)
    assert info.transform.c == 452000.0
    assert info.transform.f == 38000.0
    assert info.nodata is None
    assert info.band_names == ("red", "green", "blue")


def test_raster_info_default_band_names_and_nodata(geotiff):
    data = np.zeros((4, 10, 12), dtype="float32")
    path = geotiff(data, res=2.0, nodata=-9999.0, descriptions=[None, "nir", None, None])
    info = raster_info(path)
    assert info.band_names == ("band_1", "nir", "band_3", "band_4")
    assert info.nodata == -9999.0
    assert info.res == (2.0, 2.0)
    assert info.shape == (10, 12)
    assert info.dtype == "float32"


def test_raster_info_res_positive_for_south_up(tmp_path):
    # A south-up grid (positive y pixel size) still reports positive resolution.
    path = tmp_path / "southup.tif"
    transform = rasterio.Affine(1.5, 0, 452000, 0, 1.5, 38000)
    with rasterio.open(
        path, "w", driver="GTiff", width=4, height=3, count=1, dtype="uint8",
        crs=DEFAULT_CRS, transform=transform,
    ) as dst:  # fmt: skip
        dst.write(np.ones((1, 3, 4), dtype="uint8"))
    assert raster_info(path).res == (1.5, 1.5)


# --- read_window ----------------------------------------------------------------------


def test_read_window_inside(geotiff):
    data = np.stack([_ramp()[0], _ramp()[0] * 10]).astype("uint16")
    path = geotiff(data)
    with open_raster(path) as src:
        arr, valid = read_window(src, Window(2, 1, 4, 3))
        assert arr.shape == (2, 3, 4)
        assert arr.dtype == np.uint16
        np.testing.assert_array_equal(arr, data[:, 1:4, 2:6])
        assert valid.shape == (3, 4)
        assert valid.dtype == bool
        assert valid.all()
        # Band selection.
        arr2, _ = read_window(src, Window(2, 1, 4, 3), indexes=[2])
        np.testing.assert_array_equal(arr2, data[1:2, 1:4, 2:6])


def test_read_window_partly_outside_is_boundless(geotiff):
    data = _ramp()
    path = geotiff(data)
    with open_raster(path) as src:
        # 3 columns/rows before the top-left corner, 3 inside.
        arr, valid = read_window(src, Window(-3, -3, 6, 6))
    assert arr.shape == (1, 6, 6)
    expected_valid = np.zeros((6, 6), dtype=bool)
    expected_valid[3:, 3:] = True
    np.testing.assert_array_equal(valid, expected_valid)
    np.testing.assert_array_equal(arr[0, 3:, 3:], data[0, :3, :3])
    assert (arr[0][~expected_valid] == 0).all()

    with open_raster(path) as src:
        # Past the bottom-right corner.
        arr, valid = read_window(src, Window(6, 5, 4, 4))
    expected_valid = np.zeros((4, 4), dtype=bool)
    expected_valid[:3, :2] = True
    np.testing.assert_array_equal(valid, expected_valid)
    np.testing.assert_array_equal(arr[0, :3, :2], data[0, 5:8, 6:8])
    assert (arr[0][~expected_valid] == 0).all()


def test_read_window_fully_outside(geotiff):
    path = geotiff(_ramp())
    with open_raster(path) as src:
        arr, valid = read_window(src, Window(20, 30, 5, 4))
    assert arr.shape == (1, 4, 5)
    assert not valid.any()
    assert (arr == 0).all()


def test_read_window_nodata_pixels_invalid(geotiff):
    data = np.stack([_ramp()[0], _ramp()[0]]).astype("int16")
    data[0, 2, 3] = -1  # nodata in band 1 only -> pixel still valid (GDAL dataset mask)
    data[1, 5, 5] = -1  # nodata in band 2 only -> pixel still valid
    data[:, 6, 1] = -1  # nodata in every band -> pixel invalid
    path = geotiff(data, nodata=-1)
    with open_raster(path) as src:
        arr, valid = read_window(src, Window(0, 0, 8, 8))
        filled, _ = read_window(src, Window(0, 0, 8, 8), fill=[7.5, 9.5])
    expected = np.ones((8, 8), dtype=bool)
    expected[6, 1] = False
    np.testing.assert_array_equal(valid, expected)
    assert arr[0, 2, 3] == 0
    assert arr[1, 5, 5] == 0
    assert arr[1, 2, 3] == data[1, 2, 3]  # valid band value kept (filled only where masked)
    assert (filled[0, 2, 3], filled[1, 5, 5], filled[1, 2, 3]) == (7.5, 9.5, data[1, 2, 3])
    assert tuple(filled[:, 6, 1]) == (7.5, 9.5)
    assert filled.dtype == np.float32


def test_read_window_out_shape_averages(geotiff):
    data = _ramp(dtype="float32")
    path = geotiff(data)
    with open_raster(path) as src:
        arr, valid = read_window(src, Window(0, 0, 8, 8), out_shape=(4, 4))
    assert arr.shape == (1, 4, 4)
    assert valid.shape == (4, 4)
    assert valid.all()
    expected = data[0].reshape(4, 2, 4, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(arr[0], expected)


def test_read_window_out_shape_ignores_nodata_in_average(geotiff):
    data = _ramp(dtype="float32")
    data[0, 0, 0] = -1
    path = geotiff(data, nodata=-1)
    with open_raster(path) as src:
        arr, valid = read_window(src, Window(0, 0, 4, 4), out_shape=(2, 2))
    assert arr.shape == (1, 2, 2)
    # The top-left 2x2 block holds nodata, 2, 9, 10: its average skips the nodata pixel.
    assert arr[0, 0, 0] == pytest.approx((2 + 9 + 10) / 3)
    assert arr[0, 1, 1] == pytest.approx((19 + 20 + 27 + 28) / 4)
    assert valid.all()


def test_read_window_out_shape_keeps_boundless_mask(geotiff):
    path = geotiff(_ramp(dtype="float32"))
    with open_raster(path) as src:
        arr, valid = read_window(src, Window(-8, 0, 16, 8), out_shape=(4, 8))
    assert arr.shape == (1, 4, 8)
    np.testing.assert_array_equal(valid, np.tile([False] * 4 + [True] * 4, (4, 1)))
    assert (arr[0, :, :4] == 0).all()


def test_make_geotiff_roundtrip(tmp_path, rng):
    # Sanity check of the shared fixture helper itself.
    data = rng.integers(0, 255, size=(2, 5, 7), dtype=np.uint8)
    path = make_geotiff(tmp_path / "sub" / "a.tif", data, nodata=0, res=10, origin=(100, 200))
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(), data)
        assert src.nodata == 0
        assert src.transform == rasterio.Affine(10, 0, 100, 0, -10, 200)


def test_ground_resolution_is_metres_in_any_crs() -> None:
    from geounet.io.raster import ground_resolution

    # 1 m UTM pixels: 1 m within the UTM scale factor
    assert ground_resolution(CRS.from_epsg(32636), (1.0, 1.0), (500_000, 38_000)) == pytest.approx(
        1.0, rel=1e-3
    )
    # Web Mercator units shrink with latitude: 1 unit at 60 N is 0.5 m
    y60 = 8_399_737.89  # northing of 60 N in EPSG:3857
    assert ground_resolution(CRS.from_epsg(3857), (1.0, 1.0), (0, y60)) == pytest.approx(
        0.5, rel=1e-2
    )
    # geographic degrees: 1e-5 deg at the equator is about 1.1 m
    assert ground_resolution(CRS.from_epsg(4326), (1e-5, 1e-5), (30.0, 0.0)) == pytest.approx(
        1.108, rel=1e-2
    )
