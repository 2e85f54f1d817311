"""Tests for geounet.vectorize.polygons: streamed polygonization equals whole-raster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.features
import shapely
from affine import Affine
from scipy import ndimage

from geounet.errors import InputFileNotFoundError, InvalidRasterError
from geounet.vectorize import VectorizeOptions, polygonize, vectorize_raster
from geounet.vectorize.polygons import ClassSource, array_source, polygonize_source

UTM = "EPSG:32633"
TRANSFORM = Affine(0.5, 0, 500_000.0, 0, -0.5, 4_000_000.0)


def blobs(seed: int, shape: tuple[int, int] = (300, 260), classes: int = 3) -> np.ndarray:
    """Smooth random blobs of several classes plus salt: big regions crossing many windows."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random(shape), 8)
    lo, hi = field.min(), field.max()
    m = ((field - lo) / (hi - lo + 1e-9) * 2 * classes).astype(np.uint8) % classes
    m[rng.random(shape) < 0.03] = classes - 1
    return m


def same_frames(a, b) -> bool:
    if len(a) != len(b) or list(a.class_id) != list(b.class_id):
        return False
    return all(shapely.equals(x, y) for x, y in zip(a.geometry, b.geometry, strict=True))


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("seed", [0, 1])
def test_streamed_equals_whole_raster(connectivity: int, seed: int) -> None:
    mask = blobs(seed)
    probs = np.random.default_rng(seed).random((3, *mask.shape)).astype(np.float32)
    whole = polygonize(
        mask, TRANSFORM, UTM, VectorizeOptions(window=4096, connectivity=connectivity),
        probabilities=probs,
    )  # fmt: skip
    assert len(whole) > 300
    # Regions crossing window seams exist: some region is larger than a window.
    assert whole.area_m2.max() > (64 * 0.5) ** 2
    for window in (64, 100, 128):
        options = VectorizeOptions(window=window, connectivity=connectivity)
        streamed = polygonize(mask, TRANSFORM, UTM, options, probabilities=probs)
        assert same_frames(streamed, whole), window
        np.testing.assert_allclose(streamed.area_m2, whole.area_m2, rtol=1e-9)
        np.testing.assert_allclose(streamed.confidence, whole.confidence, atol=1e-4)


def test_region_winding_through_many_windows_with_holes() -> None:
    # A spiral corridor: one region that leaves and re-enters windows, around holes.
    m = np.zeros((256, 256), np.uint8)
    for k in range(0, 120, 16):
        m[k : 256 - k, k : k + 4] = 1
        m[k : k + 4, k : 256 - k] = 1
        m[k : 256 - k, 252 - k : 256 - k] = 1
        m[252 - k : 256 - k, k + 8 : 256 - k] = 1
    m[128:132, 0:4] = 2  # a second class touching a seam
    whole = polygonize(m, TRANSFORM, UTM, VectorizeOptions(window=1024))
    streamed = polygonize(m, TRANSFORM, UTM, VectorizeOptions(window=64))
    assert same_frames(streamed, whole)
    truth = ndimage.label(m == 1)[1]
    assert (whole.class_id == 1).sum() == truth


def test_pixel_counts_and_confidence_are_exact() -> None:
    m = np.zeros((130, 130), np.uint8)
    m[10:100, 60:70] = 1  # crosses the 64-px seam
    probs = np.zeros((2, 130, 130), np.float32)
    probs[1, 10:100, 60:65] = 0.9
    probs[1, 10:100, 65:70] = 0.5
    gdf = polygonize(m, TRANSFORM, UTM, VectorizeOptions(window=64), probabilities=probs)
    assert len(gdf) == 1
    assert gdf.confidence.iloc[0] == pytest.approx(0.7, abs=1e-4)
    assert gdf.geometry.iloc[0].area == pytest.approx(900 * 0.25)


def test_uint8_probabilities_are_scaled_and_single_band_means_class_1() -> None:
    m = np.zeros((20, 20), np.uint8)
    m[5:10, 5:10] = 1
    probs = np.full((20, 20), 255, np.uint8)
    gdf = polygonize(m, TRANSFORM, UTM, probabilities=probs)
    assert gdf.confidence.iloc[0] == pytest.approx(1.0)
    m[15:18, 15:18] = 2
    with pytest.raises(Exception, match="no probability band for class 2"):
        polygonize(m, TRANSFORM, UTM, probabilities=probs)


