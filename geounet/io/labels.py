"""Read vector labels in any OGR format and CRS, and rasterize them onto an image grid."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geounet.errors import DataError, InputFileNotFoundError, InvalidVectorError
from geounet.io.geodesy import buffer_m
from geounet.io.labelmap import LabelSpec

log = logging.getLogger(__name__)
_SKIPPED_WARNED: set[tuple[str, str, int]] = set()


def read_labels(
    path: str | os.PathLike[str],
    *,
    crs: CRS | str | None = None,
    class_attribute: str | None = None,
    class_names: Sequence[str] | None = None,
    value: int = 1,
    layer: str | int | None = None,
    spec: LabelSpec | None = None,
    points: bool = False,
    line_width_m: float | None = None,
) -> gpd.GeoDataFrame:
    """Read label polygons (points, centre lines), attach ``class_id`` and reproject them.

    Args:
        path: Any vector file OGR reads (GeoJSON, GPKG, shapefile, FlatGeobuf, ...).
        crs: CRS to reproject to (default: keep the file's CRS).
        class_attribute: Attribute holding each feature's class: a class name, a class
            id, or any code that ``spec`` maps. Without it every feature gets ``value``.
        class_names: Class names, index = class id (when no ``spec`` is given).
        value: The class id of every feature when ``class_attribute`` is None.
        layer: Layer of a multi-layer file (GPKG).
        spec: How attribute values become class ids (label map, "other", ignored values).
        points: Keep point features too (sparse labels: each marks the pixel it falls in).
        line_width_m: Read LineStrings too (road centre lines), buffered to this width in
            metres on the ground, whatever the file's CRS (degrees are not metres).

    Returns:
        Features with a ``class_id`` column (:data:`IGNORE` for NULL attribute values,
        which mark "not labelled"), in ``crs``. ``attrs["null_features"]`` counts them.

    Raises:
        InputFileNotFoundError: If the file is missing.
        InvalidVectorError: If it cannot be read, has no CRS, no polygons, or unknown
            classes.
    """
    p = Path(path)
    gdf = read_vector(p, layer=layer)
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    kinds = ["Polygon", "MultiPolygon"] + (["Point", "MultiPoint"] if points else [])
    found = sorted(set(gdf.geom_type))
    if line_width_m is not None:
        lines = gdf.geom_type.isin(["LineString", "MultiLineString"])
        if lines.any():
            widened = buffer_m(gdf.geometry[lines].to_numpy(), gdf.crs, line_width_m / 2)
            gdf = gdf.assign(
                geometry=gdf.geometry.where(~lines, pd.Series(widened, gdf.index[lines]))
            )
    gdf = gdf[gdf.geom_type.isin(kinds)]
    if gdf.empty:
        hint = " (points are labels with data.sparse: true)" if "Point" in found else ""
        if "LineString" in found or "MultiLineString" in found:
            hint = " (centre lines are labels with lines.enabled: true and lines.width_m)"
        raise InvalidVectorError(
            f"{p}: no polygon features (found {', '.join(found) or 'none'}); labels must be "
            f"polygons{hint}"
        )
    if spec is None:
        spec = LabelSpec(len(class_names) if class_names else 2, names=tuple(class_names or ()))
    ids, nulls = _class_ids(gdf, p, class_attribute, spec, value)
    gdf = gdf.assign(class_id=ids)
    if crs is not None:
        gdf = gdf.to_crs(crs)
    # make_valid turns a digitising slip (a spike, a collapsed ring) into a collection
    # holding lines or points, which rasterize would burn too: keep only the polygons.
    polygons = gdf.geom_type.isin(["Polygon", "MultiPolygon"])
    gdf = gdf.assign(
        geometry=gdf.geometry.where(~polygons, gdf.geometry.make_valid().apply(_polygonal))
    )
    gdf = gdf[~gdf.geometry.is_empty][["class_id", "geometry"]]
    gdf.attrs["null_features"] = nulls
    return gdf


def read_vector(path: str | os.PathLike[str], *, layer: str | int | None = None):
    """Read a vector file with a CRS, or raise one clear line naming it."""
    p = Path(path)
    if not p.exists():
        raise InputFileNotFoundError(f"{p}: label file not found; check the path")
    try:
        gdf = gpd.read_file(p, layer=layer)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InvalidVectorError(f"{p}: not a readable vector file ({exc})") from exc
    if gdf.crs is None:
        raise InvalidVectorError(f"{p}: vector file has no CRS; set one (e.g. ogr2ogr -a_srs)")
    return gdf


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    return shapely.union_all(parts) if parts else Polygon()


def _class_ids(
    gdf: gpd.GeoDataFrame,
    path: Path,
    attribute: str | None,
    spec: LabelSpec,
    value: int,
) -> tuple[np.ndarray, int]:
    if attribute is None:
        return np.full(len(gdf), value, dtype=np.int64), 0
    if attribute not in gdf.columns:
        raise InvalidVectorError(
            f"{path}: no attribute {attribute!r}; available: {', '.join(map(str, gdf.columns))}"
        )
    column = gdf[attribute]
    values = column.astype(object).where(column.notna(), None).tolist()
    try:
        ids, nulls = spec.map_values(values, f"{path}: {attribute!r}")
    except DataError as exc:
        raise InvalidVectorError(str(exc)) from exc
    key = (str(path), str(attribute), nulls)  # once per file (and edit), not per read
    if nulls and key not in _SKIPPED_WARNED:
        _SKIPPED_WARNED.add(key)
        log.warning(
            "%s: %d feature(s) with no %r value skipped (not labelled)", path, nulls, attribute
        )
    return ids, nulls


def rasterize_labels(
    labels: gpd.GeoDataFrame,
    shape: tuple[int, int],
    transform: Affine,
    *,
    dtype: str = "uint8",
    fill: int = 0,
) -> np.ndarray:
    """Burn label polygons (already in the grid's CRS) onto a pixel grid.

    A pixel gets a class when its centre falls inside a polygon (all-touched off);
    where polygons overlap, the later feature wins.

    Args:
        labels: Polygons with a ``class_id`` column, in the grid's CRS.
        shape: (height, width) of the grid.
        transform: The grid's affine transform.
        dtype: Output dtype.
        fill: Value of pixels no feature covers (0 background; :data:`IGNORE` for
            sparse labels). Points burn the pixel they fall in.

    Returns:
        A (height, width) array of class ids, ``fill`` where no feature covers the pixel.
    """
    if labels.empty:
        return np.full(shape, fill, dtype=dtype)
    shapes = zip(labels.geometry, labels["class_id"].astype(int), strict=True)
    return rasterio.features.rasterize(
        shapes, out_shape=shape, transform=transform, fill=fill, all_touched=False, dtype=dtype
    )
