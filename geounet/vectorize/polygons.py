"""Turn class-map rasters into polygons (one row per connected region of each class).

The work is split so that a windowed reader can be added later: :func:`_region_shapes`
polygonizes one block of pixels given its own transform, and :func:`_to_frame` turns the
collected ``(class_id, geometry)`` pairs into the final frame. A streaming version would call
:func:`_region_shapes` per window, dissolve the pieces of each class that touch window edges,
and only then call :func:`_to_frame`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.features
import shapely
import shapely.geometry
from affine import Affine
from pyproj import CRS, Geod, Transformer
from rasterio.errors import RasterioIOError

from geounet.errors import DataError, InputFileNotFoundError, InvalidRasterError
from geounet.io.write import CLASSES_TAG

COLUMNS = ("class_id", "class_name", "area_m2")
_GEOD = Geod(ellps="WGS84")
_WGS84 = CRS.from_epsg(4326)


def polygonize(
    mask: np.ndarray,
    transform: Affine,
    crs: Any,
    *,
    class_names: Sequence[str] | None = None,
    classes: Sequence[int] | None = None,
    nodata: int | None = None,
    min_area_m2: float = 0.0,
    connectivity: int = 4,
) -> gpd.GeoDataFrame:
    """Polygonize a class map: one polygon per connected region of each class.

    Args:
        mask: 2-D integer array of class ids.
        transform: Affine pixel-to-CRS transform of ``mask``.
        crs: CRS of the raster (anything ``pyproj.CRS.from_user_input`` accepts).
        class_names: Names indexed by class id; missing ids are named ``class_<id>``.
        classes: Class ids to vectorize. Default: every id present except background 0
            and ``nodata``; listing 0 or ``nodata`` here vectorizes them too.
        nodata: Value of pixels without data (skipped unless listed in ``classes``).
        min_area_m2: Drop polygons whose geodesic area is below this, in m².
        connectivity: 4 or 8 pixel connectivity.

    Returns:
        GeoDataFrame with ``class_id``, ``class_name``, ``area_m2`` (geodesic, WGS84
        ellipsoid) and valid polygon geometries in ``crs``.
    """
    if crs is None:
        raise InvalidRasterError("polygonize needs the raster's CRS; pass crs=...")
    crs = CRS.from_user_input(crs)
    if connectivity not in (4, 8):
        raise DataError(f"connectivity must be 4 or 8, got {connectivity}")
    values, nodata = _as_class_array(np.asarray(mask), nodata)
    ids = _selected_ids(values, classes, nodata)
    class_ids, geoms = _region_shapes(values, transform, ids, connectivity)
    return _to_frame(class_ids, geoms, crs, class_names, min_area_m2)


def polygonize_raster(
    path: str | os.PathLike[str],
    *,
    classes: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    min_area_m2: float = 0.0,
) -> gpd.GeoDataFrame:
    """Polygonize a single-band class-map GeoTIFF (see :func:`polygonize`).

    Args:
        path: Class-map raster with a CRS; nodata is read from the file.
        classes: Class ids to vectorize (default: all but background 0 and nodata).
        class_names: Names indexed by class id. Default: the ``GEOUNET_CLASSES`` tag,
            else ``class_<id>``.
        min_area_m2: Drop polygons smaller than this geodesic area, in m².

    Returns:
        GeoDataFrame with ``class_id``, ``class_name``, ``area_m2`` and geometry.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(f"{path}: class-map raster not found; check the path")
    try:
        src = rasterio.open(path)
    except RasterioIOError as exc:
        raise InvalidRasterError(
            f"{path}: not a readable raster ({exc}); pass a class-map GeoTIFF"
        ) from exc
    with src:
        if src.crs is None:
            raise InvalidRasterError(
                f"{path}: raster has no CRS; assign one (e.g. gdal_edit.py -a_srs EPSG:xxxx)"
            )
        if src.count != 1:
            raise InvalidRasterError(
                f"{path}: class map must have 1 band, found {src.count}; pass a single-band mask"
            )
        if class_names is None:
            class_names = _tag_class_names(path, src.tags())
        # Whole band for now; a windowed reader would iterate src.block_windows() here.
        band = src.read(1)
        nodata = src.nodata
        transform, crs = src.transform, src.crs
    try:
        return polygonize(
            band,
            transform,
            crs.to_wkt(),
            class_names=class_names,
            classes=classes,
            nodata=None if nodata is None or np.isnan(nodata) else int(nodata),
            min_area_m2=min_area_m2,
        )
    except DataError as exc:
        raise InvalidRasterError(f"{path}: {exc}") from exc


