"""Clean polygons in units users think in: holes, simplification, regularization, smoothing.

All steps run in a metric frame (the native CRS when it measures true metres, else the
local UTM zone, see :func:`~geounet.io.geodesy.metric_crs`), so tolerances in metres
mean the same on projected and geographic rasters. Every output geometry is valid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from shapely.geometry import Polygon

from geounet.io.geodesy import metric_crs, to_crs
from geounet.vectorize.regularize import polygonal, regularize_polygon

SMOOTH_ITERATIONS = 3


def refine(
    geoms: np.ndarray,
    class_ids: np.ndarray,
    crs: Any,
    *,
    pixel_m: float,
    fill_holes_m2: float = 0.0,
    simplify_m: float = 0.0,
    regularize: set[int] | bool = False,
    smooth: set[int] | bool = False,
) -> np.ndarray:
    """Post-process polygons of a class map; dropped polygons come back empty.

    Args:
        geoms: Valid polygons in ``crs``, one per region.
        class_ids: Class id of each.
        crs: Their CRS.
        pixel_m: Pixel size of the source raster in metres (sets default tolerances).
        fill_holes_m2: Fill holes smaller than this area; polygons inside them are dropped.
        simplify_m: Largest outline shift allowed by simplification.
        regularize: Classes (or all: ``True``) to regularize as buildings.
        smooth: Classes (or all: ``True``) to smooth as natural features.

    Returns:
        Geometries in ``crs`` (empty polygons where a polygon was dropped).
    """
    geoms = np.asarray(geoms, dtype=object)
    if geoms.size == 0 or not (fill_holes_m2 or simplify_m or regularize or smooth):
        return geoms
    class_ids = np.asarray(class_ids)
    metric = metric_crs(crs, tuple(shapely.total_bounds(geoms)))
    work = to_crs(geoms, crs, metric) if metric is not None else geoms.copy()
    if fill_holes_m2 > 0:
        work = fill_holes(work, fill_holes_m2)
    reg = _members(class_ids, regularize)
    smo = _members(class_ids, smooth) & ~reg
    plain = ~reg & ~smo
    if simplify_m > 0 and plain.any():
        work[plain] = simplify(work[plain], simplify_m, several=len(np.unique(class_ids)) > 1)
    if reg.any():
        tolerance = max(pixel_m, simplify_m)
        work[reg] = [regularize_polygon(g, tolerance) for g in work[reg]]
    if smo.any():
        work[smo] = [smooth_polygon(g, pixel_m, simplify_m) for g in work[smo]]
    work = make_valid(work)
    if reg.any() or smo.any():
        work = resolve_overlaps(work, reg | smo)
    if metric is None:
        return work
    return make_valid(to_crs(work, metric, crs))  # reprojecting back can pinch a ring


def fill_holes(geoms: np.ndarray, max_area: float) -> np.ndarray:
    """Fill holes smaller than ``max_area``; drop polygons lying inside a filled hole."""
    out = geoms.copy()
    filled = []
    for i, geom in enumerate(geoms):
        if geom.is_empty or shapely.get_num_interior_rings(geom).max(initial=0) == 0:
            continue
        parts, changed = [], False
        for part in shapely.get_parts(geom):
            keep = []
            for ring in part.interiors:
                hole = Polygon(ring)
                if hole.area < max_area:
                    filled.append(hole)
                    changed = True
                else:
                    keep.append(ring)
            parts.append(Polygon(part.exterior, keep))
        if changed:
            out[i] = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
    if filled:
        tree = shapely.STRtree(out)
        # Polygons wholly inside a filled hole (touching its rim counts as inside).
        pairs = tree.query(np.asarray(filled, dtype=object), predicate="covers")
        for j in np.unique(pairs[1]):
            out[j] = Polygon()
    return out


def simplify(geoms: np.ndarray, tolerance: float, *, several: bool) -> np.ndarray:
    """Topology-preserving simplification.

    One class: Douglas-Peucker per polygon (``tolerance`` = largest shift). Several
    classes: GEOS coverage simplification, which simplifies each shared boundary once so
    that neighbouring polygons stay edge to edge.
    """
    if several:
        try:
            keep = ~shapely.is_empty(geoms)
            out = geoms.copy()
            out[keep] = shapely.coverage_simplify(geoms[keep], tolerance)
            return out
        except shapely.errors.GEOSException:  # pragma: no cover - not a clean coverage
            pass
    return shapely.simplify(geoms, tolerance, preserve_topology=True)


def resolve_overlaps(geoms: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """Remove overlaps that per-polygon reshaping created: the smaller polygon gives way.

    Only pairs where at least one polygon was reshaped (``changed``) are looked at; the
    pixel outlines of a class map never overlap.
    """
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms[changed], predicate="intersects")
    left = np.flatnonzero(changed)[left]
    out = geoms.copy()
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i == j or (changed[j] and j < i):  # each pair once
            continue
        a, b = out[i], out[j]
        if shapely.intersection(a, b).area <= 0:
            continue
        small, big = (i, j) if a.area < b.area else (j, i)
        out[small] = polygonal(shapely.make_valid(shapely.difference(out[small], out[big])))
    return out


def smooth_polygon(geom: Any, pixel_m: float, simplify_m: float = 0.0) -> Any:
    """Round a (multi)polygon outline: simplify staircases, then Chaikin corner cutting."""
    if geom.is_empty:
        return geom
    base = shapely.simplify(geom, max(pixel_m, simplify_m), preserve_topology=True)
    parts = []
    for part in shapely.get_parts(base):
        shell = _chaikin(np.asarray(part.exterior.coords))
        holes = [_chaikin(np.asarray(r.coords)) for r in part.interiors]
        parts.append(Polygon(shell, [h for h in holes if len(h) >= 4]))
    out = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
    return shapely.simplify(out, 0.05 * pixel_m, preserve_topology=True)


def _chaikin(ring: np.ndarray, iterations: int = SMOOTH_ITERATIONS) -> np.ndarray:
    """Chaikin corner cutting of a closed ring (first point repeated last)."""
    pts = ring[:-1]
    for _ in range(iterations):
        nxt = np.roll(pts, -1, axis=0)
        q = 0.75 * pts + 0.25 * nxt
        r = 0.25 * pts + 0.75 * nxt
        pts = np.stack([q, r], axis=1).reshape(-1, 2)
    return np.vstack([pts, pts[:1]])


def make_valid(geoms: np.ndarray) -> np.ndarray:
    """Valid polygonal geometries (invalid ones repaired, non-polygonal parts dropped)."""
    geoms = np.asarray(geoms, dtype=object)
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = [polygonal(g) for g in shapely.make_valid(geoms[bad])]
    return geoms


def _members(class_ids: np.ndarray, choice: set[int] | bool) -> np.ndarray:
    if isinstance(choice, bool):
        return np.full(class_ids.shape, choice)
    return np.isin(class_ids, sorted(choice))