def test_progress_and_window_grid() -> None:
    calls: list[tuple[int, int]] = []
    m = blobs(3, (200, 150))
    source = array_source(m)
    polygonize_source(source, None, window=64, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (12, 12) and len(calls) == 12  # 4 rows x 3 columns
    striped = ClassSource(1000, 300, source.read, block=(3, 300))
    rows = striped.windows(128)
    assert all(len(r) == 1 and r[0][3] == 300 for r in rows)  # whole strips, block-aligned
    assert rows[0][0][2] % 3 == 0
    tiled = ClassSource(1000, 1000, source.read, block=(256, 256))
    assert tiled.windows(600)[0][0] == (0, 0, 512, 512)


def write(path: Path, array: np.ndarray, **kw) -> Path:
    count = 1 if array.ndim == 2 else array.shape[0]
    profile = dict(driver="GTiff", width=array.shape[-1], height=array.shape[-2], count=count)
    profile.update(dtype=array.dtype, crs=UTM, transform=TRANSFORM, **kw)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array if array.ndim == 3 else array[None])
    return path


@pytest.mark.parametrize("layout", [{}, {"tiled": True, "blockxsize": 64, "blockysize": 64}])
def test_raster_streamed_equals_whole(tmp_path: Path, layout: dict) -> None:
    m = blobs(5, (400, 330))
    path = write(tmp_path / "m.tif", m, **layout)
    probs = write(
        tmp_path / "p.tif", (np.random.default_rng(0).random((3, 400, 330)) * 255).astype(np.uint8)
    )
    whole = vectorize_raster(path, VectorizeOptions(window=4096), probabilities=probs)
    streamed = vectorize_raster(path, VectorizeOptions(window=128), probabilities=probs)
    assert same_frames(streamed, whole)
    np.testing.assert_allclose(streamed.confidence, whole.confidence, atol=1e-4)
    assert whole.confidence.between(0, 1).all()


def test_probability_raster_errors(tmp_path: Path) -> None:
    m = write(tmp_path / "m.tif", blobs(1, (50, 40)))
    other = write(tmp_path / "other.tif", np.zeros((3, 40, 50), np.uint8))
    with pytest.raises(InvalidRasterError, match=r"other\.tif.*grid"):
        vectorize_raster(m, probabilities=other)
    with pytest.raises(InputFileNotFoundError, match=r"nope\.tif"):
        vectorize_raster(m, probabilities=tmp_path / "nope.tif")
    two = write(tmp_path / "two.tif", np.zeros((2, 50, 40), np.uint8))
    with pytest.raises(Exception, match=r"m\.tif.*no probability band for class 2"):
        vectorize_raster(m, probabilities=two)


def test_rasterized_back_matches_for_every_window() -> None:
    m = blobs(7, (180, 200))
    for window in (64, 1000):
        gdf = polygonize(m, TRANSFORM, UTM, VectorizeOptions(window=window))
        back = rasterio.features.rasterize(
            zip(gdf.geometry, gdf.class_id, strict=True), out_shape=m.shape, transform=TRANSFORM
        )
        assert (back == m).mean() > 0.999


def test_instance_maps_give_one_polygon_per_object_streamed_as_whole():
    """Touching objects stay apart; windows and seams do not change the polygons."""
    rng = np.random.default_rng(1)
    inst = np.zeros((300, 300), np.int32)
    k = 1
    for r in range(0, 290, 23):  # a grid of rectangles, many touching their neighbours
        for c in range(0, 290, 31):
            inst[r : r + rng.integers(10, 24), c : c + rng.integers(12, 32)] = k
            k += 1
    inst[100:200, 100:130] = 999  # one object across several 64-px windows
    transform = Affine(0.5, 0, 1000, 0, -0.5, 2000)
    kwargs = {"class_names": ["background", "building"], "instances": True}
    streamed = polygonize(inst, transform, "EPSG:32636", VectorizeOptions(window=64), **kwargs)
    whole = polygonize(inst, transform, "EPSG:32636", VectorizeOptions(window=4096), **kwargs)
    assert len(streamed) == len(whole) == len(np.unique(inst)) - 1
    assert all(a.equals(b) for a, b in zip(streamed.geometry, whole.geometry, strict=True))
    assert set(streamed["class_name"]) == {"building"}
    big = streamed.geometry[streamed.area.argmax()]
    assert big.area == pytest.approx(100 * 30 * 0.25)
    # the class map of the same objects merges touching ones into fewer regions
    merged = polygonize(inst > 0, transform, "EPSG:32636", class_names=["background", "b"])
    assert len(merged) < len(whole)
