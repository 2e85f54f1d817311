"""Class map in, clean attributed polygons out: the vectorize pipeline.

:func:`vectorize_raster` streams a class-map raster through
:func:`~geounet.vectorize.polygons.polygonize_source`, cleans the polygons
(:func:`~geounet.vectorize.refine.refine`) and measures them on the ellipsoid.
:func:`polygonize` does the same for an in-memory array.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from pyproj import CRS

from geounet.errors import ConfigError, DataError, InvalidRasterError
from geounet.io.atomic import check_output
from geounet.io.geodesy import geodesic_area_perimeter, geodesic_length_m, pixel_size_m
from geounet.io.style import class_colors
from geounet.vectorize.export import check_vector_path, write_vectors
from geounet.vectorize.network import NetworkParams, mask_network
from geounet.vectorize.options import VectorizeOptions, resolve_classes, selected
from geounet.vectorize.polygons import (
    Progress,
    RasterClassSource,
    Regions,
    array_source,
    polygonize_source,
)
from geounet.vectorize.refine import make_valid, refine

log = logging.getLogger(__name__)

COLUMNS = ("class_id", "class_name", "area_m2", "area_ha", "perimeter_m")
CONFIDENCE = "confidence"


def vectorize_raster(
    path: str | os.PathLike[str],
    options: VectorizeOptions | None = None,
    *,
    probabilities: str | os.PathLike[str] | None = None,
    class_names: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> gpd.GeoDataFrame:
    """Polygons of a single-band class-map raster, streamed by windows.

    Args:
        path: Class-map raster with a CRS; nodata is read from the file.
        options: What to vectorize and how to clean it (defaults: all classes but
            background 0, no cleaning).
        probabilities: Raster of class probabilities on the same grid (one band per
            class, as ``geounet predict --probabilities`` writes, or one band for class
            1); adds the mean ``confidence`` of each polygon's pixels.
        class_names: Names indexed by class id. Default: the raster's ``GEOUNET_CLASSES``
            tag, else ``class_<id>``.
        progress: Called with (windows done, windows in all).

    An instance map (``geounet predict``'s ``OUT_instances.tif``, tagged
    ``GEOUNET_INSTANCES``) gives one polygon per object id, so touching objects stay
    separate. When the instance map names the class map of its run (fields of several
    crop types, building damage), each object takes the class most of its pixels have
    there, with that share in ``class_share`` and the share of every class in
    ``share_<class>`` (``share_minor_damage``); ``confidence`` is then the mean
    probability that its pixels belong to an object.

    Returns:
        GeoDataFrame in the raster's CRS with ``class_id``, ``class_name`` (and the
        column the class map names, e.g. ``crop_type``), ``area_m2``, ``area_ha``,
        ``perimeter_m`` (geodesic, WGS84 ellipsoid), ``confidence`` when probabilities
        are given, and valid Polygon/MultiPolygon geometries.
    """
    options = options or VectorizeOptions()
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(RasterClassSource(path, probabilities))
        settings = source.line_settings()
        if options.lines or (options.lines is None and settings is not None):
            try:
                frame = _network_frame(source, options, settings or {}, class_names, progress)
            except (DataError, ConfigError) as exc:
                raise type(exc)(f"{path}: {exc}") from exc
            return _styled(frame, source, class_names or source.class_names())
        names = list(class_names) if class_names is not None else source.class_names()
        src = source.src
        instance_class = source.instance_class()
        field_name = source.class_field()
        votes = None
        try:
            if instance_class is not None:  # one polygon per object id
                classes = None
                names = ["background", instance_class]
                class_map = source.class_map()
                if class_map is not None and class_map.exists():
                    votes = stack.enter_context(RasterClassSource(class_map))
                    _same_grid(votes.src, src, class_map)
                    names = votes.class_names() or names
                    field_name = votes.class_field() or field_name
                elif class_map is not None:
                    log.warning(
                        "%s: its class map %s is missing; objects are not given classes",
                        path,
                        class_map.name,
                    )
            else:
                classes = resolve_classes(options.classes, names, "classes")
                if classes is None and names and len(names) > 2 and names[0] != "background":
                    classes = list(range(len(names)))  # land cover: class 0 is a class too
            regions = polygonize_source(
                source,
                classes,
                connectivity=options.connectivity,
                window=options.window,
                progress=progress,
                instances=instance_class is not None,
                votes=votes,
                vote_classes=len(names or []),
            )
            frame = _frame(
                regions, src.transform, src.crs, src.bounds, names, options, field=field_name
            )
            own = source.instance_color() if votes is None and instance_class else None
            colors = [[0, 0, 0, 0], own] if own else None
            return _styled(frame, votes or source, names, colors)
        except (DataError, ConfigError) as exc:
            raise type(exc)(f"{path}: {exc}") from exc


def _styled(
    frame: gpd.GeoDataFrame,
    source: RasterClassSource | None,
    names: Sequence[str] | None,
    colors: Sequence[Sequence[int]] | None = None,
) -> gpd.GeoDataFrame:
    """``frame`` with ``attrs["style"]``: the class colours (``colors``, else the class
    map's colour table, else the defaults) for the QGIS style written beside the file."""
    names = list(names or [])
    if colors is None and source is not None:
        try:
            table = source.src.colormap(1)
        except ValueError:  # no colour table
            table = {}
        if names and all(i in table for i in range(len(names))):
            colors = [table[i] for i in range(len(names))]
    frame.attrs["style"] = {
        "field": "class_name",
        "classes": names,
        "colors": [list(c) for c in class_colors(names, colors)],
    }
    return frame


LINE_COLUMNS = ("class_id", "class_name", "length_m")
DEFAULT_SPUR_M = 10.0


def _network_frame(
    source: RasterClassSource,
    options: VectorizeOptions,
    settings: dict[str, Any],
    class_names: Sequence[str] | None,
    progress: Progress | None,
) -> gpd.GeoDataFrame:
    """The road network of a class map, one network per selected class (binary masks:
    any value but 0 and nodata): one LineString per stretch between junctions and ends,
    with ``class_id``, ``class_name`` and geodesic ``length_m``."""
    src = source.src
    names = list(class_names) if class_names is not None else source.class_names() or []
    classes = resolve_classes(options.classes, names, "classes")
    if classes is None:  # every class but background: a network each (binary maps: 1)
        classes = list(range(1, len(names))) if len(names) > 2 else [1]
    crs = CRS.from_user_input(src.crs)
    pixel_m = pixel_size_m(crs, src.transform, tuple(src.bounds))
    params = network_params(options, settings, pixel_m)
    binary = options.classes is None and len(names) <= 2  # 0 / 1 or 0 / 255 road masks
    ids: list[int] = []
    lines: list = []
    for k, class_id in enumerate(classes):

        def read(row: int, col: int, h: int, w: int, class_id: int = class_id) -> np.ndarray:
            values = source.read(row, col, h, w)
            if binary:  # any non-zero value but nodata is road
                nodata = source.nodata
                return (values > 0) & (values != nodata) if nodata is not None else values > 0
            return values == class_id

        def step(done: int, total: int, k: int = k) -> None:
            if progress is not None:
                progress(k * total + done, len(classes) * total)

        found = mask_network(
            read, (src.height, src.width), params, window=options.window, progress=step
        )
        lines += found
        ids += [class_id] * len(found)
    geoms = _to_crs_coords(np.asarray(lines, dtype=object), src.transform)
    frame = gpd.GeoDataFrame(
        {
            "class_id": np.asarray(ids, dtype=np.int64),
            "class_name": pd.Series(
                [names[i] if 0 <= i < len(names) else f"class_{i}" for i in ids], dtype=object
            ),
            "length_m": geodesic_length_m(geoms, crs),
        },
        geometry=gpd.GeoSeries(geoms, crs=crs),
        crs=crs,
    )
    frame.attrs["geometry_type"] = "LineString"
    return frame


def network_params(
    options: VectorizeOptions, settings: dict[str, Any], pixel_m: float
) -> NetworkParams:
    """Network clean-up in pixels: the options given, else the road model's settings
    (``settings``, from the class map's tag), else defaults."""

    def metres(key: str, fallback: float) -> float:
        value = getattr(options, key)
        if value is None:
            value = settings.get(key, fallback)
        return float(value) / pixel_m

    spur = metres("spur_m", DEFAULT_SPUR_M)
    simplify = options.simplify_m or settings.get("simplify_m", 0.0)
    return NetworkParams(
        spur=spur,
        gap=metres("gap_m", spur * pixel_m),
        min_length=metres("min_length_m", spur * pixel_m),
        simplify=float(simplify) / pixel_m,
    )


def _same_grid(a, b, path) -> None:
    if (a.height, a.width) != (b.height, b.width) or not a.transform.almost_equals(b.transform):
        raise InvalidRasterError(
            f"{path}: the class map is not on the instance map's grid; vectorize the "
            "instance map written by the same geounet predict run"
        )


def vectorize_to_file(
    mask: str | os.PathLike[str],
    out: str | os.PathLike[str] | None,
    options: VectorizeOptions | None = None,
    *,
    probabilities: str | os.PathLike[str] | None = None,
    crs: Any = None,
    progress: Progress | None = None,
) -> gpd.GeoDataFrame:
    """:func:`vectorize_raster`, then write to ``out`` (checked before any work is done)."""
    if out is not None:
        check_vector_path(out, crs=crs)
        check_output(out, [p for p in (mask, probabilities) if isinstance(p, str | os.PathLike)])
    gdf = vectorize_raster(mask, options, probabilities=probabilities, progress=progress)
    if out is not None:
        write_vectors(gdf, out, crs=crs)
    return gdf


def polygonize(
    mask: np.ndarray,
    transform: Affine,
    crs: Any,
    options: VectorizeOptions | None = None,
    *,
    class_names: Sequence[str] | None = None,
    nodata: int | None = None,
    probabilities: np.ndarray | None = None,
    instances: bool = False,
) -> gpd.GeoDataFrame:
    """Polygons of an in-memory class map (see :func:`vectorize_raster`).

    Args:
        mask: 2-D integer (or bool, or integral float) array of class ids.
        transform: Affine pixel-to-CRS transform of ``mask``.
        crs: CRS of the raster (anything ``pyproj.CRS.from_user_input`` accepts).
        options: What to vectorize and how to clean it.
        class_names: Names indexed by class id; missing ids are named ``class_<id>``.
        nodata: Value of pixels without data (skipped unless listed in the classes).
        probabilities: Optional (K, H, W) or (H, W) probabilities for ``confidence``.
        instances: ``mask`` is an instance map (object ids, 0 none): one polygon per
            object of class 1 (``class_names[1]``), touching objects kept apart.

    Returns:
        GeoDataFrame as :func:`vectorize_raster` returns.
    """
    if crs is None:
        raise InvalidRasterError("polygonize needs the raster's CRS; pass crs=...")
    options = options or VectorizeOptions()
    crs = CRS.from_user_input(crs)
    source = array_source(mask, probabilities, nodata)
    classes = None if instances else resolve_classes(options.classes, class_names, "classes")
    regions = polygonize_source(
        source,
        classes,
        connectivity=options.connectivity,
        window=options.window,
        instances=instances,
    )
    h, w = source.height, source.width
    corners = np.array([transform * (0, 0), transform * (w, h)])
    bounds = (*corners.min(axis=0), *corners.max(axis=0))
    frame = _frame(regions, transform, crs, bounds, class_names, options)
    top = int(frame["class_id"].max()) if len(frame) else 0
    return _styled(frame, None, class_names or [f"class_{i}" for i in range(top + 1)])


def _frame(
    regions: Regions,
    transform: Affine,
    crs: Any,
    bounds: Sequence[float],
    names: Sequence[str] | None,
    options: VectorizeOptions,
    *,
    field: str | None = None,
) -> gpd.GeoDataFrame:
    """Pixel-space regions to a cleaned, measured GeoDataFrame in ``crs``."""
    crs = CRS.from_user_input(crs)
    ids = np.asarray(regions.class_ids, dtype=np.int64)
    pixels = np.asarray(regions.pixels, dtype=np.int64)
    share = shares = None
    if regions.votes is not None:  # objects take their majority class
        ids, share = majority_classes(regions.votes, len(regions.geoms))
        shares = _class_shares(regions.votes, len(regions.geoms), len(names or []))
    geoms = _to_crs_coords(np.asarray(regions.geoms, dtype=object), transform)
    pixel_m = pixel_size_m(crs, transform, tuple(bounds)) if geoms.size else 1.0
    if options.min_area_m2 > 0 and geoms.size:
        # Cheap first cut on pixel counts (with a margin for pixel sizes varying across
        # the scene); the exact geodesic filter comes last.
        keep = pixels * pixel_m**2 >= 0.25 * options.min_area_m2
        ids, pixels, geoms = ids[keep], pixels[keep], geoms[keep]
        share = None if share is None else share[keep]
        shares = None if shares is None else shares[keep]
        conf_sum = None if regions.prob_sum is None else np.asarray(regions.prob_sum)[keep]
    else:
        conf_sum = None if regions.prob_sum is None else np.asarray(regions.prob_sum)
    geoms = make_valid(geoms)
    geoms = refine(
        geoms,
        ids,
        crs,
        pixel_m=pixel_m,
        fill_holes_m2=options.fill_holes_m2,
        simplify_m=options.simplify_m,
        regularize=selected(options.regularize, names, "regularize"),
        smooth=selected(options.smooth, names, "smooth"),
    )
    geoms = clip_to_extent(geoms, bounds)
    area, perimeter = geodesic_area_perimeter(geoms, crs)
    keep = ~shapely.is_empty(geoms) & (area >= options.min_area_m2) & (area > 0)
    names = list(names or [])
    class_names = pd.Series(
        [names[i] if 0 <= i < len(names) else f"class_{i}" for i in ids[keep].tolist()],
        dtype=object,
    )
    data: dict[str, Any] = {"class_id": ids[keep], "class_name": class_names}
    if field and field not in COLUMNS:
        data[field] = class_names.copy()
    if share is not None:
        data["class_share"] = np.round(share[keep], 4)
        for k in range(1, shares.shape[1]):  # the share of every class inside each object
            label = names[k] if k < len(names) else f"class_{k}"
            data[share_column(label)] = np.round(shares[keep, k], 4)
    data |= {
        "area_m2": area[keep],
        "area_ha": area[keep] / 1e4,
        "perimeter_m": perimeter[keep],
    }
    if conf_sum is not None:
        data[CONFIDENCE] = np.round(conf_sum[keep] / np.maximum(pixels[keep], 1), 4)
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms[keep], crs=crs), crs=crs)