def geodesic_area_m2(geoms: Sequence[Any] | np.ndarray, crs: Any) -> np.ndarray:
    """Geodesic area in m² on the WGS84 ellipsoid of polygons given in ``crs``.

    Args:
        geoms: Polygon or MultiPolygon geometries.
        crs: Their CRS.

    Returns:
        Float array of non-negative areas (holes subtracted).
    """
    geoms = np.asarray(geoms, dtype=object)
    if geoms.size == 0:
        return np.zeros(0, dtype=float)
    crs = CRS.from_user_input(crs)
    if not crs.equals(_WGS84, ignore_axis_order=True):
        tr = Transformer.from_crs(crs, _WGS84, always_xy=True)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(*xy.T)))
    # pyproj subtracts holes only if they wind opposite to the exterior.
    geoms = shapely.orient_polygons(geoms, exterior_cw=False)
    return np.abs([_GEOD.geometry_area_perimeter(g)[0] for g in geoms])


def _as_class_array(values: np.ndarray, nodata: int | None) -> tuple[np.ndarray, int | None]:
    """Return ``values`` in a dtype ``rasterio.features.shapes`` accepts, and the nodata.

    Non-finite pixels of float masks become nodata (a free sentinel if none is given).
    """
    if values.ndim != 2:
        raise DataError(f"class map must be 2-D, got shape {values.shape}")
    if values.dtype == bool:
        return values.astype(np.uint8), nodata
    if np.issubdtype(values.dtype, np.floating):
        finite = np.isfinite(values)
        if not np.array_equal(values[finite], np.round(values[finite])):
            raise DataError("class map holds non-integer values; pass integer class ids")
        if not finite.all():
            if nodata is None:
                nodata = int(min(values[finite].min(initial=0), 0)) - 1
            values = np.where(finite, values, nodata)
    elif not np.issubdtype(values.dtype, np.integer):
        raise DataError(f"class map dtype {values.dtype} is not an integer type")
    if values.dtype in (np.uint8, np.uint16, np.int16, np.int32):
        return values, nodata
    i32 = np.iinfo(np.int32)
    if values.size and (values.min() < i32.min or values.max() > i32.max):
        raise DataError("class ids do not fit in int32; renumber the classes")
    return values.astype(np.int32), nodata


def _selected_ids(values: np.ndarray, classes: Sequence[int] | None, nodata: int | None) -> list:
    if classes is not None:
        return sorted({int(c) for c in classes})
    present = np.unique(values).tolist()
    return [v for v in present if v != 0 and v != nodata]


def _region_shapes(
    values: np.ndarray, transform: Affine, ids: Sequence[int], connectivity: int
) -> tuple[list[int], list[Any]]:
    """Polygonize one block: the ``(class_id, geometry)`` of each region of ``ids``."""
    if not ids or values.size == 0:
        return [], []
    include = np.isin(values, ids)
    if not include.any():
        return [], []
    class_ids, geoms = [], []
    for geom, value in rasterio.features.shapes(
        values, mask=include, connectivity=connectivity, transform=transform
    ):
        class_ids.append(int(value))
        geoms.append(shapely.geometry.shape(geom))
    return class_ids, geoms


def _to_frame(
    class_ids: Sequence[int],
    geoms: Sequence[Any],
    crs: CRS,
    class_names: Sequence[str] | None,
    min_area_m2: float,
) -> gpd.GeoDataFrame:
    """Build the output frame: valid geometries, names, geodesic areas, area filter."""
    geom_arr = np.asarray(geoms, dtype=object)
    if geom_arr.size:
        bad = ~shapely.is_valid(geom_arr)
        if bad.any():
            geom_arr[bad] = [_polygonal(g) for g in shapely.make_valid(geom_arr[bad])]
    area = geodesic_area_m2(geom_arr, crs)
    names = list(class_names) if class_names is not None else []
    ids = np.asarray(class_ids, dtype=np.int64)
    frame = gpd.GeoDataFrame(
        {
            "class_id": ids,
            "class_name": pd.Series(
                [names[i] if 0 <= i < len(names) else f"class_{i}" for i in ids.tolist()],
                dtype=object,
            ),
            "area_m2": area.astype(float),
        },
        geometry=gpd.GeoSeries(geom_arr, crs=crs),
        crs=crs,
    )
    if min_area_m2 > 0:
        frame = frame[frame["area_m2"] >= min_area_m2].reset_index(drop=True)
    return frame


def _polygonal(geom: Any) -> Any:
    """Keep only the polygonal part of a ``make_valid`` result."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _tag_class_names(path: Path, tags: dict[str, str]) -> list[str] | None:
    raw = tags.get(CLASSES_TAG)
    if raw is None:
        return None
    try:
        names = json.loads(raw)
    except json.JSONDecodeError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidRasterError(
            f"{path}: tag {CLASSES_TAG} must be a JSON list of class names, got {raw!r}; "
            "fix the tag or pass class_names=..."
        )
    return names
