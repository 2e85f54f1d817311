"""Read vector labels in any OGR format and CRS, and rasterize them onto an image grid."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geounet.errors import InputFileNotFoundError, InvalidVectorError


def read_labels(
    path: str | os.PathLike[str],
    *,
    crs: CRS | str | None = None,
    class_attribute: str | None = None,
    class_names: Sequence[str] | None = None,
    value: int = 1,
    layer: str | int | None = None,
) -> gpd.GeoDataFrame:
    """Read label polygons, attach a ``class_id`` column and reproject them.

    Args:
        path: Any vector file OGR reads (GeoJSON, GPKG, shapefile, FlatGeobuf, ...).
        crs: CRS to reproject to (default: keep the file's CRS).
        class_attribute: Attribute holding each feature's class, as a class name
            (looked up in ``class_names``) or an integer id. Without it every feature
            gets ``value``.
        class_names: Class names, index = class id; needed for name attributes.
        value: The class id of every feature when ``class_attribute`` is None.
        layer: Layer of a multi-layer file (GPKG).

    Returns:
        Polygons with a ``class_id`` column; features whose class is 0 are dropped.

    Raises:
        InputFileNotFoundError: If the file is missing.
        InvalidVectorError: If it cannot be read, has no CRS, no polygons, or unknown
            classes.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileNotFoundError(f"{p}: label file not found; check the path")
    try:
        gdf = gpd.read_file(p, layer=layer)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InvalidVectorError(f"{p}: not a readable vector file ({exc})") from exc
    if gdf.crs is None:
        raise InvalidVectorError(f"{p}: vector file has no CRS; set one (e.g. ogr2ogr -a_srs)")
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    gdf = gdf[gdf.geom_type.isin(["Polygon", "MultiPolygon"])]
    if gdf.empty:
        raise InvalidVectorError(f"{p}: no polygon features; labels must be polygons")
    gdf = gdf.assign(class_id=_class_ids(gdf, p, class_attribute, class_names, value))
    gdf = gdf[gdf["class_id"] > 0]
    if crs is not None:
        gdf = gdf.to_crs(crs)
    # make_valid turns a digitising slip (a spike, a collapsed ring) into a collection
    # holding lines or points, which rasterize would burn too: keep only the polygons.
    gdf = gdf.assign(geometry=gdf.geometry.make_valid().apply(_polygonal))
    gdf = gdf[~gdf.geometry.is_empty]
    return gdf[["class_id", "geometry"]]


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    return shapely.union_all(parts) if parts else Polygon()


def _class_ids(
    gdf: gpd.GeoDataFrame,
    path: Path,
    attribute: str | None,
    names: Sequence[str] | None,
    value: int,
) -> np.ndarray:
    if attribute is None:
        return np.full(len(gdf), value, dtype=np.int64)
    if attribute not in gdf.columns:
        raise InvalidVectorError(
            f"{path}: no attribute {attribute!r}; available: {', '.join(map(str, gdf.columns))}"
        )
    column = gdf[attribute]
    if column.dtype.kind == "f":
        # Integer ids read as floats: a real-valued field, or ints with missing values.
        values = column.to_numpy()
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            raise InvalidVectorError(
                f"{path}: {attribute!r} must hold integer class ids or class names; "
                f"{int(bad.sum())} feature(s) hold {sorted(set(map(str, values[bad])))[:5]}"
            )
        ids = values.astype(np.int64)
    elif column.dtype.kind in "iu":
        ids = column.to_numpy(dtype=np.int64)
    else:
        lookup = {name: i for i, name in enumerate(names or [])}
        unknown = sorted(set(column.astype(str)) - set(lookup))
        if unknown:
            raise InvalidVectorError(
                f"{path}: {attribute!r} values {unknown[:5]} are not among the classes "
                f"{list(lookup)}; add them to data.classes"
            )
        ids = column.astype(str).map(lookup).to_numpy(dtype=np.int64)
    n = len(names) if names else None
    if n is not None and (ids.min() < 0 or ids.max() >= n):
        raise InvalidVectorError(
            f"{path}: {attribute!r} holds ids outside 0..{n - 1}; fix the ids or data.classes"
        )
    return ids


def rasterize_labels(
    labels: gpd.GeoDataFrame,
    shape: tuple[int, int],
    transform: Affine,
    *,
    dtype: str = "uint8",
) -> np.ndarray:
    """Burn label polygons (already in the grid's CRS) onto a pixel grid.

    A pixel gets a class when its centre falls inside a polygon (all-touched off);
    where polygons overlap, the later feature wins.

    Args:
        labels: Polygons with a ``class_id`` column, in the grid's CRS.
        shape: (height, width) of the grid.
        transform: The grid's affine transform.
        dtype: Output dtype.

    Returns:
        A (height, width) array of class ids, 0 where no polygon covers the pixel.
    """
    if labels.empty:
        return np.zeros(shape, dtype=dtype)
    shapes = zip(labels.geometry, labels["class_id"].astype(int), strict=True)
    return rasterio.features.rasterize(
        shapes, out_shape=shape, transform=transform, fill=0, all_touched=False, dtype=dtype
    )