def clip_to_extent(geoms: np.ndarray, bounds: Sequence[float]) -> np.ndarray:
    """Polygons cut to the raster's footprint: regularization and smoothing may move an
    edge past the scene's border, where the raster says nothing."""
    if geoms.size == 0:
        return geoms
    extent = shapely.box(*bounds)  # a rotated grid: the box around it
    shapely.prepare(extent)
    outside = ~shapely.contains(extent, geoms) & ~shapely.is_empty(geoms)
    if outside.any():
        cut = shapely.intersection(geoms[outside], extent)
        geoms = geoms.copy()
        geoms[outside] = [_polygonal(g) for g in cut]
    return geoms


def _polygonal(geom: Any) -> Any:
    """The polygon parts of ``geom`` (an intersection can add lines along the cut)."""
    if geom.geom_type in ("Polygon", "MultiPolygon") or geom.is_empty:
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def share_column(name: str) -> str:
    """The column holding the share of class ``name`` in each object: ``share_<name>``
    with characters other than letters and digits as ``_`` (``share_minor_damage``)."""
    return "share_" + (re.sub(r"[^0-9A-Za-z]+", "_", str(name)).strip("_") or "class")


def _class_shares(votes: Sequence[np.ndarray], n: int, classes: int) -> np.ndarray:
    """(n, classes) share of each object's pixels in each class of the class map."""
    if n == 0:
        return np.zeros((0, classes))
    counts = np.asarray(votes, dtype=np.float64)
    return counts / np.maximum(counts.sum(1, keepdims=True), 1)


def majority_classes(votes: Sequence[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each object's most frequent class (background only where nothing else) and the
    share of its pixels that class holds."""
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    counts = np.asarray(votes, dtype=np.float64)
    fg = counts[:, 1:]
    ids = np.where(fg.sum(1) > 0, fg.argmax(1) + 1, 0)
    total = np.maximum(counts.sum(1), 1)
    return ids.astype(np.int64), counts[np.arange(n), ids] / total


def _to_crs_coords(geoms: np.ndarray, transform: Affine) -> np.ndarray:
    """Pixel (column, row) coordinates to CRS coordinates with the raster's transform."""
    if geoms.size == 0:
        return geoms
    t = transform
    matrix = np.array([[t.a, t.d], [t.b, t.e]])
    offset = np.array([t.c, t.f])
    return shapely.transform(geoms, lambda xy: xy @ matrix + offset)
