"""Shared test helpers: tiny, seeded GeoTIFFs and vector label files built in ``tmp_path``.

Two ways to use them:

* Plain functions, importable from any test module (``tests/`` has no ``__init__.py``, so
  pytest puts this directory on ``sys.path``)::

      from conftest import make_geotiff, make_vector, pixel_box

* Fixtures, for the common cases: ``rng`` (seeded generator), ``geotiff`` (a factory that
  writes into ``tmp_path``), ``vector`` (same for vector files), ``scene`` (a 3-band
  64x80 uint16 scene with band descriptions) and ``scene_info`` (its ``RasterInfo``).

Every raster defaults to a UTM grid (EPSG:32636, 0.5 m pixels, north-up, upper-left
corner at (452000, 38000)), so pixel (row, col) covers
``x in [452000 + 0.5 col, 452000 + 0.5 (col + 1)]`` and
``y in [38000 - 0.5 (row + 1), 38000 - 0.5 row]``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.transform import from_origin
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

DEFAULT_CRS = "EPSG:32636"
DEFAULT_RES = 0.5
DEFAULT_ORIGIN = (452000.0, 38000.0)


def grid_transform(
    res: float = DEFAULT_RES, origin: tuple[float, float] = DEFAULT_ORIGIN
) -> Affine:
    """North-up transform with square pixels of ``res`` and upper-left corner ``origin``."""
    return from_origin(origin[0], origin[1], res, res)


def make_geotiff(
    path: str | Path,
    data: np.ndarray,
    crs: str | None = DEFAULT_CRS,
    res: float = DEFAULT_RES,
    origin: tuple[float, float] = DEFAULT_ORIGIN,
    nodata: float | None = None,
    descriptions: Sequence[str | None] | None = None,
    **profile: Any,
) -> Path:
    """Write ``data`` as a GeoTIFF and return its path.

    Args:
        path: Output file (parent directories are created).
        data: ``(height, width)`` or ``(bands, height, width)`` array; its dtype is kept.
        crs: CRS string, or None for a raster without georeferencing CRS.
        res: Square pixel size in CRS units.
        origin: (x, y) of the upper-left corner.
        nodata: Nodata value to record, or None.
        descriptions: Optional band descriptions (None entries leave a band unnamed).
        **profile: Extra creation options (e.g. ``tiled=True``, ``compress="deflate"``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"data must be 2-D or 3-D, got shape {arr.shape}")
    count, height, width = arr.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=count,
        dtype=arr.dtype,
        crs=crs,
        transform=grid_transform(res, origin),
        nodata=nodata,
        **profile,
    ) as dst:
        dst.write(arr)
        for i, name in enumerate(descriptions or [], start=1):
            if name is not None:
                dst.set_band_description(i, name)
    return path


def pixel_box(
    row0: float,
    col0: float,
    row1: float,
    col1: float,
    res: float = DEFAULT_RES,
    origin: tuple[float, float] = DEFAULT_ORIGIN,
) -> BaseGeometry:
    """Polygon covering pixel rows ``[row0, row1)`` and columns ``[col0, col1)`` in CRS units.

    Fractional values are allowed (e.g. to build a polygon smaller than one pixel).
    """
    x0, y0 = origin
    return box(x0 + col0 * res, y0 - row1 * res, x0 + col1 * res, y0 - row0 * res)


def make_vector(
    path: str | Path,
    geometries: Sequence[BaseGeometry],
    crs: str | None = DEFAULT_CRS,
    driver: str | None = None,
    layer: str | None = None,
    **attributes: Sequence[Any],
) -> Path:
    """Write geometries (with optional attribute columns) as a vector file.

    The driver follows the extension (.geojson, .gpkg, .shp, .fgb) unless given.
    Pass ``crs=None`` for a file without CRS.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gdf = gpd.GeoDataFrame(dict(attributes), geometry=list(geometries), crs=crs)
    kwargs: dict[str, Any] = {}
    if driver:
        kwargs["driver"] = driver
    if layer:
        kwargs["layer"] = layer
    with warnings.catch_warnings():
        # pyogrio warns when writing without a CRS, which is what crs=None asks for.
        warnings.filterwarnings("ignore", message=".*'crs' was not provided.*")
        gdf.to_file(path, **kwargs)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so every run sees the same 'random' data."""
    return np.random.default_rng(1234)


@pytest.fixture
def geotiff(tmp_path):
    """Factory ``geotiff(data, name="image.tif", **make_geotiff_kwargs) -> Path`` in tmp_path."""

    def factory(data: np.ndarray, name: str = "image.tif", **kwargs: Any) -> Path:
        return make_geotiff(tmp_path / name, data, **kwargs)

    return factory


@pytest.fixture
def vector(tmp_path):
    """Factory ``vector(geometries, name="labels.geojson", **make_vector_kwargs) -> Path``."""

    def factory(geometries: Sequence[BaseGeometry], name: str = "labels.geojson", **kwargs):
        return make_vector(tmp_path / name, geometries, **kwargs)

    return factory


@pytest.fixture
def scene(tmp_path, rng) -> Path:
    """A 3-band 64x80 (h x w) uint16 scene with band descriptions red/green/blue, no nodata."""
    data = rng.integers(0, 4000, size=(3, 64, 80), dtype=np.uint16)
    return make_geotiff(tmp_path / "scene.tif", data, descriptions=["red", "green", "blue"])


@pytest.fixture
def scene_info(scene):
    """:class:`geounet.io.raster.RasterInfo` of the ``scene`` fixture."""
    from geounet.io.raster import raster_info

    return raster_info(scene)
