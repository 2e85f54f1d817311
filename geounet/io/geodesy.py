"""Ground measures of polygons in any CRS: geodesic area and perimeter, metric frames."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Geod, Proj, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info

_GEOD = Geod(ellps="WGS84")
_WGS84 = CRS.from_epsg(4326)
# A projected CRS whose scale differs from true ground distance by less than this is
# used as is for work in metres; others (geographic, Web Mercator away from the equator)
# are replaced by the local UTM zone.
_SCALE_TOLERANCE = 0.005


def geodesic_area_m2(geoms: Sequence[Any] | np.ndarray, crs: Any) -> np.ndarray:
    """Geodesic area in m² on the WGS84 ellipsoid of polygons given in ``crs``.

    Args:
        geoms: Polygon or MultiPolygon geometries.
        crs: Their CRS.

    Returns:
        Float array of non-negative areas (holes subtracted).
    """
    return geodesic_area_perimeter(geoms, crs)[0]


def geodesic_area_perimeter(
    geoms: Sequence[Any] | np.ndarray, crs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Geodesic area (m²) and perimeter (m, holes included) on the WGS84 ellipsoid.

    Args:
        geoms: Polygon or MultiPolygon geometries.
        crs: Their CRS.

    Returns:
        Two float arrays: areas with holes subtracted, and perimeters of all rings.
    """
    geoms = np.asarray(geoms, dtype=object)
    area, perimeter = np.zeros(geoms.size), np.zeros(geoms.size)
    if geoms.size == 0:
        return area, perimeter
    geoms = _to_lonlat(geoms, CRS.from_user_input(crs))
    parts, part_owner = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    if rings.size == 0:
        return area, perimeter
    exterior = np.r_[True, ring_part[1:] != ring_part[:-1]]  # a part's first ring
    owner = part_owner[ring_part]
    coords, index = shapely.get_coordinates(rings, return_index=True)
    bounds = np.searchsorted(index, np.arange(rings.size + 1))
    # One geodesic call per ring on plain arrays; holes count against the area whatever
    # their winding, and towards the perimeter.
    for k in range(rings.size):
        xy = coords[bounds[k] : bounds[k + 1]]
        a, p = _GEOD.polygon_area_perimeter(xy[:, 0], xy[:, 1])
        area[owner[k]] += abs(a) if exterior[k] else -abs(a)
        perimeter[owner[k]] += p
    return np.maximum(area, 0.0), perimeter


def metric_crs(crs: Any, bounds: tuple[float, float, float, float]) -> CRS | None:
    """A CRS in which lengths are true metres around ``bounds``, or ``None`` for ``crs``.

    Projected CRSs in metres whose scale factor at the centre of ``bounds`` is within
    0.5 % of 1 (UTM, national grids, Web Mercator near the equator) are used as they are
    (``None``); otherwise the UTM zone at the centre is returned.
    """
    crs = CRS.from_user_input(crs)
    west, south, east, north = _lonlat_bounds(crs, bounds)
    lon, lat = (west + east) / 2, (south + north) / 2
    if crs.is_projected and crs.axis_info and crs.axis_info[0].unit_name in ("metre", "meter"):
        try:
            factors = Proj(crs).get_factors(lon, lat)
            scales = (factors.meridional_scale, factors.parallel_scale)
        except Exception:  # a CRS pyproj cannot evaluate factors for
            scales = (np.nan, np.nan)
        if all(abs(s - 1) < _SCALE_TOLERANCE for s in scales):
            return None
    infos = query_utm_crs_info(
        datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat)
    )
    if infos:
        return CRS.from_epsg(infos[0].code)
    # Polar regions: a local azimuthal equidistant projection.
    return CRS.from_proj4(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m")


def pixel_size_m(crs: Any, transform: Any, bounds: tuple[float, float, float, float]) -> float:
    """Ground size in metres of one pixel side (the mean of x and y) at the scene centre."""
    crs = CRS.from_user_input(crs)
    x = (bounds[0] + bounds[2]) / 2
    y = (bounds[1] + bounds[3]) / 2
    dx, dy = abs(transform.a), abs(transform.e)
    tr = Transformer.from_crs(crs, _WGS84, always_xy=True)
    lon, lat = tr.transform([x, x + dx, x], [y, y, y + dy])
    _, _, sx = _GEOD.inv(lon[0], lat[0], lon[1], lat[1])
    _, _, sy = _GEOD.inv(lon[0], lat[0], lon[2], lat[2])
    return float((sx + sy) / 2)


def to_crs(geoms: np.ndarray, source: Any, target: Any) -> np.ndarray:
    """Reproject an array of geometries vertex by vertex (``always_xy``)."""
    tr = Transformer.from_crs(source, target, always_xy=True)
    return shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def _to_lonlat(geoms: np.ndarray, crs: CRS) -> np.ndarray:
    if crs.equals(_WGS84, ignore_axis_order=True):
        return geoms
    return to_crs(geoms, crs, _WGS84)


def _lonlat_bounds(crs: CRS, bounds: tuple[float, float, float, float]) -> tuple:
    if crs.equals(_WGS84, ignore_axis_order=True):
        return bounds
    tr = Transformer.from_crs(crs, _WGS84, always_xy=True)
    return tr.transform_bounds(*bounds, densify_pts=11)


def geodesic_length_m(geoms: Sequence[Any] | np.ndarray, crs: Any) -> np.ndarray:
    """Geodesic length in metres on the WGS84 ellipsoid of lines given in ``crs``.

    Args:
        geoms: LineString or MultiLineString geometries (polygons give their perimeter).
        crs: Their CRS.

    Returns:
        Float array of lengths.
    """
    geoms = np.asarray(geoms, dtype=object)
    if geoms.size == 0:
        return np.zeros(0)
    geoms = _to_lonlat(geoms, CRS.from_user_input(crs))
    return np.array([_GEOD.geometry_length(g) if g is not None else 0.0 for g in geoms])


def buffer_m(geoms: Sequence[Any] | np.ndarray, crs: Any, distance_m: float) -> np.ndarray:
    """Buffer geometries given in ``crs`` by ``distance_m`` metres on the ground.

    The buffer is drawn in a metric frame (:func:`metric_crs`: the CRS itself when its
    scale is true, else the local UTM zone), so a geographic CRS gets metres, not degrees.

    Returns:
        The buffered geometries, in ``crs``.
    """
    geoms = np.asarray(geoms, dtype=object)
    if geoms.size == 0:
        return geoms
    crs = CRS.from_user_input(crs)
    bounds = tuple(shapely.total_bounds(geoms))
    frame = metric_crs(crs, bounds)
    if frame is None:  # a projected CRS in true metres
        return shapely.buffer(geoms, distance_m)
    local = to_crs(geoms, crs, frame)
    return to_crs(shapely.buffer(local, distance_m), frame, crs)
