"""Building regularization: right angles, one dominant direction, rectangles when close.

Raster footprints have staircase outlines. :func:`regularize_polygon` turns one into the
outline a human digitizer would draw:

1. Simplify the outline (Douglas-Peucker, 1.5 ``tolerance``) so staircases become straight
   edges, and take the building's dominant direction from its minimum-area bounding
   rectangle.
2. In a frame rotated to that direction, snap every edge to horizontal or vertical; each
   run of same-orientation edges becomes one edge at the length-weighted mean position
   of the raw outline it replaces, and runs shorter than 2.5 ``tolerance`` (steps the
   raster cannot resolve) are folded into their neighbours. Long edges more than 12
   degrees off both axes (a bay window, a wedge-shaped plot) keep their own direction.
3. When the result lies within twice ``tolerance`` of its bounding rectangle everywhere
   (noise-sized notches), replace it by that rectangle.

A result that is invalid or overlaps the input by less than ``min_iou`` (an unusual
shape: round, triangular) falls back to the simplified outline, so regularization never
destroys a footprint. Coordinates must be in a metric CRS with equal x and y units.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
import shapely.affinity
from shapely.geometry import Polygon

MIN_IOU = 0.8
SEGMENT = 1.5
MIN_EDGE = 2.5


def regularize_polygon(
    geom: Any,
    tolerance: float,
    *,
    min_iou: float = MIN_IOU,
) -> Any:
    """Regularize one (multi)polygon footprint; see the module docstring.

    Args:
        geom: Polygon or MultiPolygon in a metric CRS.
        tolerance: Simplification tolerance and shortest kept edge, in CRS units (metres).
        min_iou: Lowest IoU with the input accepted before falling back.

    Returns:
        A valid Polygon or MultiPolygon (empty input gives it back unchanged).
    """
    if geom.is_empty:
        return geom
    if geom.geom_type == "MultiPolygon":
        parts = [regularize_polygon(p, tolerance, min_iou=min_iou) for p in geom.geoms]
        return polygonal(shapely.union_all([p for p in parts if not p.is_empty]))
    simple = shapely.simplify(geom, SEGMENT * tolerance, preserve_topology=True)
    if simple.is_empty or simple.geom_type != "Polygon":
        return geom
    angle = dominant_angle(simple)
    centre = simple.centroid
    frame = shapely.affinity.rotate(geom, -angle, origin=centre, use_radians=True)
    frame_simple = shapely.affinity.rotate(simple, -angle, origin=centre, use_radians=True)
    rings = list(
        zip([frame.exterior, *frame.interiors], _rings_like(frame, frame_simple), strict=True)
    )
    shell = _orthogonal_ring(*rings[0], MIN_EDGE * tolerance)
    if shell is None:
        return simple
    holes = []
    for ring, kept in rings[1:]:
        hole = _orthogonal_ring(ring, kept, MIN_EDGE * tolerance)
        if hole is not None and Polygon(hole).area > tolerance**2:
            holes.append(hole)
    result = Polygon(shell, holes)
    if not result.is_valid:
        result = _largest(shapely.make_valid(result))
    if not holes and result.geom_type == "Polygon" and len(result.exterior.coords) > 5:
        result = _rectangle_if_close(result, 2 * tolerance)
    result = shapely.affinity.rotate(result, angle, origin=centre, use_radians=True)
    # Checked against the simplified outline (within 1.5 tolerance of the raw one, and
    # a few vertices instead of hundreds: the overlay is most of the cost otherwise).
    if result.is_empty or not result.is_valid or _iou(result, simple) < min_iou:
        return simple
    return result


def dominant_angle(geom: Any) -> float:
    """Direction of the minimum-area bounding rectangle, modulo 90 degrees, in radians.

    Returned in [-pi/4, pi/4). Notches and cut corners barely move it, where a mean of
    edge directions follows every slanted shortcut of the simplified outline.
    """
    rect = np.asarray(shapely.oriented_envelope(geom).exterior.coords)
    d = rect[1] - rect[0]
    angle = math.atan2(d[1], d[0])
    return (angle + math.pi / 4) % (math.pi / 2) - math.pi / 4


def _orthogonal_ring(ring: Any, kept: Any, min_edge: float) -> np.ndarray | None:
    """Snap an open ring (``n`` distinct vertices) to horizontal and vertical edges.

    Long edges more than ``DIAGONAL_DEG`` off both axes stay as they are (a bay window, a
    trapezoid plot). Each run of same-direction edges becomes one line through their
    length-weighted midpoint; new vertices are where consecutive lines cross. Returns the
    new open ring, or ``None`` when fewer than three edges would remain.
    """
    raw = np.asarray(ring.coords)[:-1]
    if kept is None or len(raw) < 3:
        return None
    # The simplified ring keeps a subset of the raw vertices, in order.
    as_complex = raw[:, 0] + 1j * raw[:, 1]
    kept_xy = np.asarray(kept.coords)[:-1]
    cut = np.flatnonzero(np.isin(as_complex, kept_xy[:, 0] + 1j * kept_xy[:, 1])).tolist()
    if len(cut) < 3:
        return None
    pts = raw[cut]
    d = np.roll(pts, -1, axis=0) - pts
    length = np.hypot(d[:, 0], d[:, 1])
    # Each simplified edge's line goes through the length-weighted midpoint of the raw
    # edges it replaces, so staircases do not bias it towards their outer corners.
    raw_d = np.roll(raw, -1, axis=0) - raw
    raw_len = np.hypot(raw_d[:, 0], raw_d[:, 1])
    raw_mid = raw + raw_d / 2
    spans = [
        np.arange(a, b if b > a else b + len(raw)) % len(raw)
        for a, b in zip(cut, [*cut[1:], cut[0]], strict=True)
    ]
    centres = np.array([np.average(raw_mid[s], axis=0, weights=raw_len[s] + 1e-12) for s in spans])
    off_axis = np.degrees(np.arctan2(np.abs(d[:, 1]), np.abs(d[:, 0])))
    off_axis = np.minimum(off_axis, 90 - off_axis)
    kind = np.where(np.abs(d[:, 0]) >= np.abs(d[:, 1]), _H, _V)
    kind[(off_axis > DIAGONAL_DEG) & (length >= 2 * min_edge)] = _D
    runs = [
        _Run(int(k), c, e, float(n)) for k, c, e, n in zip(kind, centres, d, length, strict=True)
    ]
    runs = _merge_same(runs)
    while len(runs) > 3:
        i = min(range(len(runs)), key=lambda k: runs[k].extent)
        if runs[i].extent >= min_edge:
            break
        del runs[i]
        runs = _merge_same(runs)
    if len(runs) < 3 or all(r.kind == _D for r in runs):
        return None
    out = [_cross(runs[i], runs[(i + 1) % len(runs)]) for i in range(len(runs))]
    return np.asarray(out)


_H, _V, _D = 0, 1, 2
DIAGONAL_DEG = 12.0


class _Run:
    """Consecutive ring edges of one direction, as a line and the length they cover."""

    __slots__ = ("end", "extent", "kind", "point", "vector", "weight")

    def __init__(self, kind: int, point: np.ndarray, vector: np.ndarray, weight: float) -> None:
        self.kind, self.point, self.vector, self.weight = kind, point, vector, weight
        self.extent = float(np.abs(vector[0] if kind == _H else vector[1] if kind == _V else 0))
        if kind == _D:
            self.extent = float(np.hypot(*vector))
        self.end = point + vector / 2

    def absorb(self, other: _Run) -> None:
        """Merge ``other`` (the next run along the ring) into this one."""
        w = self.weight + other.weight
        self.point = (self.point * self.weight + other.point * other.weight) / w
        self.vector = self.vector + other.vector
        self.weight = w
        self.extent += other.extent

    def direction(self) -> np.ndarray:
        if self.kind == _H:
            return np.array([1.0, 0.0])
        if self.kind == _V:
            return np.array([0.0, 1.0])
        return self.vector / np.hypot(*self.vector)


def _same(a: _Run, b: _Run) -> bool:
    if a.kind != b.kind:
        return False
    if a.kind != _D:
        return True
    cos = float(np.dot(a.direction(), b.direction()))
    return cos > math.cos(math.radians(DIAGONAL_DEG))


def _merge_same(runs: list[_Run]) -> list[_Run]:
    """Merge neighbouring runs of the same direction, around the ring."""
    out: list[_Run] = []
    for run in runs:
        if out and _same(out[-1], run):
            out[-1].absorb(run)
        else:
            out.append(run)
    while len(out) > 1 and _same(out[-1], out[0]):
        out[-1].absorb(out[0])
        out.pop(0)
    return out


def _cross(a: _Run, b: _Run) -> tuple[float, float]:
    """Where the lines of runs ``a`` and ``b`` cross (midway between them if parallel)."""
    u, v = a.direction(), b.direction()
    det = u[0] * (-v[1]) - u[1] * (-v[0])
    if abs(det) < math.sin(math.radians(10)):
        mid = (a.point + a.vector / 2 + b.point - b.vector / 2) / 2
        return float(mid[0]), float(mid[1])
    diff = b.point - a.point
    t = (diff[0] * (-v[1]) - diff[1] * (-v[0])) / det
    x = a.point + t * u
    return float(x[0]), float(x[1])


def _rings_like(frame: Polygon, simple: Polygon) -> list[Any]:
    """The simplified ring matching each ring of ``frame`` (``None`` where it vanished)."""
    out: list[Any] = [simple.exterior]
    kept = list(simple.interiors)
    for ring in frame.interiors:
        vertices = {tuple(p) for p in np.asarray(ring.coords)}
        match = [k for k in kept if tuple(np.asarray(k.coords)[0]) in vertices]
        out.append(match[0] if match else None)
    return out


def _rectangle_if_close(poly: Polygon, within: float) -> Polygon:
    """The bounding box, if it is within ``within`` (CRS units) of ``poly`` everywhere."""
    box = shapely.box(*poly.bounds)
    if shapely.hausdorff_distance(box, poly) > within:
        return poly
    return box


def _iou(a: Any, b: Any) -> float:
    inter = shapely.intersection(a, b).area
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def polygonal(geom: Any) -> Any:
    """The polygonal part of a geometry (an empty Polygon if none)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else Polygon()


def _largest(geom: Any) -> Any:
    """The largest polygon of a repaired outline (a self-crossing ring leaves slivers)."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and not p.is_empty]
    return max(parts, key=lambda p: p.area) if parts else Polygon()
